//! The caller's side of the model lifecycle: what `mora upload` and
//! `mora models` run against a server. A model file is announced with its
//! kind, version and SHA-256, then sent in chunks over `mora.v1.Models/Upload`.
//! Every answer comes back as text for people.

use std::fmt::Write as _;

use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::auth::BearerToken;
use super::proto::{
    ActivateRequest, ListModelsRequest, ModelChunk, ModelInfo, RollbackRequest, UploadHeader,
    model_chunk::Part, models_client::ModelsClient,
};
use crate::models::repository::{Role, sha256_hex};

/// A change to, or a question about, the models stored on a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelsAction {
    /// The stored versions (of one kind, or all).
    List { kind: Option<String> },
    /// Make a stored version active, or the shadow.
    Activate {
        kind: String,
        version: String,
        role: Role,
    },
    /// Make the previously active version active again.
    Rollback { kind: String },
    /// Stop scoring a shadow model beside the active one.
    ClearShadow { kind: String },
}

/// Bytes per upload message: well under gRPC's default 4 MiB message limit.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Where a server is and how to prove who we are to it.
#[derive(Debug, Clone, Default)]
pub struct Remote {
    /// `http://host:port`, or `https://host:port` for TLS.
    pub address: String,
    /// Sent as `authorization: Bearer <token>` when the server requires one.
    pub token: Option<String>,
    /// The CA that signed the server's certificate, PEM; the public web
    /// roots when absent.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key, PEM, for servers that require one.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// A models client carrying the caller's token.
pub type Models = ModelsClient<InterceptedService<Channel, BearerToken>>;

impl Remote {
    /// Connects, over TLS for `https://` addresses.
    pub async fn connect(&self) -> anyhow::Result<Channel> {
        let address = &self.address;
        let mut endpoint = Endpoint::from_shared(address.clone()).with_context(|| {
            format!("{address:?} is not a server address (http://host:port or https://host:port)")
        })?;
        if address.starts_with("https://") {
            endpoint = endpoint
                .tls_config(self.tls()?)
                .context("configuring TLS")?;
        } else if self.ca_file.is_some() || self.cert_file.is_some() {
            anyhow::bail!("TLS files were given but {address} is not an https:// address");
        }
        endpoint
            .connect()
            .await
            .with_context(|| format!("connecting to {address}"))
    }

    fn tls(&self) -> anyhow::Result<ClientTlsConfig> {
        let read = |what: &str, path: &Path| {
            std::fs::read(path).with_context(|| format!("reading the {what} {}", path.display()))
        };
        let mut tls = ClientTlsConfig::new();
        tls = match &self.ca_file {
            Some(ca) => tls.ca_certificate(Certificate::from_pem(read("CA file", ca)?)),
            None => tls.with_webpki_roots(),
        };
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Ok(tls.identity(Identity::from_pem(
                read("client certificate", cert)?,
                read("client key", key)?,
            ))),
            (None, None) => Ok(tls),
            _ => anyhow::bail!("a client certificate needs both its certificate and key files"),
        }
    }

    /// A models client on a new connection.
    pub async fn models(&self) -> anyhow::Result<Models> {
        let token = BearerToken::new(self.token.as_deref()).map_err(anyhow::Error::msg)?;
        Ok(ModelsClient::with_interceptor(self.connect().await?, token))
    }
}

/// The header announcing `bytes`: kind and version as the model file states
/// them, and the content's SHA-256.
pub fn header_for(bytes: &[u8], role: Option<Role>) -> anyhow::Result<UploadHeader> {
    /// The fields the header repeats; the server checks the rest.
    #[derive(Deserialize)]
    struct Identity {
        kind: String,
        version: String,
    }
    let identity: Identity = serde_json::from_slice(bytes)
        .context("the file is not a model file (no kind and version)")?;
    Ok(UploadHeader {
        kind: identity.kind,
        version: identity.version,
        activate: role == Some(Role::Active),
        shadow: role == Some(Role::Shadow),
        sha256: sha256_hex(bytes),
    })
}

/// The upload stream: `header`, then `bytes` in chunks of [`CHUNK_BYTES`].
pub fn chunks(header: UploadHeader, bytes: &[u8]) -> Vec<ModelChunk> {
    std::iter::once(Part::Header(header))
        .chain(
            bytes
                .chunks(CHUNK_BYTES)
                .map(|chunk| Part::Data(chunk.to_vec())),
        )
        .map(|part| ModelChunk { part: Some(part) })
        .collect()
}

