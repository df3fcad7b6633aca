//! Plan shapes our optimizer rules give, and that the rows stay the same.

use aichemy_config::ScalarText;

use super::{cells, explain, fresh_lakehouse, lakehouse_with, run, session};

/// The first plan line containing `needle`.
fn line_of<'a>(plan: &'a str, needle: &str) -> &'a str {
    plan.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle} in {plan}"))
}

/// An operator's lines in an `EXPLAIN ANALYZE` text: its own, through its metrics.
fn operator_of<'a>(plan: &'a str, needle: &str) -> &'a str {
    let start = plan
        .find(needle)
        .unwrap_or_else(|| panic!("no {needle} in {plan}"));
    let rest = &plan[start..];
    let end = rest
        .find("Metrics:")
        .map(|m| m + rest[m..].find('\n').unwrap_or(rest.len() - m))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The indentation of the first plan line containing `needle`.
fn depth(plan: &str, needle: &str) -> usize {
    let line = line_of(plan, needle);
    line.len() - line.trim_start().len()
}

/// The plan's line with its FilterExec.
fn filter_line(plan: &str) -> &str {
    plan.lines()
        .find(|l| l.contains("FilterExec"))
        .unwrap_or_else(|| panic!("{plan}"))
}

/// Where `needle` stands in `line`.
fn position(line: &str, needle: &str) -> usize {
    line.find(needle)
        .unwrap_or_else(|| panic!("no {needle} in {line}"))
}

/// A lakehouse whose joins are all partitioned first, as joins of large tables are.
async fn partitioned_lakehouse() -> (std::sync::Arc<aichemy_engine::Lakehouse>, tempfile::TempDir) {
    lakehouse_with(|config| {
        for setting in [
            "optimizer.hash_join_single_partition_threshold",
            "optimizer.hash_join_single_partition_threshold_rows",
        ] {
            let zero = ScalarText("0".into());
            config.execution.datafusion.insert(setting.into(), zero);
        }
    })
    .await
}

/// The physical plan of an EXPLAIN's text.
fn physical_part(plan: &str) -> &str {
    let at = plan
        .find("physical_plan")
        .unwrap_or_else(|| panic!("{plan}"));
    &plan[at..]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_tables_join_their_one_neighbour_before_the_other_joins() {
    let (lakehouse, _dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.k",
            "CREATE TABLE hive.k.r (rk INTEGER, rname VARCHAR)",
            "CREATE TABLE hive.k.n (nk INTEGER, rk INTEGER, nname VARCHAR)",
            "CREATE TABLE hive.k.s (sk INTEGER, nk INTEGER)",
            "CREATE TABLE hive.k.l (sk INTEGER, v INTEGER)",
            "INSERT INTO hive.k.r VALUES (1, 'asia'), (2, 'europe')",
            "INSERT INTO hive.k.n VALUES (10, 1, 'japan'), (11, 2, 'france'), (12, 1, 'china')",
            "INSERT INTO hive.k.s VALUES (100, 10), (101, 11), (102, 12)",
            // Suppliers of no nation, so that suppliers are the larger table, as in TPC-H.
            "INSERT INTO hive.k.s SELECT CAST(value AS INTEGER), 99 \
             FROM generate_series(1000, 6000)",
            "INSERT INTO hive.k.l VALUES (100, 1), (101, 2), (102, 4), (100, 8)",
        ],
    )
    .await;
    // TPC-H q5's chain: region is filtered and meets only nation, which then meets only
    // supplier; all three are joined before the lines.
    let q5 = "SELECT nname, sum(v) FROM hive.k.l, hive.k.s, hive.k.n, hive.k.r \
              WHERE l.sk = s.sk AND s.nk = n.nk AND n.rk = r.rk AND rname = 'asia' \
              GROUP BY nname ORDER BY nname";
    let plan = explain(&mut s, q5).await;
    let lines = depth(&plan, "Inner Join: hive.k.l.sk = hive.k.s.sk");
    let nations = depth(&plan, "Inner Join: hive.k.s.nk = hive.k.n.nk");
    let regions = depth(&plan, "Inner Join: hive.k.n.rk = hive.k.r.rk");
    assert!(lines < nations && nations < regions, "{plan}");
    assert_eq!(values(&mut s, q5).await, ["china", "4", "japan", "9"]);

    // q7's pair of filtered nations, their condition on both: each joins its own table
    // first, the condition is checked where both are there.
    let q7 = "SELECT a.nname, b.nname, sum(v) \
              FROM hive.k.s s1, hive.k.l, hive.k.s s2, hive.k.n a, hive.k.n b \
              WHERE s1.sk = l.sk AND l.v = s2.sk - 100 AND s1.nk = a.nk AND s2.nk = b.nk \
              AND ((a.nname = 'japan' AND b.nname = 'france') \
                OR (a.nname = 'france' AND b.nname = 'japan')) \
              GROUP BY a.nname, b.nname ORDER BY a.nname";
    let plan = explain(&mut s, q7).await;
    let top = depth(&plan, "Inner Join: ");
    assert!(
        line_of(&plan, "Inner Join: ").contains("a.nname = Utf8(\"japan\")"),
        "{plan}"
    );
    assert!(top < depth(&plan, "Inner Join: s1.nk = a.nk"), "{plan}");
    assert!(top < depth(&plan, "Inner Join: s2.nk = b.nk"), "{plan}");
    assert_eq!(values(&mut s, q7).await, ["japan", "france", "1"]);

    // Nothing filtered, nothing moved: the joins stay in the written order.
    let plain = "SELECT count(*) FROM hive.k.l, hive.k.s, hive.k.n \
                 WHERE l.sk = s.sk AND s.nk = n.nk";
    let plan = explain(&mut s, plain).await;
    assert!(
        depth(&plan, "Inner Join: hive.k.s.nk = hive.k.n.nk")
            < depth(&plan, "Inner Join: hive.k.l.sk = hive.k.s.sk"),
        "{plan}"
    );
    assert_eq!(values(&mut s, plain).await, ["4"]);
}

