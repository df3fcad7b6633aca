"""Delta Lake and Hive tables shared with python's own readers and writers: `deltalake`
reads what aichemy wrote and aichemy registers, reads and appends to what `deltalake`
wrote; pyarrow reads aichemy's hive folders, and aichemy reads Parquet files pyarrow wrote
through an external hive table."""

import datetime
import glob
import decimal
import os
import subprocess

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

from lakehouse import aichemy, sql_command


def test_deltalake_reads_what_aichemy_wrote(warehouse):
    aichemy(
        warehouse,
        """
        CREATE SCHEMA delta.d;
        CREATE TABLE delta.d.orders (order_id INTEGER, amount DECIMAL(10,2), note VARCHAR,
            dt DATE) WITH (partitioned_by = ARRAY['dt']);
        INSERT INTO delta.d.orders VALUES (1, 99.99, 'a', DATE '2025-01-15'),
            (2, 149.50, NULL, DATE '2025-01-16');
        INSERT INTO delta.d.orders VALUES (3, 5.00, 'c', DATE '2025-01-15');
        """,
    )
    table = DeltaTable(str(warehouse / "delta" / "d" / "orders"))
    assert table.version() == 2  # create + two INSERT commits
    assert table.metadata().partition_columns == ["dt"]
    rows = table.to_pyarrow_table().sort_by("order_id").to_pylist()
    assert rows == [
        {"order_id": 1, "amount": decimal.Decimal("99.99"), "note": "a",
         "dt": datetime.date(2025, 1, 15)},
        {"order_id": 2, "amount": decimal.Decimal("149.50"), "note": None,
         "dt": datetime.date(2025, 1, 16)},
        {"order_id": 3, "amount": decimal.Decimal("5.00"), "note": "c",
         "dt": datetime.date(2025, 1, 15)},
    ]
    # Hive-style partition folders.
    assert sorted(p.name for p in (warehouse / "delta/d/orders").iterdir()
                  if p.name.startswith("dt=")) == ["dt=2025-01-15", "dt=2025-01-16"]
    # A failed statement adds no version.
    aichemy_failed = os.system(
        f"{os.environ.get('AICHEMY_BIN', 'aichemy')} --warehouse {warehouse} sql -e "
        "\"INSERT INTO delta.d.orders (order_id) VALUES (CAST('x' AS INTEGER))\" 2>/dev/null"
    )
    assert aichemy_failed != 0
    assert DeltaTable(str(warehouse / "delta" / "d" / "orders")).version() == 2


def test_aichemy_registers_reads_and_appends_to_a_deltalake_table(warehouse, tmp_path, monkeypatch):
    # Files outside the warehouse are reachable only under storage.allowed_locations.
    monkeypatch.setenv("AICHEMY_STORAGE__ALLOWED_LOCATIONS", f"file://{tmp_path}")
    folder = tmp_path / "external" / "people"
    data = pa.table({
        "id": pa.array([1, 2], pa.int64()),
        "name": pa.array(["ada", "grace"], pa.string()),
        "score": pa.array([1.5, None], pa.float64()),
        "day": pa.array([datetime.date(2025, 3, 1), datetime.date(2025, 3, 2)], pa.date32()),
    })
    write_deltalake(str(folder), data, partition_by=["day"])
    aichemy(
        warehouse,
        f"""
        CREATE SCHEMA delta.py;
        CREATE TABLE delta.py.people (id BIGINT, name VARCHAR, score DOUBLE, day DATE)
            WITH (location = 'file://{folder}');
        """,
    )
    rows = aichemy(warehouse, "SELECT id, name, score, day FROM delta.py.people ORDER BY id")
    assert rows == [
        {"id": 1, "name": "ada", "score": 1.5, "day": "2025-03-01"},
        {"id": 2, "name": "grace", "score": None, "day": "2025-03-02"},
    ]
    create = aichemy(warehouse, "SHOW CREATE TABLE delta.py.people")[0]["Create Table"]
    assert "partitioned_by = ARRAY['day']" in create
    aichemy(warehouse, "INSERT INTO delta.py.people VALUES (3, 'linus', NULL, DATE '2025-03-01')")
    back = DeltaTable(str(folder))
    assert back.version() == 1
    assert sorted(back.to_pyarrow_table().column("id").to_pylist()) == [1, 2, 3]
    # The table is external: DROP TABLE forgets it and leaves the files.
    aichemy(warehouse, "DROP TABLE delta.py.people")
    assert DeltaTable(str(folder)).version() == 1


