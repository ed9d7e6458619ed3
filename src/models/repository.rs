//! The model repository: every accepted model version, kept on disk, and which
//! version of each kind is active, which one is its shadow, and which were
//! active before. It is the only writer of the [`ModelRegistry`] that scoring
//! reads.
//!
//! Layout under the repository's root (`<data_dir>/models`):
//!
//! ```text
//! payment/roles.json                   active, shadow, previously active
//! payment/<version>/model.json         the model file, byte for byte
//! payment/<version>/upload.json        checksum, size, upload time, summary
//! ```
//!
//! Every file is written to a temporary name, synced, then renamed, so that a
//! crash leaves either the old or the new content. On open, a version whose
//! model no longer matches its checksum or no longer loads is skipped with a
//! warning and never served.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ModelError, ModelFile, ModelKind, ModelRegistry, ServedModel};
use crate::telemetry;

/// How many previously active versions are remembered for rollback.
const ROLLBACK_DEPTH: usize = 20;

/// Why a lifecycle request was refused. Each variant is one check, named by
/// [`LifecycleError::check`].
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("header: {0}")]
    Header(String),
    #[error("size: the model exceeds the limit of {limit} bytes")]
    Size { limit: usize },
    #[error("checksum: the content's SHA-256 is {actual}, the header says {expected}")]
    Checksum { expected: String, actual: String },
    #[error("parse: {0}")]
    Parse(String),
    #[error(
        "schema: feature_schema.hash {model_hash} differs from this server's {kind} feature \
         schema hash {server_hash}; retrain the model with this version of mora"
    )]
    Schema {
        kind: &'static str,
        model_hash: String,
        server_hash: String,
    },
    #[error("canary: {0}")]
    Canary(String),
    #[error("exists: {kind} version {version} is already stored with different content")]
    Exists { kind: &'static str, version: String },
    #[error("not found: no stored {kind} version {version}")]
    UnknownVersion { kind: &'static str, version: String },
    #[error("rollback: no previously active {kind} version to go back to")]
    NoPrevious { kind: &'static str },
    #[error("storage: {0}")]
    Storage(String),
}

impl LifecycleError {
    /// The check that failed, as a closed set of metric label values.
    pub fn check(&self) -> &'static str {
        match self {
            LifecycleError::Header(_) => "header",
            LifecycleError::Size { .. } => "size",
            LifecycleError::Checksum { .. } => "checksum",
            LifecycleError::Parse(_) => "parse",
            LifecycleError::Schema { .. } => "schema",
            LifecycleError::Canary(_) => "canary",
            LifecycleError::Exists { .. } => "exists",
            LifecycleError::UnknownVersion { .. } => "not_found",
            LifecycleError::NoPrevious { .. } => "no_previous",
            LifecycleError::Storage(_) => "storage",
        }
    }
}

fn storage(path: &Path, error: impl std::fmt::Display) -> LifecycleError {
    LifecycleError::Storage(format!("{}: {error}", path.display()))
}

/// What an upload announces before its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadHeader {
    pub kind: ModelKind,
    pub version: String,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    pub role: Option<Role>,
}

/// What a version is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Active,
    Shadow,
}

/// Checks a version name: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with
/// a dot (it names a directory).
pub fn check_version(version: &str) -> Result<(), LifecycleError> {
    let ok = (1..=64).contains(&version.len())
        && !version.starts_with('.')
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(LifecycleError::Header(format!(
            "version {version:?} must be 1 to 64 of A-Z a-z 0-9 . _ - and not start with a dot"
        )))
    }
}

/// Checks a hex SHA-256.
pub fn check_sha256(sha256: &str) -> Result<(), LifecycleError> {
    if sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(LifecycleError::Header(format!(
            "sha256 must be 64 hex digits, got {sha256:?}"
        )))
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A stored version's record (`upload.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub sha256: String,
    pub size_bytes: u64,
    pub uploaded_at: DateTime<Utc>,
    /// From the model file: when it was trained, how, and how well.
    pub created_at: DateTime<Utc>,
    pub algorithm: String,
    pub metrics: BTreeMap<String, f64>,
}

/// A stored version and its roles, as `List` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionInfo {
    pub kind: ModelKind,
    pub version: String,
    pub active: bool,
    pub shadow: bool,
    pub record: VersionRecord,
}

/// Which versions of a kind do what (`roles.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Roles {
    active: Option<String>,
    shadow: Option<String>,
    /// Previously active versions, the most recent last.
    previous: Vec<String>,
}

