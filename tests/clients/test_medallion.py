"""The reference flow of issue 33, end to end, with nothing but AIchemy deployed: a shop's
PostgreSQL database (customers, orders, order items) is captured by CDC into bronze; a
scheduled pipeline on two nodes sharing a PostgreSQL metastore builds silver (deduplicated,
typed, merged by key, bad rows quarantined) and refreshes a gold data product (daily revenue
per customer segment, an incrementally refreshed materialized view) behind quality checks.

Changes at the source reach gold within a few schedule periods; a bad row is quarantined
while the run publishes the good ones; the node running the pipeline is killed and the other
one runs the next run; a past week is backfilled; lineage leads from gold back to bronze. The
same medallion as a dbt project (tests/clients/dbt_reference) runs unchanged through
dbt-trino over the same bronze and gives the same gold.

Run by scripts/test.sh with AICHEMY_BIN set to the debug binary.
"""

import datetime
import signal
import time
from pathlib import Path

from trino.dbapi import connect
from trino.exceptions import TrinoUserError

from lakehouse import Server
from postgres import PASSWORD, USER, Postgres
from test_dbt import run_dbt
from test_pipelines import run, wait_for

DBT_PROJECT = Path(__file__).parent / "dbt_reference"
TODAY = datetime.datetime.now(datetime.timezone.utc).date()
PERIOD_SECONDS = 3


def maybe(cur, statement):
    """The rows of a statement, or None while it fails (a table not there yet)."""
    try:
        return run(cur, statement)
    except TrinoUserError:
        return None


def day(offset):
    return (TODAY + datetime.timedelta(days=offset)).isoformat()


# Silver: each step merges the newest version of each key from bronze (a delete removes
# the key), changing only rows that differ, so that an unchanged source changes nothing.
# Orders and their items are taken by the day the run is for (${ds}): scheduled runs
# follow today's orders, a backfill rebuilds past days.
CUSTOMERS = """MERGE INTO customers t USING (
  SELECT id, name, segment, _op FROM (
    SELECT id, name, segment, _op,
      row_number() OVER (PARTITION BY id ORDER BY _lsn DESC, _seq DESC) AS newest
    FROM iceberg.bronze.customers) AS latest WHERE newest = 1) AS s
ON t.id = s.id
WHEN MATCHED AND s._op = 'd' THEN DELETE
WHEN MATCHED AND (t.name IS DISTINCT FROM s.name OR t.segment IS DISTINCT FROM s.segment)
  THEN UPDATE SET name = s.name, segment = s.segment
WHEN NOT MATCHED AND s._op <> 'd' THEN INSERT VALUES (s.id, s.name, s.segment)"""
ORDERS = """MERGE INTO orders t USING (
  SELECT id, customer_id, ordered_on, status, _op, _ts FROM (
    SELECT id, customer_id, ordered_on, status, _op, _ts,
      row_number() OVER (PARTITION BY id ORDER BY _lsn DESC, _seq DESC) AS newest
    FROM iceberg.bronze.orders WHERE ordered_on = DATE '${ds}') AS latest
  WHERE newest = 1) AS s
ON t.id = s.id
WHEN MATCHED AND s._op = 'd' THEN DELETE
WHEN MATCHED AND (t.customer_id IS DISTINCT FROM s.customer_id
                  OR t.status IS DISTINCT FROM s.status)
  THEN UPDATE SET customer_id = s.customer_id, status = s.status, updated_at = s._ts
WHEN NOT MATCHED AND s._op <> 'd'
  THEN INSERT VALUES (s.id, s.customer_id, s.ordered_on, s.status, s._ts)"""
# An item version already quarantined is not taken again; a fixed one is.
ITEMS = """MERGE INTO order_items t USING (
  SELECT order_id, line, product, quantity, price, _op FROM (
    SELECT i.order_id, i.line, i.product, i.quantity, CAST(i.price AS DOUBLE) AS price, i._op,
      row_number() OVER (PARTITION BY i.order_id, i.line ORDER BY i._lsn DESC, i._seq DESC)
        AS newest
    FROM iceberg.bronze.order_items i
    WHERE i.order_id IN (SELECT id FROM iceberg.bronze.orders
                         WHERE ordered_on = DATE '${ds}')) AS latest
  WHERE newest = 1 AND NOT EXISTS (
    SELECT 1 FROM order_items_quarantine q WHERE q.order_id = latest.order_id
      AND q.line = latest.line AND q.quantity = latest.quantity AND q.price = latest.price)
  ) AS s
ON t.order_id = s.order_id AND t.line = s.line
WHEN MATCHED AND s._op = 'd' THEN DELETE
WHEN MATCHED AND (t.product IS DISTINCT FROM s.product OR t.quantity IS DISTINCT FROM s.quantity
                  OR t.price IS DISTINCT FROM s.price)
  THEN UPDATE SET product = s.product, quantity = s.quantity, price = s.price
WHEN NOT MATCHED AND s._op <> 'd'
  THEN INSERT VALUES (s.order_id, s.line, s.product, s.quantity, s.price)"""
