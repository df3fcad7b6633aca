"""Lineage (issue 33) through the python trino client: every write (INSERT, CREATE TABLE AS,
MERGE, UPDATE, DELETE, a materialized view's refresh, a pipeline's steps) records which
columns of which tables each written column derives from, in `system.runtime.lineage`, and
is sent as OpenLineage run events (START, then COMPLETE or FAIL) to an HTTP receiver that
checks each against the models `openlineage-python` ships for the OpenLineage spec."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attr
import pytest
from openlineage.client.generated import (
    base,
    column_lineage_dataset,
    error_message_run,
    job_type_job,
    parent_run,
    schema_dataset,
    sql_job,
)
from trino.dbapi import connect
from trino.exceptions import TrinoUserError

from lakehouse import Server

# The facets AIchemy sends, by key, with the model each must fit.
FACETS = {
    "run": {
        "parent": parent_run.ParentRunFacet,
        "errorMessage": error_message_run.ErrorMessageRunFacet,
    },
    "job": {"sql": sql_job.SQLJobFacet, "jobType": job_type_job.JobTypeJobFacet},
    "dataset": {
        "schema": schema_dataset.SchemaDatasetFacet,
        "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet,
    },
}
# Nested objects, by the model and field holding them.
NESTED = {
    (parent_run.ParentRunFacet, "run"): parent_run.Run,
    (parent_run.ParentRunFacet, "job"): parent_run.Job,
    (schema_dataset.SchemaDatasetFacet, "fields"): schema_dataset.SchemaDatasetFacetFields,
    (column_lineage_dataset.ColumnLineageDatasetFacet, "fields"): column_lineage_dataset.Fields,
    (column_lineage_dataset.ColumnLineageDatasetFacet, "dataset"): column_lineage_dataset.InputField,
    (column_lineage_dataset.Fields, "inputFields"): column_lineage_dataset.InputField,
    (column_lineage_dataset.InputField, "transformations"): column_lineage_dataset.Transformation,
}


def build(model, value):
    """`value` (JSON) as an instance of the attrs `model`: every key one of the model's
    fields, every required field present, the model's validators passed, and a facet's
    `_schemaURL` the model's own."""
    assert isinstance(value, dict), (model, value)
    fields = {f.name: f for f in attr.fields(model)}
    unknown = set(value) - set(fields)
    assert not unknown, f"{model.__name__} has no fields {unknown}"
    kwargs = {}
    for key, item in value.items():
        nested = NESTED.get((model, key))
        if nested is not None:
            if isinstance(item, list):
                item = [build(nested, i) for i in item]
            elif model is column_lineage_dataset.ColumnLineageDatasetFacet:
                item = {name: build(nested, i) for name, i in item.items()}
            else:
                item = build(nested, item)
        if fields[key].init:
            kwargs[fields[key].alias] = item
    model(**kwargs)
    if "_schemaURL" in value:
        assert value["_schemaURL"] == model._get_schema(), (value["_schemaURL"], model)


def validate(event):
    """Checks one run event against openlineage-python's models; answers it."""
    facets = lambda kind, found: {k: build(FACETS[kind][k], v) for k, v in (found or {}).items()}
    run = base.Run(runId=event["run"]["runId"], facets=facets("run", event["run"].get("facets")))
    job = base.Job(namespace=event["job"]["namespace"], name=event["job"]["name"],
                   facets=facets("job", event["job"].get("facets")))
    inputs = [base.InputDataset(namespace=d["namespace"], name=d["name"],
                                facets=facets("dataset", d.get("facets")))
              for d in event["inputs"]]
    outputs = [base.OutputDataset(namespace=d["namespace"], name=d["name"],
                                  facets=facets("dataset", d.get("facets")))
               for d in event["outputs"]]
    assert set(event) == {"eventType", "eventTime", "producer", "schemaURL", "run", "job",
                          "inputs", "outputs"}, set(event)
    built = base.RunEvent(eventType=base.EventType(event["eventType"]),
                          eventTime=event["eventTime"], run=run, job=job,
                          producer=event["producer"], inputs=inputs, outputs=outputs)
    assert event["schemaURL"] == built._get_schema()
    return event


