//! Assembles a running mora server: state, the model repository, the gRPC
//! services (with health and reflection) and the Prometheus endpoint, all
//! stopped together; and, beside them, the recovery of debtor state, the
//! periodic snapshots and the eviction of idle debtors.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
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
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::api::auth::{Authenticator, Guard, Role};
use crate::api::ingest::IngestService;
use crate::api::limits::Admission;
use crate::api::models::ModelsService;
use crate::api::proto::{
    self, ingest_server::IngestServer, models_server::ModelsServer, scoring_server::ScoringServer,
};
use crate::api::readiness::Readiness;
use crate::api::scoring::ScoringService;
use crate::config::{Config, TlsConfig};
use crate::durability::Journal;
use crate::models::ModelRegistry;
use crate::models::repository::ModelRepository;
use crate::policy::ContactPolicy;
use crate::scoring::Scorer;
use crate::state::Store;
use crate::telemetry;

mod upkeep;

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
    upkeep: JoinHandle<()>,
    store: Arc<Store>,
    journal: Arc<OnceLock<Arc<Journal>>>,
    readiness: Readiness,
}

impl RunningServer {
    /// Stops accepting requests and lets requests in flight finish, for at
    /// most the configured grace period; then stops waiting, so that a client
    /// that never lets its connection close cannot hold the server. What is
    /// still open then ends with the process.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.readiness.stopping().await;
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
        self.upkeep.await.context("state upkeep task failed")?;

        // What was acknowledged is in the log already; a final snapshot
        // spares the next start its replay.
        if let Some(journal) = self.journal.get().cloned() {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || {
                upkeep::snapshot(&journal, &store);
                journal.close()
            })
            .await
            .context("final snapshot task failed")??;
        }
        Ok(())
    }

    /// A digest of the whole debtor state ([`Store::digest`]): equal before
    /// and after a request means the request changed nothing.
    pub fn state_digest(&self) -> u64 {
        self.store.digest()
    }

    /// Resolves once the debtor state has been recovered and ingest and
    /// scoring answer (never, if recovery failed: see the log).
    pub async fn recovered(&self) {
        self.readiness.wait_recovered().await;
    }
}

/// Starts a server with `config` and returns once both ports are bound.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let prometheus = telemetry::prometheus();
    let store = Arc::new(Store::with_max_debtors(config.state.max_debtors()));
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

    // Health: NOT_SERVING until the state is recovered and, for scoring,
    // the models needed for scores are loaded.
    let (health, health_service) = tonic_health::server::health_reporter();
    let readiness = Readiness::new(models.clone(), health);
    readiness.report().await;
    let journal = Arc::new(OnceLock::new());

    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;

    let authenticator = Arc::new(Authenticator::new(&config.auth));
    if !authenticator.is_enabled() {
        tracing::warn!(
            "Authentication is off: anyone who reaches {grpc_addr} may send events, read scores \
             and change models. Set [auth] enabled = true with tokens outside local development."
        );
    }
    let guard = |role| Guard::new(authenticator.clone(), role);
    let tls = server_tls(&config.tls)?;
    if tls.is_none() {
        tracing::warn!("TLS is off: gRPC traffic, tokens included, travels in clear text");
    }
    let admission = Admission::new(&config.limits);
    let max_message = config.limits.max_message_bytes;

    let ingest = IngestService::new(
        store.clone(),
        config.ingest.clone(),
        journal.clone(),
        readiness.clone(),
        admission.clone(),
    );
    let lifecycle = ModelsService::new(repository, readiness.clone());
    let scoring = ScoringService::new(
        Scorer::new(
            store.clone(),
            models,
            policy,
            config.scoring.clone(),
            config.contact.clone(),
        ),
        config.ingest.limits(),
        readiness.clone(),
        admission,
    );

    let (stop, stopped) = watch::channel(false);
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).context("configuring TLS")?;
    }
    let grpc = tokio::spawn(
        builder
            // A client's shorter `grpc-timeout` is honoured as well.
            .timeout(config.limits.request_timeout())
            .max_concurrent_streams(config.limits.max_streams_per_connection)
            // One span per RPC, so that whatever a handler logs names its
            // method. Headers stay out of it: they carry tokens.
            .trace_fn(|request| tracing::info_span!("rpc", method = %request.uri().path()))
            // Probes carry no token: health answers everyone.
            .add_service(health_service)
            .add_service(InterceptedService::new(reflection, guard(None)))
            .add_service(InterceptedService::new(
                IngestServer::new(ingest).max_decoding_message_size(max_message),
                guard(Some(Role::Ingest)),
            ))
            .add_service(InterceptedService::new(
                ScoringServer::new(scoring).max_decoding_message_size(max_message),
                guard(Some(Role::Score)),
            ))
            .add_service(InterceptedService::new(
                ModelsServer::new(lifecycle).max_decoding_message_size(max_message),
                guard(Some(Role::Admin)),
            ))
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(grpc_listener),
                until(stopped.clone()),
            ),
    );
    let metrics = tokio::spawn(serve_metrics(
        metrics_listener,
        prometheus,
        until(stopped.clone()),
    ));
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let upkeep = tokio::spawn(upkeep::upkeep(
        config,
        store.clone(),
        journal.clone(),
        readiness.clone(),
        stopped,
    ));

    tracing::info!(%grpc_addr, %metrics_addr, "Listening");
    Ok(RunningServer {
        grpc_addr,
        metrics_addr,
        stop,
        grace,
        grpc,
        metrics,
        upkeep,
        store,
        journal,
        readiness,
    })
}

/// The TLS settings of the gRPC port, read from the files `config` names;
/// `None` when TLS is off.
fn server_tls(config: &TlsConfig) -> anyhow::Result<Option<ServerTlsConfig>> {
    let read = |field: &str, path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("{field}: reading {}", path.display()))
    };
    let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) else {
        return Ok(None);
    };
    let identity = Identity::from_pem(read("tls.cert_file", cert)?, read("tls.key_file", key)?);
    let mut tls = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &config.client_ca_file {
        tls = tls
            .client_ca_root(Certificate::from_pem(read("tls.client_ca_file", ca)?))
            .client_auth_optional(config.client_auth_optional);
    }
    Ok(Some(tls))
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
                        telemetry::refresh_before_scrape();
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
