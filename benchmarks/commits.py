"""Commit speed and REST catalog latency (issue #6's figures):

    AICHEMY_BIN=target/debug/aichemy python benchmarks/commits.py [inserts] [loads]

Starts an S3 server of its own (moto, as the tests do) and two `aichemy serve` processes,
one with its warehouse on that S3 server and one on `file://`, each with an SQLite
metastore in a temporary folder. Then, side by side in one run:
  - commits per second of small INSERTs (one row each, one client, sequential) into one
    Iceberg table, on S3 and on file://;
  - the p50 and p99 of the Iceberg REST `loadTable` call (`GET
    /iceberg/v1/namespaces/b/tables/t`) against the file:// server, after the inserts (so
    the table has as many snapshots as inserts).
Run by hand (not a test); prints one line per figure.
"""

import os
import statistics
import sys
import tempfile
import time
import urllib.request

import trino

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "clients"))

from lakehouse import Server  # noqa: E402
from s3 import S3Server  # noqa: E402


def commits_per_second(server, inserts):
    cur = trino.dbapi.connect(host="127.0.0.1", port=server.http_port, user="bench").cursor()
    cur.execute("CREATE SCHEMA iceberg.b")
    cur.fetchall()
    cur.execute("CREATE TABLE iceberg.b.t (id bigint, note varchar)")
    cur.fetchall()
    start = time.perf_counter()
    for i in range(inserts):
        cur.execute(f"INSERT INTO iceberg.b.t VALUES ({i}, 'row {i}')")
        cur.fetchall()
    elapsed = time.perf_counter() - start
    cur.execute("SELECT count(*) FROM iceberg.b.t")
    assert cur.fetchall() == [[inserts]]
    return inserts / elapsed


def load_table_latencies(server, loads):
    url = f"http://127.0.0.1:{server.http_port}/iceberg/v1/namespaces/b/tables/t"
    times = []
    for _ in range(loads):
        start = time.perf_counter()
        with urllib.request.urlopen(url) as response:
            response.read()
        times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def main():
    inserts = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    loads = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    s3 = S3Server()
    folder = tempfile.mkdtemp(prefix="aichemy-bench-")
    on_s3 = Server("s3://lake/bench", env={
        **s3.env(), "AICHEMY_METASTORE__URL": f"sqlite://{folder}/s3-metastore.db"})
    on_file = Server(f"{folder}/wh")
    try:
        file_rate = commits_per_second(on_file, inserts)
        s3_rate = commits_per_second(on_s3, inserts)
        print(f"iceberg INSERT commits/s, {inserts} one-row inserts: "
              f"file:// {file_rate:.1f}, S3 (moto) {s3_rate:.1f}")
        p50, p99 = load_table_latencies(on_file, loads)
        print(f"REST loadTable ({loads} calls, {inserts} snapshots): "
              f"p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms")
        p50, p99 = load_table_latencies(on_s3, loads)
        print(f"REST loadTable on S3 ({loads} calls, {inserts} snapshots): "
              f"p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms")
    finally:
        on_file.stop()
        on_s3.stop()
        s3.stop()


if __name__ == "__main__":
    main()
