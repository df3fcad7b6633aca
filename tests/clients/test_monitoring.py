"""Observability (issue 35): `/metrics` in Prometheus's text format, signed in on the
server's own ports (as Trino's) or unauthenticated on `server.metrics_port`, scraped by a
real Prometheus (Debian's `prometheus`) after a known workload; the shipped alert rules
checked and proven by `promtool`; the shipped Grafana dashboard's every query naming a
metric the server really exposes."""

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import trino

from broker import Broker
from lakehouse import Server, free_port

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
SOURCE = "monitoring-test"


def tool(name):
    path = shutil.which(name)
    assert path, f"{name} is missing: scripts/test.sh installs Debian's prometheus package"
    return path


def run(port, sql, user="ann", source=SOURCE):
    cursor = trino.dbapi.connect(host="127.0.0.1", port=port, user=user,
                                 source=source).cursor()
    cursor.execute(sql)
    return cursor.fetchall()


def get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def until(check, what, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def exposed(text):
    """The metric names a /metrics text has series of (histograms under their own name
    and their `_bucket`, `_sum` and `_count` series)."""
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            names.add(name)
            names.add(re.sub(r"_(bucket|sum|count)$", "", name))
    return names


def test_promtool_accepts_the_config_and_proves_the_alert_rules():
    promtool = tool("promtool")
    for command in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"],
                    ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run([promtool, *command], cwd=MONITORING, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    # Every alert the issue names has a rule, and every rule a unit test.
    rules = (MONITORING / "alerts.yml").read_text()
    tests = (MONITORING / "alerts_test.yml").read_text()
    alerts = re.findall(r"alert: (\w+)", rules)
    assert len(alerts) == 8
    for alert in alerts:
        assert f"alertname: {alert}" in tests, alert


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    """A server with its metrics on a port of their own, after a workload that touches
    queries, failures, commits, the Iceberg REST catalog, a pipeline and an ingestion job."""
    folder = tmp_path_factory.mktemp("monitored")
    metrics_port = free_port()
    broker = Broker()
    server = Server(folder / "warehouse", env={
        "AICHEMY_SERVER__METRICS_PORT": str(metrics_port),
        "AICHEMY_EXECUTION__MEMORY_LIMIT": "1GB"})
    try:
        port = server.http_port
        for _ in range(5):
            assert run(port, "SELECT 1") == [[1]]
        run(port, "CREATE SCHEMA iceberg.shop")
        run(port, "CREATE TABLE iceberg.shop.orders (id BIGINT, amount DOUBLE)")
        run(port, "INSERT INTO iceberg.shop.orders VALUES (1, 9.5), (2, 3.0)")
        assert run(port, "SELECT count(*) FROM iceberg.shop.orders") == [[2]]
        for _ in range(2):
            with pytest.raises(trino.exceptions.TrinoUserError):
                run(port, "SELECT * FROM iceberg.shop.missing")
        assert get(f"http://127.0.0.1:{port}/iceberg/v1/config",
                   {"X-Trino-User": "ann"})[0] == 200
        run(port, "CREATE PIPELINE nightly WITH (catalog = 'iceberg', schema = 'shop')")
        run(port, "ALTER PIPELINE nightly ADD STEP total AS SELECT sum(amount) FROM orders")
        [[run_id, *_]] = run(port, "RUN PIPELINE nightly")
        until(lambda: run(port, "SELECT state FROM system.runtime.pipeline_runs "
                                f"WHERE run_id = '{run_id}'") == [["succeeded"]], "the run")
        broker.create_topic("clicks")
        producer = broker.producer()
        for i in range(3):
            producer.send("clicks", json.dumps({"id": i}).encode())
        producer.flush()
        producer.close()
        run(port, "CREATE INGESTION clicks INTO iceberg.shop.clicks WITH (connector = 'kafka', "
                  f"topic = 'clicks', properties.bootstrap.server = '{broker.bootstrap}')")
        until(lambda: run(port, "SELECT rows_ingested FROM system.runtime.ingestions") == [[3]],
              "the ingested rows")
        yield server, metrics_port
    finally:
        server.stop()
        broker.stop()


def test_a_real_prometheus_scrapes_what_the_workload_did(monitored, tmp_path):
    server, metrics_port = monitored
    prom_port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: aichemy\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{metrics_port}']\n")
    prometheus = subprocess.Popen(
        [tool("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def value(promql):
        query = urllib.parse.urlencode({"query": promql})
        try:
            status, body = get(f"http://127.0.0.1:{prom_port}/api/v1/query?{query}")
        except OSError:
            return None
        result = json.loads(body)["data"]["result"] if status == 200 else []
        return float(result[0]["value"][1]) if result else None

    try:
        until(lambda: value('up{job="aichemy"}') == 1, "the first scrape")
        selected = f'source="{SOURCE}"'
        assert until(lambda: value(
            f'sum(aichemy_queries_total{{{selected}, state="FINISHED"}})'), "queries") >= 9
        assert value(f'sum(aichemy_queries_total{{{selected}, state="FAILED", '
                     f'error_type="USER_ERROR"}})') == 2
        assert value(f'sum(aichemy_queries_started_total{{{selected}, user="ann"}})') >= 11
        assert value('sum(aichemy_commits_total{format="iceberg"})') >= 2
        assert value('sum(aichemy_query_rows_returned_total{user="ann"})') >= 6
        assert value('histogram_quantile(0.5, sum by (le) (aichemy_query_seconds_bucket))') > 0
        assert value('sum(aichemy_http_requests_total{route="/v1/statement", status="200"})') >= 11
        assert value('sum(aichemy_iceberg_rest_requests_total{decision="ALLOWED"})') >= 1
        assert value('sum(aichemy_pipeline_runs_total{pipeline="nightly", state="succeeded"})') == 1
        assert value('sum(aichemy_ingestion_rows_total{ingestion="clicks"})') == 3
        assert value('aichemy_memory_pool_limit_bytes') == 2 ** 30  # 1GB, as Trino reads it
        assert value('process_resident_memory_bytes') > 0
        # Every series names the node it came from.
        assert value('count(aichemy_queries_started_total{node=~".+:[0-9]+"})') >= 1
    finally:
        prometheus.terminate()
        prometheus.wait(10)


def test_the_dashboard_queries_only_metrics_the_server_exposes(monitored):
    _, metrics_port = monitored
    status, text = get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert status == 200
    names = exposed(text)
    dashboard = json.loads((MONITORING / "grafana" / "aichemy.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert {r["title"] for r in dashboard["panels"] if r["type"] == "row"} == {
        "Overview", "Queries", "Storage", "Ingestion", "Pipelines"}
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            # `up` is Prometheus's own; every other name must be one the server exposes.
            metrics = set(re.findall(r"\b((?:aichemy|process)_[a-z_]+)", target["expr"]))
            assert metrics or "up{" in target["expr"], target["expr"]
            missing = {m for m in metrics if m not in names}
            assert not missing, (panel["title"], missing)


def test_metrics_need_a_user_who_may_read_system_information(tmp_path):
    (tmp_path / "rules.json").write_text(json.dumps({
        "catalogs": [{"allow": "all"}],
        "system_information": [{"user": "ops", "allow": ["read"]}],
    }))
    server = Server(tmp_path / "warehouse", "--access-control-config",
                    str(tmp_path / "rules.json"))
    try:
        url = f"http://127.0.0.1:{server.http_port}/metrics"
        assert get(url)[0] == 401
        status, body = get(url, {"X-Trino-User": "ann"})
        assert (status, body) == (403, "Access Denied: Cannot read system information")
        run(server.http_port, "SELECT 'a-value-no-metric-may-carry' AS secret", user="ann")
        status, text = get(url, {"X-Trino-User": "ops"})
        assert status == 200
        assert "aichemy_queries_total" in text
        # Labels are users, sources, states and routes: never statements or values.
        assert "a-value-no-metric-may-carry" not in text and "SELECT" not in text
    finally:
        server.stop()


def test_the_query_history_keeps_each_querys_cost_across_restarts(tmp_path):
    warehouse = tmp_path / "warehouse"
    server = Server(warehouse, env={"AICHEMY_SERVER__ADMIN_USERS": "admin"})
    first_port = server.http_port
    try:
        port = server.http_port
        cursor = trino.dbapi.connect(host="127.0.0.1", port=port, user="ann", source="bi",
                                     client_tags=["finance", "daily"]).cursor()
        for sql in ["CREATE SCHEMA iceberg.h",
                    "CREATE TABLE iceberg.h.t AS SELECT x AS id, x % 7 AS k "
                    "FROM UNNEST(sequence(1, 5000)) AS s(x)"]:
            cursor.execute(sql)
            cursor.fetchall()
        cursor.execute("SELECT k, count(*) FROM iceberg.h.t GROUP BY k ORDER BY k")
        assert len(cursor.fetchall()) == 7
        grouped = cursor.query_id
        # EXPLAIN ANALYZE runs it and answers Trino's one `Query Plan` text: each operator
        # with its layout, CPU time and share, output rows and metrics.
        cursor.execute("EXPLAIN ANALYZE SELECT k, count(*) FROM iceberg.h.t GROUP BY k")
        [[plan]] = cursor.fetchall()
        assert [d[0] for d in cursor.description] == ["Query Plan"]
        assert plan.startswith("Planning: ") and "Execution: " in plan.splitlines()[0]
        assert "Input: 5000 rows" in plan and "Output: 7 rows" in plan
        assert "AggregateExec" in plan and "Layout: [k:bigint" in plan
        assert re.search(r"CPU: [0-9.]+(ns|us|ms|s) \([0-9.]+%\)", plan), plan
        assert "└─ " in plan and "Metrics: output_rows=" in plan
        # A join of two formats: what each table gave is counted apart.
        for sql in ["CREATE SCHEMA delta.h",
                    "CREATE TABLE delta.h.names AS SELECT x AS k, 'name ' || CAST(x AS VARCHAR) "
                    "AS name FROM UNNEST(sequence(0, 6)) AS s(x)",
                    "SELECT n.name, count(*) FROM iceberg.h.t JOIN delta.h.names n "
                    "ON t.k = n.k GROUP BY n.name"]:
            cursor.execute(sql)
            cursor.fetchall()
        with pytest.raises(trino.exceptions.TrinoUserError):
            cursor.execute("SELECT * FROM iceberg.h.missing")
        run(port, "SELECT 1", user="bob")
    finally:
        server.stop()
    # Started again, the server shows the queries of before from the metastore.
    server = Server(warehouse, env={"AICHEMY_SERVER__ADMIN_USERS": "admin"})
    try:
        port = server.http_port
        columns = ("state, source, client_tags, node, error_code, error_type, "
                   "queued_time_ms, planning_time_ms, execution_time_ms, cpu_time_ms, "
                   "peak_memory_bytes, rows, rows_read, bytes_read, rows_written, tables_read, "
                   "columns_read, table_reads, query")
        history = {r[-1]: r for r in run(
            port, f"SELECT {columns} FROM system.runtime.queries WHERE user = 'ann' "
                  "AND state <> 'RUNNING'", user="admin")}
        [state, source, tags, node, code, _, queued, planning, execution, cpu, peak, rows,
         read, read_bytes, written, tables, read_columns, table_reads, _] = history[
            "SELECT k, count(*) FROM iceberg.h.t GROUP BY k ORDER BY k"]
        assert (state, source, tags, rows, code) == ("FINISHED", "bi", "finance,daily", 7, None)
        assert node.endswith(f":{first_port}"), "the node that ran it"
        assert queued >= 0 and planning >= 0 and execution >= 0 and cpu >= 0
        assert peak > 0, "the aggregate held memory"
        assert read == 5000 and read_bytes > 0 and written is None
        assert tables == "iceberg.h.t" and read_columns == "iceberg.h.t.k"
        assert [(t["table"], t["rows"], t["bytes"]) for t in json.loads(table_reads)] == [
            ("iceberg.h.t", 5000, read_bytes)]
        joined = {t["table"]: t for t in json.loads(history[
            "SELECT n.name, count(*) FROM iceberg.h.t JOIN delta.h.names n "
            "ON t.k = n.k GROUP BY n.name"][-2])}
        assert sorted(joined) == ["delta.h.names", "iceberg.h.t"], joined
        assert joined["iceberg.h.t"]["rows"] == 5000 and joined["delta.h.names"]["rows"] == 7
        assert all(t["bytes"] > 0 for t in joined.values()), joined
        ctas = [r for q, r in history.items() if q.startswith("CREATE TABLE iceberg.h.t")][0]
        assert ctas[14] == 5000
        failed = history["SELECT * FROM iceberg.h.missing"]
        assert failed[:1] == ["FAILED"] and failed[4:6] == ["TABLE_NOT_FOUND", "USER_ERROR"]
        # Everyone else sees only her own.
        assert {u for (u,) in run(port, "SELECT user FROM system.runtime.queries",
                                  user="bob")} == {"bob"}
        found = run(port, f"SELECT count(*) FROM system.runtime.queries "
                          f"WHERE query_id = '{grouped}'", user="admin")
        assert found == [[1]]
        # The node lists itself, up; the stopped one is gone.
        nodes = until(lambda: run(port, "SELECT node_id, http_uri, state FROM "
                                        "system.runtime.nodes WHERE state = 'active'"),
                      "the node's heartbeat")
        assert [n[1] for n in nodes] == [f"http://127.0.0.1:{port}"]
    finally:
        server.stop()
