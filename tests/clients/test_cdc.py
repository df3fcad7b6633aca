"""Change data capture from PostgreSQL: a real PostgreSQL from Debian's packages with
wal_level=logical, jobs declared with CREATE INGESTION through the python `trino` client,
the source changed with psql, and the lakehouse tables read back through the client.

A job creates its publication and slot, reads the tables in the snapshot the slot
exports, then streams the changes after it: bronze tables get every change once (flat or
in Debezium's envelope), mirror tables hold the source's current rows. Exactly once: each
table records the LSN it holds, the slot is confirmed no further, so a server killed with
SIGKILL at any moment and started again neither loses nor repeats a change.

Run by scripts/test.sh with AICHEMY_BIN set to the debug binary.
"""

import random
import signal
import threading
import time
from decimal import Decimal

import pytest

from lakehouse import Server
from postgres import PASSWORD, USER, Postgres
from test_ingestion import count, cursor, ingestion, kill_and_start_again, query, wait_for


@pytest.fixture()
def source():
    """A logical-decoding PostgreSQL with a database `shop` owned by the CDC user (who
    may replicate)."""
    postgres = Postgres(logical=True)
    postgres.psql("postgres", f"ALTER USER {USER} REPLICATION")
    postgres.psql("postgres", f"CREATE DATABASE shop OWNER {USER}")
    yield postgres
    postgres.destroy()


def as_owner(postgres, sql):
    """Runs SQL in `shop` as the CDC user (so that it owns what it creates)."""
    return postgres.psql("shop", f"SET ROLE {USER}; {sql}")


def cdc_job(server, postgres, name, target, extra="", interval=300, host="127.0.0.1"):
    query(
        server,
        f"CREATE INGESTION {name} INTO {target} WITH ("
        f"connector = 'postgres-cdc', hostname = '{host}', port = '{postgres.port}', "
        f"username = '{USER}', password = '{PASSWORD}', database.name = 'shop', "
        f"commit.interval.ms = '{interval}'{extra})",
    )


def lsn(text):
    high, low = text.split()[0].split("/")
    return (int(high, 16) << 32) + int(low, 16)


def confirmed_flush(postgres, slot):
    out = postgres.psql(
        "shop", f"SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"
    ).strip()
    return lsn(out) if out else None


def source_rows(postgres, sql):
    """Rows of a psql query, '|' separated, as lists of text (None for NULL)."""
    out = postgres.psql("shop", sql)
    return [[None if v == "" else v for v in line.split("|")] for line in out.splitlines() if line]


