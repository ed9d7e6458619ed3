//! The `mora` command line: parses arguments and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use mora::api::client::{self, ModelsAction as Action};
use mora::api::event_file::{self, EventWriter};
use mora::config::{Config, Overrides};
use mora::events::{Event, EventLimits};
use mora::models::file::{LabelDefinition, SplitRecord};
use mora::models::repository::Role;
use mora::sim::SimConfig;
use mora::telemetry::{self, LogFormat};
use mora::train::{self, Algorithm, BoostConfig, TrainConfig};

/// Real-time risk scoring for debt collection.
#[derive(Debug, Parser)]
#[command(name = "mora", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
}

#[derive(Debug, clap::Args)]
struct ServerArg {
    /// The server's gRPC address.
    #[arg(
        long,
        global = true,
        env = "MORA_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,
}

#[derive(Debug, clap::Args)]
struct UploadArgs {
    #[command(flatten)]
    server: ServerArg,
    /// Make the version active once it is accepted.
    #[arg(long, conflicts_with = "shadow")]
    activate: bool,
    /// Make the version the shadow model once it is accepted: scored beside
    /// the active one, never answered with.
    #[arg(long)]
    shadow: bool,
    /// The model file, as `mora train` wrote it.
    file: PathBuf,
}

#[derive(Debug, clap::Args)]
struct ModelsArgs {
    #[command(flatten)]
    server: ServerArg,
    #[command(subcommand)]
    action: ModelsAction,
}

#[derive(Debug, Subcommand)]
enum ModelsAction {
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
struct ServeArgs {
    /// TOML config file (also MORA_CONFIG).
    #[arg(long, env = "MORA_CONFIG")]
    config: Option<PathBuf>,
    /// gRPC address [default: 127.0.0.1:50051].
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Prometheus address [default: 127.0.0.1:9464].
    #[arg(long)]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Directory of model files to load [default: models].
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// Directory for durable state [default: data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Log format [default: human].
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KindArg {
    Payment,
}

#[derive(Debug, clap::Args)]
struct SimulateArgs {
    /// Debtors in the portfolio.
    #[arg(long, default_value_t = 10_000)]
    debtors: usize,
    /// Months of history.
    #[arg(long, default_value_t = 6)]
    months: u32,
    /// Seed: the same seed gives the same file.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Event file to write (JSON Lines; gzip when the name ends in .gz).
    #[arg(long)]
    out: PathBuf,
    /// Also write each debtor's hidden traits here, one JSON object per line.
    #[arg(long)]
    traits: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["events", "synthetic_debtors"])))]
