//! One typed configuration, layered: defaults < TOML file < `MORA_*`
//! environment variables < command-line flags.
//!
//! Nested keys are set from the environment with a double underscore, e.g.
//! `MORA_INGEST__MAX_BATCH_EVENTS=5000`. Every error names the field at fault.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::api::auth::AuthConfig;
use crate::api::limits::LimitsConfig;
use crate::durability::{DurabilityConfig, FsyncPolicy};
use crate::events::{EventLimits, SECONDS_PER_DAY};
use crate::scoring::{ContactPlanConfig, ScoringConfig};
use crate::telemetry::LogFormat;

/// The whole configuration of a mora server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// gRPC address.
    pub listen: SocketAddr,
    /// Address of the Prometheus endpoint (`/metrics`).
    pub metrics_listen: SocketAddr,
    /// Directory holding the shipped model files, imported into the model
    /// repository at start and served when no uploaded version is active.
    pub models_dir: PathBuf,
    /// Directory for durable state: the model repository (`models/`) and,
    /// with durability on, the debtor state's log and snapshots (`state/`).
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    /// Longest wait, on shutdown, for requests and connections to finish.
    pub shutdown_grace_secs: u64,
    /// A TOML file of contact rules laid over the shipped presets; the
    /// presets alone when absent.
    pub policy_file: Option<PathBuf>,
    pub ingest: IngestConfig,
    pub state: StateConfig,
    pub durability: DurabilityConfig,
    pub scoring: ScoringConfig,
    pub contact: ContactPlanConfig,
    pub models: ModelsConfig,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
}

/// TLS for the gRPC port (`[tls]`); plain HTTP/2 when no certificate is set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The server's certificate chain, PEM.
    pub cert_file: Option<PathBuf>,
    /// The certificate's private key, PEM.
    pub key_file: Option<PathBuf>,
    /// With it, clients must present a certificate signed by one of these
    /// CAs (mutual TLS), PEM.
    pub client_ca_file: Option<PathBuf>,
    /// With `client_ca_file`, also accept clients without a certificate
    /// (those that present one must still present a valid one).
    pub client_auth_optional: bool,
}

impl TlsConfig {
    /// Whether the gRPC port speaks TLS.
    pub fn is_enabled(&self) -> bool {
        self.cert_file.is_some()
    }
}

/// Model lifecycle settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Largest model file `Models.Upload` accepts, in bytes.
    pub max_upload_bytes: usize,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            max_upload_bytes: 64 << 20,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            models_dir: PathBuf::from("models"),
            data_dir: PathBuf::from("data"),
            log_format: LogFormat::Human,
            shutdown_grace_secs: 10,
            policy_file: None,
            ingest: IngestConfig::default(),
            state: StateConfig::default(),
            durability: DurabilityConfig::default(),
            scoring: ScoringConfig::default(),
            contact: ContactPlanConfig::default(),
            models: ModelsConfig::default(),
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
        }
    }
}

/// Bounds on the debtor state held in memory (`[state]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Most debtors held; events of new debtors beyond it are refused with
    /// `RESOURCE_EXHAUSTED` while known debtors keep updating. 0: no limit.
    pub max_debtors: usize,
    /// Debtors that owe nothing and whose latest event is older than this
    /// many days are evicted; 0 never evicts. Must exceed
    /// `ingest.late_event_horizon_days`, so that any re-sent event of an
    /// evicted debtor is refused as late rather than applied again.
    pub evict_idle_days: u32,
    /// Seconds between sweeps over all debtors, which evict idle debtors
    /// (when `evict_idle_days` is set) and count promises for the metrics.
    pub sweep_interval_secs: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            max_debtors: 0,
            evict_idle_days: 0,
            sweep_interval_secs: 60,
        }
    }
}

impl StateConfig {
    /// The debtor limit as the store takes it.
    pub fn max_debtors(&self) -> usize {
        if self.max_debtors == 0 {
            usize::MAX
        } else {
            self.max_debtors
        }
    }
}

/// Ingest settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Most events in one batch; a larger batch is refused whole.
    pub max_batch_events: usize,
    /// Longest accepted id, in bytes.
    pub max_id_len: usize,
    /// How far in the future `occurred_at` may be, in seconds.
    pub max_clock_skew_secs: i64,
    /// Events whose `occurred_at` is more than this many days before the
    /// server's clock are refused as late; 0 accepts any age. With a horizon,
    /// event ids are remembered for about as long and then forgotten, which
    /// bounds the memory spent on spotting duplicates.
    pub late_event_horizon_days: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        let limits = EventLimits::default();
        IngestConfig {
            max_batch_events: 10_000,
            max_id_len: limits.max_id_len,
            max_clock_skew_secs: limits.max_clock_skew_secs,
            late_event_horizon_days: 0,
        }
    }
}