def test_snapshot_then_changes_into_bronze_mirror_and_debezium_tables(source, warehouse):
    pg = source
    as_owner(pg, """
        CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL,
            balance numeric(10,2), joined timestamptz, active boolean, photo bytea);
        CREATE TABLE orders (id bigint PRIMARY KEY, customer integer, amount numeric(12,2),
            note text);
        CREATE TABLE debezium_signal (id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL,
            data varchar(2048));
        CREATE PUBLICATION shop_pub FOR TABLE customers, orders;
        INSERT INTO customers SELECT g, 'customer ' || g, g * 1.5,
            '2024-05-01 10:00:00+02'::timestamptz + g * interval '1 hour', g % 2 = 0,
            '\\x0aff'::bytea FROM generate_series(1, 100) g;
        INSERT INTO orders SELECT g, g % 100 + 1, g * 10.25, 'order ' || g
            FROM generate_series(1, 300) g;
    """)
    server = Server(warehouse)
    try:
        cdc_job(server, pg, "shop_bronze", "iceberg.shop_bronze",
                ", table.name = 'customers, orders', "
                "signal.data.collection = 'public.debezium_signal'")
        # The mirror follows a publication the user manages.
        cdc_job(server, pg, "shop_mirror", "iceberg.shop_silver",
                ", publication.name = 'shop_pub', mode = 'upsert'")
        cdc_job(server, pg, "orders_raw", "iceberg.shop_raw.orders",
                ", table.name = 'orders', format = 'debezium'")

        # The snapshot: every existing row once, as op r.
        wait_for(lambda: count(server, "iceberg.shop_bronze.orders") == 300, what="snapshot")
        wait_for(lambda: count(server, "iceberg.shop_silver.customers") == 100,
                 what="mirror snapshot")
        assert query(server, "SELECT _op, count(*) FROM iceberg.shop_bronze.customers "
                              "GROUP BY 1") == [["r", 100]]
        [[name, balance, joined, active, photo]] = query(
            server, "SELECT name, balance, joined, active, photo "
                    "FROM iceberg.shop_silver.customers WHERE id = 2")
        assert (name, balance, active, photo) == ("customer 2", Decimal("3.00"), True, b"\n\xff")
        assert joined.isoformat().startswith("2024-05-01T10:00:00")

        # Changes: each in its own transaction or many in one; TRUNCATE; a new column.
        as_owner(pg, """
            INSERT INTO customers VALUES (101, 'new', 0, now(), true, NULL);
            UPDATE customers SET balance = balance + 100 WHERE id <= 10;
            DELETE FROM customers WHERE id BETWEEN 91 AND 95;
            BEGIN;
            INSERT INTO orders SELECT g, 1, 1, 'late' FROM generate_series(301, 310) g;
            DELETE FROM orders WHERE id <= 5;
            UPDATE orders SET note = 'changed' WHERE id = 6;
            COMMIT;
            ALTER TABLE customers ADD COLUMN tier text;
            UPDATE customers SET tier = 'gold' WHERE id = 1;
        """)
        wait_for(lambda: query(server, "SELECT tier FROM iceberg.shop_silver.customers "
                                       "WHERE id = 1") == [["gold"]], what="new column")
        expected_customers = [
            [int(r[0]), r[1], Decimal(r[2]), r[3]]
            for r in source_rows(pg, "SELECT id, name, balance, tier FROM customers ORDER BY id")
        ]
        wait_for(lambda: query(server, "SELECT id, name, balance, tier FROM "
                                       "iceberg.shop_silver.customers ORDER BY id")
                 == expected_customers, what="mirror of customers")
        wait_for(lambda: count(server, "iceberg.shop_silver.orders") == 305, what="orders")
        assert query(server, "SELECT note FROM iceberg.shop_silver.orders WHERE id = 6") == \
            [["changed"]]
        assert query(server, "SELECT _op, count(*) FROM iceberg.shop_bronze.customers "
                             "GROUP BY 1 ORDER BY 1") == \
            [["c", 1], ["d", 5], ["r", 100], ["u", 11]]
        # A delete carries the key (REPLICA IDENTITY DEFAULT); commit LSNs and order kept.
        assert query(server, "SELECT count(*) FROM iceberg.shop_bronze.customers "
                             "WHERE _op = 'd' AND id BETWEEN 91 AND 95") == [[5]]
        [[distinct, total]] = query(
            server, "SELECT count(DISTINCT format('%s:%s', _commit_lsn, _seq)), count(*) "
                    "FROM iceberg.shop_bronze.orders WHERE _op <> 'r'")
        assert distinct == total == 16

        # Debezium's envelope: JSON before/after, op, source block.
        wait_for(lambda: count(server, "iceberg.shop_raw.orders") == 316, what="debezium rows")
        rows = query(server, "SELECT op, count(*) FROM iceberg.shop_raw.orders GROUP BY 1 "
                             "ORDER BY 1")
        assert rows == [["c", 10], ["d", 5], ["r", 300], ["u", 1]]
        # Under REPLICA IDENTITY DEFAULT an update sends no old row (Debezium's before is
        # null too); a delete sends the key.
        assert query(server, "SELECT json_extract_scalar(after, '$.note'), before, "
                             "source.\"table\", source.snapshot, source.db "
                             "FROM iceberg.shop_raw.orders WHERE op = 'u'") == \
            [["changed", None, "orders", "false", "shop"]]
        assert query(server, "SELECT json_extract_scalar(before, '$.id'), after "
                             "FROM iceberg.shop_raw.orders WHERE op = 'd' ORDER BY 1") == \
            [[str(i), None] for i in range(1, 6)]

        # TRUNCATE: a `t` change in bronze, an empty mirror.
        as_owner(pg, "TRUNCATE orders")
        wait_for(lambda: count(server, "iceberg.shop_silver.orders") == 0, what="truncate")
        wait_for(lambda: query(server, "SELECT count(*) FROM iceberg.shop_bronze.orders "
                                       "WHERE _op = 't'") == [[1]], what="bronze truncate")

        # A table added to the publication: its rows read, then its changes.
        as_owner(pg, """
            CREATE TABLE refunds (id integer PRIMARY KEY, amount numeric(8,2));
            INSERT INTO refunds VALUES (1, 5), (2, 6);
            ALTER PUBLICATION shop_pub ADD TABLE refunds;
            INSERT INTO refunds VALUES (3, 7);
        """)
        wait_for(lambda: query(server, "SELECT id FROM iceberg.shop_silver.refunds ORDER BY 1")
                 == [[1], [2], [3]], timeout=60, what="new table")

        # A Debezium signal re-reads a table while the job runs.
        as_owner(pg, "INSERT INTO debezium_signal VALUES ('ad-hoc-1', 'execute-snapshot', "
                     "'{\"data-collections\": [\"public.customers\"]}')")
        wait_for(lambda: query(server, "SELECT count(*) FROM iceberg.shop_bronze.customers "
                                       "WHERE _op = 'r'") == [[196]], what="signal snapshot")

        # Status, and a slot never confirmed past what the tables hold.
        status = wait_for(lambda: (s := ingestion(server, "shop_mirror")) and s["rows"] and s,
                          what="status")
        assert status["state"] == "running" and status["last_error"] is None
        assert PASSWORD not in status["properties"]
        assert lsn(status["position"]) >= confirmed_flush(pg, "aichemy_shop_mirror")

        # PostgreSQL restarted: the job reconnects and goes on.
        pg.stop()
        time.sleep(1)
        pg.start()
        as_owner(pg, "INSERT INTO customers VALUES (200, 'after restart', 1, now(), true, "
                     "NULL, 'silver')")
        wait_for(lambda: query(server, "SELECT name FROM iceberg.shop_silver.customers "
                                       "WHERE id = 200") == [["after restart"]],
                 timeout=90, what="changes after a PostgreSQL restart")
    finally:
        log = server.stop()
    assert PASSWORD not in log


