"""DELETE, UPDATE and TRUNCATE on Iceberg tables, checked from both sides: what aichemy
commits is standard Iceberg v2 that PyIceberg reads (one `delete` or `overwrite` snapshot
per statement, its summary totals right), aichemy changes rows of tables PyIceberg wrote
and deleted from, and the python `trino` client gets each statement's row count.

Run by scripts/test.sh with AICHEMY_BIN set to the debug binary.
"""

import datetime
import glob
import subprocess
import threading

import pyarrow as pa
import pytest
from pyiceberg.expressions import EqualTo
from pyiceberg.types import StringType
from trino.dbapi import connect

from lakehouse import Server, aichemy, catalog, sql_command


def rows_of(table):
    return sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["id"])


def test_pyiceberg_reads_every_change_aichemy_commits(warehouse):
    aichemy(
        warehouse,
        """
        CREATE SCHEMA iceberg.rc;
        CREATE TABLE iceberg.rc.t (id INTEGER, part VARCHAR, v DOUBLE)
            WITH (partitioning = ARRAY['part']);
        INSERT INTO iceberg.rc.t VALUES (1, 'a', 1.0), (2, 'a', 2.0), (3, 'b', 3.0);
        INSERT INTO iceberg.rc.t VALUES (4, 'b', 4.0), (5, 'c', 5.0);
        DELETE FROM iceberg.rc.t WHERE id IN (SELECT max(id) FROM iceberg.rc.t);
        UPDATE iceberg.rc.t SET v = v * 10 WHERE part = 'b';
        UPDATE iceberg.rc.t SET part = 'z' WHERE id = 1;
        """,
    )
    table = catalog(warehouse).load_table("rc.t")
    assert rows_of(table) == [
        {"id": 1, "part": "z", "v": 1.0},
        {"id": 2, "part": "a", "v": 2.0},
        {"id": 3, "part": "b", "v": 30.0},
        {"id": 4, "part": "b", "v": 40.0},
    ]
    snapshots = sorted(table.snapshots(), key=lambda s: s.sequence_number)
    assert [s.summary.operation.value for s in snapshots] == [
        "append",
        "append",
        "delete",
        "overwrite",
        "overwrite",
    ]
    current = table.current_snapshot().summary
    assert current["total-records"] == "4"
    # Only the files of the touched partitions were rewritten: the DELETE of id 5 removed
    # the one file of partition 'c' and added nothing.
    delete = snapshots[2].summary
    assert delete["deleted-data-files"] == "1"
    assert delete["total-data-files"] == "3"
    # Each earlier snapshot still reads as it was (time travel in PyIceberg).
    assert table.scan(snapshot_id=snapshots[1].snapshot_id).to_arrow().num_rows == 5
    assert table.scan(snapshot_id=snapshots[2].snapshot_id).to_arrow().num_rows == 4

    aichemy(warehouse, "TRUNCATE TABLE iceberg.rc.t")
    table = catalog(warehouse).load_table("rc.t")
    assert table.scan().to_arrow().num_rows == 0
    assert table.current_snapshot().summary["total-records"] == "0"
    assert aichemy(warehouse, "SELECT count(*) AS n FROM iceberg.rc.t") == [{"n": 0}]


def test_aichemy_changes_rows_pyiceberg_wrote_and_deleted(warehouse):
    aichemy(warehouse, "CREATE SCHEMA iceberg.py")
    cat = catalog(warehouse)
    data = pa.table({"id": pa.array([1, 2, 3, 4], pa.int64()), "name": ["a", "b", "c", "d"]})
    table = cat.create_table("py.people", schema=data.schema)
    table.append(data)
    table.delete(EqualTo("id", 2))
    assert aichemy(warehouse, "SELECT id FROM iceberg.py.people ORDER BY id") == [
        {"id": 1},
        {"id": 3},
        {"id": 4},
    ]
    aichemy(
        warehouse,
        """
        UPDATE iceberg.py.people SET name = upper(name) WHERE id >= 3;
        DELETE FROM iceberg.py.people WHERE name = 'a';
        """,
    )
    table = cat.load_table("py.people")
    assert rows_of(table) == [{"id": 3, "name": "C"}, {"id": 4, "name": "D"}]
    # PyIceberg appends and overwrites on top of aichemy's commits.
    table.append(pa.table({"id": pa.array([5], pa.int64()), "name": ["e"]}))
    table.overwrite(
        pa.table({"id": pa.array([6], pa.int64()), "name": ["f"]}),
        overwrite_filter=EqualTo("id", 3),
    )
    assert aichemy(warehouse, "SELECT id, name FROM iceberg.py.people ORDER BY id") == [
        {"id": 4, "name": "D"},
        {"id": 5, "name": "e"},
        {"id": 6, "name": "f"},
    ]


