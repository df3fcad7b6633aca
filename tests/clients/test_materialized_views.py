"""Materialized views through the python trino client (issue 33): Trino's statements and
metadata, refreshes that race, and a refresh that fails leaving the stored rows as they were."""

import datetime
import subprocess
import threading

from trino.dbapi import connect

from lakehouse import Server, aichemy, sql_command
from test_cdc import source  # noqa: F401 — the PostgreSQL fixture

DEFINITION = (
    "SELECT o.day, count(*) AS orders, sum(o.amount) AS revenue, max(o.amount) AS largest "
    "FROM iceberg.gold.orders o WHERE o.amount > 0 GROUP BY o.day"
)


def run(cur, statement, parameters=None):
    cur.execute(statement, parameters)
    return cur.fetchall()


def test_trinos_statements_and_metadata(warehouse):
    server = Server(warehouse)
    try:
        cur = connect(host="127.0.0.1", port=server.http_port, user="analyst").cursor()
        run(cur, "CREATE SCHEMA iceberg.gold")
        run(cur, "CREATE TABLE iceberg.gold.orders (id BIGINT, day DATE, amount DOUBLE)")
        run(cur, "INSERT INTO iceberg.gold.orders VALUES (1, DATE '2025-01-01', 10), "
                 "(2, DATE '2025-01-01', 5), (3, DATE '2025-01-02', 7)")
        run(cur, "CREATE MATERIALIZED VIEW iceberg.gold.daily GRACE PERIOD INTERVAL '1' HOUR "
                 "COMMENT 'revenue per day' WITH (partitioning = ARRAY['day']) AS "
                 + DEFINITION)
        assert run(cur, "REFRESH MATERIALIZED VIEW iceberg.gold.daily") == [[2]]
        assert cur.rowcount == 2
        assert run(cur, "SHOW CREATE MATERIALIZED VIEW iceberg.gold.daily") == [[
            "CREATE MATERIALIZED VIEW iceberg.gold.daily\nGRACE PERIOD INTERVAL '1' HOUR\n"
            "COMMENT 'revenue per day'\nWITH (\n   partitioning = ARRAY['day']\n) AS\n"
            + DEFINITION
        ]]
        assert run(cur, "SELECT * FROM iceberg.gold.daily ORDER BY day") == [
            [datetime.date(2025, 1, 1), 2, 15.0, 10.0],
            [datetime.date(2025, 1, 2), 1, 7.0, 7.0],
        ]
        assert run(cur, "SELECT column_name, data_type FROM iceberg.information_schema.columns "
                        "WHERE table_schema = 'gold' AND table_name = 'daily'") == [
            ["day", "date"], ["orders", "bigint"], ["revenue", "double"], ["largest", "double"]]
        assert run(cur, "SELECT table_name FROM iceberg.information_schema.tables "
                        "WHERE table_schema = 'gold' ORDER BY 1") == [["daily"], ["orders"]]
        [[storage, freshness, owner_free]] = run(
            cur, "SELECT storage_table, freshness, comment FROM system.metadata.materialized_views "
                 "WHERE name = 'daily'")
        assert storage.startswith("st_") and freshness == "FRESH"
        assert owner_free == "revenue per day"
        # The storage table is an Iceberg table like any other: partitioned as asked.
        partitions = run(cur, f'SELECT count(*) FROM iceberg.gold."{storage}$partitions"')
        assert partitions == [[2]]
        run(cur, "DROP MATERIALIZED VIEW iceberg.gold.daily")
        assert run(cur, "SHOW TABLES FROM iceberg.gold") == [["orders"]]
    finally:
        server.stop()


