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
