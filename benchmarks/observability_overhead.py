"""The cost of metrics and query history (issue 35): one binary as two servers, `on` (the
defaults) and `off` (`server.metrics_enabled=false`, `audit.query_history=false`), in one
run, their queries interleaved. `SELECT 1` through the python `trino` client: per-query
latency (median, p99) and queries per second, in alternating blocks. TPC-H: the 22
queries, best of the rounds per query, and the geometric mean of the ratios. Then the web
console's first load in headless Chromium: the time until the sign-in form shows, and the
bytes transferred (a cold cache).

    AICHEMY_BIN=…/release/aichemy ~/.cache/aichemy/venv/bin/python \\
        benchmarks/observability_overhead.py --data /tmp/tpch-sf1 [--rounds 3] [--select-1 2000]
"""

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trino

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "tpch"))
sys.path.insert(0, str(HERE.parent / "tests" / "clients"))

from lakehouse import Server  # noqa: E402
from tpch import TABLES, queries  # noqa: E402

OFF = {"AICHEMY_SERVER__METRICS_ENABLED": "false", "AICHEMY_AUDIT__QUERY_HISTORY": "false"}
BLOCK = 50


def connection(server):
    return trino.dbapi.connect(host="127.0.0.1", port=server.http_port, user="bench",
                               catalog="hive", schema="tpch")


def run(server, sql):
    cursor = connection(server).cursor()
    cursor.execute(sql)
    return cursor.fetchall()


def select_1(servers, total):
    """Latencies of `SELECT 1` per server, each on one kept connection (as a client pool
    would), in alternating blocks of 50."""
    cursors = {name: connection(server).cursor() for name, server in servers.items()}
    latencies = {name: [] for name in servers}
    for block in range(total // BLOCK + 1):  # the first block warms up
        order = list(cursors.items())
        if block % 2:
            order.reverse()
        for name, cursor in order:
            for _ in range(BLOCK):
                start = time.perf_counter()
                cursor.execute("SELECT 1")
                assert cursor.fetchall() == [[1]]
                if block:
                    latencies[name].append(time.perf_counter() - start)
    for name, seconds in latencies.items():
        seconds.sort()
        print(f"SELECT 1 {name:<4} median {statistics.median(seconds) * 1000:.2f} ms  "
              f"p99 {seconds[int(len(seconds) * 0.99)] * 1000:.2f} ms  "
              f"{len(seconds) / sum(seconds):.0f} queries/s over {len(seconds)}")
    on, off = (len(latencies[n]) / sum(latencies[n]) for n in ("on", "off"))
    print(f"SELECT 1 throughput on/off {on / off:.3f}")


def tpch(servers, rounds):
    texts = queries()
    best = {}
    for round_ in range(rounds + 1):  # the first round warms the caches
        for q, sql in texts.items():
            order = list(servers.items())
            if (round_ + q) % 2:
                order.reverse()
            answers = {}
            for name, server in order:
                start = time.monotonic()
                answers[name] = run(server, sql.strip().rstrip(";"))
                if round_:
                    best[name, q] = min(best.get((name, q), math.inf), time.monotonic() - start)
            assert answers["on"] == answers["off"], f"q{q} answers differ"
    logs = []
    for q in texts:
        ratio = best["on", q] / best["off", q]
        logs.append(math.log(ratio))
        print(f"q{q:<3} on {best['on', q]:.3f}  off {best['off', q]:.3f}  ratio {ratio:.3f}")
    print(f"TPC-H geomean of ratios (on / off) {math.exp(sum(logs) / len(logs)):.3f}")


def console_first_load(server):
    from selenium import webdriver
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver"))
    try:
        start = time.perf_counter()
        driver.get(f"http://127.0.0.1:{server.http_port}/ui/")
        while not driver.find_element("id", "login-user").is_displayed():
            time.sleep(0.005)
        shown = time.perf_counter() - start
        navigation = driver.execute_script(
            "const n = performance.getEntriesByType('navigation')[0];"
            "const r = performance.getEntriesByType('resource');"
            "return [n.transferSize + r.reduce((s, e) => s + e.transferSize, 0),"
            " n.decodedBodySize + r.reduce((s, e) => s + e.decodedBodySize, 0),"
            " n.loadEventEnd, r.length + 1];")
        transferred, decoded, loaded, requests = navigation
        print(f"console first load: sign-in form shown after {shown * 1000:.0f} ms, "
              f"load event at {loaded:.0f} ms, {requests} requests, {transferred} bytes "
              f"transferred ({decoded} decoded)")
    finally:
        driver.quit()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--select-1", type=int, default=2000)
    args = parser.parse_args()
    data = args.data.resolve()
    env = {"AICHEMY_STORAGE__ALLOWED_LOCATIONS": f"file://{data}",
           "AICHEMY_EXECUTION__THREADS": str(args.threads), "AICHEMY_LOG": "warn"}
    with tempfile.TemporaryDirectory(prefix="aichemy-observability-") as folder:
        servers = {"on": Server(Path(folder) / "on", env=env),
                   "off": Server(Path(folder) / "off", env={**env, **OFF})}
        try:
            for server in servers.values():
                run(server, "CREATE SCHEMA hive.tpch")
                for table, columns in TABLES.items():
                    run(server, f"CREATE TABLE hive.tpch.{table} ({columns}) WITH "
                                f"(external_location = 'file://{data}/{table}', "
                                "format = 'PARQUET')")
            select_1(servers, args.select_1)
            tpch(servers, args.rounds)
            console_first_load(servers["on"])
        finally:
            for server in servers.values():
                server.stop()


if __name__ == "__main__":
    main()
