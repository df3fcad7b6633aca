"""A/B of two `aichemy` binaries (or settings) on TPC-H queries, for one engine change.

Each query runs through `aichemy sql` once per variant and round, the variants' order
alternating, and the best time of each is kept (process start included, a few ms).
Data: hive tables over the Parquet folder tpch.py generated (`--data`), registered in a
fresh warehouse. Run it with the harness's python (it reads tpch.py's table columns).

    ~/.cache/aichemy/venv/bin/python benchmarks/tpch/ab.py --data ~/.cache/aichemy/tpch-sf10 --rounds 3 \\
        new=target/release/aichemy old=/tmp/aichemy-before --queries 6,12
    # a DataFusion setting instead of a second binary:
    .../python benchmarks/tpch/ab.py --data ... \\
        push=BIN:AICHEMY_EXECUTION__DATAFUSION__EXECUTION__PARQUET__PUSHDOWN_FILTERS=true base=BIN

Never run it while a build runs on the same machine.
"""

import argparse
import math
import os
import pathlib
import subprocess
import tempfile
import time

from tpch import TABLES

QUERIES = pathlib.Path(__file__).parent / "queries"


def environment(data, threads, settings):
    return dict(
        os.environ,
        AICHEMY_STORAGE__ALLOWED_LOCATIONS=f"file://{data}",
        AICHEMY_EXECUTION__THREADS=str(threads),
        AICHEMY_LOG="warn",
        **settings,
    )


def register(binary, warehouse, data):
    """The TPC-H tables as hive external tables of `warehouse`."""
    statements = ["CREATE SCHEMA hive.tpch"] + [
        f"CREATE TABLE hive.tpch.{table} ({columns}) WITH "
        f"(external_location = 'file://{data}/{table}', format = 'PARQUET')"
        for table, columns in TABLES.items()
    ]
    done = subprocess.run([binary, "--warehouse", warehouse, "sql", "-e",
                           ";\n".join(statements) + ";"],
                          env=environment(data, 1, {}), capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"registering the tables failed: {done.stderr[-500:]}")


def variant(spec):
    name, rest = spec.split("=", 1)
    binary, *settings = rest.split(":")
    env = dict(kv.split("=", 1) for kv in settings)
    return name, binary, env


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=variant, help="NAME=BINARY[:ENV=VALUE...]")
    parser.add_argument("b", type=variant, help="NAME=BINARY[:ENV=VALUE...]")
    parser.add_argument("--data", required=True, help="folder of the TPC-H Parquet tables")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queries", default=",".join(str(q) for q in range(1, 23)))
    args = parser.parse_args()
    data = pathlib.Path(args.data).expanduser().resolve()
    queries = [int(q) for q in args.queries.split(",")]
    variants = [args.a, args.b]
    # A warehouse per variant: binaries of different metastore versions each open theirs.
    with tempfile.TemporaryDirectory(prefix="aichemy-ab-") as folder:
        warehouses = {}
        for name, binary, _ in variants:
            warehouses[name] = str(pathlib.Path(folder) / name)
            register(binary, warehouses[name], data)
        best = measure(variants, queries, args, data, warehouses)
    report(variants, queries, best)


def measure(variants, queries, args, data, warehouses):
    """The best seconds of each variant and query."""
    best = {}
    for round_ in range(args.rounds):
        for q in queries:
            order = variants if (round_ + q) % 2 == 0 else variants[::-1]
            for name, binary, settings in order:
                env = environment(data, args.threads, settings)
                command = [binary, "sql", "--warehouse", warehouses[name], "--catalog", "hive",
                           "--schema", "tpch", "-f", str(QUERIES / f"q{q}.sql")]
                start = time.monotonic()
                done = subprocess.run(command, env=env, capture_output=True, text=True)
                seconds = time.monotonic() - start
                if done.returncode:
                    raise SystemExit(f"{name} failed on q{q}: {done.stderr[-500:]}")
                best[name, q] = min(best.get((name, q), math.inf), seconds)
    return best


def report(variants, queries, best):
    (a, *_), (b, *_) = variants
    logs = []
    for q in queries:
        ratio = best[a, q] / best[b, q]
        logs.append(math.log(ratio))
        print(f"q{q:<3} {a} {best[a, q]:.2f}  {b} {best[b, q]:.2f}  ratio {ratio:.3f}")
    total_a = sum(best[a, q] for q in queries)
    total_b = sum(best[b, q] for q in queries)
    geomean = math.exp(sum(logs) / len(logs))
    print(f"sum {a} {total_a:.2f}  {b} {total_b:.2f}  geomean of ratios {geomean:.3f}")


if __name__ == "__main__":
    main()
