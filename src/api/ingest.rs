//! `mora.v1.Ingest`: batches of events in, one ack per batch out.

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use super::ApiError;
use super::convert::{self, RejectedEvent};
use super::error::code_label;
use super::proto::{EventBatch, IngestAck, Rejection, ingest_server::Ingest};
use crate::config::IngestConfig;
use crate::events::UnixTime;
use crate::state::{Applied, Store};
use crate::telemetry::{BatchTally, Method, RpcTimer};

/// Acks in flight per stream before the stream stops reading batches.
const STREAM_ACK_BUFFER: usize = 16;

/// The ingest service: validates each event and applies it to the store.
#[derive(Debug, Clone)]
pub struct IngestService {
    store: Arc<Store>,
    config: Arc<IngestConfig>,
}

fn rejection(index: usize, event_id: String, field: String, reason: String) -> Rejection {
    Rejection {
        index: index as u32,
        event_id,
        field,
        reason,
    }
}

impl IngestService {
    /// A service applying events to `store`.
    pub fn new(store: Arc<Store>, config: IngestConfig) -> Self {
        IngestService {
            store,
            config: Arc::new(config),
        }
    }

    /// Applies one batch: every valid event is applied, every invalid one is
    /// rejected alone with its reason. Only an oversize batch fails whole.
    pub fn apply_batch(&self, batch: EventBatch) -> Result<IngestAck, ApiError> {
        let EventBatch { batch_seq, events } = batch;
        if events.len() > self.config.max_batch_events {
            return Err(ApiError::BatchTooLarge {
                batch_seq,
                events: events.len(),
                limit: self.config.max_batch_events,
            });
        }

        let limits = self.config.limits();
        let now = UnixTime::now();
        let batch_events = events.len();
        let mut ack = IngestAck {
            batch_seq,
            ..IngestAck::default()
        };
        let mut tally = BatchTally::default();
        for (index, message) in events.into_iter().enumerate() {
            let kind = message.kind.as_ref().map(convert::kind_name);
            let event = match convert::event(message, &limits, now) {
                Ok(event) => event,
                Err(RejectedEvent { event_id, error }) => {
                    tally.rejected(kind);
                    let reason = error.to_string();
                    ack.rejected
                        .push(rejection(index, event_id, error.field, reason));
                    continue;
                }
            };
            let name = event.kind.name();
            match self.store.apply(&event) {
                Ok(Applied::New) => {
                    tally.applied(name);
                    ack.accepted += 1;
                }
                Ok(Applied::Duplicate) => {
                    tally.duplicate(name);
                    ack.duplicates += 1;
                }
                Err(error) => {
                    tally.rejected(Some(name));
                    let reason = error.to_string();
                    ack.rejected
                        .push(rejection(index, event.event_id, error.field(), reason));
                }
            }
        }
        tally.record(batch_events, self.store.len());
        tracing::debug!(
            batch_seq,
            accepted = ack.accepted,
            duplicates = ack.duplicates,
            rejected = ack.rejected.len(),
            "Batch applied"
        );
        Ok(ack)
    }

    fn timed_apply(&self, method: Method, batch: EventBatch) -> Result<IngestAck, Status> {
        let timer = RpcTimer::start(method);
        let result = self.apply_batch(batch).map_err(Status::from);
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
                let reply = batch.and_then(|b| service.timed_apply(Method::IngestStream, b));
                let is_last = reply.is_err();
                if acks.send(reply).await.is_err() || is_last {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(outbound))))
    }

    async fn send(&self, request: Request<EventBatch>) -> Result<Response<IngestAck>, Status> {
        self.timed_apply(Method::IngestSend, request.into_inner())
            .map(Response::new)
    }
}
