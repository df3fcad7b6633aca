//! `aichemy pipeline`: pipelines from the command line: `list`, `run` (waits for the run and
//! exits non-zero when it failed), `backfill`, `history` and `deploy` (a folder of `.sql`
//! files with a `pipeline.toml` manifest).
//!
//! ```toml
//! name = "medallion"            # default: the folder's name
//! schedule = "*/5 * * * *"      # cron, UTC; or: every = "30s"
//! retries = 2                   # for steps that name none
//! retry_delay = "10s"           # doubled for each next retry
//! timeout = "30m"               # per attempt of a step
//! catalog = "iceberg"           # where unqualified names resolve
//! schema = "silver"
//! checks = ["ids ON orders AFTER silver_orders NOT NULL (id) QUARANTINE"]   # as ADD CHECK
//!
//! [[steps]]
//! name = "silver_orders"        # runs silver_orders.sql unless `file` names another
//! after = []
//! [[steps]]
//! name = "gold_revenue"
//! after = ["silver_orders"]
//! retries = 3
//! ```
//!
//! Without `[[steps]]`, every `.sql` file of the folder is a step, run in name order, each
//! after the one before.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use aichemy_config::Config;
use aichemy_engine::pipeline::{
    parse_duration_property, PipelineDefinition, Schedule, StepDefinition,
};
use aichemy_engine::{collect, Lakehouse, Session, TrinoError};

use crate::output::{print_rows, Format};

#[derive(clap::Args)]
pub struct PipelineArgs {
    #[command(subcommand)]
    command: PipelineCommand,
    /// How to print results.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    format: Format,
}

#[derive(clap::Subcommand)]
enum PipelineCommand {
    /// Every pipeline with its schedule, state and last run.
    List,
    /// Runs a pipeline now and waits for the run to end; exits non-zero if it failed.
    Run {
        name: String,
        /// The run's date (`${ds}` in its steps), YYYY-MM-DD; today by default.
        #[arg(long)]
        date: Option<String>,
    },
    /// One run per date from --from to --to (inclusive), oldest first; waits for them.
    Backfill {
        name: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// How many of the runs may run at once.
        #[arg(long, default_value_t = 1)]
        parallel: u32,
    },
    /// The newest runs of a pipeline and their steps.
    History {
        name: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Creates or replaces the pipeline a folder of .sql files and its pipeline.toml declare.
    Deploy { folder: PathBuf },
}

pub async fn run(config: Config, args: PipelineArgs) -> ExitCode {
    let (lakehouse, user) = match crate::shell::open(&config).await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let result = match args.command {
        PipelineCommand::List => print(&lakehouse, &user, "SHOW PIPELINES", args.format).await,
        PipelineCommand::Run { name, date } => {
            let sql = match date {
                Some(date) => format!("RUN PIPELINE {} FOR {}", ident(&name), literal(&date)),
                None => format!("RUN PIPELINE {}", ident(&name)),
            };
            start_and_wait(&lakehouse, &user, &sql, args.format).await
        }
        PipelineCommand::Backfill {
            name,
            from,
            to,
            parallel,
        } => {
            let sql = format!(
                "BACKFILL PIPELINE {} FROM {} TO {} PARALLEL {parallel}",
                ident(&name),
                literal(&from),
                literal(&to)
            );
            start_and_wait(&lakehouse, &user, &sql, args.format).await
        }
        PipelineCommand::History { name, limit } => {
            let runs = format!(
                "SELECT run_id, trigger, logical_date, state, node, started, ended, elapsed_ms, \
                 error FROM system.runtime.pipeline_runs WHERE pipeline_name = {} \
                 ORDER BY queued DESC, run_id DESC LIMIT {limit}",
                literal(&name.to_lowercase())
            );
            print(&lakehouse, &user, &runs, args.format).await
        }
        PipelineCommand::Deploy { folder } => match manifest(&folder) {
            Ok(mut definition) => {
                definition.owner = user;
                aichemy_engine::declare_pipeline(&lakehouse, definition)
                    .await
                    .map(|done| {
                        println!("{done}");
                        true
                    })
            }
            Err(e) => Err(e),
        },
    };
    lakehouse
        .lineage()
        .flush(std::time::Duration::from_secs(5))
        .await;
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{}: {}", e.code.name(), e.message);
            ExitCode::FAILURE
        }
    }
}

