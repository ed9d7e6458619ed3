//! Bounds on what one client can make the server do: message sizes,
//! deadlines, streams, and how many requests are handled at once.
//!
//! Beyond the in-flight limit a request is refused at once with
//! `RESOURCE_EXHAUSTED` and a retry hint, rather than queued: queued requests
//! would all wait longer, and the ones admitted would miss their deadlines
//! too. Refusing keeps the latency of admitted requests bounded.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ApiError;
use crate::telemetry;

/// Request limits (`[limits]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request message accepted, in bytes (an event batch, a score
    /// batch, one chunk of a model upload).
    pub max_message_bytes: usize,
    /// Most unary requests (Score, ScoreBatch, GetFeatures, Ingest.Send)
    /// handled at once; more are refused with `RESOURCE_EXHAUSTED`.
    pub max_in_flight: usize,
    /// Most open `Ingest.Stream` calls; more are refused the same way.
    pub max_ingest_streams: usize,
    /// Most concurrent HTTP/2 streams (calls) on one connection.
    pub max_streams_per_connection: u32,
    /// Longest a unary request may take when the client sets no shorter
    /// deadline; a client's `grpc-timeout` is honoured either way.
    pub request_timeout_secs: u64,
    /// The wait suggested to a refused client, sent as
    /// `grpc-retry-pushback-ms`.
    pub retry_after_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: 4 << 20,
            max_in_flight: 256,
            max_ingest_streams: 64,
            max_streams_per_connection: 256,
            request_timeout_secs: 30,
            retry_after_ms: 100,
        }
    }
}

impl LimitsConfig {
    /// Checks the values; errors name the field.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("limits.max_message_bytes", self.max_message_bytes as u64),
            ("limits.max_in_flight", self.max_in_flight as u64),
            ("limits.max_ingest_streams", self.max_ingest_streams as u64),
            (
                "limits.max_streams_per_connection",
                u64::from(self.max_streams_per_connection),
            ),
            ("limits.request_timeout_secs", self.request_timeout_secs),
        ];
        match positive.iter().find(|(_, value)| *value == 0) {
            Some((field, _)) => Err(format!("{field}: must be at least 1")),
            None if self.max_in_flight > Semaphore::MAX_PERMITS
                || self.max_ingest_streams > Semaphore::MAX_PERMITS =>
            {
                Err("limits: max_in_flight and max_ingest_streams must be below 2^61".into())
            }
            None => Ok(()),
        }
    }

    /// The server-side bound on a unary request.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

/// What a refused request was refused for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    Requests,
    IngestStreams,
}

impl Pool {
    pub fn as_str(self) -> &'static str {
        match self {
            Pool::Requests => "requests",
            Pool::IngestStreams => "ingest_streams",
        }
    }

    /// For people.
    pub fn describe(self) -> &'static str {
        match self {
            Pool::Requests => "requests",
            Pool::IngestStreams => "ingest streams",
        }
    }
}

/// Admits requests up to the configured limits, refusing the rest at once.
#[derive(Debug, Clone)]
pub struct Admission {
    requests: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    request_limit: usize,
    stream_limit: usize,
    retry_after_ms: u64,
}

/// Held while an admitted request runs; dropping it admits the next.
#[derive(Debug)]
pub struct Admitted(#[allow(dead_code)] OwnedSemaphorePermit);

impl Admission {
    pub fn new(config: &LimitsConfig) -> Self {
        Admission {
            requests: Arc::new(Semaphore::new(config.max_in_flight)),
            streams: Arc::new(Semaphore::new(config.max_ingest_streams)),
            request_limit: config.max_in_flight,
            stream_limit: config.max_ingest_streams,
            retry_after_ms: config.retry_after_ms,
        }
    }

    /// Admits one unary request, or refuses it with a retry hint.
    pub fn request(&self) -> Result<Admitted, ApiError> {
        self.admit(Pool::Requests, &self.requests, self.request_limit)
    }

    /// Admits one ingest stream for as long as it stays open.
    pub fn stream(&self) -> Result<Admitted, ApiError> {
        self.admit(Pool::IngestStreams, &self.streams, self.stream_limit)
    }

    fn admit(
        &self,
        pool: Pool,
        permits: &Arc<Semaphore>,
        limit: usize,
    ) -> Result<Admitted, ApiError> {
        match permits.clone().try_acquire_owned() {
            Ok(permit) => Ok(Admitted(permit)),
            Err(_) => {
                telemetry::record_shed(pool.as_str());
                Err(ApiError::Overloaded {
                    pool,
                    limit,
                    retry_after_ms: self.retry_after_ms,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_the_limit_requests_are_refused_until_one_finishes() {
        let admission = Admission::new(&LimitsConfig {
            max_in_flight: 2,
            retry_after_ms: 250,
            ..LimitsConfig::default()
        });
        let first = admission.request().unwrap();
        let _second = admission.request().unwrap();
        let refused = admission.request().unwrap_err();
        assert!(matches!(
            refused,
            ApiError::Overloaded {
                pool: Pool::Requests,
                limit: 2,
                retry_after_ms: 250
            }
        ));
        // Streams are counted apart from unary requests.
        assert!(admission.stream().is_ok());
        drop(first);
        assert!(admission.request().is_ok());
    }

    #[test]
    fn zero_limits_are_refused_by_name() {
        let config = LimitsConfig {
            max_ingest_streams: 0,
            ..LimitsConfig::default()
        };
        assert_eq!(
            config.check().unwrap_err(),
            "limits.max_ingest_streams: must be at least 1"
        );
        assert!(LimitsConfig::default().check().is_ok());
    }
}
