"""Ingestion from Kafka: a real Kafka-protocol broker (tansu, tests/clients/broker.py),
kafka-python producing with acks='all' as the reference platform's producers do, jobs
declared with CREATE INGESTION through the python `trino` client, and the rows read back
through it and through PyIceberg. Exactly once: the offsets are committed with the rows,
so a server killed with SIGKILL at any moment and started again leaves every message in
the table once.

Run by scripts/test.sh with AICHEMY_BIN set to the debug binary.
"""

import json
import random
import signal
import threading
import time

import pytest
import trino
from trino.exceptions import TrinoUserError

from broker import Broker
from lakehouse import Server, catalog
from postgres import PASSWORD, USER, Postgres


@pytest.fixture()
def broker():
    broker = Broker()
    yield broker
    broker.stop()


def cursor(server, user="admin"):
    return trino.dbapi.connect(host="127.0.0.1", port=server.http_port, user=user).cursor()


def query(server, sql):
    cur = cursor(server)
    cur.execute(sql)
    return cur.fetchall()


def wait_for(check, timeout=60, what="condition"):
    """Polls `check` until it answers something true; answers that."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except TrinoUserError as e:
            last = e
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {last}")


def count(server, table):
    return query(server, f"SELECT count(*) FROM {table}")[0][0]


def ingestion(server, name):
    cur = cursor(server)
    cur.execute(
        "SELECT state, node, position, rows_ingested, dead_letters, lag, last_error, properties "
        f"FROM system.runtime.ingestions WHERE ingestion_name = '{name}'"
    )
    rows = cur.fetchall()
    if not rows:
        return None
    keys = ["state", "node", "position", "rows", "dead_letters", "lag", "last_error", "properties"]
    return dict(zip(keys, rows[0]))


def kill_and_start_again(server, warehouse):
    """SIGKILLs `server` and starts it again on the same address: the same node, which
    takes its jobs' leases back at once."""
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    return Server(warehouse, ports=(server.http_port, server.https_port))


def produce(broker, topic, values, **options):
    producer = broker.producer(**options)
    for value in values:
        producer.send(topic, value if isinstance(value, bytes) else json.dumps(value).encode())
    producer.flush()
    producer.close()


def create_json_ingestion(server, broker, name, table, topic, extra=""):
    query(
        server,
        f"CREATE INGESTION {name} INTO {table} WITH ("
        f"connector = 'kafka', topic = '{topic}', "
        f"properties.bootstrap.server = '{broker.bootstrap}', "
        f"include = 'partition, offset, timestamp, key'{extra})",
    )


