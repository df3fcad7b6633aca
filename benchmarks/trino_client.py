"""Speed of `aichemy serve` as the python `trino` client sees it (issue #4's figures):
rows per second fetched for a 1,000,000-row, 5-column SELECT, and the median latency of
`SELECT 1` over 1,000 runs on a kept-alive connection.

    AICHEMY_BIN=target/release/aichemy python benchmarks/trino_client.py [--https]

With --https the client connects over HTTPS with a password (the server's generated
certificate, a password file made with `aichemy user add`). Run by hand (not a test);
prints one line per figure.
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
    https = "--https" in sys.argv[1:]
    warehouse = tempfile.mkdtemp()
    port, https_port = free_port(), free_port()
    args = [BIN, "--warehouse", warehouse, "serve", "--bind", "127.0.0.1",
            "--http-port", str(port), "--https-port", str(https_port)]
    client = {"host": "127.0.0.1", "port": port, "user": "bench"}
    if https:
        password_file = os.path.join(warehouse, "password.db")
        subprocess.run([BIN, "user", "add", "bench", "--password-file", password_file],
                       input="bench-password\n", text=True, check=True)
        args += ["--password-file", password_file]
        # requests prefers these variables over verify=False.
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            os.environ.pop(name, None)
        import urllib3
        from trino.auth import BasicAuthentication
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        client.update(port=https_port, http_scheme="https", verify=False,
                      auth=BasicAuthentication("bench", "bench-password"))
    server = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/info", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        conn = connect(**client)
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
        print(f"{'https' if https else 'http'} 1M x 5 SELECT: {rows} rows in {seconds:.2f} s = {rows / seconds:,.0f} rows/s")
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
