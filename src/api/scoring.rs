//! `mora.v1.Scoring`: scores, batch scores and feature vectors.

use tonic::{Request, Response, Status};

use super::convert;
use super::error::{ApiError, finish};
use super::limits::Admission;
use super::proto::{
    FeatureVector, GetFeaturesRequest, PingRequest, PingResponse, ScoreBatchRequest,
    ScoreBatchResponse, ScoreRequest, ScoreResponse, scoring_server::Scoring,
};
use super::readiness::Readiness;
use crate::events::{EventLimits, UnixTime, validation};
use crate::features::{FEATURE_NAMES, schema_hash};
use crate::scoring::{PlanRequest, Scorer};
use crate::telemetry::{Method, RpcTimer};

/// The scoring service.
#[derive(Debug, Clone)]
pub struct ScoringService {
    scorer: Scorer,
    limits: EventLimits,
    readiness: Readiness,
    admission: Admission,
}

impl ScoringService {
    /// A service answering from `scorer` once `readiness` says the state is
    /// recovered; ids are bounded by `limits`, and requests handled at once
    /// by `admission`.
    pub fn new(
        scorer: Scorer,
        limits: EventLimits,
        readiness: Readiness,
        admission: Admission,
    ) -> Self {
        ScoringService {
            scorer,
            limits,
            readiness,
            admission,
        }
    }

    /// Refuses to answer from a state still being recovered, or once the
    /// server is shutting down.
    fn check_ready(&self) -> Result<(), ApiError> {
        self.readiness.check_accepting()
    }

    fn check_debtor_id(&self, field: &str, id: &str) -> Result<(), ApiError> {
        validation::check_id(field, id, &self.limits)
            .map_err(|e| ApiError::field(e.field, e.reason))
    }
}

fn as_of(at: Option<pbjson_types::Timestamp>) -> Result<UnixTime, ApiError> {
    match convert::seconds("as_of", at) {
        Ok(Some(seconds)) => Ok(UnixTime(seconds)),
        Ok(None) => Ok(UnixTime::now()),
        Err(e) => Err(ApiError::field(e.field, e.reason)),
    }
}

#[tonic::async_trait]
impl Scoring for ScoringService {
    async fn score(
        &self,
        request: Request<ScoreRequest>,
    ) -> Result<Response<ScoreResponse>, Status> {
        let timer = RpcTimer::start(Method::Score);
        let ScoreRequest {
            debtor_id,
            as_of: at,
            include_contact_plan,
            contact_slots,
            explore,
            exploration_seed,
        } = request.into_inner();
        let result = (|| {
            self.check_ready()?;
            let _admitted = self.admission.request()?;
            self.check_debtor_id("debtor_id", &debtor_id)?;
            let plan = include_contact_plan.then(|| PlanRequest {
                slots: match contact_slots {
                    0 => self.scorer.plan_config().default_slots,
                    n => n as usize,
                },
                explore: explore.then(|| exploration_seed.unwrap_or_else(rand::random)),
            });
            let score = self.scorer.score(&debtor_id, as_of(at)?, plan)?;
            Ok(convert::score_response(score))
        })();
        finish(timer, result)
    }

    async fn score_batch(
        &self,
        request: Request<ScoreBatchRequest>,
    ) -> Result<Response<ScoreBatchResponse>, Status> {
        let timer = RpcTimer::start(Method::ScoreBatch);
        let ScoreBatchRequest {
            debtor_ids,
            as_of: at,
        } = request.into_inner();
        let scorer = self.scorer.clone();
        let limits = self.limits;
        let admitted = self.check_ready().and_then(|()| self.admission.request());
        let work = move || {
            let _admitted = admitted?;
            for (i, id) in debtor_ids.iter().enumerate() {
                validation::check_id("debtor_ids", id, &limits)
                    .map_err(|e| ApiError::field(format!("debtor_ids[{i}]"), e.reason))?;
            }
            let scores = scorer.score_batch(&debtor_ids, as_of(at)?)?;
            Ok(ScoreBatchResponse {
                results: scores.into_iter().map(convert::score_response).collect(),
            })
        };
        // A batch of many debtors is CPU work: keep it off the async workers.
        let result = tokio::task::spawn_blocking(work)
            .await
            .unwrap_or_else(|error| Err(ApiError::internal(error)));
        finish(timer, result)
    }

    async fn get_features(
        &self,
        request: Request<GetFeaturesRequest>,
    ) -> Result<Response<FeatureVector>, Status> {
        let timer = RpcTimer::start(Method::GetFeatures);
        let GetFeaturesRequest {
            debtor_id,
            as_of: at,
        } = request.into_inner();
        let result = (|| {
            self.check_ready()?;
            let _admitted = self.admission.request()?;
            self.check_debtor_id("debtor_id", &debtor_id)?;
            let features = self.scorer.features(&debtor_id, as_of(at)?);
            Ok(FeatureVector {
                debtor_id,
                known: features.is_some(),
                schema_hash: schema_hash().to_owned(),
                names: FEATURE_NAMES.iter().map(|n| n.to_string()).collect(),
                values: features.map_or_else(Vec::new, |f| f.values().to_vec()),
            })
        })();
        finish(timer, result)
    }

    async fn ping(&self, _request: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        // Deliberately untimed: it is the floor that Score is measured against.
        Ok(Response::new(PingResponse {}))
    }
}
