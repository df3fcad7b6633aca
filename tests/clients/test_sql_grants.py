"""SQL grants (issue 34) through the python `trino` client: `access-control.name=sql-standard`,
roles, privileges on tables and schemas, DENY, owners, `SET ROLE` carried by the client's
`X-Trino-Role` header, row filters and column masks declared in SQL, all kept in the
metastore — the reference scenario's domains and roles."""

import http.server
import json
import subprocess
import threading
import time

import pyarrow as pa
import pytest
import trino
from pyiceberg.catalog import load_catalog
from pyiceberg.exceptions import ForbiddenError
from trino.auth import BasicAuthentication

from lakehouse import BIN, Server


def connect(port, user, roles=None):
    return trino.dbapi.connect(host="127.0.0.1", port=port, user=user, http_scheme="http",
                               roles=roles).cursor()


def run(port, user, sql, roles=None):
    cursor = connect(port, user, roles)
    cursor.execute(sql)
    return cursor.fetchall()


def failed(port, user, sql, roles=None):
    with pytest.raises(trino.exceptions.TrinoUserError) as failure:
        run(port, user, sql, roles)
    return failure.value


def denied(port, user, sql, roles=None):
    error = failed(port, user, sql, roles)
    assert error.error_name == "PERMISSION_DENIED", error
    return error.message


ADMIN = {"system": "admin"}


class Collector(http.server.BaseHTTPRequestHandler):
    """Trino's HTTP event listener's far end: keeps what is POSTed."""
    events = []

    def do_POST(self):  # noqa: N802 - the handler's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.events.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def collector():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/events"
    server.shutdown()


@pytest.fixture(scope="module")
def grants_server(tmp_path_factory, collector):
    folder = tmp_path_factory.mktemp("grants")
    (folder / "access-control.properties").write_text(
        "access-control.name=sql-standard\nsql-standard.admin-users=root\n")
    (folder / "group.txt").write_text("emea:rita\n")
    (folder / "group-provider.properties").write_text(
        "group-provider.name=file\nfile.group-file=group.txt\n")
    server = Server(folder / "warehouse",
                    "--access-control-config", str(folder / "access-control.properties"),
                    "--group-provider-config", str(folder / "group-provider.properties"),
                    env={"AICHEMY_AUDIT__HTTP_URL": collector})
    port = server.http_port
    for sql in [
        "CREATE ROLE sales_analyst",
        "CREATE ROLE marketing_analyst",
        "CREATE ROLE data_engineer",
        "CREATE ROLE regional_analyst",
        "GRANT sales_analyst TO ROLE regional_analyst",
        "GRANT sales_analyst TO USER sam",
        "GRANT marketing_analyst TO USER mia",
        "GRANT data_engineer TO USER dan",
        "GRANT regional_analyst TO GROUP emea",
        "CREATE SCHEMA iceberg.sales_gold",
        "CREATE SCHEMA iceberg.marketing_gold",
        "ALTER SCHEMA iceberg.sales_gold SET AUTHORIZATION ROLE data_engineer",
        "CREATE TABLE iceberg.marketing_gold.leads (id BIGINT, email VARCHAR)",
        "INSERT INTO iceberg.marketing_gold.leads VALUES (1, 'lead@x.org')",
        "GRANT SELECT ON SCHEMA iceberg.marketing_gold TO ROLE marketing_analyst",
    ]:
        run(port, "root", sql, ADMIN)
    yield server
    server.stop()