def load_script(first, last):
    """Transactions `first`..`last`-1 over `accounts`: 50 inserts each; from the 10th on,
    30 updates of rows inserted 10 transactions before; from the 20th on, 10 deletes."""
    parts = []
    for i in range(first, last):
        parts.append("BEGIN;")
        parts.append(f"INSERT INTO accounts SELECT g, {i}, md5(g::text) "
                     f"FROM generate_series({i * 50}, {i * 50 + 49}) g;")
        if i >= 10:
            parts.append(f"UPDATE accounts SET balance = balance + 1, note = note || '+' "
                         f"WHERE id BETWEEN {(i - 10) * 50} AND {(i - 10) * 50 + 29};")
        if i >= 20:
            parts.append(f"DELETE FROM accounts WHERE id BETWEEN {(i - 20) * 50 + 40} "
                         f"AND {(i - 20) * 50 + 49};")
        parts.append("COMMIT;")
    return "\n".join(parts)


def test_kill_9_during_100k_changes_loses_and_repeats_nothing(source, warehouse):
    pg = source
    transactions, kills = 1100, 10
    changes = 50 * transactions + 30 * (transactions - 10) + 10 * (transactions - 20)
    as_owner(pg, "CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint, note text); "
                 "INSERT INTO accounts SELECT -g, 0, 'seed' FROM generate_series(1, 1000) g")
    random.seed(11)
    server = Server(warehouse)
    cdc_job(server, pg, "acc_bronze", "iceberg.bank_bronze", ", table.name = 'accounts'",
            interval=200)
    cdc_job(server, pg, "acc_mirror", "iceberg.bank_silver",
            ", table.name = 'accounts', mode = 'upsert'", interval=200)
    # The seed rows are the snapshot; every change after it is streamed.
    wait_for(lambda: count(server, "iceberg.bank_bronze.accounts") == 1000 and
             count(server, "iceberg.bank_silver.accounts") == 1000, what="the snapshots")
    chunk = transactions // kills

    def load():
        # The changes keep coming while the server is killed and started again.
        for k in range(kills):
            pg.psql("shop", f"SET ROLE {USER};\n" + load_script(k * chunk, (k + 1) * chunk))
            time.sleep(0.5)

    loader = threading.Thread(target=load)
    loader.start()
    violations = []
    checks = 0
    for k in range(kills):
        time.sleep(random.uniform(0.5, 2.5))
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        killed_at = time.time()
        slots = {job: confirmed_flush(pg, f"aichemy_{job}") for job in ("acc_bronze", "acc_mirror")}
        server = Server(warehouse, ports=(server.http_port, server.https_port))
        # What each table had committed when the server died.
        for job, schema in (("acc_bronze", "bank_bronze"), ("acc_mirror", "bank_silver")):
            if slots[job] is None:
                continue
            recorded = query(
                server,
                f"SELECT summary['aichemy.ingest.{job}'] FROM iceberg.{schema}.\"accounts$snapshots\" "
                f"WHERE committed_at <= from_unixtime({killed_at}) "
                f"AND summary['aichemy.ingest.{job}'] IS NOT NULL "
                f"ORDER BY committed_at DESC LIMIT 1")
            held = lsn(recorded[0][0]) if recorded else 0
            checks += 1
            if slots[job] > held:
                violations.append((k, job, slots[job], held))
    loader.join()
    try:
        expected = [[int(r[0]), int(r[1]), r[2]] for r in
                    source_rows(pg, "SELECT id, balance, note FROM accounts ORDER BY id")]
        wait_for(lambda: count(server, "iceberg.bank_silver.accounts") == len(expected) and
                 query(server, "SELECT id, balance, note FROM iceberg.bank_silver.accounts "
                               "ORDER BY id") == expected,
                 timeout=600, what="the mirror to equal the source")
        wait_for(lambda: count(server, "iceberg.bank_bronze.accounts") >= changes + 1000,
                 timeout=600, what="every change in bronze")
        time.sleep(1)
        [[rows, distinct]] = query(
            server, "SELECT count(*), count(DISTINCT format('%s:%s', _commit_lsn, _seq)) "
                    "FROM iceberg.bank_bronze.accounts WHERE _op <> 'r'")
        assert (rows, distinct) == (changes, changes)
        assert query(server, "SELECT count(*) FROM iceberg.bank_bronze.accounts "
                             "WHERE _op = 'r'") == [[1000]]
        assert violations == [], violations
        print(f"{kills} kills, {rows} changes, {checks} slot checks")
        slot = confirmed_flush(pg, "aichemy_acc_mirror")
        assert slot is not None and slot <= lsn(ingestion(server, "acc_mirror")["position"])
    finally:
        server.stop()


