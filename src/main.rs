//! The `mora` command line: parses arguments and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use mora::config::{Config, Overrides};
use mora::sim::SimConfig;
use mora::telemetry::{self, LogFormat};
use mora::train::{self, TrainConfig};

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
    /// Train a model from a simulated portfolio and write its model file.
    Train(TrainArgs),
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
struct TrainArgs {
    /// Which model to train.
    #[arg(long, value_enum)]
    kind: KindArg,
    /// Debtors in the simulated portfolio.
    #[arg(long, default_value_t = 20_000)]
    synthetic_debtors: usize,
    /// Months of simulated history.
    #[arg(long, default_value_t = 6)]
    months: u32,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Days within which a payment counts for the label.
    #[arg(long, default_value_t = 30)]
    horizon_days: i64,
    /// L2 penalty of the logistic regression.
    #[arg(long, default_value_t = TrainConfig::default().l2_penalty)]
    l2_penalty: f64,
    /// Version string written into the model file [default: payment-sim-s<SEED>].
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
        Command::Train(args) => train(args),
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

fn train(args: TrainArgs) -> anyhow::Result<()> {
    let KindArg::Payment = args.kind;
    let sim = SimConfig {
        debtors: args.synthetic_debtors,
        months: args.months,
        seed: args.seed,
        ..SimConfig::default()
    };
    let mut config = TrainConfig {
        version: args
            .version
            .unwrap_or_else(|| format!("payment-sim-s{}", args.seed)),
        source: format!(
            "mora simulator: {} debtors, {} months, seed {}",
            sim.debtors, sim.months, sim.seed
        ),
        created_at: chrono::Utc::now(),
        l2_penalty: args.l2_penalty,
        ..TrainConfig::default()
    };
    config.points.horizon_days = args.horizon_days;

    eprintln!(
        "Simulating {} debtors over {} months (seed {})…",
        sim.debtors, sim.months, sim.seed
    );
    let (file, evaluation) = train::train_on_simulation(&sim, &config, |_, _| {})?;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.out, file.to_json() + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "Wrote {} ({} training / {} test decisions). Held-out: AUC {:.3}, Brier {:.3}, log loss {:.3}, base rate {:.3}",
        args.out.display(),
        file.training.train_rows,
        file.training.test_rows,
        evaluation.auc,
        evaluation.brier,
        evaluation.log_loss,
        evaluation.base_rate,
    );
    Ok(())
}
