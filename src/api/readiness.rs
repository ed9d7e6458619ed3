//! Whether the server can answer yet, and the health service that says so.
//!
//! Ingest is SERVING once recovery has rebuilt the state; scoring (and the
//! server as a whole, `""`) once, in addition, a payment model is loaded.
//! Until then the handlers answer `UNAVAILABLE`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::models::ModelRegistry;

/// Shared readiness of the services, reported on `grpc.health.v1.Health`.
#[derive(Clone)]
pub struct Readiness {
    is_recovered: Arc<watch::Sender<bool>>,
    is_stopping: Arc<AtomicBool>,
    registry: Arc<ModelRegistry>,
    health: HealthReporter,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("is_recovered", &self.is_recovered)
            .field("is_stopping", &self.is_stopping)
            .finish_non_exhaustive()
    }
}

fn status(is_serving: bool) -> ServingStatus {
    if is_serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

impl Readiness {
    /// Not recovered yet; scoring also waits for `registry` to be ready.
    pub fn new(registry: Arc<ModelRegistry>, health: HealthReporter) -> Self {
        Readiness {
            is_recovered: Arc::new(watch::Sender::new(false)),
            is_stopping: Arc::new(AtomicBool::new(false)),
            registry,
            health,
        }
    }

    /// Whether the debtor state has been recovered. Stays true while the
    /// server shuts down, so that open ingest streams drain.
    pub fn is_recovered(&self) -> bool {
        *self.is_recovered.borrow()
    }

    /// Resolves once the debtor state has been recovered.
    pub async fn wait_recovered(&self) {
        let _ = self.is_recovered.subscribe().wait_for(|r| *r).await;
    }

    /// Marks recovery done and reports it.
    pub async fn recovered(&self) {
        self.is_recovered.send_replace(true);
        self.report().await;
    }

    /// Marks the server as shutting down and reports NOT_SERVING.
    pub async fn stopping(&self) {
        self.is_stopping.store(true, Ordering::Release);
        self.report().await;
    }

    /// Publishes every service's status on the health service.
    pub async fn report(&self) {
        let can_ingest = self.is_recovered() && !self.is_stopping.load(Ordering::Acquire);
        let can_score = can_ingest && self.registry.is_ready();
        self.health
            .set_service_status("mora.v1.Ingest", status(can_ingest))
            .await;
        for service in ["", "mora.v1.Scoring"] {
            self.health
                .set_service_status(service, status(can_score))
                .await;
        }
    }
}
