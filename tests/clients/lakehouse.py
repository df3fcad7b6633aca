"""Helpers shared by the client tests: run `aichemy sql`, open PyIceberg on its warehouse."""

import json
import os
import subprocess

from pyiceberg.catalog.sql import SqlCatalog

BIN = os.environ.get("AICHEMY_BIN", "aichemy")


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