def recorded_in_delta(folder, job):
    """The position the newest commit of `job` in a Delta table's log holds."""
    import json

    recorded = None
    for entry in sorted((folder / "_delta_log").glob("*.json")):
        for line in entry.read_text().splitlines():
            info = json.loads(line).get("commitInfo", {}).get(f"aichemy.ingest.{job}")
            recorded = info["position"] if info else recorded
    return recorded


def recorded_in_lance(folder, job):
    """The position the newest version of a Lance dataset that records `job` holds."""
    import lance

    dataset = lance.dataset(str(folder))
    for version in reversed(dataset.versions()):
        transaction = dataset.read_transaction(version["version"])
        properties = (transaction and transaction.transaction_properties) or {}
        if f"aichemy.ingest.{job}" in properties:
            return properties[f"aichemy.ingest.{job}"]
    return None


def read_with_their_client(fmt, folder):
    """(id, balance, note) rows of a table, read by deltalake or pylance."""
    if fmt == "delta":
        from deltalake import DeltaTable
        table = DeltaTable(str(folder)).to_pyarrow_table()
    else:
        import lance
        table = lance.dataset(str(folder)).to_table()
    table = table.sort_by("id")
    return [list(r) for r in zip(*(table.column(c).to_pylist() for c in ("id", "balance", "note")))]