def test_json_topic_into_a_bronze_table_with_dead_letters_pause_and_restart(broker, warehouse):
    broker.create_topic("orders", partitions=3)
    produce(broker, "orders", [{"id": i, "name": f"n{i}", "amount": i * 1.5} for i in range(3000)])
    server = Server(warehouse)
    try:
        create_json_ingestion(server, broker, "orders", "iceberg.shop_bronze.orders", "orders")
        table = "iceberg.shop_bronze.orders"
        wait_for(lambda: count(server, table) == 3000, what="3000 rows")
        # The columns inferred from the messages, the Kafka attributes, the ingestion time.
        columns = {row[0]: row[1] for row in query(server, f"DESCRIBE {table}")}
        assert columns["id"] == "bigint" and columns["name"] == "varchar"
        assert columns["amount"] == "double" and columns["_kafka_partition"] == "integer"
        assert columns["_ingested_at"] == "timestamp(6) with time zone"
        [[rows, keys, ids]] = query(
            server,
            f"SELECT count(*), count(DISTINCT format('%s:%s', _kafka_partition, _kafka_offset)), "
            f"count(DISTINCT id) FROM {table}",
        )
        assert rows == keys == ids == 3000
        # The status a server reports with each renewal of its lease (every second).
        status = wait_for(lambda: (s := ingestion(server, "orders")) and s["rows"] == 3000 and s)
        assert status["state"] == "running" and status["lag"] == 0
        assert status["node"]
        # The offsets are in the snapshot summary of the commit that added the rows.
        summaries = query(server, 'SELECT summary FROM iceberg.shop_bronze."orders$snapshots"')
        assert summaries[-1][0]["aichemy.ingest.orders"] == status["position"]
        assert sum(int(p.split(":")[1]) for p in status["position"].split(",")) == 3000
        # PyIceberg reads the same table; partitioned by the day of ingestion.
        iceberg = catalog(warehouse).load_table("shop_bronze.orders")
        assert iceberg.scan().to_arrow().num_rows == 3000
        assert "day" in str(iceberg.spec())

        # Malformed messages go to the dead-letter table; the good ones around them stay.
        produce(broker, "orders", [
            {"id": 5000, "name": "good", "amount": 1.0},
            b"not json",
            {"id": "not a number"},
            {"id": 5001, "name": "good", "amount": 2.0},
        ])
        wait_for(lambda: count(server, table) == 3002, what="the good rows")
        letters = wait_for(lambda: len(rows := query(
            server,
            "SELECT ingestion, topic, from_utf8(payload), error "
            "FROM iceberg.shop_bronze.orders_dead_letter",
        )) == 2 and rows, what="dead letters")
        # (The messages went to different partitions: their offsets do not order them.)
        assert sorted((r[0], r[1], r[2]) for r in letters) == [
            ("orders", "orders", "not json"),
            ("orders", "orders", '{"id": "not a number"}'),
        ]
        assert all(r[3] for r in letters)
        status = wait_for(lambda: (s := ingestion(server, "orders")) and s["dead_letters"] == 2 and s)
        assert "cannot be ingested" in status["last_error"]

        # Paused: nothing more arrives; resumed: all of it.
        query(server, "ALTER INGESTION orders PAUSE")
        wait_for(lambda: ingestion(server, "orders")["state"] == "paused")
        produce(broker, "orders", [{"id": 6000 + i, "name": "p", "amount": 0.0} for i in range(10)])
        time.sleep(3)
        assert count(server, table) == 3002
        query(server, "ALTER INGESTION orders RESUME")
        wait_for(lambda: count(server, table) == 3012, what="the rows sent while paused")
    finally:
        server.stop()

    # The job survives a restart and goes on from the offsets in the table.
    produce(broker, "orders", [{"id": 7000 + i, "name": "r", "amount": 0.0} for i in range(10)])
    server = Server(warehouse)
    try:
        table = "iceberg.shop_bronze.orders"
        wait_for(lambda: count(server, table) == 3022, what="the rows sent while stopped")
        time.sleep(2)
        assert count(server, table) == 3022
        assert count(server, "iceberg.shop_bronze.orders_dead_letter") == 2
        query(server, "DROP INGESTION orders")
        assert ingestion(server, "orders") is None
        assert query(server, "SHOW INGESTIONS") == []
    finally:
        server.stop()


def debezium_event(op, before, after, lsn, wrapped=False):
    event = {"before": before, "after": after, "op": op, "ts_ms": 1_700_000_000_000 + lsn,
             "source": {"connector": "postgresql", "db": "shop", "schema": "public",
                        "table": "orders", "ts_ms": 1_700_000_000_000 + lsn, "lsn": lsn,
                        "txId": 500 + lsn}}
    return {"schema": {"type": "struct"}, "payload": event} if wrapped else event