class Receiver:
    """An HTTP endpoint that keeps every OpenLineage event POSTed to it."""

    def __init__(self):
        self.events = []
        self.failures = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    assert self.path == "/api/v1/lineage", self.path
                    assert self.headers["Content-Type"] == "application/json"
                    assert self.headers["Authorization"] == "Bearer lineage-token"
                    receiver.events.append(validate(json.loads(body)))
                except Exception as e:  # noqa: BLE001 (reported by the test)
                    receiver.failures.append(f"{type(e).__name__}: {e}: {body[:500]!r}")
                self.send_response(201)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/api/v1/lineage"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def of_job(self, name):
        return [e for e in self.events if e["job"]["name"] == name]

    def wait(self, condition, what, timeout=30):
        deadline = time.monotonic() + timeout
        while not condition():
            assert not self.failures, self.failures
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.events}")
            time.sleep(0.1)
        assert not self.failures, self.failures


def run(cur, statement):
    cur.execute(statement)
    return cur.fetchall()


def edges(cur, table):
    """The lineage of the newest write to `table`: {(target column, source table.column,
    type, transformation)}."""
    [[newest]] = run(cur, "SELECT max(recorded) FROM system.runtime.lineage "
                          f"WHERE target_table = '{table}'")
    return {tuple(row) for row in run(
        cur, "SELECT target_column, source_table || '.' || coalesce(source_column, '*'), "
             "lineage_type, transformation FROM system.runtime.lineage "
             f"WHERE target_table = '{table}' AND recorded = '{newest}'")}


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.http.shutdown()


