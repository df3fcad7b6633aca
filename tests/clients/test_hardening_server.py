"""A hostile or careless user against `aichemy serve`, through the python `trino` client and
raw HTTP: statements nested thousands deep, a prepared statement that executes itself, a
CPU-bound query beside short ones, queries ended by their time limit or a cancel, wide
rows for clients that read slowly or cancel, SIGTERM during a cross join, a full queue and a
metastore outage. Each must stay that user's problem: the server answers everyone else,
holds bounded memory, and stops when told."""

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest
import trino
from trino.dbapi import connect

from lakehouse import Server
from postgres import PASSWORD, USER, Postgres, binary

# A cross join that keeps both cores busy for minutes on the debug build.
CROSS_JOIN = ("SELECT count(*) FROM generate_series(1, 100000) a "
              "CROSS JOIN generate_series(1, 100000) b WHERE a.value + b.value = 7")


def cursor(port, user="alice", **kwargs):
    return connect(host="127.0.0.1", port=port, user=user, http_scheme="http",
                   **kwargs).cursor()


def post(port, sql, headers=None):
    """Submits a statement over raw HTTP; answers the first response's JSON."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/statement", data=sql.encode(), method="POST",
        headers={"X-Trino-User": "alice", **(headers or {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def follow(uri, until=None, timeout=120):
    """GETs `nextUri` until the query ends (or `until(page)` holds); answers the last page,
    with the rows of every page under "rows"."""
    deadline = time.monotonic() + timeout
    page, rows = {}, []
    while uri and time.monotonic() < deadline:
        with urllib.request.urlopen(uri, timeout=30) as response:
            page = json.load(response)
        rows += page.get("data", [])
        page["rows"] = rows
        if until and until(page):
            return page
        uri = page.get("nextUri")
    return page


def cpu_seconds(pid):
    """User plus system CPU time of a process and all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(action):
    started = time.monotonic()
    action()
    return time.monotonic() - started


