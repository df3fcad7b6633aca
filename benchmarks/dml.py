"""Row-level change on TPC-H `lineitem` (issue 31): AIchemy's Iceberg and Delta tables next
to DuckDB's own table, loaded from the same Parquet file:

    AICHEMY_BIN=…/aichemy python benchmarks/dml.py --scale 1 [--threads 2] [--data DIR]

Generates lineitem with tpchgen-cli (into `--data`, reused when it is already there), loads
it into each engine (AIchemy: a hive external table copied with CREATE TABLE … AS SELECT;
DuckDB: CREATE TABLE … AS SELECT from the file) and then times, each step once, through
`aichemy serve` with the python `trino` client and through DuckDB's python module, both
limited to `--threads` threads:

  delete     DELETE of 1 % of the rows (l_orderkey % 100 = 0)
  update     UPDATE of another 1 % (l_discount + 0.01 where l_orderkey % 100 = 1)
  merge      MERGE of a 100,000-row change set: half of its rows update existing lines
             (l_orderkey % 120 = 3), half are new lines
  optimize   100 small INSERTs, then ALTER TABLE … EXECUTE optimize (DuckDB: CHECKPOINT)

and prints each step's seconds, AIchemy's bytes written (Iceberg: the snapshot summary's
`added-files-size`; Delta: the sizes of the commit's Add actions) and the rows each engine holds afterwards, which must agree. A step a
format cannot run yet is shown with its error name.
"""

import argparse
import json
import os
import re
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

# The column names (types such as decimal(15,2) hold commas too).
COLUMNS = re.findall(r"(?:^|,\s*)(\w+) ", TABLES["lineitem"])

# The change set: existing lines with a new quantity, and new lines (order keys no order
# has) that copy another 1/120 of the lines.
CHANGES = (
    "SELECT {existing} FROM {table} WHERE l_orderkey % 120 = 3 "
    "UNION ALL SELECT {new} FROM {table} WHERE l_orderkey % 120 = 5"
)
MERGE = (
    "MERGE INTO {table} t USING {changes} s "
    "ON t.l_orderkey = s.l_orderkey AND t.l_linenumber = s.l_linenumber "
    "WHEN MATCHED THEN UPDATE SET l_quantity = s.l_quantity "
    "WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({values})"
)
STEPS = {
    "delete": "DELETE FROM {table} WHERE l_orderkey % 100 = 0",
    "update": "UPDATE {table} SET l_discount = l_discount + 0.01 WHERE l_orderkey % 100 = 1",
}


def changes_query(table):
    existing = ", ".join("l_quantity + 1 AS l_quantity" if c == "l_quantity" else c
                         for c in COLUMNS)
    new = ", ".join("l_orderkey + 1000000000 AS l_orderkey" if c == "l_orderkey" else c
                    for c in COLUMNS)
    return CHANGES.format(existing=existing, new=new, table=table)


def merge_statement(table, changes):
    return MERGE.format(table=table, changes=changes, columns=", ".join(COLUMNS),
                        values=", ".join(f"s.{c}" for c in COLUMNS))


def small_insert(table, i):
    values = ", ".join(
        {"l_orderkey": str(2_000_000_000 + i), "l_linenumber": "1"}.get(c, "NULL")
        for c in COLUMNS)
    return f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({values})"


def timed(run):
    started = time.perf_counter()
    try:
        run()
    except Exception as e:  # noqa: BLE001 — a step a format cannot run is reported
        return getattr(e, "error_name", type(e).__name__)
    return time.perf_counter() - started


