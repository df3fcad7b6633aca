"""TPC-H on AIchemy and DuckDB over the same Parquet files (issue #7, first part):

    AICHEMY_BIN=…/aichemy python benchmarks/tpch/tpch.py --scale 0.01 [--rounds 3]

Generates TPC-H Parquet with tpchgen-cli into a temporary folder, registers the files as
`hive` external tables of a fresh warehouse and copies them into `iceberg` tables with
CREATE TABLE … AS SELECT, then runs the 22 queries of `queries/` (Trino dialect) through
`aichemy serve` with the python `trino` client (on the hive and on the iceberg tables) and
through DuckDB on the same files, one warm-up round and `--rounds` measured ones, engines
interleaved query by query with their order rotating each round, every engine limited to
`--threads` threads. Checks that every engine returns the same rows (numbers rounded to
two places) and prints per query the median and minimum time of each engine and its ratio
to DuckDB, the geometric mean of the ratios and each process's peak memory; a measured run
also writes that table to benchmarks/results/.

Not yet here (see the issue): Polars, AIchemy in-process and the 2 GiB memory-limited mode.
"""

import argparse
import datetime
import decimal
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import trino

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests" / "clients"))

from lakehouse import BIN, Server  # noqa: E402

# Trino types of the columns tpchgen-cli writes.
TABLES = {
    "region": "r_regionkey bigint, r_name varchar, r_comment varchar",
    "nation": "n_nationkey bigint, n_name varchar, n_regionkey bigint, n_comment varchar",
    "supplier": "s_suppkey bigint, s_name varchar, s_address varchar, s_nationkey bigint, "
                "s_phone varchar, s_acctbal decimal(15,2), s_comment varchar",
    "customer": "c_custkey bigint, c_name varchar, c_address varchar, c_nationkey bigint, "
                "c_phone varchar, c_acctbal decimal(15,2), c_mktsegment varchar, "
                "c_comment varchar",
    "part": "p_partkey bigint, p_name varchar, p_mfgr varchar, p_brand varchar, "
            "p_type varchar, p_size integer, p_container varchar, "
            "p_retailprice decimal(15,2), p_comment varchar",
    "partsupp": "ps_partkey bigint, ps_suppkey bigint, ps_availqty integer, "
                "ps_supplycost decimal(15,2), ps_comment varchar",
    "orders": "o_orderkey bigint, o_custkey bigint, o_orderstatus varchar, "
              "o_totalprice decimal(15,2), o_orderdate date, o_orderpriority varchar, "
              "o_clerk varchar, o_shippriority integer, o_comment varchar",
    "lineitem": "l_orderkey bigint, l_partkey bigint, l_suppkey bigint, "
                "l_linenumber integer, l_quantity decimal(15,2), "
                "l_extendedprice decimal(15,2), l_discount decimal(15,2), "
                "l_tax decimal(15,2), l_returnflag varchar, l_linestatus varchar, "
                "l_shipdate date, l_commitdate date, l_receiptdate date, "
                "l_shipinstruct varchar, l_shipmode varchar, l_comment varchar",
}


def queries():
    texts = {int(p.stem[1:]): p.read_text() for p in HERE.glob("queries/q*.sql")}
    return dict(sorted(texts.items()))


def generate(scale, folder):
    subprocess.run(["tpchgen-cli", "parquet", "-s", str(scale), "--parts=1",
                    f"--output-dir={folder}"], check=True)


def normalise(rows):
    """Rows as comparable tuples: numbers rounded to two places, dates as ISO text."""
    def value(v):
        if isinstance(v, (float, decimal.Decimal)):
            return round(float(v), 2)
        if isinstance(v, (datetime.date, datetime.datetime)):
            return v.isoformat()[:10]
        return v
    return [tuple(value(v) for v in row) for row in rows]


