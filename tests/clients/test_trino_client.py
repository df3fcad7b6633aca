"""The python `trino` client and SQLAlchemy's trino dialect against `aichemy serve`, unchanged:
catalogs, every type with the python type the client maps it to, cursor.description,
rowcount, qmark parameters, errors, USE, cancel, and reflection."""

import datetime
import decimal
import urllib.request

import pytest
import trino
from trino.dbapi import connect

from lakehouse import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    served = Server(tmp_path_factory.mktemp("served"))
    yield served.http_port
    served.stop()


def query_info(port, query_id, user="admin"):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/query/{query_id}",
                                     headers={"X-Trino-User": user})
    with urllib.request.urlopen(request) as response:
        return response.read()


def cursor(port, **kwargs):
    return connect(host="127.0.0.1", port=port, user="admin", http_scheme="http",
                   **kwargs).cursor()


def test_catalogs_ddl_dml_and_description(server):
    cur = cursor(server)
    cur.execute("SHOW CATALOGS")
    assert cur.fetchall() == [["delta"], ["hive"], ["iceberg"], ["lance"], ["system"]]
    cur.execute("CREATE SCHEMA iceberg.ic_test")
    assert cur.fetchall() == [[True]]
    assert cur.rowcount == -1
    cur.execute("CREATE TABLE iceberg.ic_test.orders (order_id INTEGER, customer_id INTEGER, "
                "order_date DATE, amount DECIMAL(10,2))")
    cur.fetchall()
    cur.execute("INSERT INTO iceberg.ic_test.orders VALUES "
                "(1, 101, DATE '2025-01-15', 99.99), (2, 102, DATE '2025-01-16', 149.50)")
    assert cur.fetchall() == [[2]]
    assert cur.rowcount == 2
    cur.execute("SELECT * FROM iceberg.ic_test.orders ORDER BY order_id")
    assert cur.fetchall() == [
        [1, 101, datetime.date(2025, 1, 15), decimal.Decimal("99.99")],
        [2, 102, datetime.date(2025, 1, 16), decimal.Decimal("149.50")],
    ]
    description = [(d.name, d.type_code, d.precision, d.scale) for d in cur.description]
    assert description == [
        ("order_id", "integer", None, None),
        ("customer_id", "integer", None, None),
        ("order_date", "date", None, None),
        ("amount", "decimal(10,2)", 10, 2),
    ]
    cur.execute("CREATE TABLE iceberg.ic_test.big AS SELECT * FROM iceberg.ic_test.orders")
    assert cur.fetchall() == [[2]]
    assert cur.rowcount == 2


def test_every_type_round_trips(server):
    cur = cursor(server)
    # Integer literals are BIGINT in AIchemy (Trino: INTEGER), hence the CAST.
    cur.execute("""SELECT true, CAST(1 AS TINYINT), CAST(2 AS SMALLINT), CAST(3 AS INTEGER), 4,
        CAST(1.5 AS REAL), CAST(2.5 AS DOUBLE), DECIMAL '12.30', 'text', X'0102',
        DATE '2025-01-31', TIMESTAMP '2025-01-31 10:11:12.123456',
        ARRAY[1, 2], MAP(ARRAY['a'], ARRAY[1]), CAST(ROW(1, 'x') AS ROW(a INTEGER, b VARCHAR)),
        nan(), infinity(), NULL""")
    row = cur.fetchall()[0]
    assert row[:12] == [True, 1, 2, 3, 4, 1.5, 2.5, decimal.Decimal("12.30"), "text",
                        b"\x01\x02", datetime.date(2025, 1, 31),
                        datetime.datetime(2025, 1, 31, 10, 11, 12, 123456)]
    assert row[12] == [1, 2]
    assert row[13] == {"a": 1}
    assert tuple(row[14]) == (1, "x")
    assert row[15] != row[15]  # NaN
    assert row[16] == float("inf")
    assert row[17] is None
    types = [d.type_code for d in cur.description]
    assert types[:9] == ["boolean", "tinyint", "smallint", "integer", "bigint", "real",
                         "double", "decimal(4,2)", "varchar"]
    assert types[14] == "row(a integer, b varchar)"