def test_roles_are_created_granted_and_listed_by_the_admin_role(grants_server):
    port = grants_server.http_port
    # The admin role is held, not enabled, until SET ROLE admin (as in Trino's Hive).
    assert denied(port, "root", "CREATE ROLE x") == "Access Denied: Cannot create role x"
    assert denied(port, "sam", "CREATE ROLE x", ADMIN) == "Access Denied: Cannot set role admin"
    error = failed(port, "root", "CREATE ROLE sales_analyst", ADMIN)
    assert error.error_name == "ROLE_ALREADY_EXISTS"
    assert error.message == "Role 'sales_analyst' already exists"
    assert failed(port, "root", "GRANT nobody TO USER sam", ADMIN).error_name == "ROLE_NOT_FOUND"
    assert sorted(run(port, "root", "SHOW ROLES", ADMIN)) == [
        ["admin"], ["data_engineer"], ["marketing_analyst"], ["public"], ["regional_analyst"],
        ["sales_analyst"]]
    assert denied(port, "sam", "SHOW ROLES") == "Access Denied: Cannot show roles"
    assert sorted(run(port, "sam", "SHOW ROLE GRANTS")) == [["public"], ["sales_analyst"]]
    # Rita holds regional_analyst through her group, and sales_analyst through it.
    assert sorted(run(port, "rita", "SHOW CURRENT ROLES")) == [
        ["public"], ["regional_analyst"], ["sales_analyst"]]
    # A cycle is refused.
    error = failed(port, "root", "GRANT regional_analyst TO ROLE sales_analyst", ADMIN)
    assert error.error_name == "INVALID_ARGUMENTS", error


def test_set_role_travels_with_the_client_session(grants_server):
    port = grants_server.http_port
    cursor = connect(port, "rita")
    cursor.execute("SET ROLE sales_analyst")
    cursor.fetchall()
    # The client keeps what X-Trino-Set-Role told it and sends it back.
    assert cursor.connection._client_session.roles == {"system": "ROLE{sales_analyst}"}
    cursor.execute("SHOW CURRENT ROLES")
    assert sorted(cursor.fetchall()) == [["public"], ["sales_analyst"]]
    cursor.execute("SET ROLE NONE")
    cursor.fetchall()
    cursor.execute("SHOW CURRENT ROLES")
    assert cursor.fetchall() == [["public"]]
    assert denied(port, "rita", "SET ROLE data_engineer") == (
        "Access Denied: Cannot set role data_engineer")


def test_schema_owners_create_and_grant_analysts_read(grants_server):
    port = grants_server.http_port
    table = "iceberg.sales_gold.contacts"
    # The data engineers own sales_gold: Dan creates in it, and owns what he creates.
    assert denied(port, "sam", f"CREATE TABLE {table} (id BIGINT)") == (
        f"Access Denied: Cannot create table {table}")
    run(port, "dan", f"CREATE TABLE {table} (id BIGINT, region VARCHAR, email VARCHAR, "
                     "phone VARCHAR)")
    run(port, "dan", f"INSERT INTO {table} VALUES (1, 'EU', 'a@x.org', '5551234'), "
                     "(2, 'US', 'b@x.org', '5559876'), (3, 'EU', 'c@x.org', '5550000')")
    assert denied(port, "sam", f"SELECT * FROM {table}") == (
        f"Access Denied: Cannot select from table {table}")
    # She sees nothing in sales_gold yet: listing it is refused, as Trino refuses it.
    assert denied(port, "sam", "SHOW TABLES FROM iceberg.sales_gold") == (
        "Access Denied: Cannot show tables of schema iceberg.sales_gold")
    run(port, "dan", f"GRANT SELECT ON {table} TO ROLE sales_analyst")
    assert sorted(run(port, "sam", f"SELECT id FROM {table}")) == [[1], [2], [3]]
    assert run(port, "sam", "SHOW TABLES FROM iceberg.sales_gold") == [["contacts"]]
    # Grants are shown in Trino's columns.
    cursor = connect(port, "dan")
    cursor.execute(f"SHOW GRANTS ON TABLE {table}")
    rows = cursor.fetchall()
    assert [d[0] for d in cursor.description] == [
        "Grantor", "Grantor Type", "Grantee", "Grantee Type", "Catalog", "Schema", "Table",
        "Privilege", "Grantable", "With Hierarchy"]
    assert rows == [["dan", "USER", "sales_analyst", "ROLE", "iceberg", "sales_gold",
                     "contacts", "SELECT", "NO", "NO"]]
    # Analysts may not grant on what they only read, nor write to it.
    assert denied(port, "sam", f"GRANT SELECT ON {table} TO USER mia") == (
        f"Access Denied: Cannot grant privilege SELECT on table {table}")
    assert denied(port, "sam", f"INSERT INTO {table} VALUES (4, 'EU', 'd', 'e')") == (
        f"Access Denied: Cannot insert into table {table}")
    # The other domain reads its own schema, not sales.
    assert run(port, "mia", "SELECT id FROM iceberg.marketing_gold.leads") == [[1]]
    assert denied(port, "mia", f"SELECT id FROM {table}") == (
        f"Access Denied: Cannot select from table {table}")
    assert denied(port, "sam", "SELECT id FROM iceberg.marketing_gold.leads") == (
        "Access Denied: Cannot select from table iceberg.marketing_gold.leads")


