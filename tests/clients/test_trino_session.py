"""The session over the Trino protocol: prepared statements (the python client's legacy
path and DESCRIBE OUTPUT), session properties, client tags, time zone, version(); the
reference platform's example queries through the client; and requests that are wrong."""

import datetime
import json
import signal
from decimal import Decimal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest
import trino
from trino.dbapi import connect

from lakehouse import BIN, Server, aichemy


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("session")
    server = Server(warehouse, env={"AICHEMY_SERVER__IDLE_TIMEOUT_SECONDS": "2",
                                    "AICHEMY_SERVER__QUERY_CLIENT_TIMEOUT_SECONDS": "3"})
    server.warehouse = warehouse
    yield server
    server.stop()


def cursor(served, **kwargs):
    return connect(host="127.0.0.1", port=served.http_port, user="admin", **kwargs).cursor()


def run(cur, sql, params=None):
    cur.execute(sql, params) if params is not None else cur.execute(sql)
    return cur.fetchall()


def test_reference_examples_match_aichemy_sql(served):
    cur = cursor(served)
    examples = [
        "CREATE SCHEMA iceberg.ic_test",
        "CREATE TABLE iceberg.ic_test.orders (order_id INTEGER, customer_id INTEGER, "
        "order_date DATE, amount DECIMAL(10,2))",
        "INSERT INTO iceberg.ic_test.orders VALUES (1, 101, DATE '2025-01-15', 99.99), "
        "(2, 102, DATE '2025-01-16', 149.50)",
        "CREATE SCHEMA lance.ln_test",
        "CREATE TABLE lance.ln_test.embeddings (id INTEGER, document_name VARCHAR, "
        "content VARCHAR, embedding ARRAY(DOUBLE), metadata MAP(VARCHAR, VARCHAR), "
        "created_at TIMESTAMP)",
        "INSERT INTO lance.ln_test.embeddings VALUES (1, 'doc1.txt', 'Sample text about AI', "
        "ARRAY[0.1, 0.2, 0.3, 0.4, 0.5], MAP(ARRAY['category', 'language'], "
        "ARRAY['tech', 'en']), CURRENT_TIMESTAMP), (2, 'doc2.txt', 'Another text', "
        "ARRAY[0.5, 0.4, 0.3, 0.2, 0.1], MAP(ARRAY['category'], ARRAY['tech']), "
        "CURRENT_TIMESTAMP)",
    ]
    for statement in examples:
        run(cur, statement)
    orders = "SELECT * FROM iceberg.ic_test.orders ORDER BY order_id"
    dot = ("WITH vec1 AS (SELECT embedding AS v1 FROM lance.ln_test.embeddings WHERE id = 1), "
           "vec2 AS (SELECT embedding AS v2 FROM lance.ln_test.embeddings WHERE id = 2) "
           "SELECT REDUCE(TRANSFORM(SEQUENCE(1, CARDINALITY(v1)), i -> v1[i] * v2[i]), 0.0, "
           "(s, x) -> s + x, s -> s) AS dot_product FROM vec1, vec2")
    metadata = ("SELECT id, document_name, metadata['category'], metadata['language'] "
                "FROM lance.ln_test.embeddings ORDER BY id")
    # `aichemy sql --format json` writes decimals as JSON numbers.
    as_served = [[str(v) for v in row[:3]] + [Decimal(row[3])] for row in run(cur, orders)]
    assert as_served == [[str(v) for v in list(row.values())[:3]] + [Decimal(str(row["amount"]))]
                         for row in aichemy(served.warehouse, orders)]
    assert run(cur, dot) == [[0.35000000000000003]]
    assert run(cur, dot)[0][0] == aichemy(served.warehouse, dot)[0]["dot_product"]
    assert run(cur, metadata) == [[1, "doc1.txt", "tech", "en"], [2, "doc2.txt", "tech", None]]
    names = [d.name for d in cur.description]
    assert run(cur, metadata) == [[r.get(n) for n in names]
                                  for r in aichemy(served.warehouse, metadata)]


def test_legacy_prepared_statements(served):
    conn = connect(host="127.0.0.1", port=served.http_port, user="admin",
                   legacy_prepared_statements=True)
    cur = conn.cursor()
    assert run(cur, "SELECT ? + 1, ?", [41, "it's"]) == [[42, "it's"]]
    # PREPARE, EXECUTE and DEALLOCATE went through the headers: nothing is left over.
    assert conn._client_session.prepared_statements == {}
    run(cur, "PREPARE by_id FROM SELECT order_id, amount FROM iceberg.ic_test.orders "
             "WHERE order_id = ?")
    assert "by_id" in conn._client_session.prepared_statements
    assert run(cur, "EXECUTE by_id USING 2")[0][0] == 2
    assert run(cur, "DESCRIBE INPUT by_id") == [[0, "unknown"]]
    run(cur, "DEALLOCATE PREPARE by_id")
    assert conn._client_session.prepared_statements == {}
    with pytest.raises(trino.exceptions.TrinoUserError) as error:
        run(cur, "EXECUTE by_id USING 2")
    assert error.value.error_name == "NOT_FOUND"
    assert error.value.message == "Prepared statement not found: by_id"


