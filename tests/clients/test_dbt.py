"""dbt-trino (dbt-core 1.10) runs a small medallion project (tests/clients/dbt_medallion)
against `aichemy serve`, unchanged: incremental models kept by `merge`, `delete+insert` and
`append`, a `dbt snapshot` with the timestamp strategy, a gold table (replaced by `CREATE
OR REPLACE TABLE`) and view, dbt tests on every layer and persisted docs. A second `dbt
build` after bronze rows were updated, inserted and given a new column gives the right
silver, gold and snapshot rows; a merge that two source rows would apply to one target row
fails and leaves silver as it was.

Run by scripts/test.sh with AICHEMY_BIN set to the debug binary.
"""

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
from trino.dbapi import connect

from lakehouse import Server

PROJECT = Path(__file__).parent / "dbt_medallion"
DBT = Path(sys.executable).parent / "dbt"


def run_dbt(project, profile, schema, port, folder, *args):
    """Runs dbt on `project` against the server on `port` (its profile `profile` writing
    into `iceberg.<schema>`, its profile, target and log folders under `folder`); answers
    (exit code, what it printed)."""
    profiles = folder / "profiles"
    profiles.mkdir(exist_ok=True)
    (profiles / "profiles.yml").write_text(f"""
{profile}:
  target: dev
  outputs:
    dev:
      type: trino
      method: none
      user: dbt
      host: 127.0.0.1
      port: {port}
      http_scheme: http
      database: iceberg
      schema: {schema}
      threads: 2
""")
    done = subprocess.run(
        [DBT, *args, "--project-dir", project, "--profiles-dir", profiles,
         "--target-path", folder / "target", "--log-path", folder / "logs"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "NO_COLOR": "1"})
    return done.returncode, done.stdout + done.stderr


@pytest.fixture()
def lakehouse(tmp_path):
    server = Server(tmp_path / "wh")
    yield server, tmp_path
    server.stop()


def dbt(lakehouse, *args):
    """Runs dbt on the project; answers (exit code, what it printed)."""
    server, tmp = lakehouse
    return run_dbt(PROJECT, "aichemy", "medallion", server.http_port, tmp, *args)


def query(lakehouse, *statements):
    """Runs statements through the python client; answers the last one's rows."""
    cur = connect(host="127.0.0.1", port=lakehouse[0].http_port, user="test",
                  http_scheme="http").cursor()
    rows = None
    for statement in statements:
        cur.execute(statement)
        rows = cur.fetchall()
    return rows


def at(day, hour):
    return datetime.datetime(2026, 1, day, hour)


def ts(day, hour):
    return f"TIMESTAMP '2026-01-{day:02} {hour:02}:00:00'"