def test_debezium_events_into_a_bronze_table_and_a_mirror_with_new_fields(broker, warehouse):
    """A topic as Debezium's PostgreSQL connector writes it (JSON converter, keys
    `{"id": …}`, tombstones after deletes): appended as rows with `_op`/`_ts`/`_lsn`, and
    folded into a mirror keyed by the message key. A field that appears later becomes a
    column."""
    broker.create_topic("shop.public.orders", partitions=1)
    producer = broker.producer()

    def send(key, event):
        producer.send("shop.public.orders", key=json.dumps({"id": key}).encode(),
                      value=None if event is None else json.dumps(event).encode())

    for i in range(1, 6):
        send(i, debezium_event("r", None, {"id": i, "amount": i * 10}, i))
    send(2, debezium_event("u", None, {"id": 2, "amount": 21}, 10, wrapped=True))
    send(3, debezium_event("d", {"id": 3, "amount": None}, None, 11))
    send(3, None)  # the tombstone after a delete
    send(6, debezium_event("c", None, {"id": 6, "amount": 60}, 12))
    producer.send("shop.public.orders", key=b"x", value=b'{"id": 9}')  # no envelope
    producer.flush()
    server = Server(warehouse)
    try:
        common = (f"connector = 'kafka', topic = 'shop.public.orders', "
                  f"properties.bootstrap.server = '{broker.bootstrap}', format = 'debezium', "
                  "commit.interval.ms = 200")
        query(server, f"CREATE INGESTION dbz_bronze INTO iceberg.dbz_bronze.orders WITH ({common})")
        query(server, f"CREATE INGESTION dbz_mirror INTO iceberg.dbz_silver.orders WITH "
                      f"({common}, mode = 'upsert')")
        wait_for(lambda: count(server, "iceberg.dbz_bronze.orders") == 8, what="bronze rows")
        assert query(server, "SELECT _op, count(*) FROM iceberg.dbz_bronze.orders GROUP BY 1 "
                             "ORDER BY 1") == [["c", 1], ["d", 1], ["r", 5], ["u", 1]]
        assert query(server, "SELECT _lsn, _tx_id, to_unixtime(_ts) FROM "
                             "iceberg.dbz_bronze.orders WHERE _op = 'u'") == \
            [[10, 510, 1_700_000_000.01]]
        assert count(server, "iceberg.dbz_bronze.orders_dead_letter") == 1
        wait_for(lambda: query(server, "SELECT id, amount FROM iceberg.dbz_silver.orders "
                                       "ORDER BY id")
                 == [[1, 10], [2, 21], [4, 40], [5, 50], [6, 60]], what="the mirror")

        # A later event with a new field: a new column in both tables.
        send(1, debezium_event("u", None, {"id": 1, "amount": 11, "coupon": "SPRING"}, 13))
        send(4, debezium_event("d", {"id": 4}, None, 14))
        producer.flush()
        wait_for(lambda: query(server, "SELECT id, amount, coupon FROM iceberg.dbz_silver.orders "
                                       "ORDER BY id")
                 == [[1, 11, "SPRING"], [2, 21, None], [5, 50, None], [6, 60, None]],
                 what="the mirror with the new column")
        wait_for(lambda: query(server, "SELECT coupon FROM iceberg.dbz_bronze.orders "
                                       "WHERE _lsn = 13") == [["SPRING"]], what="new column")
    finally:
        producer.close()
        server.stop()


def test_a_job_declared_in_the_configuration_file(broker, warehouse, tmp_path):
    """`[ingestions.<name>]` in the TOML file: created at start, its `${ENV:…}` references
    resolved (the file is an administrator's), replaced when the file changes."""
    broker.create_topic("visits", partitions=1)
    produce(broker, "visits", [{"page": "/a"}, {"page": "/b"}])
    config = tmp_path / "aichemy.toml"

    def write(interval):
        config.write_text(
            "[ingestions.visits]\n"
            'into = "iceberg.web_bronze.visits"\n'
            "[ingestions.visits.with]\n"
            'connector = "kafka"\n'
            'topic = "${ENV:VISITS_TOPIC}"\n'
            f'"properties.bootstrap.server" = "{broker.bootstrap}"\n'
            f'"commit.interval.ms" = {interval}\n'
        )

    write(200)
    env = {"VISITS_TOPIC": "visits"}
    server = Server(warehouse, "--config", str(config), env=env)
    try:
        wait_for(lambda: count(server, "iceberg.web_bronze.visits") == 2, what="rows")
        assert "commit.interval.ms = '200'" in ingestion(server, "visits")["properties"]
    finally:
        server.stop()
    write(300)
    server = Server(warehouse, "--config", str(config), env=env)
    try:
        assert "commit.interval.ms = '300'" in ingestion(server, "visits")["properties"]
        produce(broker, "visits", [{"page": "/c"}])
        wait_for(lambda: count(server, "iceberg.web_bronze.visits") == 3, what="the new row")
    finally:
        server.stop()
    # A bad declaration stops the start with its reason.
    config.write_text('[ingestions.bad]\ninto = "iceberg.s.t"\n[ingestions.bad.with]\n'
                      'connector = "kafka"\n')
    with pytest.raises(RuntimeError, match="ingestion 'bad' of the configuration file: "
                       "Property 'properties.bootstrap.server' is required"):
        Server(warehouse, "--config", str(config))