def test_describe_output(served):
    cur = cursor(served)
    described = cur.describe(
        "SELECT order_id, amount + amount AS doubled, 'x' FROM iceberg.ic_test.orders "
        "WHERE customer_id = ?")
    assert [tuple(d) for d in described] == [
        ("order_id", "iceberg", "ic_test", "orders", "integer", 4, False),
        ("doubled", "", "", "", "decimal(11,2)", 8, True),
        ("_col2", "", "", "", "varchar", 0, False),
    ]


def test_session_properties(served):
    conn = connect(host="127.0.0.1", port=served.http_port, user="admin")
    cur = conn.cursor()
    run(cur, "SET SESSION query_max_run_time = '1s'")
    assert conn._client_session.properties == {"query_max_run_time": "1s"}
    assert ["query_max_run_time", "1s", "100.00d", "varchar"] in [
        row[:4] for row in run(cur, "SHOW SESSION")]
    with pytest.raises(trino.exceptions.TrinoQueryError) as error:
        run(cur, "SELECT count(*) FROM generate_series(1, 3000000000)")
    assert error.value.error_name == "EXCEEDED_TIME_LIMIT"
    run(cur, "RESET SESSION query_max_run_time")
    assert conn._client_session.properties == {}
    with pytest.raises(trino.exceptions.TrinoUserError) as error:
        run(cur, "SET SESSION no_such_property = 1")
    assert error.value.error_name == "INVALID_SESSION_PROPERTY"
    assert error.value.message == "Session property 'no_such_property' does not exist"
    # From the connection's settings, as dbt sends its session_properties.
    cur = cursor(served, session_properties={"query_max_execution_time": "2h"})
    assert ["query_max_execution_time", "2h"] in [row[:2] for row in run(cur, "SHOW SESSION")]
    # A CPU limit, as Trino's query_max_cpu_time: the work of the query's operators on
    # every thread counts, and a query past it fails with Trino's error.
    cur = cursor(served, session_properties={"query_max_cpu_time": "1s"})
    started = time.monotonic()
    with pytest.raises(trino.exceptions.TrinoQueryError) as error:
        run(cur, "SELECT count(*) FROM generate_series(1, 3000000000) a "
                 "CROSS JOIN (VALUES (1), (2)) b(y)")
    assert error.value.error_name == "EXCEEDED_CPU_LIMIT"
    assert error.value.message == "Query exceeded the maximum CPU time limit of 1s"
    assert time.monotonic() - started < 30
    assert run(cur, "SELECT count(*) FROM generate_series(1, 1000)") == [[1000]]
    cur = cursor(served, session_properties={"join_distribution_type": "BROADCAST"})
    with pytest.raises(trino.exceptions.TrinoUserError) as error:
        run(cur, "SELECT 1")
    assert error.value.error_name == "INVALID_SESSION_PROPERTY"


def test_tags_source_time_zone_and_version(served):
    cur = cursor(served, client_tags=["nightly", "finance"], source="etl",
                 timezone="Europe/Paris")
    assert run(cur, "SELECT current_timezone(), current_user, version()") == [
        ["Europe/Paris", "admin", "aichemy-0.1.0"]]
    # The session's zone is the zone of TIMESTAMP WITH TIME ZONE values.
    [[zoned, now]] = run(cur, "SELECT CAST(TIMESTAMP '2025-01-01 10:00:00' AS TIMESTAMP WITH "
                              "TIME ZONE), current_timestamp")
    assert (zoned.hour, zoned.utcoffset()) == (10, datetime.timedelta(hours=1))
    assert abs(now - datetime.datetime.now(datetime.timezone.utc)) < datetime.timedelta(minutes=1)
    request = urllib.request.Request(
        f"http://127.0.0.1:{served.http_port}/v1/query/{cur.query_id}",
        headers={"X-Trino-User": "admin"})
    session = json.load(urllib.request.urlopen(request))["session"]
    assert (session["clientTags"], session["source"], session["timeZone"]) == (
        ["nightly", "finance"], "etl", "Europe/Paris")
    import sqlalchemy
    engine = sqlalchemy.create_engine(f"trino://admin@127.0.0.1:{served.http_port}/iceberg")
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("SELECT version()")).scalar() == \
            "aichemy-0.1.0"


