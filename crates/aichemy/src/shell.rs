//! `aichemy sql`: an interactive shell (multi-line statements ending in `;`, history),
//! or non-interactive runs of `-e` text, `-f` files and statements piped to standard input
//! that stop at the first error unless `--ignore-errors` is given.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use aichemy_config::Config;
use aichemy_engine::dialect::{is_blank, split_statements};
use aichemy_engine::{collect, Lakehouse, Output, Session, TrinoError};
use futures::TryStreamExt;

use crate::output::{print_rows, Format};

#[derive(clap::Args)]
pub struct SqlArgs {
    /// Statements to run, separated by `;`; exits after them.
    #[arg(short = 'e', long = "execute", conflicts_with = "file")]
    execute: Option<String>,
    /// A file of statements to run; exits after them.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// How to print results.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Catalog of the session.
    #[arg(long)]
    catalog: Option<String>,
    /// Schema of the session.
    #[arg(long)]
    schema: Option<String>,
    /// Continue with the next statement when one fails (non-interactive runs).
    #[arg(long)]
    ignore_errors: bool,
}

/// The embedded lakehouse and the user the command line acts as (`$USER`), or the exit
/// code of a lakehouse that could not be opened (its error printed).
pub async fn open(config: &Config) -> Result<(std::sync::Arc<Lakehouse>, String), ExitCode> {
    let lakehouse = Lakehouse::open(config).await.map_err(|e| {
        eprintln!("{e}");
        ExitCode::FAILURE
    })?;
    let user = std::env::var("USER").unwrap_or_else(|_| "aichemy".into());
    Ok((lakehouse, user))
}

pub async fn run(config: Config, args: SqlArgs) -> ExitCode {
    let (lakehouse, user) = match open(&config).await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let mut session = Session::new(lakehouse, user);
    session.catalog = args.catalog.clone();
    session.schema = args.schema.clone();
    if args.schema.is_some() && args.catalog.is_none() {
        eprintln!("--schema needs --catalog");
        return ExitCode::from(2);
    }
    let script = match (&args.execute, &args.file) {
        (Some(text), _) => Some(text.clone()),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) => {
                eprintln!("cannot read {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        (None, None) => None,
    };
    let lakehouse = session.lakehouse().clone();
    let code = match script {
        Some(script) => {
            let mut failed = false;
            match run_batch(&mut session, &script, &args, &mut failed).await {
                true => exit_code(failed),
                false => ExitCode::FAILURE,
            }
        }
        None if !std::io::stdin().is_terminal() => piped(session, &args).await,
        None => interactive(session, args.format).await,
    };
    // The lineage events of the last statements, before the process ends.
    lakehouse
        .lineage()
        .flush(std::time::Duration::from_secs(5))
        .await;
    code
}

fn exit_code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs the statements of a non-interactive text, noting failures in `failed`; answers
/// whether the run goes on (false after a failure without `--ignore-errors`).
async fn run_batch(session: &mut Session, text: &str, args: &SqlArgs, failed: &mut bool) -> bool {
    for statement in split_statements(text) {
        if is_blank(&statement) {
            continue;
        }
        if let Err(e) = run_statement(session, &statement, args.format, false).await {
            eprintln!("Query failed: {e}");
            *failed = true;
            if !args.ignore_errors {
                return false;
            }
        }
    }
    true
}

/// Statements piped to standard input, each run (and its output flushed) as soon as the
/// line that ends it arrives, so that a program can converse with the engine in-process.
async fn piped(mut session: Session, args: &SqlArgs) -> ExitCode {
    let stdin = std::io::stdin();
    let mut buffer = String::new();
    let mut failed = false;
    loop {
        let mut line = String::new();
        // No query runs while this thread waits for the next line.
        let read = tokio::task::block_in_place(|| stdin.read_line(&mut line));
        let ended = matches!(read, Ok(0) | Err(_));
        buffer.push_str(&line);
        if !(ended || line.trim_end().ends_with(';')) {
            continue;
        }
        if !run_batch(
            &mut session,
            &std::mem::take(&mut buffer),
            args,
            &mut failed,
        )
        .await
        {
            return ExitCode::FAILURE;
        }
        if ended {
            return exit_code(failed);
        }
    }
}

async fn run_statement(
    session: &mut Session,
    sql: &str,
    format: Format,
    timing: bool,
) -> Result<(), TrinoError> {
    let started = Instant::now();
    let output = session.execute(sql).await?;
    // Printed whole once the statement is done; the output of a failed one is dropped.
    let mut out = Vec::new();
    match output {
        Output::Rows { schema, stream } => {
            let batches: Vec<_> = stream.try_collect().await?;
            print_rows(&mut out, format, &schema, &batches)?;
        }
        Output::Update { update_type, count } => {
            if format == Format::Table {
                let _ = match count {
                    Some(n) => writeln!(
                        out,
                        "{update_type}: {n} row{}",
                        if n == 1 { "" } else { "s" }
                    ),
                    None => writeln!(out, "{update_type}"),
                };
            }
            let _ = collect(Output::Update { update_type, count }).await;
        }
    }
    if timing {
        let _ = writeln!(
            out,
            "Query finished in {:.2}s",
            started.elapsed().as_secs_f64()
        );
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .map_err(|e| TrinoError::internal(format!("cannot write output: {e}")))
}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".aichemy_history"))
}

async fn interactive(mut session: Session, format: Format) -> ExitCode {
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("cannot start the shell: {e}");
            return ExitCode::FAILURE;
        }
    };
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    println!(
        "AIchemy {} — statements end with ';', quit with 'quit;' or Ctrl-D.",
        env!("CARGO_PKG_VERSION")
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            format!(
                "aichemy{}> ",
                session
                    .schema
                    .as_deref()
                    .map(|s| format!(":{s}"))
                    .unwrap_or_default()
            )
        } else {
            "      -> ".to_string()
        };
        let line = match tokio::task::block_in_place(|| editor.readline(&prompt)) {
            Ok(line) => line,
            Err(rustyline::error::ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(_) => break,
        };
        let trimmed = line.trim();
        if buffer.is_empty()
            && matches!(
                trimmed.to_ascii_lowercase().trim_end_matches(';'),
                "quit" | "exit"
            )
        {
            break;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if !trimmed.ends_with(';') {
            continue;
        }
        let text = std::mem::take(&mut buffer);
        let _ = editor.add_history_entry(text.trim());
        for statement in split_statements(&text) {
            if is_blank(&statement) {
                continue;
            }
            if let Err(e) = run_statement(&mut session, &statement, format, true).await {
                eprintln!("Query failed: {e}");
            }
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    ExitCode::SUCCESS
}
