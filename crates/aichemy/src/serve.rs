//! `aichemy serve`: the Trino-protocol server on the configured lakehouse.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aichemy_config::Config;
use aichemy_engine::Lakehouse;
use aichemy_server::tls::CertificateSource;
use aichemy_server::{Admission, MetastoreUsers, PasswordFile, Security, ServeOptions, Users};
use clap::Args;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (server.bind).
    #[arg(long)]
    bind: Option<String>,
    /// Port of the HTTP listener (server.http_port).
    #[arg(long)]
    http_port: Option<u16>,
    /// Port of the HTTPS listener (server.https_port).
    #[arg(long)]
    https_port: Option<u16>,
    /// Trino password file; turns on HTTPS with password authentication
    /// (server.password_file).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// HTTPS certificate, PEM (server.tls_certificate).
    #[arg(long)]
    tls_certificate: Option<PathBuf>,
    /// HTTPS private key, PEM (server.tls_key).
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Trino's access-control.properties (access-control.name=file) or its rules JSON
    /// (server.access_control_config).
    #[arg(long)]
    access_control_config: Option<PathBuf>,
    /// Trino's group-provider.properties (group-provider.name=file)
    /// (server.group_provider_config).
    #[arg(long)]
    group_provider_config: Option<PathBuf>,
}

/// Worker threads of the runtime that answers HTTP (the protocol, the REST catalog and
/// health checks). Queries run on a runtime of their own, so these stay free.
pub const HTTP_THREADS: usize = 2;

impl ServeArgs {
    /// The HTTP port the server takes, which names it (`node_name`).
    pub fn http_port(&self, config: &Config) -> u16 {
        self.http_port.unwrap_or(config.server.http_port)
    }
}

/// Serves until SIGTERM or Ctrl-C, with queries on `query_runtime`.
pub async fn run(
    mut config: Config,
    args: ServeArgs,
    query_runtime: tokio::runtime::Handle,
) -> ExitCode {
    let server = &mut config.server;
    if let Some(bind) = args.bind {
        server.bind = bind;
    }
    server.http_port = args.http_port.unwrap_or(server.http_port);
    server.https_port = args.https_port.unwrap_or(server.https_port);
    server.password_file = args.password_file.or(server.password_file.take());
    server.tls_certificate = args.tls_certificate.or(server.tls_certificate.take());
    server.tls_key = args.tls_key.or(server.tls_key.take());
    server.access_control_config = args
        .access_control_config
        .or(server.access_control_config.take());
    server.group_provider_config = args
        .group_provider_config
        .or(server.group_provider_config.take());
    let mut options = match options(&config, query_runtime) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
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
    if config.server.password_authentication {
        let metastore = lakehouse.metastore();
        match metastore.list_users().await {
            Ok(users) if users.is_empty() => tracing::warn!(
                "password authentication is on but the metastore has no users yet: add one \
                 with `aichemy user add NAME`"
            ),
            Ok(users) => tracing::info!(users = users.len(), "password authentication on HTTPS"),
            Err(e) => {
                eprintln!("cannot read the users of the metastore: {e}");
                return ExitCode::FAILURE;
            }
        }
        options.security.passwords = Some(Users::Metastore(Arc::new(MetastoreUsers::new(
            metastore.clone(),
        ))));
    }
    let grace = options.grace;
    // Jobs of the configuration file: created, or updated when the file changed them.
    for (name, declared) in &config.ingestions {
        let properties = declared
            .properties
            .iter()
            .map(|(key, value)| (key.clone(), value.to_string()))
            .collect();
        match aichemy_engine::declare_ingestion(lakehouse.clone(), name, &declared.into, properties)
            .await
        {
            Ok(done) => {
                tracing::info!(ingestion = %name, "ingestion of the configuration file {done}")
            }
            Err(e) => {
                eprintln!(
                    "ingestion '{name}' of the configuration file: {}",
                    e.message
                );
                return ExitCode::FAILURE;
            }
        }
    }
    // Ingestion jobs run beside the queries, on their runtime, until the server stops.
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let runner = aichemy_ingest::Runner::new(lakehouse.clone(), node_name(config.server.http_port));
    let mut until_stopped = stopped.clone();
    let runner = aichemy_task::spawn_on(
        &options.query_runtime,
        "ingestion-runner",
        runner.run(async move {
            let _ = until_stopped.wait_for(|stop| *stop).await;
        }),
    );
    // So do the pipelines' runs.
    let pipelines = aichemy_engine::pipeline::runner::PipelineRunner::new(
        lakehouse.clone(),
        node_name(config.server.http_port),
    );
    let mut until_stopped = stopped.clone();
    let pipelines = aichemy_task::spawn_on(
        &options.query_runtime,
        "pipeline-runner",
        pipelines.run(async move {
            let _ = until_stopped.wait_for(|stop| *stop).await;
        }),
    );
    let shutdown = async move {
        shutdown_signal(grace).await;
        let _ = stopping.send(true);
    };
    let served = aichemy_server::serve(lakehouse, options, shutdown).await;
    drop(stopped);
    // The jobs give their leases up so that another node takes over at once.
    let _ = tokio::time::timeout(Duration::from_secs(5), runner).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), pipelines).await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// This server's name in ingestion and pipeline leases: host and HTTP port, which one process at a
