"""Production mode through the python Trino client: the metastore in a real PostgreSQL,
several `aichemy serve` nodes sharing it and one warehouse, `aichemy migrate` and
`aichemy metastore export|import`."""

import json
import os
import subprocess
import threading

import pytest
import trino

from lakehouse import BIN, Server
from postgres import PASSWORD, USER, Postgres
from s3 import S3Server

PASSWORD_ENV = "AICHEMY_TEST_METASTORE_PASSWORD"


@pytest.fixture(scope="module")
def postgres():
    pg = Postgres()
    yield pg
    pg.destroy()


def new_database(postgres, name):
    postgres.psql("postgres", f"CREATE DATABASE {name} OWNER {USER}")
    return {
        "AICHEMY_METASTORE__URL":
            f"postgresql://{USER}:${{ENV:{PASSWORD_ENV}}}@127.0.0.1:{postgres.port}/{name}",
        PASSWORD_ENV: PASSWORD,
    }


def run(warehouse, env, *args):
    return subprocess.run(
        [BIN, "--warehouse", str(warehouse), *args],
        capture_output=True, text=True, env={**os.environ, **env},
    )


def connect(server, user="alice"):
    return trino.dbapi.connect(host="127.0.0.1", port=server.http_port, user=user)


def query(server, sql):
    cur = connect(server).cursor()
    cur.execute(sql)
    return cur.fetchall()


def test_two_nodes_on_one_postgres_metastore_act_as_one_lakehouse(postgres, tmp_path):
    env = new_database(postgres, "meta_nodes")
    migrated = run(tmp_path, env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "applied migration 4; schema version 4" in migrated.stderr
    assert PASSWORD not in migrated.stderr
    a = Server(tmp_path, env=env)
    b = Server(tmp_path, env=env)
    try:
        query(a, "CREATE SCHEMA iceberg.shop")
        query(a, "CREATE TABLE iceberg.shop.items (id integer, name varchar)")
        query(a, "INSERT INTO iceberg.shop.items VALUES (1, 'tea'), (2, 'cake')")
        assert query(b, "SHOW TABLES FROM iceberg.shop") == [["items"]]
        assert query(b, "SELECT id, name FROM iceberg.shop.items ORDER BY id") == [
            [1, "tea"], [2, "cake"]]
        query(b, "CREATE VIEW iceberg.shop.cheap AS SELECT name FROM iceberg.shop.items WHERE id = 1")
        assert query(a, "SELECT * FROM iceberg.shop.cheap") == [["tea"]]
        for fmt in ("delta", "lance", "hive"):
            query(b, f"CREATE SCHEMA {fmt}.s")
            query(b, f"CREATE TABLE {fmt}.s.t AS SELECT 7 AS x")
            assert query(a, f"SELECT x FROM {fmt}.s.t") == [[7]]
        # A name taken through one node is taken for the other.
        with pytest.raises(trino.exceptions.TrinoUserError) as e:
            query(b, "CREATE TABLE iceberg.shop.items (id integer)")
        assert e.value.error_name == "TABLE_ALREADY_EXISTS"
    finally:
        log = a.stop() + b.stop()
    assert PASSWORD not in log
    rows = postgres.psql(
        "meta_nodes", "SELECT table_namespace || '.' || table_name FROM iceberg_tables")
    assert rows.split() == ["shop.items"]


@pytest.fixture(scope="module")
def s3():
    server = S3Server()
    yield server
    server.stop()


@pytest.mark.parametrize("fmt", ["iceberg", "delta", "lance"])
def test_concurrent_inserts_through_two_nodes_on_s3_all_land(postgres, s3, fmt):
    """4 writers x 50 INSERTs into one table through two nodes sharing a PostgreSQL
    metastore and a bucket: every acknowledged row is there exactly once."""
    env = {**new_database(postgres, f"meta_writers_{fmt}"), **s3.env()}
    warehouse = f"s3://{s3.bucket}/writers-{fmt}"
    nodes = [Server(warehouse, env=env), Server(warehouse, env=env)]
    writers, inserts = 4, 50
    try:
        query(nodes[0], f"CREATE SCHEMA {fmt}.w")
        query(nodes[0], f"CREATE TABLE {fmt}.w.log (writer integer, seq integer)")
        failures = []

        def write(writer):
            conn = connect(nodes[writer % 2], user=f"writer{writer}")
            cur = conn.cursor()
            for seq in range(inserts):
                try:
                    cur.execute(f"INSERT INTO {fmt}.w.log VALUES ({writer}, {seq})")
                    assert cur.fetchall() == [[1]]
                except Exception as e:  # noqa: BLE001 - every failure is reported below
                    failures.append((writer, seq, repr(e)))

        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        for node in nodes:
            rows = query(node, f"SELECT writer, seq FROM {fmt}.w.log ORDER BY writer, seq")
            assert rows == [[w, s] for w in range(writers) for s in range(inserts)]
    finally:
        for node in nodes:
            node.stop()


def test_export_from_sqlite_and_import_into_postgres(postgres, tmp_path):
    local = tmp_path / "local"
    created = run(local, {}, "sql", "-e",
                  "CREATE SCHEMA iceberg.s; CREATE TABLE iceberg.s.t AS SELECT 1 AS x; "
                  "CREATE SCHEMA delta.d; CREATE TABLE delta.d.t AS SELECT 'y' AS y; "
                  "CREATE VIEW iceberg.s.v AS SELECT x + 1 AS x FROM iceberg.s.t")
    assert created.returncode == 0, created.stderr
    dump = tmp_path / "metastore.json"
    exported = run(local, {}, "metastore", "export", "--output", str(dump))
    assert exported.returncode == 0, exported.stderr
    assert oct(dump.stat().st_mode & 0o777) == "0o600"
    document = json.loads(dump.read_text())
    assert document["format"] == "aichemy-metastore"
    assert len(document["tables"]["iceberg_tables"]) == 1

    env = new_database(postgres, "meta_import")
    imported = run(local, env, "metastore", "import", str(dump))
    assert imported.returncode == 0, imported.stderr
    again = run(local, env, "metastore", "import", str(dump))
    assert again.returncode != 0 and "is not empty" in again.stderr
    server = Server(local, env=env)
    try:
        assert query(server, "SELECT * FROM iceberg.s.v") == [[2]]
        assert query(server, "SELECT y FROM delta.d.t") == [["y"]]
    finally:
        server.stop()


def test_a_bad_metastore_stops_the_server_with_a_clear_error(postgres, tmp_path):
    env = new_database(postgres, "meta_bad")
    env[PASSWORD_ENV] = "not-the-password"
    done = run(tmp_path, env, "serve", "--http-port", "0")
    assert done.returncode != 0
    assert "password authentication failed" in done.stderr
    assert "not-the-password" not in done.stderr
    newer = new_database(postgres, "meta_newer")
    assert run(tmp_path, newer, "migrate").returncode == 0
    postgres.psql("meta_newer",
                  "INSERT INTO _sqlx_migrations (version, description, success, checksum, "
                  "execution_time) VALUES (99, 'future', true, '\\x00', 0)")
    done = run(tmp_path, newer, "sql", "-e", "SELECT 1")
    assert done.returncode != 0
    assert "schema version 99, newer than this binary knows (up to 4)" in done.stderr
