"""PostgreSQL change data capture (issue 32): AIchemy's postgres-cdc job next to
`pg_recvlogical` reading the same pgoutput stream, on one PostgreSQL from Debian's
packages (tests/clients/postgres.py, wal_level=logical):

    AICHEMY_BIN=…/release/aichemy python benchmarks/cdc.py [--changes 500000]

1. a table `events` (bigint key, two numbers, a text of ~60 bytes) and a publication;
   AIchemy's job (mode append, the flat bronze shape) and a second slot for the floor are
   created while it is empty, and the job is paused;
2. `--changes` changes are made, untimed: 70 % inserts, 20 % updates, 10 % deletes, in
   transactions of 1,000;
3. floor: `pg_recvlogical --start -E <end LSN>` on the second slot with the same
   publication (proto_version 1), output to /dev/null; its seconds and changes/s;
4. AIchemy: the job resumed; the seconds until the bronze table holds every change, the
   server's CPU seconds meanwhile (/proc), and so changes/s and changes per CPU-second.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "clients"))

import trino  # noqa: E402

from ingest import cpu_seconds  # noqa: E402
from lakehouse import Server  # noqa: E402
from postgres import PASSWORD, USER, Postgres, binary  # noqa: E402


def query(server, sql):
    cur = trino.dbapi.connect(host="127.0.0.1", port=server.http_port, user="admin").cursor()
    cur.execute(sql)
    return cur.fetchall()


def load(pg, changes):
    """Changes in transactions of 1,000: 700 inserts, 200 updates, 100 deletes."""
    batches = changes // 1000
    script = []
    for b in range(batches):
        base = b * 700
        script.append("BEGIN;")
        script.append(f"INSERT INTO events SELECT g, g % 977, g * 0.5, "
                      f"'event payload ' || md5(g::text) FROM generate_series({base}, "
                      f"{base + 699}) g;")
        # Rows of the previous transaction updated (the first: its own), rows of this one
        # deleted: every statement changes exactly the rows it names.
        prev = max(b - 1, 0) * 700
        script.append(f"UPDATE events SET a = a + 1 WHERE id BETWEEN {prev} AND "
                      f"{prev + 199};")
        script.append(f"DELETE FROM events WHERE id BETWEEN {base + 600} AND "
                      f"{base + 699};")
        script.append("COMMIT;")
    pg.psql("shop", f"SET ROLE {USER};\n" + "\n".join(script))
    return batches * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=500_000)
    args = parser.parse_args()
    pg = Postgres(logical=True)
    work = Path(tempfile.mkdtemp(prefix="aichemy-cdc-bench-"))
    server = None
    try:
        pg.psql("postgres", f"ALTER USER {USER} REPLICATION")
        pg.psql("postgres", f"CREATE DATABASE shop OWNER {USER}")
        pg.psql("shop", f"SET ROLE {USER}; CREATE TABLE events (id bigint PRIMARY KEY, "
                        "a integer, b numeric(12,2), note text); "
                        "CREATE PUBLICATION bench FOR TABLE events")
        server = Server(work / "wh")
        query(server, "CREATE INGESTION bench INTO iceberg.bench_bronze WITH ("
                      "connector = 'postgres-cdc', hostname = '127.0.0.1', "
                      f"port = '{pg.port}', username = '{USER}', password = '{PASSWORD}', "
                      "database.name = 'shop', publication.name = 'bench', "
                      "max.batch.messages = '200000')")
        deadline = time.monotonic() + 60
        while True:
            state = query(server, "SELECT state FROM system.runtime.ingestions")
            if state == [["running"]]:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the job did not start: {state}")
            time.sleep(0.5)
        query(server, "ALTER INGESTION bench PAUSE")
        time.sleep(2)
        pg.psql("shop", "SELECT pg_create_logical_replication_slot('floor', 'pgoutput')")
        made = load(pg, args.changes)
        end = pg.psql("shop", "SELECT pg_current_wal_lsn()").strip()
        print(f"{made} changes made, WAL end {end}")

        started = time.monotonic()
        subprocess.run(
            [*pg.as_user, binary("pg_recvlogical"), "-h", pg.dir, "-p", str(pg.port),
             "-U", "postgres", "-d", "shop", "--slot", "floor", "--start", "-E", end,
             "-o", "proto_version=1", "-o", "publication_names=bench", "-f", "/dev/null",
             "--no-loop"],
            check=True, capture_output=True,
        )
        floor = time.monotonic() - started
        print(f"floor  pg_recvlogical: {floor:.2f} s, {made / floor:,.0f} changes/s")

        cpu_before = cpu_seconds(server.process.pid)
        started = time.monotonic()
        query(server, "ALTER INGESTION bench RESUME")
        while query(server, "SELECT count(*) FROM iceberg.bench_bronze.events")[0][0] < made:
            time.sleep(0.2)
        took = time.monotonic() - started
        cpu = cpu_seconds(server.process.pid) - cpu_before
        print(f"aichemy postgres-cdc -> iceberg: {took:.2f} s, {made / took:,.0f} changes/s, "
              f"{cpu:.1f} CPU s, {made / cpu:,.0f} changes per CPU-second")
    finally:
        if server:
            server.stop()
        pg.destroy()


if __name__ == "__main__":
    main()
