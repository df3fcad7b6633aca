"""The Iceberg REST Catalog API under /iceberg through PyIceberg's RestCatalog: the same
tables SQL sees, appends, schema evolution, staged creates, commit conflicts, the REST
error model, and authentication with the server's users."""

import json
import os
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pyarrow as pa
import pytest
import trino
from pyiceberg.catalog import load_catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchTableError,
    OAuthError,
    TableAlreadyExistsError,
)
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from lakehouse import BIN, Server

PASSWORD = "rest-catalog-pw-81"


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("rest") / "wh"
    server = Server(warehouse)
    server.warehouse = warehouse
    yield server
    server.stop()


def rest(server, **properties):
    return load_catalog("rest", **{"type": "rest",
                                   "uri": f"http://127.0.0.1:{server.http_port}/iceberg",
                                   **properties})


def sql(server, statement):
    cur = trino.dbapi.connect(host="127.0.0.1", port=server.http_port, user="alice").cursor()
    cur.execute(statement)
    return cur.fetchall()


SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "name", StringType(), required=False),
)


def test_pyiceberg_tables_and_sql_tables_are_the_same(open_server):
    catalog = rest(open_server)
    catalog.create_namespace("shop")
    with pytest.raises(NamespaceAlreadyExistsError):
        catalog.create_namespace("shop")
    assert ("shop",) in catalog.list_namespaces()
    table = catalog.create_table("shop.items", schema=SCHEMA)
    table.append(pa.table({"id": pa.array([1, 2], pa.int64()), "name": ["tea", "cake"]}))
    # Visible to SQL at once.
    assert sql(open_server, "SHOW TABLES FROM iceberg.shop") == [["items"]]
    assert sql(open_server, "SELECT id, name FROM iceberg.shop.items ORDER BY id") == [
        [1, "tea"], [2, "cake"]]
    # And the other way round.
    sql(open_server, "INSERT INTO iceberg.shop.items VALUES (3, 'jam')")
    sql(open_server, "CREATE TABLE iceberg.shop.orders AS SELECT 10 AS item, 2 AS qty")
    assert sorted(catalog.load_table("shop.items").scan().to_arrow()["id"].to_pylist()) == [
        1, 2, 3]
    assert catalog.load_table("shop.orders").scan().to_arrow().to_pylist() == [
        {"item": 10, "qty": 2}]
    assert {t[1] for t in catalog.list_tables("shop")} == {"items", "orders"}
    assert catalog.table_exists("shop.items")
    assert not catalog.table_exists("shop.nothing")


def test_schema_evolution_is_seen_by_sql(open_server):
    catalog = rest(open_server)
    catalog.create_namespace("evolve")
    table = catalog.create_table("evolve.t", schema=SCHEMA)
    table.append(pa.table({"id": pa.array([1], pa.int64()), "name": ["a"]}))
    with table.update_schema() as update:
        update.add_column("price", LongType())
    table = catalog.load_table("evolve.t")
    table.append(pa.table({"id": pa.array([2], pa.int64()), "name": ["b"],
                           "price": pa.array([5], pa.int64())}))
    assert sql(open_server, "SELECT id, name, price FROM iceberg.evolve.t ORDER BY id") == [
        [1, "a", None], [2, "b", 5]]
    assert [c[0] for c in sql(open_server, "DESCRIBE iceberg.evolve.t")] == [
        "id", "name", "price"]


def test_a_stale_append_fails_with_commit_failed(open_server):
    catalog = rest(open_server)
    catalog.create_namespace("race")
    # PyIceberg retries a 409 by itself; without retries the conflict reaches the caller.
    catalog.create_table("race.t", schema=SCHEMA,
                         properties={"commit.retry.num-retries": "0"})
    first = catalog.load_table("race.t")
    second = catalog.load_table("race.t")
    first.append(pa.table({"id": pa.array([1], pa.int64()), "name": ["first"]}))
    with pytest.raises(CommitFailedException):
        second.append(pa.table({"id": pa.array([2], pa.int64()), "name": ["second"]}))
    # The lost commit changed nothing; a retry on fresh metadata lands.
    assert sql(open_server, "SELECT name FROM iceberg.race.t") == [["first"]]
    second.refresh()
    second.append(pa.table({"id": pa.array([2], pa.int64()), "name": ["second"]}))
    assert sql(open_server, "SELECT count(*) FROM iceberg.race.t") == [[2]]
    # With its default retries, PyIceberg rebases the stale append on the 409 and lands.
    catalog.create_table("race.r", schema=SCHEMA)
    first, second = catalog.load_table("race.r"), catalog.load_table("race.r")
    first.append(pa.table({"id": pa.array([1], pa.int64()), "name": ["first"]}))
    second.append(pa.table({"id": pa.array([2], pa.int64()), "name": ["second"]}))
    assert sql(open_server, "SELECT id FROM iceberg.race.r ORDER BY id") == [[1], [2]]