def test_a_failing_statement_changes_nothing(warehouse):
    aichemy(
        warehouse,
        """
        CREATE SCHEMA iceberg.at;
        CREATE TABLE iceberg.at.t (id INTEGER NOT NULL, s VARCHAR);
        INSERT INTO iceberg.at.t SELECT x, CAST(x AS VARCHAR) AS s FROM UNNEST(sequence(1, 10000)) AS u(x);
        UPDATE iceberg.at.t SET s = 'x' WHERE id = 10000;
        """,
    )
    before = catalog(warehouse).load_table("at.t").current_snapshot().snapshot_id
    for statement, error in [
        # A cast error at the 10,000th row.
        ("UPDATE iceberg.at.t SET id = CAST(s AS INTEGER)", "INVALID_CAST_ARGUMENT"),
        ("UPDATE iceberg.at.t SET id = NULL WHERE id > 5000", "CONSTRAINT_VIOLATION"),
        ("DELETE FROM iceberg.at.t WHERE 1 / (id - 10000) = 0", "DIVISION_BY_ZERO"),
        ("UPDATE iceberg.at.t SET id = 'one'", "TYPE_MISMATCH"),
    ]:
        done = subprocess.run(sql_command(warehouse, statement), capture_output=True, text=True)
        assert done.returncode != 0 and error in done.stderr, (statement, done.stderr)
    table = catalog(warehouse).load_table("at.t")
    assert table.current_snapshot().snapshot_id == before
    assert table.scan().to_arrow().num_rows == 10000


def test_the_trino_client_gets_row_counts(warehouse):
    server = Server(warehouse)
    try:
        cur = connect(host="127.0.0.1", port=server.http_port, user="admin").cursor()
        for statement in [
            "CREATE SCHEMA iceberg.tc",
            "CREATE TABLE iceberg.tc.t (id BIGINT, v VARCHAR)",
            "INSERT INTO iceberg.tc.t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
        ]:
            cur.execute(statement)
            cur.fetchall()
        cur.execute("UPDATE iceberg.tc.t SET v = 'z' WHERE id > 1")
        assert cur.fetchall() == [[2]]
        assert cur.rowcount == 2
        cur.execute("DELETE FROM iceberg.tc.t WHERE v = ?", ["z"])
        cur.fetchall()
        assert cur.rowcount == 2
        cur.execute("DELETE FROM iceberg.tc.t WHERE id = 42")
        cur.fetchall()
        assert cur.rowcount == 0
        cur.execute(
            "MERGE INTO iceberg.tc.t t USING (VALUES (1, 'y'), (7, 'n')) AS s(id, v) "
            "ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v "
            "WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)"
        )
        cur.fetchall()
        assert cur.rowcount == 2
        cur.execute("DELETE FROM iceberg.tc.t WHERE id = 7")
        cur.fetchall()
        cur.execute("UPDATE iceberg.tc.t SET v = 'a'")
        cur.fetchall()
        cur.execute("SELECT id, v FROM iceberg.tc.t")
        assert cur.fetchall() == [[1, "a"]]
    finally:
        server.stop()
    assert rows_of(catalog(warehouse).load_table("tc.t")) == [{"id": 1, "v": "a"}]


