"""A warehouse on S3: every format reads and writes there, commits rely on put-if-absent,
and a store that ignores it is refused. The S3 server is moto's, started by the test."""

import http.client
import http.server
import os
import subprocess
import threading

import botocore.exceptions
import pyarrow as pa
import pytest
import trino
from pyiceberg.catalog import load_catalog
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from lakehouse import BIN, Server, free_port
from s3 import SECRET_KEY, S3Server


@pytest.fixture(scope="module")
def s3():
    server = S3Server()
    yield server
    server.stop()


def run(warehouse, env, *args):
    return subprocess.run([BIN, "--warehouse", warehouse, *args], capture_output=True,
                          text=True, env={**os.environ, **env})


def local_metastore(tmp_path):
    return {"AICHEMY_METASTORE__URL": f"sqlite://{tmp_path}/metastore.db"}


def test_the_s3_server_enforces_conditional_writes(s3):
    """Our atomicity tests mean something only if the store refuses a second create."""
    client = s3.client()
    client.put_object(Bucket=s3.bucket, Key="probe", Body=b"1", IfNoneMatch="*")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.put_object(Bucket=s3.bucket, Key="probe", Body=b"2", IfNoneMatch="*")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.put_object(Bucket=s3.bucket, Key="probe", Body=b"3", IfMatch='"stale"')
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.get_object(Bucket=s3.bucket, Key="probe")["Body"].read() == b"1"


def test_every_format_reads_and_writes_on_s3(s3, tmp_path):
    env = {**s3.env(), **local_metastore(tmp_path)}
    statements = []
    for fmt in ("iceberg", "delta", "lance", "hive"):
        statements += [f"CREATE SCHEMA {fmt}.s", f"CREATE TABLE {fmt}.s.t AS SELECT 1 AS x",
                       f"INSERT INTO {fmt}.s.t VALUES (2)"]
    statements.append(" UNION ALL ".join(
        f"SELECT '{fmt}' AS f, sum(x) AS total FROM {fmt}.s.t"
        for fmt in ("iceberg", "delta", "lance", "hive")))
    done = run("s3://lake/every", env, "sql", "--format", "csv", "-e", "; ".join(statements))
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.replace('"', "").split()[1:]) == sorted(
        ["iceberg,3", "delta,3", "lance,3", "hive,3"])
    keys = s3.keys("every/")
    for fmt in ("iceberg", "delta", "lance", "hive"):
        assert any(k.startswith(f"every/{fmt}/s/t") for k in keys), (fmt, keys)
    assert not any("commit-probe" in k for k in keys)
    assert SECRET_KEY not in done.stderr


class DroppingProxy(http.server.ThreadingHTTPServer):
    """Forwards requests to the S3 server without their If-None-Match and If-Match
    headers: a store that silently ignores conditional writes."""

    def __init__(self, target_port):
        self.target_port = target_port
        super().__init__(("127.0.0.1", free_port()), ProxyHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("if-none-match", "if-match", "host")}
        conn = http.client.HTTPConnection("127.0.0.1", self.server.target_port)
        conn.request(self.command, self.path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        self.send_response(response.status)
        for k, v in response.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

    def log_message(self, *args):
        pass


def test_a_store_without_conditional_writes_is_refused(s3, tmp_path):
    proxy = DroppingProxy(s3.port)
    try:
        env = {**s3.env(), **local_metastore(tmp_path),
               "AICHEMY_STORAGE__S3__ENDPOINT": f"http://127.0.0.1:{proxy.server_address[1]}"}
        done = run("s3://lake/unsafe", env, "sql", "-e", "SELECT 1")
        assert done.returncode != 0
        assert "does not enforce conditional writes (If-None-Match)" in done.stderr
        assert "storage.allow_unsafe_commits" in done.stderr
        done = run("s3://lake/unsafe", {**env, "AICHEMY_STORAGE__ALLOW_UNSAFE_COMMITS": "true"},
                   "sql", "-e", "SELECT 1")
        assert done.returncode == 0, done.stderr
        assert "concurrent commits may lose data" in done.stderr
    finally:
        proxy.shutdown()


def test_an_unreachable_bucket_is_a_clear_error(s3, tmp_path):
    env = {**s3.env(), **local_metastore(tmp_path)}
    done = run("s3://no-such-bucket/wh", env, "sql", "-e", "SELECT 1")
    assert done.returncode != 0
    assert "cannot write to the warehouse at s3://no-such-bucket/wh" in done.stderr
    assert "NoSuchBucket" in done.stderr
    assert SECRET_KEY not in done.stderr


def test_pyiceberg_appends_through_the_rest_catalog_land_on_s3(s3, tmp_path):
    env = {**s3.env(), **local_metastore(tmp_path)}
    server = Server("s3://lake/rest", env=env)
    try:
        catalog = load_catalog("rest", type="rest",
                               uri=f"http://127.0.0.1:{server.http_port}/iceberg")
        catalog.create_namespace("s")
        schema = Schema(NestedField(1, "id", LongType(), required=False),
                        NestedField(2, "name", StringType(), required=False))
        table = catalog.create_table("s.t", schema=schema)
        assert table.location() == "s3://lake/rest/iceberg/s/t"
        table.append(pa.table({"id": pa.array([1, 2], pa.int64()), "name": ["a", "b"]}))
        cur = trino.dbapi.connect(host="127.0.0.1", port=server.http_port, user="u").cursor()
        cur.execute("SELECT id, name FROM iceberg.s.t ORDER BY id")
        assert cur.fetchall() == [[1, "a"], [2, "b"]]
        assert any(k.endswith(".parquet") for k in s3.keys("rest/iceberg/s/t/data/"))
    finally:
        log = server.stop()
    assert SECRET_KEY not in log