/// A name as SQL reads it: a plain one as written (so `Medallion` is `medallion`, as in
/// SQL), any other quoted.
fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match plain {
        true => name.to_string(),
        false => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Runs `sql` and prints its rows.
async fn print(
    lakehouse: &Arc<Lakehouse>,
    user: &str,
    sql: &str,
    format: Format,
) -> Result<bool, TrinoError> {
    let mut session = Session::new(lakehouse.clone(), user.to_string());
    let output = session.execute(sql).await?;
    let schema = match &output {
        aichemy_engine::Output::Rows { schema, .. } => schema.clone(),
        aichemy_engine::Output::Update { .. } => return Ok(true),
    };
    let batches = collect(output).await?;
    print_rows(&mut std::io::stdout(), format, &schema, &batches)?;
    Ok(true)
}

/// Queues runs with `sql` (RUN or BACKFILL), waits until they ended (a server holding the
/// pipeline runs them; otherwise the statement ran them), prints their steps; answers
/// whether every run succeeded.
async fn start_and_wait(
    lakehouse: &Arc<Lakehouse>,
    user: &str,
    sql: &str,
    format: Format,
) -> Result<bool, TrinoError> {
    let mut session = Session::new(lakehouse.clone(), user.to_string());
    let output = session.execute(sql).await?;
    let mut run_ids = Vec::new();
    for batch in collect(output).await? {
        for row in aichemy_engine::format::batch_cells(&batch)? {
            if let Some(Some(id)) = row.first() {
                run_ids.push(id.clone());
            }
        }
    }
    let metastore = lakehouse.metastore();
    let mut succeeded = true;
    for run_id in &run_ids {
        let run = loop {
            match metastore.pipeline_run(run_id).await? {
                Some(run) if run.state == "queued" || run.state == "running" => {
                    tokio::time::sleep(Duration::from_millis(250)).await
                }
                Some(run) => break run,
                None => return Err(TrinoError::internal(format!("run {run_id} disappeared"))),
            }
        };
        succeeded &= run.state == "succeeded";
        eprintln!(
            "run {} for {}: {}{}",
            run.run_id,
            run.logical_date,
            run.state,
            run.error.map(|e| format!(": {e}")).unwrap_or_default()
        );
    }
    let list = run_ids
        .iter()
        .map(|id| literal(id))
        .collect::<Vec<_>>()
        .join(", ");
    if !list.is_empty() {
        let steps = format!(
            "SELECT run_id, step_name, state, attempt, elapsed_ms, rows_written, error \
             FROM system.runtime.pipeline_steps WHERE run_id IN ({list}) \
             ORDER BY run_id, started"
        );
        print(lakehouse, user, &steps, format).await?;
    }
    Ok(succeeded)
}

/// `pipeline.toml` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: Option<String>,
    schedule: Option<String>,
    every: Option<String>,
    #[serde(default)]
    retries: u32,
    retry_delay: Option<String>,
    timeout: Option<String>,
    catalog: Option<String>,
    schema: Option<String>,
    comment: Option<String>,
    #[serde(default)]
    steps: Vec<ManifestStep>,
    /// Quality checks, each as `ALTER PIPELINE … ADD CHECK` takes it.
    #[serde(default)]
    checks: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestStep {
    name: String,
    file: Option<String>,
    #[serde(default)]
    after: Vec<String>,
    retries: Option<u32>,
    timeout: Option<String>,
}

fn invalid(message: String) -> TrinoError {
    TrinoError::new(aichemy_engine::ErrorCode::INVALID_ARGUMENTS, message)
}

/// A step or pipeline name of a manifest: a plain SQL name, lowercased as SQL reads it.
fn plain_name(name: &str, what: &str) -> Result<String, TrinoError> {
    if ident(name).starts_with('"') {
        return Err(invalid(format!(
            "{what} name '{name}' must be letters, digits and underscores, not starting \
             with a digit"
        )));
    }
    Ok(name.to_lowercase())
}

fn retries(value: u32) -> Result<u32, TrinoError> {
    if value > 100 {
        return Err(invalid(format!(
            "retries must be a whole number from 0 to 100, not {value}"
        )));
    }
    Ok(value)
}

/// The pipeline a folder declares (owner left for the caller).
fn manifest(folder: &Path) -> Result<PipelineDefinition, TrinoError> {
    let path = folder.join("pipeline.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    let manifest: Manifest =
        toml::from_str(&text).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    let read = |file: &str| {
        let path = folder.join(file);
        std::fs::read_to_string(&path)
            .map(|sql| sql.trim().trim_end_matches(';').trim().to_string())
            .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))
    };
    let mut steps = Vec::new();
    if manifest.steps.is_empty() {
        let mut files: Vec<String> = std::fs::read_dir(folder)
            .map_err(|e| invalid(format!("cannot list {}: {e}", folder.display())))?
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        for file in files {
            let name = plain_name(file.trim_end_matches(".sql"), "Step")?;
            let after = steps
                .last()
                .map(|s: &StepDefinition| vec![s.name.clone()])
                .unwrap_or_default();
            steps.push(StepDefinition {
                sql: read(&file)?,
                name,
                after,
                retries: None,
                timeout_ms: None,
            });
        }
    }
    for step in manifest.steps {
        let file = step.file.unwrap_or_else(|| format!("{}.sql", step.name));
        steps.push(StepDefinition {
            sql: read(&file)?,
            name: plain_name(&step.name, "Step")?,
            after: step
                .after
                .iter()
                .map(|a| plain_name(a, "Step"))
                .collect::<Result<_, _>>()?,
            retries: step.retries.map(retries).transpose()?,
            timeout_ms: step
                .timeout
                .map(|t| parse_duration_property("timeout", &t))
                .transpose()?,
        });
    }
    let schedule = match (manifest.schedule, manifest.every) {
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "{}: give either schedule or every, not both",
                path.display()
            )))
        }
        (Some(cron), None) => Some(Schedule::cron(&cron)?),
        (None, Some(every)) => Some(Schedule::every(
            parse_duration_property("every", &every)? as i64
        )?),
        (None, None) => None,
    };
    let name = match manifest.name {
        Some(name) => name,
        None => std::fs::canonicalize(folder)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .ok_or_else(|| invalid("the manifest needs a name".into()))?,
    };
    Ok(PipelineDefinition {
        name: plain_name(&name, "Pipeline")?,
        owner: String::new(),
        catalog: manifest.catalog,
        schema: manifest.schema,
        schedule,
        retries: retries(manifest.retries)?,
        retry_delay_ms: match manifest.retry_delay {
            Some(delay) => parse_duration_property("retry_delay", &delay)?,
            None => aichemy_engine::pipeline::DEFAULT_RETRY_DELAY.as_millis() as u64,
        },
        timeout_ms: manifest
            .timeout
            .map(|t| parse_duration_property("timeout", &t))
            .transpose()?,
        comment: manifest.comment,
        steps,
        checks: manifest
            .checks
            .iter()
            .map(|text| aichemy_engine::pipeline::checks::parse_check_clause(text))
            .collect::<Result<_, _>>()?,
    })
}