@pytest.mark.parametrize("fmt", ["iceberg", "delta", "lance"])
def test_concurrent_writers_lose_no_update(warehouse, fmt):
    """Processes updating, merging and appending to one table at once: every statement
    either commits (run again on the newest version when another writer changed its files
    first) or fails with TRANSACTION_CONFLICT, and every committed change is there at the
    end (no lost update, no resurrected row); appends always commit."""
    aichemy(
        warehouse,
        f"""
        CREATE SCHEMA {fmt}.cc;
        CREATE TABLE {fmt}.cc.counters (id INTEGER, n INTEGER);
        INSERT INTO {fmt}.cc.counters VALUES (1, 0), (2, 0), (3, 0);
        """,
    )
    rounds = 6
    done = {1: 0, 2: 0, 3: 0}
    problems = []

    def run(statement):
        finished = subprocess.run(sql_command(warehouse, statement), capture_output=True,
                                  text=True)
        if finished.returncode == 0:
            return True
        if "TRANSACTION_CONFLICT" not in finished.stderr:
            problems.append((statement, finished.stderr))
        return False

    def updater(key):
        for _ in range(rounds):
            if key == 3:
                statement = (
                    f"MERGE INTO {fmt}.cc.counters t USING (VALUES 3) AS s(id) "
                    "ON t.id = s.id WHEN MATCHED THEN UPDATE SET n = n + 1"
                )
            else:
                statement = f"UPDATE {fmt}.cc.counters SET n = n + 1 WHERE id = {key}"
            if run(statement):
                done[key] += 1

    def appender():
        for i in range(rounds):
            if not run(f"INSERT INTO {fmt}.cc.counters VALUES ({100 + i}, 0)"):
                problems.append(("append lost", i))

    threads = [threading.Thread(target=updater, args=(k,)) for k in done]
    threads.append(threading.Thread(target=appender))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    rows = aichemy(warehouse, f"SELECT id, n FROM {fmt}.cc.counters ORDER BY id")
    assert rows[:3] == [{"id": k, "n": done[k]} for k in (1, 2, 3)]
    assert [r["id"] for r in rows[3:]] == [100 + i for i in range(rounds)]
    # Some statements did commit while the others ran.
    assert sum(done.values()) >= rounds


def test_time_travel_and_rollback_through_the_trino_client(warehouse):
    server = Server(warehouse)
    try:
        cur = connect(host="127.0.0.1", port=server.http_port, user="admin").cursor()
        for statement in [
            "CREATE SCHEMA iceberg.tt",
            "CREATE TABLE iceberg.tt.t (x INTEGER)",
            "INSERT INTO iceberg.tt.t VALUES 1",
            "INSERT INTO iceberg.tt.t VALUES 2",
            "UPDATE iceberg.tt.t SET x = 20 WHERE x = 2",
        ]:
            cur.execute(statement)
            cur.fetchall()
        cur.execute(
            'SELECT snapshot_id, made_current_at FROM iceberg.tt."t$history" '
            "ORDER BY made_current_at"
        )
        (first, _), (second, second_at), (third, _) = cur.fetchall()

        def rows(sql):
            cur.execute(sql)
            return sorted(cur.fetchall())

        assert rows(f"SELECT x FROM iceberg.tt.t FOR VERSION AS OF {first}") == [[1]]
        # Versions in joins and subqueries, next to the current one.
        assert rows(
            f"SELECT a.x, b.x FROM iceberg.tt.t FOR VERSION AS OF {second} a "
            "LEFT JOIN iceberg.tt.t b ON a.x = b.x"
        ) == [[1, 1], [2, None]]
        assert rows(
            f"SELECT count(*) FROM (SELECT * FROM iceberg.tt.t FOR VERSION AS OF {second})"
        ) == [[2]]
        at = second_at.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        assert rows(
            f"SELECT x FROM iceberg.tt.t FOR TIMESTAMP AS OF TIMESTAMP '{at} UTC'"
        ) == [[1], [2]]

        cur.execute(f"ALTER TABLE iceberg.tt.t EXECUTE rollback_to_snapshot({first})")
        cur.fetchall()
        assert rows("SELECT x FROM iceberg.tt.t") == [[1]]
        cur.execute(f"CALL iceberg.system.rollback_to_snapshot('tt', 't', {third})")
        cur.fetchall()
        assert rows("SELECT x FROM iceberg.tt.t") == [[1], [20]]
    finally:
        server.stop()
    assert catalog(warehouse).load_table("tt.t").current_snapshot().snapshot_id == third


