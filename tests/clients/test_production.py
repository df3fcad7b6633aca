"""Production mode through the python Trino client and PyIceberg: the metastore in a real
PostgreSQL, several `aichemy serve` nodes sharing it and one warehouse, users and REST
tokens shared through it, `aichemy migrate` and `aichemy metastore export|import`."""

import hashlib
import json
import os
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import trino
from pyiceberg.catalog import load_catalog
from trino.auth import BasicAuthentication

from lakehouse import BIN, Server
from postgres import PASSWORD, USER, Postgres
from s3 import S3Server

PASSWORD_ENV = "AICHEMY_TEST_METASTORE_PASSWORD"
# The newest metastore schema this tree migrates to (PostgreSQL's start at 4, the first
# version that database had).
MIGRATIONS = Path(__file__).resolve().parents[2] / "crates/aichemy-metastore/migrations/postgres"
LATEST = max(int(path.name.split("_")[0]) for path in MIGRATIONS.glob("*.sql"))


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
    applied = ", ".join(str(n) for n in range(4, LATEST + 1))
    assert f"applied migrations {applied}; schema version {LATEST}" in migrated.stderr
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


def test_sql_grants_in_postgres_bind_every_node(postgres, tmp_path):
    env = new_database(postgres, "meta_grants")
    (tmp_path / "access-control.properties").write_text(
        "access-control.name=sql-standard\nsql-standard.admin-users=root\n")
    flags = ["--access-control-config", str(tmp_path / "access-control.properties")]
    a = Server(tmp_path / "warehouse", *flags, env=env)
    b = Server(tmp_path / "warehouse", *flags, env=env)

    def as_user(server, user, sql, roles=None):
        cur = trino.dbapi.connect(host="127.0.0.1", port=server.http_port, user=user,
                                  roles=roles).cursor()
        cur.execute(sql)
        return cur.fetchall()

    admin = {"system": "admin"}
    try:
        for sql in ["CREATE ROLE analyst", "GRANT analyst TO USER ann",
                    "CREATE SCHEMA iceberg.shop",
                    "CREATE TABLE iceberg.shop.items AS SELECT 1 AS id, 'a@x.org' AS email"]:
            as_user(a, "root", sql, admin)
        with pytest.raises(trino.exceptions.TrinoUserError) as e:
            as_user(b, "ann", "SELECT id FROM iceberg.shop.items")
        assert e.value.error_name == "PERMISSION_DENIED"
        # Granted and masked through one node, enforced by the other within a second.
        as_user(a, "root", "GRANT SELECT ON iceberg.shop.items TO ROLE analyst", admin)
        as_user(a, "root", "CREATE COLUMN MASK ON TABLE iceberg.shop.items COLUMN email "
                           "FOR ROLE analyst AS '***'", admin)
        deadline = time.monotonic() + 10
        while True:
            try:
                rows = as_user(b, "ann", "SELECT id, email FROM iceberg.shop.items")
                break
            except trino.exceptions.TrinoUserError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert rows == [[1, "***"]]
        assert as_user(b, "root", "SHOW ROLES", admin) == [
            ["admin"], ["analyst"], ["public"]]
    finally:
        a.stop()
        b.stop()
    rows = postgres.psql("meta_grants", "SELECT role_name FROM aichemy_roles")
    assert rows.split() == ["analyst"]


@pytest.fixture(scope="module")
def s3():
    server = S3Server()
    yield server
    server.stop()