class Aichemy:
    def __init__(self, warehouse, catalog):
        self.name = f"aichemy-{catalog}"
        self.server = Server(warehouse, env={"AICHEMY_LOG": "warn"})
        self.cursor = trino.dbapi.connect(host="127.0.0.1", port=self.server.http_port,
                                          user="bench", catalog=catalog,
                                          schema="tpch").cursor()

    def run(self, sql):
        self.cursor.execute(sql)
        return self.cursor.fetchall()

    def peak_memory(self):
        """The server process's peak resident memory in bytes (Linux's VmHWM)."""
        with open(f"/proc/{self.server.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return None

    def close(self):
        self.server.stop()


class DuckDB:
    name = "duckdb"

    def __init__(self, data, threads):
        self.con = duckdb.connect()
        self.con.execute(f"SET threads = {threads}")
        for table in TABLES:
            self.con.execute(f"CREATE VIEW {table} AS SELECT * FROM "
                             f"read_parquet('{data}/{table}/*.parquet')")

    def run(self, sql):
        return self.con.execute(sql).fetchall()

    def peak_memory(self):
        """Peak resident memory of this (the harness's) process, which DuckDB runs in."""
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def close(self):
        self.con.close()


def register(warehouse, data):
    """Hive external tables on the generated files, and iceberg copies of them."""
    statements = ["CREATE SCHEMA hive.tpch", "CREATE SCHEMA iceberg.tpch"]
    for table, columns in TABLES.items():
        statements.append(f"CREATE TABLE hive.tpch.{table} ({columns}) WITH "
                          f"(external_location = 'file://{data}/{table}', format = 'PARQUET')")
        statements.append(f"CREATE TABLE iceberg.tpch.{table} AS SELECT * FROM hive.tpch.{table}")
    done = subprocess.run([BIN, "--warehouse", str(warehouse), "sql", "-e",
                           ";\n".join(statements) + ";"], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"registering the tables failed: {done.stderr}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--check-only", action="store_true",
                        help="run each query once per engine and compare, no timings")
    args = parser.parse_args()
    work = tempfile.TemporaryDirectory(prefix="aichemy-tpch-")
    data, warehouse = Path(work.name) / "data", Path(work.name) / "warehouse"
    generate(args.scale, data)
    # The generated files stay where they are, outside the warehouse.
    os.environ["AICHEMY_STORAGE__ALLOWED_LOCATIONS"] = f"file://{data}"
    register(warehouse, data)
    engines = [DuckDB(data, args.threads), Aichemy(warehouse, "hive"),
               Aichemy(warehouse, "iceberg")]
    texts = queries()
    times = {(e.name, q): [] for e in engines for q in texts}
    failures = []
    rounds = 1 if args.check_only else 1 + args.rounds
    peaks = {}
    try:
        for round_no in range(rounds):
            order = engines[round_no % len(engines):] + engines[:round_no % len(engines)]
            for q, sql in texts.items():
                expected = None
                for engine in order:
                    start = time.perf_counter()
                    try:
                        rows = normalise(engine.run(sql))
                    except Exception as e:  # noqa: BLE001 - reported with the query
                        failures.append((q, engine.name, str(e).splitlines()[0][:200]))
                        continue
                    elapsed = time.perf_counter() - start
                    if round_no > 0 or args.check_only:
                        times[(engine.name, q)].append(elapsed)
                    if round_no == 0:
                        if engine.name == "duckdb" or expected is None:
                            expected = expected or rows
                        if rows != expected:
                            failures.append((q, engine.name, "rows differ from "
                                             f"{order[0].name}: {rows[:2]} vs {expected[:2]}"))
        for engine in engines:
            peaks[engine.name] = engine.peak_memory()
    finally:
        for engine in engines:
            engine.close()
        work.cleanup()
    names = [e.name for e in engines]
    lines = []

    def say(line):
        print(line)
        lines.append(line)

    say(f"TPC-H SF{args.scale}, {args.threads} threads, "
        f"{'one round' if args.check_only else f'{args.rounds} measured rounds'}")
    say("query " + " ".join(f"{n + ' median/min s':>28}" for n in names) + "   ratio to duckdb")
    ratios = {n: [] for n in names}
    for q in texts:
        cells, base = [], times[("duckdb", q)]
        for n in names:
            t = times[(n, q)]
            cells.append(f"{statistics.median(t):13.3f}/{min(t):<13.3f}" if t else f"{'failed':>28}")
            if t and base:
                ratios[n].append(min(t) / min(base))
        say(f"q{q:<4} " + " ".join(cells) + "   " + " ".join(
            f"{min(times[(n, q)]) / min(base):5.2f}" if times[(n, q)] and base else "  -  "
            for n in names[1:]))
    for n in names[1:]:
        if ratios[n]:
            geo = math.exp(sum(math.log(r) for r in ratios[n]) / len(ratios[n]))
            say(f"geometric mean of {n} / duckdb over {len(ratios[n])} queries: {geo:.2f}")
    for name, peak in peaks.items():
        if peak:
            say(f"peak memory of {name}: {peak / 2**20:.0f} MiB")
    for failure in failures:
        say("FAILED q{} on {}: {}".format(*failure))
    if not args.check_only:
        results = HERE.parent / "results"
        results.mkdir(exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = results / f"tpch-sf{args.scale:g}-{stamp}.txt"
        path.write_text("\n".join(lines) + "\n")
        print(f"written to {path}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
