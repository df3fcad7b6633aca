//! Integration tests of the engine: the SQL behaviour files and failure cases.
//! One test binary for the crate (see DESIGN.md build facts).

mod atomicity;
mod execution;
mod hive;
mod plans;
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