@pytest.mark.parametrize("fmt", ["iceberg", "delta", "lance"])
def test_concurrent_inserts_through_two_nodes_on_s3_all_land(postgres, s3, fmt):
    """4 writers x 25 INSERTs into one table through two nodes sharing a PostgreSQL
    metastore and a bucket: every acknowledged row is there exactly once."""
    env = {**new_database(postgres, f"meta_writers_{fmt}"), **s3.env()}
    warehouse = f"s3://{s3.bucket}/writers-{fmt}"
    nodes = [Server(warehouse, env=env), Server(warehouse, env=env)]
    writers, inserts = 4, 25
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
        expected = [[w, s] for w in range(writers) for s in range(inserts)]
        select = f"SELECT writer, seq FROM {fmt}.w.log ORDER BY writer, seq"
        for i, node in enumerate(nodes):
            rows = query(node, select)
            if rows != expected:
                # Enough to tell a lost commit from a stale read when this ever fails.
                pytest.fail(
                    f"node {i}: missing {[r for r in expected if r not in rows]}, "
                    f"extra {[r for r in rows if rows.count(r) > 1 or r not in expected]}; "
                    f"read again: {len(query(node, select))} rows; table files: "
                    f"{sorted(k for k in s3.keys(f'writers-{fmt}/') if '.parquet' not in k)}")
    finally:
        for node in nodes:
            node.stop()


@pytest.mark.parametrize("fmt", ["iceberg", "delta", "lance"])
def test_row_changes_racing_through_two_nodes_on_s3_lose_no_update(postgres, s3, fmt):
    """UPDATE and MERGE incrementing counters through two nodes sharing a PostgreSQL
    metastore and a bucket, while a third writer appends: every statement either commits
    or fails with TRANSACTION_CONFLICT, every committed increment is there on both nodes
    (no lost update), and every append lands."""
    env = {**new_database(postgres, f"meta_dml_{fmt}"), **s3.env()}
    warehouse = f"s3://{s3.bucket}/dml-{fmt}"
    nodes = [Server(warehouse, env=env), Server(warehouse, env=env)]
    rounds = 6
    try:
        query(nodes[0], f"CREATE SCHEMA {fmt}.c")
        query(nodes[0], f"CREATE TABLE {fmt}.c.counters (id integer, n integer)")
        query(nodes[0], f"INSERT INTO {fmt}.c.counters VALUES (1, 0), (2, 0)")
        done = {1: 0, 2: 0}
        problems = []

        def updater(key):
            cur = connect(nodes[key % 2], user=f"updater{key}").cursor()
            for _ in range(rounds):
                if key == 1:
                    statement = f"UPDATE {fmt}.c.counters SET n = n + 1 WHERE id = 1"
                else:
                    statement = (f"MERGE INTO {fmt}.c.counters t USING (VALUES 2) AS s(id) "
                                 "ON t.id = s.id WHEN MATCHED THEN UPDATE SET n = n + 1")
                try:
                    cur.execute(statement)
                    assert cur.fetchall() == [[1]]
                    done[key] += 1
                except Exception as e:  # noqa: BLE001 - every other failure is reported
                    if getattr(e, "error_name", None) != "TRANSACTION_CONFLICT":
                        problems.append((statement, repr(e)))

        def appender():
            cur = connect(nodes[0], user="appender").cursor()
            for i in range(rounds):
                try:
                    cur.execute(f"INSERT INTO {fmt}.c.counters VALUES ({100 + i}, 0)")
                    cur.fetchall()
                except Exception as e:  # noqa: BLE001 - an append must always land
                    problems.append(("append", repr(e)))

        threads = [threading.Thread(target=updater, args=(k,)) for k in done]
        threads.append(threading.Thread(target=appender))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert problems == []
        assert sum(done.values()) >= rounds
        for node in nodes:
            rows = query(node, f"SELECT id, n FROM {fmt}.c.counters ORDER BY id")
            assert rows == [[1, done[1]], [2, done[2]]] + [[100 + i, 0] for i in range(rounds)]
    finally:
        for node in nodes:
            node.stop()


def https_query(server, user, password, sql):
    conn = trino.dbapi.connect(
        host="localhost", port=server.https_port, user=user, http_scheme="https",
        auth=BasicAuthentication(user, password), verify=str(server.certificate))
    cur = conn.cursor()
    cur.execute(sql)
    return cur.fetchall()


