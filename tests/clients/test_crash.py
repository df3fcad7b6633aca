"""Killing `aichemy sql` during an INSERT never leaves a table that fails to load: the
table holds either every row of the statement or none of them, for aichemy and PyIceberg
alike, and takes new writes afterwards."""

import signal
import subprocess
import time

from lakehouse import aichemy, catalog, sql_command

ROWS = 1_000_000
INSERT = (
    "INSERT INTO iceberg.k.t SELECT value, concat('row-', CAST(value AS VARCHAR)) "
    f"FROM generate_series(1, {ROWS})"
)


def count(warehouse):
    return aichemy(warehouse, "SELECT count(*) AS n FROM iceberg.k.t")[0]["n"]


def test_kill_during_insert_leaves_a_loadable_table(tmp_path):
    warehouse = tmp_path / "wh"
    aichemy(
        warehouse,
        "CREATE SCHEMA iceberg.k;"
        "CREATE TABLE iceberg.k.t (id BIGINT, s VARCHAR) "
        "WITH (partitioning = ARRAY['bucket(id, 4)']);"
        "INSERT INTO iceberg.k.t VALUES (0, 'seed')",
    )
    # How long one whole INSERT takes here, so that kills land all along it.
    started = time.monotonic()
    aichemy(warehouse, INSERT)
    whole = time.monotonic() - started
    rows = 1 + ROWS
    killed = 0
    for step in range(1, 9):
        before = rows
        process = subprocess.Popen(
            sql_command(warehouse, INSERT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(whole * step / 8)
        process.send_signal(signal.SIGKILL)
        process.wait()
        if process.returncode == -signal.SIGKILL:
            killed += 1
        rows = count(warehouse)
        # All of the statement or none of it; a finished statement is all of it.
        assert rows in (before, before + ROWS)
        if process.returncode == 0:
            assert rows == before + ROWS
        table = catalog(warehouse).load_table("k.t")
        assert table.scan().to_arrow().num_rows == rows
    print(f"{killed} of 8 INSERTs killed, {rows} rows")
    assert killed > 0, "no INSERT was killed while running"
    aichemy(warehouse, "INSERT INTO iceberg.k.t VALUES (-1, 'after')")
    assert count(warehouse) == rows + 1