def raw(served, data, timeout=10):
    """Sends bytes on a fresh connection; answers everything the server sent back."""
    with socket.create_connection(("127.0.0.1", served.http_port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def post(served, body, headers=None, path="/v1/statement", method="POST"):
    request = urllib.request.Request(f"http://127.0.0.1:{served.http_port}{path}",
                                     data=body, method=method,
                                     headers={"X-Trino-User": "admin", **(headers or {})})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_malformed_requests_get_status_codes_not_crashes(served):
    ok = b'"nextUri"'
    cases = [
        (post(served, b"SELECT 1", {"X-Trino-Time-Zone": "Mars/Olympus"}),
         (400, b"Time zone not supported: Mars/Olympus")),
        (post(served, b"SELECT 1", {"X-Trino-Session": "no-equals-sign"}),
         (400, b"Invalid X-Trino-Session header")),
        (post(served, b"SELECT 1", {"X-Trino-Prepared-Statement": "a=%zz"}),
         (400, b"Invalid X-Trino-Prepared-Statement header")),
        (post(served, b"SELECT 1", {"X-Presto-User": "admin"}),
         (400, b"Both X-Trino and X-Presto headers are present")),
        (post(served, b"\xff\xfe"), (400, b"Query text is not UTF-8")),
        (post(served, b"   "), (400, b"SQL statement is empty")),
        (post(served, None, path="/v1/query/20250101_000000_00000_xxxxx", method="GET"),
         (404, b"Query not found")),
        (post(served, None, path="/v1/statement/executing/nope/y1/0", method="GET"),
         (404, b"Query not found")),
        (post(served, None, path="/v1/nothing", method="GET"), (404, b"")),
    ]
    for got, expected in cases:
        assert got == expected
    status, body = post(served, b"SELECT '" + b"x" * (2 << 20) + b"'")
    assert status == 413
    # A garbage request line, then the server still answers.
    answer = raw(served, b"\x16\x03\x01 not http at all\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    status, body = post(served, b"SELECT 1")
    assert status == 200 and ok in body
    for _, (_, body) in cases:
        assert b"/work" not in body and b"panicked" not in body and b".rs:" not in body


# DataFusion's overlay slices its string at an unchecked byte offset and panics.
PANICS = "SELECT overlay('abc' placing 'x' from -9223372036854775807 for 9223372036854775807)"


def test_a_panicking_statement_fails_alone(served):
    """A statement that panics inside the engine (a string sliced out of bounds) fails with
    GENERIC_INTERNAL_ERROR, without a source location; the server and `aichemy sql` go on."""
    cur = cursor(served)
    with pytest.raises(trino.exceptions.TrinoQueryError) as failed:
        run(cur, PANICS)
    assert failed.value.error_name == "GENERIC_INTERNAL_ERROR"
    assert "out of bounds" in failed.value.message
    assert ".rs:" not in failed.value.message
    assert run(cur, "SELECT 42") == [[42]]
    done = subprocess.run(
        [BIN, "--warehouse", str(served.warehouse / "shell"), "sql", "--ignore-errors",
         "-e", f"{PANICS}; SELECT 42 AS answer"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Query failed: GENERIC_INTERNAL_ERROR" in done.stderr
    assert "42" in done.stdout


def test_idle_connections_are_closed(served):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", served.http_port), timeout=30) as s:
        assert s.recv(1) == b""  # closed by the server, not by our timeout
    assert time.monotonic() - started < 15
    # A kept-alive connection that stops sending requests is closed as well.
    with socket.create_connection(("127.0.0.1", served.http_port), timeout=30) as s:
        s.sendall(b"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        while s.recv(65536):
            pass
        assert time.monotonic() - started < 15


def test_a_query_whose_client_went_away_is_cancelled(served):
    cur = cursor(served)
    cur.execute("SELECT a.value FROM generate_series(1, 1000000000) a")
    assert cur.fetchone() == [1]
    time.sleep(6)  # the client stops fetching; the timeout is 3 s
    request = urllib.request.Request(
        f"http://127.0.0.1:{served.http_port}/v1/query/{cur.query_id}",
        headers={"X-Trino-User": "admin"})
    info = json.load(urllib.request.urlopen(request))
    assert info["state"] == "FAILED"
    assert info["errorCode"]["name"] == "ABANDONED_QUERY"
    assert "was abandoned by the client" in info["failureInfo"]["message"]


def test_sigterm_refuses_new_queries_and_cancels_after_the_grace(tmp_path):
    server = Server(tmp_path / "wh", env={"AICHEMY_SERVER__SHUTDOWN_GRACE_SECONDS": "2"})
    outcome = {}

    def long_query():
        try:
            run(cursor(server), "SELECT count(*) FROM generate_series(1, 100000000000)")
        except Exception as error:  # noqa: BLE001 - the outcome is checked below
            outcome["error"] = error

    thread = threading.Thread(target=long_query)
    thread.start()
    time.sleep(1)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(trino.exceptions.TrinoQueryError) as error:
        run(cursor(server), "SELECT 1")
    assert error.value.error_name == "SERVER_SHUTTING_DOWN"
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), trino.exceptions.TrinoQueryError)
    assert outcome["error"].error_name == "USER_CANCELED"
    assert "shutting down" in outcome["error"].message
    assert server.process.wait(timeout=30) == 0