GOLD = """CREATE MATERIALIZED VIEW iceberg.gold.daily_revenue AS
SELECT o.ordered_on AS day, c.segment, sum(i.quantity * i.price) AS revenue,
  count(*) AS lines, max(o.updated_at) AS updated_at
FROM iceberg.silver.orders o
JOIN iceberg.silver.order_items i ON i.order_id = o.id
JOIN iceberg.silver.customers c ON c.id = o.customer_id
GROUP BY o.ordered_on, c.segment"""


def source_gold(pg, days):
    """Daily revenue per segment computed in PostgreSQL itself, over `days`, without the
    items a check rejects (negative amounts)."""
    out = pg.psql("shop", f"""
        SELECT o.ordered_on, c.segment, sum(i.quantity * i.price)::float8, count(*)
        FROM orders o JOIN order_items i ON i.order_id = o.id
        JOIN customers c ON c.id = o.customer_id
        WHERE i.quantity * i.price >= 0
          AND o.ordered_on IN ({', '.join(f"DATE '{d}'" for d in days)})
        GROUP BY 1, 2 ORDER BY 1, 2""")
    rows = []
    for line in out.splitlines():
        ordered_on, segment, revenue, lines = line.split("|")
        rows.append([ordered_on, segment, round(float(revenue), 2), int(lines)])
    return rows


def gold(cur, days, table="iceberg.gold.daily_revenue"):
    listed = ", ".join(f"DATE '{d}'" for d in days)
    return [[str(d), s, round(r, 2), n] for d, s, r, n in run(
        cur, f"SELECT day, segment, revenue, lines FROM {table} "
             f"WHERE day IN ({listed}) ORDER BY 1, 2")]


