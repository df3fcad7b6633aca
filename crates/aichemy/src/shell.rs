//! `aichemy sql`: an interactive shell (multi-line statements ending in `;`, history),
//! or non-interactive runs of `-e` text and `-f` files that stop at the first error.

use std::io::Write;
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
}

pub async fn run(config: Config, args: SqlArgs) -> ExitCode {
    let lakehouse = match Lakehouse::open(&config).await {
        Ok(lakehouse) => lakehouse,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let user = std::env::var("USER").unwrap_or_else(|_| "aichemy".into());
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
    match script {
        Some(script) => {
            for statement in split_statements(&script) {
                if let Err(e) = run_statement(&mut session, &statement, args.format, false).await {
                    eprintln!("Query failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        None => interactive(session, args.format).await,
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
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
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
    Ok(())
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
        let line = match editor.readline(&prompt) {
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