def test_deny_overrides_a_grant_and_revoke_takes_it_back(grants_server):
    port = grants_server.http_port
    leads = "iceberg.marketing_gold.leads"
    run(port, "root", f"DENY SELECT ON {leads} TO USER mia", ADMIN)
    assert denied(port, "mia", f"SELECT id FROM {leads}") == (
        f"Access Denied: Cannot select from table {leads}")
    run(port, "root", f"REVOKE SELECT ON {leads} FROM USER mia", ADMIN)
    assert run(port, "mia", f"SELECT id FROM {leads}") == [[1]]
    run(port, "root", f"GRANT INSERT ON {leads} TO USER mia WITH GRANT OPTION", ADMIN)
    run(port, "mia", f"INSERT INTO {leads} VALUES (2, 'two@x.org')")
    # With the grant option she passes it on.
    run(port, "mia", f"GRANT INSERT ON {leads} TO USER max")
    run(port, "max", f"INSERT INTO {leads} VALUES (3, 'three@x.org')")
    run(port, "root", f"REVOKE INSERT ON {leads} FROM USER max", ADMIN)
    assert denied(port, "max", f"INSERT INTO {leads} VALUES (4, 'x')") == (
        f"Access Denied: Cannot insert into table {leads}")
    assert sorted(run(port, "mia", f"SELECT id FROM {leads}")) == [[1], [2], [3]]
    error = failed(port, "root", f"GRANT CREATE ON {leads} TO USER mia", ADMIN)
    assert error.error_name == "NOT_SUPPORTED", error


def test_row_filters_and_masks_declared_in_sql_apply_to_their_grantees(grants_server):
    port = grants_server.http_port
    table = "iceberg.sales_gold.contacts"
    run(port, "dan", f"CREATE ROW FILTER ON TABLE {table} FOR ROLE regional_analyst "
                     "AS region = 'EU'")
    run(port, "dan", f"CREATE COLUMN MASK ON TABLE {table} COLUMN email "
                     "FOR ROLE marketing_analyst AS '***'")
    run(port, "dan", f"CREATE COLUMN MASK ON TABLE {table} COLUMN phone "
                     "FOR ROLE marketing_analyst AS substr(phone, 1, 3) || '****'")
    run(port, "dan", f"GRANT SELECT ON {table} TO ROLE marketing_analyst")
    # Rita, a regional analyst, reads her region's rows only, on every path.
    assert sorted(run(port, "rita", f"SELECT id FROM {table}")) == [[1], [3]]
    assert run(port, "rita", f"SELECT count(*) FROM {table}") == [[2]]
    # Sam, a sales analyst outside the region, reads all of it.
    assert run(port, "sam", f"SELECT count(*) FROM {table}") == [[3]]
    # Marketing reads sales contacts masked.
    assert sorted(run(port, "mia", f"SELECT id, email, phone FROM {table}")) == [
        [1, "***", "555****"], [2, "***", "555****"], [3, "***", "555****"]]
    assert sorted(run(port, "sam", f"SELECT email FROM {table} WHERE id = 1")) == [["a@x.org"]]
    # Declared restrictions are listed to the owner.
    assert sorted(r[3:] for r in run(port, "dan", f"SHOW COLUMN MASKS ON {table}")) == [
        ["email", "marketing_analyst", "ROLE", "'***'"],
        ["phone", "marketing_analyst", "ROLE", "substr(phone, 1, 3) || '****'"]]
    # A wrong expression is refused when declared, not when someone reads.
    error = failed(port, "dan", f"CREATE ROW FILTER ON TABLE {table} FOR USER sam "
                                "AS no_such_column = 1")
    assert error.error_name == "INVALID_ROW_FILTER", error
    assert denied(port, "sam", f"CREATE ROW FILTER ON TABLE {table} FOR USER mia AS id = 1") \
        == f"Access Denied: Cannot create row filter on table {table}"
    run(port, "dan", f"DROP ROW FILTER ON TABLE {table} FOR ROLE regional_analyst")
    assert run(port, "rita", f"SELECT count(*) FROM {table}") == [[3]]


