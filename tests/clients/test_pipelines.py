"""Scheduled pipelines (issue 33) through the python trino client and the command line: a DAG
of SQL steps with retries and timeouts, schedules, backfills, one run at a time, a folder
with a manifest, and two nodes on one PostgreSQL metastore of which one runs a pipeline and
the other takes over when it dies."""

import datetime
import json
import signal
import subprocess
import time

import pytest
from trino.dbapi import connect
from trino.exceptions import TrinoUserError

from lakehouse import BIN, Server
from postgres import PASSWORD, USER, Postgres


def run(cur, statement):
    cur.execute(statement)
    return cur.fetchall()


def wait_for(condition, what, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def runs(cur, pipeline):
    """The runs of a pipeline, oldest first, as dicts."""
    cur.execute(
        "SELECT run_id, trigger, logical_date, state, node, started, ended, error "
        f"FROM system.runtime.pipeline_runs WHERE pipeline_name = '{pipeline}' ORDER BY queued")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def steps(cur, run_id):
    return {row[0]: tuple(row[1:]) for row in run(
        cur, "SELECT step_name, state, attempt, rows_written, error "
             f"FROM system.runtime.pipeline_steps WHERE run_id = '{run_id}'")}


def finished(cur, run_id):
    [[state]] = run(cur, f"SELECT state FROM system.runtime.pipeline_runs WHERE run_id = '{run_id}'")
    return state not in ("queued", "running") and state


def test_a_dag_of_steps_runs_in_order_with_retries_timeouts_and_one_run_at_a_time(warehouse):
    server = Server(warehouse, env={"AICHEMY_SERVER__ADMIN_USERS": "admin"})
    try:
        cur = connect(host="127.0.0.1", port=server.http_port, user="engineer").cursor()
        run(cur, "CREATE SCHEMA iceberg.silver")
        run(cur, "CREATE TABLE iceberg.silver.orders (day DATE, amount DOUBLE)")
        run(cur, "INSERT INTO iceberg.silver.orders VALUES (DATE '2026-11-01', 10), "
                 "(DATE '2026-11-02', 5), (DATE '2026-11-02', 7), (DATE '2026-11-03', 1)")
        run(cur, "CREATE TABLE iceberg.silver.daily (day DATE, revenue DOUBLE, run_id VARCHAR)")
        run(cur, "CREATE PIPELINE daily WITH (retries = 4, retry_delay = '500ms', "
                 "catalog = 'iceberg', schema = 'silver')")
        # Idempotent by date: the step that writes a day removes it first.
        run(cur, "ALTER PIPELINE daily ADD STEP clear AS "
                 "DELETE FROM daily WHERE day = DATE '${ds}'")
        run(cur, "ALTER PIPELINE daily ADD STEP fill AFTER clear AS INSERT INTO daily "
                 "SELECT day, sum(amount), '${run_id}' FROM orders WHERE day = DATE '${ds}' "
                 "GROUP BY day")
        # Fails until the table it reads exists: retried with growing waits.
        run(cur, "ALTER PIPELINE daily ADD STEP late AFTER fill AS "
                 "INSERT INTO daily SELECT day, revenue, 'late' FROM late_rows")
        [[text]] = run(cur, "SHOW CREATE PIPELINE daily")
        assert "ALTER PIPELINE daily ADD STEP fill AFTER clear AS\nINSERT INTO daily" in text
        assert "retries = 4" in text and "catalog = 'iceberg'" in text

        # The server holds the pipeline: RUN queues and answers at once.
        [[run_id, ds, state, error]] = run(cur, "RUN PIPELINE daily FOR '2026-11-02'")
        assert (ds, state, error) == ("2026-11-02", "queued", None)
        wait_for(lambda: steps(cur, run_id).get("late", ("",))[0] == "retrying",
                 "the failing step to retry")
        run(cur, "CREATE TABLE iceberg.silver.late_rows (day DATE, revenue DOUBLE)")
        assert wait_for(lambda: finished(cur, run_id), "the run") == "succeeded"
        done = steps(cur, run_id)
        assert done["clear"][:1] == ("succeeded",)
        assert done["fill"][:3] == ("succeeded", 1, 1)
        assert done["late"][0] == "succeeded" and done["late"][1] >= 2, done
        assert run(cur, "SELECT day, revenue, run_id FROM iceberg.silver.daily") == [
            [datetime.date(2026, 11, 2), 12.0, run_id]]
        # Run again for the same date: the same rows, not twice as many.
        [[again, *_]] = run(cur, "RUN PIPELINE daily FOR '2026-11-02'")
        assert wait_for(lambda: finished(cur, again), "the second run") == "succeeded"
        assert run(cur, "SELECT day, revenue FROM iceberg.silver.daily") == [
            [datetime.date(2026, 11, 2), 12.0]]

        # A step over its time limit fails with Trino's error, after its retries; the steps
        # after it do not run, and the run records why.
        run(cur, "ALTER PIPELINE daily ADD STEP slow AFTER late WITH (retries = 0, timeout = '1s') AS "
                 "SELECT count(*) FROM UNNEST(sequence(1, 10000)) a(x) "
                 "CROSS JOIN UNNEST(sequence(1, 10000)) b(y) "
                 "CROSS JOIN UNNEST(sequence(1, 100)) c(z) WHERE (x * y + z) % 7 = 3")
        run(cur, "ALTER PIPELINE daily ADD STEP after_slow AFTER slow AS SELECT 1")
        [[slow_run, *_]] = run(cur, "RUN PIPELINE daily FOR '2026-11-03'")
        assert wait_for(lambda: finished(cur, slow_run), "the slow run") == "failed"
        done = steps(cur, slow_run)
        assert done["slow"][0] == "failed" and "EXCEEDED_TIME_LIMIT" in done["slow"][3], done
        assert done["after_slow"][0] == "upstream_failed"
        [last] = [r for r in runs(cur, "daily") if r["run_id"] == slow_run]
        assert last["error"].startswith("Step 'slow' failed: EXCEEDED_TIME_LIMIT")
        run(cur, "ALTER PIPELINE daily DROP STEP after_slow")
        run(cur, "ALTER PIPELINE daily DROP STEP slow")

        # Runs asked for together run one after another, never side by side.
        queued = [run(cur, f"RUN PIPELINE daily FOR '2026-11-0{d}'")[0][0] for d in (1, 2, 3)]
        for run_id in queued:
            assert wait_for(lambda: finished(cur, run_id), "the queued runs") == "succeeded"
        spans = sorted((r["started"], r["ended"]) for r in runs(cur, "daily")
                       if r["run_id"] in queued)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans

        # A backfill: one run per date, in order, two at a time.
        run(cur, "DELETE FROM iceberg.silver.daily")
        backfill = run(cur, "BACKFILL PIPELINE daily FROM '2026-11-01' TO DATE '2026-11-03' PARALLEL 2")
        assert [row[1] for row in backfill] == ["2026-11-01", "2026-11-02", "2026-11-03"]
        for row in backfill:
            assert wait_for(lambda: finished(cur, row[0]), "the backfill") == "succeeded"
        assert run(cur, "SELECT day, revenue FROM iceberg.silver.daily "
                        "WHERE run_id <> 'late' ORDER BY day") == [
            [datetime.date(2026, 11, 1), 10.0], [datetime.date(2026, 11, 2), 12.0],
            [datetime.date(2026, 11, 3), 1.0]]
        assert {r["trigger"] for r in runs(cur, "daily")} == {"manual", "backfill"}

        [row] = run(cur, "SHOW PIPELINES")
        assert row[0] == "daily" and row[1] == "active" and row[3] == 3
        assert row[4].endswith(f":{server.http_port}")  # the node that holds it
        assert row[8] == "engineer"

        # Bad input: Trino-style errors, nothing changed.
        for statement, message in [
            ("CREATE PIPELINE daily", "Pipeline 'daily' already exists"),
            ("CREATE PIPELINE x SCHEDULE '61 * * * *'", "Invalid cron schedule"),
            ("CREATE PIPELINE x WITH (retry = 1)", "Unknown pipeline property 'retry'"),
            ("CREATE PIPELINE x WITH (timeout = 'soon')", "must be a duration"),
            ("ALTER PIPELINE daily ADD STEP fill AS SELECT 1", "already exists"),
            ("ALTER PIPELINE daily ADD STEP x AFTER nope AS SELECT 1", "does not exist"),
            ("ALTER PIPELINE daily ADD STEP x AS SELECT * FROM t WHERE d = '${dt}'",
             "Unknown pipeline variable '${dt}'"),
            ("ALTER PIPELINE daily ADD STEP x AS RUN PIPELINE daily", "cannot run pipeline"),
            ("ALTER PIPELINE daily DROP STEP clear", "step 'fill' runs after it"),
            ("RUN PIPELINE nope", "Pipeline 'nope' does not exist"),
            ("RUN PIPELINE daily FOR '2026-02-30'", "Invalid run date"),
            ("BACKFILL PIPELINE daily FROM '2026-11-03' TO '2026-11-01'", "first date is after"),
        ]:
            with pytest.raises(TrinoUserError) as e:
                run(cur, statement)
            assert message in e.value.message, (statement, e.value.message)
        # Another user may not change or run someone else's pipeline.
        other = connect(host="127.0.0.1", port=server.http_port, user="intruder").cursor()
        with pytest.raises(TrinoUserError) as e:
            run(other, "DROP PIPELINE daily")
        assert e.value.error_name == "PERMISSION_DENIED"
        assert "Access Denied: Cannot drop pipeline daily" in e.value.message
        run(cur, "DROP PIPELINE daily")
        assert run(cur, "SHOW PIPELINES") == []
        assert runs(cur, "daily") == []
    finally:
        server.stop()


def test_a_schedule_queues_runs_until_paused(warehouse):
    server = Server(warehouse)
    try:
        cur = connect(host="127.0.0.1", port=server.http_port, user="engineer").cursor()
        run(cur, "CREATE SCHEMA iceberg.s")
        run(cur, "CREATE TABLE iceberg.s.ticks (run_id VARCHAR, ds VARCHAR)")
        run(cur, "CREATE PIPELINE ticker SCHEDULE EVERY INTERVAL '2' SECOND")
        run(cur, "ALTER PIPELINE ticker ADD STEP tick AS "
                 "INSERT INTO iceberg.s.ticks VALUES ('${run_id}', '${ds}')")
        wait_for(lambda: len([r for r in runs(cur, "ticker") if r["state"] == "succeeded"]) >= 2,
                 "two scheduled runs", timeout=30)
        [[next_run]] = run(cur, "SELECT next_run FROM system.runtime.pipelines")
        assert next_run is not None
        run(cur, "ALTER PIPELINE ticker PAUSE")
        time.sleep(1.5)  # a run the schedule queued just before the pause may still finish
        before = wait_for(lambda: (lambda rs: all(r["state"] != "running" for r in rs) and rs)(
            runs(cur, "ticker")), "the last run")
        time.sleep(4)
        after = runs(cur, "ticker")
        assert len(after) == len(before), "a paused pipeline was scheduled"
        assert {r["trigger"] for r in after} == {"schedule"}
        today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
        ticks = run(cur, "SELECT run_id, ds FROM iceberg.s.ticks")
        assert sorted(t[0] for t in ticks) == sorted(
            r["run_id"] for r in after if r["state"] == "succeeded")
        assert {t[1] for t in ticks} <= {today, (datetime.date.fromisoformat(today)
                                                 - datetime.timedelta(days=1)).isoformat()}
        [[state]] = run(cur, "SELECT state FROM system.runtime.pipelines")
        assert state == "paused"
        run(cur, "ALTER PIPELINE ticker RESUME")
        wait_for(lambda: len(runs(cur, "ticker")) > len(after), "a run after RESUME", timeout=30)
    finally:
        server.stop()


def cli(warehouse, *args):
    return subprocess.run([BIN, "--warehouse", str(warehouse), *args],
                          capture_output=True, text=True, timeout=300)


def test_the_command_line_deploys_a_folder_and_runs_backfills_and_shows_history(tmp_path):
    warehouse = tmp_path / "wh"
    done = cli(warehouse, "sql", "-e",
               "CREATE SCHEMA iceberg.gold; "
               "CREATE TABLE iceberg.gold.events (day DATE, n INTEGER); "
               "INSERT INTO iceberg.gold.events VALUES (DATE '2026-11-01', 1), "
               "(DATE '2026-11-01', 2), (DATE '2026-11-02', 3); "
               "CREATE TABLE iceberg.gold.totals (day DATE, total BIGINT)")
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "medallion"
    folder.mkdir()
    (folder / "pipeline.toml").write_text(
        'schedule = "0 2 * * *"\nretries = 1\nretry_delay = "100ms"\n'
        'catalog = "iceberg"\nschema = "gold"\n'
        '[[steps]]\nname = "clear"\n'
        '[[steps]]\nname = "totals"\nafter = ["clear"]\ntimeout = "5m"\n')
    (folder / "clear.sql").write_text("DELETE FROM totals WHERE day = DATE '${ds}';\n")
    (folder / "totals.sql").write_text(
        "INSERT INTO totals\nSELECT day, sum(n) FROM events WHERE day = DATE '${ds}' GROUP BY day\n")
    done = cli(warehouse, "pipeline", "deploy", str(folder))
    assert done.returncode == 0 and done.stdout.strip() == "created", done.stderr
    done = cli(warehouse, "pipeline", "deploy", str(folder))
    assert done.stdout.strip() == "unchanged", done.stderr
    done = cli(warehouse, "pipeline", "list", "--format", "csv")
    assert done.returncode == 0
    assert done.stdout.splitlines()[1].startswith('"medallion","active","0 2 * * *","2"')

    done = cli(warehouse, "pipeline", "run", "medallion", "--date", "2026-11-01")
    assert done.returncode == 0, done.stderr
    assert "for 2026-11-01: succeeded" in done.stderr
    done = cli(warehouse, "pipeline", "backfill", "medallion", "--from", "2026-11-01",
               "--to", "2026-11-02", "--parallel", "2")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(": succeeded") == 2
    done = cli(warehouse, "sql", "-e", "SELECT * FROM iceberg.gold.totals ORDER BY day",
               "--format", "csv")
    assert done.stdout.splitlines()[1:] == ['"2026-11-01","3"', '"2026-11-02","3"']
    done = cli(warehouse, "pipeline", "history", "medallion", "--format", "csv")
    lines = done.stdout.splitlines()
    assert len(lines) == 4 and all('"succeeded"' in line for line in lines[1:]), done.stdout

    # A failing step: the command says so and exits non-zero.
    (folder / "totals.sql").write_text("INSERT INTO totals SELECT * FROM missing")
    assert cli(warehouse, "pipeline", "deploy", str(folder)).stdout.strip() == "replaced"
    done = cli(warehouse, "pipeline", "run", "medallion")
    assert done.returncode == 1
    assert "Step 'totals' failed: TABLE_NOT_FOUND" in done.stderr
    # A cycle is refused at declaration, and the pipeline stays as it was.
    (folder / "pipeline.toml").write_text(
        '[[steps]]\nname = "clear"\nafter = ["totals"]\n'
        '[[steps]]\nname = "totals"\nafter = ["clear"]\n')
    done = cli(warehouse, "pipeline", "deploy", str(folder))
    assert done.returncode == 1
    assert "cycle in its step dependencies: clear, totals" in done.stderr
    (folder / "pipeline.toml").write_text('schedule = "0 2 * * *"\nnonsense = 1\n')
    done = cli(warehouse, "pipeline", "deploy", str(folder))
    assert done.returncode == 1 and "unknown field `nonsense`" in done.stderr
    done = cli(warehouse, "sql", "-e", "SHOW CREATE PIPELINE medallion")
    assert "SCHEDULE '0 2 * * *'" in done.stdout and "FROM missing" in done.stdout


def test_one_of_two_nodes_runs_a_schedule_and_the_other_takes_over_when_it_dies(tmp_path):
    """Two servers on one PostgreSQL metastore: each scheduled time is run once, by the
    node holding the pipeline; the holder killed mid-run, the other node fails that run
    (its writer is gone) and goes on with the schedule."""
    postgres = Postgres()
    try:
        postgres.psql("postgres", f"CREATE DATABASE meta_pipe OWNER {USER}")
        env = {"AICHEMY_METASTORE__URL":
               f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{postgres.port}/meta_pipe"}
        nodes = [Server(tmp_path / "wh", env=env), Server(tmp_path / "wh", env=env)]
        try:
            cur = connect(host="127.0.0.1", port=nodes[0].http_port, user="engineer").cursor()
            run(cur, "CREATE SCHEMA iceberg.s")
            run(cur, "CREATE TABLE iceberg.s.ticks (run_id VARCHAR)")
            run(cur, "CREATE PIPELINE ticker SCHEDULE EVERY INTERVAL '2' SECOND")
            run(cur, "ALTER PIPELINE ticker ADD STEP tick AS "
                     "INSERT INTO iceberg.s.ticks VALUES ('${run_id}')")
            # Long enough to be killed in the middle of.
            run(cur, "ALTER PIPELINE ticker ADD STEP wait AFTER tick AS "
                     "SELECT count(*) FROM UNNEST(sequence(1, 5000)) a(x) "
                     "CROSS JOIN UNNEST(sequence(1, 5000)) b(y) WHERE (x * y) % 7 = 3")
            wait_for(lambda: any(r["state"] == "succeeded" for r in runs(cur, "ticker")),
                     "a first run", timeout=60)
            [[holder]] = run(cur, "SELECT node FROM system.runtime.pipelines")
            ports = [f":{n.http_port}" for n in nodes]
            assert sum(holder.endswith(p) for p in ports) == 1, (holder, ports)
            dead = 0 if holder.endswith(ports[0]) else 1
            survivor = nodes[1 - dead]
            cur = connect(host="127.0.0.1", port=survivor.http_port, user="engineer").cursor()
            wait_for(lambda: any(r["state"] == "running" for r in runs(cur, "ticker")),
                     "a run in progress")
            nodes[dead].process.send_signal(signal.SIGKILL)
            nodes[dead].process.wait()
            killed_at = len(runs(cur, "ticker"))
            wait_for(lambda: any(r["state"] == "succeeded" and r["node"].endswith(
                f":{survivor.http_port}") for r in runs(cur, "ticker")[killed_at:]),
                "a run on the other node", timeout=60)
            all_runs = runs(cur, "ticker")
            abandoned = [r for r in all_runs if r["state"] == "failed"]
            assert len(abandoned) == 1, all_runs
            assert "stopped before it ended" in abandoned[0]["error"]
            assert not abandoned[0]["node"].endswith(f":{survivor.http_port}")
            # Each scheduled time ran once: run ids are distinct, one tick row per run that
            # got past its first step.
            ticks = [r[0] for r in run(cur, "SELECT run_id FROM iceberg.s.ticks")]
            assert len(ticks) == len(set(ticks))
            assert set(ticks) <= {r["run_id"] for r in all_runs}
            [[node]] = run(cur, "SELECT node FROM system.runtime.pipelines")
            assert node.endswith(f":{survivor.http_port}")
        finally:
            for node in nodes:
                if node.process.poll() is None:
                    node.stop()
    finally:
        postgres.destroy()


def test_a_run_publishes_all_its_tables_at_once_or_nothing(warehouse):
    """Write-audit-publish: a run's steps see what the run wrote before them, other sessions
    see nothing of it until every step succeeded; then every table changes at once. A run
    that fails leaves them as they were; one whose tables another writer changed meanwhile
    runs again on top of that writer's change.
    The server logs JSON lines, each step's with its run id, query id and node."""
    server = Server(warehouse, env={"AICHEMY_LOG_FORMAT": "json"})
    try:
        cur = connect(host="127.0.0.1", port=server.http_port, user="engineer").cursor()
        run(cur, "CREATE SCHEMA iceberg.s")
        run(cur, "CREATE TABLE iceberg.s.silver (id INTEGER, v VARCHAR)")
        run(cur, "INSERT INTO iceberg.s.silver VALUES (1, 'old'), (2, 'old')")
        run(cur, "CREATE TABLE iceberg.s.gold (rows_seen BIGINT, news BIGINT)")
        run(cur, "CREATE TABLE iceberg.s.fix (ok BOOLEAN)")
        run(cur, "CREATE PIPELINE wap WITH (catalog = 'iceberg', schema = 's')")
        # A row-level change and an append to silver, then gold computed from silver as
        # the run left it; then a slow step, then a check that fails until fixed.
        run(cur, "ALTER PIPELINE wap ADD STEP change AS UPDATE silver SET v = 'new' WHERE id = 2")
        run(cur, "ALTER PIPELINE wap ADD STEP add AFTER change AS "
                 "INSERT INTO silver VALUES (3, 'new')")
        run(cur, "ALTER PIPELINE wap ADD STEP summary AFTER add AS INSERT INTO gold "
                 "SELECT count(*), count_if(v = 'new') FROM silver")
        run(cur, "ALTER PIPELINE wap ADD STEP slow AFTER summary AS "
                 "SELECT count(*) FROM UNNEST(sequence(1, 6000)) a(x) "
                 "CROSS JOIN UNNEST(sequence(1, 6000)) b(y) WHERE (x * y) % 7 = 3")
        run(cur, "ALTER PIPELINE wap ADD STEP audit AFTER slow AS "
                 "SELECT CAST(CASE WHEN ok THEN '1' ELSE 'not fixed' END AS INTEGER) FROM fix")
        before = run(cur, "SELECT id, v FROM iceberg.s.silver ORDER BY id")
        [[snapshots]] = run(cur, 'SELECT count(*) FROM iceberg.s."silver$snapshots"')

        # The audit fails: nothing is published.
        run(cur, "INSERT INTO iceberg.s.fix VALUES (false)")
        [[failing, *_]] = run(cur, "RUN PIPELINE wap")
        # While the run is in its slow step, its writes are done but not visible.
        wait_for(lambda: steps(cur, failing).get("slow", ("",))[0] == "running", "the slow step")
        assert steps(cur, failing)["add"][:1] == ("succeeded",)
        assert run(cur, "SELECT id, v FROM iceberg.s.silver ORDER BY id") == before
        assert run(cur, "SELECT * FROM iceberg.s.gold") == []
        assert wait_for(lambda: finished(cur, failing), "the failing run") == "failed"
        [last] = [r for r in runs(cur, "wap") if r["run_id"] == failing]
        assert "Step 'audit' failed" in last["error"] and "nothing was published" in last["error"]
        assert run(cur, "SELECT id, v FROM iceberg.s.silver ORDER BY id") == before
        assert run(cur, "SELECT * FROM iceberg.s.gold") == []
        assert run(cur, 'SELECT count(*) FROM iceberg.s."silver$snapshots"') == [[snapshots]]

        # Another writer commits to silver during the run: the publish loses the race, and
        # the run runs again on top of that writer's row.
        run(cur, "DELETE FROM iceberg.s.fix")
        run(cur, "INSERT INTO iceberg.s.fix VALUES (true)")
        [[good, *_]] = run(cur, "RUN PIPELINE wap")
        wait_for(lambda: steps(cur, good).get("slow", ("",))[0] == "running", "the slow step")
        run(cur, "INSERT INTO iceberg.s.silver VALUES (9, 'other writer')")
        assert run(cur, "SELECT id, v FROM iceberg.s.silver ORDER BY id") == before + [
            [9, "other writer"]]
        assert wait_for(lambda: finished(cur, good), "the raced run") == "succeeded"
        assert run(cur, "SELECT id, v FROM iceberg.s.silver ORDER BY id") == [
            [1, "old"], [2, "new"], [3, "new"], [9, "other writer"]]
        assert run(cur, "SELECT * FROM iceberg.s.gold") == [[4, 2]]
    finally:
        logs = server.stop()
    lines = [json.loads(line) for line in logs.splitlines() if line.strip()]
    done = [line for line in lines if line["fields"]["message"] == "pipeline step succeeded"
            and any(span.get("run_id") == good for span in line.get("spans", []))]
    assert {line["fields"]["step"] for line in done} == {"change", "add", "summary", "slow", "audit"}
    assert all(line["fields"]["query_id"].startswith(good + ".") for line in done)
    # Every line names the node it came from.
    node = f":{server.http_port}"
    assert all(any(span.get("node", "").endswith(node) for span in line.get("spans", []))
               for line in done)
    assert any(line["fields"]["message"] == "pipeline run not published; running it again"
               and "iceberg.s.silver" in line["fields"]["error"]
               and any(span.get("run_id") == good for span in line.get("spans", []))
               for line in lines)
    assert any(line["fields"]["message"] == "pipeline step failed" and
               line["fields"]["query_id"] == f"{failing}.audit.1" for line in lines)


def checks(cur, run_id):
    return {row[0]: tuple(row[1:]) for row in run(
        cur, "SELECT check_name, state, failing_rows FROM system.runtime.pipeline_checks "
             f"WHERE run_id = '{run_id}'")}


def test_quality_gates_block_the_publish_warn_or_quarantine_rows(warehouse):
    server = Server(warehouse)
    try:
        cur = connect(host="127.0.0.1", port=server.http_port, user="engineer").cursor()
        run(cur, "CREATE SCHEMA iceberg.q")
        run(cur, "CREATE TABLE iceberg.q.customers (id INTEGER, segment VARCHAR)")
        run(cur, "INSERT INTO iceberg.q.customers VALUES (1, 'retail'), (2, 'b2b')")
        columns = "(id INTEGER, customer INTEGER, amount DOUBLE, status VARCHAR)"
        run(cur, f"CREATE TABLE iceberg.q.bronze {columns}")
        run(cur, f"CREATE TABLE iceberg.q.silver {columns}")
        run(cur, "INSERT INTO iceberg.q.bronze VALUES (1, 1, 10, 'open'), (2, 2, -5, 'open'), "
                 "(NULL, 1, 3, 'done'), (3, 7, 4, 'open'), (4, 1, 5, 'weird')")
        run(cur, "CREATE PIPELINE q WITH (catalog = 'iceberg', schema = 'q')")
        run(cur, "ALTER PIPELINE q ADD STEP clear AS DELETE FROM silver")
        run(cur, "ALTER PIPELINE q ADD STEP load AFTER clear AS INSERT INTO silver SELECT * FROM bronze")
        for check in [
            "ids ON silver AFTER load NOT NULL (id) QUARANTINE",
            "amounts ON silver AFTER load RANGE amount BETWEEN 0 AND 1000 QUARANTINE",
            "customers ON silver AFTER load FOREIGN KEY (customer) REFERENCES customers (id) "
            "QUARANTINE",
            "statuses ON silver ACCEPTED VALUES status IN ('open', 'done') WARN",
            "unique_ids ON silver UNIQUE (id)",
            "enough ON silver ROW COUNT BETWEEN 1 AND 100",
            "small ON silver EXPECT (amount < 10000)",
            "has_customers ON customers ASSERT ((SELECT count(*) FROM customers) > 0)",
        ]:
            run(cur, f"ALTER PIPELINE q ADD CHECK {check}")
        [[text]] = run(cur, "SHOW CREATE PIPELINE q")
        assert "ALTER PIPELINE q ADD CHECK customers ON silver AFTER load FOREIGN KEY (customer) " \
               "REFERENCES customers (id) QUARANTINE" in text

        # Bad rows go to the quarantine table with the check and the run; the good ones
        # are published; a warning is recorded only.
        [[first, *_]] = run(cur, "RUN PIPELINE q")
        assert wait_for(lambda: finished(cur, first), "the first run") == "succeeded", \
            runs(cur, "q")
        assert run(cur, "SELECT id FROM iceberg.q.silver ORDER BY id") == [[1], [4]]
        assert run(cur, "SELECT id, _check, _run_id FROM iceberg.q.silver_quarantine "
                        "ORDER BY _check") == [
            [2, "amounts", first], [3, "customers", first], [None, "ids", first]]
        assert checks(cur, first) == {
            "ids": ("quarantined", 1), "amounts": ("quarantined", 1),
            "customers": ("quarantined", 1), "statuses": ("warned", 1),
            "unique_ids": ("passed", 0), "enough": ("passed", 0), "small": ("passed", 0),
            "has_customers": ("passed", 0)}

        # A failing check blocks the publish: silver and the quarantine stay as they were.
        run(cur, "INSERT INTO iceberg.q.bronze VALUES (1, 2, 20, 'done')")
        [[second, *_]] = run(cur, "RUN PIPELINE q")
        assert wait_for(lambda: finished(cur, second), "the second run") == "failed"
        [last] = [r for r in runs(cur, "q") if r["run_id"] == second]
        assert last["error"].startswith("Check 'unique_ids' failed: ")
        assert "nothing was published" in last["error"]
        assert checks(cur, second)["unique_ids"][0] == "failed"
        assert run(cur, "SELECT id FROM iceberg.q.silver ORDER BY id") == [[1], [4]]
        assert run(cur, "SELECT count(*) FROM iceberg.q.silver_quarantine") == [[3]]

        # Reprocessing: fixed at the source, taken out of the quarantine, run again.
        run(cur, "DELETE FROM iceberg.q.bronze WHERE id = 1 AND customer = 2")
        run(cur, "UPDATE iceberg.q.bronze SET id = 5 WHERE id IS NULL")
        run(cur, "DELETE FROM iceberg.q.silver_quarantine WHERE _check = 'ids'")
        [[third, *_]] = run(cur, "RUN PIPELINE q")
        assert wait_for(lambda: finished(cur, third), "the third run") == "succeeded"
        assert run(cur, "SELECT id FROM iceberg.q.silver ORDER BY id") == [[1], [4], [5]]
        assert run(cur, "SELECT _check, count(*) FROM iceberg.q.silver_quarantine "
                        "GROUP BY _check ORDER BY 1") == [["amounts", 2], ["customers", 2]]

        for statement, message in [
            ("ALTER PIPELINE q ADD CHECK ids ON silver NOT NULL (id)", "already exists"),
            ("ALTER PIPELINE q ADD CHECK u ON silver UNIQUE (id) QUARANTINE",
             "only NOT NULL, ACCEPTED VALUES, RANGE, FOREIGN KEY and EXPECT"),
            ("ALTER PIPELINE q ADD CHECK x ON silver AFTER nope NOT NULL (id)", "does not exist"),
            ("ALTER PIPELINE q ADD CHECK x ON silver LOOKS GOOD", "Expecting: NOT NULL"),
            ("ALTER PIPELINE q DROP STEP load", "check 'ids' runs after it"),
            ("ALTER PIPELINE q DROP CHECK nope", "Check 'nope' of pipeline 'q' does not exist"),
        ]:
            with pytest.raises(TrinoUserError) as e:
                run(cur, statement)
            assert message in e.value.message, (statement, e.value.message)
        run(cur, "ALTER PIPELINE q DROP CHECK statuses")
    finally:
        server.stop()


def test_a_run_refreshes_a_materialized_view_incrementally_with_its_sources(tmp_path):
    """The simplest pipeline: load a source, refresh a view of it. Both are published
    together, and the refresh reads only what the run added (the source's staged snapshot)."""
    warehouse = tmp_path / "wh"
    done = cli(warehouse, "sql", "--format", "csv", "-e",
               "CREATE SCHEMA iceberg.s; "
               "CREATE TABLE iceberg.s.src (d DATE, v INTEGER); "
               "INSERT INTO iceberg.s.src VALUES (DATE '2026-12-01', 1); "
               "CREATE MATERIALIZED VIEW iceberg.s.mv AS "
               "SELECT d, sum(v) AS total, count(*) AS n FROM iceberg.s.src GROUP BY d; "
               "REFRESH MATERIALIZED VIEW iceberg.s.mv; "
               "CREATE PIPELINE p WITH (catalog = 'iceberg', schema = 's'); "
               "ALTER PIPELINE p ADD STEP load AS INSERT INTO src VALUES (DATE '${ds}', 5); "
               "ALTER PIPELINE p ADD STEP gold AFTER load AS REFRESH MATERIALIZED VIEW mv; "
               "RUN PIPELINE p FOR '2026-12-02'; RUN PIPELINE p FOR '2026-12-02'; "
               "SELECT * FROM iceberg.s.mv ORDER BY d; "
               "SELECT freshness, last_refresh_type FROM system.metadata.materialized_views")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-2:] == ['"freshness","last_refresh_type"', '"FRESH","INCREMENTAL"'], lines
    assert lines[-5:-2] == ['"d","total","n"', '"2026-12-01","1","1"', '"2026-12-02","10","2"'], lines


def test_a_restarted_server_fails_the_run_it_left_and_goes_on(warehouse):
    """Killed in the middle of a run and started again on the same port (the same node
    name): the run it left is failed, not left running, and the next run runs."""
    server = Server(warehouse)
    ports = (server.http_port, server.https_port)
    try:
        cur = connect(host="127.0.0.1", port=server.http_port, user="engineer").cursor()
        run(cur, "CREATE PIPELINE p")
        run(cur, "ALTER PIPELINE p ADD STEP slow AS "
                 "SELECT count(*) FROM UNNEST(sequence(1, 10000)) a(x) "
                 "CROSS JOIN UNNEST(sequence(1, 10000)) b(y) WHERE (x * y) % 7 = 3")
        [[left, *_]] = run(cur, "RUN PIPELINE p")
        wait_for(lambda: steps(cur, left).get("slow", ("",))[0] == "running", "the slow step")
    finally:
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
    server = Server(warehouse, ports=ports)
    try:
        cur = connect(host="127.0.0.1", port=server.http_port, user="engineer").cursor()
        assert wait_for(lambda: finished(cur, left), "the left run") == "failed"
        [last] = [r for r in runs(cur, "p") if r["run_id"] == left]
        assert "stopped before it ended" in last["error"]
        run(cur, "ALTER PIPELINE p DROP STEP slow")
        run(cur, "ALTER PIPELINE p ADD STEP quick AS SELECT 1")
        [[next_run, *_]] = run(cur, "RUN PIPELINE p")
        assert wait_for(lambda: finished(cur, next_run), "the next run") == "succeeded"
    finally:
        server.stop()
