//! The `[execution]` settings: threads, the memory limit with spilling, DataFusion options.

use std::num::NonZeroUsize;

use aichemy_config::{Config, DataSize, ScalarText};
use aichemy_engine::{collect, format::batch_cells, ErrorCode, Lakehouse, Session};

use super::lakehouse_with;

/// The text of all cells of a query's result, one line per row.
async fn text(session: &mut Session, sql: &str) -> Result<String, aichemy_engine::TrinoError> {
    let batches = collect(session.execute(sql).await?).await?;
    let mut lines = Vec::new();
    for batch in &batches {
        for row in batch_cells(batch)? {
            lines.push(row.into_iter().flatten().collect::<Vec<_>>().join(" "));
        }
    }
    Ok(lines.join("\n"))
}

/// 3 million distinct values: their grouping state is far above 20 MB.
const BIG_GROUP_BY: &str = "SELECT count(*) FROM (SELECT value * 7 % 3000017 AS v, count(*) \
     FROM generate_series(1, 3000000) GROUP BY 1)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_memory_limit_aggregations_spill_and_finish() {
    let spill = tempfile::tempdir().unwrap();
    let (lakehouse, _dir) = lakehouse_with(|config| {
        config.execution.memory_limit = Some(DataSize(20 << 20));
        config.execution.spill_path = Some(spill.path().join("spill"));
    })
    .await;
    let mut session = Session::new(lakehouse, "test");
    assert_eq!(text(&mut session, BIG_GROUP_BY).await.unwrap(), "3000000");
    let plan = text(&mut session, &format!("EXPLAIN ANALYZE {BIG_GROUP_BY}"))
        .await
        .unwrap();
    let spilled: Vec<&str> = plan
        .split([',', ' ', '[', ']'])
        .filter(|metric| metric.starts_with("spill_count=") && *metric != "spill_count=0")
        .collect();
    assert!(!spilled.is_empty(), "nothing spilled: {plan}");
    // The spill folder was created where configured; its files are gone after the query.
    assert!(spill.path().join("spill").is_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_cannot_spill_fails_with_the_memory_limit_and_frees_it() {
    let (lakehouse, _dir) = lakehouse_with(|config| {
        config.execution.memory_limit = Some(DataSize(4 << 20));
    })
    .await;
    let mut session = Session::new(lakehouse, "test");
    let error = text(
        &mut session,
        "SELECT cardinality(array_agg(value)) FROM generate_series(1, 3000000)",
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.code,
        ErrorCode::EXCEEDED_LOCAL_MEMORY_LIMIT,
        "{error}"
    );
    assert!(
        error
            .message
            .starts_with("Query exceeded per-node memory limit"),
        "{error}"
    );
    // What the failed query held was given back.
    assert_eq!(text(&mut session, "SELECT 1").await.unwrap(), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_and_datafusion_settings_shape_the_plan() {
    let (lakehouse, _dir) = lakehouse_with(|config| {
        config.execution.threads = NonZeroUsize::new(3);
        config.execution.datafusion.insert(
            "optimizer.repartition_aggregations".into(),
            ScalarText("false".into()),
        );
    })
    .await;
    let mut session = Session::new(lakehouse, "test");
    let plan = text(
        &mut session,
        "EXPLAIN SELECT value % 10, count(*) FROM generate_series(1, 100000) GROUP BY 1",
    )
    .await
    .unwrap();
    assert!(plan.contains("RoundRobinBatch(3)"), "{plan}");
    assert!(!plan.contains("Hash(["), "{plan}");
}

#[tokio::test]
async fn an_unknown_datafusion_setting_stops_the_lakehouse_opening() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        warehouse: dir.path().display().to_string(),
        ..Config::default()
    };
    config
        .execution
        .datafusion
        .insert("execution.no_such_thing".into(), ScalarText("1".into()));
    let Err(error) = Lakehouse::open(&config).await else {
        panic!("a lakehouse opened with an unknown DataFusion setting");
    };
    assert!(
        error
            .message
            .contains("invalid value for execution.datafusion.execution.no_such_thing"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_settings_reach_hive_scans() {
    let (lakehouse, _dir) = lakehouse_with(|config| {
        config.execution.datafusion.insert(
            "execution.parquet.pushdown_filters".into(),
            ScalarText("true".into()),
        );
    })
    .await;
    let mut session = Session::new(lakehouse, "test");
    for statement in [
        "CREATE SCHEMA hive.s",
        "CREATE TABLE hive.s.t (x bigint) WITH (format = 'PARQUET')",
        "INSERT INTO hive.s.t SELECT value FROM generate_series(1, 1000)",
    ] {
        text(&mut session, statement).await.unwrap();
    }
    let plan = text(
        &mut session,
        "EXPLAIN ANALYZE SELECT count(*) FROM hive.s.t WHERE x <= 10",
    )
    .await
    .unwrap();
    // The rows the filter rejects never leave the Parquet reader.
    assert!(plan.contains("pushdown_rows_pruned=990"), "{plan}");
}

/// DataFusion's overlay slices its string at an unchecked byte offset: it panics inside
/// DataFusion for this `n`.
const PANICS: &str = "overlay('abc' placing 'x' from n for -n)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_the_statements_error_and_the_session_goes_on() {
    let (lakehouse, _dir) = lakehouse_with(|_| {}).await;
    let mut session = Session::new(lakehouse, "test");
    // Planning folds the constant (the panic comes while planning); over a table's rows it
    // comes while they are read.
    let planning = text(
        &mut session,
        &format!("SELECT {PANICS} FROM (SELECT BIGINT '-9223372036854775807' AS n)"),
    )
    .await
    .unwrap_err();
    for sql in [
        "CREATE SCHEMA iceberg.p",
        "CREATE TABLE iceberg.p.t AS SELECT BIGINT '-9223372036854775807' AS n",
    ] {
        text(&mut session, sql).await.unwrap();
    }
    let reading = text(&mut session, &format!("SELECT {PANICS} FROM iceberg.p.t"))
        .await
        .unwrap_err();
    for error in [planning, reading] {
        assert_eq!(error.code, ErrorCode::GENERIC_INTERNAL_ERROR, "{error}");
        assert!(error.message.contains("out of bounds"), "{error}");
    }
    assert_eq!(text(&mut session, "SELECT 42").await.unwrap(), "42");
}