#[derive(Debug, Default)]
struct KindState {
    roles: Roles,
    versions: BTreeMap<String, VersionRecord>,
}

/// The repository; see the module documentation.
#[derive(Debug)]
pub struct ModelRepository {
    root: PathBuf,
    registry: Arc<ModelRegistry>,
    max_upload_bytes: usize,
    kinds: Mutex<BTreeMap<ModelKind, KindState>>,
}

/// Writes `bytes` to `path` atomically: temporary file, sync, rename, and a
/// sync of the directory so that the rename itself survives a crash.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = dir.join(format!(".{file_name}.tmp"));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Parses and checks model bytes for `kind` and `version`; the model ready to
/// serve, or the check that failed. Uploads and files found on disk pass
/// through here before they can serve.
pub fn validate(
    bytes: &[u8],
    kind: ModelKind,
    version: &str,
) -> Result<(ModelFile, ServedModel), LifecycleError> {
    let file = ModelFile::from_json(bytes, Path::new(version)).map_err(|e| match e {
        ModelError::SchemaMismatch {
            kind,
            model_hash,
            server_hash,
        } => LifecycleError::Schema {
            kind,
            model_hash,
            server_hash,
        },
        other => LifecycleError::Parse(other.to_string()),
    })?;
    if file.kind != kind {
        return Err(LifecycleError::Parse(format!(
            "the file is a {} model, the header says {}",
            file.kind.as_str(),
            kind.as_str()
        )));
    }
    if file.version != version {
        return Err(LifecycleError::Parse(format!(
            "the file's version is {:?}, the header says {version:?}",
            file.version
        )));
    }
    let model = ServedModel::new(file.clone()).map_err(|e| LifecycleError::Parse(e.to_string()))?;
    model.check_canary().map_err(LifecycleError::Canary)?;
    Ok((file, model))
}

