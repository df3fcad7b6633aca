//! Hive tables: partition pruning and staged inserts, seen in the files.

use aichemy_engine::{collect, format::batch_cells};

use super::{cells, explain, fresh_lakehouse, run, session};

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
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.p",
            "CREATE TABLE hive.p.t (id INTEGER, dt DATE) WITH (partitioned_by = ARRAY['dt'])",
            "INSERT INTO hive.p.t VALUES (1, DATE '2025-01-15'), (2, DATE '2025-01-16'), (3, DATE '2025-01-17')",
        ],
    )
    .await;
    let plan = explain(
        &mut s,
        "SELECT id FROM hive.p.t WHERE dt = DATE '2025-01-16'",
    )
    .await;
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
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.f",
            "CREATE TABLE hive.f.t (id INTEGER, k VARCHAR) WITH (partitioned_by = ARRAY['k'])",
            "INSERT INTO hive.f.t VALUES (1, 'a')",
        ],
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_strings_are_filtered_as_views_and_read_and_written_as_declared() {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let (lakehouse, dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.v",
            "CREATE TABLE hive.v.t (id INTEGER, name VARCHAR, k VARCHAR) WITH (partitioned_by = ARRAY['k'])",
            "INSERT INTO hive.v.t VALUES (1, 'one', 'a'), (2, 'two', 'b'), (3, 'three', 'b')",
        ],
    )
    .await;
    let query = "SELECT name, k FROM hive.v.t WHERE name <> 'three' AND id > 0 ORDER BY id";
    let plan = explain(&mut s, query).await;
    // The filter compares the reader's string views; only its survivors become Utf8.
    let cast = plan.find("ProjectionExec: expr=[CAST(name@").expect(&plan);
    let filter = plan.find("FilterExec: ").expect(&plan);
    assert!(cast < filter, "{plan}");
    assert!(
        plan[filter..].contains("name@1 != CAST(three AS Utf8View)"),
        "{plan}"
    );
    assert_eq!(plan.matches("FilterExec").count(), 1, "{plan}");
    let batches = collect(s.execute(query).await.unwrap()).await.unwrap();
    let schema = batches[0].schema();
    assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
    assert_eq!(schema.field(1).data_type(), &DataType::Utf8);
    let rows: Vec<_> = batches
        .iter()
        .flat_map(|b| batch_cells(b).unwrap())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec![Some("one".to_string()), Some("a".to_string())],
            vec![Some("two".to_string()), Some("b".to_string())],
        ]
    );
    // Other readers (pyarrow, Spark, Trino) find the plain string type in the files.
    for file in files_under(&dir.path().join("warehouse/hive/v/t")) {
        let reader = std::fs::File::open(&file).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(reader).unwrap();
        let name = builder.schema().field_with_name("name").unwrap().clone();
        assert_eq!(name.data_type(), &DataType::Utf8, "{file}");
    }
}