def test_owners_move_and_dropped_tables_take_their_grants(grants_server):
    port = grants_server.http_port
    table = "iceberg.sales_gold.scratch"
    run(port, "dan", f"CREATE TABLE {table} (id BIGINT)")
    run(port, "dan", f"GRANT SELECT ON {table} TO USER sam")
    assert run(port, "sam", f"SELECT count(*) FROM {table}") == [[0]]
    assert denied(port, "sam", f"ALTER TABLE {table} SET AUTHORIZATION USER sam") == (
        f"Access Denied: Cannot set authorization for table {table} to USER sam")
    run(port, "dan", f"DROP TABLE {table}")
    # A table made again under the same name starts with no grants.
    run(port, "dan", f"CREATE TABLE {table} (id BIGINT)")
    assert denied(port, "sam", f"SELECT count(*) FROM {table}") == (
        f"Access Denied: Cannot select from table {table}")
    run(port, "dan", f"ALTER TABLE {table} SET AUTHORIZATION USER sam")
    run(port, "sam", f"INSERT INTO {table} VALUES (1)")
    assert run(port, "sam", f"SELECT count(*) FROM {table}") == [[1]]


def test_system_tables_show_only_what_the_user_may_see(grants_server):
    port = grants_server.http_port
    run(port, "dan", "CREATE TABLE iceberg.sales_gold.secret AS "
                     "SELECT id AS x FROM iceberg.sales_gold.contacts")
    run(port, "dan", "CREATE MATERIALIZED VIEW iceberg.sales_gold.secret_mv AS "
                     "SELECT x FROM iceberg.sales_gold.secret")
    views = "SELECT name FROM system.metadata.materialized_views WHERE schema_name = 'sales_gold'"
    lineage = ("SELECT DISTINCT target_table FROM system.runtime.lineage "
               "WHERE target_schema = 'sales_gold' AND target_table LIKE 'secret%'")
    assert run(port, "dan", views) == [["secret_mv"]]
    assert run(port, "dan", lineage) == [["secret"]]
    assert run(port, "max", views) == []
    assert run(port, "max", lineage) == []
    # Lineage shows a write only to who may see both ends.
    run(port, "dan", "GRANT SELECT ON iceberg.sales_gold.secret TO USER max")
    assert run(port, "max", lineage) == []
    run(port, "dan", "GRANT SELECT ON iceberg.sales_gold.contacts TO USER max")
    assert run(port, "max", lineage) == [["secret"]]


def audit(port, user="root", where="true"):
    return run(port, user, "SELECT kind, user, roles, action, query_id, tables_read, "
                           "tables_written, rows, decision, reason, user_agent "
                           f"FROM system.runtime.audit WHERE {where}", ADMIN)


def until(condition):
    deadline = time.monotonic() + 10
    while not (found := condition()):
        assert time.monotonic() < deadline, "not found in time"
        time.sleep(0.1)
    return found


