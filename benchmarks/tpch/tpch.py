"""TPC-H on AIchemy, DuckDB and Polars over the same Parquet files (issue #7):

    AICHEMY_BIN=…/aichemy python benchmarks/tpch/tpch.py --scale 10 [--rounds 3]
        [--threads 2] [--memory-gib 2] [--engines duckdb,sql-hive,…] [--data DIR]

Generates TPC-H Parquet with tpchgen-cli (into `--data`, reused when it is already
there), registers the files as `hive` external tables of a fresh warehouse and copies them
into `iceberg` tables with CREATE TABLE … AS SELECT, then runs the 22 queries of
`queries/` (Trino dialect) through these engines, each in its own process:

  sql-hive, sql-iceberg      AIchemy in-process: `aichemy sql` reading statements on stdin
  serve-hive, serve-iceberg  `aichemy serve` with the python `trino` client
  duckdb, polars             the same files (Polars through its SQL context)

One warm-up round and `--rounds` measured ones, engines interleaved query by query with
their order rotating each round, every engine limited to `--threads` threads (and AIchemy
and DuckDB to `--memory-gib` GiB). Checks that every engine returns DuckDB's rows (numbers
rounded to two places) and prints per query the median and minimum time of each engine
and its ratio to DuckDB, the geometric mean of the ratios and each process's peak
memory; a measured run also writes that table to benchmarks/results/.
"""

import argparse
import datetime
import decimal
import json
import math
import multiprocessing
import os
import queue
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import trino

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests" / "clients"))

from lakehouse import BIN, Server  # noqa: E402

ENGINES = ["duckdb", "polars", "sql-hive", "sql-iceberg", "serve-hive", "serve-iceberg"]

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
    if (folder / "lineitem").is_dir():
        return
    # The venv's tpchgen-cli (tests/clients/requirements.txt), else one on the PATH.
    local = Path(sys.executable).parent / "tpchgen-cli"
    command = str(local) if local.exists() else "tpchgen-cli"
    subprocess.run([command, "parquet", "-s", str(scale), "--parts=1",
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


def vm_hwm(pid):
    """A process's peak resident memory in bytes (Linux's VmHWM)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


class AichemyServe:
    """`aichemy serve`, queried with the python trino client."""

    def __init__(self, warehouse, catalog, env):
        self.name = f"serve-{catalog}"
        self.server = Server(warehouse, env=env)
        self.cursor = trino.dbapi.connect(host="127.0.0.1", port=self.server.http_port,
                                          user="bench", catalog=catalog,
                                          schema="tpch").cursor()

    def run(self, sql):
        self.cursor.execute(sql)
        return self.cursor.fetchall()

    def peak_memory(self):
        return vm_hwm(self.server.process.pid)

    def close(self):
        self.server.stop()


END = "aichemy_bench_end"


class AichemySql:
    """AIchemy in-process: one `aichemy sql` process running the statements written to its
    standard input; a marker statement after each query tells where its rows end."""

    def __init__(self, warehouse, catalog, env):
        self.name = f"sql-{catalog}"
        self.process = subprocess.Popen(
            [BIN, "--warehouse", str(warehouse), "sql", "--format", "json", "--ignore-errors",
             "--catalog", catalog, "--schema", "tpch"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **env})
        self.errors = queue.Queue()
        threading.Thread(target=self._read_errors, daemon=True).start()

    def _read_errors(self):
        for line in self.process.stderr:
            if line.startswith("Query failed:"):
                self.errors.put(line.strip())

    def run(self, sql):
        self.process.stdin.write(f"{sql.strip().rstrip(';')};\nSELECT 1 AS {END};\n")
        self.process.stdin.flush()
        rows = []
        for line in self.process.stdout:
            row = json.loads(line, parse_float=decimal.Decimal)
            if list(row) == [END]:
                break
            rows.append(tuple(row.values()))
        else:
            raise RuntimeError(f"aichemy sql ended (exit {self.process.wait()})")
        try:
            raise RuntimeError(self.errors.get(timeout=0.05))
        except queue.Empty:
            return rows

    def peak_memory(self):
        return vm_hwm(self.process.pid)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


def serve_worker(connection, engine, data, threads, memory_limit):
    """The body of an engine's own process: answers SQL texts with rows or an error."""
    if engine == "polars":
        os.environ["POLARS_MAX_THREADS"] = str(threads)
        import polars
        context = polars.SQLContext()
        for table in TABLES:
            context.register(table, polars.scan_parquet(f"{data}/{table}/*.parquet"))

        def run(sql):
            return context.execute(sql, eager=True).rows()
    else:
        import duckdb
        con = duckdb.connect()
        con.execute(f"SET threads = {threads}")
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}GiB'")
        for table in TABLES:
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM "
                        f"read_parquet('{data}/{table}/*.parquet')")

        def run(sql):
            return con.execute(sql).fetchall()
    while True:
        sql = connection.recv()
        if sql is None:
            connection.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
            return
        try:
            connection.send(("rows", run(sql)))
        except Exception as e:  # noqa: BLE001 - reported with the query
            connection.send(("error", f"{type(e).__name__}: {e}"))


