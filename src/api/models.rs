//! `mora.v1.Models`: upload, list, activate and roll back models. Handlers
//! check the request, then hand over to the model repository on the blocking
//! pool (validation and fsync are not async work).

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};

use super::error::{ApiError, finish};
use super::proto::{
    ActivateRequest, ListModelsRequest, ListModelsResponse, ModelChunk, ModelInfo, RollbackRequest,
    model_chunk::Part, models_server::Models,
};

use super::readiness::Readiness;
use crate::models::ModelKind;
use crate::models::repository::{
    LifecycleError, ModelRepository, Role, UploadHeader, VersionInfo, check_sha256, check_version,
};
use crate::telemetry::{Method, RpcTimer};

/// The model lifecycle service.
#[derive(Clone)]
pub struct ModelsService {
    repository: Arc<ModelRepository>,
    readiness: Readiness,
}

impl ModelsService {
    /// A service over `repository`; `readiness` reports health again after
    /// every change of the serving models.
    pub fn new(repository: Arc<ModelRepository>, readiness: Readiness) -> Self {
        ModelsService {
            repository,
            readiness,
        }
    }

    async fn report_health(&self) {
        self.readiness.report().await;
    }
}

fn kind(field: &str, name: &str) -> Result<ModelKind, ApiError> {
    ModelKind::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = ModelKind::ALL.iter().map(|k| k.as_str()).collect();
        ApiError::field(
            field,
            format!("unknown model kind {name:?} (one of {})", known.join(", ")),
        )
    })
}

/// Who asked, for the activation log line: the peer's address until
/// authentication names a caller.
fn caller<T>(request: &Request<T>) -> String {
    request
        .remote_addr()
        .map_or_else(|| "unknown peer".to_owned(), |a| a.to_string())
}

fn to_proto(info: VersionInfo) -> ModelInfo {
    let timestamp = |t: chrono::DateTime<chrono::Utc>| {
        Some(pbjson_types::Timestamp {
            seconds: t.timestamp(),
            nanos: t.timestamp_subsec_nanos() as i32,
        })
    };
    ModelInfo {
        kind: info.kind.as_str().to_owned(),
        version: info.version,
        active: info.active,
        shadow: info.shadow,
        created_at: timestamp(info.record.created_at),
        uploaded_at: timestamp(info.record.uploaded_at),
        algorithm: info.record.algorithm,
        metrics: info.record.metrics.into_iter().collect(),
        sha256: info.record.sha256,
        size_bytes: info.record.size_bytes,
    }
}

/// Runs repository work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| Err(ApiError::internal(error)))
}

/// Reads the header that opens an upload stream.
async fn receive_header(stream: &mut Streaming<ModelChunk>) -> Result<UploadHeader, ApiError> {
    let first = stream
        .message()
        .await
        .map_err(|s| ApiError::field("header", s.message().to_owned()))?;
    let Some(ModelChunk {
        part: Some(Part::Header(header)),
    }) = first
    else {
        return Err(LifecycleError::Header("the first message must be the header".into()).into());
    };
    let kind = kind("header.kind", &header.kind)?;
    check_version(&header.version)?;
    check_sha256(&header.sha256)?;
    let role = match (header.activate, header.shadow) {
        (true, true) => {
            return Err(
                LifecycleError::Header("activate and shadow may not both be set".into()).into(),
            );
        }
        (true, false) => Some(Role::Active),
        (false, true) => Some(Role::Shadow),
        (false, false) => None,
    };
    Ok(UploadHeader {
        kind,
        version: header.version,
        sha256: header.sha256.to_ascii_lowercase(),
        role,
    })
}

/// Reads the rest of an upload stream: at most `limit` bytes of data.
async fn receive_data(
    stream: &mut Streaming<ModelChunk>,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|s| ApiError::field("data", s.message().to_owned()))?
    {
        match chunk.part {
            Some(Part::Data(data)) => {
                if bytes.len() + data.len() > limit {
                    return Err(LifecycleError::Size { limit }.into());
                }
                bytes.extend_from_slice(&data);
            }
            Some(Part::Header(_)) => {
                return Err(LifecycleError::Header("a second header".into()).into());
            }
            None => {}
        }
    }
    Ok(bytes)
}

/// Counts an upload refused before the repository saw it.
fn record_refused(kind: &'static str, error: &ApiError) {
    let check = match error {
        ApiError::Lifecycle(e) => e.check(),
        _ => "header",
    };
    crate::telemetry::record_model_upload(kind, check);
}

#[tonic::async_trait]
impl Models for ModelsService {
    async fn upload(
        &self,
        request: Request<Streaming<ModelChunk>>,
    ) -> Result<Response<ModelInfo>, Status> {
        let timer = RpcTimer::start(Method::ModelsUpload);
        let by = caller(&request);
        let mut stream = request.into_inner();
        let repository = self.repository.clone();
        let result = async {
            let header = receive_header(&mut stream)
                .await
                .inspect_err(|e| record_refused("unknown", e))?;
            let bytes = receive_data(&mut stream, repository.max_upload_bytes())
                .await
                .inspect_err(|e| record_refused(header.kind.as_str(), e))?;
            blocking(move || Ok(to_proto(repository.upload(&header, &bytes, &by)?))).await
        }
        .await;
        self.report_health().await;
        finish(timer, result)
    }

    async fn list(
        &self,
        request: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        let timer = RpcTimer::start(Method::ModelsList);
        let ListModelsRequest { kind: name } = request.into_inner();
        let result = (|| {
            let wanted = match name.as_str() {
                "" => None,
                name => Some(kind("kind", name)?),
            };
            let models = self.repository.list(wanted);
            Ok(ListModelsResponse {
                models: models.into_iter().map(to_proto).collect(),
            })
        })();
        finish(timer, result)
    }

    async fn activate(
        &self,
        request: Request<ActivateRequest>,
    ) -> Result<Response<ModelInfo>, Status> {
        let timer = RpcTimer::start(Method::ModelsActivate);
        let by = caller(&request);
        let ActivateRequest {
            kind: name,
            version,
            shadow,
        } = request.into_inner();
        let repository = self.repository.clone();
        let result = blocking(move || {
            let kind = kind("kind", &name)?;
            let role = if shadow { Role::Shadow } else { Role::Active };
            let version = (!version.is_empty()).then_some(version.as_str());
            Ok(to_proto(repository.assign(kind, version, role, &by)?))
        })
        .await;
        self.report_health().await;
        finish(timer, result)
    }

    async fn rollback(
        &self,
        request: Request<RollbackRequest>,
    ) -> Result<Response<ModelInfo>, Status> {
        let timer = RpcTimer::start(Method::ModelsRollback);
        let by = caller(&request);
        let RollbackRequest { kind: name } = request.into_inner();
        let repository = self.repository.clone();
        let result = blocking(move || {
            let kind = kind("kind", &name)?;
            Ok(to_proto(repository.rollback(kind, &by)?))
        })
        .await;
        self.report_health().await;
        finish(timer, result)
    }
}