def rest_token(server, user, password):
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": user,
                                   "client_secret": password}).encode()
    context = ssl.create_default_context(cafile=str(server.certificate))
    url = f"https://localhost:{server.https_port}/iceberg/v1/oauth/tokens"
    with urllib.request.urlopen(url, data=form, context=context) as response:
        return json.loads(response.read())["access_token"]


def rest_catalog(server, token):
    return load_catalog("shared", **{
        "type": "rest", "uri": f"https://localhost:{server.https_port}/iceberg",
        "token": token, "ssl": {"cabundle": str(server.certificate)}})


def test_users_and_tokens_live_in_the_metastore_for_every_node(
        postgres, tmp_path, monkeypatch):
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    env = {**new_database(postgres, "meta_users"),
           "AICHEMY_SERVER__PASSWORD_AUTHENTICATION": "true"}
    secret = "correct horse battery"

    def user(*args, password=None):
        done = subprocess.run([BIN, "--warehouse", str(tmp_path), "user", *args],
                              input=password, capture_output=True, text=True,
                              env={**os.environ, **env})
        assert secret not in done.stdout + done.stderr
        return done

    done = user("add", "alice", password=secret + "\n")
    assert done.returncode == 0, done.stderr
    assert "added to the metastore at postgresql://" in done.stderr
    assert user("add", "alice", password="x\n").returncode != 0
    assert user("list").stdout == "alice\n"
    a = Server(tmp_path, env=env)
    b = Server(tmp_path, env=env)
    a.certificate = b.certificate = tmp_path / "tls" / "aichemy.crt"
    try:
        for node in (a, b):
            assert https_query(node, "alice", secret, "SELECT current_user") == [["alice"]]
        with pytest.raises(trino.exceptions.HttpError, match="401"):
            https_query(b, "alice", "wrong", "SELECT 1")
        # A user added while both nodes run signs in on both.
        assert user("add", "bob", password="second secret\n").returncode == 0
        assert https_query(b, "bob", "second secret", "SELECT 1") == [[1]]
        # A token node a issued works on node b: the signing key is in the metastore.
        token = rest_token(a, "alice", secret)
        rest_catalog(a, token).create_namespace("shared_ns")
        assert ("shared_ns",) in rest_catalog(b, token).list_namespaces()
        # Removing a user ends their password and their tokens on every node, within
        # the servers' five-second memory of users.
        assert user("remove", "alice").returncode == 0
        time.sleep(6)
        with pytest.raises(trino.exceptions.HttpError, match="401"):
            https_query(a, "alice", secret, "SELECT 1")
        request = urllib.request.Request(
            f"https://localhost:{b.https_port}/iceberg/v1/namespaces",
            headers={"Authorization": f"Bearer {token}"})
        context = ssl.create_default_context(cafile=str(b.certificate))
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(request, context=context)
        assert e.value.code == 401
        # Trino's password file moves in as it is (here a PBKDF2 entry), all or none.
        salt = bytes(range(16))
        digest = hashlib.pbkdf2_hmac("sha256", b"from-trino", salt, 1000, 32)
        password_db = tmp_path / "password.db"
        password_db.write_text(f"legacy:1000:{salt.hex()}:{digest.hex()}\nbob:{'x' * 3}\n")
        done = user("import", str(password_db))
        assert done.returncode != 0 and "line 2" in done.stderr, done.stderr
        password_db.write_text(f"legacy:1000:{salt.hex()}:{digest.hex()}\n")
        done = user("import", str(password_db))
        assert done.returncode == 0 and "imported 1 user" in done.stderr, done.stderr
        assert https_query(a, "legacy", "from-trino", "SELECT 1") == [[1]]
        assert user("list").stdout == "bob\nlegacy\n"
    finally:
        logs = a.stop() + b.stop()
    assert secret not in logs


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
    assert f"schema version 99, newer than this binary knows (up to {LATEST})" in done.stderr
