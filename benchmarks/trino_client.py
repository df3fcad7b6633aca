"""Speed of `aichemy serve` as the python `trino` client sees it (issue #4's figures):
rows per second fetched for a 1,000,000-row, 5-column SELECT, and the median latency of
`SELECT 1` over 1,000 runs on a kept-alive connection.

    AICHEMY_BIN=target/release/aichemy python benchmarks/trino_client.py

Run by hand (not a test); prints one line per figure.
"""

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from trino.dbapi import connect

BIN = os.environ.get("AICHEMY_BIN", "aichemy")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    warehouse = tempfile.mkdtemp()
    port = free_port()
    server = subprocess.Popen([BIN, "--warehouse", warehouse, "serve", "--bind", "127.0.0.1",
                               "--http-port", str(port)])
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/info", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        conn = connect(host="127.0.0.1", port=port, user="bench")
        cur = conn.cursor()
        started = time.perf_counter()
        cur.execute("SELECT value AS a, value * 2 AS b, CAST(value AS DOUBLE) / 3 AS c, "
                    "concat('row-', CAST(value AS VARCHAR)) AS d, value % 7 = 0 AS e "
                    "FROM generate_series(1, 1000000)")
        rows = 0
        while True:
            batch = cur.fetchmany(10000)
            if not batch:
                break
            rows += len(batch)
        seconds = time.perf_counter() - started
        print(f"1M x 5 SELECT: {rows} rows in {seconds:.2f} s = {rows / seconds:,.0f} rows/s")
        latencies = []
        for _ in range(1000):
            started = time.perf_counter()
            cur.execute("SELECT 1")
            cur.fetchall()
            latencies.append(time.perf_counter() - started)
        print(f"SELECT 1: median {statistics.median(latencies) * 1000:.2f} ms, "
              f"p95 {sorted(latencies)[949] * 1000:.2f} ms over 1000 runs")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