def test_raw_messages_with_every_kafka_attribute_from_the_latest_offset(broker, warehouse):
    broker.create_topic("events", partitions=1)
    produce(broker, "events", [b"before the job"])
    server = Server(warehouse)
    try:
        query(
            server,
            "CREATE INGESTION events INTO iceberg.raw_bronze.events WITH ("
            f"connector = 'kafka', topic = 'events', properties.bootstrap.server = '{broker.bootstrap}', "
            "format = 'raw', scan.startup.mode = 'latest', commit.interval.ms = 200)",
        )
        wait_for(lambda: (ingestion(server, "events") or {}).get("state") == "running")
        producer = broker.producer()
        producer.send("events", key=b"k1", value=b"\x00\x01binary", headers=[("h", b"v")])
        producer.send("events", key=None, value=b"second")
        producer.flush()
        producer.close()
        rows = wait_for(lambda: query(
            server,
            'SELECT from_utf8(key), value, "partition", "offset", headers, '
            '"timestamp" IS NOT NULL FROM iceberg.raw_bronze.events ORDER BY "offset"',
        ), what="raw rows")
        assert len(rows) == 2
        assert rows[0][0] == "k1" and rows[0][1] == b"\x00\x01binary"
        assert rows[0][2] == 0 and rows[0][3] == 1
        assert json.loads(rows[0][4]) == {"h": "v"}
        assert rows[1][0] is None and rows[1][1] == b"second" and rows[1][4] is None
        assert rows[0][5] is True
    finally:
        server.stop()


def test_a_bad_message_stops_a_job_that_asks_to_stop(broker, warehouse):
    broker.create_topic("strict", partitions=1)
    server = Server(warehouse)
    try:
        query(server, "CREATE SCHEMA iceberg.s")
        query(server, "CREATE TABLE iceberg.s.strict (id BIGINT, _kafka_offset BIGINT)")
        create_json_ingestion(server, broker, "strict", "iceberg.s.strict", "strict",
                              ", on.error = 'stop'")
        produce(broker, "strict", [{"id": 1}, {"id": "x"}, {"id": 3}])
        status = wait_for(lambda: (s := ingestion(server, "strict")) and s["state"] == "failed" and s)
        assert "partition 0 offset 1" in status["last_error"]
        # Nothing of the failing batch was committed; RESUME tries again.
        assert count(server, "iceberg.s.strict") == 0
        assert query(
            server, "SELECT desired_state FROM system.runtime.ingestions"
        ) == [["failed"]]
    finally:
        server.stop()