class Worker:
    """DuckDB or Polars in a process of its own, so that its memory is its own."""

    def __init__(self, engine, data, threads, memory_limit):
        self.name = engine
        context = multiprocessing.get_context("spawn")
        self.connection, theirs = context.Pipe()
        self.process = context.Process(
            target=serve_worker, args=(theirs, engine, data, threads, memory_limit))
        self.process.start()
        self.peak = None

    def run(self, sql):
        self.connection.send(sql)
        kind, value = self.connection.recv()
        if kind == "error":
            raise RuntimeError(value)
        return value

    def peak_memory(self):
        if self.peak is None and self.process.is_alive():
            self.connection.send(None)
            self.peak = self.connection.recv()
            self.process.join()
        return self.peak

    def close(self):
        self.peak_memory()


def register(warehouse, data, iceberg):
    """Hive external tables on the generated files, and iceberg copies of them."""
    statements = ["CREATE SCHEMA hive.tpch"] + (["CREATE SCHEMA iceberg.tpch"] if iceberg else [])
    for table, columns in TABLES.items():
        statements.append(f"CREATE TABLE hive.tpch.{table} ({columns}) WITH "
                          f"(external_location = 'file://{data}/{table}', format = 'PARQUET')")
        if iceberg:
            statements.append(
                f"CREATE TABLE iceberg.tpch.{table} AS SELECT * FROM hive.tpch.{table}")
    done = subprocess.run([BIN, "--warehouse", str(warehouse), "sql", "-e",
                           ";\n".join(statements) + ";"], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"registering the tables failed: {done.stderr}")