def test_refreshes_that_race_commit_once_each_or_conflict(warehouse):
    aichemy(
        warehouse,
        f"""
        CREATE SCHEMA iceberg.gold;
        CREATE TABLE iceberg.gold.orders (id BIGINT, day DATE, amount DOUBLE);
        INSERT INTO iceberg.gold.orders VALUES (1, DATE '2025-01-01', 10);
        CREATE MATERIALIZED VIEW iceberg.gold.daily AS {DEFINITION};
        REFRESH MATERIALIZED VIEW iceberg.gold.daily;
        """,
    )
    problems = []

    def refresh(i):
        statement = (f"INSERT INTO iceberg.gold.orders VALUES ({100 + i}, DATE '2025-01-0{1 + i % 3}',"
                     f" {i + 1}); REFRESH MATERIALIZED VIEW iceberg.gold.daily")
        done = subprocess.run(sql_command(warehouse, statement), capture_output=True, text=True)
        if done.returncode != 0 and "TRANSACTION_CONFLICT" not in done.stderr:
            problems.append(done.stderr)

    threads = [threading.Thread(target=refresh, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    # Whatever won, one more refresh makes the view its definition exactly.
    aichemy(warehouse, "REFRESH MATERIALIZED VIEW iceberg.gold.daily")
    stored = aichemy(warehouse, "SELECT * FROM iceberg.gold.daily ORDER BY day")
    expected = aichemy(warehouse, DEFINITION + " ORDER BY day")
    assert stored == expected
    assert sum(r["orders"] for r in stored) == 5


def test_a_failing_refresh_leaves_the_stored_rows(warehouse):
    aichemy(
        warehouse,
        """
        CREATE SCHEMA iceberg.gold;
        CREATE TABLE iceberg.gold.orders (id BIGINT, amount BIGINT);
        INSERT INTO iceberg.gold.orders VALUES (1, 10), (2, 5);
        CREATE MATERIALIZED VIEW iceberg.gold.shares AS
            SELECT id, 100 / amount AS share FROM iceberg.gold.orders;
        REFRESH MATERIALIZED VIEW iceberg.gold.shares;
        INSERT INTO iceberg.gold.orders VALUES (3, 0);
        """,
    )
    failed = subprocess.run(
        sql_command(warehouse, "REFRESH MATERIALIZED VIEW iceberg.gold.shares"),
        capture_output=True, text=True)
    assert failed.returncode != 0 and "DIVISION_BY_ZERO" in failed.stderr
    # Within its (unlimited) grace period the view still answers with the stored rows.
    assert aichemy(warehouse, "SELECT * FROM iceberg.gold.shares ORDER BY id") == [
        {"id": 1, "share": 10}, {"id": 2, "share": 20}]
    [row] = aichemy(warehouse, "SELECT freshness, last_refresh_type FROM "
                               "system.metadata.materialized_views WHERE name = 'shares'")
    assert row == {"freshness": "STALE", "last_refresh_type": "FULL"}
    aichemy(warehouse, "DELETE FROM iceberg.gold.orders WHERE amount = 0; "
                       "REFRESH MATERIALIZED VIEW iceberg.gold.shares")
    [row] = aichemy(warehouse, "SELECT freshness FROM system.metadata.materialized_views")
    assert row == {"freshness": "FRESH"}


def test_gold_view_over_a_cdc_mirror_refreshes_incrementally(source, warehouse):
    """A PostgreSQL mirror (upsert mode: each change merged by key into Iceberg) under a
    grouped view: after inserts, then updates and deletes, in PostgreSQL reach the mirror,
    each refresh reads only the added and rewritten files and the view equals its
    definition and PostgreSQL's own answer."""
    from test_cdc import as_owner, cdc_job
    from test_ingestion import query, wait_for

    as_owner(source, """
        CREATE TABLE customers (id integer PRIMARY KEY, segment text);
        CREATE TABLE orders (id bigint PRIMARY KEY, customer integer, amount numeric(12,2));
        INSERT INTO customers SELECT g, CASE WHEN g % 3 = 0 THEN 'corporate' ELSE 'retail' END
            FROM generate_series(1, 50) g;
        INSERT INTO orders SELECT g, g % 50 + 1, g * 1.25 FROM generate_series(1, 500) g;
    """)
    definition = (
        "SELECT c.segment, count(*) AS orders, sum(o.amount) AS revenue, "
        "min(o.amount) AS smallest FROM iceberg.shop_silver.orders o "
        "JOIN iceberg.shop_silver.customers c ON o.customer = c.id GROUP BY c.segment")
    server = Server(warehouse)
    try:
        cdc_job(server, source, "shop_mirror", "iceberg.shop_silver",
                ", table.name = 'customers, orders', mode = 'upsert'")
        wait_for(lambda: query(server, "SELECT count(*) FROM iceberg.shop_silver.orders")
                 == [[500]], what="snapshot")
        query(server, "CREATE SCHEMA iceberg.shop_gold")
        query(server, f"CREATE MATERIALIZED VIEW iceberg.shop_gold.revenue AS {definition}")
        query(server, "REFRESH MATERIALIZED VIEW iceberg.shop_gold.revenue")
        refresh_kinds = []

        def change_then_refresh(sql, orders):
            as_owner(source, sql)
            wait_for(lambda: query(server, "SELECT count(*) FROM iceberg.shop_silver.orders")
                     == [[orders]], what="changes mirrored")
            query(server, "REFRESH MATERIALIZED VIEW iceberg.shop_gold.revenue")
            [[kind]] = query(server, "SELECT last_refresh_type FROM "
                                     "system.metadata.materialized_views WHERE name = 'revenue'")
            refresh_kinds.append(kind)

        change_then_refresh(
            "INSERT INTO orders SELECT g, g % 50 + 1, 2 FROM generate_series(501, 520) g", 520)
        # Changes to the newer orders rewrite only the mirror's newer files.
        change_then_refresh("UPDATE orders SET amount = amount + 1000 WHERE id IN (505, 510); "
                            "DELETE FROM orders WHERE id = 515", 519)
        assert refresh_kinds == ["INCREMENTAL", "INCREMENTAL"]
        stored = query(server, "SELECT * FROM iceberg.shop_gold.revenue ORDER BY segment")
        assert stored == query(server, definition + " ORDER BY segment")
        # PostgreSQL's own answer.
        expected = source.psql("shop", "SELECT c.segment, count(*), sum(o.amount), min(o.amount) "
                                       "FROM orders o JOIN customers c ON o.customer = c.id "
                                       "GROUP BY c.segment ORDER BY 1")
        assert [[s, str(n), str(r), str(m)] for s, n, r, m in stored] == [
            line.split("|") for line in expected.splitlines() if line]
    finally:
        server.stop()
