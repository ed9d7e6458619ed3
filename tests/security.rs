//! Transport security, roles and load shedding, against a real server on
//! loopback: mutual TLS with certificates made for the test, a token per
//! role, every role against every service.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use mora::api::auth::{BearerToken, Role, TokenEntry, token_sha256};
use mora::api::proto::{
    EventBatch, ListModelsRequest, ScoreBatchRequest, ScoreRequest, ingest_client::IngestClient,
    models_client::ModelsClient, scoring_client::ScoringClient,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// PEM files of a CA, a server certificate for `localhost` and a client
/// certificate, both signed by the CA.
struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "mora test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        server: leaf(vec!["localhost".into()]),
        client: leaf(vec!["platform.example".into()]),
        ca: ca.pem(),
    }
}

const TOKENS: [(&str, Role); 3] = [
    ("token-ingest", Role::Ingest),
    ("token-score", Role::Score),
    ("token-admin", Role::Admin),
];

async fn secured_server(dir: &Path, pki: &Pki) -> TestServer {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let cert = write("server.pem", &pki.server.0);
    let key = write("server.key", &pki.server.1);
    let ca = write("ca.pem", &pki.ca);
    start_with(&shipped_models(), |config| {
        config.tls.cert_file = Some(cert);
        config.tls.key_file = Some(key);
        config.tls.client_ca_file = Some(ca);
        config.auth.enabled = true;
        config.auth.tokens = TOKENS
            .iter()
            .map(|(token, role)| TokenEntry {
                name: role.as_str().to_owned(),
                sha256: token_sha256(token),
                roles: vec![*role],
            })
            .collect();
    })
    .await
}

/// A TLS channel, with the test client certificate when `with_cert`.
async fn tls_channel(
    server: &TestServer,
    pki: &Pki,
    with_cert: bool,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca))
        .domain_name("localhost");
    if with_cert {
        tls = tls.identity(Identity::from_pem(&pki.client.0, &pki.client.1));
    }
    Channel::from_shared(format!("https://{}", server.grpc_addr))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

type Authed = InterceptedService<Channel, BearerToken>;

/// One call to each service with `token`; the gRPC code each answered.
async fn call_each_service(channel: &Channel, token: Option<&str>) -> [Code; 3] {
    let auth = || BearerToken::new(token).unwrap();
    let code = |result: Result<(), tonic::Status>| result.map_or_else(|s| s.code(), |()| Code::Ok);
    let mut ingest: IngestClient<Authed> = IngestClient::with_interceptor(channel.clone(), auth());
    let mut scoring = ScoringClient::with_interceptor(channel.clone(), auth());
    let mut models = ModelsClient::with_interceptor(channel.clone(), auth());
    let batch = EventBatch {
        batch_seq: 1,
        events: good_payer("sec-1"),
    };
    let ingested = ingest.send(batch).await.map(drop);
    let scored = scoring
        .score(ScoreRequest {
            debtor_id: "sec-1".into(),
            ..Default::default()
        })
        .await
        .map(drop);
    let listed = models.list(ListModelsRequest::default()).await.map(drop);
    [code(ingested), code(scored), code(listed)]
}