def test_time_travel_by_a_branch_or_tag_pyiceberg_made(warehouse):
    """FOR VERSION AS OF '<name>' reads the snapshot a branch or tag names (PyIceberg makes
    them); a name no reference has fails as in Trino."""
    aichemy(
        warehouse,
        """
        CREATE SCHEMA iceberg.br;
        CREATE TABLE iceberg.br.t (x INTEGER);
        INSERT INTO iceberg.br.t VALUES (1);
        """,
    )
    table = catalog(warehouse).load_table("br.t")
    first = table.current_snapshot().snapshot_id
    table.manage_snapshots().create_tag(snapshot_id=first, tag_name="v1").commit()
    table.manage_snapshots().create_branch(snapshot_id=first, branch_name="audit").commit()
    aichemy(warehouse, "INSERT INTO iceberg.br.t VALUES (2)")
    assert aichemy(warehouse, "SELECT x FROM iceberg.br.t FOR VERSION AS OF 'v1'") == [{"x": 1}]
    assert aichemy(
        warehouse,
        "SELECT count(*) AS n FROM iceberg.br.t FOR VERSION AS OF 'audit' a "
        "JOIN iceberg.br.t FOR VERSION AS OF 'main' b ON true",
    ) == [{"n": 2}]
    failed = subprocess.run(
        sql_command(warehouse, "SELECT * FROM iceberg.br.t FOR VERSION AS OF 'V1'"),
        capture_output=True, text=True)
    assert failed.returncode != 0
    assert "INVALID_ARGUMENTS: Cannot find snapshot with reference name: V1" in failed.stderr


def test_schema_evolution_both_ways_with_pyiceberg(warehouse):
    aichemy(
        warehouse,
        """
        CREATE SCHEMA iceberg.ev;
        CREATE TABLE iceberg.ev.t (id INTEGER, name VARCHAR, gone VARCHAR);
        INSERT INTO iceberg.ev.t VALUES (1, 'a', 'x'), (2, 'b', 'y');
        ALTER TABLE iceberg.ev.t RENAME COLUMN name TO label;
        ALTER TABLE iceberg.ev.t ALTER COLUMN id SET DATA TYPE BIGINT;
        ALTER TABLE iceberg.ev.t DROP COLUMN gone;
        ALTER TABLE iceberg.ev.t ADD COLUMN gone VARCHAR;
        """,
    )
    table = catalog(warehouse).load_table("ev.t")
    assert [f.name for f in table.schema().fields] == ["id", "label", "gone"]
    assert rows_of(table) == [
        {"id": 1, "label": "a", "gone": None},
        {"id": 2, "label": "b", "gone": None},
    ]
    # PyIceberg renames and adds; aichemy reads by field id before any new write.
    with table.update_schema() as update:
        update.rename_column("label", "tag")
        update.add_column("extra", StringType())
    assert aichemy(warehouse, "SELECT id, tag, extra FROM iceberg.ev.t ORDER BY id") == [
        {"id": 1, "tag": "a", "extra": None},
        {"id": 2, "tag": "b", "extra": None},
    ]
    aichemy(warehouse, "UPDATE iceberg.ev.t SET extra = tag || '!' WHERE id = 2")
    assert rows_of(catalog(warehouse).load_table("ev.t"))[1] == {
        "id": 2, "tag": "b", "gone": None, "extra": "b!"
    }


def test_expire_snapshots_deletes_only_what_no_snapshot_uses(warehouse):
    aichemy(
        warehouse,
        """
        CREATE SCHEMA iceberg.ex;
        CREATE TABLE iceberg.ex.t (x INTEGER);
        INSERT INTO iceberg.ex.t VALUES 1;
        INSERT INTO iceberg.ex.t VALUES 2;
        DELETE FROM iceberg.ex.t WHERE x = 1;
        """,
    )
    location = catalog(warehouse).load_table("ex.t").location().removeprefix("file://")
    assert len(glob.glob(f"{location}/data/*.parquet")) == 2
    aichemy(
        warehouse,
        """
        SET SESSION iceberg.expire_snapshots_min_retention = '0s';
        ALTER TABLE iceberg.ex.t EXECUTE expire_snapshots(retention_threshold => '0s');
        """,
    )
    table = catalog(warehouse).load_table("ex.t")
    assert len(table.snapshots()) == 1
    assert table.scan().to_arrow().to_pylist() == [{"x": 2}]
    # The deleted row's file went; the live one and the current metadata stayed.
    assert len(glob.glob(f"{location}/data/*.parquet")) == 1
    assert len(glob.glob(f"{location}/metadata/snap-*.avro")) == 1


