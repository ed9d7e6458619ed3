//! Errors of the gRPC layer and their one mapping to `tonic::Status`.
//!
//! The match below is exhaustive on purpose: a new error variant anywhere in
//! the chain must be given a status here before the code builds.

use tonic::{Code, Status};

use crate::scoring::ScoringError;

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
            ApiError::Scoring(error) => match error {
                ScoringError::NoPaymentModel => Code::Unavailable,
                ScoringError::TooManyDebtors { .. } => Code::InvalidArgument,
            },
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        if let ApiError::Internal { detail } = &error {
            tracing::error!(detail = %detail, "Internal error");
        }
        Status::new(error.code(), error.to_string())
    }
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