def pipeline_runs(cur):
    cur.execute("SELECT run_id, trigger, logical_date, state, node, error "
                "FROM system.runtime.pipeline_runs WHERE pipeline_name = 'medallion' "
                "ORDER BY queued")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def test_the_medallion_runs_itself_from_cdc_to_gold_on_two_nodes(tmp_path):
    pg = Postgres(logical=True)
    nodes = []
    try:
        pg.psql("postgres", f"ALTER USER {USER} REPLICATION")
        pg.psql("postgres", f"CREATE DATABASE shop OWNER {USER}")
        pg.psql("postgres", f"CREATE DATABASE meta OWNER {USER}")
        week = [day(-d) for d in range(7, 0, -1)]
        pg.psql("shop", f"""SET ROLE {USER};
            CREATE TABLE customers (id integer PRIMARY KEY, name text, segment text);
            CREATE TABLE orders (id bigint PRIMARY KEY, customer_id integer,
                ordered_on date, status text);
            CREATE TABLE order_items (order_id bigint, line integer, product text,
                quantity integer, price numeric(10, 2), PRIMARY KEY (order_id, line));
            -- Deletes carry the whole row, so a delete finds its day.
            ALTER TABLE orders REPLICA IDENTITY FULL;
            ALTER TABLE order_items REPLICA IDENTITY FULL;
            INSERT INTO customers VALUES (1, 'ann', 'retail'), (2, 'bob', 'retail'),
                (3, 'corp', 'enterprise');
            INSERT INTO orders SELECT g, g % 3 + 1, DATE '{TODAY}' - (g % 8), 'open'
                FROM generate_series(1, 40) g;
            INSERT INTO order_items SELECT o, l, 'p' || l, l, 2.50 * o
                FROM generate_series(1, 40) o, generate_series(1, 3) l;""")
        env = {"AICHEMY_METASTORE__URL":
               f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{pg.port}/meta",
               "AICHEMY_SERVER__ADMIN_USERS": "admin"}
        nodes = [Server(tmp_path / "wh", env=env), Server(tmp_path / "wh", env=env)]
        cur = connect(host="127.0.0.1", port=nodes[0].http_port, user="engineer",
                      catalog="iceberg", schema="silver").cursor()
        admin = connect(host="127.0.0.1", port=nodes[0].http_port, user="admin").cursor()
        run(admin, "CREATE INGESTION shop_cdc INTO iceberg.bronze WITH ("
                 f"connector = 'postgres-cdc', hostname = '127.0.0.1', port = '{pg.port}', "
                 f"username = '{USER}', password = '{PASSWORD}', database.name = 'shop', "
                 "table.name = 'customers, orders, order_items', commit.interval.ms = '300')")
        wait_for(lambda: maybe(cur, "SELECT count(*) FROM iceberg.bronze.order_items")
                 == [[120]], "the snapshot in bronze")

        run(cur, "CREATE SCHEMA iceberg.silver")
        run(cur, "CREATE SCHEMA iceberg.gold")
        run(cur, "CREATE TABLE customers (id INTEGER, name VARCHAR, segment VARCHAR)")
        run(cur, "CREATE TABLE orders (id BIGINT, customer_id INTEGER, ordered_on DATE, "
                 "status VARCHAR, updated_at TIMESTAMP(3) WITH TIME ZONE)")
        run(cur, "CREATE TABLE order_items (order_id BIGINT, line INTEGER, product VARCHAR, "
                 "quantity INTEGER, price DOUBLE)")
        run(cur, "CREATE TABLE order_items_quarantine AS SELECT *, '' AS _check, "
                 "'' AS _run_id, current_timestamp AS _quarantined_at FROM order_items "
                 "WHERE false")
        run(cur, GOLD)
        run(cur, f"CREATE PIPELINE medallion SCHEDULE EVERY INTERVAL '{PERIOD_SECONDS}' SECOND "
                 "WITH (retries = 2, retry_delay = '1s', timeout = '5m', "
                 "catalog = 'iceberg', schema = 'silver')")
        run(cur, "ALTER PIPELINE medallion PAUSE")
        run(cur, f"ALTER PIPELINE medallion ADD STEP customers AS {CUSTOMERS}")
        run(cur, f"ALTER PIPELINE medallion ADD STEP orders AS {ORDERS}")
        run(cur, f"ALTER PIPELINE medallion ADD STEP items AFTER orders AS {ITEMS}")
        run(cur, "ALTER PIPELINE medallion ADD STEP gold AFTER customers, items AS "
                 "REFRESH MATERIALIZED VIEW iceberg.gold.daily_revenue")
        for check in [
            "unique_customers ON customers UNIQUE (id)",
            "unique_orders ON orders UNIQUE (id)",
            "unique_items ON order_items UNIQUE (order_id, line)",
            "amounts ON order_items AFTER items EXPECT (quantity * price >= 0) QUARANTINE",
            "known_customers ON orders AFTER orders FOREIGN KEY (customer_id) "
            "REFERENCES iceberg.bronze.customers (id)",
            "fresh_gold ON iceberg.gold.daily_revenue FRESHNESS updated_at "
            "WITHIN INTERVAL '1' DAY",
        ]:
            run(cur, f"ALTER PIPELINE medallion ADD CHECK {check}")

        # The past week first, one run per day, in order.
        backfill = run(cur, f"BACKFILL PIPELINE medallion FROM '{week[0]}' TO '{week[-1]}'")
        assert [row[1] for row in backfill] == week
        wait_for(lambda: [r["state"] for r in pipeline_runs(cur)] == ["succeeded"] * 7,
                 "the backfill", timeout=300)
        assert [r["logical_date"] for r in pipeline_runs(cur)] == week
        assert gold(cur, week) == source_gold(pg, week)

        # Then the schedule: today's orders, and changes to them, reach gold.
        run(cur, "ALTER PIPELINE medallion RESUME")
        wait_for(lambda: gold(cur, [day(0)]) == source_gold(pg, [day(0)]), "today in gold")
        changed = time.monotonic()
        pg.psql("shop", f"""SET ROLE {USER};
            UPDATE customers SET segment = 'enterprise' WHERE id = 2;
            INSERT INTO orders VALUES (100, 1, DATE '{TODAY}', 'open');
            INSERT INTO order_items VALUES (100, 1, 'new', 4, 10.00);
            DELETE FROM order_items WHERE order_id = 8 AND line = 3;""")
        wait_for(lambda: gold(cur, [day(0)]) == source_gold(pg, [day(0)]), "changes in gold")
        took = time.monotonic() - changed
        print(f"a change reached gold in {took:.1f}s (schedule every {PERIOD_SECONDS}s)")
        [[kind, reason]] = run(cur, "SELECT last_refresh_type, last_refresh_reason "
                                    "FROM system.metadata.materialized_views "
                                    "WHERE name = 'daily_revenue'")
        assert kind == "INCREMENTAL", reason

        # A bad row: quarantined with its check and run; the good rows of the same run are
        # published with it.
        pg.psql("shop", f"""SET ROLE {USER};
            INSERT INTO order_items VALUES (100, 2, 'refund?', -3, 10.00), (100, 3, 'ok', 1, 1.00);""")
        wait_for(lambda: run(cur, "SELECT count(*) FROM order_items_quarantine") == [[1]],
                 "the bad row in the quarantine")
        [[bad_line, check, run_id]] = run(cur, "SELECT line, _check, _run_id "
                                               "FROM order_items_quarantine")
        assert (bad_line, check) == (2, "amounts")
        [published] = [r for r in pipeline_runs(cur) if r["run_id"] == run_id]
        assert published["state"] == "succeeded", published
        assert run(cur, "SELECT line FROM order_items WHERE order_id = 100 ORDER BY line") \
            == [[1], [3]]
        wait_for(lambda: gold(cur, [day(0)]) == source_gold(pg, [day(0)]), "gold without it")
        # Fixed at the source, it is taken again.
        pg.psql("shop", f"SET ROLE {USER}; UPDATE order_items SET quantity = 3 "
                        "WHERE order_id = 100 AND line = 2;")
        wait_for(lambda: run(cur, "SELECT quantity FROM order_items "
                                  "WHERE order_id = 100 AND line = 2") == [[3]],
                 "the fixed row in silver")

        # The node running the pipeline dies: the other one runs the next runs.
        [[holder]] = run(cur, "SELECT node FROM system.runtime.pipelines "
                              "WHERE pipeline_name = 'medallion'")
        dead = next(i for i, n in enumerate(nodes) if holder.endswith(f":{n.http_port}"))
        survivor = nodes[1 - dead]
        nodes[dead].process.send_signal(signal.SIGKILL)
        nodes[dead].process.wait()
        cur = connect(host="127.0.0.1", port=survivor.http_port, user="engineer",
                      catalog="iceberg", schema="silver").cursor()
        killed_at = len(pipeline_runs(cur))
        wait_for(lambda: any(r["state"] == "succeeded"
                             and r["node"].endswith(f":{survivor.http_port}")
                             for r in pipeline_runs(cur)[killed_at:]),
                 "a run on the other node")
        pg.psql("shop", f"SET ROLE {USER}; UPDATE orders SET status = 'shipped', "
                        "customer_id = 3 WHERE id = 100;")
        wait_for(lambda: gold(cur, [day(0)]) == source_gold(pg, [day(0)]),
                 "a change after the takeover")
        run(cur, "ALTER PIPELINE medallion PAUSE")
        wait_for(lambda: all(r["state"] not in ("queued", "running")
                             for r in pipeline_runs(cur)), "the last run's end")
        failed = [r for r in pipeline_runs(cur) if r["state"] == "failed"]
        # At most the run the dead node was in the middle of.
        assert len(failed) <= 1 and all("stopped before it ended" in r["error"]
                                        for r in failed), failed
        checks = run(cur, "SELECT check_name, state, count(*) FROM system.runtime.pipeline_checks "
                          "GROUP BY 1, 2")
        assert {c for c, s, _ in checks if s == "failed"} == set(), checks

        # Lineage leads from gold back to bronze, through the pipeline's steps.
        edges = {tuple(r) for r in run(
            cur, "SELECT DISTINCT source_schema || '.' || source_table, source_column, "
                 "target_schema || '.' || target_table, target_column "
                 "FROM system.runtime.lineage WHERE lineage_type = 'DIRECT'")}
        assert ("silver.order_items", "price", "gold.daily_revenue", "revenue") in edges
        assert ("silver.customers", "segment", "gold.daily_revenue", "segment") in edges
        assert ("bronze.order_items", "price", "silver.order_items", "price") in edges
        assert ("bronze.orders", "ordered_on", "silver.orders", "ordered_on") in edges
        # The ingestion job's: bronze from the source's tables.
        assert ("shop.public.customers", "segment", "bronze.customers", "segment") in edges

        # The same medallion as a dbt project, over the same bronze: the same gold.
        code, out = run_dbt(DBT_PROJECT, "reference", "dbt", survivor.http_port, tmp_path,
                            "build")
        assert code == 0 and "Completed successfully" in out, out
        days = week + [day(0)]
        assert gold(cur, days, "iceberg.dbt.daily_revenue") == gold(cur, days)
    finally:
        for node in nodes:
            if node.process.poll() is None:
                node.stop()
        pg.destroy()