def test_dbt_builds_the_medallion_twice_and_follows_changed_rows(lakehouse):
    query(
        lakehouse,
        "CREATE SCHEMA iceberg.bronze",
        "CREATE TABLE iceberg.bronze.orders (order_id BIGINT, customer VARCHAR, "
        "amount DOUBLE, status VARCHAR, updated_at TIMESTAMP(6))",
        f"INSERT INTO iceberg.bronze.orders VALUES (1, 'ann', 10.0, 'placed', {ts(1, 10)}), "
        f"(2, 'bob', 20.0, 'placed', {ts(1, 11)}), (3, 'ann', 30.0, 'shipped', {ts(2, 9)})",
        "CREATE TABLE iceberg.bronze.order_events (event_id BIGINT, order_id BIGINT, "
        "status VARCHAR, happened_at TIMESTAMP(6))",
        f"INSERT INTO iceberg.bronze.order_events VALUES (1, 1, 'placed', {ts(1, 10)}), "
        f"(2, 2, 'placed', {ts(1, 11)}), (3, 3, 'placed', {ts(2, 8)}), "
        f"(4, 3, 'shipped', {ts(2, 9)})",
    )
    code, out = dbt(lakehouse, "build")
    assert code == 0, out
    assert "PASS=15 WARN=0 ERROR=0" in out, out
    assert query(lakehouse, "SELECT * FROM iceberg.medallion_gold.customer_revenue "
                 "ORDER BY 1") == [["ann", 2, 40.0], ["bob", 1, 20.0]]

    # The shop ships order 1, takes order 3 back, gets order 4 through a new channel.
    query(
        lakehouse,
        f"UPDATE iceberg.bronze.orders SET status = 'shipped', updated_at = {ts(3, 8)} "
        "WHERE order_id = 1",
        f"UPDATE iceberg.bronze.orders SET status = 'returned', updated_at = {ts(3, 9)} "
        "WHERE order_id = 3",
        "ALTER TABLE iceberg.bronze.orders ADD COLUMN channel VARCHAR",
        f"INSERT INTO iceberg.bronze.orders VALUES (4, 'cat', 40.0, 'placed', {ts(3, 10)}, "
        "'web')",
        f"INSERT INTO iceberg.bronze.order_events VALUES (5, 1, 'shipped', {ts(3, 8)}), "
        f"(6, 3, 'returned', {ts(3, 9)}), (7, 4, 'placed', {ts(3, 10)})",
    )
    code, out = dbt(lakehouse, "build")
    assert code == 0, out
    assert "PASS=15 WARN=0 ERROR=0" in out, out

    assert query(lakehouse, "SELECT * FROM iceberg.medallion_silver.orders ORDER BY 1") == [
        [1, "ann", 10.0, "shipped", at(3, 8), None],
        [2, "bob", 20.0, "placed", at(1, 11), None],
        [3, "ann", 30.0, "returned", at(3, 9), None],
        [4, "cat", 40.0, "placed", at(3, 10), "web"],
    ]
    assert query(lakehouse, "SELECT order_id, order_day FROM "
                 "iceberg.medallion_silver.orders_by_day ORDER BY 1") == [
        [1, datetime.date(2026, 1, 3)], [2, datetime.date(2026, 1, 1)],
        [3, datetime.date(2026, 1, 3)], [4, datetime.date(2026, 1, 3)],
    ]
    assert query(lakehouse, "SELECT event_id FROM iceberg.medallion_silver.order_events "
                 "ORDER BY 1") == [[i] for i in range(1, 8)]
    assert query(lakehouse, "SELECT * FROM iceberg.medallion_gold.customer_revenue "
                 "ORDER BY 1") == [["ann", 1, 10.0], ["bob", 1, 20.0], ["cat", 1, 40.0]]
    # The gold table was replaced in place (on_table_exists='replace'): one table, two
    # snapshots.
    assert query(lakehouse, "SELECT count(*) FROM "
                 'iceberg.medallion_gold."customer_revenue$snapshots"') == [[2]]
    assert query(lakehouse, "SELECT * FROM iceberg.medallion_gold.open_orders "
                 "ORDER BY 1") == [[2, "bob", 1], [4, "cat", 1]]
    # The snapshot closed the old versions of orders 1 and 3 when their new ones arrived.
    assert query(lakehouse, "SELECT order_id, status, dbt_valid_from, dbt_valid_to FROM "
                 "iceberg.snapshots.orders_history ORDER BY 1, 3") == [
        [1, "placed", at(1, 10), at(3, 8)],
        [1, "shipped", at(3, 8), None],
        [2, "placed", at(1, 11), None],
        [3, "shipped", at(2, 9), at(3, 9)],
        [3, "returned", at(3, 9), None],
        [4, "placed", at(3, 10), None],
    ]
    # persist_docs put the models' descriptions on the tables and columns.
    assert query(lakehouse, "SELECT comment FROM system.metadata.table_comments WHERE "
                 "schema_name = 'medallion_silver' AND table_name = 'orders'") == [
        ["The newest state of each order, merged on order_id."]]

    # Two new bronze rows for order 2: the merge must not pick one, and changes nothing.
    before = query(lakehouse, 'SELECT snapshot_id FROM iceberg.medallion_silver."orders$snapshots" '
                   "ORDER BY committed_at DESC LIMIT 1")
    query(lakehouse, "INSERT INTO iceberg.bronze.orders VALUES "
          f"(2, 'bob', 21.0, 'shipped', {ts(4, 10)}, 'shop'), "
          f"(2, 'bob', 22.0, 'returned', {ts(4, 11)}, 'shop')")
    code, out = dbt(lakehouse, "run", "--select", "orders")
    assert code != 0, out
    assert "MERGE_TARGET_ROW_MULTIPLE_MATCHES" in out, out
    assert query(lakehouse, 'SELECT snapshot_id FROM iceberg.medallion_silver."orders$snapshots" '
                 "ORDER BY committed_at DESC LIMIT 1") == before
    assert query(lakehouse, "SELECT count(*) FROM iceberg.medallion_silver.orders") == [[4]]
