//! `mora.v1.Ingest`: batches of events in, one ack per batch out.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use super::ApiError;
use super::convert::{self, RejectedEvent};
use super::error::code_label;
use super::proto::{EventBatch, IngestAck, Rejection, ingest_server::Ingest};
use super::readiness::Readiness;
use crate::config::IngestConfig;
use crate::durability::Journal;
use crate::durability::wal::Lsn;
use crate::events::UnixTime;
use crate::state::{Applied, DedupEpoch, StateError, Store};
use crate::telemetry::{BatchTally, Method, RpcTimer};

/// Acks in flight per stream before the stream stops reading batches.
const STREAM_ACK_BUFFER: usize = 16;

/// The ingest service: validates each event, applies it to the store and,
/// with durability on, logs the batch before acknowledging it.
#[derive(Clone)]
pub struct IngestService {
    store: Arc<Store>,
    config: Arc<IngestConfig>,
    /// Set once recovery has opened the log; never set with durability off.
    journal: Arc<OnceLock<Arc<Journal>>>,
    readiness: Readiness,
}

/// Why the state refused an otherwise valid event, as a gRPC code name.
fn state_code(error: &StateError) -> &'static str {
    match error {
        StateError::CurrencyMismatch { .. } => "FAILED_PRECONDITION",
        StateError::StoreFull { .. } => "RESOURCE_EXHAUSTED",
    }
}

fn rejection(
    index: usize,
    event_id: String,
    field: String,
    reason: String,
    code: &str,
) -> Rejection {
    Rejection {
        index: index as u32,
        event_id,
        field,
        reason,
        code: code.to_owned(),
    }
}

impl IngestService {
    /// A service applying events to `store`, logging them in `journal` once
    /// it is set, and answering only while `readiness` says so.
    pub fn new(
        store: Arc<Store>,
        config: IngestConfig,
        journal: Arc<OnceLock<Arc<Journal>>>,
        readiness: Readiness,
    ) -> Self {
        IngestService {
            store,
            config: Arc::new(config),
            journal,
            readiness,
        }
    }

    /// Applies one batch and, with durability on, waits until it is durable:
    /// the returned ack may be sent.
    pub async fn ingest(&self, batch: EventBatch) -> Result<IngestAck, ApiError> {
        if !self.readiness.is_recovered() {
            return Err(ApiError::NotReady);
        }
        let (ack, lsn) = self.apply_batch(batch)?;
        if let (Some(journal), Some(lsn)) = (self.journal.get(), lsn) {
            journal.wait_durable(lsn).await?;
        }
        Ok(ack)
    }

    /// Applies one batch: every valid event is applied, every invalid one is
    /// rejected alone with its reason. Only an oversize batch fails whole.
    /// Returns the ack and, with durability on, the log position it must
    /// wait for.
    fn apply_batch(&self, batch: EventBatch) -> Result<(IngestAck, Option<Lsn>), ApiError> {
        let EventBatch { batch_seq, events } = batch;
        if events.len() > self.config.max_batch_events {
            return Err(ApiError::BatchTooLarge {
                batch_seq,
                events: events.len(),
                limit: self.config.max_batch_events,
            });
        }

        // Validation needs no lock; applying and logging happen under one.
        let limits = self.config.limits();
        let now = UnixTime::now();
        let batch_events = events.len();
        let converted: Vec<_> = events
            .into_iter()
            .map(|message| {
                let kind = message.kind.as_ref().map(convert::kind_name);
                (kind, convert::event(message, &limits, now))
            })
            .collect();

        let mut ack = IngestAck {
            batch_seq,
            ..IngestAck::default()
        };
        let mut tally = BatchTally::default();
        let journal = self.journal.get();
        let append = journal.map(|j| j.begin());
        let epoch = DedupEpoch::at(now, self.config.dedup_epoch_secs());
        let mut fresh = Vec::with_capacity(if journal.is_some() { batch_events } else { 0 });
        for (index, (kind, converted)) in converted.into_iter().enumerate() {
            let event = match converted {
                Ok(event) => event,
                Err(RejectedEvent { event_id, error }) => {
                    tally.rejected(kind);
                    let code = if error.is_late {
                        "OUT_OF_RANGE"
                    } else {
                        "INVALID_ARGUMENT"
                    };
                    let reason = error.to_string();
                    ack.rejected
                        .push(rejection(index, event_id, error.field, reason, code));
                    continue;
                }
            };
            let name = event.kind.name();
            match self.store.apply_in(&event, epoch) {
                Ok(Applied::New) => {
                    tally.applied(name);
                    ack.accepted += 1;
                    if journal.is_some() {
                        fresh.push(event);
                    }
                }
                Ok(Applied::Duplicate) => {
                    tally.duplicate(name);
                    ack.duplicates += 1;
                }
                Err(error) => {
                    tally.rejected(Some(name));
                    let reason = error.to_string();
                    let code = state_code(&error);
                    ack.rejected.push(rejection(
                        index,
                        event.event_id,
                        error.field(),
                        reason,
                        code,
                    ));
                }
            }
        }
        let lsn = append.map(|a| a.append(now, &fresh)).transpose()?;
        tally.record(batch_events, self.store.len());
        tracing::debug!(
            batch_seq,
            accepted = ack.accepted,
            duplicates = ack.duplicates,
            rejected = ack.rejected.len(),
            "Batch applied"
        );
        Ok((ack, lsn))
    }

    async fn timed_ingest(&self, method: Method, batch: EventBatch) -> Result<IngestAck, Status> {
        let timer = RpcTimer::start(method);
        let result = self.ingest(batch).await.map_err(Status::from);
        timer.finish(
            result
                .as_ref()
                .map_or_else(|s| code_label(s.code()), |_| "ok"),
        );
        result
    }
}

type AckStream = Pin<Box<dyn Stream<Item = Result<IngestAck, Status>> + Send>>;

#[tonic::async_trait]
impl Ingest for IngestService {
    type StreamStream = AckStream;

    async fn stream(
        &self,
        request: Request<Streaming<EventBatch>>,
    ) -> Result<Response<AckStream>, Status> {
        let mut inbound = request.into_inner();
        let (acks, outbound) = mpsc::channel(STREAM_ACK_BUFFER);
        let service = self.clone();
        tokio::spawn(async move {
            while let Some(batch) = inbound.next().await {
                // A broken stream or an oversize batch ends the stream with that
                // status; every batch before it has been acknowledged.
                let reply = match batch {
                    Ok(batch) => service.timed_ingest(Method::IngestStream, batch).await,
                    Err(status) => Err(status),
                };
                let is_last = reply.is_err();
                if acks.send(reply).await.is_err() || is_last {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(outbound))))
    }

    async fn send(&self, request: Request<EventBatch>) -> Result<Response<IngestAck>, Status> {
        self.timed_ingest(Method::IngestSend, request.into_inner())
            .await
            .map(Response::new)
    }
}
