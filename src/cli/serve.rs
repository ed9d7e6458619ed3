//! `mora serve`: loads the configuration, starts the server and stops it on
//! SIGINT or SIGTERM.

use anyhow::Context;

use super::{LogFormatArg, ServeArgs};
use crate::config::{Config, Overrides};
use crate::telemetry::{self, LogFormat};

pub(super) fn serve(args: ServeArgs) -> anyhow::Result<()> {
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
        let server = crate::server::start(config).await?;
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