struct TrainArgs {
    /// Which model to train.
    #[arg(long, value_enum)]
    kind: KindArg,
    /// Event files to train on (JSON Lines, gzip when named .gz); repeatable.
    #[arg(long)]
    events: Vec<PathBuf>,
    /// Instead of event files: simulate a portfolio of this many debtors.
    #[arg(long)]
    synthetic_debtors: Option<usize>,
    /// Months of simulated history (with --synthetic-debtors only).
    #[arg(long, default_value_t = 6, conflicts_with = "events")]
    months: u32,
    /// Seed of the simulation (with --synthetic-debtors only).
    #[arg(long, default_value_t = 42, conflicts_with = "events")]
    seed: u64,
    /// Labels file (CSV: debtor_id,decision_at,paid,split) giving the decision
    /// points, their outcomes and the train/test split, instead of taking
    /// decision points from the history and splitting them by time.
    #[arg(long, requires = "events")]
    labels: Option<PathBuf>,
    /// Days within which a payment counts for the label.
    #[arg(long, default_value_t = 30)]
    horizon_days: i64,
    /// The estimator to fit.
    #[arg(long, value_enum, default_value_t = Algorithm::BoostedTrees)]
    algorithm: Algorithm,
    /// L2 penalty of the logistic regression.
    #[arg(long, default_value_t = TrainConfig::default().l2_penalty)]
    l2_penalty: f64,
    /// Number of boosted trees.
    #[arg(long, default_value_t = BoostConfig::default().trees)]
    trees: usize,
    /// Learning rate (shrinkage) of the boosted trees.
    #[arg(long, default_value_t = BoostConfig::default().learning_rate)]
    learning_rate: f32,
    /// Depth limit of each boosted tree.
    #[arg(long, default_value_t = BoostConfig::default().max_depth)]
    max_depth: usize,
    /// Smallest sum of hessians a leaf of a boosted tree may hold.
    #[arg(long, default_value_t = BoostConfig::default().min_leaf_weight)]
    min_leaf_weight: f32,
    /// L2 penalty on the leaf values of boosted trees.
    #[arg(long, default_value_t = BoostConfig::default().l2)]
    leaf_l2: f32,
    /// Share of training rows each boosted tree is grown on.
    #[arg(long, default_value_t = BoostConfig::default().subsample)]
    subsample: f32,
    /// Share of features each boosted tree may split on.
    #[arg(long, default_value_t = BoostConfig::default().colsample)]
    colsample: f64,
    /// Version string written into the model file [default: derived from the input].
    #[arg(long)]
    version: Option<String>,
    /// Where to write the model file.
    #[arg(long, default_value = "models/payment.json")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Simulate(args) => simulate(args),
        Command::Train(args) => train(args),
        Command::Upload(args) => block_on(upload(args)),
        Command::Models(args) => block_on(models(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mora: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        models_dir: args.models_dir,
        data_dir: args.data_dir,
        log_format: args.log_format.map(|f| match f {
            LogFormatArg::Human => LogFormat::Human,
            LogFormatArg::Json => LogFormat::Json,
        }),
    };
    let config = Config::load(args.config.as_deref(), &overrides)?;
    telemetry::init_tracing(config.log_format);
    tracing::info!(config = ?config, "Starting");

    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let server = mora::server::start(config).await?;
        shutdown_signal().await;
        tracing::info!("Shutting down");
        server.shutdown().await
    })
}

fn block_on(work: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()
        .context("starting the async runtime")?
        .block_on(work)
}

async fn upload(args: UploadArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let role = match (args.activate, args.shadow) {
        (true, _) => Some(Role::Active),
        (_, true) => Some(Role::Shadow),
        _ => None,
    };
    let described = client::upload(&args.server.server, &bytes, role)
        .await
        .with_context(|| format!("uploading {}", args.file.display()))?;
    print!("{described}");
    Ok(())
}