def test_writes_record_column_lineage_and_send_openlineage_events(warehouse, receiver):
    server = Server(warehouse, env={
        "AICHEMY_LINEAGE__OPENLINEAGE_URL": receiver.url,
        "AICHEMY_LINEAGE__OPENLINEAGE_API_KEY": "${ENV:LINEAGE_TOKEN}",
        "LINEAGE_TOKEN": "lineage-token",
        "AICHEMY_LINEAGE__NAMESPACE": "lakehouse-test",
    })
    try:
        cur = connect(host="127.0.0.1", port=server.http_port, user="engineer",
                      catalog="iceberg", schema="shop").cursor()
        run(cur, "CREATE SCHEMA iceberg.shop")
        run(cur, "CREATE TABLE customers (id BIGINT, name VARCHAR, segment VARCHAR)")
        run(cur, "CREATE TABLE orders (id BIGINT, customer BIGINT, amount DOUBLE, day DATE)")
        run(cur, "INSERT INTO customers VALUES (1, 'ann', 'retail'), (2, 'bob', 'corporate')")
        run(cur, "INSERT INTO orders VALUES (10, 1, 5.0, DATE '2026-12-01'), "
                 "(11, 2, 7.5, DATE '2026-12-01'), (12, 1, -1.0, DATE '2026-12-02')")
        assert edges(cur, "orders") == set()

        # CREATE TABLE AS over a join with an aggregate.
        run(cur, "CREATE TABLE revenue AS SELECT c.segment, o.day, sum(o.amount) AS total, "
                 "count(*) AS orders FROM orders o JOIN customers c ON o.customer = c.id "
                 "WHERE o.amount > 0 GROUP BY c.segment, o.day")
        assert edges(cur, "revenue") == {
            ("segment", "customers.segment", "DIRECT", "IDENTITY"),
            ("day", "orders.day", "DIRECT", "IDENTITY"),
            ("total", "orders.amount", "DIRECT", "AGGREGATION"),
            (None, "orders.customer", "INDIRECT", "JOIN"),
            (None, "customers.id", "INDIRECT", "JOIN"),
            (None, "orders.amount", "INDIRECT", "FILTER"),
            (None, "customers.segment", "INDIRECT", "GROUP_BY"),
            (None, "orders.day", "INDIRECT", "GROUP_BY"),
        }
        [row] = run(cur, "SELECT kind, user, query_id IS NOT NULL, target_catalog, target_schema "
                         "FROM system.runtime.lineage WHERE target_table = 'revenue' "
                         "AND target_column = 'total'")
        assert row == ["CREATE TABLE", "engineer", True, "iceberg", "shop"]

        # INSERT naming some columns, through a view.
        run(cur, "CREATE VIEW big_orders AS SELECT id, amount * 2 AS doubled FROM orders "
                 "WHERE amount > 5")
        run(cur, "CREATE TABLE flagged (id BIGINT, score DOUBLE, note VARCHAR)")
        run(cur, "INSERT INTO flagged (id, score) SELECT id, doubled FROM big_orders")
        assert edges(cur, "flagged") == {
            ("id", "orders.id", "DIRECT", "IDENTITY"),
            ("score", "orders.amount", "DIRECT", "TRANSFORMATION"),
            (None, "orders.amount", "INDIRECT", "FILTER"),
        }

        # UPDATE: the columns it sets, from what it sets them to; the rows it keeps are
        # no lineage.
        run(cur, "UPDATE flagged SET note = CAST(score AS VARCHAR) || '!' WHERE score > 10")
        assert edges(cur, "flagged") == {
            ("note", "flagged.score", "DIRECT", "TRANSFORMATION"),
            (None, "flagged.score", "INDIRECT", "FILTER"),
        }

        # MERGE from a source table.
        run(cur, "CREATE TABLE totals (customer BIGINT, spent DOUBLE)")
        run(cur, "MERGE INTO totals t USING (SELECT customer, sum(amount) AS s FROM orders "
                 "GROUP BY customer) o ON t.customer = o.customer "
                 "WHEN MATCHED THEN UPDATE SET spent = o.s "
                 "WHEN NOT MATCHED THEN INSERT (customer, spent) VALUES (o.customer, o.s)")
        merged = {edge[:3] for edge in edges(cur, "totals")}
        assert ("customer", "orders.customer", "DIRECT") in merged, merged
        assert ("spent", "orders.amount", "DIRECT") in merged, merged
        assert (None, "orders.customer", "INDIRECT") in merged, merged
        assert (None, "totals.customer", "INDIRECT") in merged, merged
        assert not [e for e in merged if e[0] and e[1].startswith("totals.")], merged

        # DELETE with a subquery: which rows go depends on another table.
        run(cur, "DELETE FROM orders WHERE customer IN (SELECT id FROM customers "
                 "WHERE segment = 'corporate')")
        deleted = edges(cur, "orders")
        assert (None, "customers.segment", "INDIRECT", "FILTER") in deleted, deleted
        assert (None, "customers.id", "INDIRECT", "FILTER") in deleted, deleted
        assert not [e for e in deleted if e[2] == "DIRECT"], deleted

        # A materialized view's refresh: the view's columns from its sources.
        run(cur, "CREATE MATERIALIZED VIEW daily AS SELECT day, sum(amount) AS revenue "
                 "FROM orders GROUP BY day")
        run(cur, "REFRESH MATERIALIZED VIEW daily")
        assert edges(cur, "daily") == {
            ("day", "orders.day", "DIRECT", "IDENTITY"),
            ("revenue", "orders.amount", "DIRECT", "AGGREGATION"),
            (None, "orders.day", "INDIRECT", "GROUP_BY"),
        }

        # A write that fails records nothing and sends FAIL.
        with pytest.raises(TrinoUserError):
            run(cur, "INSERT INTO flagged SELECT id, amount / 0, CAST(id AS VARCHAR) "
                     "FROM orders WHERE CAST('x' || CAST(id AS VARCHAR) AS BIGINT) > 0")
        failed_query = cur.query_id

        # Events: START then COMPLETE per write, with the lineage as columnLineage.
        receiver.wait(lambda: len(receiver.of_job(failed_query)) == 2, "the failed INSERT's events")
        events = receiver.events
        for e in events:
            assert e["job"]["namespace"] == "lakehouse-test"
        ctas = [e for e in events if any(o["name"] == "iceberg.shop.revenue" for o in e["outputs"])]
        assert [e["eventType"] for e in ctas] == ["COMPLETE"], ctas
        [complete] = ctas
        [start] = [e for e in events if e["run"]["runId"] == complete["run"]["runId"]
                   and e["eventType"] == "START"]
        assert start["job"]["name"] == complete["job"]["name"]
        assert "CREATE TABLE revenue" in start["job"]["facets"]["sql"]["query"]
        assert {(d["namespace"], d["name"]) for d in complete["inputs"]} == {
            ("lakehouse-test", "iceberg.shop.orders"), ("lakehouse-test", "iceberg.shop.customers")}
        [output] = complete["outputs"]
        lineage = output["facets"]["columnLineage"]
        assert lineage["fields"]["total"]["inputFields"] == [{
            "namespace": "lakehouse-test", "name": "iceberg.shop.orders", "field": "amount",
            "transformations": [{"type": "DIRECT", "subtype": "AGGREGATION", "masking": False}]}]
        assert {(f["name"], f["field"], f["transformations"][0]["subtype"])
                for f in lineage["dataset"]} >= {
            ("iceberg.shop.orders", "customer", "JOIN"), ("iceberg.shop.customers", "id", "JOIN")}
        assert [f["name"] for f in output["facets"]["schema"]["fields"]] == [
            "segment", "day", "total", "orders"]

        [fail_start, fail] = receiver.of_job(failed_query)
        assert (fail_start["eventType"], fail["eventType"]) == ("START", "FAIL")
        assert fail["run"]["facets"]["errorMessage"]["programmingLanguage"] == "SQL"
        assert "flagged" not in {r[0] for r in run(
            cur, "SELECT target_table FROM system.runtime.lineage "
                 f"WHERE query_id = '{failed_query}'")}
    finally:
        server.stop()