def test_aichemy_reads_the_versions_and_history_deltalake_wrote(warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("AICHEMY_STORAGE__ALLOWED_LOCATIONS", f"file://{tmp_path}")
    folder = tmp_path / "external" / "logs"
    write_deltalake(str(folder), pa.table({"n": pa.array([1, 2], pa.int64())}))
    write_deltalake(str(folder), pa.table({"n": pa.array([3], pa.int64())}), mode="append")
    write_deltalake(str(folder), pa.table({"n": pa.array([9], pa.int64())}), mode="overwrite")
    aichemy(warehouse, f"CREATE SCHEMA delta.h; CREATE TABLE delta.h.logs (n BIGINT) "
                       f"WITH (location = 'file://{folder}')")
    for version in range(3):
        theirs = DeltaTable(str(folder), version=version).to_pyarrow_table()
        ours = aichemy(warehouse, "SELECT n FROM delta.h.logs FOR VERSION AS OF "
                                  f"{version} ORDER BY n")
        assert [r["n"] for r in ours] == sorted(theirs.column("n").to_pylist())
    history = DeltaTable(str(folder)).history()
    ours = aichemy(warehouse, 'SELECT version, operation, is_blind_append '
                              'FROM delta.h."logs$history"')
    assert [(r["version"], r["operation"]) for r in ours] == [
        (h["version"], h["operation"]) for h in history]
    modes = aichemy(warehouse, "SELECT element_at(operation_parameters, 'mode') AS mode "
                               'FROM delta.h."logs$history"')
    assert [r["mode"] for r in modes] == ["Overwrite", "Append", "ErrorIfExists"]


def test_pyarrow_reads_aichemy_hive_folders_and_aichemy_reads_pyarrow_files(warehouse, tmp_path, monkeypatch):
    # Files outside the warehouse are reachable only under storage.allowed_locations.
    monkeypatch.setenv("AICHEMY_STORAGE__ALLOWED_LOCATIONS", f"file://{tmp_path}")
    aichemy(
        warehouse,
        """
        CREATE SCHEMA hive.h;
        CREATE TABLE hive.h.events (id BIGINT, kind VARCHAR, dt DATE)
            WITH (format = 'PARQUET', partitioned_by = ARRAY['dt']);
        INSERT INTO hive.h.events VALUES (1, 'click', DATE '2025-01-15'),
            (2, 'view', DATE '2025-01-16'), (3, 'click', DATE '2025-01-15');
        """,
    )
    folder = warehouse / "hive" / "h" / "events"
    dataset = ds.dataset(str(folder), format="parquet", partitioning="hive")
    table = dataset.to_table().sort_by("id")
    assert table.column("id").to_pylist() == [1, 2, 3]
    assert [str(d) for d in table.column("dt").to_pylist()] == [
        "2025-01-15", "2025-01-16", "2025-01-15"]

    external = tmp_path / "landing" / "clicks"
    pq.write_to_dataset(
        pa.table({
            "user_id": pa.array([10, 11, 12], pa.int64()),
            "url": ["/a", "/b", "/c"],
            "country": ["no", "it", "no"],
        }),
        root_path=str(external),
        partition_cols=["country"],
    )
    aichemy(
        warehouse,
        f"""
        CREATE TABLE hive.h.clicks (user_id BIGINT, url VARCHAR, country VARCHAR)
            WITH (external_location = 'file://{external}', partitioned_by = ARRAY['country']);
        """,
    )
    rows = aichemy(
        warehouse,
        "SELECT country, count(*) AS n FROM hive.h.clicks GROUP BY country ORDER BY country",
    )
    assert rows == [{"country": "it", "n": 1}, {"country": "no", "n": 2}]
    files_before = sorted(str(p) for p in external.rglob("*.parquet"))
    aichemy(warehouse, "DROP TABLE hive.h.clicks")
    assert sorted(str(p) for p in external.rglob("*.parquet")) == files_before


def test_locations_outside_the_warehouse_are_refused(warehouse, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    done = subprocess.run(
        sql_command(warehouse, "CREATE SCHEMA delta.x; CREATE TABLE delta.x.t (id BIGINT) "
                               f"WITH (location = 'file://{outside}')"),
        capture_output=True, text=True)
    assert done.returncode != 0
    assert "INVALID_TABLE_PROPERTY: Invalid location" in done.stderr
    assert "outside the warehouse and the allowed locations" in done.stderr
    assert list(outside.iterdir()) == []


def test_deltalake_reads_every_change_aichemy_commits(warehouse):
    """DELETE, UPDATE, MERGE and optimize on a partitioned Delta table: python `deltalake`
    reads the rows after each, its history names each operation, the version before the
    changes still reads, and vacuum deletes only the files no current version needs."""
    aichemy(
        warehouse,
        """
        CREATE SCHEMA delta.rc;
        CREATE TABLE delta.rc.t (id INTEGER NOT NULL, part VARCHAR, v DOUBLE)
            WITH (partitioned_by = ARRAY['part']);
        INSERT INTO delta.rc.t VALUES (1, 'a', 1.0), (2, 'a', 2.0), (3, 'b', 3.0);
        INSERT INTO delta.rc.t VALUES (4, 'b', 4.0), (5, 'c', 5.0);
        DELETE FROM delta.rc.t WHERE id IN (SELECT max(id) FROM delta.rc.t);
        UPDATE delta.rc.t SET v = v * 10 WHERE part = 'b';
        UPDATE delta.rc.t SET part = 'z' WHERE id = 1;
        MERGE INTO delta.rc.t t USING (VALUES (2, 0.5), (9, 9.0)) AS s(id, v) ON t.id = s.id
            WHEN MATCHED THEN UPDATE SET v = s.v
            WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'n', s.v);
        """,
    )
    location = str(warehouse / "delta" / "rc" / "t")
    table = DeltaTable(location)
    rows = sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: r["id"])
    assert rows == [
        {"id": 1, "part": "z", "v": 1.0},
        {"id": 2, "part": "a", "v": 0.5},
        {"id": 3, "part": "b", "v": 30.0},
        {"id": 4, "part": "b", "v": 40.0},
        {"id": 9, "part": "n", "v": 9.0},
    ]
    operations = [h["operation"] for h in reversed(table.history())]
    assert operations == ["CREATE TABLE", "WRITE", "WRITE", "DELETE", "UPDATE", "UPDATE",
                          "MERGE"]
    before = DeltaTable(location, version=2).to_pyarrow_table()
    assert sorted(before.column("id").to_pylist()) == [1, 2, 3, 4, 5]

    # A failing UPDATE adds no version.
    failed = subprocess.run(
        sql_command(warehouse, "UPDATE delta.rc.t SET id = NULL WHERE part = 'b'"),
        capture_output=True, text=True)
    assert failed.returncode != 0 and "CONSTRAINT_VIOLATION" in failed.stderr
    assert DeltaTable(location).version() == table.version()

    # optimize merges the small files of each partition without changing a row.
    aichemy(warehouse, "INSERT INTO delta.rc.t VALUES (10, 'b', 1.0)")
    files_before = len(DeltaTable(location).file_uris())
    aichemy(warehouse, "ALTER TABLE delta.rc.t EXECUTE optimize")
    optimized = DeltaTable(location)
    assert len(optimized.file_uris()) < files_before
    assert optimized.history(1)[0]["operation"] == "OPTIMIZE"
    assert sorted(optimized.to_pyarrow_table().column("id").to_pylist()) == [1, 2, 3, 4, 9, 10]

    # vacuum deletes the removed files and keeps every current one.
    on_disk = lambda: {p for p in glob.glob(f"{location}/**/*.parquet", recursive=True)}
    assert len(on_disk()) > len(optimized.file_uris())
    aichemy(warehouse, "SET SESSION delta.vacuum_min_retention = '0s'; "
                       "CALL delta.system.vacuum('rc', 't', '0s')")
    assert {os.path.realpath(p) for p in on_disk()} == {
        os.path.realpath(u.removeprefix("file://")) for u in optimized.file_uris()}
    assert sorted(DeltaTable(location).to_pyarrow_table().column("id").to_pylist()) == [
        1, 2, 3, 4, 9, 10]