def test_staged_create_rename_and_drop_with_purge(open_server):
    catalog = rest(open_server)
    catalog.create_namespace("staged")
    with catalog.create_table_transaction("staged.t", schema=SCHEMA) as tx:
        tx.append(pa.table({"id": pa.array([7], pa.int64()), "name": ["seven"]}))
    assert sql(open_server, "SELECT id, name FROM iceberg.staged.t") == [[7, "seven"]]
    with pytest.raises(TableAlreadyExistsError):
        catalog.create_table("staged.t", schema=SCHEMA)
    catalog.rename_table("staged.t", "staged.renamed")
    assert sql(open_server, "SHOW TABLES FROM iceberg.staged") == [["renamed"]]
    with pytest.raises(NamespaceNotEmptyError):
        catalog.drop_namespace("staged")
    location = catalog.load_table("staged.renamed").location()
    catalog.purge_table("staged.renamed")
    with pytest.raises(NoSuchTableError):
        catalog.load_table("staged.renamed")
    # Every file is gone (object stores have no folders; empty local ones may stay).
    left = [f for _, _, files in os.walk(location.removeprefix("file://")) for f in files]
    assert left == []
    catalog.drop_namespace("staged")
    assert sql(open_server, "SHOW SCHEMAS FROM iceberg LIKE 'staged'") == []


def post(server, path, body, method="POST"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}/iceberg{path}", data=data, method=method,
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_bad_requests_answer_the_error_model_and_change_nothing(open_server):
    catalog = rest(open_server)
    catalog.create_namespace("bad")
    table = catalog.create_table("bad.t", schema=SCHEMA)
    before = table.metadata_location
    status, body = post(open_server, "/v1/namespaces/bad/tables", b"{not json")
    assert status == 400 and body["error"]["type"] == "BadRequestException"
    assert body["error"]["code"] == 400
    status, body = post(open_server, "/v1/namespaces/bad/tables/t",
                        {"requirements": [], "updates": [{"action": "drop-everything"}]})
    assert status == 400, body
    status, body = post(open_server, "/v1/namespaces/bad/tables/t", {
        "requirements": [{"type": "assert-current-schema-id", "current-schema-id": 42}],
        "updates": [{"action": "set-properties", "updates": {"k": "v"}}]})
    assert status == 409 and body["error"]["type"] == "CommitFailedException"
    status, body = post(open_server, "/v1/namespaces/missing/tables/t",
                        {"requirements": [], "updates": []})
    assert status == 404 and body["error"]["type"] == "NoSuchNamespaceException"
    status, body = post(open_server, "/v1/namespaces/bad/tables/none",
                        {"requirements": [], "updates": []})
    assert status == 404 and body["error"]["type"] == "NoSuchTableException"
    for location in ("file:///etc/evil", f"file://{open_server.warehouse}/../escape",
                     "http://169.254.169.254/latest", "s3://another-bucket/t"):
        status, body = post(open_server, "/v1/namespaces/bad/tables", {
            "name": "escape", "location": location,
            "schema": {"type": "struct", "schema-id": 0, "fields": []}})
        assert status == 400 and "Invalid location" in body["error"]["message"], location
        status, body = post(open_server, "/v1/namespaces/bad/tables/t", {
            "requirements": [], "updates": [{"action": "set-location", "location": location}]})
        assert status == 400, (location, body)
    status, body = post(open_server, "/v1/namespaces", {
        "namespace": ["escape"], "properties": {"location": "file:///tmp/outside"}})
    assert status == 400
    assert catalog.load_table("bad.t").metadata_location == before
    assert ("escape",) not in catalog.list_namespaces()


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rest-secured")
    password_file = folder / "password.db"
    done = subprocess.run([BIN, "user", "add", "alice", "--password-file", str(password_file)],
                          input=PASSWORD + "\n", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    server = Server(folder / "wh", "--password-file", str(password_file))
    server.certificate = folder / "wh" / "tls" / "aichemy.crt"
    yield server
    log = server.stop()
    assert PASSWORD not in log


def secured_catalog(server, **properties):
    base = f"https://localhost:{server.https_port}/iceberg"
    return load_catalog("secured", **{
        "type": "rest", "uri": base, "oauth2-server-uri": f"{base}/v1/oauth/tokens",
        "ssl": {"cabundle": str(server.certificate)}, **properties})


@pytest.fixture()
def own_ca_bundle(monkeypatch):
    # requests prefers these variables over a session's CA bundle (psf/requests#3829).
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def test_oauth2_client_credentials_and_basic_auth(secured, own_ca_bundle):
    catalog = secured_catalog(secured, credential=f"alice:{PASSWORD}")
    catalog.create_namespace("auth")
    catalog.create_table("auth.t", schema=SCHEMA)
    assert catalog.list_tables("auth") == [("auth", "t")]
    with pytest.raises(OAuthError):
        secured_catalog(secured, credential="alice:wrong").list_namespaces()
    basic = secured_catalog(secured, **{"auth": {"type": "basic", "basic": {
        "username": "alice", "password": PASSWORD}}})
    assert ("auth",) in basic.list_namespaces()
    # Plain HTTP never takes credentials when passwords are configured.
    request = urllib.request.Request(
        f"http://127.0.0.1:{secured.http_port}/iceberg/v1/namespaces")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request)
    assert e.value.code == 401
    assert json.loads(e.value.read())["error"]["type"] == "NotAuthorizedException"
    forged = urllib.request.Request(
        f"https://localhost:{secured.https_port}/iceberg/v1/namespaces",
        headers={"Authorization": "Bearer forged"})
    context = ssl.create_default_context(cafile=str(secured.certificate))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(forged, context=context)
    assert e.value.code == 401