def test_bad_definitions_are_refused_in_trino_terms_and_secrets_stay_hidden(broker, warehouse):
    server = Server(warehouse)
    try:
        cur = cursor(server)
        for sql, name, message in [
            ("CREATE INGESTION j INTO iceberg.s.t WITH (connector = 'kafka', topic = 't')",
             "INVALID_ARGUMENTS", "Property 'properties.bootstrap.server' is required"),
            ("CREATE INGESTION j INTO iceberg.s.t WITH (connector = 'kafka', topic = 't', "
             "properties.bootstrap.server = 'h:1', scan.startup.mode = 'soon')",
             "INVALID_ARGUMENTS", "'scan.startup.mode' must be"),
            ("CREATE INGESTION j INTO iceberg.s.t WITH (connector = 'mqtt')",
             "INVALID_ARGUMENTS", "Unknown ingestion connector 'mqtt'"),
            ("CREATE INGESTION j INTO iceberg.s.t WITH (connector = 'kafka', topic = 't', "
             "properties.bootstrap.server = 'h:1', properties.sasl.password = '${ENV:HOME}')",
             "INVALID_ARGUMENTS", "needs properties.security.protocol"),
            ("CREATE INGESTION j INTO hive.s.t WITH (connector = 'kafka', topic = 't', "
             "properties.bootstrap.server = 'h:1')",
             "NOT_SUPPORTED", "use an iceberg, delta or lance catalog"),
            ("DROP INGESTION nothing", "NOT_FOUND", "Ingestion 'nothing' does not exist"),
            ("ALTER INGESTION nothing PAUSE", "NOT_FOUND", "Ingestion 'nothing' does not exist"),
            ("ALTER INGESTION j STOP", "SYNTAX_ERROR", "PAUSE or RESUME"),
        ]:
            with pytest.raises(TrinoUserError) as failure:
                cur.execute(sql)
                cur.fetchall()
            assert failure.value.error_name == name, sql
            assert message in failure.value.message, failure.value.message
        # A password written out is kept, never shown.
        cur.execute(
            "CREATE INGESTION j INTO iceberg.s.t WITH (connector = 'kafka', topic = 't', "
            f"properties.bootstrap.server = '{broker.bootstrap}', "
            "properties.security.protocol = 'SASL_PLAINTEXT', "
            "properties.sasl.username = 'u', properties.sasl.password = 'hunter2')"
        )
        cur.fetchall()
        with pytest.raises(TrinoUserError) as failure:
            cur.execute(
                "CREATE INGESTION j INTO iceberg.s.t WITH (connector = 'kafka', topic = 't', "
                f"properties.bootstrap.server = '{broker.bootstrap}')"
            )
            cur.fetchall()
        assert failure.value.error_name == "ALREADY_EXISTS"
        shown = ingestion(server, "j")
        assert "hunter2" not in json.dumps(shown)
        assert "properties.sasl.password = '***'" in shown["properties"]
        cur.execute("SELECT query FROM system.runtime.queries")
        assert "hunter2" not in json.dumps(cur.fetchall())
        # Only administrators manage ingestions when administrators are named.
    finally:
        log = server.stop()
    assert "hunter2" not in log


def test_kill_9_at_random_moments_loses_and_repeats_nothing(broker, warehouse):
    messages, partitions, kills = 1_000_000, 3, 10
    broker.create_topic("clicks", partitions=partitions)
    producer = broker.producer(linger_ms=50, batch_size=1 << 20)
    payload = '{"id": %d, "user": "user-%d", "page": "/products/%d", "ms": %d}'
    for i in range(messages):
        producer.send("clicks", (payload % (i, i % 9973, i % 101, i)).encode())
    producer.flush()
    producer.close()
    table = "iceberg.web_bronze.clicks"
    random.seed(7)
    killed = 0
    server = Server(warehouse)
    create_json_ingestion(server, broker, "clicks", table, "clicks",
                          ", commit.interval.ms = 300, max.batch.messages = 50000")
    for _ in range(kills):
        time.sleep(random.uniform(0.5, 4.0))
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        killed += 1
        # Started again on the same address: the same node, which takes its lease back.
        server = Server(warehouse, ports=(server.http_port, server.https_port))
    try:
        wait_for(lambda: count(server, table) >= messages, timeout=600, what="every message")
        time.sleep(2)
        [[rows, keys, ids]] = query(
            server,
            f"SELECT count(*), count(DISTINCT format('%s:%s', _kafka_partition, _kafka_offset)), "
            f"count(DISTINCT id) FROM {table}",
        )
        assert (rows, keys, ids) == (messages, messages, messages)
        print(f"{killed} kills, {rows} rows")
    finally:
        server.stop()


