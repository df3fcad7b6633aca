//! `aichemy serve`: the Trino-protocol server on the configured lakehouse.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use aichemy_config::Config;
use aichemy_engine::Lakehouse;
use clap::Args;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (server.bind).
    #[arg(long)]
    bind: Option<String>,
    /// Port of the HTTP listener (server.http_port).
    #[arg(long)]
    http_port: Option<u16>,
}

pub async fn run(mut config: Config, args: ServeArgs) -> ExitCode {
    if let Some(bind) = args.bind {
        config.server.bind = bind;
    }
    if let Some(port) = args.http_port {
        config.server.http_port = port;
    }
    let addr: SocketAddr =
        match format!("{}:{}", config.server.bind, config.server.http_port).parse() {
            Ok(addr) => addr,
            Err(e) => {
                eprintln!("invalid server address: {e}");
                return ExitCode::from(2);
            }
        };
    let lakehouse = match Lakehouse::open(&config).await {
        Ok(lakehouse) => lakehouse,
        Err(e) => {
            eprintln!("cannot open the lakehouse: {}", e.full_message());
            return ExitCode::FAILURE;
        }
    };
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    match aichemy_server::serve(lakehouse, addr, grace, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