/// Uploads the model file `bytes` to the server `remote`, giving it
/// `role` once accepted; returns the stored version, described.
pub async fn upload(remote: &Remote, bytes: &[u8], role: Option<Role>) -> anyhow::Result<String> {
    let header = header_for(bytes, role)?;
    let mut models = remote.models().await?;
    let info = models
        .upload(tokio_stream::iter(chunks(header, bytes)))
        .await
        .map_err(refused)?
        .into_inner();
    Ok(describe(&info))
}

/// Runs `action` against the server `remote`; returns the versions it
/// concerns, described.
pub async fn manage(remote: &Remote, action: ModelsAction) -> anyhow::Result<String> {
    let mut models = remote.models().await?;
    let activate = |kind, version, shadow| ActivateRequest {
        kind,
        version,
        shadow,
    };
    let infos = match action {
        ModelsAction::List { kind } => {
            let request = ListModelsRequest {
                kind: kind.unwrap_or_default(),
            };
            models.list(request).await.map(|r| r.into_inner().models)
        }
        ModelsAction::Activate {
            kind,
            version,
            role,
        } => {
            let request = activate(kind, version, role == Role::Shadow);
            models.activate(request).await.map(|r| vec![r.into_inner()])
        }
        ModelsAction::Rollback { kind } => {
            let request = RollbackRequest { kind };
            models.rollback(request).await.map(|r| vec![r.into_inner()])
        }
        ModelsAction::ClearShadow { kind } => {
            let request = activate(kind, String::new(), true);
            models.activate(request).await.map(|r| vec![r.into_inner()])
        }
    }
    .map_err(refused)?;
    Ok(infos.iter().map(describe).collect())
}

/// A refused call as an error that says what the server said.
fn refused(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(
        "the server refused: {:?}: {}",
        status.code(),
        status.message()
    )
}

/// One line per field of a stored version, for people.
pub fn describe(info: &ModelInfo) -> String {
    let roles = match (info.active, info.shadow) {
        (true, _) => " (active)",
        (_, true) => " (shadow)",
        _ => "",
    };
    let mut text = format!("{} {}{roles}\n", info.kind, info.version);
    let time = |t: &Option<pbjson_types::Timestamp>| {
        t.as_ref()
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32))
            .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
    };
    let _ = writeln!(text, "  algorithm   {}", info.algorithm);
    let _ = writeln!(text, "  trained     {}", time(&info.created_at));
    let _ = writeln!(text, "  uploaded    {}", time(&info.uploaded_at));
    let _ = writeln!(text, "  size        {} bytes", info.size_bytes);
    let _ = writeln!(text, "  sha256      {}", info.sha256);
    let mut metrics: Vec<_> = info.metrics.iter().collect();
    metrics.sort_by(|a, b| a.0.cmp(b.0));
    for (name, value) in metrics {
        let _ = writeln!(text, "  {name:<11} {value:.4}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_the_file_and_its_checksum() {
        let bytes = br#"{"kind": "payment", "version": "v7", "rest": [1, 2]}"#;
        let header = header_for(bytes, Some(Role::Shadow)).unwrap();
        assert_eq!(
            (header.kind.as_str(), header.version.as_str()),
            ("payment", "v7")
        );
        assert!(header.shadow && !header.activate);
        assert_eq!(header.sha256, sha256_hex(bytes));
        assert!(header_for(b"[1, 2]", None).is_err());
    }

    #[test]
    fn chunks_carry_every_byte_in_order() {
        let bytes: Vec<u8> = (0..CHUNK_BYTES * 2 + 10).map(|i| i as u8).collect();
        let header = header_for(br#"{"kind": "payment", "version": "v"}"#, None).unwrap();
        let parts = chunks(header.clone(), &bytes);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0].part, Some(Part::Header(header)));
        let sent: Vec<u8> = parts[1..]
            .iter()
            .flat_map(|c| match &c.part {
                Some(Part::Data(data)) => data.clone(),
                other => panic!("expected data, got {other:?}"),
            })
            .collect();
        assert_eq!(sent, bytes);
    }
}
