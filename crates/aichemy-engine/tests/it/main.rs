//! Integration tests of the engine: the SQL behaviour files and failure cases.
//! One test binary for the crate: each extra binary links the whole engine again.

mod atomicity;
mod execution;
mod fuzz;
mod hive;
mod plans;
mod pruning;
mod slt;

use std::sync::Arc;

use aichemy_config::Config;
use aichemy_engine::{Lakehouse, Session};

/// A fresh lakehouse in a temporary folder, removed when the returned guard drops.
pub async fn fresh_lakehouse() -> (Arc<Lakehouse>, tempfile::TempDir) {
    lakehouse_with(|_| {}).await
}

/// A fresh lakehouse whose configuration `change` adjusted first.
pub async fn lakehouse_with(
    change: impl FnOnce(&mut Config),
) -> (Arc<Lakehouse>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        warehouse: dir.path().join("warehouse").display().to_string(),
        ..Config::default()
    };
    change(&mut config);
    let lakehouse = Lakehouse::open(&config).await.expect("open lakehouse");
    (lakehouse, dir)
}

pub fn session(lakehouse: &Arc<Lakehouse>) -> Session {
    Session::new(lakehouse.clone(), "test")
}

/// Runs statements in order; any failure fails the test.
pub async fn run(session: &mut Session, statements: &[&str]) {
    for sql in statements {
        session.execute(sql).await.unwrap();
    }
}

/// The rows of a query, each as its cells' text.
pub async fn cells(session: &mut Session, sql: &str) -> Vec<Vec<Option<String>>> {
    let batches = aichemy_engine::collect(session.execute(sql).await.unwrap())
        .await
        .unwrap();
    batches
        .iter()
        .flat_map(|b| aichemy_engine::format::batch_cells(b).unwrap())
        .collect()
}

/// The text of `EXPLAIN sql`: the logical and the physical plan.
pub async fn explain(session: &mut Session, sql: &str) -> String {
    cells(session, &format!("EXPLAIN {sql}"))
        .await
        .into_iter()
        .flatten()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n")
}