def test_every_query_is_audited_once_with_its_decision(grants_server):
    port = grants_server.http_port
    denied_id = failed(port, "sam", "SELECT id FROM iceberg.marketing_gold.leads").query_id
    cursor = connect(port, "mia")
    cursor.execute("SELECT count(*) FROM iceberg.marketing_gold.leads l "
                   "WHERE l.id IN (SELECT 1)")
    cursor.fetchall()
    allowed_id = cursor.query_id
    # The audit writes records in batches: each of the two may come in a batch of its own.
    both = f"query_id IN ('{denied_id}', '{allowed_id}')"
    rows = until(lambda: len(found := audit(port, where=both)) >= 2 and found)
    by_id = {r[4]: r for r in rows}
    assert len(rows) == 2
    denied = by_id[denied_id]
    assert denied[:2] == ["QUERY", "sam"]
    assert denied[2] == "public,sales_analyst"
    assert denied[5] == "iceberg.marketing_gold.leads"
    assert denied[8:10] == ["DENIED", "Access Denied: Cannot select from table "
                                      "iceberg.marketing_gold.leads"]
    assert denied[10].startswith("Trino Python Client")
    allowed = by_id[allowed_id]
    assert allowed[1] == "mia" and allowed[7] == 1 and allowed[8] == "ALLOWED"
    # A user reads her own records only; an administrator all of them.
    own = run(port, "sam", "SELECT DISTINCT user FROM system.runtime.audit")
    assert own == [["sam"]]
    # The HTTP event listener's QueryCompletedEvent, sent for each query.
    events = until(lambda: [e for e in Collector.events
                            if e["metadata"]["queryId"] == denied_id])
    event = events[0]
    assert event["metadata"]["queryState"] == "FAILED"
    assert event["context"]["user"] == "sam"
    assert event["failureInfo"]["errorCode"]["name"] == "PERMISSION_DENIED"
    assert event["ioMetadata"]["inputs"][0]["table"] == "leads"


def test_the_audit_names_the_columns_read_and_written(grants_server):
    port = grants_server.http_port
    table = "iceberg.marketing_gold.scores"

    def audited(sql):
        cursor = connect(port, "root", ADMIN)
        cursor.execute(sql)
        cursor.fetchall()
        query_id = cursor.query_id
        row = until(lambda: run(port, "root", "SELECT columns_read, columns_written, rows, "
                                              "rows_read, bytes_read FROM system.runtime.audit "
                                              f"WHERE query_id = '{query_id}'", ADMIN))
        return query_id, row[0]

    audited(f"CREATE TABLE {table} (id BIGINT, email VARCHAR, score DOUBLE)")
    _, insert = audited(f"INSERT INTO {table} VALUES (1, 'a@x.org', 1.0), (2, 'b@x.org', 2.0)")
    assert insert[1] == f"{table}.email,{table}.id,{table}.score"
    _, update = audited(f"UPDATE {table} SET score = score + 1 WHERE id = 1")
    assert update[1] == f"{table}.score"
    assert f"{table}.id" in update[0].split(",") and f"{table}.score" in update[0].split(",")
    query_id, select = audited(f"SELECT email FROM {table} WHERE id = 2")
    # The columns the scan read, the rows it produced and the bytes it read from files.
    assert select[0] == f"{table}.email,{table}.id"
    assert select[1] == ""
    assert select[2] == 1
    assert select[3] >= 1 and select[4] > 0
    event = until(lambda: [e for e in Collector.events
                           if e["metadata"]["queryId"] == query_id])[0]
    assert event["ioMetadata"]["inputs"][0]["columns"] == [{"name": "email"}, {"name": "id"}]
    assert event["statistics"]["physicalInputBytes"] == select[4]


def test_a_running_ingestion_job_stops_when_its_owner_loses_the_right_to_write(grants_server):
    from broker import Broker
    port = grants_server.http_port
    broker = Broker()
    table = "iceberg.ivy_bronze.clicks"
    try:
        broker.create_topic("clicks")
        producer = broker.producer()
        producer.send("clicks", json.dumps({"id": 1}).encode())
        producer.flush()
        run(port, "root", "CREATE SCHEMA iceberg.ivy_bronze", ADMIN)
        run(port, "root", "ALTER SCHEMA iceberg.ivy_bronze SET AUTHORIZATION USER ivy", ADMIN)
        run(port, "ivy", f"CREATE INGESTION clicks INTO {table} WITH (connector = 'kafka', "
                         f"topic = 'clicks', properties.bootstrap.server = '{broker.bootstrap}')")
        state = ("SELECT state, rows_ingested, last_error FROM system.runtime.ingestions "
                 "WHERE ingestion_name = 'clicks'")
        until(lambda: run(port, "ivy", state) == [["running", 1, None]])
        # The job writes as Ivy. She loses the table and the schema: its next commit is
        # refused, and the job fails until resumed.
        run(port, "root", f"ALTER TABLE {table} SET AUTHORIZATION USER root", ADMIN)
        run(port, "root", "ALTER SCHEMA iceberg.ivy_bronze SET AUTHORIZATION USER root", ADMIN)
        producer.send("clicks", json.dumps({"id": 2}).encode())
        producer.flush()
        producer.close()
        [[status, rows, error]] = until(
            lambda: [r for r in run(port, "root", state, ADMIN) if r[0] == "failed"])
        assert rows == 1
        assert error == f"Access Denied: Cannot insert into table {table} (as ivy)"
        assert run(port, "root", f"SELECT id FROM {table}", ADMIN) == [[1]]
    finally:
        broker.stop()