@pytest.mark.parametrize("fmt", ["delta", "lance"])
def test_changes_into_delta_and_lance_tables_through_kills(source, warehouse, fmt):
    """Delta Lake and Lance targets: the LSN rides in each commit (Delta: a `txn` action
    counting the job's commits, the LSN in its commitInfo; Lance: the version's
    transaction properties), so SIGKILLs repeat and lose nothing, and the format's own
    python client reads the mirror equal to the source."""
    pg = source
    transactions, kills = 200, 3
    as_owner(pg, "CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint, note text); "
                 "INSERT INTO accounts SELECT -g, 0, 'seed' FROM generate_series(1, 100) g")
    server = Server(warehouse)
    cdc_job(server, pg, "acc_bronze", f"{fmt}.bank_bronze", ", table.name = 'accounts'",
            interval=200)
    cdc_job(server, pg, "acc_mirror", f"{fmt}.bank_silver",
            ", table.name = 'accounts', mode = 'upsert'", interval=200)
    wait_for(lambda: count(server, f"{fmt}.bank_bronze.accounts") == 100 and
             count(server, f"{fmt}.bank_silver.accounts") == 100, what="the snapshots")
    chunk = transactions // kills
    loader = threading.Thread(target=lambda: [
        pg.psql("shop", f"SET ROLE {USER};\n" + load_script(k * chunk, (k + 1) * chunk))
        for k in range(kills + 1)])
    loader.start()
    random.seed(5)
    for _ in range(kills):
        time.sleep(random.uniform(0.5, 2.0))
        server = kill_and_start_again(server, warehouse)
    loader.join()
    done = chunk * (kills + 1)
    changes = 50 * done + 30 * max(0, done - 10) + 10 * max(0, done - 20)
    try:
        expected = [[int(r[0]), int(r[1]), r[2]] for r in
                    source_rows(pg, "SELECT id, balance, note FROM accounts ORDER BY id")]
        wait_for(lambda: query(server, f"SELECT id, balance, note FROM {fmt}.bank_silver.accounts "
                                       "ORDER BY id") == expected,
                 timeout=300, what="the mirror to equal the source")
        wait_for(lambda: count(server, f"{fmt}.bank_bronze.accounts") >= changes + 100,
                 timeout=300, what="every change in bronze")
        time.sleep(1)
        [[rows, distinct]] = query(
            server, "SELECT count(*), count(DISTINCT format('%s:%s', _commit_lsn, _seq)) "
                    f"FROM {fmt}.bank_bronze.accounts WHERE _op <> 'r'")
        assert (rows, distinct) == (changes, changes)
        mirror = warehouse / fmt / "bank_silver" / "accounts"
        assert read_with_their_client(fmt, mirror) == expected
        # The slot is confirmed no further than the LSN the mirror's last commit holds.
        recorded = (recorded_in_delta if fmt == "delta" else recorded_in_lance)(
            mirror, "acc_mirror")
        assert confirmed_flush(pg, "aichemy_acc_mirror") <= lsn(recorded)
        if fmt == "delta":
            from deltalake import DeltaTable
            bronze = DeltaTable(str(warehouse / "delta" / "bank_bronze" / "accounts"))
            assert bronze.metadata().partition_columns == ["_ingested_date"]
    finally:
        server.stop()


