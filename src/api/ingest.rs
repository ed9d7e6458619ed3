//! `mora.v1.Ingest`: batches of events in, one ack per batch out.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use super::ApiError;
use super::convert::{self, RejectedEvent};
use super::error::code_label;
use super::limits::Admission;
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

/// Batches of one stream applied and waiting to be durable: while they wait,
/// the stream goes on applying, so that one fsync covers many batches.
const STREAM_DURABLE_PIPELINE: usize = 64;

/// A batch applied (or refused), with the log position its ack waits for.
type Applying = Result<(IngestAck, Option<Lsn>), ApiError>;

/// The ingest service: validates each event, applies it to the store and,
/// with durability on, logs the batch before acknowledging it.
#[derive(Clone)]
pub struct IngestService {
    store: Arc<Store>,
    config: Arc<IngestConfig>,
    /// Set once recovery has opened the log; never set with durability off.
    journal: Arc<OnceLock<Arc<Journal>>>,
    readiness: Readiness,
    admission: Admission,
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
    /// it is set, answering only while `readiness` says so and as much at
    /// once as `admission` allows.
    pub fn new(
        store: Arc<Store>,
        config: IngestConfig,
        journal: Arc<OnceLock<Arc<Journal>>>,
        readiness: Readiness,
        admission: Admission,
    ) -> Self {
        IngestService {
            store,
            config: Arc::new(config),
            journal,
            readiness,
            admission,
        }
    }

    /// Applies one batch and, with durability on, waits until it is durable:
    /// the returned ack may be sent.
    pub async fn ingest(&self, batch: EventBatch) -> Result<IngestAck, ApiError> {
        let applied = self.apply(batch);
        self.settle(applied).await
    }

    /// The first half of [`IngestService::ingest`]: applies the batch.
    fn apply(&self, batch: EventBatch) -> Applying {
        if !self.readiness.is_recovered() {
            return Err(ApiError::NotReady);
        }
        self.apply_batch(batch)
    }

    /// The second half: waits until the applied batch is durable.
    async fn settle(&self, applied: Applying) -> Result<IngestAck, ApiError> {
        let (ack, lsn) = applied?;
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
                    tally.applied(&event);
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
        tally.record(batch_events, self.store.len(), now);
        tracing::debug!(
            batch_seq,
            accepted = ack.accepted,
            duplicates = ack.duplicates,
            rejected = ack.rejected.len(),
            "Batch applied"
        );
        Ok((ack, lsn))
    }

    /// Settles an applied batch and records the RPC's outcome.
    async fn timed_settle(&self, timer: RpcTimer, applied: Applying) -> Result<IngestAck, Status> {
        let result = self.settle(applied).await.map_err(Status::from);
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
        self.readiness.check_accepting().map_err(Status::from)?;
        // Held by the reader below for as long as the stream stays open.
        let admitted = self.admission.stream().map_err(|error| {
            RpcTimer::start(Method::IngestStream).finish(code_label(error.code()));
            Status::from(error)
        })?;
        let mut inbound = request.into_inner();
        let (acks, outbound) = mpsc::channel(STREAM_ACK_BUFFER);
        let (applied, mut to_settle) = mpsc::channel(STREAM_DURABLE_PIPELINE);

        // Applies batches in arrival order until the stream ends or the
        // server starts shutting down.
        let service = self.clone();
        tokio::spawn(async move {
            let _admitted = admitted;
            loop {
                let batch = tokio::select! {
                    biased;
                    () = service.readiness.wait_stopping() => {
                        let _ = applied.send((None, Err(ApiError::ShuttingDown.into()))).await;
                        break;
                    }
                    batch = inbound.next() => match batch {
                        Some(batch) => batch,
                        None => break,
                    },
                };
                let timer = RpcTimer::start(Method::IngestStream);
                // A broken stream or an oversize batch ends the stream with that
                // status; every batch before it is acknowledged first.
                let applying = match batch {
                    Ok(batch) => Ok(service.apply(batch)),
                    Err(status) => Err(status),
                };
                let is_last = !matches!(applying, Ok(Ok(_)));
                if applied.send((Some(timer), applying)).await.is_err() || is_last {
                    break;
                }
            }
        });

        // Acknowledges them in the same order, each once it is durable.
        let service = self.clone();
        tokio::spawn(async move {
            while let Some((timer, applying)) = to_settle.recv().await {
                let reply = match (timer, applying) {
                    (Some(timer), Ok(applying)) => service.timed_settle(timer, applying).await,
                    (None, Ok(applying)) => service.settle(applying).await.map_err(Status::from),
                    (_, Err(status)) => Err(status),
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
        let timer = RpcTimer::start(Method::IngestSend);
        let admission = self
            .readiness
            .check_accepting()
            .and_then(|()| self.admission.request());
        let _admitted = match admission {
            Ok(admitted) => admitted,
            Err(error) => {
                return self
                    .timed_settle(timer, Err(error))
                    .await
                    .map(Response::new);
            }
        };
        let applied = self.apply(request.into_inner());
        self.timed_settle(timer, applied).await.map(Response::new)
    }
}