def test_pipeline_steps_run_with_their_owners_rights(grants_server):
    port = grants_server.http_port
    run(port, "root", "CREATE SCHEMA iceberg.pia_silver", ADMIN)
    run(port, "root", "ALTER SCHEMA iceberg.pia_silver SET AUTHORIZATION USER pia", ADMIN)
    run(port, "pia", "CREATE TABLE iceberg.pia_silver.leads (id BIGINT)")
    run(port, "pia", "CREATE PIPELINE copy_leads WITH (retries = 0, catalog = 'iceberg', "
                     "schema = 'pia_silver')")
    run(port, "pia", "ALTER PIPELINE copy_leads ADD STEP copy AS "
                     "INSERT INTO leads SELECT id FROM iceberg.marketing_gold.leads")

    def outcome():
        [[run_id, *_]] = run(port, "pia", "RUN PIPELINE copy_leads")
        finished = ("SELECT state, error FROM system.runtime.pipeline_runs "
                    f"WHERE run_id = '{run_id}' AND state NOT IN ('queued', 'running')")
        return until(lambda: run(port, "pia", finished))[0]

    # Pia may not read marketing's leads: her step may not either.
    state, error = outcome()
    assert state == "failed"
    assert "Access Denied: Cannot select from table iceberg.marketing_gold.leads" in error
    run(port, "root", "GRANT SELECT ON iceberg.marketing_gold.leads TO USER pia", ADMIN)
    assert outcome() == ["succeeded", None]
    assert sorted(run(port, "pia", "SELECT id FROM iceberg.pia_silver.leads")) == sorted(
        run(port, "root", "SELECT id FROM iceberg.marketing_gold.leads", ADMIN))


def test_an_incremental_refresh_checks_the_reads_of_its_definition(grants_server):
    port = grants_server.http_port
    source = "iceberg.mv_src.events"
    view = "iceberg.sales_gold.big_events"
    for sql in ["CREATE SCHEMA iceberg.mv_src", f"CREATE TABLE {source} (id BIGINT)",
                f"INSERT INTO {source} VALUES (1), (20)",
                f"GRANT SELECT ON {source} TO USER dan"]:
        run(port, "root", sql, ADMIN)
    run(port, "dan", f"CREATE MATERIALIZED VIEW {view} AS SELECT id FROM {source} WHERE id > 10")
    run(port, "dan", f"REFRESH MATERIALIZED VIEW {view}")
    run(port, "root", f"INSERT INTO {source} VALUES (30)", ADMIN)
    run(port, "root", f"REVOKE SELECT ON {source} FROM USER dan", ADMIN)
    # Only the new row would be read: the read is refused all the same.
    assert denied(port, "dan", f"REFRESH MATERIALIZED VIEW {view}") == (
        f"Access Denied: Cannot select from table {source}")
    run(port, "root", f"GRANT SELECT ON {source} TO USER dan", ADMIN)
    run(port, "dan", f"REFRESH MATERIALIZED VIEW {view}")
    assert sorted(run(port, "dan", f"SELECT id FROM {view}")) == [[20], [30]]


def test_grant_statements_need_sql_grants_configured(tmp_path):
    server = Server(tmp_path / "warehouse")
    try:
        error = failed(server.http_port, "root", "CREATE ROLE x")
        assert error.error_name == "NOT_SUPPORTED"
        assert "access-control.name=sql-standard" in error.message
    finally:
        server.stop()


# The Iceberg REST catalog under the same grants: PyIceberg with bearer tokens.

REST_USERS = {"root": "root secret", "dan": "dan secret", "sam": "sam secret",
              "mia": "mia secret"}


