"""Kafka ingestion (issue 32): AIchemy's Kafka → Iceberg job next to a plain consumer of
the same messages, on one tansu broker (tests/clients/broker.py):

    AICHEMY_BIN=…/release/aichemy python benchmarks/ingest.py [--messages 2000000]

1. produces `--messages` JSON messages of about 200 bytes to a 3-partition topic with
   kafka-python (acks='all'), untimed;
2. floor: a plain consumer (confluent-kafka when installed, else kafka-python) reads every
   message and drops it; its seconds and messages/s;
3. AIchemy: `aichemy serve` with an ingestion of the topic from the earliest offset
   (`max.batch.messages` large, so batches are as big as the fetches make them); the
   seconds until the job reports every message committed (then `SELECT count(*)` checks
   that each is in the table once), the server's CPU seconds meanwhile (/proc), and so
   rows/s and rows per CPU-second ("per core");
4. latency at default settings (commit.interval.ms = 1000): one message every 200 ms to a
   second topic, each timed from `send` until a `SELECT` sees its id; p50, p99, max.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "clients"))

import trino  # noqa: E402

from broker import Broker  # noqa: E402
from lakehouse import Server  # noqa: E402


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def message(i):
    text = json.dumps({
        "id": i, "user_id": i % 100_003, "event": "page_view",
        "url": f"https://shop.example.com/products/{i % 9973}?ref=campaign-{i % 17}",
        "amount": round(i * 0.37 % 1000, 2), "ts": "2026-12-04T10:00:00.000Z",
        "agent": "Mozilla/5.0 (X11; Linux x86_64)",
    })
    return text.encode()


def floor(broker, topic, messages):
    started = time.monotonic()
    try:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "floor",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        read = 0
        while read < messages:
            read += sum(1 for m in consumer.consume(10_000, timeout=1.0) if not m.error())
        consumer.close()
        name = "confluent-kafka"
    except ImportError:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
        consumer.assign([TopicPartition(topic, p) for p in range(3)])
        consumer.seek_to_beginning()
        read = 0
        while read < messages:
            read += sum(len(batch) for batch in consumer.poll(timeout_ms=1000).values())
        consumer.close()
        name = "kafka-python"
    return name, time.monotonic() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--latency-samples", type=int, default=100)
    args = parser.parse_args()
    broker = Broker()
    try:
        broker.create_topic("bench", partitions=3)
        producer = broker.producer(linger_ms=50, batch_size=1 << 20)
        size = 0
        for i in range(args.messages):
            value = message(i)
            size += len(value)
            producer.send("bench", value)
        producer.flush()
        producer.close()
        print(f"produced {args.messages} messages, {size / args.messages:.0f} bytes each")

        name, seconds = floor(broker, "bench", args.messages)
        print(f"floor ({name}): {seconds:.2f} s, {args.messages / seconds:,.0f} messages/s")

        with tempfile.TemporaryDirectory() as folder:
            server = Server(Path(folder) / "wh")
            cur = trino.dbapi.connect(host="127.0.0.1", port=server.http_port, user="b").cursor()
            try:
                cpu_before = cpu_seconds(server.process.pid)
                started = time.monotonic()
                cur.execute(
                    "CREATE INGESTION bench INTO iceberg.b.bench WITH (connector = 'kafka', "
                    f"topic = 'bench', properties.bootstrap.server = '{broker.bootstrap}', "
                    "max.batch.messages = '1000000')"
                )
                cur.fetchall()
                # The job's count of committed rows, not a scan of the growing table, so
                # that the CPU measured is the ingestion's.
                while True:
                    cur.execute("SELECT rows_ingested FROM system.runtime.ingestions "
                                "WHERE ingestion_name = 'bench'")
                    if (cur.fetchall() or [[0]])[0][0] >= args.messages:
                        break
                    time.sleep(0.2)
                seconds = time.monotonic() - started
                cpu = cpu_seconds(server.process.pid) - cpu_before
                cur.execute("SELECT count(*), count(DISTINCT id) FROM iceberg.b.bench")
                assert cur.fetchall() == [[args.messages, args.messages]]
                print(f"aichemy kafka -> iceberg: {seconds:.2f} s, "
                      f"{args.messages / seconds:,.0f} rows/s, {cpu:.2f} CPU s, "
                      f"{args.messages / cpu:,.0f} rows per CPU-second")

                broker.create_topic("latency", partitions=1)
                cur.execute(
                    "CREATE INGESTION latency INTO iceberg.b.latency WITH (connector = 'kafka', "
                    f"topic = 'latency', properties.bootstrap.server = '{broker.bootstrap}')"
                )
                cur.fetchall()
                producer = broker.producer()
                producer.send("latency", message(-1))
                producer.flush()
                while True:
                    try:
                        cur.execute("SELECT count(*) FROM iceberg.b.latency")
                        if cur.fetchall()[0][0] >= 1:
                            break
                    except trino.exceptions.TrinoUserError:
                        pass
                    time.sleep(0.1)
                latencies = []
                for i in range(args.latency_samples):
                    sent = time.monotonic()
                    producer.send("latency", message(i))
                    producer.flush()
                    while True:
                        cur.execute(f"SELECT count(*) FROM iceberg.b.latency WHERE id = {i}")
                        if cur.fetchall()[0][0]:
                            break
                        time.sleep(0.02)
                    latencies.append(time.monotonic() - sent)
                    time.sleep(0.2)
                latencies.sort()
                p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
                print(f"latency produce -> visible ({len(latencies)} messages): "
                      f"p50 {p(0.5):.2f} s, p99 {p(0.99):.2f} s, max {latencies[-1]:.2f} s")
            finally:
                server.stop()
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
