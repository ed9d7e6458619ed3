//! Health and reflection, as an orchestrator and grpcurl would see them.

mod common;

use common::*;
use mora::api::proto::{ScoreRequest, scoring_client::ScoringClient};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

async fn status(server: &mora::server::RunningServer, service: &str) -> i32 {
    let mut health = HealthClient::new(channel(server).await);
    let request = HealthCheckRequest {
        service: service.into(),
    };
    health.check(request).await.unwrap().into_inner().status
}

#[tokio::test]
async fn serving_once_models_are_loaded() {
    let server = start(&shipped_models()).await;
    assert_eq!(status(&server, "").await, ServingStatus::Serving as i32);
    assert_eq!(
        status(&server, "mora.v1.Scoring").await,
        ServingStatus::Serving as i32
    );
    assert_eq!(
        status(&server, "mora.v1.Ingest").await,
        ServingStatus::Serving as i32
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn not_serving_scores_without_a_model() {
    let empty = std::env::temp_dir().join(format!("mora-no-models-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let server = start(&empty).await;
    assert_eq!(status(&server, "").await, ServingStatus::NotServing as i32);
    assert_eq!(
        status(&server, "mora.v1.Scoring").await,
        ServingStatus::NotServing as i32
    );
    assert_eq!(
        status(&server, "mora.v1.Ingest").await,
        ServingStatus::Serving as i32
    );

    let mut scoring = ScoringClient::new(channel(&server).await);
    let request = ScoreRequest {
        debtor_id: "d".into(),
        as_of: None,
        include_contact_plan: false,
        ..Default::default()
    };
    let status = scoring.score(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(status.message(), "no payment model is loaded");
    server.shutdown().await.unwrap();
    std::fs::remove_dir_all(&empty).unwrap();
}

#[tokio::test]
async fn reflection_lists_every_service() {
    let server = start(&shipped_models()).await;
    let mut reflection = ServerReflectionClient::new(channel(&server).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "mora.v1.Ingest",
            "mora.v1.Models",
            "mora.v1.Scoring"
        ]
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn not_serving_and_unavailable_until_the_state_is_recovered() {
    // Another holder of the state directory keeps recovery from finishing.
    let data = tempfile::tempdir().unwrap();
    let state = data.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let lock = std::fs::File::create(state.join("LOCK")).unwrap();
    lock.try_lock().unwrap();

    let server = mora::server::start(config(&shipped_models(), data.path()))
        .await
        .unwrap();
    for service in ["", "mora.v1.Ingest", "mora.v1.Scoring"] {
        assert_eq!(
            status(&server, service).await,
            ServingStatus::NotServing as i32,
            "{service:?}"
        );
    }
    let mut ingest = mora::api::proto::ingest_client::IngestClient::new(channel(&server).await);
    let refused = ingest
        .send(mora::api::proto::EventBatch {
            batch_seq: 1,
            events: good_payer("h1"),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    let mut scoring = ScoringClient::new(channel(&server).await);
    let refused = scoring
        .score(ScoreRequest {
            debtor_id: "h1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    server.shutdown().await.unwrap();
}
