"""PyIceberg and AIchemy share one lakehouse: PyIceberg's SqlCatalog, pointed at the
metastore file of an `aichemy sql` warehouse, reads what aichemy wrote, and aichemy reads
(and appends to) what PyIceberg wrote.

Run by scripts/test.sh with AICHEMY_BIN set to the debug binary.
"""

import datetime
import decimal
import subprocess

import pyarrow as pa
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import (
    DateType,
    DoubleType,
    IntegerType,
    ListType,
    LongType,
    NestedField,
    StringType,
    TimestampType,
)

from lakehouse import aichemy, catalog, sql_command


def test_pyiceberg_reads_what_aichemy_wrote(warehouse):
    aichemy(
        warehouse,
        """
        CREATE SCHEMA iceberg.ic_test;
        CREATE TABLE iceberg.ic_test.orders (order_id INTEGER, customer_id INTEGER,
            order_date DATE, amount DECIMAL(10,2));
        INSERT INTO iceberg.ic_test.orders VALUES (1, 101, DATE '2025-01-15', 99.99),
            (2, 102, DATE '2025-01-16', 149.50);
        INSERT INTO iceberg.ic_test.orders VALUES (3, 101, DATE '2025-01-17', 5.00);
        """,
    )
    cat = catalog(warehouse)
    assert ("ic_test",) in cat.list_namespaces()
    assert cat.list_tables("ic_test") == [("ic_test", "orders")]

    table = cat.load_table("ic_test.orders")
    assert table.metadata.format_version == 2
    # One snapshot per INSERT, each an append.
    assert [s.summary.operation.value for s in table.snapshots()] == ["append", "append"]
    assert [f.name for f in table.schema().fields] == [
        "order_id",
        "customer_id",
        "order_date",
        "amount",
    ]
    rows = table.scan().to_arrow().sort_by("order_id").to_pylist()
    assert rows == [
        {
            "order_id": 1,
            "customer_id": 101,
            "order_date": datetime.date(2025, 1, 15),
            "amount": decimal.Decimal("99.99"),
        },
        {
            "order_id": 2,
            "customer_id": 102,
            "order_date": datetime.date(2025, 1, 16),
            "amount": decimal.Decimal("149.50"),
        },
        {
            "order_id": 3,
            "customer_id": 101,
            "order_date": datetime.date(2025, 1, 17),
            "amount": decimal.Decimal("5.00"),
        },
    ]
    # Time travel to the first snapshot sees the first INSERT only.
    first = min(table.snapshots(), key=lambda s: s.sequence_number).snapshot_id
    assert table.scan(snapshot_id=first).to_arrow().num_rows == 2


def test_pyiceberg_reads_partitioned_and_nested_tables(warehouse):
    aichemy(
        warehouse,
        """
        CREATE SCHEMA iceberg.s;
        CREATE TABLE iceberg.s.events (id BIGINT NOT NULL, ts TIMESTAMP(6), kind VARCHAR,
            tags ARRAY(VARCHAR), origin ROW(city VARCHAR, lat DOUBLE))
            WITH (partitioning = ARRAY['day(ts)', 'kind']);
        INSERT INTO iceberg.s.events VALUES
            (1, TIMESTAMP '2025-01-01 10:00:00', 'click', ARRAY['a', 'b'], ROW('Oslo', 59.9)),
            (2, TIMESTAMP '2025-01-01 11:00:00', 'view', NULL, NULL),
            (3, TIMESTAMP '2025-01-02 09:30:00', 'click', ARRAY[], ROW('Rome', 41.9));
        """,
    )
    table = catalog(warehouse).load_table("s.events")
    spec = table.spec()
    assert [(f.name, str(f.transform)) for f in spec.fields] == [
        ("ts_day", "day"),
        ("kind", "identity"),
    ]
    # Three partitions, one data file each, every file carrying its partition values.
    files = list(table.scan().plan_files())
    assert len(files) == 3
    partitions = sorted((f.file.partition[1], f.file.partition[0]) for f in files)
    assert [p[0] for p in partitions] == ["click", "click", "view"]
    rows = table.scan().to_arrow().sort_by("id").to_pylist()
    assert rows[0]["tags"] == ["a", "b"]
    assert rows[0]["origin"] == {"city": "Oslo", "lat": 59.9}
    assert rows[1]["tags"] is None and rows[1]["origin"] is None
    assert rows[2]["tags"] == []
    # PyIceberg prunes by partition: only the click files are read.
    clicks = table.scan(row_filter="kind = 'click'")
    assert len(list(clicks.plan_files())) == 2
    assert clicks.to_arrow().num_rows == 2