def start(name, data, warehouse, args):
    env = {"AICHEMY_LOG": "warn", "AICHEMY_EXECUTION__THREADS": str(args.threads)}
    if args.memory_gib:
        # Trino data sizes, as AIchemy reads them, count in powers of 1024.
        env["AICHEMY_EXECUTION__MEMORY_LIMIT"] = f"{args.memory_gib:g}GB"
    kind, _, catalog = name.partition("-")
    if kind == "sql":
        return AichemySql(warehouse, catalog, env)
    if kind == "serve":
        return AichemyServe(warehouse, catalog, env)
    return Worker(name, data, args.threads, args.memory_gib)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-gib", type=float,
                        help="memory limit of AIchemy and DuckDB in GiB")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help=f"comma-separated, from {','.join(ENGINES)}; duckdb always runs")
    parser.add_argument("--queries", help="comma-separated query numbers (default all 22)")
    parser.add_argument("--data", type=Path,
                        help="folder for the generated files, kept and reused")
    parser.add_argument("--check-only", action="store_true",
                        help="run each query once per engine and compare, no timings")
    args = parser.parse_args()
    names = ["duckdb"] + [n for n in args.engines.split(",") if n and n != "duckdb"]
    unknown = set(names) - set(ENGINES)
    if unknown:
        sys.exit(f"unknown engines: {', '.join(sorted(unknown))}")
    work = tempfile.TemporaryDirectory(prefix="aichemy-tpch-")
    data = (args.data or Path(work.name) / "data").resolve()
    warehouse = Path(work.name) / "warehouse"
    generate(args.scale, data)
    # The generated files stay where they are, outside the warehouse.
    os.environ["AICHEMY_STORAGE__ALLOWED_LOCATIONS"] = f"file://{data}"
    register(warehouse, data, any(n.endswith("iceberg") for n in names))
    texts = queries()
    if args.queries:
        texts = {q: texts[q] for q in map(int, args.queries.split(","))}
    engines = []
    times = {(n, q): [] for n in names for q in texts}
    failures = []
    rounds = 1 if args.check_only else 1 + args.rounds
    peaks = {}
    try:
        engines = [start(name, data, warehouse, args) for name in names]
        for round_no in range(rounds):
            order = engines[round_no % len(engines):] + engines[:round_no % len(engines)]
            for q, sql in texts.items():
                results = {}
                for engine in order:
                    started = time.perf_counter()
                    try:
                        rows = engine.run(sql)
                    except Exception as e:  # noqa: BLE001 - reported with the query
                        failures.append((q, engine.name, str(e).splitlines()[0][:300]))
                        continue
                    elapsed = time.perf_counter() - started
                    if round_no > 0 or args.check_only:
                        times[(engine.name, q)].append(elapsed)
                    if round_no == 0:
                        results[engine.name] = normalise(rows)
                expected = results.get("duckdb")
                for name, rows in results.items():
                    if expected is not None and rows != expected:
                        failures.append((q, name, f"rows differ from duckdb: {rows[:2]} vs "
                                                  f"{expected[:2]}"))
        for engine in engines:
            peaks[engine.name] = engine.peak_memory()
    finally:
        for engine in engines:
            engine.close()
        work.cleanup()
    report(args, names, texts, times, peaks, failures)


def report(args, names, texts, times, peaks, failures):
    lines = []

    def say(line):
        print(line)
        lines.append(line)

    say(f"TPC-H SF{args.scale:g}, {args.threads} threads"
        f"{f', memory limit {args.memory_gib:g} GiB' if args.memory_gib else ''}, "
        f"{'one round' if args.check_only else f'{args.rounds} measured rounds'}; "
        "seconds as median/min; ratio: min over duckdb's min")
    say("query " + "".join(f"{n:>21}" for n in names) + "   ratio " +
        "".join(f"{n:>14}" for n in names[1:]))
    ratios = {n: [] for n in names}
    totals = {n: 0.0 for n in names}
    for q in texts:
        base = times[("duckdb", q)]
        cells, shares = [], []
        for n in names:
            t = times[(n, q)]
            cells.append(f"{statistics.median(t):>11.3f}/{min(t):<9.3f}" if t
                         else f"{'failed':>21}")
            if t:
                totals[n] += min(t)
            if n != "duckdb":
                if t and base:
                    ratios[n].append(min(t) / min(base))
                    shares.append(f"{min(t) / min(base):>14.2f}")
                else:
                    shares.append(f"{'-':>14}")
        say(f"q{q:<4} " + "".join(cells) + "         " + "".join(shares))
    say("sum of minimums " + "  ".join(f"{n} {totals[n]:.2f}" for n in names))
    for n in names[1:]:
        if ratios[n]:
            geo = math.exp(sum(math.log(r) for r in ratios[n]) / len(ratios[n]))
            say(f"geometric mean of {n} / duckdb over {len(ratios[n])} queries: {geo:.2f}"
                f" (worst {max(ratios[n]):.2f})")
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