async fn models(args: ModelsArgs) -> anyhow::Result<()> {
    let action = match args.action {
        ModelsAction::List { kind } => Action::List { kind },
        ModelsAction::Activate {
            kind,
            version,
            shadow,
        } => Action::Activate {
            kind,
            version,
            role: if shadow { Role::Shadow } else { Role::Active },
        },
        ModelsAction::Rollback { kind } => Action::Rollback { kind },
        ModelsAction::ClearShadow { kind } => Action::ClearShadow { kind },
    };
    print!("{}", client::manage(&args.server.server, action).await?);
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
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

fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let sim = SimConfig {
        debtors: args.debtors,
        months: args.months,
        seed: args.seed,
        ..SimConfig::default()
    };
    let mut events = EventWriter::create(&args.out)?;
    let mut traits = match &args.traits {
        Some(path) => Some(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };

    let bar = progress_bar(sim.debtors, "debtors");
    let mut written = 0usize;
    for index in 0..sim.debtors {
        let debtor = mora::sim::debtor(&sim, index);
        for event in &debtor.events {
            events.write(event)?;
        }
        written += debtor.events.len();
        if let Some(out) = traits.as_mut() {
            serde_json::to_writer(&mut *out, &debtor)?;
            out.write_all(b"\n")?;
        }
        bar.inc(1);
    }
    events.finish()?;
    if let Some(mut out) = traits {
        out.flush()?;
    }
    bar.finish_and_clear();
    eprintln!(
        "Wrote {written} events for {} debtors to {} in {:.1} s",
        sim.debtors,
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn train(args: TrainArgs) -> anyhow::Result<()> {
    let KindArg::Payment = args.kind;
    let started = Instant::now();

    // The events: from files, or simulated in memory.
    let (mut events, source, default_version) = if let Some(debtors) = args.synthetic_debtors {
        let sim = SimConfig {
            debtors,
            months: args.months,
            seed: args.seed,
            ..SimConfig::default()
        };
        eprintln!(
            "Simulating {debtors} debtors over {} months (seed {})…",
            sim.months, sim.seed
        );
        let events: Vec<Event> = mora::sim::portfolio(&sim)
            .into_iter()
            .flat_map(|d| d.events)
            .collect();
        let source = format!(
            "mora simulator: {debtors} debtors, {} months, seed {}",
            sim.months, sim.seed
        );
        (events, source, format!("payment-sim-s{}", sim.seed))
    } else {
        let mut events = Vec::new();
        for path in &args.events {
            let count = event_file::read(path, &EventLimits::default(), |e| events.push(e))?;
            eprintln!("Read {count} events from {}", path.display());
        }
        let names: Vec<String> = args
            .events
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        (
            events,
            format!("event files: {}", names.join(", ")),
            "payment-events".to_owned(),
        )
    };

    let mut config = TrainConfig {
        version: args.version.unwrap_or(default_version),
        source,
        created_at: chrono::Utc::now(),
        algorithm: args.algorithm,
        l2_penalty: args.l2_penalty,
        boost: BoostConfig {
            trees: args.trees,
            learning_rate: args.learning_rate,
            max_depth: args.max_depth,
            min_leaf_weight: args.min_leaf_weight,
            l2: args.leaf_l2,
            subsample: args.subsample,
            colsample: args.colsample,
            ..BoostConfig::default()
        },
        ..TrainConfig::default()
    };
    config.points.horizon_days = args.horizon_days;

    let bar = progress_bar(events.len(), "events replayed");
    let progress = |done: usize, _| bar.set_position(done as u64);
    let (file, evaluation) = match &args.labels {
        None => {
            let samples = train::decision_points(&mut events, config.points, progress);
            bar.finish_and_clear();
            let split =
                train::split_by_time(&samples, config.test_fraction, config.points.horizon_days);
            let fitting = spinner(format!("Fitting on {} decision points", samples.len()));
            let trained = train::train_payment_model(&split, config.replayed_label(), &config);
            fitting.finish_and_clear();
            trained?
        }
        Some(path) => {
            let labels = train::labels::read_labels(path).map_err(anyhow::Error::msg)?;
            let (train_set, test_set) = train::labelled_points(&mut events, &labels, progress)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            bar.finish_and_clear();
            let fitting = spinner(format!(
                "Fitting on {} labelled decision points ({} held out)",
                labels.len(),
                test_set.len()
            ));
            let split = train::Split {
                train: train_set.iter().collect(),
                test: test_set.iter().collect(),
                record: SplitRecord::Given {
                    description: format!("the split column of {}", path.display()),
                },
            };
            let label = LabelDefinition {
                min_paid_share: None,
                description: format!("paid as given per decision point in {}", path.display()),
            };
            let trained = train::train_payment_model(&split, label, &config);
            fitting.finish_and_clear();
            trained?
        }
    };

    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.out, file.to_json() + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    let stem = args
        .out
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model");
    train::Report::render(&file, &evaluation, stem)
        .write_beside(&args.out)
        .with_context(|| {
            format!(
                "writing the evaluation report beside {}",
                args.out.display()
            )
        })?;
    eprintln!(
        "Wrote {} in {:.1} s ({} training / {} test decisions). Held-out: AUC {:.4}, Brier {:.4}, \
         log loss {:.4}, base rate {:.4}",
        args.out.display(),
        started.elapsed().as_secs_f64(),
        file.training.train_rows,
        file.training.test_rows,
        evaluation.auc,
        evaluation.brier,
        evaluation.log_loss,
        evaluation.base_rate,
    );
    Ok(())
}