def info(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/info", timeout=10) as response:
        assert response.status == 200


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    served = Server(tmp_path_factory.mktemp("hardening"))
    yield served
    served.stop()


NESTINGS = {
    "not": ("NOT ", "", "true"),
    "abs": ("abs(", ")", "1"),
    "cast": ("CAST(", " AS BIGINT)", "1"),
    "array": ("ARRAY[", "]", "1"),
    "parentheses": ("(", ")", "1"),
}


@pytest.mark.parametrize("kind", sorted(NESTINGS))
def test_deeply_nested_expressions_are_an_error_of_their_query(server, kind):
    opening, closing, inner = NESTINGS[kind]
    cur = cursor(server.http_port)
    for depth in (20, 30, 300):
        cur.execute(f"SELECT {opening * depth}{inner}{closing * depth}")
        assert len(cur.fetchall()) == 1
    for depth in (1100, 10_000):
        with pytest.raises(trino.exceptions.TrinoUserError) as error:
            cur.execute(f"SELECT {opening * depth}{inner}{closing * depth}")
            cur.fetchall()
        assert error.value.error_name == "STACK_OVERFLOW", error.value
        assert "statement is too large" in error.value.message
    assert server.process.poll() is None
    cur.execute("SELECT 1")
    assert cur.fetchall() == [[1]]


def test_long_sums_and_statements_are_answered(server):
    cur = cursor(server.http_port)
    cur.execute("SELECT " + " + ".join(["1"] * 300))
    assert cur.fetchall() == [[300]]
    for terms in (5000, 10_000):
        with pytest.raises(trino.exceptions.TrinoUserError) as error:
            cur.execute("SELECT " + " + ".join(["1"] * terms))
            cur.fetchall()
        assert error.value.error_name == "STACK_OVERFLOW"
    # A long statement that is not deep is fine: 5,000 values in one IN list.
    cur.execute("SELECT 7 IN (" + ", ".join(str(i) for i in range(5000)) + ")")
    assert cur.fetchall() == [[True]]
    assert server.process.poll() is None


def test_a_prepared_statement_cannot_execute_itself(server):
    cur = cursor(server.http_port)
    with pytest.raises(trino.exceptions.TrinoUserError) as error:
        cur.execute("PREPARE p FROM EXECUTE p")
        cur.fetchall()
    assert error.value.error_name == "NOT_SUPPORTED"
    # The same statement prepared by a client's header, which PREPARE never saw.
    for body in ("EXECUTE p", "EXECUTE IMMEDIATE 'EXECUTE p'"):
        page = post(server.http_port, "EXECUTE p",
                    {"X-Trino-Prepared-Statement": "p=" + urllib.parse.quote_plus(body)})
        page = follow(page["nextUri"])
        assert page["error"]["errorName"] == "NOT_SUPPORTED", page
    page = follow(post(server.http_port,
                       "EXECUTE IMMEDIATE 'EXECUTE IMMEDIATE ''SELECT 1'''")["nextUri"])
    assert page["error"]["errorName"] == "NOT_SUPPORTED", page
    assert server.process.poll() is None
    info(server.http_port)


def test_a_cpu_bound_query_leaves_the_server_responsive(server):
    port = server.http_port
    busy = post(port, CROSS_JOIN)
    stop = threading.Event()
    fetcher = threading.Thread(
        target=lambda: follow(busy["nextUri"], until=lambda _: stop.is_set(), timeout=300))
    fetcher.start()
    try:
        # The query is under way: its pages report it running.
        time.sleep(2)
        info_times = sorted(timed(lambda: info(port)) for _ in range(100))
        select_times = []
        cur = cursor(port)
        for _ in range(30):
            def select_one():
                cur.execute("SELECT 1")
                assert cur.fetchall() == [[1]]
            select_times.append(timed(select_one))
        select_times.sort()
        # p99 of 100, and 27 of 30 queries: a query's task waits for a worker only when
        # the busy query's tasks hold every one in a long poll, which happens now and
        # then on a loaded machine (one CI run saw 4.6 s and 0.26 s among 30). Sharing
        # the HTTP runtime, or one worker per partition, makes most of them slow.
        assert info_times[98] < 0.2, info_times[-5:]
        assert select_times[26] < 0.2, select_times[-5:]
    finally:
        stop.set()
        urllib.request.urlopen(urllib.request.Request(busy["nextUri"], method="DELETE"))
        fetcher.join()


def test_queries_ended_by_time_limit_or_cancel_stop_computing(server):
    port = server.http_port
    limited = post(port, CROSS_JOIN,
                   {"X-Trino-Session": "query_max_run_time=2s"})
    canceled = post(port, CROSS_JOIN)
    ended = follow(limited["nextUri"])
    assert ended["error"]["errorName"] == "EXCEEDED_TIME_LIMIT", ended
    first = follow(canceled["nextUri"], until=lambda p: p["stats"]["state"] == "RUNNING")
    urllib.request.urlopen(urllib.request.Request(first["nextUri"], method="DELETE"))
    # Within 2 s of their end, the CPU is idle: under a tenth of one core over 2 s.
    time.sleep(2)
    before = cpu_seconds(server.process.pid)
    time.sleep(2)
    used = cpu_seconds(server.process.pid) - before
    assert used < 0.2, f"{used:.2f} CPU seconds in 2 s after both queries ended"
    info(port)


# Rows of about 4 KB: a page of them is most of what a query holds for its client.
WIDE_ROWS = ("SELECT a.x, b.y, lpad(CAST(a.x AS varchar), 4000, '-') AS pad "
             "FROM UNNEST(sequence(1, 10000)) a(x) CROSS JOIN UNNEST(sequence(1, 1000)) b(y)")


def rss_mib(pid):
    """Resident memory of a process, in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def has_rows(page):
    return bool(page.get("data"))


def delete(uri):
    urllib.request.urlopen(urllib.request.Request(uri, method="DELETE"))


def test_results_held_for_clients_stay_bounded(tmp_path):
    served = Server(tmp_path)
    try:
        port, pid = served.http_port, served.process.pid
        # One query first, so that what any query needs once is counted before.
        delete(follow(post(port, WIDE_ROWS)["nextUri"], until=has_rows)["nextUri"])
        time.sleep(1)
        before = peak = rss_mib(pid)
        # A client that reads a page now and then: the query waits for it.
        uri, rows = post(port, WIDE_ROWS)["nextUri"], 0
        for _ in range(8):
            with urllib.request.urlopen(uri, timeout=30) as response:
                page = json.load(response)
            rows += len(page.get("data", []))
            uri = page["nextUri"]
            time.sleep(0.5)
            peak = max(peak, rss_mib(pid))
        assert rows > 0
        # Clients that read one page and cancel.
        for _ in range(24):
            page = follow(post(port, WIDE_ROWS)["nextUri"], until=has_rows)
            assert page["rows"], page
            delete(page["nextUri"])
            peak = max(peak, rss_mib(pid))
        delete(uri)
        # A query holds a few of its engine's batches (4 MiB of these rows apiece) and,
        # for its client, pages bounded in bytes; nothing once it ended. (Pages of
        # thousands of rows, two of them kept by every cancelled query, passed 400 MiB.)
        assert peak - before < 250, f"{before:.0f} MiB before, {peak:.0f} MiB at the peak"
        info(port)
    finally:
        served.stop()


def test_a_full_queue_refuses_queries_and_the_queue_drains(tmp_path):
    served = Server(tmp_path, env={"AICHEMY_SERVER__MAX_CONCURRENT_QUERIES": "1",
                                   "AICHEMY_SERVER__MAX_QUEUED_QUERIES": "1"})
    try:
        port = served.http_port
        running = post(port, CROSS_JOIN)
        follow(running["nextUri"], until=lambda p: p["stats"]["state"] == "RUNNING")
        waiting = post(port, "SELECT 42")
        page = follow(waiting["nextUri"], until=lambda p: True)
        assert page["stats"]["state"] == "QUEUED", page
        refused = follow(post(port, "SELECT 43")["nextUri"])
        assert refused["error"]["errorName"] == "QUERY_QUEUE_FULL", refused
        urllib.request.urlopen(urllib.request.Request(running["nextUri"], method="DELETE"))
        done = follow(page["nextUri"])
        assert done["stats"]["state"] == "FINISHED" and done["rows"] == [[42]], done
    finally:
        served.stop()


def test_sigterm_during_a_cross_join_ends_the_process_within_the_grace_period(tmp_path):
    served = Server(tmp_path, env={"AICHEMY_SERVER__SHUTDOWN_GRACE_SECONDS": "4"})
    busy = post(served.http_port, CROSS_JOIN)
    follow(busy["nextUri"], until=lambda p: p["stats"]["state"] == "RUNNING")
    fetcher = threading.Thread(target=lambda: follow(busy["nextUri"], timeout=30))
    fetcher.start()
    started = time.monotonic()
    served.process.send_signal(signal.SIGTERM)
    served.process.wait(timeout=30)
    took = time.monotonic() - started
    fetcher.join()
    assert took < 4.5, f"the process took {took:.1f}s to end after SIGTERM"


def test_a_server_wide_time_limit_ends_long_queries(tmp_path):
    served = Server(tmp_path, env={"AICHEMY_EXECUTION__QUERY_MAX_RUN_TIME_SECONDS": "2"})
    try:
        page = follow(post(served.http_port, CROSS_JOIN)["nextUri"])
        assert page["error"]["errorName"] == "EXCEEDED_TIME_LIMIT", page
        # A session can shorten the limit, never lengthen it.
        page = follow(post(served.http_port, CROSS_JOIN,
                           {"X-Trino-Session": "query_max_run_time=1h"})["nextUri"])
        assert page["error"]["errorName"] == "EXCEEDED_TIME_LIMIT", page
        assert "2.00s" in page["error"]["message"]
    finally:
        served.stop()


@contextlib.contextmanager
def served_on_postgres(tmp_path, database):
    """A server whose metastore is a PostgreSQL database of its own; answers (pg, server)."""
    pg = Postgres()
    try:
        pg.psql("postgres", f"CREATE DATABASE {database} OWNER {USER}")
        env = {"AICHEMY_METASTORE__URL":
               f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{pg.port}/{database}"}
        served = Server(tmp_path, env=env)
        try:
            yield pg, served
        finally:
            served.stop()
    finally:
        # A failure may leave the server stopped.
        status = subprocess.run([*pg.as_user, binary("pg_ctl"), "-D", pg.data, "status"],
                                capture_output=True)
        if status.returncode != 0:
            pg.start()
        pg.destroy()


def fails_for_the_metastore(cur, sql, within):
    """Runs a statement during an outage: it must fail with HIVE_METASTORE_ERROR, within
    `within` seconds, naming the metastore and not its password."""
    started = time.monotonic()
    with pytest.raises(trino.exceptions.TrinoQueryError) as error:
        cur.execute(sql)
        cur.fetchall()
    took = time.monotonic() - started
    assert took < within, f"{sql} took {took:.1f}s to fail"
    assert error.value.error_name == "HIVE_METASTORE_ERROR", error.value
    assert "etastore" in error.value.message
    assert PASSWORD not in error.value.message


def once_back(cur, sql, timeout=15):
    """Runs a statement until it succeeds after PostgreSQL is back; answers its rows."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cur.execute(sql)
            return cur.fetchall()
        except trino.exceptions.TrinoQueryError:
            assert time.monotonic() < deadline, "the metastore did not come back"
            time.sleep(0.5)


def test_a_metastore_outage_fails_statements_fast_and_clearly(tmp_path):
    with served_on_postgres(tmp_path, "meta_outage") as (pg, served):
        cur = cursor(served.http_port)
        cur.execute("CREATE SCHEMA delta.s")
        cur.fetchall()
        pg.stop()
        for sql in ("SHOW SCHEMAS FROM delta", "CREATE SCHEMA delta.t",
                    "SELECT * FROM delta.s.missing"):
            fails_for_the_metastore(cur, sql, within=8)
        info(served.http_port)
        pg.start()
        assert ["s"] in once_back(cur, "SHOW SCHEMAS FROM delta")


def test_a_metastore_outage_fails_iceberg_statements_fast_and_clearly(tmp_path):
    """Iceberg tables go through the iceberg-catalog-sql crate's own connection pool, which
    would wait 30 s for a connection; they fail as fast as the rest, and an INSERT that
    reported a failure committed nothing."""
    with served_on_postgres(tmp_path, "meta_outage_iceberg") as (pg, served):
        cur = cursor(served.http_port)
        for sql in ("CREATE SCHEMA iceberg.s", "CREATE TABLE iceberg.s.t (x integer)",
                    "INSERT INTO iceberg.s.t VALUES (1)"):
            cur.execute(sql)
            cur.fetchall()
        pg.stop()
        for sql in ("SELECT * FROM iceberg.s.t", "INSERT INTO iceberg.s.t VALUES (2)",
                    "SHOW TABLES FROM iceberg.s"):
            fails_for_the_metastore(cur, sql, within=10)
        info(served.http_port)
        pg.start()
        once_back(cur, "INSERT INTO iceberg.s.t VALUES (3)")
        cur.execute("SELECT x FROM iceberg.s.t ORDER BY x")
        assert cur.fetchall() == [[1], [3]]
