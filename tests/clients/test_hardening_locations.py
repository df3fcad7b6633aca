"""Table locations cannot escape the warehouse or take over another table's files (issue 28,
parts 2 and 3), against `aichemy serve` on its defaults: symbolic links inside the warehouse
that lead outside it, encoded `..` in REST locations, tables and schemas placed at the
warehouse root, over a catalog's folder or over another table (of any format, through SQL
or the Iceberg REST catalog), `write.data.path` properties, and DROP/purge deleting only
what the dropped table owns."""

import json
import os
import urllib.error
import urllib.request

import pytest
import trino
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField

from lakehouse import Server, catalog as sql_catalog

FORMATS = ("iceberg", "delta", "lance")


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("locations")
    warehouse = root / "wh"
    server = Server(warehouse)
    server.warehouse = warehouse
    server.outside = root / "outside"
    server.outside.mkdir()
    (warehouse / "escape").symlink_to(server.outside, target_is_directory=True)
    yield server
    server.stop()


def run(server, statement):
    cur = trino.dbapi.connect(host="127.0.0.1", port=server.http_port, user="alice").cursor()
    cur.execute(statement)
    return cur.fetchall()


def refused(server, statement):
    """The error of a statement that must fail."""
    with pytest.raises(trino.exceptions.TrinoQueryError) as e:
        run(server, statement)
    return e.value


def rest(server, path, body=None, method="POST"):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}/iceberg/v1{path}", data=data, method=method,
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


SCHEMA_JSON = {"type": "struct", "schema-id": 0,
               "fields": [{"id": 1, "name": "x", "type": "long", "required": False}]}


def create_rest_table(server, namespace, name, location=None, properties=None):
    body = {"name": name, "schema": SCHEMA_JSON, "properties": properties or {}}
    if location is not None:
        body["location"] = location
    return rest(server, f"/namespaces/{namespace}/tables", body)


def files_under(folder):
    return sorted(os.path.join(d, f) for d, _, files in os.walk(folder) for f in files)


def test_symbolic_links_cannot_carry_tables_outside_the_warehouse(lake):
    escape = f"file://{lake.warehouse}/escape"
    for fmt in FORMATS:
        run(lake, f"CREATE SCHEMA {fmt}.sym")
        e = refused(lake, f"CREATE TABLE {fmt}.sym.t (x BIGINT) WITH (location = '{escape}/{fmt}_t')")
        assert e.error_name == "INVALID_TABLE_PROPERTY", e
        assert "symbolic link" in e.message, e.message
        e = refused(lake, f"CREATE TABLE {fmt}.sym.c WITH (location = '{escape}/{fmt}_c') "
                          "AS SELECT 1 AS x")
        assert e.error_name == "INVALID_TABLE_PROPERTY" and "symbolic link" in e.message
        e = refused(lake, f"CREATE SCHEMA {fmt}.linked WITH (location = '{escape}/{fmt}_s')")
        assert e.error_name == "INVALID_SCHEMA_PROPERTY" and "symbolic link" in e.message
        assert run(lake, f"SHOW TABLES FROM {fmt}.sym") == []
    # A schema's folder replaced by a link after the schema was made: its managed tables
    # are refused too (the location is resolved again when the table is created).
    run(lake, "CREATE SCHEMA delta.late")
    (lake.warehouse / "delta").mkdir(exist_ok=True)
    (lake.warehouse / "delta" / "late").symlink_to(lake.outside, target_is_directory=True)
    e = refused(lake, "CREATE TABLE delta.late.t AS SELECT 1 AS x")
    assert "symbolic link" in e.message, e.message
    # Through the REST catalog as well.
    assert rest(lake, "/namespaces", {"namespace": ["rsym"]})[0] == 200
    status, body = create_rest_table(lake, "rsym", "t", f"{escape}/rest_t")
    assert status == 400 and body["error"]["type"] == "BadRequestException", body
    assert "symbolic link" in body["error"]["message"]
    assert files_under(lake.outside) == []


def test_a_link_placed_inside_a_table_stops_its_inserts(lake):
    """The table's folder is checked again right before an INSERT writes into it."""
    for fmt, folder in (("iceberg", "data"), ("delta", "_delta_log"), ("lance", "data")):
        run(lake, f"CREATE SCHEMA {fmt}.grow")
        run(lake, f"CREATE TABLE {fmt}.grow.t AS SELECT BIGINT '1' AS x")
        location = lake.warehouse / fmt / "grow" / "t"
        target = lake.outside / f"{fmt}-{folder}"
        os.rename(location / folder, target)
        (location / folder).symlink_to(target, target_is_directory=True)
        before = files_under(lake.outside)
        e = refused(lake, f"INSERT INTO {fmt}.grow.t VALUES (2)")
        assert "symbolic link" in e.message, (fmt, e.message)
        assert files_under(lake.outside) == before, fmt