class Aichemy:
    def __init__(self, warehouse, data, fmt, threads):
        self.table = f"{fmt}.dml.lineitem"
        self.fmt = fmt
        self.warehouse = Path(warehouse)
        # The Parquet file lies outside the warehouse.
        env = {**os.environ, "AICHEMY_LOG": "warn", "AICHEMY_EXECUTION__THREADS": str(threads),
               "AICHEMY_STORAGE__ALLOWED_LOCATIONS": f"file://{data}"}
        done = subprocess.run(
            [BIN, "--warehouse", str(warehouse), "sql", "-e",
             f"CREATE SCHEMA IF NOT EXISTS hive.dml; CREATE SCHEMA {fmt}.dml; "
             f"CREATE TABLE IF NOT EXISTS hive.dml.lineitem_files ({TABLES['lineitem']}) WITH "
             f"(external_location = 'file://{data}/lineitem', format = 'PARQUET')"],
            capture_output=True, text=True, env=env)
        if done.returncode != 0:
            sys.exit(f"registering lineitem failed: {done.stderr}")
        self.server = Server(warehouse, env=env)
        self.cursor = trino.dbapi.connect(host="127.0.0.1", port=self.server.http_port,
                                          user="bench", http_scheme="http").cursor()

    def run(self, sql):
        self.cursor.execute(sql)
        return self.cursor.fetchall()

    def load(self):
        return timed(lambda: self.run(
            f"CREATE TABLE {self.table} AS SELECT * FROM hive.dml.lineitem_files"))

    def prepare_changes(self):
        self.run(f"CREATE TABLE {self.fmt}.dml.changes AS {changes_query(self.table)}")

    def merge(self):
        return timed(lambda: self.run(merge_statement(self.table, f"{self.fmt}.dml.changes")))

    def optimize(self):
        for i in range(100):
            self.run(small_insert(self.table, i))
        return timed(lambda: self.run(f"ALTER TABLE {self.table} EXECUTE optimize"))

    def written(self):
        """Bytes the latest snapshot (Iceberg) or commit (Delta: its Add actions) added."""
        if self.fmt == "delta":
            log = self.warehouse / "delta" / "dml" / "lineitem" / "_delta_log"
            newest = max(log.glob("*.json"))
            actions = [json.loads(line) for line in newest.read_text().splitlines() if line]
            return sum(a["add"]["size"] for a in actions if "add" in a)
        if self.fmt != "iceberg":
            return None
        rows = self.run(
            "SELECT element_at(summary, 'added-files-size') FROM "
            f'{self.fmt}.dml."lineitem$snapshots" ORDER BY committed_at DESC LIMIT 1')
        return int(rows[0][0] or 0)

    def rows(self):
        return self.run(f"SELECT count(*) FROM {self.table}")[0][0]

    def close(self):
        self.server.stop()


class DuckDB:
    table = "lineitem"

    def __init__(self, folder, data, threads):
        self.connection = duckdb.connect(str(folder / "dml.duckdb"))
        self.connection.execute(f"SET threads = {threads}")
        self.data = data

    def run(self, sql):
        return self.connection.execute(sql).fetchall()

    def load(self):
        return timed(lambda: self.run(
            f"CREATE TABLE lineitem AS SELECT * FROM '{self.data}/lineitem/*.parquet'"))

    def prepare_changes(self):
        self.run(f"CREATE TABLE changes AS {changes_query(self.table)}")

    def merge(self):
        return timed(lambda: self.run(merge_statement(self.table, "changes")))

    def optimize(self):
        for i in range(100):
            self.run(small_insert(self.table, i))
        return timed(lambda: self.run("CHECKPOINT"))

    def written(self):
        return None

    def rows(self):
        return self.run("SELECT count(*) FROM lineitem")[0][0]

    def close(self):
        self.connection.close()


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
        engines = {
            "duckdb": lambda: DuckDB(tmp, data, args.threads),
            "aichemy-iceberg": lambda: Aichemy(tmp / "wh", data, "iceberg", args.threads),
            "aichemy-delta": lambda: Aichemy(tmp / "wh", data, "delta", args.threads),
        }
        results = {}
        for name, open_engine in engines.items():
            engine = open_engine()
            try:
                row = {"load": engine.load()}
                engine.prepare_changes()
                for step, sql in STEPS.items():
                    row[step] = timed(lambda sql=sql: engine.run(sql.format(table=engine.table)))
                    row[f"{step} bytes"] = engine.written()
                row["merge"] = engine.merge()
                row["merge bytes"] = engine.written()
                row["optimize"] = engine.optimize()
                row["optimize bytes"] = engine.written()
                row["rows"] = engine.rows()
            finally:
                engine.close()
            results[name] = row
            print(name, row, flush=True)
    steps = ["load", "delete", "update", "merge", "optimize"]
    print(f"\nlineitem at scale {args.scale:g}, {args.threads} threads; seconds "
          "(AIchemy's bytes written)")
    print(f"{'engine':<18}" + "".join(f"{s:>22}" for s in steps) + f"{'rows':>12}")
    for name, row in results.items():
        cells = []
        for step in steps:
            value = row[step]
            text = f"{value:.2f}" if isinstance(value, float) else str(value)
            written = row.get(f"{step} bytes")
            if written is not None and isinstance(value, float):
                text += f" ({written / 2**20:.0f} MiB)"
            cells.append(f"{text:>22}")
        print(f"{name:<18}" + "".join(cells) + f"{row['rows']:>12}")
    counts = {row["rows"] for row in results.values()}
    if len(counts) != 1:
        sys.exit(f"the engines disagree on the rows left: {results}")


if __name__ == "__main__":
    main()