@pytest.fixture(scope="module")
def rest_server(tmp_path_factory):
    # The server's own certificate is what the clients trust, not the machine's bundle.
    with pytest.MonkeyPatch.context() as patch:
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            patch.delenv(name, raising=False)
        yield from started_rest_server(tmp_path_factory)


def started_rest_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rest_grants")
    warehouse = folder / "warehouse"
    for user, password in REST_USERS.items():
        done = subprocess.run([BIN, "--warehouse", str(warehouse), "user", "add", user],
                              input=password + "\n", capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    (folder / "access-control.properties").write_text(
        "access-control.name=sql-standard\nsql-standard.admin-users=root\n")
    server = Server(warehouse, "--access-control-config",
                    str(folder / "access-control.properties"),
                    env={"AICHEMY_SERVER__PASSWORD_AUTHENTICATION": "true"})
    server.certificate = warehouse / "tls" / "aichemy.crt"
    for sql in ["CREATE ROLE sales_analyst", "CREATE ROLE marketing_analyst",
                "GRANT sales_analyst TO USER sam", "GRANT marketing_analyst TO USER mia",
                "CREATE SCHEMA iceberg.sales_gold",
                "ALTER SCHEMA iceberg.sales_gold SET AUTHORIZATION USER dan"]:
        https_run(server, "root", sql, ADMIN)
    yield server
    server.stop()


def https_run(server, user, sql, roles=None):
    cursor = trino.dbapi.connect(
        host="localhost", port=server.https_port, user=user, http_scheme="https",
        auth=BasicAuthentication(user, REST_USERS[user]), verify=str(server.certificate),
        roles=roles, catalog="iceberg").cursor()
    cursor.execute(sql)
    return cursor.fetchall()


def rest_catalog(server, user):
    return load_catalog(f"rest_{user}", **{
        "type": "rest", "uri": f"https://localhost:{server.https_port}/iceberg",
        "credential": f"{user}:{REST_USERS[user]}",
        "ssl": {"cabundle": str(server.certificate)}})


def test_the_rest_catalog_lists_loads_and_commits_by_the_same_grants(rest_server):
    server = rest_server
    dan, sam, mia = (rest_catalog(server, u) for u in ("dan", "sam", "mia"))
    # Dan owns sales_gold: he creates a table through REST, and owns it.
    schema = pa.schema([("id", pa.int64()), ("email", pa.string())])
    table = dan.create_table("sales_gold.contacts", schema=schema)
    table.append(pa.table({"id": [1, 2], "email": ["a@x.org", "b@x.org"]}))
    # Sam sees nothing of it yet: not listed, not loadable, no namespace.
    with pytest.raises(ForbiddenError, match="Cannot access schema iceberg.sales_gold"):
        sam.list_tables("sales_gold")
    assert ("sales_gold",) not in sam.list_namespaces()
    with pytest.raises(ForbiddenError,
                       match="Cannot select from table iceberg.sales_gold.contacts"):
        sam.load_table("sales_gold.contacts")
    # Granted in SQL, readable through REST.
    https_run(server, "dan", "GRANT SELECT ON iceberg.sales_gold.contacts TO ROLE sales_analyst")
    assert sam.list_tables("sales_gold") == [("sales_gold", "contacts")]
    rows = sam.load_table("sales_gold.contacts").scan().to_arrow().sort_by("id")
    assert rows.column("email").to_pylist() == ["a@x.org", "b@x.org"]
    # Reading is not writing.
    with pytest.raises(ForbiddenError,
                       match="Cannot insert into table iceberg.sales_gold.contacts"):
        sam.load_table("sales_gold.contacts").append(pa.table({"id": [3], "email": ["c"]}))
    with pytest.raises(ForbiddenError):
        sam.drop_table("sales_gold.contacts")
    with pytest.raises(ForbiddenError):
        sam.create_table("sales_gold.mine", schema=schema)
    # A user who reads it masked cannot take it raw.
    https_run(server, "dan", "GRANT SELECT ON iceberg.sales_gold.contacts TO ROLE marketing_analyst")
    https_run(server, "dan", "CREATE COLUMN MASK ON iceberg.sales_gold.contacts COLUMN email "
                             "FOR ROLE marketing_analyst AS '***'")
    with pytest.raises(ForbiddenError, match="row filter or column masks"):
        mia.load_table("sales_gold.contacts")
    assert https_run(server, "mia", "SELECT email FROM iceberg.sales_gold.contacts "
                                    "ORDER BY id") == [["***"], ["***"]]
    # The owner commits and drops; the table's grants go with it.
    dan.load_table("sales_gold.contacts").append(pa.table({"id": [3], "email": ["c@x.org"]}))
    assert https_run(server, "sam", "SELECT count(*) FROM iceberg.sales_gold.contacts") == [[3]]
    dan.drop_table("sales_gold.contacts")
    grants = https_run(server, "root", "SHOW GRANTS", ADMIN)
    assert [g for g in grants if g[6] == "contacts"] == []


def test_sign_ins_and_catalog_calls_are_audited_without_secrets(rest_server):
    server = rest_server
    with pytest.raises(Exception):
        rest_catalog_with(server, "sam", "wrong password").list_namespaces()
    catalog = rest_catalog(server, "sam")
    with pytest.raises(ForbiddenError):
        catalog.load_namespace_properties("sales_gold")
    sql = ("SELECT kind, user, action, decision, reason FROM system.runtime.audit "
           "WHERE kind <> 'QUERY'")

    def records():
        rows = https_run(server, "root", sql, ADMIN)
        wanted = {("AUTHENTICATION", "DENIED"), ("AUTHENTICATION", "ALLOWED"),
                  ("CATALOG_API", "DENIED")}
        return rows if wanted <= {(r[0], r[3]) for r in rows if r[1] == "sam"} else None

    rows = until(records)
    assert ["CATALOG_API", "sam", "GET /iceberg/v1/namespaces/sales_gold", "DENIED",
            "403 Forbidden"] in rows
    everything = json.dumps(https_run(server, "root", "SELECT * FROM system.runtime.audit",
                                      ADMIN))
    for secret in REST_USERS.values():
        assert secret not in everything


def rest_catalog_with(server, user, password):
    return load_catalog(f"rest_{user}_wrong", **{
        "type": "rest", "uri": f"https://localhost:{server.https_port}/iceberg",
        "credential": f"{user}:{password}", "ssl": {"cabundle": str(server.certificate)}})


def refusal(port, user, sql):
    """The error of a query refused for lack of resources; None when it ran."""
    try:
        run(port, user, sql)
        return None
    except trino.exceptions.TrinoQueryError as error:
        return error


def test_read_limits_stop_large_exports_per_query_and_per_hour(tmp_path):
    server = Server(tmp_path / "warehouse", env={
        "AICHEMY_SERVER__USER_READ_ROWS_PER_QUERY": "5",
        "AICHEMY_SERVER__USER_READ_ROWS_PER_HOUR": "12",
        "AICHEMY_SERVER__ADMIN_USERS": "root"})
    port = server.http_port
    try:
        run(port, "root", "CREATE SCHEMA iceberg.s")
        run(port, "root", "CREATE TABLE iceberg.s.t AS SELECT * FROM UNNEST(sequence(1, 10)) AS u(x)")
        error = refusal(port, "ann", "SELECT x FROM iceberg.s.t")
        assert error.error_name == "EXCEEDED_SCAN_LIMIT"
        assert error.message == "Exceeded the read limit of 5 rows per query for user ann"
        for _ in range(3):
            assert len(run(port, "ann", "SELECT x FROM iceberg.s.t LIMIT 4")) == 4
            time.sleep(0.3)
        # Her hour is spent (counted from the audit records, on every node); Bob's is not.
        error = until(lambda: refusal(port, "ann", "SELECT 1"))
        assert error.message == "Exceeded the read limit of 12 rows per hour for user ann"
        assert len(run(port, "bob", "SELECT x FROM iceberg.s.t LIMIT 5")) == 5
        refused = until(lambda: run(port, "root", "SELECT decision, reason FROM "
                                    "system.runtime.audit WHERE user = 'ann' AND "
                                    "decision = 'DENIED'"))
        assert ["DENIED", "Exceeded the read limit of 5 rows per query for user ann"] in refused
    finally:
        server.stop()