def test_encoded_dot_dot_in_a_rest_location_is_a_bad_request(lake):
    assert rest(lake, "/namespaces", {"namespace": ["dots"]})[0] == 200
    for location in (f"file://{lake.warehouse}/iceberg/dots/..%2f..%2f..%2fout",
                     f"file://{lake.warehouse}/iceberg/dots/%2e%2e/%2e%2e/out",
                     f"file://{lake.warehouse}/iceberg/dots/a%5c..%5c..%5cout"):
        status, body = create_rest_table(lake, "dots", "t", location)
        assert status == 400 and body["error"]["type"] == "BadRequestException", (location, body)
        assert body["error"]["code"] == 400
    assert rest(lake, "/namespaces/dots/tables", method="GET")[1]["identifiers"] == []


def test_nothing_is_placed_at_the_warehouse_root_or_its_reserved_folders(lake):
    wh = f"file://{lake.warehouse}"
    assert rest(lake, "/namespaces", {"namespace": ["evil"]})[0] == 200
    for location in (wh, f"{wh}/", f"{wh}/iceberg", f"{wh}/delta", f"{wh}/metastore.db",
                     f"{wh}/tls", f"{wh}/evil/../iceberg"):
        status, body = create_rest_table(lake, "evil", "evil", location)
        assert status == 400 and body["error"]["type"] == "BadRequestException", (location, body)
    status, body = rest(lake, "/namespaces", {"namespace": ["root"], "properties": {"location": wh}})
    assert status == 400, body
    for fmt in ("delta", "lance", "hive"):
        for location in (wh, f"{wh}/iceberg", f"{wh}/delta"):
            e = refused(lake, f"CREATE SCHEMA {fmt}.evil WITH (location = '{location}')")
            assert e.error_name == "INVALID_SCHEMA_PROPERTY", e
            assert "may not overlap" in e.message, e.message
    e = refused(lake, f"CREATE TABLE delta.sym.evil (x BIGINT) WITH (location = '{wh}')")
    assert e.error_name == "INVALID_TABLE_PROPERTY" and "warehouse root" in e.message, e.message
    e = refused(lake, f"CREATE TABLE iceberg.sym.evil (x BIGINT) WITH (location = '{wh}/iceberg')")
    assert "catalog 'iceberg'" in e.message, e.message
    # Nothing was created and the lakehouse still works.
    assert (lake.warehouse / "metastore.db").exists()
    assert run(lake, "SELECT 1") == [[1]]


def test_no_table_is_placed_over_another(lake):
    wh = f"file://{lake.warehouse}"
    run(lake, "CREATE SCHEMA iceberg.ov")
    run(lake, "CREATE TABLE iceberg.ov.a AS SELECT BIGINT '1' AS x")
    run(lake, "CREATE SCHEMA delta.ov")
    run(lake, "CREATE TABLE delta.ov.d AS SELECT BIGINT '2' AS x")
    a, d = f"{wh}/iceberg/ov/a", f"{wh}/delta/ov/d"
    for fmt in FORMATS:
        for location in (a, f"{a}/", f"{a}/data", d, f"{d}/sub", f"{wh}/iceberg/ov"):
            e = refused(lake, f"CREATE TABLE {fmt}.sym.x (x BIGINT) WITH (location = '{location}')")
            assert e.error_name == "INVALID_TABLE_PROPERTY", (fmt, location, e)
            assert "may not overlap" in e.message, e.message
    run(lake, "CREATE SCHEMA hive.ov")
    e = refused(lake, f"CREATE TABLE hive.ov.x (x BIGINT) WITH (external_location = '{a}')")
    assert e.error_name == "INVALID_TABLE_PROPERTY" and "iceberg.ov.a" in e.message, e.message
    # A schema at another table's folder or another schema's folder (the issue's
    # `CREATE TABLE delta.evil.iceberg …` needs a schema at the warehouse root).
    for location in (a, f"{a}/inner", f"{wh}/iceberg/ov"):
        e = refused(lake, f"CREATE SCHEMA delta.evil WITH (location = '{location}')")
        assert e.error_name == "INVALID_SCHEMA_PROPERTY", (location, e)
    # Through the REST catalog: inside, at or over an existing table, or over a schema.
    for location in (a, f"{a}/metadata/x", d, f"{wh}/iceberg/ov", f"{wh}/delta/ov"):
        status, body = create_rest_table(lake, "ov", "r", location)
        assert status == 400 and body["error"]["type"] == "BadRequestException", (location, body)
    # write.data.path / write.metadata.path must stay inside the table's own folder.
    for key in ("write.data.path", "write.metadata.path"):
        for path in (f"file://{lake.outside}", d, f"{wh}/iceberg/ov/a/data"):
            status, body = create_rest_table(lake, "ov", "p", f"{wh}/iceberg/ov/p", {key: path})
            assert status == 400, (key, path, body)
    status, _ = create_rest_table(lake, "ov", "p", f"{wh}/iceberg/ov/p",
                                  {"write.data.path": f"{wh}/iceberg/ov/p/files"})
    assert status == 200
    status, body = rest(lake, "/namespaces/ov/tables/p", {"requirements": [], "updates": [
        {"action": "set-properties", "updates": {"write.data.path": f"file://{lake.outside}"}}]})
    assert status == 400, body
    status, body = rest(lake, "/namespaces/ov/tables/p", {"requirements": [], "updates": [
        {"action": "set-location", "location": a}]})
    assert status == 400, body
    run(lake, "INSERT INTO iceberg.ov.p VALUES (5)")
    assert run(lake, "SELECT x FROM iceberg.ov.p") == [[5]]
    assert files_under(lake.warehouse / "iceberg" / "ov" / "p" / "files")
    # A renamed table keeps its folder; a new table of the old name gets a folder of its
    # own instead of sharing it, and dropping the new one leaves the renamed one whole.
    for fmt in FORMATS:
        run(lake, f"CREATE TABLE {fmt}.sym.old AS SELECT BIGINT '7' AS x")
        run(lake, f"ALTER TABLE {fmt}.sym.old RENAME TO {fmt}.sym.kept")
        run(lake, f"CREATE TABLE {fmt}.sym.old AS SELECT BIGINT '8' AS x")
        run(lake, f"DROP TABLE {fmt}.sym.old")
        assert run(lake, f"SELECT x FROM {fmt}.sym.kept") == [[7]], fmt
    # The other tables are untouched.
    assert run(lake, "SELECT x FROM iceberg.ov.a") == [[1]]
    assert run(lake, "SELECT x FROM delta.ov.d") == [[2]]