def test_pyiceberg_reads_a_replaced_table_and_its_history(warehouse):
    aichemy(
        warehouse,
        """
        CREATE SCHEMA iceberg.rp;
        CREATE TABLE iceberg.rp.t (id INTEGER, tag VARCHAR) WITH (partitioning = ARRAY['tag']);
        INSERT INTO iceberg.rp.t VALUES (1, 'a'), (2, 'b');
        CREATE OR REPLACE TABLE iceberg.rp.t COMMENT 'replaced'
            WITH (partitioning = ARRAY['bucket(tag, 2)'])
            AS SELECT tag, id * 10 AS tens FROM iceberg.rp.t;
        """,
    )
    table = catalog(warehouse).load_table("rp.t")
    assert [f.name for f in table.schema().fields] == ["tag", "tens"]
    assert table.properties["comment"] == "replaced"
    assert str(table.spec().fields[0].transform) == "bucket[2]"
    assert sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["tag"]) == [
        {"tag": "a", "tens": 10}, {"tag": "b", "tens": 20}]
    # The first snapshot still reads, with the columns it was written with.
    first, current = sorted(table.snapshots(), key=lambda s: s.timestamp_ms)
    assert current.parent_snapshot_id is None
    old = table.scan(snapshot_id=first.snapshot_id).to_arrow()
    assert sorted(old.to_pylist(), key=lambda r: r["id"]) == [
        {"id": 1, "tag": "a"}, {"id": 2, "tag": "b"}]
    assert aichemy(warehouse, f"SELECT count(*) AS n FROM iceberg.rp.t FOR VERSION AS OF "
                   f"{first.snapshot_id} WHERE id = 2") == [{"n": 1}]


def test_pyiceberg_reads_and_writes_across_a_partition_evolution(warehouse):
    aichemy(
        warehouse,
        """
        CREATE SCHEMA iceberg.pe;
        CREATE TABLE iceberg.pe.t (id INTEGER, tag VARCHAR);
        INSERT INTO iceberg.pe.t VALUES (1, 'a');
        ALTER TABLE iceberg.pe.t SET PROPERTIES partitioning = ARRAY['tag'];
        INSERT INTO iceberg.pe.t VALUES (2, 'b'), (3, 'b');
        """,
    )
    table = catalog(warehouse).load_table("pe.t")
    assert [f.name for f in table.spec().fields] == ["tag"]
    assert len(table.specs()) == 2
    files = {task.file.spec_id for task in table.scan().plan_files()}
    assert files == {0, table.spec().spec_id}
    table.append(pa.table({"id": pa.array([4], pa.int32()), "tag": ["c"]}))
    assert aichemy(warehouse, "SELECT count(*) AS n, sum(id) AS s FROM iceberg.pe.t "
                   "WHERE tag <> 'a'") == [{"n": 3, "s": 9}]
    aichemy(warehouse, "UPDATE iceberg.pe.t SET tag = 'z' WHERE id IN (1, 4)")
    table = catalog(warehouse).load_table("pe.t")
    assert rows_of(table) == [{"id": 1, "tag": "z"}, {"id": 2, "tag": "b"},
                              {"id": 3, "tag": "b"}, {"id": 4, "tag": "z"}]


def test_pyiceberg_reads_an_optimized_table(warehouse):
    inserts = "\n".join(
        f"INSERT INTO iceberg.op.t VALUES ({i}, '{'ab'[i % 2]}');" for i in range(10))
    aichemy(
        warehouse,
        f"""
        CREATE SCHEMA iceberg.op;
        CREATE TABLE iceberg.op.t (id INTEGER, tag VARCHAR) WITH (partitioning = ARRAY['tag']);
        {inserts}
        """,
    )
    # PyIceberg appends one more small file of its own.
    catalog(warehouse).load_table("op.t").append(
        pa.table({"id": pa.array([10], pa.int32()), "tag": ["a"]}))
    aichemy(warehouse, "ALTER TABLE iceberg.op.t EXECUTE optimize")
    table = catalog(warehouse).load_table("op.t")
    snapshot = table.current_snapshot()
    assert snapshot.summary.operation.value == "replace"
    assert snapshot.summary["total-data-files"] == "2"
    assert snapshot.summary["total-records"] == "11"
    assert snapshot.summary["deleted-data-files"] == "11"
    assert len(list(table.scan().plan_files())) == 2
    assert rows_of(table) == [{"id": i, "tag": "ab"[i % 2]} for i in range(11)]
