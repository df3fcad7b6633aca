"""DuckDB (its iceberg extension from PyPI) as a second engine on aichemy's Iceberg REST
catalog: it reads what aichemy wrote and changed, creates tables (CREATE TABLE, CREATE
TABLE AS), inserts, deletes and travels in time; aichemy reads and changes what DuckDB
wrote, merge-on-read deletes included.

Run by scripts/test.sh with AICHEMY_BIN set to the debug binary.
"""

import glob
import os

import duckdb
import duckdb_extension_avro
import duckdb_extension_httpfs
import duckdb_extension_iceberg
import pytest

from lakehouse import Server, aichemy


def duckdb_on(port):
    con = duckdb.connect()
    for package in (duckdb_extension_httpfs, duckdb_extension_avro, duckdb_extension_iceberg):
        folder = os.path.dirname(package.__file__)
        [extension] = glob.glob(os.path.join(folder, "extensions", "*", "*.duckdb_extension"))
        con.execute(f"LOAD '{extension}'")
    con.execute(
        f"ATTACH 'warehouse' AS lake (TYPE iceberg, "
        f"ENDPOINT 'http://127.0.0.1:{port}/iceberg', AUTHORIZATION_TYPE 'none')"
    )
    return con


@pytest.fixture
def served(warehouse):
    aichemy(
        warehouse,
        """
        CREATE SCHEMA iceberg.dd;
        CREATE TABLE iceberg.dd.t (id BIGINT, v VARCHAR);
        INSERT INTO iceberg.dd.t VALUES (1, 'a'), (2, 'b'), (3, 'c');
        UPDATE iceberg.dd.t SET v = 'B' WHERE id = 2;
        """,
    )
    server = Server(warehouse)
    yield server
    server.stop()


def test_duckdb_reads_and_changes_aichemy_tables(warehouse, served):
    con = duckdb_on(served.http_port)
    assert con.execute("SELECT * FROM lake.dd.t ORDER BY id").fetchall() == [
        (1, "a"), (2, "B"), (3, "c")
    ]
    con.execute("INSERT INTO lake.dd.t VALUES (4, 'd')")
    con.execute("DELETE FROM lake.dd.t WHERE id = 1")
    con.execute("UPDATE lake.dd.t SET v = 'C' WHERE id = 3")
    con.close()
    # aichemy reads DuckDB's commits (its deletes are merge-on-read delete files) and
    # changes rows on top of them.
    assert aichemy(warehouse, "SELECT id, v FROM iceberg.dd.t ORDER BY id") == [
        {"id": 2, "v": "B"}, {"id": 3, "v": "C"}, {"id": 4, "v": "d"}
    ]
    aichemy(
        warehouse,
        "MERGE INTO iceberg.dd.t t USING (VALUES (2, 'two'), (5, 'five')) AS s(id, v) "
        "ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v "
        "WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)",
    )
    con = duckdb_on(served.http_port)
    assert con.execute("SELECT * FROM lake.dd.t ORDER BY id").fetchall() == [
        (2, "two"), (3, "C"), (4, "d"), (5, "five")
    ]


def test_duckdb_creates_tables_and_travels_in_time(warehouse, served):
    con = duckdb_on(served.http_port)
    con.execute("CREATE TABLE lake.dd.made (x INTEGER, y VARCHAR)")
    con.execute("INSERT INTO lake.dd.made VALUES (7, 'seven')")
    con.execute("CREATE TABLE lake.dd.copied AS SELECT * FROM lake.dd.t WHERE id > 1")
    # Time travel in DuckDB to the snapshot before aichemy's UPDATE.
    [(first,)] = con.execute(
        "SELECT snapshot_id FROM iceberg_snapshots(lake.dd.t) ORDER BY sequence_number LIMIT 1"
    ).fetchall()
    assert con.execute(
        f"SELECT v FROM lake.dd.t AT (VERSION => {first}) WHERE id = 2"
    ).fetchall() == [("b",)]
    con.close()
    assert aichemy(warehouse, "SELECT x, y FROM iceberg.dd.made") == [{"x": 7, "y": "seven"}]
    assert aichemy(warehouse, "SELECT count(*) AS n FROM iceberg.dd.copied") == [{"n": 2}]
    assert aichemy(
        warehouse, f"SELECT v FROM iceberg.dd.t FOR VERSION AS OF {first} WHERE id = 2"
    ) == [{"v": "b"}]
