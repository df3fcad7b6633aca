//! Runs every `tests/sql/*.slt` file, each against a fresh lakehouse in a temp folder, and
//! every `tests/sql/every_format/*.slt` file once per table format (`row_level/*.slt`
//! once per format that changes rows), with `{catalog}` replaced by the catalog's name.
//! `AICHEMY_SLT_COMPLETE=1 cargo test -p aichemy-engine slt` rewrites expected results of
//! the first kind.

use std::path::PathBuf;
use std::sync::Arc;

use aichemy_engine::{collect, format::batch_cells, Lakehouse, Output, Session, TrinoError};
use sqllogictest::{DBOutput, DefaultColumnType};

use super::{fresh_lakehouse, session};

struct SltDb {
    session: Session,
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for SltDb {
    type Error = TrinoError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        match self.session.execute(sql).await? {
            Output::Update { count, .. } => Ok(DBOutput::StatementComplete(count.unwrap_or(0))),
            rows @ Output::Rows { .. } => {
                let Output::Rows { ref schema, .. } = rows else {
                    unreachable!()
                };
                let types = schema
                    .fields()
                    .iter()
                    .map(|f| {
                        if f.data_type().is_integer() {
                            DefaultColumnType::Integer
                        } else if f.data_type().is_numeric() {
                            DefaultColumnType::FloatingPoint
                        } else {
                            DefaultColumnType::Text
                        }
                    })
                    .collect();
                let mut out = Vec::new();
                for batch in collect(rows).await? {
                    for row in batch_cells(&batch)? {
                        out.push(
                            row.into_iter()
                                .map(|c| match c {
                                    None => "NULL".to_string(),
                                    Some(s) if s.is_empty() => "(empty)".to_string(),
                                    Some(s) => s,
                                })
                                .collect(),
                        );
                    }
                }
                Ok(DBOutput::Rows { types, rows: out })
            }
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "aichemy"
    }

    async fn sleep(duration: std::time::Duration) {
        tokio::time::sleep(duration).await
    }
}

/// The folders of files run once per catalog, and the catalogs: every format, and the
/// formats that change rows.
const PER_CATALOG: [(&str, &[&str]); 2] = [
    ("every_format", &["iceberg", "delta", "hive", "lance"]),
    ("row_level", &["iceberg", "delta", "lance"]),
];

fn slt_files(folder: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/sql")
        .join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/sql exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    files
}

async fn run_file(path: PathBuf, complete: bool) -> Result<(), String> {
    let (lakehouse, _dir) = fresh_lakehouse().await;
    let lakehouse: Arc<Lakehouse> = lakehouse;
    let mut runner = sqllogictest::Runner::new(move || {
        let lakehouse = lakehouse.clone();
        async move {
            Ok(SltDb {
                session: session(&lakehouse),
            })
        }
    });
    if complete {
        runner
            .update_test_file(
                &path,
                " ",
                sqllogictest::default_validator,
                sqllogictest::default_normalizer,
                sqllogictest::default_column_validator,
            )
            .await
            .map_err(|e| e.to_string())
    } else {
        runner
            .run_file_async(&path)
            .await
            .map_err(|e| e.display(true).to_string())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_behaviour_files() {
    let complete = std::env::var("AICHEMY_SLT_COMPLETE").is_ok_and(|v| v == "1");
    let files = slt_files("");
    assert!(!files.is_empty(), "no .slt files found");
    let mut failures = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        match run_file(path, complete).await {
            Ok(()) => eprintln!("slt ok: {name}"),
            Err(e) => failures.push(format!("{name}:\n{e}")),
        }
    }
    let shared = tempfile::tempdir().expect("temp dir");
    for (folder, catalogs) in PER_CATALOG {
        for path in slt_files(folder) {
            let text = std::fs::read_to_string(&path).expect("readable .slt file");
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            for catalog in catalogs {
                let instance = shared.path().join(format!("{catalog}-{folder}-{name}"));
                std::fs::write(&instance, text.replace("{catalog}", catalog)).expect("temp file");
                match run_file(instance, false).await {
                    Ok(()) => eprintln!("slt ok: {folder}/{name} on {catalog}"),
                    Err(e) => failures.push(format!("{folder}/{name} on {catalog}:\n{e}")),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