def ingest_through_kills(broker, warehouse, topic, table, messages, kills=3):
    """A job from `topic` into `table` (compacted every 1.5 s, racing its own commits)
    while `messages` JSON messages are produced in bursts and the server is killed with
    SIGKILL `kills` times; answers the server once the table holds every message once."""
    broker.create_topic(topic, partitions=3)

    def produce_in_bursts():
        producer = broker.producer(linger_ms=20)
        burst = messages // 10
        for start in range(0, messages, burst):
            for i in range(start, min(start + burst, messages)):
                producer.send(topic, json.dumps({"id": i, "kind": f"k{i % 7}"}).encode())
            producer.flush()
            time.sleep(0.4)
        producer.close()

    server = Server(warehouse)
    create_json_ingestion(server, broker, topic, table, topic,
                          ", commit.interval.ms = 100, maintenance.interval.ms = 1500")
    producing = threading.Thread(target=produce_in_bursts)
    producing.start()
    random.seed(11)
    for _ in range(kills):
        time.sleep(random.uniform(0.5, 2.0))
        server = kill_and_start_again(server, warehouse)
    producing.join()
    try:
        wait_for(lambda: count(server, table) >= messages, timeout=300, what="every message")
        time.sleep(1)
        [[rows, keys]] = query(
            server,
            "SELECT count(*), count(DISTINCT format('%s:%s', _kafka_partition, _kafka_offset)) "
            f"FROM {table}",
        )
        assert (rows, keys) == (messages, messages)
        status = ingestion(server, topic)
        assert status["state"] == "running" and status["last_error"] is None
    except BaseException:
        server.stop()
        raise
    return server


def offsets_total(position):
    """The messages before the next offsets of a position text (`0:12,1:30,2:7`)."""
    return sum(int(p.split(":")[1]) for p in position.split(","))


def test_a_topic_into_a_delta_table_exactly_once_read_by_deltalake(broker, warehouse):
    """Into Delta Lake: the offsets ride in the commit's `txn` action (with the offsets
    text in its commitInfo), the table is partitioned by ingestion date, and the python
    deltalake client reads each message once after SIGKILLs."""
    from deltalake import DeltaTable

    messages = 30_000
    table = "delta.shop_bronze.orders"
    server = ingest_through_kills(broker, warehouse, "orders", table, messages)
    try:
        assert query(server, f"SELECT count(DISTINCT _ingested_date) FROM {table} "
                             "WHERE _ingested_date = current_date") == [[1]]
        folder = warehouse / "delta" / "shop_bronze" / "orders"
        delta = DeltaTable(str(folder))
        assert delta.metadata().partition_columns == ["_ingested_date"]
        ids = delta.to_pyarrow_table(columns=["id"]).column("id").to_pylist()
        assert len(ids) == len(set(ids)) == messages
        operations = [h["operation"] for h in delta.history()]
        # Many commits, then upkeep: how many of them the log still shows after its
        # cleanup depends on when upkeep ran, so only "several" is certain.
        assert "OPTIMIZE" in operations and operations.count("WRITE") >= 5, operations
        txns, recorded = [], None
        for entry in sorted((folder / "_delta_log").glob("*.json")):
            for line in entry.read_text().splitlines():
                action = json.loads(line)
                if "txn" in action:
                    txns.append(action["txn"])
                recorded = action.get("commitInfo", {}).get("aichemy.ingest.orders", recorded)
        assert {t["appId"] for t in txns} == {"aichemy.ingest.orders"}
        assert recorded["sequence"] == max(t["version"] for t in txns)
        assert offsets_total(recorded["position"]) == messages
    finally:
        server.stop()


