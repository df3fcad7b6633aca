"""Speed of a federated PostgreSQL scan (issue #5's figures), side by side with the
physical floor: `psql -c "COPY (SELECT …) TO STDOUT" > /dev/null` on the same table.

    AICHEMY_BIN=target/debug/aichemy python benchmarks/postgres_scan.py

Starts a PostgreSQL server of its own (Debian's binaries, a temporary folder), loads a
1,000,000-row table, then times, each the best of three runs:
  - psql COPY of the whole table to /dev/null;
  - `aichemy sql` reading every row of the table (an aggregate the engine computes, so
    all rows cross the wire and are decoded);
  - the peak memory of that scan next to that of `SELECT 1` (rows stream through);
  - selective queries, with the remote statement aichemy sent and how many rows it
    returned (what crossed the wire).
Run by hand (not a test); prints one line per figure.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "clients"))

from postgres import PASSWORD, USER, Postgres, binary  # noqa: E402

BIN = os.environ.get("AICHEMY_BIN", "aichemy")
ROWS = 1_000_000


def best_of(runs, action):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    pg = Postgres()
    try:
        pg.psql("postgres", f"CREATE DATABASE bench OWNER {USER}")
        pg.psql("bench", f"""
            SET ROLE {USER};
            CREATE TABLE facts AS SELECT g AS id, g % 1000 AS bucket, md5(g::text) AS label,
                (g % 100000) * 0.01 AS amount, timestamp '2024-01-01' + g * interval '1 second' AS ts
            FROM generate_series(1, {ROWS}) g;
            ALTER TABLE facts ALTER COLUMN amount TYPE numeric(12,2);""")
        pg.psql("bench", "VACUUM ANALYZE facts")
        psql = [*pg.as_user, binary("psql"), "-X", "-h", pg.dir, "-p", str(pg.port), "-U", "postgres",
                "-d", "bench", "-c", "COPY (SELECT * FROM facts) TO STDOUT"]
        floor = best_of(3, lambda: subprocess.run(psql, stdout=subprocess.DEVNULL, check=True))
        print(f"psql COPY TO STDOUT > /dev/null, {ROWS:,} rows x 5 columns: {floor:.3f} s")

        work = tempfile.mkdtemp(prefix="aichemy-bench-")
        config = os.path.join(work, "aichemy.toml")
        with open(config, "w") as f:
            f.write(f'[catalogs.pg]\nconnector = "postgresql"\nurl = "{pg.url("bench")}"\n'
                    f'user = "{USER}"\npassword_env = "BENCH_PW"\n')
        env = {**os.environ, "BENCH_PW": PASSWORD}

        def aichemy(sql):
            done = subprocess.run(
                [BIN, "--config", config, "--warehouse", os.path.join(work, "wh"), "sql",
                 "--format", "json", "-e", sql],
                capture_output=True, text=True, env=env)
            assert done.returncode == 0, done.stderr
            return done.stdout

        startup = best_of(3, lambda: aichemy("SELECT 1"))
        # sum(length(label)) is not pushed down: every row comes to the engine.
        whole = "SELECT sum(id), sum(bucket), sum(length(label)), sum(amount), max(ts) FROM pg.public.facts"
        elapsed = best_of(3, lambda: aichemy(whole))
        print(f"aichemy scan of all {ROWS:,} rows x 5 columns (binary COPY, decoded to Arrow, "
              f"aggregated in the engine): {elapsed:.3f} s, of which {startup:.3f} s is "
              f"starting `aichemy sql`; {elapsed - startup:.3f} s for the scan "
              f"= {(elapsed - startup) / floor:.2f}x the psql floor")
        # Peak memory of one full scan next to `SELECT 1`: rows stream through, the table
        # is never held whole.
        def peak_mib(sql):
            process = subprocess.Popen(
                [BIN, "--config", config, "--warehouse", os.path.join(work, "wh"), "sql",
                 "--format", "json", "-e", sql],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            _, status, usage = os.wait4(process.pid, 0)
            assert status == 0
            return usage.ru_maxrss / 1024

        size = pg.psql("bench", "SELECT pg_size_pretty(pg_table_size('facts'))").strip()
        print(f"peak memory of `aichemy sql`: {peak_mib(whole):.0f} MiB scanning all rows "
              f"(the table is {size} in PostgreSQL), {peak_mib('SELECT 1'):.0f} MiB for SELECT 1")
        for sql in [
            "SELECT id, label FROM pg.public.facts WHERE bucket = 7",
            "SELECT count(*), sum(amount) FROM pg.public.facts WHERE bucket = 7",
            "SELECT id FROM pg.public.facts WHERE label LIKE 'abc%' LIMIT 5",
        ]:
            elapsed = best_of(3, lambda: aichemy(sql))
            plan = "\n".join(str(v) for line in aichemy("EXPLAIN " + sql).splitlines()
                             if line.startswith("{") for v in json.loads(line).values())
            remote = plan.split("remote_query=")[1].split("\n")[0]
            transferred = pg.psql("bench", f"SELECT count(*) FROM ({remote}) q").strip()
            print(f"{sql}: {elapsed:.3f} s; PostgreSQL ran [{remote}] and sent {transferred} rows")
    finally:
        pg.destroy()


if __name__ == "__main__":
    main()
