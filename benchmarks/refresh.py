"""Incremental refresh of a materialized view (issue 33): TPC-H orders joined with lineitem,
revenue per order day, refreshed after small changes, next to a full refresh and to DuckDB
computing the same query:

    AICHEMY_BIN=…/aichemy python benchmarks/refresh.py --scale 1 [--threads 2] [--data DIR]

Generates orders and lineitem with tpchgen-cli (into `--data`, reused when there), copies
them into Iceberg tables and DuckDB tables, then times, each once:

  full          REFRESH of the view from nothing (every row read)
  append        0.1 % new orders (with their lines) appended, then REFRESH (incremental)
  update        0.1 % of the orders moved to another day with UPDATE, then REFRESH
  full again    CREATE OR REPLACE of the same view and REFRESH: the whole query again
  duckdb        DuckDB's time for the view's query over its tables after the same changes

After each refresh the view must hold exactly the rows of its query (checked with a
count of the rows that differ), and AIchemy's rows must be DuckDB's.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import trino

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "tpch"))
sys.path.insert(0, str(HERE.parent / "tests" / "clients"))

from lakehouse import BIN, Server  # noqa: E402
from tpch import TABLES, generate  # noqa: E402

VIEW_QUERY = (
    "SELECT o_orderdate, count(*) AS line_count, "
    "sum(l_extendedprice * (1 - l_discount)) AS revenue "
    "FROM {orders} JOIN {lineitem} ON l_orderkey = o_orderkey GROUP BY o_orderdate"
)
# 0.1 % of the orders (and their lines) again under new keys.
APPEND_ORDERS = (
    "INSERT INTO {orders} SELECT o_orderkey + 1000000000, o_custkey, o_orderstatus, "
    "o_totalprice, o_orderdate, o_orderpriority, o_clerk, o_shippriority, o_comment "
    "FROM {orders} WHERE o_orderkey % 1000 = 1 AND o_orderkey < 1000000000"
)
APPEND_LINES = (
    "INSERT INTO {lineitem} SELECT l_orderkey + 1000000000, l_partkey, l_suppkey, "
    "l_linenumber, l_quantity, l_extendedprice, l_discount, l_tax, l_returnflag, "
    "l_linestatus, l_shipdate, l_commitdate, l_receiptdate, l_shipinstruct, l_shipmode, "
    "l_comment FROM {lineitem} WHERE l_orderkey % 1000 = 1 AND l_orderkey < 1000000000"
)
UPDATE_ORDERS = (
    "UPDATE {orders} SET o_orderdate = o_orderdate + INTERVAL '1' DAY "
    "WHERE o_orderkey % 1000 = 2"
)


def timed(run):
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


class Aichemy:
    def __init__(self, warehouse, data, threads):
        env = {**os.environ, "AICHEMY_LOG": "warn", "AICHEMY_EXECUTION__THREADS": str(threads),
               "AICHEMY_STORAGE__ALLOWED_LOCATIONS": f"file://{data}"}
        ddl = ["CREATE SCHEMA IF NOT EXISTS hive.files", "CREATE SCHEMA iceberg.bench"]
        for table in ("orders", "lineitem"):
            ddl.append(f"CREATE TABLE IF NOT EXISTS hive.files.{table} ({TABLES[table]}) WITH "
                       f"(external_location = 'file://{data}/{table}', format = 'PARQUET')")
        done = subprocess.run([BIN, "--warehouse", str(warehouse), "sql", "-e", "; ".join(ddl)],
                              capture_output=True, text=True, env=env)
        if done.returncode != 0:
            sys.exit(f"registering the files failed: {done.stderr}")
        self.server = Server(warehouse, env=env)
        self.cursor = trino.dbapi.connect(host="127.0.0.1", port=self.server.http_port,
                                          user="bench", http_scheme="http").cursor()
        for table in ("orders", "lineitem"):
            self.run(f"CREATE TABLE iceberg.bench.{table} AS SELECT * FROM hive.files.{table}")

    def run(self, sql):
        self.cursor.execute(sql)
        return self.cursor.fetchall()

    def query(self):
        return VIEW_QUERY.format(orders="iceberg.bench.orders", lineitem="iceberg.bench.lineitem")

    def create_view(self, replace=False):
        create = "CREATE OR REPLACE" if replace else "CREATE"
        self.run(f"{create} MATERIALIZED VIEW iceberg.bench.revenue AS {self.query()}")

    def refresh(self):
        seconds = timed(lambda: self.run("REFRESH MATERIALIZED VIEW iceberg.bench.revenue"))
        kind = self.run("SELECT last_refresh_type FROM system.metadata.materialized_views "
                        "WHERE name = 'revenue'")[0][0]
        differing = self.run(
            "SELECT count(*) FROM (SELECT * FROM iceberg.bench.revenue EXCEPT "
            f"SELECT * FROM ({self.query()})) x")[0][0] + self.run(
            f"SELECT count(*) FROM (SELECT * FROM ({self.query()}) x EXCEPT "
            "SELECT * FROM iceberg.bench.revenue) y")[0][0]
        if differing:
            sys.exit(f"the view differs from its query in {differing} rows after a {kind} refresh")
        return seconds, kind

    def change(self, statements):
        for sql in statements:
            self.run(sql.format(orders="iceberg.bench.orders", lineitem="iceberg.bench.lineitem"))

    def rows(self):
        return sorted(tuple(row) for row in self.run(
            "SELECT o_orderdate, line_count, CAST(revenue AS DOUBLE) FROM iceberg.bench.revenue"))

    def close(self):
        self.server.stop()


class DuckDB:
    def __init__(self, folder, data, threads):
        self.connection = duckdb.connect(str(folder / "refresh.duckdb"))
        self.connection.execute(f"SET threads = {threads}")
        for table in ("orders", "lineitem"):
            self.run(f"CREATE TABLE {table} AS SELECT * FROM '{data}/{table}/*.parquet'")

    def run(self, sql):
        return self.connection.execute(sql).fetchall()

    def recompute(self):
        query = VIEW_QUERY.format(orders="orders", lineitem="lineitem")
        return timed(lambda: self.run(f"CREATE OR REPLACE TABLE revenue AS {query}"))

    def change(self, statements):
        for sql in statements:
            self.run(sql.format(orders="orders", lineitem="lineitem"))

    def rows(self):
        return sorted(self.run("SELECT o_orderdate, line_count, CAST(revenue AS DOUBLE) "
                               "FROM revenue"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = (args.data or tmp / "data").resolve()
        generate(args.scale, data)
        aichemy = Aichemy(tmp / "wh", data, args.threads)
        duck = DuckDB(tmp, data, args.threads)
        results = []
        try:
            aichemy.create_view()
            results.append(("full (first refresh)", *aichemy.refresh(), duck.recompute()))
            for name, statements in (("append 0.1 % orders", [APPEND_ORDERS, APPEND_LINES]),
                                     ("update 0.1 % orders", [UPDATE_ORDERS])):
                aichemy.change(statements)
                duck.change(statements)
                results.append((name, *aichemy.refresh(), duck.recompute()))
            aichemy.create_view(replace=True)
            results.append(("full again", *aichemy.refresh(), duck.recompute()))
            mine, theirs = aichemy.rows(), duck.rows()
            if mine != theirs:
                differ = [(a, b) for a, b in zip(mine, theirs) if a != b][:5]
                sys.exit(f"AIchemy's view ({len(mine)} rows) and DuckDB's table "
                         f"({len(theirs)} rows) disagree: {differ}")
        finally:
            aichemy.close()
    print(f"\nrevenue per order day over orders JOIN lineitem, TPC-H SF{args.scale:g}, "
          f"{args.threads} threads; seconds")
    print(f"{'step':<24}{'aichemy refresh':>16}{'kind':>13}{'duckdb query':>14}")
    for name, seconds, kind, duck_seconds in results:
        print(f"{name:<24}{seconds:>16.2f}{kind:>13}{duck_seconds:>14.2f}")


if __name__ == "__main__":
    main()
