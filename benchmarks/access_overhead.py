"""The access-control overhead on TPC-H (issue 34): the 22 queries through `aichemy serve`
and the python `trino` client, with and without the 200-rule policy of
`access_policy.py` (a row filter and a column mask among them), in one run, the two servers'
queries interleaved; best of the rounds per query, and the geometric mean of the ratios.
A server, not a process per query: a shell process would also pay for reading the rules
at its start (about 25 ms for 200 rules), which a server pays once.

    AICHEMY_BIN=…/release/aichemy ~/.cache/aichemy/venv/bin/python \\
        benchmarks/access_overhead.py --data /tmp/tpch-sf1 [--rounds 3] [--threads 2]
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import trino

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "tpch"))
sys.path.insert(0, str(HERE.parent / "tests" / "clients"))

from access_policy import policy  # noqa: E402
from lakehouse import Server  # noqa: E402
from tpch import TABLES, queries  # noqa: E402

USER = "bench"


def run(server, sql):
    cursor = trino.dbapi.connect(host="127.0.0.1", port=server.http_port, user=USER,
                                 catalog="hive", schema="tpch").cursor()
    cursor.execute(sql)
    return cursor.fetchall()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    data = args.data.resolve()
    env = {"AICHEMY_STORAGE__ALLOWED_LOCATIONS": f"file://{data}",
           "AICHEMY_EXECUTION__THREADS": str(args.threads), "AICHEMY_LOG": "warn"}
    with tempfile.TemporaryDirectory(prefix="aichemy-access-") as folder:
        rules = Path(folder) / "rules.json"

        rules.write_text(json.dumps(policy(USER)))
        servers = {
            "none": Server(Path(folder) / "a", env=env),
            "policy": Server(Path(folder) / "b", "--access-control-config", str(rules),
                             env=env),
        }
        try:
            for server in servers.values():
                run(server, "CREATE SCHEMA hive.tpch")
                for table, columns in TABLES.items():
                    run(server, f"CREATE TABLE hive.tpch.{table} ({columns}) WITH "
                                f"(external_location = 'file://{data}/{table}', "
                                "format = 'PARQUET')")
            texts = queries()
            best = {}
            for round_ in range(args.rounds + 1):  # the first round warms the caches
                for q, sql in texts.items():
                    order = list(servers.items())
                    if (round_ + q) % 2:
                        order.reverse()
                    answers = {}
                    for name, server in order:
                        start = time.monotonic()
                        answers[name] = run(server, sql.strip().rstrip(";"))
                        seconds = time.monotonic() - start
                        if round_:
                            best[name, q] = min(best.get((name, q), math.inf), seconds)
                    assert answers["none"] == answers["policy"], f"q{q} answers differ"
        finally:
            for server in servers.values():
                server.stop()
    logs = []
    for q in texts:
        ratio = best["policy", q] / best["none", q]
        logs.append(math.log(ratio))
        print(f"q{q:<3} policy {best['policy', q]:.3f}  none {best['none', q]:.3f}  "
              f"ratio {ratio:.3f}")
    print(f"geomean of ratios (policy / none) {math.exp(sum(logs) / len(logs)):.3f}")


if __name__ == "__main__":
    main()