def test_drop_and_purge_delete_only_what_the_table_owns(lake):
    """Tables recorded over others (by another client on the shared SQL catalog, or before
    overlaps were refused) never take the others' files with them."""
    run(lake, "CREATE SCHEMA iceberg.own")
    run(lake, "CREATE TABLE iceberg.own.inner AS SELECT BIGINT '1' AS x")
    run(lake, "CREATE SCHEMA delta.own")
    run(lake, "CREATE TABLE delta.own.d AS SELECT BIGINT '2' AS x")
    pyiceberg = sql_catalog(lake.warehouse)
    schema = Schema(NestedField(1, "x", LongType(), required=False))
    wh = lake.warehouse
    pyiceberg.create_table("own.outer", schema, location=f"file://{wh}/iceberg/own")
    pyiceberg.create_table("own.root", schema, location=f"file://{wh}")
    pyiceberg.create_table("own.catalog", schema, location=f"file://{wh}/delta")
    pyiceberg.create_table("own.linked", schema, location=f"file://{wh}/escape/linked")
    (lake.outside / "precious.txt").write_text("keep me")
    before = files_under(wh)
    run(lake, "DROP TABLE iceberg.own.outer")
    status, _ = rest(lake, "/namespaces/own/tables/root?purgeRequested=true", method="DELETE")
    assert status == 204
    status, _ = rest(lake, "/namespaces/own/tables/catalog?purgeRequested=true", method="DELETE")
    assert status == 204
    status, _ = rest(lake, "/namespaces/own/tables/linked?purgeRequested=true", method="DELETE")
    assert status == 204
    assert (lake.outside / "precious.txt").read_text() == "keep me"
    # Each of them shares its folder with something else: nothing was deleted.
    assert set(before) - set(files_under(wh)) == set()
    assert (wh / "metastore.db").exists()
    assert run(lake, "SELECT x FROM iceberg.own.inner") == [[1]]
    assert run(lake, "SELECT x FROM delta.own.d") == [[2]]
    assert run(lake, "SHOW TABLES FROM iceberg.own") == [["inner"]]
    # An ordinary drop and purge still delete the table's files.
    run(lake, "CREATE TABLE iceberg.own.plain AS SELECT BIGINT '3' AS x")
    run(lake, "DROP TABLE iceberg.own.plain")
    assert files_under(wh / "iceberg" / "own" / "plain") == []
    run(lake, "CREATE TABLE delta.own.plain AS SELECT BIGINT '3' AS x")
    run(lake, "DROP TABLE delta.own.plain")
    assert files_under(wh / "delta" / "own" / "plain") == []
    assert run(lake, "SELECT x FROM iceberg.own.inner") == [[1]]
