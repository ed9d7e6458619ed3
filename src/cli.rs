//! The `mora` command line: its arguments and the commands they run. Each
//! command hands over to the library (server, simulator, trainer, model
//! client); this module only adds what a terminal needs — progress bars,
//! messages, exit codes.

mod models;
mod serve;
mod simulate;
mod token;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::train::{Algorithm, BoostConfig, TrainConfig};

/// Real-time risk scoring for debt collection.
#[derive(Debug, Parser)]
#[command(name = "mora", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC and Prometheus metrics.
    Serve(ServeArgs),
    /// Generate a synthetic portfolio as an event file (and its hidden traits).
    Simulate(SimulateArgs),
    /// Train a model from event files or a simulated portfolio and write its
    /// model file.
    Train(TrainArgs),
    /// Upload a model file to a running server (validated there before it is
    /// stored).
    Upload(UploadArgs),
    /// List, activate or roll back the models stored on a running server.
    Models(ModelsArgs),
    /// Make a new access token and print it with the `[[auth.tokens]]` entry
    /// that accepts it (the entry holds only the token's SHA-256).
    Token(TokenArgs),
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Who will hold the token (logged when a call of theirs is refused).
    #[arg(long)]
    pub name: String,
    /// What the token allows: ingest, score, admin (comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    pub roles: Vec<RoleArg>,
    /// Read an existing token from standard input instead of making one.
    #[arg(long)]
    pub stdin: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Ingest,
    Score,
    Admin,
}

#[derive(Debug, clap::Args)]
pub struct ServerArg {
    /// The server's gRPC address.
    #[arg(
        long,
        global = true,
        env = "MORA_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// Bearer token, when the server requires one (prefer the environment:
    /// command lines are visible to other users).
    #[arg(long, global = true, env = "MORA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) that signed the server's certificate, for
    /// https:// addresses; the public web roots when absent.
    #[arg(long, global = true, env = "MORA_TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate (PEM), for servers that require one.
    #[arg(
        long,
        global = true,
        env = "MORA_TLS_CERT_FILE",
        requires = "tls_key_file"
    )]
    pub tls_cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long,
        global = true,
        env = "MORA_TLS_KEY_FILE",
        requires = "tls_cert_file"
    )]
    pub tls_key_file: Option<PathBuf>,
}

impl ServerArg {
    /// The server as the client library takes it.
    pub fn remote(&self) -> crate::api::client::Remote {
        crate::api::client::Remote {
            address: self.server.clone(),
            token: self.token.clone(),
            ca_file: self.tls_ca_file.clone(),
            cert_file: self.tls_cert_file.clone(),
            key_file: self.tls_key_file.clone(),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct UploadArgs {
    #[command(flatten)]
    pub server: ServerArg,
    /// Make the version active once it is accepted.
    #[arg(long, conflicts_with = "shadow")]
    pub activate: bool,
    /// Make the version the shadow model once it is accepted: scored beside
    /// the active one, never answered with.
    #[arg(long)]
    pub shadow: bool,
    /// The model file, as `mora train` wrote it.
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    #[command(flatten)]
    pub server: ServerArg,
    #[command(subcommand)]
    pub action: ModelsAction,
}

#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// The stored versions, newest upload first.
    List {
        /// Only this kind.
        #[arg(long)]
        kind: Option<String>,
    },
    /// Make a stored version the active one of its kind.
    Activate {
        kind: String,
        version: String,
        /// Make it the shadow model instead.
        #[arg(long)]
        shadow: bool,
    },
    /// Make the previously active version active again.
    Rollback { kind: String },
    /// Stop scoring a shadow model beside the active one.
    ClearShadow { kind: String },
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML config file (also MORA_CONFIG).
    #[arg(long, env = "MORA_CONFIG")]
    pub config: Option<PathBuf>,
    /// gRPC address [default: 127.0.0.1:50051].
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Prometheus address [default: 127.0.0.1:9464].
    #[arg(long)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Directory of model files to load [default: models].
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
    /// Directory for durable state [default: data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Log format [default: human].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Payment,
    Contact,
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Debtors in the portfolio.
    #[arg(long, default_value_t = 10_000)]
    pub debtors: usize,
    /// Months of history.
    #[arg(long, default_value_t = 6)]
    pub months: u32,
    /// Seed: the same seed gives the same file.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Event file to write (JSON Lines; gzip when the name ends in .gz).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write each debtor's hidden traits here, one JSON object per line.
    #[arg(long)]
    pub traits: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["events", "synthetic_debtors"])))]