def test_a_pipelines_steps_are_children_of_its_run(warehouse, receiver):
    server = Server(warehouse, env={"AICHEMY_LINEAGE__OPENLINEAGE_URL": receiver.url,
                                    "AICHEMY_LINEAGE__OPENLINEAGE_API_KEY": "lineage-token"})
    try:
        cur = connect(host="127.0.0.1", port=server.http_port, user="engineer",
                      catalog="iceberg", schema="s").cursor()
        run(cur, "CREATE SCHEMA iceberg.s")
        run(cur, "CREATE TABLE raw (day DATE, amount DOUBLE)")
        run(cur, "INSERT INTO raw VALUES (DATE '2026-12-01', 3), (DATE '2026-12-01', 4)")
        run(cur, "CREATE TABLE daily (day DATE, revenue DOUBLE)")
        run(cur, "CREATE PIPELINE rollup WITH (catalog = 'iceberg', schema = 's')")
        run(cur, "ALTER PIPELINE rollup ADD STEP fill AS INSERT INTO daily "
                 "SELECT day, sum(amount) FROM raw WHERE day = DATE '${ds}' GROUP BY day")
        run(cur, "RUN PIPELINE rollup FOR '2026-12-01'")
        receiver.wait(lambda: any(e["eventType"] == "COMPLETE" for e in receiver.of_job("rollup")),
                      "the pipeline run's COMPLETE")
        [run_start, run_complete] = receiver.of_job("rollup")
        assert run_start["eventType"] == "START"
        assert run_start["job"]["facets"]["jobType"]["jobType"] == "PIPELINE"
        step = receiver.of_job("rollup.fill")
        assert [e["eventType"] for e in step] == ["START", "COMPLETE"]
        parent = step[1]["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == run_complete["run"]["runId"]
        assert parent["job"] == {"namespace": "aichemy", "name": "rollup"}
        [[run_id]] = run(cur, "SELECT run_id FROM system.runtime.pipeline_runs "
                              "WHERE pipeline_name = 'rollup'")
        rows = run(cur, "SELECT pipeline_name, run_id, step_name, target_column, source_table, "
                        "source_column, transformation FROM system.runtime.lineage "
                        "WHERE target_table = 'daily' AND lineage_type = 'DIRECT'")
        assert sorted(rows) == [
            ["rollup", run_id, "fill", "day", "raw", "day", "IDENTITY"],
            ["rollup", run_id, "fill", "revenue", "raw", "amount", "AGGREGATION"],
        ]
    finally:
        server.stop()