def test_tls_to_postgresql_verified_against_the_servers_ca(warehouse, tmp_path):
    """A PostgreSQL that takes TCP connections over TLS only: the job's connections (the
    snapshot's through sqlx, the replication stream's) verify its certificate against the
    CA named in ssl.root.cert; plain TCP and an unknown CA fail with the reason shown."""
    pg = Postgres(logical=True, tls=True)
    try:
        pg.psql("postgres", f"ALTER USER {USER} REPLICATION")
        pg.psql("postgres", f"CREATE DATABASE shop OWNER {USER}")
        as_owner(pg, "CREATE TABLE t (id integer PRIMARY KEY, v text); "
                     "INSERT INTO t VALUES (1, 'one')")
        other_ca = tmp_path / "other-ca.crt"
        import subprocess
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=not the CA", "-keyout", str(tmp_path / "other.key"),
                        "-out", str(other_ca)], check=True, capture_output=True)
        server = Server(warehouse)
        try:
            # verify-full checks the name the certificate gives (pgwire-replication
            # checks DNS names only, not IP addresses).
            cdc_job(server, pg, "secure", "iceberg.secure", ", table.name = 't', "
                    f"ssl.mode = 'verify-full', ssl.root.cert = '{pg.ca}'", host="localhost")
            cdc_job(server, pg, "plain", "iceberg.plain", ", table.name = 't', "
                    "ssl.mode = 'disabled'")
            cdc_job(server, pg, "unknown_ca", "iceberg.unknown", ", table.name = 't', "
                    f"ssl.mode = 'verify-ca', ssl.root.cert = '{other_ca}'")
            wait_for(lambda: count(server, "iceberg.secure.t") == 1, what="the snapshot")
            as_owner(pg, "INSERT INTO t VALUES (2, 'two')")
            wait_for(lambda: count(server, "iceberg.secure.t") == 2, what="a streamed change")
            plain = wait_for(lambda: (s := ingestion(server, "plain")) and s["last_error"] and s,
                             what="the plain job's error")
            assert "no encryption" in plain["last_error"] or "SSL" in plain["last_error"], plain
            unknown = wait_for(
                lambda: (s := ingestion(server, "unknown_ca")) and s["last_error"] and s,
                what="the unknown CA's error")
            assert "certificate" in unknown["last_error"].lower(), unknown
            assert PASSWORD not in plain["last_error"] + unknown["last_error"]
        finally:
            server.stop()
    finally:
        pg.destroy()


def test_bad_cdc_definitions_are_refused(source, warehouse):
    server = Server(warehouse)
    try:
        from trino.exceptions import TrinoUserError
        cur = cursor(server)
        base = ("CREATE INGESTION j INTO iceberg.s WITH (connector = 'postgres-cdc', "
                "hostname = 'h', username = 'u', database.name = 'd'")
        for sql, message in [
            ("CREATE INGESTION j INTO iceberg.s WITH (connector = 'postgres-cdc', "
             "hostname = 'h', username = 'u')", "Property 'database.name' is required"),
            (base + ", mode = 'replace')", "Property 'mode' must be 'append' or 'upsert'"),
            (base + ", slot.name = 'Bad-Slot')", "Property 'slot.name' must be lower-case"),
            (base + ", mode = 'upsert', format = 'debezium')", "is for mode 'append'"),
            (base + ", topic = 't')", "Unknown property 'topic' for a postgres-cdc"),
            (base + ", ssl.mode = 'sometimes')", "Property 'ssl.mode' must be 'disabled'"),
            (base + ", ssl.root.cert = '/ca.pem')", "needs ssl.mode 'verify-ca' or"),
            ("CREATE INGESTION j INTO iceberg.s.t WITH (connector = 'postgres-cdc', "
             "hostname = 'h', username = 'u', database.name = 'd', table.name = 'a, b')",
             "captures one table"),
        ]:
            with pytest.raises(TrinoUserError) as failure:
                cur.execute(sql)
                cur.fetchall()
            assert failure.value.error_name == "INVALID_ARGUMENTS", sql
            assert message in failure.value.message, failure.value.message
        # A job whose source refuses it fails visibly, with PostgreSQL's reason.
        cdc_job(server, source, "wrong", "iceberg.s", ", table.name = 'missing_table'")
        status = wait_for(lambda: (s := ingestion(server, "wrong")) and s["last_error"] and s,
                          what="the error")
        assert "missing_table" in status["last_error"], status
        assert PASSWORD not in str(status)
    finally:
        server.stop()
