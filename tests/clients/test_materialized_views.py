"""Materialized views through the python trino client (issue 33): Trino's statements and
metadata, refreshes that race, and a refresh that fails leaving the stored rows as they were."""

import datetime
import subprocess
import threading

from trino.dbapi import connect

from lakehouse import Server, aichemy, sql_command

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
