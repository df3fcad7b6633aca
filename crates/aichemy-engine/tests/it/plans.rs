//! Plan shapes our optimizer rules give, and that the rows stay the same.

use super::{cells, explain, fresh_lakehouse, run, session};

/// The indentation of the first plan line containing `needle`.
fn depth(plan: &str, needle: &str) -> usize {
    let line = plan
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle} in {plan}"));
    line.len() - line.trim_start().len()
}

/// A query's rows, their cells in one list.
async fn values(session: &mut aichemy_engine::Session, sql: &str) -> Vec<String> {
    cells(session, sql)
        .await
        .into_iter()
        .flatten()
        .flatten()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_in_subquery_joins_the_table_it_filters_before_the_other_joins() {
    let (lakehouse, _dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.j",
            "CREATE TABLE hive.j.c (ck INTEGER, name VARCHAR)",
            "CREATE TABLE hive.j.o (ok INTEGER, ck INTEGER)",
            "CREATE TABLE hive.j.l (ok INTEGER, q INTEGER)",
            "INSERT INTO hive.j.c VALUES (1, 'ann'), (2, 'bob')",
            "INSERT INTO hive.j.o VALUES (10, 1), (11, 1), (12, 2)",
            "INSERT INTO hive.j.l VALUES (10, 5), (10, 7), (11, 1), (12, 20), (12, 1)",
        ],
    )
    .await;
    // TPC-H q18's shape: the orders whose lines add up to more than 10.
    let q18 = "SELECT name, o.ok, sum(q) FROM hive.j.c, hive.j.o, hive.j.l \
               WHERE o.ok IN (SELECT ok FROM hive.j.l GROUP BY ok HAVING sum(q) > 10) \
               AND c.ck = o.ck AND o.ok = l.ok GROUP BY name, o.ok ORDER BY o.ok";
    let plan = explain(&mut s, q18).await;
    assert!(
        depth(&plan, "LeftSemi Join") > depth(&plan, "Inner Join"),
        "{plan}"
    );
    assert_eq!(
        values(&mut s, q18).await,
        ["ann", "10", "12", "bob", "12", "21"]
    );

    // A filter on a table the semi join would pass keeps it on top: that join already
    // makes the rows few.
    let filtered = "SELECT name, o.ok FROM hive.j.c, hive.j.o \
                    WHERE o.ok IN (SELECT ok FROM hive.j.l WHERE q > 10) \
                    AND c.ck = o.ck AND c.name = 'bob'";
    let plan = explain(&mut s, filtered).await;
    assert!(
        depth(&plan, "LeftSemi Join") < depth(&plan, "Inner Join"),
        "{plan}"
    );
    assert_eq!(values(&mut s, filtered).await, ["bob", "12"]);
}
