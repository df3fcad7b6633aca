//! `aichemy`: the lakehouse in one binary. This file only parses arguments and wires the
//! library crates together; see ARCHITECTURE.md for the map.
#![forbid(unsafe_code)]

mod metastore;
mod output;
mod pipeline;
mod serve;
mod shell;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use aichemy_config::Config;

#[derive(Parser)]
#[command(name = "aichemy", version, about = "A data lakehouse in one binary")]
struct Cli {
    /// Configuration file (TOML). Environment variables AICHEMY_<SECTION>__<KEY> override it.
    #[arg(long, global = true, env = "AICHEMY_CONFIG")]
    config: Option<PathBuf>,
    /// Warehouse folder or URL (default ./aichemy-data).
    #[arg(long, global = true)]
    warehouse: Option<String>,
    /// Folder of Trino catalog files (`sales.properties` with connector.name=postgresql)
    /// to serve as catalogs (catalog_dir).
    #[arg(long, global = true)]
    catalog_dir: Option<PathBuf>,
    /// Log lines as text, or as JSON objects with their spans' fields (query id, user,
    /// pipeline run and step) for log collectors.
    #[arg(long, global = true, env = "AICHEMY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// SQL on the embedded lakehouse: an interactive shell, or -e / -f to run and exit.
    Sql(shell::SqlArgs),
    /// The Trino-protocol server for the Trino CLI, the python client, JDBC tools and dbt.
    Serve(serve::ServeArgs),
    /// Users who sign in with a password: add, passwd, remove, list, import.
    User(user::UserArgs),
    /// Applies the metastore's schema migrations (serve and sql also apply them on start).
    Migrate,
    /// The whole metastore as one JSON document: export, import (SQLite <-> PostgreSQL, backups).
    Metastore(metastore::MetastoreArgs),
    /// Pipelines of SQL steps: list, run, backfill, history, deploy (a folder of .sql files).
    Pipeline(pipeline::PipelineArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // rustls is built with both of its crypto providers (by different dependencies), so
    // clients that take the process's default (sqlx's TLS to PostgreSQL) need one named;
    // the HTTPS server names the same one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // The Delta kernel logs every not-yet-created table as an error; the failures that
    // matter reach the user as statement errors anyway. The server also says where it
    // listens and which certificate it serves.
    let default_filter = match cli.command {
        Command::Serve(_) => {
            "warn,aichemy=info,aichemy_server=info,aichemy_engine::pipeline=info,buoyant_kernel=off"
        }
        _ => "warn,buoyant_kernel=off",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AICHEMY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
    // A panic is the error of the statement that hit it (the engine and the server catch
    // it); here it is logged once, as one line, with a backtrace only when RUST_BACKTRACE
    // asks for one, instead of the default report on standard error.
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::capture();
        match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => {
                tracing::error!(%info, %backtrace, "panic")
            }
            _ => tracing::error!(%info, "panic"),
        }
    }));
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(warehouse) = cli.warehouse {
        config.warehouse = warehouse;
    }
    if let Some(dir) = cli.catalog_dir {
        config.catalog_dir = Some(dir);
    }
    // Queries run on this runtime's threads (with stacks deep enough for any statement the
    // engine accepts); DataFusion splits each into as many partitions.
    // The server runs twice as many: a query splits into `execution.threads` partitions,
    // so one busy query leaves workers free for the short queries beside it.
    let workers = match cli.command {
        Command::Serve(_) => 2 * config.execution.threads(),
        _ => config.execution.threads(),
    };
    let runtime = match aichemy_engine::execution::query_runtime(workers, "aichemy-query") {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        // On a worker thread, so that its queries use exactly the configured threads.
        Command::Sql(args) => runtime.block_on(async {
            aichemy_task::spawn("sql shell", shell::run(config, args))
                .await
                .unwrap_or(ExitCode::FAILURE)
        }),
        // The protocol is served by a runtime of its own; the queries run on `runtime`.
        Command::Serve(args) => {
            // Deep stacks here too: a result nested hundreds of levels deep is encoded
            // as JSON, recursively, where it is served.
            let http = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(serve::HTTP_THREADS)
                .thread_name("aichemy-http")
                .thread_stack_size(aichemy_engine::execution::QUERY_THREAD_STACK_BYTES)
                .enable_all()
                .build()
            {
                Ok(http) => http,
                Err(e) => {
                    eprintln!("cannot start: {e}");
                    return ExitCode::FAILURE;
                }
            };
            // Every log line of the server names it (as its metrics and history do).
            let port = args.http_port(&config);
            let node = tracing::info_span!("node", node = %serve::node_name(port));
            let served = serve::run(config, args, runtime.handle().clone());
            let code = http.block_on(tracing::Instrument::instrument(served, node));
            // A query still computing after the grace period must not hold the exit.
            runtime.shutdown_background();
            http.shutdown_background();
            code
        }
        Command::Pipeline(args) => runtime.block_on(async {
            aichemy_task::spawn("pipeline command", pipeline::run(config, args))
                .await
                .unwrap_or(ExitCode::FAILURE)
        }),
        Command::Migrate => runtime.block_on(metastore::migrate(config)),
        Command::Metastore(args) => runtime.block_on(metastore::run(config, args)),
        Command::User(args) => user::run(&config, args, &runtime),
    }
}