impl ModelRepository {
    /// Opens (creating if needed) the repository at `root`, adds the model
    /// files found in `seed_dir` (the models shipped with mora) as versions,
    /// and activates, per kind, the version that was active before, else the
    /// newest previously active one that still loads, else the seed's.
    pub fn open(
        root: &Path,
        seed_dir: &Path,
        registry: Arc<ModelRegistry>,
        max_upload_bytes: usize,
    ) -> anyhow::Result<ModelRepository> {
        use anyhow::Context;
        let repository = ModelRepository {
            root: root.to_owned(),
            registry,
            max_upload_bytes,
            kinds: Mutex::new(BTreeMap::new()),
        };
        for kind in ModelKind::ALL {
            let dir = repository.kind_dir(kind);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating the model repository {}", dir.display()))?;
            let state = repository.scan(kind)?;
            repository.lock().insert(kind, state);
        }
        let seeds = repository.import_seeds(seed_dir)?;
        for kind in ModelKind::ALL {
            repository.restore(kind, seeds.get(&kind).map(String::as_str))?;
        }
        Ok(repository)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<ModelKind, KindState>> {
        // A panic while holding the lock cannot leave the catalogue half
        // changed: every change is computed first and assigned at the end.
        self.kinds.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn kind_dir(&self, kind: ModelKind) -> PathBuf {
        self.root.join(kind.as_str())
    }

    fn version_dir(&self, kind: ModelKind, version: &str) -> PathBuf {
        self.kind_dir(kind).join(version)
    }

    /// The stored versions of `kind` whose model still matches its record.
    fn scan(&self, kind: ModelKind) -> anyhow::Result<KindState> {
        let dir = self.kind_dir(kind);
        let mut state = KindState::default();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.starts_with('.') {
                // An upload interrupted before its rename.
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
                continue;
            }
            if !path.is_dir() {
                continue;
            }
            match self.read_version(kind, name) {
                Ok((record, _)) => {
                    state.versions.insert(name.to_owned(), record);
                }
                Err(error) => tracing::warn!(
                    kind = kind.as_str(),
                    version = name,
                    %error,
                    "Skipping a stored model that does not load"
                ),
            }
        }
        let roles_path = dir.join("roles.json");
        if roles_path.exists() {
            match std::fs::read(&roles_path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Roles>(&b).map_err(|e| e.to_string()))
            {
                Ok(roles) => state.roles = roles,
                Err(error) => tracing::warn!(
                    path = %roles_path.display(),
                    %error,
                    "Ignoring unreadable model roles; falling back to the shipped models"
                ),
            }
        }
        Ok(state)
    }

    /// Reads a stored version: its record, and the model, checked against
    /// the record's checksum and validated as an upload would be.
    fn read_version(
        &self,
        kind: ModelKind,
        version: &str,
    ) -> Result<(VersionRecord, ServedModel), LifecycleError> {
        let dir = self.version_dir(kind, version);
        let record_path = dir.join("upload.json");
        let record: VersionRecord = std::fs::read(&record_path)
            .map_err(|e| storage(&record_path, e))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| storage(&record_path, e)))?;
        let model_path = dir.join("model.json");
        let bytes = std::fs::read(&model_path).map_err(|e| storage(&model_path, e))?;
        let actual = sha256_hex(&bytes);
        if actual != record.sha256 {
            return Err(LifecycleError::Checksum {
                expected: record.sha256,
                actual,
            });
        }
        let (_, model) = validate(&bytes, kind, version)?;
        Ok((record, model))
    }

    /// Stores every model file of `dir` that is not stored yet; returns the
    /// version found for each kind. Two files of one kind are an error.
    fn import_seeds(&self, dir: &Path) -> anyhow::Result<BTreeMap<ModelKind, String>> {
        use anyhow::{Context, bail};
        let mut seeds = BTreeMap::new();
        if !dir.is_dir() {
            tracing::warn!(models_dir = %dir.display(), "Models directory not found");
            return Ok(seeds);
        }
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
        paths.sort();
        for path in paths {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let file = ModelFile::from_json(&bytes, &path)?;
            if let Some(first) = seeds.insert(file.kind, file.version.clone()) {
                bail!(
                    "two {} models in {}: versions {first} and {}; keep one",
                    file.kind.as_str(),
                    dir.display(),
                    file.version
                );
            }
            let header = UploadHeader {
                kind: file.kind,
                version: file.version.clone(),
                sha256: sha256_hex(&bytes),
                role: None,
            };
            match self.store(&header, &bytes) {
                Ok(_) => {}
                Err(LifecycleError::Exists { .. }) => tracing::warn!(
                    path = %path.display(),
                    version = %file.version,
                    "A different model is stored under this shipped model's version; keeping the stored one"
                ),
                Err(error) => {
                    return Err(anyhow::anyhow!("{}: {error}", path.display()));
                }
            }
        }
        Ok(seeds)
    }

    /// Activates, at start, the best loadable version of `kind`.
    fn restore(&self, kind: ModelKind, seed: Option<&str>) -> anyhow::Result<()> {
        let (mut roles, candidates) = {
            let kinds = self.lock();
            let roles = kinds[&kind].roles.clone();
            let mut candidates: Vec<String> = roles.active.iter().cloned().collect();
            candidates.extend(roles.previous.iter().rev().cloned());
            candidates.extend(seed.map(str::to_owned));
            (roles, candidates)
        };
        let mut active = None;
        for version in candidates {
            match self.read_version(kind, &version) {
                Ok((_, model)) => {
                    active = Some((version, model));
                    break;
                }
                Err(error) => tracing::warn!(
                    kind = kind.as_str(),
                    %version,
                    %error,
                    "Cannot activate a stored model"
                ),
            }
        }
        let Some((version, model)) = active else {
            tracing::warn!(
                kind = kind.as_str(),
                "No model to serve; scores unavailable"
            );
            return Ok(());
        };
        if roles.active.as_deref() != Some(version.as_str()) {
            roles.previous.retain(|v| *v != version);
            roles.active = Some(version.clone());
        }
        let shadow = match roles.shadow.clone() {
            Some(shadow) => match self.read_version(kind, &shadow) {
                Ok((_, model)) => Some((shadow, model)),
                Err(error) => {
                    tracing::warn!(kind = kind.as_str(), version = %shadow, %error, "Dropping the shadow model");
                    roles.shadow = None;
                    None
                }
            },
            None => None,
        };
        self.write_roles(kind, &roles)?;
        self.publish(kind, &version, model, Role::Active, "start");
        if let Some((shadow, model)) = shadow {
            self.publish(kind, &shadow, model, Role::Shadow, "start");
        }
        self.lock()
            .get_mut(&kind)
            .expect("every kind is scanned")
            .roles = roles;
        Ok(())
    }

    fn write_roles(&self, kind: ModelKind, roles: &Roles) -> Result<(), LifecycleError> {
        let path = self.kind_dir(kind).join("roles.json");
        let bytes = serde_json::to_vec_pretty(roles).expect("roles serialise");
        write_atomically(&path, &bytes).map_err(|e| storage(&path, e))
    }

    /// Puts `model` in the registry in `role` and logs who asked.
    fn publish(&self, kind: ModelKind, version: &str, model: ServedModel, role: Role, by: &str) {
        let created_at = model.file().created_at.timestamp();
        match role {
            Role::Active => self.registry.set_active(model),
            Role::Shadow => self.registry.set_shadow(model),
        }
        let role_name = match role {
            Role::Active => "active",
            Role::Shadow => "shadow",
        };
        telemetry::record_model_role(kind.as_str(), version, role_name, created_at);
        tracing::info!(
            kind = kind.as_str(),
            version,
            role = role_name,
            by,
            "Model activated"
        );
    }

    /// The largest model an upload may carry, in bytes.
    pub fn max_upload_bytes(&self) -> usize {
        self.max_upload_bytes
    }

    /// Validates and stores an uploaded model, then gives it the header's
    /// role. Uploading the same content under the same version again is not
    /// an error: it returns the stored version (so that a trainer can retry).
    pub fn upload(
        &self,
        header: &UploadHeader,
        bytes: &[u8],
        by: &str,
    ) -> Result<VersionInfo, LifecycleError> {
        let result = self.store(header, bytes).and_then(|_| match header.role {
            Some(role) => self.assign(header.kind, Some(&header.version), role, by),
            None => self.info(header.kind, &header.version),
        });
        let outcome = result.as_ref().map_or_else(|e| e.check(), |_| "accepted");
        telemetry::record_model_upload(header.kind.as_str(), outcome);
        result
    }

    /// Validates and writes a version; does not change any role.
    fn store(&self, header: &UploadHeader, bytes: &[u8]) -> Result<VersionRecord, LifecycleError> {
        check_version(&header.version)?;
        check_sha256(&header.sha256)?;
        if bytes.len() > self.max_upload_bytes {
            return Err(LifecycleError::Size {
                limit: self.max_upload_bytes,
            });
        }
        let actual = sha256_hex(bytes);
        if !actual.eq_ignore_ascii_case(&header.sha256) {
            return Err(LifecycleError::Checksum {
                expected: header.sha256.clone(),
                actual,
            });
        }
        let (file, _) = validate(bytes, header.kind, &header.version)?;

        let mut kinds = self.lock();
        let state = kinds.get_mut(&header.kind).expect("every kind is scanned");
        if let Some(existing) = state.versions.get(&header.version) {
            return if existing.sha256 == actual {
                Ok(existing.clone())
            } else {
                Err(LifecycleError::Exists {
                    kind: header.kind.as_str(),
                    version: header.version.clone(),
                })
            };
        }
        let record = VersionRecord {
            sha256: actual,
            size_bytes: bytes.len() as u64,
            uploaded_at: Utc::now(),
            created_at: file.created_at,
            algorithm: file.model.algorithm().to_owned(),
            metrics: file.metrics,
        };
        // Written under a temporary name and renamed whole, so that a crash
        // never leaves a version directory without both files.
        let final_dir = self.version_dir(header.kind, &header.version);
        let temporary = self
            .kind_dir(header.kind)
            .join(format!(".upload-{}", header.version));
        let write = || -> std::io::Result<()> {
            let _ = std::fs::remove_dir_all(&temporary);
            std::fs::create_dir_all(&temporary)?;
            write_atomically(&temporary.join("model.json"), bytes)?;
            let record_json = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?;
            write_atomically(&temporary.join("upload.json"), &record_json)?;
            std::fs::rename(&temporary, &final_dir)?;
            sync_dir(&self.kind_dir(header.kind))
        };
        write().map_err(|e| storage(&final_dir, e))?;
        state
            .versions
            .insert(header.version.clone(), record.clone());
        Ok(record)
    }

    /// Makes a stored version active (remembering the one it replaces) or the
    /// shadow; `None` with [`Role::Shadow`] removes the shadow.
    pub fn assign(
        &self,
        kind: ModelKind,
        version: Option<&str>,
        role: Role,
        by: &str,
    ) -> Result<VersionInfo, LifecycleError> {
        let Some(version) = version else {
            if role == Role::Active {
                return Err(LifecycleError::Header("version is required".into()));
            }
            return self.clear_shadow(kind, by);
        };
        if !self.lock()[&kind].versions.contains_key(version) {
            return Err(LifecycleError::UnknownVersion {
                kind: kind.as_str(),
                version: version.to_owned(),
            });
        }
        let (_, model) = self.read_version(kind, version)?;
        let mut roles = self.lock()[&kind].roles.clone();
        match role {
            Role::Active => {
                if roles.active.as_deref() != Some(version) {
                    if let Some(old) = roles.active.replace(version.to_owned()) {
                        roles.previous.retain(|v| *v != old);
                        roles.previous.push(old);
                    }
                    let excess = roles.previous.len().saturating_sub(ROLLBACK_DEPTH);
                    roles.previous.drain(..excess);
                }
                if roles.shadow.as_deref() == Some(version) {
                    roles.shadow = None;
                }
            }
            Role::Shadow => roles.shadow = Some(version.to_owned()),
        }
        self.commit(kind, roles, version, model, role, by)
    }

    /// Makes the previously active version of `kind` active again.
    pub fn rollback(&self, kind: ModelKind, by: &str) -> Result<VersionInfo, LifecycleError> {
        let mut roles = self.lock()[&kind].roles.clone();
        let Some(version) = roles.previous.pop() else {
            return Err(LifecycleError::NoPrevious {
                kind: kind.as_str(),
            });
        };
        let (_, model) = self.read_version(kind, &version)?;
        roles.active = Some(version.clone());
        if roles.shadow.as_deref() == Some(version.as_str()) {
            roles.shadow = None;
        }
        self.commit(kind, roles, &version, model, Role::Active, by)
    }

    fn clear_shadow(&self, kind: ModelKind, by: &str) -> Result<VersionInfo, LifecycleError> {
        let mut roles = self.lock()[&kind].roles.clone();
        let Some(old) = roles.shadow.take() else {
            return Err(LifecycleError::Header(format!(
                "{} has no shadow model to remove",
                kind.as_str()
            )));
        };
        self.write_roles(kind, &roles)?;
        self.registry.clear_shadow(kind);
        telemetry::clear_model_role(kind.as_str(), &old, "shadow");
        tracing::info!(kind = kind.as_str(), version = %old, by, "Shadow model removed");
        let info = self.info(kind, &old);
        self.lock().get_mut(&kind).expect("scanned").roles = roles;
        info
    }

    /// Persists `roles`, then serves `model` in `role`: a role change that is
    /// not on disk is never served.
    fn commit(
        &self,
        kind: ModelKind,
        roles: Roles,
        version: &str,
        model: ServedModel,
        role: Role,
        by: &str,
    ) -> Result<VersionInfo, LifecycleError> {
        self.write_roles(kind, &roles)?;
        let old = self.lock()[&kind].roles.clone();
        self.publish(kind, version, model, role, by);
        if let Some(old_active) = old.active.filter(|v| roles.active.as_ref() != Some(v)) {
            telemetry::clear_model_role(kind.as_str(), &old_active, "active");
        }
        if let Some(old_shadow) = old.shadow.filter(|v| roles.shadow.as_ref() != Some(v)) {
            if roles.shadow.is_none() {
                self.registry.clear_shadow(kind);
            }
            telemetry::clear_model_role(kind.as_str(), &old_shadow, "shadow");
        }
        self.lock().get_mut(&kind).expect("scanned").roles = roles;
        self.info(kind, version)
    }

    fn info(&self, kind: ModelKind, version: &str) -> Result<VersionInfo, LifecycleError> {
        let kinds = self.lock();
        let state = &kinds[&kind];
        let record = state
            .versions
            .get(version)
            .ok_or_else(|| LifecycleError::UnknownVersion {
                kind: kind.as_str(),
                version: version.to_owned(),
            })?;
        Ok(VersionInfo {
            kind,
            version: version.to_owned(),
            active: state.roles.active.as_deref() == Some(version),
            shadow: state.roles.shadow.as_deref() == Some(version),
            record: record.clone(),
        })
    }

    /// The stored versions of `kind` (of every kind when `None`), most
    /// recently uploaded first.
    pub fn list(&self, kind: Option<ModelKind>) -> Vec<VersionInfo> {
        let kinds = self.lock();
        let mut all: Vec<VersionInfo> = kinds
            .iter()
            .filter(|(k, _)| kind.is_none_or(|wanted| wanted == **k))
            .flat_map(|(k, state)| {
                state.versions.iter().map(|(version, record)| VersionInfo {
                    kind: *k,
                    version: version.clone(),
                    active: state.roles.active.as_deref() == Some(version.as_str()),
                    shadow: state.roles.shadow.as_deref() == Some(version.as_str()),
                    record: record.clone(),
                })
            })
            .collect();
        all.sort_by(|a, b| {
            (b.record.uploaded_at, &b.version).cmp(&(a.record.uploaded_at, &a.version))
        });
        all
    }
}
