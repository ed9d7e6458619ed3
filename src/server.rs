//! Assembles a running mora server: state, the model repository, the gRPC
//! services (with health and reflection) and the Prometheus endpoint, all
//! stopped together.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::ServingStatus;

use crate::api::ingest::IngestService;
use crate::api::models::ModelsService;
use crate::api::proto::{
    self, ingest_server::IngestServer, models_server::ModelsServer, scoring_server::ScoringServer,
};
use crate::api::scoring::ScoringService;
use crate::config::Config;
use crate::models::ModelRegistry;
use crate::models::repository::ModelRepository;
use crate::policy::ContactPolicy;
use crate::scoring::Scorer;
use crate::state::Store;
use crate::telemetry;

/// A server that is accepting requests.
pub struct RunningServer {
    /// Where gRPC is served (the real port when the config asked for port 0).
    pub grpc_addr: SocketAddr,
    /// Where `/metrics` is served.
    pub metrics_addr: SocketAddr,
    stop: watch::Sender<bool>,
    grace: Duration,
    grpc: JoinHandle<Result<(), tonic::transport::Error>>,
    metrics: JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting requests and lets requests in flight finish, for at
    /// most the configured grace period; then stops waiting, so that a client
    /// that never lets its connection close cannot hold the server. What is
    /// still open then ends with the process.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let mut grpc = self.grpc;
        match tokio::time::timeout(self.grace, &mut grpc).await {
            Ok(finished) => finished.context("gRPC server task failed")??,
            Err(_) => {
                grpc.abort();
                tracing::warn!(
                    grace_secs = self.grace.as_secs(),
                    "Shutdown grace period over; no longer waiting for open connections"
                );
            }
        }
        self.metrics.await.context("metrics server task failed")?;
        Ok(())
    }
}

/// Starts a server with `config` and returns once both ports are bound.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let prometheus = telemetry::prometheus();
    let store = Arc::new(Store::new());
    let models = Arc::new(ModelRegistry::empty());
    let repository_dir = config.data_dir.join("models");
    let repository = Arc::new(
        ModelRepository::open(
            &repository_dir,
            &config.models_dir,
            models.clone(),
            config.models.max_upload_bytes,
        )
        .with_context(|| format!("opening the model repository {}", repository_dir.display()))?,
    );
    let is_ready = models.is_ready();
    let policy = Arc::new(match &config.policy_file {
        Some(path) => ContactPolicy::load(path)?,
        None => ContactPolicy::presets(),
    });
    for loosened in policy.loosened() {
        tracing::warn!(rule = %loosened, "Contact rules loosened by the policy file");
    }
    for j in policy.jurisdictions() {
        let countries: Vec<&str> = j.countries.iter().map(|c| c.as_str()).collect();
        tracing::info!(jurisdiction = %j.name, countries = ?countries, description = %j.description, "Contact rules");
    }

    let grpc_listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding listen address {}", config.listen))?;
    let metrics_listener = TcpListener::bind(config.metrics_listen)
        .await
        .with_context(|| format!("binding metrics_listen address {}", config.metrics_listen))?;
    let grpc_addr = grpc_listener.local_addr()?;
    let metrics_addr = metrics_listener.local_addr()?;

    // Health: SERVING only once the models needed for scores are loaded.
    let (health, health_service) = tonic_health::server::health_reporter();
    let status = if is_ready {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    health.set_service_status("", status).await;
    health
        .set_service_status("mora.v1.Ingest", ServingStatus::Serving)
        .await;
    health.set_service_status("mora.v1.Scoring", status).await;

    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;

    let ingest = IngestService::new(store.clone(), config.ingest.clone());
    let lifecycle = ModelsService::new(repository, models.clone(), health.clone());
    let scoring = ScoringService::new(
        Scorer::new(
            store,
            models,
            policy,
            config.scoring.clone(),
            config.contact.clone(),
        ),
        config.ingest.limits(),
    );

    let (stop, stopped) = watch::channel(false);
    let grpc = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(reflection)
            .add_service(IngestServer::new(ingest))
            .add_service(ScoringServer::new(scoring))
            .add_service(ModelsServer::new(lifecycle))
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(grpc_listener),
                until(stopped.clone()),
            ),
    );
    let metrics = tokio::spawn(serve_metrics(metrics_listener, prometheus, until(stopped)));

    tracing::info!(%grpc_addr, %metrics_addr, "Listening");
    Ok(RunningServer {
        grpc_addr,
        metrics_addr,
        stop,
        grace: Duration::from_secs(config.shutdown_grace_secs),
        grpc,
        metrics,
    })
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn until(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Serves the Prometheus text exposition at `/metrics` until `stop`.
async fn serve_metrics(
    listener: TcpListener,
    prometheus: &'static metrics_exporter_prometheus::PrometheusHandle,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    tracing::warn!(%error, "Metrics connection not accepted");
                    continue;
                }
            },
            () = &mut stop => return,
        };
        let service = hyper::service::service_fn(move |request: hyper::Request<_>| async move {
            if request.uri().path() == "/metrics" {
                Response::builder()
                    .header("content-type", "text/plain; version=0.0.4")
                    .body(Full::new(Bytes::from({
                        telemetry::refresh_model_age();
                        prometheus.render()
                    })))
            } else {
                Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .body(Full::new(Bytes::from_static(
                        b"metrics are served at /metrics\n",
                    )))
            }
        });
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "Metrics connection ended with an error");
            }
        });
    }
}