#[tokio::test]
async fn each_role_reaches_only_its_service_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let server = secured_server(dir.path(), &pki).await;
    let channel = tls_channel(&server, &pki, true)
        .await
        .expect("TLS connection with a client certificate");

    let services = [Role::Ingest, Role::Score, Role::Admin];
    for (token, role) in TOKENS {
        let codes = call_each_service(&channel, Some(token)).await;
        for (service, code) in services.iter().zip(codes) {
            let expected = if *service == role {
                Code::Ok
            } else {
                Code::PermissionDenied
            };
            assert_eq!(code, expected, "token of role {role:?} calling {service:?}");
        }
    }
    for token in [None, Some("token-unknown")] {
        let codes = call_each_service(&channel, token).await;
        assert_eq!(codes, [Code::Unauthenticated; 3], "token {token:?}");
    }

    // Orchestrators probe health without a token.
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("health answers without a token")
        .into_inner();
    assert_eq!(health.status, 1, "SERVING");

    // Refusals are counted by reason, and no token appears in the metrics.
    let text = scrape(&server).await;
    let refused = |reason: &str| {
        sample(
            &text,
            &format!("mora_auth_refusals_total{{reason=\"{reason}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert!(refused("unauthenticated") >= 6.0, "{text}");
    assert!(refused("permission_denied") >= 6.0, "{text}");
    assert!(!text.contains("token-"), "a token leaked into the metrics");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn clients_without_a_certificate_or_without_tls_are_turned_away() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let server = secured_server(dir.path(), &pki).await;

    // The handshake may fail at connect or at the first call.
    match tls_channel(&server, &pki, false).await {
        Err(_) => {}
        Ok(channel) => {
            let codes = call_each_service(&channel, Some("token-score")).await;
            assert!(
                codes
                    .iter()
                    .all(|c| *c == Code::Unavailable || *c == Code::Unknown),
                "a client without a certificate got {codes:?}"
            );
        }
    }
    let plain = Channel::from_shared(format!("http://{}", server.grpc_addr))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await;
    if let Ok(plain) = plain {
        let codes = call_each_service(&plain, Some("token-score")).await;
        assert!(
            codes.iter().all(|c| *c != Code::Ok),
            "a clear-text client got {codes:?}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn requests_beyond_the_limit_are_shed_and_admitted_ones_succeed() {
    let server = start_with(&shipped_models(), |config| {
        config.limits.max_in_flight = 2;
        config.limits.max_ingest_streams = 1;
        config.limits.retry_after_ms = 40;
    })
    .await;
    let channel = channel(&server).await;
    let debtors: Vec<String> = (0..200).map(|i| format!("load-{i}")).collect();
    let mut ingest = IngestClient::new(channel.clone());
    for chunk in debtors.chunks(20) {
        let events = chunk.iter().flat_map(|d| bad_payer(d)).collect();
        ingest
            .send(EventBatch {
                batch_seq: 0,
                events,
            })
            .await
            .unwrap();
    }

    // Bursts of slow requests, each on its own connection, until one burst
    // overlaps enough to be shed (the first one almost always does).
    let request = ScoreBatchRequest {
        // 200 known debtors and many unknown ones, answered with the prior.
        debtor_ids: (0..20_000).map(|i| format!("load-{i}")).collect(),
        as_of: at(AS_OF),
    };
    let (mut admitted, mut shed) = (0, 0);
    for _burst in 0..10 {
        let mut calls = Vec::new();
        for _ in 0..16 {
            let channel = common::channel(&server).await;
            let request = request.clone();
            calls.push(tokio::spawn(async move {
                ScoringClient::new(channel).score_batch(request).await
            }));
        }
        for call in calls {
            match call.await.unwrap() {
                Ok(response) => {
                    assert_eq!(response.into_inner().results.len(), 20_000);
                    admitted += 1;
                }
                Err(status) => {
                    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                    assert!(status.message().contains("retry after 40 ms"), "{status:?}");
                    let pushback = status.metadata().get("grpc-retry-pushback-ms");
                    assert_eq!(pushback.and_then(|v| v.to_str().ok()), Some("40"));
                    shed += 1;
                }
            }
        }
        if shed > 0 {
            break;
        }
    }
    assert!(
        shed > 0,
        "no request was shed beyond a limit of 2 in flight"
    );
    assert!(admitted >= 2, "{admitted} admitted");

    // One ingest stream at a time: a second is refused while the first is
    // open, and admitted once it closes.
    let (first_tx, first_rx) = tokio::sync::mpsc::channel::<EventBatch>(1);
    let mut first = ingest
        .stream(tokio_stream::wrappers::ReceiverStream::new(first_rx))
        .await
        .expect("first stream admitted")
        .into_inner();
    let second = IngestClient::new(channel.clone())
        .stream(tokio_stream::iter(Vec::<EventBatch>::new()))
        .await;
    let refused = second.map(drop).unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("ingest streams"), "{refused:?}");
    drop(first_tx);
    while first.message().await.unwrap().is_some() {}
    let mut admitted_later = false;
    for _ in 0..50 {
        let third = IngestClient::new(channel.clone())
            .stream(tokio_stream::iter(Vec::<EventBatch>::new()))
            .await;
        if third.is_ok() {
            admitted_later = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted_later, "the stream limit was not released");

    let text = scrape(&server).await;
    let shed_metric = sample(&text, r#"mora_requests_shed_total{pool="requests"}"#);
    assert_eq!(shed_metric, Some(shed as f64), "{text}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversize_messages_are_refused_before_they_are_decoded() {
    let server = start_with(&shipped_models(), |config| {
        config.limits.max_message_bytes = 64 * 1024;
    })
    .await;
    let mut ingest = IngestClient::new(channel(&server).await);
    let events: Vec<_> = (0..200)
        .flat_map(|i| bad_payer(&format!("big-{i}")))
        .collect();
    let refused = ingest
        .send(EventBatch {
            batch_seq: 1,
            events,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    let mut scoring = ScoringClient::new(channel(&server).await);
    let unknown = scoring
        .score(ScoreRequest {
            debtor_id: "big-0".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!unknown.known, "nothing of the refused batch was applied");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_clients_deadline_is_honoured_by_the_server() {
    let server = start(&shipped_models()).await;
    let mut scoring = ScoringClient::new(channel(&server).await);
    // tonic's client only sends `grpc-timeout`; ending the call is the
    // server's doing.
    let mut request = tonic::Request::new(ScoreBatchRequest {
        debtor_ids: (0..100_000).map(|i| format!("deadline-{i}")).collect(),
        as_of: at(AS_OF),
    });
    request.set_timeout(Duration::from_millis(1));
    let started = std::time::Instant::now();
    let status = scoring.score_batch(request).await.unwrap_err();
    // tonic's server reports an expired deadline as CANCELLED.
    assert_eq!(
        (status.code(), status.message()),
        (Code::Cancelled, "Timeout expired"),
        "{status:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    server.shutdown().await.unwrap();
}
