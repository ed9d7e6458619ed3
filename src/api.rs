//! The gRPC surface: tonic services, proto ↔ domain conversion, and the one
//! place where errors become gRPC statuses.
//!
//! This is the only module that sees protobuf or tonic types. Handlers read as
//! validate → convert → delegate → map, and log per request at debug level only.

pub mod auth;
pub mod client;
pub mod convert;
pub mod error;
pub mod event_file;
pub mod ingest;
pub mod limits;
pub mod models;
pub mod readiness;
pub mod scoring;

pub use error::ApiError;

/// Code generated from `proto/mora/v1`, including clients for tests and tools.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("mora.v1");
    include!(concat!(env!("OUT_DIR"), "/mora.v1.serde.rs"));

    /// The encoded descriptors of mora's API, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("mora_descriptor");
}