def test_token_endpoint_takes_client_credentials_by_http_basic(secured):
    """RFC 6749 section 2.3.1: the server takes the client's credentials by HTTP Basic
    (DuckDB's iceberg secret sends them so), form-urlencoded before encoding."""
    import base64
    context = ssl.create_default_context(cafile=str(secured.certificate))
    url = f"https://localhost:{secured.https_port}/iceberg/v1/oauth/tokens"

    def token(user, password, form=b"grant_type=client_credentials"):
        pair = f"{urllib.parse.quote(user)}:{urllib.parse.quote(password)}".encode()
        request = urllib.request.Request(url, data=form, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic " + base64.b64encode(pair).decode()})
        try:
            with urllib.request.urlopen(request, context=context) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    status, body = token("alice", PASSWORD)
    assert status == 200 and body["token_type"] == "bearer", body
    status, body = token("alice", "wrong")
    assert status == 401 and body["error"] == "invalid_client"
    status, body = token("alice", PASSWORD,
                         b"grant_type=client_credentials&client_id=mallory")
    assert status == 400 and body["error"] == "invalid_request"


def test_create_table_takes_the_format_version_among_properties(open_server):
    """PyIceberg, Spark and DuckDB send `format-version` in a new table's properties; the
    metadata holds it, not the properties."""
    rest(open_server).create_namespace("versions")
    schema = {"type": "struct", "schema-id": 0,
              "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}
    status, body = post(open_server, "/v1/namespaces/versions/tables", {
        "name": "v2", "schema": schema, "properties": {"format-version": "2", "owner": "x"}})
    assert status == 200, body
    metadata = json.loads(body)["metadata"]
    assert metadata["format-version"] == 2
    assert metadata["properties"].get("owner") == "x"
    assert "format-version" not in metadata["properties"]
    status, body = post(open_server, "/v1/namespaces/versions/tables", {
        "name": "v9", "schema": schema, "properties": {"format-version": "9"}})
    assert status == 400 and "Unsupported format version" in body["error"]["message"]
    assert sql(open_server, "SHOW TABLES FROM iceberg.versions") == [["v2"]]


def test_multi_table_transactions_land_whole_or_not_at_all(open_server):
    catalog = rest(open_server)
    catalog.create_namespace("tx")
    a = catalog.create_table("tx.a", schema=SCHEMA)
    b = catalog.create_table("tx.b", schema=SCHEMA)

    def change(table, schema_id, value):
        return {"identifier": {"namespace": ["tx"], "name": table.name()[-1]},
                "requirements": [{"type": "assert-current-schema-id",
                                  "current-schema-id": schema_id},
                                 {"type": "assert-table-uuid", "uuid": str(table.metadata.table_uuid)}],
                "updates": [{"action": "set-properties", "updates": {"owner": value}}]}

    status, body = post(open_server, "/v1/transactions/commit", {"table-changes": [
        change(a, 0, "x"), change(b, 99, "x")]})
    assert status == 409 and body["error"]["type"] == "CommitFailedException"
    assert "owner" not in catalog.load_table("tx.a").properties
    status, _ = post(open_server, "/v1/transactions/commit", {"table-changes": [
        change(a, 0, "y"), change(b, 0, "y")]})
    assert status == 204
    assert catalog.load_table("tx.a").properties["owner"] == "y"
    assert catalog.load_table("tx.b").properties["owner"] == "y"