def test_qmark_parameters(server):
    cur = cursor(server)
    cur.execute("SELECT ? + 1 AS x, ? AS s, ? AS d", [41, "it's", datetime.date(2025, 1, 2)])
    assert cur.fetchall() == [[42, "it's", datetime.date(2025, 1, 2)]]


def test_errors_are_trino_errors(server):
    cur = cursor(server)
    with pytest.raises(trino.exceptions.TrinoUserError) as error:
        cur.execute("SELECT * FROM iceberg.ic_test.nope")
        cur.fetchall()
    assert error.value.error_name == "TABLE_NOT_FOUND"
    assert "Table 'iceberg.ic_test.nope' does not exist" in error.value.message
    with pytest.raises(trino.exceptions.TrinoUserError) as error:
        cur.execute("SELEC 1")
        cur.fetchall()
    assert error.value.error_name == "SYNTAX_ERROR"
    assert error.value.error_location[0] == 1


def test_use_sets_the_session_catalog_and_schema(server):
    conn = connect(host="127.0.0.1", port=server, user="admin", http_scheme="http")
    cur = conn.cursor()
    cur.execute("CREATE SCHEMA IF NOT EXISTS iceberg.used")
    cur.fetchall()
    cur.execute("USE iceberg.used")
    cur.fetchall()
    assert (conn._client_session.catalog, conn._client_session.schema) == ("iceberg", "used")
    cur.execute("CREATE TABLE t AS SELECT 1 AS x")
    cur.fetchall()
    cur.execute("SELECT x FROM t")
    assert cur.fetchall() == [[1]]


def test_large_results_page_and_cancel(server):
    cur = cursor(server)
    cur.execute("SELECT value FROM generate_series(1, 100000)")
    total = 0
    count = 0
    for row in cur:
        total += row[0]
        count += 1
    assert (count, total) == (100000, 100000 * 100001 // 2)
    cur = cursor(server)
    cur.execute("SELECT a.value FROM generate_series(1, 100000000) a")
    cur.fetchone()
    cur.cancel()
    assert b'"state":"FAILED"' in query_info(server, cur.query_id)
    with pytest.raises(urllib.error.HTTPError) as error:
        query_info(server, cur.query_id, user="someone-else")
    assert error.value.code == 403


def test_basic_auth_over_http_is_refused(server):
    request = urllib.request.Request(
        f"http://127.0.0.1:{server}/v1/statement", data=b"SELECT 1", method="POST",
        headers={"X-Trino-User": "admin", "Authorization": "Basic YWRtaW46c2VjcmV0"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request)
    assert error.value.code == 401
    assert error.value.read() == b"Password not allowed for insecure authentication"


def test_sqlalchemy_reflection_and_pandas(server):
    import pandas
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"trino://admin@127.0.0.1:{server}/iceberg")
    inspector = sqlalchemy.inspect(engine)
    assert "ic_test" in inspector.get_schema_names()
    assert "orders" in inspector.get_table_names(schema="ic_test")
    columns = inspector.get_columns("orders", schema="ic_test")
    assert [(c["name"], str(c["type"])) for c in columns] == [
        ("order_id", "INTEGER"), ("customer_id", "INTEGER"), ("order_date", "DATE"),
        ("amount", "DECIMAL(10, 2)")]
    with engine.connect() as connection:
        frame = pandas.read_sql("SELECT * FROM ic_test.orders ORDER BY order_id", connection)
    assert list(frame["order_id"]) == [1, 2]


def test_system_runtime_queries_lists_queries(server):
    cur = connect(host="127.0.0.1", port=server, user="auditor", http_scheme="http",
                  source="pytest-audit").cursor()
    cur.execute("SELECT 42")
    cur.fetchall()
    cur.execute("SELECT query_id, state, user, source, query, rows "
                "FROM system.runtime.queries WHERE user = 'auditor' ORDER BY created")
    rows = cur.fetchall()
    assert [r[1:] for r in rows] == [
        ["FINISHED", "auditor", "pytest-audit", "SELECT 42", 1],
        ["RUNNING", "auditor", "pytest-audit", rows[1][4], 0],
    ]
    assert rows[0][0].count("_") == 3
