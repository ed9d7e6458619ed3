//! Errors of the gRPC layer and their one mapping to `tonic::Status`.
//!
//! The match below is exhaustive on purpose: a new error variant anywhere in
//! the chain must be given a status here before the code builds.

use tonic::{Code, Status};

use super::limits::Pool;
use crate::durability::DurabilityError;
use crate::models::repository::LifecycleError;
use crate::scoring::ScoringError;
use crate::telemetry::RpcTimer;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request field is missing or malformed.
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },
    /// A batch has more events than the configured limit.
    #[error("events: batch {batch_seq} has {events} events, more than the limit of {limit}")]
    BatchTooLarge {
        batch_seq: u64,
        events: usize,
        limit: usize,
    },
    #[error(transparent)]
    Scoring(#[from] ScoringError),
    /// A model upload, activation or rollback refused, naming the check.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// The state is still being recovered.
    #[error("not ready: the debtor state is being recovered")]
    NotReady,
    /// The server is shutting down and takes no new requests.
    #[error("shutting down: retry on another server or after the restart")]
    ShuttingDown,
    /// Too much work in flight; the client should retry after a pause.
    #[error(
        "overloaded: {limit} {} already in flight, the limit; retry after {retry_after_ms} ms",
        pool.describe()
    )]
    Overloaded {
        pool: Pool,
        limit: usize,
        retry_after_ms: u64,
    },
    /// The write-ahead log cannot take the batch; it was not acknowledged.
    #[error(transparent)]
    Durability(#[from] DurabilityError),
    /// A bug or a failed task; the detail goes to the log, not the client.
    #[error("internal error")]
    Internal { detail: String },
}

impl ApiError {
    /// An internal failure, described by `detail` for the log.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        ApiError::Internal {
            detail: detail.to_string(),
        }
    }

    /// An error on request field `field`.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The gRPC code this error maps to.
    pub fn code(&self) -> Code {
        match self {
            ApiError::InvalidField { .. } | ApiError::BatchTooLarge { .. } => Code::InvalidArgument,
            ApiError::Internal { .. } => Code::Internal,
            ApiError::NotReady | ApiError::ShuttingDown => Code::Unavailable,
            ApiError::Overloaded { .. } => Code::ResourceExhausted,
            ApiError::Durability(error) => match error {
                DurabilityError::Io(_)
                | DurabilityError::Encode(_)
                | DurabilityError::Locked(_)
                | DurabilityError::Failed => Code::Unavailable,
            },
            ApiError::Scoring(error) => match error {
                ScoringError::NoPaymentModel => Code::Unavailable,
                ScoringError::TooManyDebtors { .. } | ScoringError::TooManySlots { .. } => {
                    Code::InvalidArgument
                }
            },
            ApiError::Lifecycle(error) => match error {
                LifecycleError::Header(_)
                | LifecycleError::Parse(_)
                | LifecycleError::Canary(_) => Code::InvalidArgument,
                LifecycleError::Size { .. } => Code::ResourceExhausted,
                LifecycleError::Checksum { .. } => Code::DataLoss,
                LifecycleError::Schema { .. } | LifecycleError::NoPrevious { .. } => {
                    Code::FailedPrecondition
                }
                LifecycleError::Exists { .. } => Code::AlreadyExists,
                LifecycleError::UnknownVersion { .. } => Code::NotFound,
                LifecycleError::Storage(_) => Code::Internal,
            },
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        match &error {
            ApiError::Internal { detail } => tracing::error!(detail = %detail, "Internal error"),
            ApiError::Durability(error) => {
                tracing::error!(%error, "Batch not acknowledged: the write-ahead log failed")
            }
            ApiError::Lifecycle(LifecycleError::Storage(detail)) => {
                tracing::error!(detail = %detail, "Model repository write failed")
            }
            _ => {}
        }
        let mut status = Status::new(error.code(), error.to_string());
        if let ApiError::Overloaded { retry_after_ms, .. } = &error {
            // The pushback gRPC's own retry policies read.
            status.metadata_mut().insert(
                "grpc-retry-pushback-ms",
                retry_after_ms.to_string().parse().expect("digits"),
            );
        }
        status
    }
}

/// Times a handler's body (by `timer`) and maps its error to a status.
pub fn finish<T>(
    timer: RpcTimer,
    result: Result<T, ApiError>,
) -> Result<tonic::Response<T>, Status> {
    let result = result.map_err(Status::from);
    timer.finish(
        result
            .as_ref()
            .map_or_else(|s| code_label(s.code()), |_| "ok"),
    );
    result.map(tonic::Response::new)
}

/// The snake_case name of a gRPC code, for metric labels.
pub fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}
