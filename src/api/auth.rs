//! Who may call what: bearer tokens, each with roles, checked before a
//! request reaches a service.
//!
//! Config files hold only the SHA-256 of each token, so a leaked config does
//! not leak a credential. A presented token is hashed and looked up; the token
//! itself is never stored, logged or echoed in an error.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::telemetry;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Send events (`mora.v1.Ingest`).
    Ingest,
    /// Read scores and features (`mora.v1.Scoring`).
    Score,
    /// Change and list models (`mora.v1.Models`).
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Score => "score",
            Role::Admin => "admin",
        }
    }
}

/// One accepted token, as the config holds it (`[[auth.tokens]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Who holds the token; logged on refusals instead of the token.
    pub name: String,
    /// Lowercase hex SHA-256 of the token (`mora token` prints it).
    pub sha256: String,
    pub roles: Vec<Role>,
}

/// Authentication settings (`[auth]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require a token on every call except health checks. Off, anyone who
    /// reaches the port may do anything: for local development only.
    pub enabled: bool,
    pub tokens: Vec<TokenEntry>,
}

impl AuthConfig {
    /// Checks the entries; errors name the entry and field.
    pub fn check(&self) -> Result<(), String> {
        if self.enabled && self.tokens.is_empty() {
            return Err("auth.tokens: auth is enabled but no token is configured".into());
        }
        let mut seen = HashMap::new();
        for (i, entry) in self.tokens.iter().enumerate() {
            let field = |name: &str| format!("auth.tokens[{i}].{name}");
            if entry.name.trim().is_empty() {
                return Err(format!("{}: must not be empty", field("name")));
            }
            if parse_digest(&entry.sha256).is_none() {
                return Err(format!(
                    "{}: must be 64 hexadecimal digits (the SHA-256 of the token, as `mora token` prints it)",
                    field("sha256")
                ));
            }
            if entry.roles.is_empty() {
                return Err(format!(
                    "{}: give at least one of ingest, score, admin",
                    field("roles")
                ));
            }
            if let Some(first) = seen.insert(entry.sha256.to_ascii_lowercase(), i) {
                return Err(format!(
                    "{}: the same token as auth.tokens[{first}]",
                    field("sha256")
                ));
            }
        }
        Ok(())
    }
}

/// The lowercase hex SHA-256 of `token`, as `[[auth.tokens]] sha256` holds it.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn parse_digest(hex_digest: &str) -> Option<[u8; 32]> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut digest).ok()?;
    Some(digest)
}

/// A token's holder and roles.
#[derive(Debug)]
struct Holder {
    name: String,
    roles: Vec<Role>,
}

/// Checks the bearer token of each request against the configured ones.
#[derive(Debug)]
pub struct Authenticator {
    /// `None`: authentication is off.
    holders: Option<HashMap<[u8; 32], Holder>>,
}

impl Authenticator {
    /// From a checked [`AuthConfig`].
    pub fn new(config: &AuthConfig) -> Self {
        let holders = config.enabled.then(|| {
            config
                .tokens
                .iter()
                .filter_map(|entry| {
                    let holder = Holder {
                        name: entry.name.clone(),
                        roles: entry.roles.clone(),
                    };
                    Some((parse_digest(&entry.sha256)?, holder))
                })
                .collect()
        });
        Authenticator { holders }
    }

    /// Whether every call must carry a token.
    pub fn is_enabled(&self) -> bool {
        self.holders.is_some()
    }

    /// Lets the request through when its token carries `role` (any known
    /// token when `role` is `None`).
    pub fn authorize(&self, metadata: &MetadataMap, role: Option<Role>) -> Result<(), Status> {
        let Some(holders) = &self.holders else {
            return Ok(());
        };
        let refuse = |reason: &'static str, status: Status| {
            telemetry::record_auth_refusal(reason);
            Err(status)
        };
        let Some(token) = bearer(metadata) else {
            return refuse(
                "unauthenticated",
                Status::unauthenticated(
                    "authorization: missing; send the header `authorization: Bearer <token>`",
                ),
            );
        };
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let Some(holder) = holders.get(&digest) else {
            return refuse(
                "unauthenticated",
                Status::unauthenticated("authorization: unknown token"),
            );
        };
        match role {
            Some(role) if !holder.roles.contains(&role) => {
                tracing::warn!(token = %holder.name, role = role.as_str(), "Call refused: role missing");
                refuse(
                    "permission_denied",
                    Status::permission_denied(format!(
                        "token {:?} lacks the role {:?} this service requires",
                        holder.name,
                        role.as_str()
                    )),
                )
            }
            _ => Ok(()),
        }
    }
}