/// time can listen on; a server started again there takes its jobs back at once.
pub fn node_name(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{port}")
}

/// The listeners and security the configuration asks for.
fn options(config: &Config, query_runtime: tokio::runtime::Handle) -> Result<ServeOptions, String> {
    let server = &config.server;
    let ip: IpAddr = server
        .bind
        .parse()
        .map_err(|e| format!("invalid server.bind '{}': {e}", server.bind))?;
    let passwords = match &server.password_file {
        Some(_) if server.password_authentication => {
            return Err(
                "server.password_authentication (the metastore's users) and \
                 server.password_file are alternatives: set one"
                    .into(),
            )
        }
        Some(path) => {
            let file = PasswordFile::open(path).map_err(|e| e.to_string())?;
            tracing::info!(file = %path.display(), "password authentication on HTTPS");
            Some(Users::File(Arc::new(file)))
        }
        // The metastore's users are set up once the lakehouse is open.
        None => None,
    };
    if server.authentication_enabled() && server.allow_insecure_over_http {
        tracing::warn!(
            "server.allow_insecure_over_http is on: plain HTTP takes any user a client claims, \
             administrators included, without a password; allow it only on a trusted network"
        );
    }
    let https = if server.https_enabled() {
        let source = certificate_source(config)?;
        let certificate = aichemy_server::tls::load(&source).map_err(|e| e.to_string())?;
        tracing::info!(
            certificate = %certificate.certificate_path.display(),
            fingerprint = %certificate.fingerprint,
            generated = certificate.generated,
            "HTTPS certificate (SHA-256 fingerprint)"
        );
        Some((SocketAddr::new(ip, server.https_port), certificate.config))
    } else {
        None
    };
    Ok(ServeOptions {
        http: Some(SocketAddr::new(ip, server.http_port)),
        https,
        security: Security {
            passwords,
            allow_insecure_over_http: server.allow_insecure_over_http,
            failed_logins: Arc::new(aichemy_server::auth::FailedLogins::new(
                server.failed_logins_before_delay,
            )),
            jwt: aichemy_server::jwt::JwtAuthenticator::from_config(server)?.map(Arc::new),
        },
        idle_timeout: Duration::from_secs(server.idle_timeout_seconds.max(1)),
        grace: Duration::from_secs(server.shutdown_grace_seconds),
        client_timeout: Duration::from_secs(server.query_client_timeout_seconds.max(1)),
        query_runtime,
        admission: Admission {
            max_running: server
                .max_concurrent_queries
                .unwrap_or(4 * config.execution.threads()),
            max_queued: server.max_queued_queries,
        },
        node: node_name(server.http_port),
        metrics: server.metrics_port.map(|port| SocketAddr::new(ip, port)),
        metrics_enabled: server.metrics_enabled,
        console_session: Duration::from_secs(server.console_session_seconds.max(1)),
    })
}

fn certificate_source(config: &Config) -> Result<CertificateSource, String> {
    let server = &config.server;
    match (&server.tls_certificate, &server.tls_key) {
        (Some(certificate), Some(key)) => Ok(CertificateSource::Files {
            certificate: certificate.clone(),
            key: key.clone(),
        }),
        (Some(_), None) | (None, Some(_)) => {
            Err("server.tls_certificate and server.tls_key are set together".into())
        }
        (None, None) => {
            let warehouse = config.warehouse_url().map_err(|e| e.to_string())?;
            let folder = warehouse.to_file_path().map_err(|()| {
                format!(
                    "a warehouse on '{}' has no folder for a generated certificate: set \
                     server.tls_certificate and server.tls_key",
                    warehouse.scheme()
                )
            })?;
            Ok(CertificateSource::Generated {
                folder: folder.join("tls"),
            })
        }
    }
}

/// SIGTERM or Ctrl-C. From then on the process ends within `grace` whatever is still
/// running: a query computing without pause cannot hold it.
async fn shutdown_signal(grace: Duration) {
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
    let watchdog = std::thread::Builder::new()
        .name("aichemy-shutdown".into())
        .spawn(move || {
            std::thread::sleep(grace);
            tracing::warn!("the shutdown grace period is over: exiting with work still running");
            std::process::exit(1);
        });
    if let Err(e) = watchdog {
        tracing::warn!("cannot bound the shutdown by its grace period: {e}");
    }
}