impl IngestConfig {
    /// How long event ids are remembered in each dedup epoch, in seconds
    /// (0: forever).
    pub fn dedup_epoch_secs(&self) -> i64 {
        crate::durability::dedup_epoch_secs(
            i64::from(self.late_event_horizon_days) * SECONDS_PER_DAY,
            self.max_clock_skew_secs,
        )
    }

    /// The per-event limits.
    pub fn limits(&self) -> EventLimits {
        EventLimits {
            max_id_len: self.max_id_len,
            max_clock_skew_secs: self.max_clock_skew_secs,
            late_horizon_secs: i64::from(self.late_event_horizon_days) * SECONDS_PER_DAY,
        }
    }
}

/// Values given as command-line flags; `None` leaves the lower layers' value.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl From<figment::Error> for ConfigError {
    fn from(error: figment::Error) -> Self {
        // figment names the key and the layer it came from.
        let messages: Vec<String> = error.into_iter().map(|e| e.to_string()).collect();
        ConfigError::Invalid(messages.join("; "))
    }
}

impl Config {
    /// Builds the configuration from its layers, then checks it.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        Config::load_from(file, overrides, Env::prefixed("MORA_").split("__"))
    }

    fn load_from(
        file: Option<&Path>,
        overrides: &Overrides,
        env: Env,
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::MissingFile(path.to_owned()));
            }
            figment = figment.merge(Toml::file(path));
        }
        // MORA_CONFIG names the file; it is not a setting.
        let config: Config = figment
            .merge(env.ignore(&["config"]))
            .merge(Serialized::defaults(overrides))
            .extract()?;
        config.check()?;
        Ok(config)
    }

    /// Checks values that types alone cannot.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid =
            |field: &str, reason: String| Err(ConfigError::Invalid(format!("{field}: {reason}")));
        let scoring = &self.scoring;
        if !(0.0..=1.0).contains(&scoring.low_risk_min_p_pay) {
            return invalid(
                "scoring.low_risk_min_p_pay",
                format!("must be within [0, 1], got {}", scoring.low_risk_min_p_pay),
            );
        }
        if !(0.0..=scoring.low_risk_min_p_pay).contains(&scoring.high_risk_max_p_pay) {
            return invalid(
                "scoring.high_risk_max_p_pay",
                format!(
                    "must be within [0, scoring.low_risk_min_p_pay = {}], got {}",
                    scoring.low_risk_min_p_pay, scoring.high_risk_max_p_pay
                ),
            );
        }
        if !(0.0..=1.0).contains(&scoring.shadow_fraction) {
            return invalid(
                "scoring.shadow_fraction",
                format!("must be within [0, 1], got {}", scoring.shadow_fraction),
            );
        }
        if self.models.max_upload_bytes == 0 {
            return invalid("models.max_upload_bytes", "must be at least 1".into());
        }
        if scoring.max_batch_debtors == 0 {
            return invalid("scoring.max_batch_debtors", "must be at least 1".into());
        }
        let contact = &self.contact;
        if contact.max_slots == 0 || contact.default_slots > contact.max_slots {
            return invalid(
                "contact.default_slots",
                format!(
                    "must be within [1, contact.max_slots = {}], got {}",
                    contact.max_slots, contact.default_slots
                ),
            );
        }
        if contact.horizon_hours < 1 || contact.lookahead_days < 1 {
            return invalid(
                "contact.horizon_hours",
                "contact.horizon_hours and contact.lookahead_days must be at least 1".into(),
            );
        }
        if contact.prior_attempts.is_nan() || contact.prior_attempts <= 0.0 {
            return invalid(
                "contact.prior_attempts",
                format!("must be greater than 0, got {}", contact.prior_attempts),
            );
        }
        if self.ingest.max_batch_events == 0 {
            return invalid("ingest.max_batch_events", "must be at least 1".into());
        }
        if self.ingest.max_id_len == 0 {
            return invalid("ingest.max_id_len", "must be at least 1".into());
        }
        if self.ingest.max_clock_skew_secs < 0 {
            return invalid("ingest.max_clock_skew_secs", "must be 0 or more".into());
        }
        let (horizon, idle) = (
            self.ingest.late_event_horizon_days,
            self.state.evict_idle_days,
        );
        if idle > 0 && (horizon == 0 || idle <= horizon) {
            return invalid(
                "state.evict_idle_days",
                format!(
                    "must exceed ingest.late_event_horizon_days (> 0), so that a re-sent event \
                     of an evicted debtor is refused as late; got {idle} with a horizon of {horizon}"
                ),
            );
        }
        if self.state.sweep_interval_secs == 0 {
            return invalid("state.sweep_interval_secs", "must be at least 1".into());
        }
        let tls = &self.tls;
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            return invalid(
                "tls.key_file",
                "tls.cert_file and tls.key_file go together: give both or neither".into(),
            );
        }
        if tls.client_ca_file.is_some() && !tls.is_enabled() {
            return invalid(
                "tls.client_ca_file",
                "client certificates need TLS: set tls.cert_file and tls.key_file too".into(),
            );
        }
        self.auth.check().map_err(ConfigError::Invalid)?;
        self.limits.check().map_err(ConfigError::Invalid)?;
        let durability = &self.durability;
        if durability.fsync == FsyncPolicy::Interval && durability.fsync_interval_ms == 0 {
            return invalid("durability.fsync_interval_ms", "must be at least 1".into());
        }
        if durability.segment_bytes < 4096 {
            return invalid(
                "durability.segment_bytes",
                format!("must be at least 4096, got {}", durability.segment_bytes),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Env {
        Env::prefixed("MORA_TEST_UNSET_PREFIX_").split("__")
    }

    #[test]
    fn defaults_are_valid_and_local() {
        let config = Config::load_from(None, &Overrides::default(), no_env()).unwrap();
        assert_eq!(config, Config::default());
        assert!(config.listen.ip().is_loopback());
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test harness signature
    fn layers_apply_in_order_and_errors_name_the_field() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "mora.toml",
                "listen = \"127.0.0.1:6000\"\n[ingest]\nmax_batch_events = 50\n",
            )?;
            jail.set_env("MORA_INGEST__MAX_BATCH_EVENTS", "70");
            jail.set_env("MORA_LISTEN", "127.0.0.1:6001");
            let overrides = Overrides {
                listen: Some("127.0.0.1:6002".parse().unwrap()),
                ..Overrides::default()
            };
            let config = Config::load(Some(Path::new("mora.toml")), &overrides).unwrap();
            assert_eq!(config.ingest.max_batch_events, 70);
            assert_eq!(config.listen.port(), 6002);

            jail.set_env("MORA_INGEST__MAX_BATCH_EVENTS", "many");
            let err = Config::load(None, &Overrides::default())
                .unwrap_err()
                .to_string();
            // figment reports environment keys in their upper-case spelling.
            assert!(
                err.to_lowercase().contains("ingest.max_batch_events"),
                "{err}"
            );

            jail.set_env("MORA_INGEST__MAX_BATCH_EVENTS", "10");
            jail.create_file("bad.toml", "[scoring]\nhigh_risk_max_p_pay = 0.9\n")?;
            let err = Config::load(Some(Path::new("bad.toml")), &Overrides::default()).unwrap_err();
            assert!(
                err.to_string().contains("scoring.high_risk_max_p_pay"),
                "{err}"
            );

            jail.create_file("evict.toml", "[state]\nevict_idle_days = 30\n")?;
            let err =
                Config::load(Some(Path::new("evict.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("state.evict_idle_days"), "{err}");

            jail.create_file("typo.toml", "[scoring]\nmax_batch = 3\n")?;
            let err =
                Config::load(Some(Path::new("typo.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("max_batch"), "{err}");

            let err =
                Config::load(Some(Path::new("absent.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("absent.toml"), "{err}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test harness signature
    fn tokens_come_from_a_file_or_the_environment_and_tls_files_go_together() {
        figment::Jail::expect_with(|jail| {
            let digest = crate::api::auth::token_sha256("t");
            jail.create_file(
                "auth.toml",
                &format!(
                    "[auth]\nenabled = true\n[[auth.tokens]]\nname = \"ops\"\n\
                     sha256 = \"{digest}\"\nroles = [\"admin\", \"score\"]\n"
                ),
            )?;
            let config = Config::load(Some(Path::new("auth.toml")), &Overrides::default()).unwrap();
            assert!(config.auth.enabled);
            assert_eq!(config.auth.tokens[0].roles.len(), 2);

            jail.set_env("MORA_AUTH__ENABLED", "true");
            jail.set_env(
                "MORA_AUTH__TOKENS",
                format!(r#"[{{name="platform", sha256="{digest}", roles=["ingest"]}}]"#),
            );
            let config = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(config.auth.tokens[0].name, "platform");
            assert_eq!(
                config.auth.tokens[0].roles,
                vec![crate::api::auth::Role::Ingest]
            );

            jail.set_env("MORA_AUTH__TOKENS", "[]");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("auth.tokens"), "{err}");
            jail.set_env("MORA_AUTH__ENABLED", "false");

            jail.set_env("MORA_TLS__CERT_FILE", "server.pem");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("tls.key_file"), "{err}");
            Ok(())
        });
    }
}