/// The token of an `authorization: Bearer <token>` header.
fn bearer(metadata: &MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The check for one service, as a tonic interceptor.
#[derive(Debug, Clone)]
pub struct Guard {
    authenticator: Arc<Authenticator>,
    role: Option<Role>,
}

impl Guard {
    /// Requires `role` (any known token when `None`).
    pub fn new(authenticator: Arc<Authenticator>, role: Option<Role>) -> Self {
        Guard {
            authenticator,
            role,
        }
    }
}

impl Interceptor for Guard {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.authenticator
            .authorize(request.metadata(), self.role)?;
        Ok(request)
    }
}

/// Adds `authorization: Bearer <token>` to each outgoing request; the
/// caller's side of [`Guard`].
#[derive(Debug, Clone, Default)]
pub struct BearerToken(Option<tonic::metadata::AsciiMetadataValue>);

impl BearerToken {
    /// `None` sends no header.
    pub fn new(token: Option<&str>) -> Result<Self, String> {
        token
            .map(|token| {
                format!("Bearer {token}")
                    .parse()
                    .map_err(|_| "the token has characters a header cannot carry".to_owned())
            })
            .transpose()
            .map(BearerToken)
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AuthConfig {
        AuthConfig {
            enabled: true,
            tokens: vec![
                TokenEntry {
                    name: "platform".into(),
                    sha256: token_sha256("s3cret-ingest"),
                    roles: vec![Role::Ingest],
                },
                TokenEntry {
                    name: "ops".into(),
                    sha256: token_sha256("s3cret-admin").to_uppercase(),
                    roles: vec![Role::Admin, Role::Score],
                },
            ],
        }
    }

    fn with_header(value: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert("authorization", value.parse().unwrap());
        metadata
    }

    #[test]
    fn tokens_are_matched_by_hash_and_roles_enforced() {
        let auth = Authenticator::new(&config());
        let ingest = with_header("Bearer s3cret-ingest");
        assert!(auth.authorize(&ingest, Some(Role::Ingest)).is_ok());
        assert!(auth.authorize(&ingest, None).is_ok());
        let denied = auth.authorize(&ingest, Some(Role::Score)).unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(denied.message().contains("platform"));
        assert!(!denied.message().contains("s3cret"));

        let admin = with_header("bearer  s3cret-admin ");
        assert!(auth.authorize(&admin, Some(Role::Admin)).is_ok());
        assert!(auth.authorize(&admin, Some(Role::Score)).is_ok());
    }

    #[test]
    fn missing_malformed_and_unknown_tokens_are_unauthenticated() {
        let auth = Authenticator::new(&config());
        for metadata in [
            MetadataMap::new(),
            with_header("s3cret-ingest"),
            with_header("Basic s3cret-ingest"),
            with_header("Bearer "),
            with_header("Bearer s3cret-other"),
        ] {
            let status = auth.authorize(&metadata, Some(Role::Ingest)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{metadata:?}");
        }
    }

    #[test]
    fn off_lets_everything_through() {
        let auth = Authenticator::new(&AuthConfig::default());
        assert!(!auth.is_enabled());
        assert!(
            auth.authorize(&MetadataMap::new(), Some(Role::Admin))
                .is_ok()
        );
    }

    #[test]
    fn config_errors_name_the_entry_and_field() {
        let mut bad = config();
        bad.tokens[1].sha256 = "abc".into();
        assert!(
            bad.check()
                .unwrap_err()
                .starts_with("auth.tokens[1].sha256")
        );
        let mut bad = config();
        bad.tokens[0].roles.clear();
        assert!(bad.check().unwrap_err().starts_with("auth.tokens[0].roles"));
        let mut bad = config();
        bad.tokens[1].sha256 = bad.tokens[0].sha256.clone();
        assert!(bad.check().unwrap_err().contains("auth.tokens[0]"));
        let empty = AuthConfig {
            enabled: true,
            tokens: vec![],
        };
        assert!(empty.check().unwrap_err().starts_with("auth.tokens"));
        assert!(config().check().is_ok());
    }
}