def test_aichemy_reads_and_appends_to_what_pyiceberg_wrote(warehouse):
    # aichemy creates the metastore; PyIceberg adds a namespace and a table to it.
    aichemy(warehouse, "SHOW CATALOGS")
    cat = catalog(warehouse)
    cat.create_namespace("py")
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "name", StringType(), required=False),
        NestedField(3, "score", DoubleType(), required=False),
        NestedField(4, "day", DateType(), required=False),
        NestedField(5, "seen", TimestampType(), required=False),
        NestedField(
            6,
            "tags",
            ListType(element_id=7, element_type=StringType(), element_required=False),
            required=False,
        ),
        NestedField(8, "n", IntegerType(), required=False),
    )
    spec = PartitionSpec(
        PartitionField(source_id=4, field_id=1000, transform=DayTransform(), name="day_day"),
        PartitionField(source_id=2, field_id=1001, transform=IdentityTransform(), name="name"),
    )
    table = cat.create_table("py.people", schema=schema, partition_spec=spec)
    data = pa.Table.from_pylist(
        [
            {
                "id": 1,
                "name": "ada",
                "score": 1.5,
                "day": datetime.date(2025, 3, 1),
                "seen": datetime.datetime(2025, 3, 1, 8, 0, 0),
                "tags": ["x"],
                "n": 7,
            },
            {
                "id": 2,
                "name": "grace",
                "score": None,
                "day": datetime.date(2025, 3, 2),
                "seen": None,
                "tags": None,
                "n": None,
            },
        ],
        schema=table.schema().as_arrow(),
    )
    table.append(data)

    assert aichemy(warehouse, "SHOW SCHEMAS FROM iceberg LIKE 'py'") == [{"Schema": "py"}]
    assert aichemy(warehouse, "SHOW TABLES FROM iceberg.py") == [{"Table": "people"}]
    rows = aichemy(
        warehouse,
        "SELECT id, name, score, day, seen, tags, n FROM iceberg.py.people ORDER BY id",
    )
    assert rows == [
        {
            "id": 1,
            "name": "ada",
            "score": 1.5,
            "day": "2025-03-01",
            "seen": "2025-03-01T08:00:00",
            "tags": ["x"],
            "n": 7,
        },
        {"id": 2, "name": "grace", "score": None, "day": "2025-03-02", "seen": None,
         "tags": None, "n": None},
    ]
    described = aichemy(warehouse, "DESCRIBE iceberg.py.people")
    assert [(r["Column"], r["Type"]) for r in described] == [
        ("id", "bigint"),
        ("name", "varchar"),
        ("score", "double"),
        ("day", "date"),
        ("seen", "timestamp(6)"),
        ("tags", "array(varchar)"),
        ("n", "integer"),
    ]

    # aichemy appends into PyIceberg's partitioned table; PyIceberg sees both commits.
    aichemy(
        warehouse,
        "INSERT INTO iceberg.py.people (id, name, day, tags) "
        "VALUES (3, 'linus', DATE '2025-03-01', ARRAY['y', 'z'])",
    )
    table = catalog(warehouse).load_table("py.people")
    assert len(table.snapshots()) == 2
    back = table.scan(row_filter="id = 3").to_arrow().to_pylist()
    assert back == [
        {
            "id": 3,
            "name": "linus",
            "score": None,
            "day": datetime.date(2025, 3, 1),
            "seen": None,
            "tags": ["y", "z"],
            "n": None,
        }
    ]
    files = [f.file for f in table.scan(row_filter="id = 3").plan_files()]
    assert any(f.partition[1] == "linus" for f in files)

    # A failed statement leaves PyIceberg's view of the table unchanged.
    failed = subprocess.run(
        sql_command(warehouse, "INSERT INTO iceberg.py.people (name) VALUES ('nobody')"),
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    assert "CONSTRAINT_VIOLATION" in failed.stderr
    assert len(catalog(warehouse).load_table("py.people").snapshots()) == 2
