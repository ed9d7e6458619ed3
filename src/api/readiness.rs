//! Whether the server can answer yet, and the health service that says so.
//!
//! Ingest is SERVING once recovery has rebuilt the state; scoring (and the
//! server as a whole, `""`) once, in addition, a payment model is loaded.
//! Until then the handlers answer `UNAVAILABLE`. From the start of a shutdown
//! every service reports NOT_SERVING and new requests are refused with
//! `UNAVAILABLE`, while open ingest streams drain.

use std::sync::Arc;

use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use super::ApiError;
use crate::models::ModelRegistry;

/// Shared readiness of the services, reported on `grpc.health.v1.Health`.
#[derive(Clone)]
pub struct Readiness {
    is_recovered: Arc<watch::Sender<bool>>,
    is_stopping: Arc<watch::Sender<bool>>,
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
            is_stopping: Arc::new(watch::Sender::new(false)),
            registry,
            health,
        }
    }

    /// Whether the debtor state has been recovered. Stays true while the
    /// server shuts down, so that open ingest streams drain.
    pub fn is_recovered(&self) -> bool {
        *self.is_recovered.borrow()
    }

    /// Whether new requests are taken: the state is recovered and the server
    /// is not shutting down.
    pub fn is_accepting(&self) -> bool {
        self.is_recovered() && !*self.is_stopping.borrow()
    }

    /// [`Readiness::is_accepting`], as the error a handler returns.
    pub fn check_accepting(&self) -> Result<(), ApiError> {
        if !self.is_recovered() {
            Err(ApiError::NotReady)
        } else if *self.is_stopping.borrow() {
            Err(ApiError::ShuttingDown)
        } else {
            Ok(())
        }
    }

    /// Resolves once the server starts shutting down.
    pub async fn wait_stopping(&self) {
        let _ = self.is_stopping.subscribe().wait_for(|s| *s).await;
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
        self.is_stopping.send_replace(true);
        self.report().await;
    }

    /// Publishes every service's status on the health service.
    pub async fn report(&self) {
        let can_ingest = self.is_accepting();
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
