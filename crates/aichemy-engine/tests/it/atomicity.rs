//! A statement that fails part-way changes nothing.

use aichemy_engine::{collect, format::batch_cells, ErrorCode};

use super::{fresh_lakehouse, session};

async fn count(session: &mut aichemy_engine::Session, table: &str) -> String {
    let batches = collect(
        session
            .execute(&format!("SELECT count(*) FROM {table}"))
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    batch_cells(&batches[0]).unwrap()[0][0].clone().unwrap()
}

/// Committed table versions: one `*.metadata.json` per commit.
fn metadata_versions(table_dir: &std::path::Path) -> usize {
    std::fs::read_dir(table_dir.join("metadata"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".metadata.json")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_failing_at_row_10000_leaves_the_table_unchanged() {
    let (lakehouse, dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    s.execute("CREATE SCHEMA iceberg.a").await.unwrap();
    s.execute("CREATE TABLE iceberg.a.t (id INTEGER, v VARCHAR)")
        .await
        .unwrap();
    s.execute("INSERT INTO iceberg.a.t VALUES (1, 'one'), (2, 'two')")
        .await
        .unwrap();
    let table_dir = dir.path().join("warehouse/iceberg/a/t");
    assert_eq!(metadata_versions(&table_dir), 2, "create + one insert");

    let err = s
        .execute(
            "INSERT INTO iceberg.a.t SELECT CAST(CASE WHEN value = 10000 THEN 'bad' ELSE CAST(value AS VARCHAR) END AS INTEGER), 'x' \
             FROM generate_series(1, 20000)",
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::INVALID_CAST_ARGUMENT, "{err}");
    assert_eq!(count(&mut s, "iceberg.a.t").await, "2");
    // No new table version was committed.
    assert_eq!(metadata_versions(&table_dir), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_ctas_leaves_no_table() {
    let (lakehouse, _dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    s.execute("CREATE SCHEMA iceberg.a").await.unwrap();
    let err = s
        .execute("CREATE TABLE iceberg.a.c AS SELECT CAST(CASE WHEN value = 500 THEN 'bad' ELSE '1' END AS INTEGER) AS n FROM generate_series(1, 1000)")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::INVALID_CAST_ARGUMENT, "{err}");
    let err = s.execute("SELECT * FROM iceberg.a.c").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::TABLE_NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_survive_a_reopen() {
    let (lakehouse, dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    s.execute("CREATE SCHEMA iceberg.p").await.unwrap();
    s.execute("CREATE TABLE iceberg.p.t AS SELECT 1 AS x")
        .await
        .unwrap();
    s.execute("CREATE VIEW iceberg.p.v AS SELECT x + 1 AS y FROM t")
        .await
        .unwrap();
    drop(s);
    drop(lakehouse);
    let config = aichemy_config::Config {
        warehouse: dir.path().join("warehouse").display().to_string(),
        ..Default::default()
    };
    let reopened = aichemy_engine::Lakehouse::open(&config).await.unwrap();
    let mut s = session(&reopened);
    let batches = collect(s.execute("SELECT y FROM iceberg.p.v").await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        batch_cells(&batches[0]).unwrap()[0][0].as_deref(),
        Some("2")
    );
}