def test_a_topic_into_a_lance_table_exactly_once_read_by_pylance(broker, warehouse):
    """Into Lance: the offsets ride in each version's transaction properties, and pylance
    reads each message once after SIGKILLs."""
    import lance

    messages = 20_000
    server = ingest_through_kills(broker, warehouse, "events", "lance.app_bronze.events",
                                  messages)
    try:
        dataset = lance.dataset(str(warehouse / "lance" / "app_bronze" / "events"))
        ids = dataset.to_table(columns=["id"]).column("id").to_pylist()
        assert len(ids) == len(set(ids)) == messages
        versions = dataset.versions()
        assert len(versions) > 10
        # The newest version that recorded offsets holds all of them.
        for version in reversed(versions):
            transaction = dataset.read_transaction(version["version"])
            properties = (transaction and transaction.transaction_properties) or {}
            if "aichemy.ingest.events" in properties:
                assert offsets_total(properties["aichemy.ingest.events"]) == messages
                break
        else:
            raise AssertionError("no version records the job's offsets")
        # Compacted and expired to nothing older: the version holding the offsets stays,
        # so a restarted job goes on after them.
        table = "lance.app_bronze.events"
        query(server, f"ALTER TABLE {table} EXECUTE optimize")
        expire = trino.dbapi.connect(
            host="127.0.0.1", port=server.http_port, user="admin",
            session_properties={"iceberg.expire_snapshots_min_retention": "0s"}).cursor()
        expire.execute(f"ALTER TABLE {table} EXECUTE expire_snapshots(retention_threshold => '0s')")
        expire.fetchall()
        assert len(lance.dataset(str(warehouse / "lance" / "app_bronze" / "events")).versions()) < 5
        server = kill_and_start_again(server, warehouse)
        produce(broker, "events", [{"id": messages + i, "kind": "late"} for i in range(100)])
        wait_for(lambda: count(server, table) >= messages + 100, what="the later messages")
        time.sleep(1)
        assert query(server, f"SELECT count(*), count(DISTINCT id) FROM {table}") == \
            [[messages + 100, messages + 100]]
    finally:
        server.stop()


def test_one_of_two_nodes_runs_a_job_and_the_other_takes_over_when_it_dies(broker, tmp_path):
    """Two servers on one PostgreSQL metastore: the job runs on exactly one of them; the
    holder killed with SIGKILL, the other node takes the lease over once it expires and
    goes on from the offsets in the table."""
    postgres = Postgres()
    try:
        postgres.psql("postgres", f"CREATE DATABASE meta_ingest OWNER {USER}")
        env = {
            "AICHEMY_METASTORE__URL":
                f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{postgres.port}/meta_ingest",
        }
        broker.create_topic("shared", partitions=2)
        nodes = [Server(tmp_path / "wh", env=env), Server(tmp_path / "wh", env=env)]
        try:
            table = "iceberg.s_bronze.shared"
            create_json_ingestion(nodes[0], broker, "shared", table, "shared")
            produce(broker, "shared", [{"id": i} for i in range(500)])
            wait_for(lambda: count(nodes[1], table) == 500, what="the first rows")
            holder = wait_for(lambda: ingestion(nodes[1], "shared")["node"], what="a holder")
            ports = [f":{n.http_port}" for n in nodes]
            assert sum(holder.endswith(p) for p in ports) == 1, (holder, ports)
            dead = 0 if holder.endswith(ports[0]) else 1
            survivor = nodes[1 - dead]
            nodes[dead].process.send_signal(signal.SIGKILL)
            nodes[dead].process.wait()
            produce(broker, "shared", [{"id": 500 + i} for i in range(500)])
            started = time.monotonic()
            wait_for(lambda: count(survivor, table) == 1000, what="the rows after takeover")
            took = time.monotonic() - started
            assert took < 20, took
            status = ingestion(survivor, "shared")
            assert status["node"].endswith(f":{survivor.http_port}")
            [[rows, ids]] = query(survivor, f"SELECT count(*), count(DISTINCT id) FROM {table}")
            assert rows == ids == 1000
            print(f"taken over and caught up in {took:.1f} s")
        finally:
            for node in nodes:
                if node.process.poll() is None:
                    node.stop()
    finally:
        postgres.destroy()