/// The indentation of the plan's inner join whose line names both tables.
fn join_depth(plan: &str, a: &str, b: &str) -> usize {
    let line = plan
        .lines()
        .find(|l| l.contains("Inner Join:") && l.contains(a) && l.contains(b))
        .unwrap_or_else(|| panic!("no join of {a} and {b} in {plan}"));
    line.len() - line.trim_start().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_filtered_tables_meeting_one_table_the_smaller_joins_it_first() {
    let (lakehouse, _dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    // TPC-H q21's shape twice: lines meet the filtered orders and the suppliers of one
    // nation. In `big` the orders are many and the suppliers few, in `small` the other
    // way round.
    let mut setup = Vec::new();
    for (schema, orders, suppliers) in [("big", 5000, 3), ("small", 3, 5000)] {
        setup.extend([
            format!("CREATE SCHEMA hive.{schema}"),
            format!("CREATE TABLE hive.{schema}.n (nk INTEGER, nname VARCHAR)"),
            format!("CREATE TABLE hive.{schema}.s (sk BIGINT, nk INTEGER, sname VARCHAR)"),
            format!("CREATE TABLE hive.{schema}.o (ok BIGINT, status VARCHAR)"),
            format!("CREATE TABLE hive.{schema}.l (ok BIGINT, sk BIGINT, late BOOLEAN)"),
            format!("INSERT INTO hive.{schema}.n VALUES (1, 'japan'), (2, 'peru')"),
            format!(
                "INSERT INTO hive.{schema}.s SELECT value, CAST(value % 2 + 1 AS INTEGER), \
                 'supplier ' || CAST(value AS VARCHAR) FROM generate_series(1, {suppliers})"
            ),
            format!(
                "INSERT INTO hive.{schema}.o SELECT value, \
                 CASE WHEN value % 2 = 0 THEN 'F' ELSE 'O' END FROM generate_series(1, {orders})"
            ),
            format!(
                "INSERT INTO hive.{schema}.l SELECT value % 3 + 1 AS ok, value % 3 + 1 AS sk, value < 5 \
                 FROM generate_series(1, 8)"
            ),
        ]);
    }
    let setup: Vec<&str> = setup.iter().map(String::as_str).collect();
    run(&mut s, &setup).await;
    for schema in ["big", "small"] {
        let q21 = format!(
            "SELECT sname, count(*) FROM hive.{schema}.s, hive.{schema}.l, hive.{schema}.o, \
             hive.{schema}.n WHERE s.sk = l.sk AND o.ok = l.ok AND status = 'F' AND late \
             AND s.nk = n.nk AND nname = 'japan' GROUP BY sname ORDER BY sname"
        );
        let plan = explain(&mut s, &q21).await;
        let orders = join_depth(&plan, ".o.ok", ".l.ok");
        let suppliers = join_depth(&plan, ".s.sk", ".l.sk");
        if schema == "big" {
            assert!(orders < suppliers, "{plan}");
        } else {
            assert!(suppliers < orders, "{plan}");
        }
        // Lines 1 to 4 are late; of their suppliers only 2 is in japan, with lines 1 and
        // 4, both of order 2, which is 'F'.
        assert_eq!(values(&mut s, &q21).await, ["supplier 2", "2"], "{schema}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_table_equal_to_several_through_one_key_joins_the_largest_first() {
    let (lakehouse, _dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.e",
            "CREATE TABLE hive.e.r (rk INTEGER, rname VARCHAR)",
            "CREATE TABLE hive.e.n (nk INTEGER, rk INTEGER, nname VARCHAR)",
            "CREATE TABLE hive.e.c (ck INTEGER, nk INTEGER)",
            "CREATE TABLE hive.e.s (sk INTEGER, nk INTEGER)",
            "CREATE TABLE hive.e.o (ok INTEGER, ck INTEGER, day INTEGER)",
            "CREATE TABLE hive.e.l (ok INTEGER, sk INTEGER)",
            "INSERT INTO hive.e.r VALUES (1, 'asia'), (2, 'europe')",
            "INSERT INTO hive.e.n VALUES (10, 1, 'japan'), (11, 2, 'france'), (12, 1, 'china')",
            // Customers are the larger of the two tables of a nation, as in TPC-H.
            "INSERT INTO hive.e.c SELECT value, value % 3 + 10 FROM generate_series(1, 3000)",
            "INSERT INTO hive.e.s SELECT value, value % 3 + 10 FROM generate_series(1, 30)",
            "INSERT INTO hive.e.o SELECT value, value % 3000 + 1, value % 365 \
             FROM generate_series(1, 6000)",
            "INSERT INTO hive.e.l SELECT value % 6000 + 1, value % 29 + 1 \
             FROM generate_series(1, 12000)",
        ],
    )
    .await;
    // TPC-H q5's shape: the nations of one region meet suppliers, and customers through
    // `c.nk = s.nk`. Nation is equal to both through one key, so it joins the customers,
    // the larger, before they meet the orders.
    let q5 = "SELECT nname, count(*) FROM hive.e.c, hive.e.o, hive.e.l, hive.e.s, hive.e.n, \
              hive.e.r WHERE c.ck = o.ck AND l.ok = o.ok AND l.sk = s.sk AND c.nk = s.nk \
              AND s.nk = n.nk AND n.rk = r.rk AND rname = 'asia' AND day >= 100 AND day < 200 \
              GROUP BY nname ORDER BY nname";
    let plan = explain(&mut s, q5).await;
    let nations = join_depth(&plan, "hive.e.c.nk", "hive.e.n.nk");
    let orders = join_depth(&plan, "hive.e.c.ck", "hive.e.o.ck");
    let suppliers = join_depth(&plan, "hive.e.l.sk", "hive.e.s.sk");
    assert!(suppliers < orders && orders < nations, "{plan}");
    assert_eq!(values(&mut s, q5).await, ["china", "386", "japan", "348"]);
    // Two columns of one table equal to one key: no supplier's key is its nation's.
    let both = "SELECT count(*) FROM hive.e.s, hive.e.n, hive.e.r \
                WHERE s.sk = n.nk AND s.nk = n.nk AND n.rk = r.rk AND rname = 'asia'";
    assert_eq!(values(&mut s, both).await, ["0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_whose_files_say_its_filter_is_selective_joins_before_a_smaller_one() {
    let (lakehouse, _dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.q2",
            "CREATE TABLE hive.q2.r (rk INTEGER, rname VARCHAR)",
            "CREATE TABLE hive.q2.n (nk INTEGER, rk INTEGER)",
            "CREATE TABLE hive.q2.s (sk INTEGER, nk INTEGER, sname VARCHAR)",
            "CREATE TABLE hive.q2.p (pk INTEGER, size INTEGER, ptype VARCHAR)",
            "CREATE TABLE hive.q2.ps (pk INTEGER, sk INTEGER, cost INTEGER)",
            "INSERT INTO hive.q2.r VALUES (1, 'asia'), (2, 'europe')",
            "INSERT INTO hive.q2.n VALUES (10, 1), (11, 2), (12, 2)",
            "INSERT INTO hive.q2.s SELECT value, value % 3 + 10, 'supplier ' || CAST(value AS VARCHAR) \
             FROM generate_series(1, 100)",
            "INSERT INTO hive.q2.p SELECT value, value % 50 + 1, \
             CASE WHEN value % 3 = 0 THEN 'LARGE BRASS' ELSE 'SMALL TIN' END \
             FROM generate_series(1, 3000)",
            "INSERT INTO hive.q2.ps SELECT value % 3000 + 1, value % 100 + 1, value % 7 \
             FROM generate_series(1, 12000)",
        ],
    )
    .await;
    // TPC-H q2's shape. The parts' file is larger than the suppliers', but its min and max
    // say one size of 50 keeps 2 % of it, against the default fifth for the suppliers of
    // one region: the parts join their supplies first, before the suppliers do, even
    // though they also meet the cheapest cost per part (an aggregate of unknown size)
    // through the same key.
    let q2 = "SELECT count(*), sum(p.pk), sum(sup.cost) FROM hive.q2.p, hive.q2.ps AS sup, \
              hive.q2.s AS seller, hive.q2.n AS nat, hive.q2.r AS reg \
              WHERE p.pk = sup.pk AND seller.sk = sup.sk AND p.size = 15 \
              AND p.ptype LIKE '%BRASS' AND seller.nk = nat.nk AND nat.rk = reg.rk \
              AND reg.rname = 'europe' AND sup.cost = (SELECT min(ps.cost) \
              FROM hive.q2.ps, hive.q2.s, hive.q2.n, hive.q2.r WHERE p.pk = ps.pk \
              AND s.sk = ps.sk AND s.nk = n.nk AND n.rk = r.rk AND r.rname = 'europe')";
    let plan = explain(&mut s, q2).await;
    let parts = join_depth(&plan, "hive.q2.p.pk", "sup.pk");
    let sellers = join_depth(&plan, "seller.sk", "sup.sk");
    assert!(parts > sellers, "{plan}");
    // Parts 114, 264, … 2964 (size 15, BRASS) have one European supplier each, of
    // their four supplies those of the cheapest cost.
    assert_eq!(values(&mut s, q2).await, ["20", "30780", "10"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correlated_aggregate_groups_only_the_keys_a_filtered_join_lets_through() {
    let (lakehouse, _dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.g",
            "CREATE TABLE hive.g.p (pk INTEGER, brand VARCHAR)",
            "CREATE TABLE hive.g.li (pk INTEGER, q INTEGER, price INTEGER)",
            "INSERT INTO hive.g.p VALUES (1, 'a'), (2, 'b'), (3, 'b')",
            "INSERT INTO hive.g.li VALUES (1, 1, 100), (1, 9, 200), (2, 2, 10), (2, 6, 20), \
             (3, 3, 1), (3, 5, 2), (3, 10, 4)",
        ],
    )
    .await;
    // TPC-H q17's shape: the lines of brand b parts below their part's average quantity.
    let q17 = "SELECT sum(price) FROM hive.g.li, hive.g.p \
               WHERE p.pk = li.pk AND brand = 'b' \
               AND q < (SELECT avg(q) FROM hive.g.li l2 WHERE l2.pk = p.pk)";
    let plan = explain(&mut s, q17).await;
    assert!(
        depth(&plan, "LeftSemi Join: l2.pk = __aichemy_group_key0")
            > depth(&plan, "Aggregate: groupBy=[[l2.pk]]"),
        "{plan}"
    );
    assert_eq!(values(&mut s, q17).await, ["13"]);

    // Without the filter on p every group is needed: the aggregate reads all lines.
    let unfiltered = "SELECT sum(price) FROM hive.g.li, hive.g.p \
                      WHERE p.pk = li.pk \
                      AND q < (SELECT avg(q) FROM hive.g.li l2 WHERE l2.pk = p.pk)";
    let plan = explain(&mut s, unfiltered).await;
    assert!(!plan.contains("__aichemy_group_key"), "{plan}");
    assert_eq!(values(&mut s, unfiltered).await, ["113"]);

    // q15's shape: decorrelating the maximum leaves a filter of `true` on p, which keeps
    // every row, so it is no reason to filter the groups either.
    let q15 = "WITH rev AS (SELECT pk, sum(price) AS total FROM hive.g.li GROUP BY pk) \
               SELECT p.pk FROM hive.g.p, rev \
               WHERE p.pk = rev.pk AND total = (SELECT max(total) FROM rev)";
    let plan = explain(&mut s, q15).await;
    assert!(!plan.contains("__aichemy_group_key"), "{plan}");
    assert_eq!(values(&mut s, q15).await, ["1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregate_the_query_repeats_is_computed_once() {
    let (lakehouse, _dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.r",
            "CREATE TABLE hive.r.s (sk INTEGER, name VARCHAR)",
            "CREATE TABLE hive.r.l (sk INTEGER, v INTEGER)",
            "INSERT INTO hive.r.s VALUES (1, 'a'), (2, 'b'), (3, 'c')",
            "INSERT INTO hive.r.l VALUES (1, 5), (1, 7), (2, 20), (3, 1), (3, 11)",
        ],
    )
    .await;
    // TPC-H q15's shape: the CTE is read for its rows and for their largest total.
    let q15 = "WITH rev AS (SELECT sk, sum(v) AS total FROM hive.r.l WHERE v > 0 GROUP BY sk) \
               SELECT name, total FROM hive.r.s, rev \
               WHERE s.sk = rev.sk AND total = (SELECT max(total) FROM rev)";
    let plan = explain(&mut s, q15).await;
    assert_eq!(plan.matches("SharedExec: readers=2").count(), 2, "{plan}");
    assert_eq!(values(&mut s, q15).await, ["b", "20"]);

    // Different filters, different rows: nothing is shared.
    let two = "WITH a AS (SELECT sk, sum(v) AS total FROM hive.r.l WHERE v > 1 GROUP BY sk), \
               b AS (SELECT sk, sum(v) AS total FROM hive.r.l WHERE v > 5 GROUP BY sk) \
               SELECT a.sk, a.total, b.total FROM a JOIN b ON a.sk = b.sk ORDER BY a.sk";
    let plan = explain(&mut s, two).await;
    assert!(!plan.contains("SharedExec"), "{plan}");
    assert_eq!(
        values(&mut s, two).await,
        ["1", "12", "7", "2", "20", "20", "3", "11", "11"]
    );

    // A volatile function gives each reference its own values: shared, every pair would
    // match.
    let volatile = "WITH r AS (SELECT sk, sum(v * random()) AS x FROM hive.r.l GROUP BY sk) \
                    SELECT count(*) FROM r r1 JOIN r r2 ON r1.sk = r2.sk AND r1.x = r2.x";
    let plan = explain(&mut s, volatile).await;
    assert!(!plan.contains("SharedExec"), "{plan}");
    assert_eq!(values(&mut s, volatile).await, ["0"]);

    // Each reference filtered by its own join at run time (a dynamic filter on the group
    // key) keeps its own rows.
    let joined = "WITH rev AS (SELECT sk, sum(v) AS total FROM hive.r.l GROUP BY sk) \
                  SELECT x.total, y.total \
                  FROM (SELECT total FROM hive.r.s s JOIN rev ON s.sk = rev.sk WHERE s.name = 'a') x, \
                       (SELECT total FROM hive.r.s s JOIN rev ON s.sk = rev.sk WHERE s.name = 'b') y";
    assert_eq!(values(&mut s, joined).await, ["12", "20"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_evaluates_its_cheap_conditions_first() {
    let (lakehouse, _dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.f",
            "CREATE TABLE hive.f.l (mode VARCHAR, shipped DATE, received DATE, n INTEGER)",
            "INSERT INTO hive.f.l VALUES ('MAIL', DATE '1994-01-02', DATE '1994-01-05', 2), \
             ('SHIP', DATE '1993-01-02', DATE '1994-01-05', 3), \
             ('AIR', DATE '1994-03-02', DATE '1994-03-05', 5), \
             ('MAIL', DATE '1994-02-02', DATE '1994-02-01', 1)",
        ],
    )
    .await;
    // TPC-H q12's shape: the strings are compared last, on the rows the dates kept.
    let q12 = "SELECT mode FROM hive.f.l WHERE mode IN ('MAIL', 'SHIP') \
               AND shipped < received AND received >= DATE '1994-01-01' ORDER BY mode";
    let plan = explain(&mut s, q12).await;
    let filter = filter_line(&plan);
    let at = |needle: &str| position(filter, needle);
    assert!(at("shipped") < at("mode"), "{filter}");
    assert!(at("received@") < at("mode"), "{filter}");
    assert_eq!(values(&mut s, q12).await, ["MAIL", "SHIP"]);

    // A condition that can fail stays behind the ones written before it.
    let guarded = "SELECT mode FROM hive.f.l WHERE mode = 'MAIL' AND n <> 0 AND 10 / n > 1 \
                   AND shipped < received";
    let plan = explain(&mut s, guarded).await;
    let filter = filter_line(&plan);
    let at = |needle: &str| position(filter, needle);
    assert!(at("!= 0") < at("10 /"), "{filter}");
    assert!(at("mode") < at("10 /"), "{filter}");
    assert!(at("shipped") < at("mode"), "{filter}");
    assert_eq!(values(&mut s, guarded).await, ["MAIL"]);

    // The guard keeps most rows; the division still never meets the row it removed.
    run(
        &mut s,
        &["INSERT INTO hive.f.l VALUES ('MAIL', DATE '1994-01-02', DATE '1994-01-05', 0)"],
    )
    .await;
    let most = "SELECT n FROM hive.f.l WHERE n <> 0 AND 10 / n > 2 ORDER BY n";
    assert_eq!(values(&mut s, most).await, ["1", "2", "3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregate_groups_on_string_views_and_copies_only_its_keys() {
    let (lakehouse, _dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.g",
            "CREATE TABLE hive.g.l (flag VARCHAR, status VARCHAR, q INTEGER, shipped DATE)",
            "INSERT INTO hive.g.l VALUES ('R', 'F', 1, DATE '1994-01-01'), \
             ('A', 'F', 2, DATE '1994-01-01'), ('R', 'F', 3, DATE '1999-01-01'), \
             ('N', 'O', 4, DATE '1994-01-01'), ('R', 'F', 5, DATE '1994-01-01'), \
             ('N', 'a key longer than twelve bytes', 6, DATE '1994-01-01')",
        ],
    )
    .await;
    // TPC-H q1's shape: the grouping reads views, the copy into strings is above it.
    let q1 = "SELECT flag, status, sum(q), count(*) FROM hive.g.l \
              WHERE shipped <= DATE '1998-09-02' GROUP BY flag, status ORDER BY flag, status";
    let plan = explain(&mut s, q1).await;
    assert!(
        depth(&plan, "CAST(flag") < depth(&plan, "AggregateExec"),
        "{plan}"
    );
    assert_eq!(
        values(&mut s, q1).await,
        [
            "A",
            "F",
            "2",
            "1",
            "N",
            "O",
            "4",
            "1",
            "N",
            "a key longer than twelve bytes",
            "6",
            "1",
            "R",
            "F",
            "6",
            "2"
        ]
    );
    let typed = "SELECT typeof(flag), flag || status FROM hive.g.l \
                 WHERE q = 1 GROUP BY flag, status";
    assert_eq!(values(&mut s, typed).await, ["varchar", "RF"]);

    // An aggregate that reads the column's values keeps it a string below.
    let counted = "SELECT status, max(flag) FROM hive.g.l GROUP BY status ORDER BY status";
    let plan = explain(&mut s, counted).await;
    assert!(
        depth(&plan, "CAST(flag") > depth(&plan, "AggregateExec"),
        "{plan}"
    );
    assert_eq!(
        values(&mut s, counted).await,
        ["F", "R", "O", "N", "a key longer than twelve bytes", "N"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_of_dates_is_estimated_from_the_files_and_its_few_rows_build_one_table() {
    let (lakehouse, _dir) = partitioned_lakehouse().await;
    let mut s = session(&lakehouse);
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.d",
            "CREATE TABLE hive.d.o (ok INTEGER, day DATE)",
            "CREATE TABLE hive.d.l (ok INTEGER)",
            "INSERT INTO hive.d.o SELECT CAST(row_number() OVER (ORDER BY day) AS INTEGER), day \
             FROM unnest(sequence(DATE '1994-01-01', DATE '1996-09-26', INTERVAL '1' DAY)) AS t(day)",
            "INSERT INTO hive.d.l SELECT CAST(value % 1000 AS INTEGER) FROM generate_series(1, 2000)",
        ],
    )
    .await;
    // TPC-H q4's shape: 30 of 1000 days of orders (3 %, not the default 20 %) meet 2000
    // lines, more than 16 times as many, so the orders build one table.
    let q4 = "SELECT count(*) FROM hive.d.o WHERE day >= DATE '1994-02-01' \
              AND day < DATE '1994-03-03' AND EXISTS (SELECT * FROM hive.d.l WHERE l.ok = o.ok)";
    let plan = explain(&mut s, q4).await;
    assert!(
        line_of(&plan, "HashJoinExec").contains("mode=CollectLeft"),
        "{plan}"
    );
    assert_eq!(cells(&mut s, q4).await, [[Some("30".to_string())]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_is_estimated_as_one_of_the_columns_distinct_values_and_its_rows_build_one_table() {
    let (lakehouse, _dir) = partitioned_lakehouse().await;
    let mut s = session(&lakehouse);
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.d",
            "CREATE TABLE hive.d.p (pk INTEGER, kind VARCHAR)",
            "CREATE TABLE hive.d.l (pk INTEGER)",
            "INSERT INTO hive.d.p SELECT CAST(value AS INTEGER), 'kind ' || CAST(value % 50 AS VARCHAR) \
             FROM generate_series(0, 999)",
            "INSERT INTO hive.d.l SELECT CAST(value % 1000 AS INTEGER) FROM generate_series(1, 2000)",
        ],
    )
    .await;
    // TPC-H q8's shape: one of 50 kinds (2 %, not the default 20 %) meets 2000 lines,
    // more than 16 times as many, so the parts of that kind build one table.
    let q8 = "SELECT count(*) FROM hive.d.p JOIN hive.d.l ON p.pk = l.pk WHERE p.kind = 'kind 7'";
    let plan = explain(&mut s, q8).await;
    assert!(
        line_of(&plan, "HashJoinExec").contains("mode=CollectLeft"),
        "{plan}"
    );
    assert_eq!(cells(&mut s, q8).await, [[Some("40".to_string())]]);
    // Rows other than one text are most of them: the join stays partitioned.
    let most = q8.replace("p.kind = ", "p.kind <> ");
    let plan = explain(&mut s, &most).await;
    assert!(
        line_of(&plan, "HashJoinExec").contains("mode=Partitioned"),
        "{plan}"
    );
    assert_eq!(cells(&mut s, &most).await, [[Some("1960".to_string())]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_aggregate_sends_its_groups_on_when_they_fill_a_cache() {
    let (lakehouse, _dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    // 300 000 rows: keys in order, two rows each (as lines of one order follow each other),
    // and keys that come back every 100 000 rows.
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.p",
            "CREATE TABLE hive.p.l (k BIGINT, spread BIGINT, v BIGINT)",
            "INSERT INTO hive.p.l SELECT value / 2, value % 100000, value \
             FROM generate_series(1, 300000)",
        ],
    )
    .await;
    let ordered = "SELECT count(*), sum(n), sum(s), max(n) FROM \
                   (SELECT k, count(*) AS n, sum(v) AS s FROM hive.p.l GROUP BY k)";
    let plan = explain(&mut s, ordered).await;
    assert!(plan.contains("BoundedPartialAggregateExec"), "{plan}");
    assert_eq!(
        values(&mut s, ordered).await,
        ["150001", "300000", "45000150000", "2"]
    );
    // The first stage sent its groups on several times (150 001 keys do not fit in a
    // cache), each key once: pairs of rows became one group.
    let analyzed = values(&mut s, &format!("EXPLAIN ANALYZE {ordered}"))
        .await
        .join("\n");
    let stage = operator_of(&analyzed, "BoundedPartialAggregateExec");
    let flushes: f64 = stage
        .split("flushes=")
        .nth(1)
        .and_then(|rest| rest.split([',', ']']).next())
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("{stage}"));
    assert!(flushes > 1.0, "{stage}");
    assert!(stage.contains("output_rows=150"), "{stage}");

    // The same with two keys, which group in another kind of table.
    let two_keys = "SELECT count(*), sum(n), sum(s), max(n) FROM \
                    (SELECT k, k % 3, count(*) AS n, sum(v) AS s FROM hive.p.l GROUP BY k, k % 3)";
    assert_eq!(
        values(&mut s, two_keys).await,
        ["150001", "300000", "45000150000", "2"]
    );

    // Keys far apart (each pair comes back every 100 000 rows) meet only in the final
    // stage: the first stage finds grouping does not pay and sends rows on as they come.
    let spread = "SELECT count(*), min(n), max(n), sum(s) FROM \
                  (SELECT spread, k % 2 AS r, count(*) AS n, sum(v) AS s \
                   FROM hive.p.l GROUP BY spread, k % 2)";
    let plan = explain(&mut s, spread).await;
    assert!(plan.contains("BoundedPartialAggregateExec"), "{plan}");
    assert_eq!(
        values(&mut s, spread).await,
        ["100000", "3", "3", "45000150000"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_in_streams_the_outer_rows_past_the_collected_list() {
    let (lakehouse, _dir) = fresh_lakehouse().await;
    let mut s = session(&lakehouse);
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.n",
            "CREATE TABLE hive.n.outer_rows (k BIGINT, v BIGINT)",
            "INSERT INTO hive.n.outer_rows SELECT value % 1000, value FROM generate_series(1, 50000)",
            "INSERT INTO hive.n.outer_rows SELECT value % 1000, value FROM generate_series(50001, 100000)",
            "CREATE TABLE hive.n.list (k BIGINT)",
            "INSERT INTO hive.n.list SELECT value * 10 FROM generate_series(0, 99)",
        ],
    )
    .await;
    let query = "SELECT count(*), count(DISTINCT k), sum(v) FROM hive.n.outer_rows \
                 WHERE k NOT IN (SELECT k FROM hive.n.list)";
    let plan = explain(&mut s, query).await;
    // No anti join collects the outer rows: they pass the list's keys partition by partition.
    assert!(plan.contains("NotInExec"), "{plan}");
    assert!(!plan.contains("HashJoinExec"), "{plan}");
    let below = plan
        .lines()
        .skip_while(|line| !line.contains("NotInExec"))
        .nth(1)
        .unwrap_or_else(|| panic!("{plan}"));
    assert!(
        below.contains("outer_rows") && below.contains("2 groups"),
        "{plan}"
    );
    // 100 of the 1000 keys are listed: 90 000 rows keep 900 keys.
    assert_eq!(
        values(&mut s, query).await,
        [
            "90000",
            "900",
            &(5_000_050_000u64 - 500_050_000).to_string()
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_on_two_keys_is_estimated_on_both_and_its_smaller_result_builds() {
    let (lakehouse, _dir) = partitioned_lakehouse().await;
    let mut s = session(&lakehouse);
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.k",
            "CREATE TABLE hive.k.ps (pk BIGINT, sk BIGINT)",
            "CREATE TABLE hive.k.l (ok BIGINT, pk BIGINT, sk BIGINT)",
            "CREATE TABLE hive.k.o (ok BIGINT)",
            // 8000 part-suppliers: 2000 parts of 4 suppliers each.
            "INSERT INTO hive.k.ps SELECT value / 4, value % 4 FROM generate_series(0, 7999)",
            // 12 000 lines, each of one part-supplier and one order.
            "INSERT INTO hive.k.l SELECT value, value % 2000, (value / 2000) % 4 \
             FROM generate_series(0, 11999)",
            "INSERT INTO hive.k.o SELECT value FROM generate_series(0, 14999)",
        ],
    )
    .await;
    // TPC-H q9's shape. On its last key alone (4 suppliers) the lines meeting their
    // part-suppliers would be 24 M rows and the 15 000 orders would build the table;
    // on both keys they are 12 000, and they build it.
    let query = "SELECT count(*) FROM hive.k.ps, hive.k.l, hive.k.o \
                 WHERE ps.pk = l.pk AND ps.sk = l.sk AND o.ok = l.ok";
    let plan = explain(&mut s, query).await;
    let physical = physical_part(&plan);
    let two_keys = physical.find("pk@").unwrap_or_else(|| panic!("{physical}"));
    let orders = physical
        .find("/k/o/")
        .unwrap_or_else(|| panic!("{physical}"));
    assert!(two_keys < orders, "{physical}");
    assert_eq!(values(&mut s, query).await, ["12000"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_with_an_aggregate_is_estimated_by_its_groups() {
    let (lakehouse, _dir) = partitioned_lakehouse().await;
    let mut s = session(&lakehouse);
    run(
        &mut s,
        &[
            "CREATE SCHEMA hive.g",
            "CREATE TABLE hive.g.p (pk BIGINT, brand VARCHAR)",
            "CREATE TABLE hive.g.l (pk BIGINT, q BIGINT)",
            // 2000 parts of 10 brands; 32 lines a part, of quantities 0 to 31.
            "INSERT INTO hive.g.p SELECT value, 'b' || CAST(value % 10 AS VARCHAR) \
             FROM generate_series(0, 1999)",
            "INSERT INTO hive.g.l SELECT value % 2000, value / 2000 FROM generate_series(0, 63999)",
        ],
    )
    .await;
    // The average quantity of each part, joined to every line. The averages are one per
    // part (2000 at most), not one per line (64 000), so they build one table the lines
    // probe unmoved.
    let query = "SELECT count(*), sum(q) FROM hive.g.l \
                 WHERE l.q < (SELECT 0.2 * avg(m.q) FROM hive.g.l AS m WHERE m.pk = l.pk)";
    let plan = explain(&mut s, query).await;
    let physical = physical_part(&plan);
    let top_join = physical
        .find("HashJoinExec")
        .map(|at| &physical[at..])
        .unwrap_or_else(|| panic!("{physical}"));
    assert!(
        top_join.starts_with("HashJoinExec: mode=CollectLeft"),
        "{physical}"
    );
    assert!(physical.contains("AggregateExec"), "{physical}");
    // Each part averages 15.5: its lines of quantity 0 to 3 stay.
    assert_eq!(values(&mut s, query).await, ["8000", "12000"]);
    // TPC-H q17's shape, the parts of one brand joined too: of the 200 parts of brand
    // b1, the same lines.
    let q17 = "SELECT count(*), sum(q) FROM hive.g.l, hive.g.p \
               WHERE p.pk = l.pk AND p.brand = 'b1' \
               AND l.q < (SELECT 0.2 * avg(q) FROM hive.g.l WHERE l.pk = p.pk)";
    assert_eq!(values(&mut s, q17).await, ["800", "1200"]);
}
