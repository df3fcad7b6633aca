//! `aichemy migrate` and `aichemy metastore export|import`: the metastore's schema and its
//! whole content, outside a running server.

use std::path::PathBuf;
use std::process::ExitCode;

use aichemy_config::Config;
use aichemy_metastore::{Export, Metastore};
use aichemy_server::private_file;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct MetastoreArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Writes the whole metastore as JSON to standard output or --output (owner-only, as
    /// it may hold catalog passwords written in CREATE CATALOG).
    Export {
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Reads an export into the configured metastore, which must be empty; all or nothing.
    Import { file: PathBuf },
}

/// Opens the configured metastore without migrating it.
async fn connect(config: &Config) -> Result<Metastore, String> {
    let url = config.metastore_url().map_err(|e| e.to_string())?;
    Metastore::connect(&url).await.map_err(|e| e.to_string())
}

/// `aichemy migrate`: applies the migrations the metastore lacks and says what it did.
pub async fn migrate(config: Config) -> ExitCode {
    let result = async {
        let store = connect(&config).await?;
        let report = store.migrate().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(if report.applied.is_empty() {
            format!(
                "metastore {} is up to date at schema version {}",
                store.display_url(),
                report.version
            )
        } else {
            let applied: Vec<String> = report.applied.iter().map(i64::to_string).collect();
            format!(
                "metastore {}: applied migration{} {}; schema version {}",
                store.display_url(),
                if applied.len() == 1 { "" } else { "s" },
                applied.join(", "),
                report.version
            )
        })
    }
    .await;
    finish(result)
}

pub async fn run(config: Config, args: MetastoreArgs) -> ExitCode {
    let result = async {
        match args.action {
            Action::Export { output } => {
                let store = connect(&config).await?;
                let export = store.export().await.map_err(|e| e.to_string())?;
                let mut text = serde_json::to_string_pretty(&export).map_err(|e| e.to_string())?;
                text.push('\n');
                let rows: usize = export.tables.values().map(Vec::len).sum();
                match output {
                    Some(path) => {
                        private_file::write(&path, text.as_bytes())
                            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                        Ok(format!(
                            "exported {rows} rows of {} (schema version {}) to {}",
                            store.display_url(),
                            export.schema_version,
                            path.display()
                        ))
                    }
                    None => {
                        print!("{text}");
                        Ok(format!("exported {rows} rows of {}", store.display_url()))
                    }
                }
            }
            Action::Import { file } => {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                let export: Export = serde_json::from_str(&text)
                    .map_err(|e| format!("{} is not a metastore export: {e}", file.display()))?;
                let store = connect(&config).await?;
                store.migrate().await.map_err(|e| e.to_string())?;
                let summary = store.import(&export).await.map_err(|e| e.to_string())?;
                let rows: usize = summary.rows.values().sum();
                Ok(format!("imported {rows} rows into {}", store.display_url()))
            }
        }
    }
    .await;
    finish(result)
}

fn finish(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(message) => {
            eprintln!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
