"""The npm trino-client (Node.js) against `aichemy serve`, unchanged: a query, typed columns
as the python client sees the same protocol, and a syntax error's errorName."""

import pytest
from trino.dbapi import connect

from lakehouse import Server, node_sql

TYPED = """SELECT * FROM (VALUES
    (CAST(7 AS BIGINT), 'hé', ARRAY[1.5E0, 2.5E0], DECIMAL '12.30',
     TIMESTAMP '2025-01-31 10:11:12.123456'),
    (CAST(-8 AS BIGINT), NULL, ARRAY[], DECIMAL '-0.05', NULL)
) AS t(b, v, a, d, ts) ORDER BY b DESC"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    served = Server(tmp_path_factory.mktemp("served"))
    yield served
    served.stop()


def url(server):
    return f"http://127.0.0.1:{server.http_port}"


def test_select_one(server):
    [result] = node_sql(url(server), "admin", ["SELECT 1"])
    assert result["error"] is None
    assert result["columns"] == ["_col0"]
    assert result["rows"] == [[1]]


def test_typed_columns_match_the_python_client(server):
    [result] = node_sql(url(server), "admin", [TYPED])
    assert result["error"] is None
    assert result["columns"] == ["b", "v", "a", "d", "ts"]
    assert result["types"] == ["bigint", "varchar", "array(double)", "decimal(4,2)",
                               "timestamp(6)"]
    assert result["rows"] == [
        [7, "hé", [1.5, 2.5], "12.30", "2025-01-31 10:11:12.123456"],
        [-8, None, [], "-0.05", None],
    ]
    # The python client with its raw values (no Decimal or datetime) reads the same JSON.
    cur = connect(host="127.0.0.1", port=server.http_port, user="admin", http_scheme="http",
                  legacy_primitive_types=True).cursor()
    cur.execute(TYPED)
    assert cur.fetchall() == result["rows"]
    assert [d.name for d in cur.description] == result["columns"]
    assert [d.type_code for d in cur.description] == result["types"]


def test_syntax_error_has_its_error_name(server):
    failed, after = node_sql(url(server), "admin", ["SELEC 1", "SELECT 'still here'"])
    assert failed["error"]["errorName"] == "SYNTAX_ERROR"
    assert "SELEC" in failed["error"]["message"]
    assert failed["rows"] == []
    assert after["error"] is None
    assert after["rows"] == [["still here"]]
