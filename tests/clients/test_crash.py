"""Killing `aichemy sql` during an INSERT, UPDATE, DELETE, MERGE, optimize or version
cleanup never leaves a table that fails to load: the table holds either every row of the
statement or none of them, for aichemy and PyIceberg (deltalake, pylance) alike, and takes
new writes afterwards; `remove_orphan_files` (Delta Lake's vacuum, Lance's version
cleanup) then deletes what the killed statements wrote, and nothing a version uses."""

import signal
import subprocess
import time

import lance
import pytest
from deltalake import DeltaTable

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


def snapshot_files(table):
    """Every data file any snapshot of the table holds live."""
    files = set()
    for snapshot in table.snapshots():
        files |= {task.file.file_path
                  for task in table.scan(snapshot_id=snapshot.snapshot_id).plan_files()}
    return files


def test_kill_during_row_changes_then_remove_orphan_files(tmp_path):
    warehouse = tmp_path / "wh"
    aichemy(
        warehouse,
        "CREATE SCHEMA iceberg.k;"
        "CREATE TABLE iceberg.k.t (id BIGINT, v BIGINT) "
        "WITH (partitioning = ARRAY['bucket(id, 4)']);"
        "INSERT INTO iceberg.k.t SELECT value, 0 FROM generate_series(1, 200000)",
    )
    statements = [
        ("UPDATE iceberg.k.t SET v = v + 1", "SELECT sum(v) AS n FROM iceberg.k.t"),
        ("DELETE FROM iceberg.k.t WHERE id % 7 = 0", "SELECT count(*) AS n FROM iceberg.k.t"),
        ("MERGE INTO iceberg.k.t t USING (SELECT value AS id FROM generate_series(1, 200000, 3)) s "
         "ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = t.v + 10",
         "SELECT sum(v) AS n FROM iceberg.k.t"),
    ]
    killed = 0
    for statement, measure in statements:
        before = aichemy(warehouse, measure)[0]["n"]
        started = time.monotonic()
        aichemy(warehouse, statement)
        whole = time.monotonic() - started
        after = aichemy(warehouse, measure)[0]["n"]
        for step in range(1, 5):
            state = aichemy(warehouse, measure)[0]["n"]
            process = subprocess.Popen(sql_command(warehouse, statement),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(whole * step / 5)
            process.send_signal(signal.SIGKILL)
            process.wait()
            killed += process.returncode == -signal.SIGKILL
            now = aichemy(warehouse, measure)[0]["n"]
            # Before or after the statement, never part of it (UPDATE and MERGE add the
            # same to the sum each run; a second DELETE removes nothing).
            assert now in (state, state + (after - before)), (statement, state, now)
            table = catalog(warehouse).load_table("k.t")
            assert table.scan().to_arrow().num_rows > 0
    assert killed > 0, "no statement was killed while running"

    # What the killed statements wrote and a stray file are orphans; remove_orphan_files
    # deletes them and nothing any snapshot uses.
    table = catalog(warehouse).load_table("k.t")
    data = tmp_path / "wh" / "iceberg" / "k" / "t" / "data"
    (data / "stray.parquet").write_bytes(b"not a table file")
    listed = {f"file://{p}" for p in data.rglob("*.parquet")}
    used = snapshot_files(table)
    assert used < listed
    counts = {s.snapshot_id: table.scan(snapshot_id=s.snapshot_id).to_arrow().num_rows
              for s in table.snapshots()}
    aichemy(warehouse,
            "SET SESSION iceberg.remove_orphan_files_min_retention = '0s';"
            "ALTER TABLE iceberg.k.t EXECUTE remove_orphan_files(retention_threshold => '0s')")
    assert {f"file://{p}" for p in data.rglob("*.parquet")} == used
    table = catalog(warehouse).load_table("k.t")
    assert {s.snapshot_id: table.scan(snapshot_id=s.snapshot_id).to_arrow().num_rows
            for s in table.snapshots()} == counts


def killed_along(warehouse, statement, measure, runs=4):
    """Runs `statement` whole once, then `runs` times killed at even steps along the time it
    took; after each kill `measure` is what it was before that run or what the statement
    makes of it. Answers how many runs the kill stopped."""
    before = aichemy(warehouse, measure)[0]["n"]
    started = time.monotonic()
    aichemy(warehouse, statement)
    whole = time.monotonic() - started
    change = aichemy(warehouse, measure)[0]["n"] - before
    killed = 0
    for step in range(1, runs + 1):
        state = aichemy(warehouse, measure)[0]["n"]
        process = subprocess.Popen(sql_command(warehouse, statement),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(whole * step / (runs + 1))
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed += process.returncode == -signal.SIGKILL
        now = aichemy(warehouse, measure)[0]["n"]
        assert now in (state, state + change), (statement, state, now)
    return killed


@pytest.mark.parametrize("fmt", ["delta", "lance"])
def test_kill_during_row_changes_and_upkeep_on_delta_and_lance(tmp_path, fmt):
    warehouse = tmp_path / "wh"
    table = f"{fmt}.k.t"
    aichemy(warehouse, f"CREATE SCHEMA {fmt}.k; CREATE TABLE {table} (id BIGINT, v BIGINT)")
    for part in range(4):
        aichemy(warehouse, f"INSERT INTO {table} SELECT value, 0 FROM "
                           f"generate_series({part * 50_000 + 1}, {(part + 1) * 50_000})")
    location = str(warehouse / fmt / "k" / "t")

    def library_rows():
        """The rows and their sum of v, as the format's own python library reads them."""
        rows = (DeltaTable(location).to_pyarrow_table() if fmt == "delta"
                else lance.dataset(location).to_table())
        return rows.num_rows, sum(v or 0 for v in rows.column("v").to_pylist())

    # The rows (times a billion) and the sum of v: every statement changes one of them.
    measure = f"SELECT count(*) * 1000000000 + coalesce(sum(v), 0) AS n FROM {table}"
    cleanup = (f"SET SESSION delta.vacuum_min_retention = '0s'; "
               f"CALL delta.system.vacuum('k', 't', '0s')" if fmt == "delta" else
               f"SET SESSION iceberg.expire_snapshots_min_retention = '0s'; "
               f"ALTER TABLE {table} EXECUTE expire_snapshots(retention_threshold => '0s')")
    statements = [
        f"UPDATE {table} SET v = v + 1",
        f"DELETE FROM {table} WHERE id % 7 = 0",
        f"MERGE INTO {table} t USING (SELECT value AS id FROM generate_series(1, 200000, 3)) s "
        "ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = t.v + 10",
        f"ALTER TABLE {table} EXECUTE optimize",
        cleanup,
    ]
    killed = 0
    for statement in statements:
        killed += killed_along(warehouse, statement, measure)
        n = aichemy(warehouse, measure)[0]["n"]
        rows, total = library_rows()
        assert rows * 1_000_000_000 + total == n, statement
        # More small files for optimize to compact.
        aichemy(warehouse, f"INSERT INTO {table} VALUES (-1, 0)")
        aichemy(warehouse, f"DELETE FROM {table} WHERE id = -1")
    assert killed > 0, "no statement was killed while running"

    # What the killed statements wrote and a stray file are orphans; the cleanup deletes
    # them and nothing the current version reads. (Lance's expire_snapshots deletes only
    # files older than the oldest version it keeps: the stray comes before one more version.)
    data = warehouse / fmt / "k" / "t" / ("" if fmt == "delta" else "data")
    suffix = "*.parquet" if fmt == "delta" else "*.lance"
    (data / f"stray{suffix[1:]}").write_bytes(b"not a table file")
    time.sleep(0.01)
    aichemy(warehouse, f"INSERT INTO {table} VALUES (-1, 0)")
    aichemy(warehouse, f"DELETE FROM {table} WHERE id = -1")
    if fmt == "delta":
        used = set(DeltaTable(location).file_uris())
    else:
        used = {str(data / f.path)
                for fragment in lance.dataset(location).get_fragments()
                for f in fragment.data_files()}
    listed = {str(p) for p in data.rglob(suffix) if "_delta_log" not in p.parts}
    assert used < listed
    before = library_rows()
    if fmt == "lance":
        # remove_orphan_files keeps what any version needs: every version still reads.
        dataset = lance.dataset(location)
        versions = [v["version"] for v in dataset.versions()]
        needed = {str(data / f.path)
                  for version in versions
                  for fragment in dataset.checkout_version(version).get_fragments()
                  for f in fragment.data_files()}
        assert needed < listed
        aichemy(warehouse, "SET SESSION iceberg.remove_orphan_files_min_retention = '0s'; "
                           f"ALTER TABLE {table} EXECUTE remove_orphan_files(retention_threshold => '0s')")
        assert {str(p) for p in data.rglob(suffix)} == needed
        for version in versions:
            lance.dataset(location, version=version).to_table()
        assert library_rows() == before
    aichemy(warehouse, cleanup)
    assert {str(p) for p in data.rglob(suffix) if "_delta_log" not in p.parts} == used
    assert library_rows() == before
    aichemy(warehouse, f"INSERT INTO {table} VALUES (-2, 0)")
    assert library_rows()[0] == before[0] + 1
