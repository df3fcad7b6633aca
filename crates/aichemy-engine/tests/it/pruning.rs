//! Statements read only the files that can hold the rows they need: a data file they must
//! not open is removed from disk, and the statement still succeeds.

use super::{cells, fresh_lakehouse, run, session};

/// The data files of an Iceberg table, by name.
fn data_files(table_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(table_dir.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    files
}

/// New orders join only lines of their own keys: the refresh never opens the file of lines
/// whose keys lie below the new orders' (it is removed from disk to prove it), in both
/// directions of the join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_reads_only_the_files_its_changes_can_join() {
    let (lakehouse, dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    run(
        &mut s,
        &[
            "CREATE SCHEMA iceberg.m",
            "CREATE TABLE iceberg.m.orders (k BIGINT, day DATE)",
            "CREATE TABLE iceberg.m.lines (k BIGINT, price BIGINT)",
            "INSERT INTO iceberg.m.orders VALUES (1, DATE '2024-01-01'), (2, DATE '2024-01-01')",
            "INSERT INTO iceberg.m.lines VALUES (1, 10), (2, 20), (2, 1)",
        ],
    )
    .await;
    let old_lines = data_files(&dir.path().join("warehouse/iceberg/m/lines"));
    let old_orders = data_files(&dir.path().join("warehouse/iceberg/m/orders"));
    run(
        &mut s,
        &[
            "INSERT INTO iceberg.m.lines VALUES (100, 5), (101, 7)",
            "CREATE MATERIALIZED VIEW iceberg.m.revenue AS SELECT day, count(*) AS n, \
             sum(price) AS revenue FROM iceberg.m.orders o JOIN iceberg.m.lines l \
             ON l.k = o.k GROUP BY day",
            "REFRESH MATERIALIZED VIEW iceberg.m.revenue",
            // Orders for the lines already there, then lines for orders already there.
            "INSERT INTO iceberg.m.orders VALUES (100, DATE '2024-01-02'), \
             (101, DATE '2024-01-03')",
        ],
    )
    .await;
    for file in old_lines {
        std::fs::remove_file(file).unwrap();
    }
    run(&mut s, &["REFRESH MATERIALIZED VIEW iceberg.m.revenue"]).await;
    run(
        &mut s,
        &["INSERT INTO iceberg.m.lines VALUES (100, 1), (101, 2), (101, 3)"],
    )
    .await;
    for file in old_orders {
        std::fs::remove_file(file).unwrap();
    }
    run(&mut s, &["REFRESH MATERIALIZED VIEW iceberg.m.revenue"]).await;
    let kind = cells(
        &mut s,
        "SELECT last_refresh_type FROM system.metadata.materialized_views \
         WHERE name = 'revenue'",
    )
    .await;
    assert_eq!(kind, vec![vec![Some("INCREMENTAL".to_string())]]);
    let rows = cells(
        &mut s,
        "SELECT CAST(day AS VARCHAR), n, revenue FROM iceberg.m.revenue ORDER BY day",
    )
    .await;
    let row = |day: &str, n: &str, revenue: &str| {
        vec![Some(day.into()), Some(n.into()), Some(revenue.into())]
    };
    assert_eq!(
        rows,
        vec![
            row("2024-01-01", "3", "31"),
            row("2024-01-02", "2", "6"),
            row("2024-01-03", "3", "12"),
        ]
    );
}

/// `DELETE … WHERE` and `UPDATE … WHERE` open only the files whose column bounds can hold
/// a matching row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_change_reads_only_the_files_its_filter_can_match() {
    let (lakehouse, dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    run(
        &mut s,
        &[
            "CREATE SCHEMA iceberg.m",
            "CREATE TABLE iceberg.m.t (k BIGINT, v VARCHAR)",
            "INSERT INTO iceberg.m.t VALUES (1, 'a'), (2, 'b')",
        ],
    )
    .await;
    let old = data_files(&dir.path().join("warehouse/iceberg/m/t"));
    run(
        &mut s,
        &["INSERT INTO iceberg.m.t VALUES (100, 'x'), (101, 'y'), (102, 'z')"],
    )
    .await;
    for file in old {
        std::fs::remove_file(file).unwrap();
    }
    run(
        &mut s,
        &[
            "DELETE FROM iceberg.m.t WHERE k = 101",
            "UPDATE iceberg.m.t SET v = 'w' WHERE k >= 102",
        ],
    )
    .await;
    let rows = cells(
        &mut s,
        "SELECT k, v FROM iceberg.m.t WHERE k > 50 ORDER BY k",
    )
    .await;
    let row = |k: &str, v: &str| vec![Some(k.to_string()), Some(v.to_string())];
    assert_eq!(rows, vec![row("100", "x"), row("102", "w")]);
}
