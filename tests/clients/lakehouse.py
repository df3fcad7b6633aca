"""Helpers shared by the client tests: run `aichemy sql`, start `aichemy serve`, open
PyIceberg on a warehouse, run SQL through the npm trino-client."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
from pyiceberg.catalog.sql import SqlCatalog

BIN = os.environ.get("AICHEMY_BIN", "aichemy")
RUN_SQL_JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node", "run_sql.js")


def sql_command(warehouse, sql, fmt="json"):
    return [BIN, "--warehouse", str(warehouse), "sql", "--format", fmt, "-e", sql]


def aichemy(warehouse, sql):
    """Runs statements with `aichemy sql`; answers the JSON rows of the last result."""
    done = subprocess.run(sql_command(warehouse, sql), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def catalog(warehouse):
    """PyIceberg's SqlCatalog on the warehouse's metastore: the catalog name aichemy uses,
    new tables under <warehouse>/iceberg."""
    return SqlCatalog(
        "iceberg",
        uri=f"sqlite:///{warehouse}/metastore.db",
        warehouse=f"file://{warehouse}/iceberg",
    )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`aichemy serve` on free ports; `stop()` sends SIGTERM and checks the exit code."""

    def __init__(self, warehouse, *args, env=None, ports=None):
        self.http_port, self.https_port = ports or (free_port(), free_port())
        self.process = subprocess.Popen(
            [BIN, "--warehouse", str(warehouse), "serve", "--bind", "127.0.0.1",
             "--http-port", str(self.http_port), "--https-port", str(self.https_port),
             *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "NO_COLOR": "1", **(env or {})},
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/v1/info", timeout=1)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    raise RuntimeError(self.process.stderr.read().decode())
                time.sleep(0.2)

    def stop(self):
        """Stops the server; answers what it logged."""
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=60) == 0
        return self.process.stderr.read().decode()


def node_sql(server_url, user, statements, password=None, catalog=None, schema=None,
             insecure=False):
    """Runs statements through the npm trino-client (node/run_sql.js, one client for all);
    answers per statement {"columns", "types", "rows", "error": None or {"errorName",
    "message"}}. Skips without node or the modules scripts/node-env.sh installs."""
    root, node = os.environ.get("AICHEMY_NODE_MODULES"), shutil.which("node")
    if not root or not node:
        pytest.skip("the npm trino-client needs node and AICHEMY_NODE_MODULES: "
                    "source scripts/node-env.sh")
    modules = os.path.join(root, "node_modules")
    request = {"server": server_url, "user": user, "password": password, "catalog": catalog,
               "schema": schema, "insecure": insecure, "statements": list(statements)}
    done = subprocess.run([node, RUN_SQL_JS], input=json.dumps(request), capture_output=True,
                          text=True, timeout=300, env={**os.environ, "NODE_PATH": modules})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