pub struct TrainArgs {
    /// Which model to train.
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// Event files to train on (JSON Lines, gzip when named .gz); repeatable.
    #[arg(long)]
    pub events: Vec<PathBuf>,
    /// Instead of event files: simulate a portfolio of this many debtors.
    #[arg(long)]
    pub synthetic_debtors: Option<usize>,
    /// Months of simulated history (with --synthetic-debtors only).
    #[arg(long, default_value_t = 6, conflicts_with = "events")]
    pub months: u32,
    /// Seed of the simulation (with --synthetic-debtors only).
    #[arg(long, default_value_t = 42, conflicts_with = "events")]
    pub seed: u64,
    /// Labels file (CSV: debtor_id,decision_at,paid,split) giving the decision
    /// points, their outcomes and the train/test split, instead of taking
    /// decision points from the history and splitting them by time.
    #[arg(long, requires = "events")]
    pub labels: Option<PathBuf>,
    /// Days within which a payment counts for the label.
    #[arg(long, default_value_t = 30)]
    pub horizon_days: i64,
    /// The estimator of a payment model [default: boosted-trees]; contact
    /// models are always logistic regressions.
    #[arg(long, value_enum)]
    pub algorithm: Option<Algorithm>,
    /// For contact models: the outcomes that count as reaching the debtor on
    /// a channel, e.g. `call=answered,right_party`; repeatable, one per
    /// channel. Channels not given keep the default (call: right_party; sms
    /// and whatsapp: clicked, replied; email: opened, clicked, replied).
    #[arg(long, value_name = "CHANNEL=OUTCOME,...")]
    pub success: Vec<String>,
    /// L2 penalty of the logistic regression.
    #[arg(long, default_value_t = TrainConfig::default().l2_penalty)]
    pub l2_penalty: f64,
    /// Number of boosted trees.
    #[arg(long, default_value_t = BoostConfig::default().trees)]
    pub trees: usize,
    /// Learning rate (shrinkage) of the boosted trees.
    #[arg(long, default_value_t = BoostConfig::default().learning_rate)]
    pub learning_rate: f32,
    /// Depth limit of each boosted tree.
    #[arg(long, default_value_t = BoostConfig::default().max_depth)]
    pub max_depth: usize,
    /// Smallest sum of hessians a leaf of a boosted tree may hold.
    #[arg(long, default_value_t = BoostConfig::default().min_leaf_weight)]
    pub min_leaf_weight: f32,
    /// L2 penalty on the leaf values of boosted trees.
    #[arg(long, default_value_t = BoostConfig::default().l2)]
    pub leaf_l2: f32,
    /// Share of training rows each boosted tree is grown on.
    #[arg(long, default_value_t = BoostConfig::default().subsample)]
    pub subsample: f32,
    /// Share of features each boosted tree may split on.
    #[arg(long, default_value_t = BoostConfig::default().colsample)]
    pub colsample: f64,
    /// Version string written into the model file [default: derived from the input].
    #[arg(long)]
    pub version: Option<String>,
    /// Where to write the model file [default: models/<kind>.json].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the command `cli` asks for; failures are printed to stderr.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(args) => serve::serve(args),
        Command::Simulate(args) => simulate::simulate(args),
        Command::Train(args) => train::train(args),
        Command::Upload(args) => block_on(models::upload(args)),
        Command::Models(args) => block_on(models::models(args)),
        Command::Token(args) => token::token(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mora: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn block_on(work: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()
        .context("starting the async runtime")?
        .block_on(work)
}

/// A progress bar on stderr; hidden when stderr is not a terminal.
fn progress_bar(total: usize, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    let template =
        format!("{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {unit} ({{eta}} left)");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A spinner on stderr for work without a known length, e.g. fitting.
fn spinner(message: String) -> ProgressBar {
    eprintln!("{message}…");
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{elapsed_precise} {spinner} {msg}") {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
