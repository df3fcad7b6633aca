//! Hive tables: partition pruning and staged inserts, seen in the files.

use aichemy_engine::{collect, format::batch_cells};

use super::{fresh_lakehouse, session};

async fn cells(session: &mut aichemy_engine::Session, sql: &str) -> Vec<Vec<Option<String>>> {
    let batches = collect(session.execute(sql).await.unwrap()).await.unwrap();
    batches
        .iter()
        .flat_map(|b| batch_cells(b).unwrap())
        .collect()
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_on_the_partition_column_reads_only_that_partition() {
    let (lakehouse, _dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    for sql in [
        "CREATE SCHEMA hive.p",
        "CREATE TABLE hive.p.t (id INTEGER, dt DATE) WITH (partitioned_by = ARRAY['dt'])",
        "INSERT INTO hive.p.t VALUES (1, DATE '2025-01-15'), (2, DATE '2025-01-16'), (3, DATE '2025-01-17')",
    ] {
        s.execute(sql).await.unwrap();
    }
    let plan = cells(
        &mut s,
        "EXPLAIN SELECT id FROM hive.p.t WHERE dt = DATE '2025-01-16'",
    )
    .await
    .into_iter()
    .flatten()
    .flatten()
    .collect::<Vec<_>>()
    .join("\n");
    let scan = plan
        .lines()
        .find(|l| l.contains("DataSourceExec"))
        .expect("a file scan");
    assert!(scan.contains("dt=2025-01-16/"), "{scan}");
    assert!(!scan.contains("dt=2025-01-15/"), "{scan}");
    assert!(!scan.contains("dt=2025-01-17/"), "{scan}");
    assert_eq!(
        cells(
            &mut s,
            "SELECT id FROM hive.p.t WHERE dt = DATE '2025-01-16'"
        )
        .await,
        vec![vec![Some("2".to_string())]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_insert_leaves_no_files_behind() {
    let (lakehouse, dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    for sql in [
        "CREATE SCHEMA hive.f",
        "CREATE TABLE hive.f.t (id INTEGER, k VARCHAR) WITH (partitioned_by = ARRAY['k'])",
        "INSERT INTO hive.f.t VALUES (1, 'a')",
    ] {
        s.execute(sql).await.unwrap();
    }
    let table_dir = dir.path().join("warehouse/hive/f/t");
    let before = files_under(&table_dir);
    let err = s
        .execute(
            "INSERT INTO hive.f.t SELECT CAST(CASE WHEN value = 10000 THEN 'x' \
             ELSE CAST(value AS VARCHAR) END AS INTEGER), CAST(value % 7 AS VARCHAR) \
             FROM generate_series(1, 20000)",
        )
        .await;
    let err = match err {
        Ok(output) => collect(output).await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(err.code.name(), "INVALID_CAST_ARGUMENT", "{err:?}");
    assert_eq!(files_under(&table_dir), before);
    assert_eq!(
        cells(&mut s, "SELECT count(*) FROM hive.f.t").await,
        vec![vec![Some("1".to_string())]]
    );
}
