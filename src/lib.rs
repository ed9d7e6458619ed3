//! mora: real-time risk scoring for debt collection.
//!
//! Events stream in through `api`, are validated in `events` and folded into
//! per-debtor `state`; `scoring` turns state into `features`, runs `models`,
//! and answers. Data flows one way: api → scoring → (features, models) →
//! state → events. `train` and `sim` build models offline from the same
//! feature code the server runs.

pub mod allocator;
pub mod api;
pub mod cli;
pub mod config;
pub mod durability;
pub mod events;
pub mod features;
pub mod models;
pub mod policy;
pub mod scoring;
pub mod server;
pub mod sim;
pub mod state;
pub mod telemetry;
pub mod train;
