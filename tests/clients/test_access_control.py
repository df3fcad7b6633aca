"""Access control (issue 34) through the python `trino` client: a Trino rules file given
to `aichemy serve --access-control-config`, as Trino's `etc/access-control.properties`
names it, with a Trino group file; what each user may read, write, define and list."""

import json
import time

import pytest
import trino

from lakehouse import Server

ALL = ["SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP", "GRANT_SELECT"]

RULES = {
    "catalogs": [
        {"group": "admins", "allow": "all"},
        {"catalog": "iceberg", "allow": "all"},
        {"catalog": "system", "allow": "read-only"},
    ],
    "schemas": [
        {"group": "admins", "owner": True},
        {"user": "eng", "schema": "sales_.*", "owner": True},
    ],
    "tables": [
        {"group": "admins", "privileges": ALL},
        {"user": "eng", "schema": "sales_.*", "privileges": ALL},
        # Owns the views he makes in sales_gold, but may not let others read its tables.
        {"user": "vic", "schema": "sales_gold", "privileges": ["SELECT", "OWNERSHIP"]},
        # A regional analyst: her region's rows only.
        {"user": "rita", "schema": "sales_gold", "table": "contacts",
         "privileges": ["SELECT", "INSERT", "DELETE", "UPDATE"], "filter": "region = 'EU'"},
        # Analysts read contacts masked.
        {"group": "sales", "schema": "sales_gold", "table": "contacts", "privileges": ["SELECT"],
         "columns": [{"name": "email", "mask": "'***'"},
                     {"name": "phone", "mask": "substr(phone, 1, 3) || '****'"}]},
        {"group": "sales", "schema": "sales_gold", "privileges": ["SELECT"],
         "columns": [{"name": "email", "allow": False}]},
    ],
}


def connect(port, user):
    return trino.dbapi.connect(host="127.0.0.1", port=port, user=user,
                               http_scheme="http").cursor()


def run(port, user, sql):
    cursor = connect(port, user)
    cursor.execute(sql)
    return cursor.fetchall()


def denied(port, user, sql):
    with pytest.raises(trino.exceptions.TrinoUserError) as failure:
        run(port, user, sql)
    assert failure.value.error_name == "PERMISSION_DENIED", failure.value
    return failure.value.message


def write_policy(folder, rules, refresh=None):
    (folder / "rules.json").write_text(json.dumps(rules))
    lines = ["access-control.name=file", "security.config-file=rules.json"]
    if refresh:
        lines.append(f"security.refresh-period={refresh}")
    (folder / "access-control.properties").write_text("\n".join(lines) + "\n")
    (folder / "group.txt").write_text("# Trino group file\nadmins:root\nsales:sam,sue\n")
    (folder / "group-provider.properties").write_text(
        "group-provider.name=file\nfile.group-file=group.txt\n")


@pytest.fixture(scope="module")
def policy_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("access")
    write_policy(folder, RULES, refresh="500ms")
    server = Server(folder / "warehouse",
                    "--access-control-config", str(folder / "access-control.properties"),
                    "--group-provider-config", str(folder / "group-provider.properties"))
    port = server.http_port
    for sql in [
        "CREATE SCHEMA iceberg.sales_gold",
        "CREATE SCHEMA iceberg.sales_silver",
        "CREATE SCHEMA iceberg.marketing_gold",
        "CREATE TABLE iceberg.sales_gold.customers (id BIGINT, name VARCHAR, email VARCHAR)",
        "INSERT INTO iceberg.sales_gold.customers VALUES (1, 'Ann', 'ann@x.org'), "
        "(2, 'Bo', 'bo@x.org')",
        "CREATE TABLE iceberg.sales_gold.contacts (id BIGINT, region VARCHAR, email VARCHAR, "
        "phone VARCHAR)",
        "INSERT INTO iceberg.sales_gold.contacts VALUES (1, 'EU', 'a@x.org', '5551234'), "
        "(2, 'US', 'b@x.org', '5559876'), (3, 'EU', 'c@x.org', '5550000')",
        "CREATE TABLE iceberg.marketing_gold.leads (id BIGINT, email VARCHAR)",
        "INSERT INTO iceberg.marketing_gold.leads VALUES (1, 'lead@x.org')",
    ]:
        run(port, "root", sql)
    yield folder, server
    server.stop()


def test_readers_read_only_the_tables_and_columns_their_rules_give(policy_server):
    _, server = policy_server
    port = server.http_port
    assert sorted(run(port, "sam", "SELECT id, name FROM iceberg.sales_gold.customers")) == [
        [1, "Ann"], [2, "Bo"]]
    assert run(port, "sam", "SELECT count(*) FROM iceberg.sales_gold.customers") == [[2]]
    table = "iceberg.sales_gold.customers"
    assert denied(port, "sam", f"SELECT * FROM {table}") == (
        f"Access Denied: Cannot select from table {table}")
    assert denied(port, "sam", f"SELECT email FROM {table} WHERE id = 1") == (
        f"Access Denied: Cannot select from table {table}")
    leads = "iceberg.marketing_gold.leads"
    message = f"Access Denied: Cannot select from table {leads}"
    # Every way of reading the other domain's table is the same refusal.
    for sql in [
        f"SELECT * FROM {leads}",
        f"SELECT c.id FROM {table} c JOIN {leads} l ON l.id = c.id",
        f"WITH x AS (SELECT id FROM {leads}) SELECT count(*) FROM x",
        f"SELECT id FROM {table} WHERE id IN (SELECT id FROM {leads})",
        f"EXPLAIN SELECT * FROM {leads}",
    ]:
        assert denied(port, "sam", sql) == message, sql
    # A metadata table is a table of its own name.
    assert denied(port, "sam", 'SELECT * FROM iceberg.marketing_gold."leads$snapshots"') == (
        f"Access Denied: Cannot select from table {leads}$snapshots")
    # A user no rule names reads nothing, but the system catalog stays readable.
    assert denied(port, "nobody", f"SELECT id FROM {table}") == (
        f"Access Denied: Cannot select from table {table}")
    assert run(port, "nobody", "SELECT 1") == [[1]]


def test_writes_and_definitions_need_their_privilege(policy_server):
    _, server = policy_server
    port = server.http_port
    table = "iceberg.sales_gold.customers"
    for sql, message in [
        (f"INSERT INTO {table} VALUES (3, 'Cy', 'cy@x.org')", f"Cannot insert into table {table}"),
        (f"DELETE FROM {table} WHERE id = 1", f"Cannot delete from table {table}"),
        (f"UPDATE {table} SET name = 'X' WHERE id = 1",
         f"Cannot update columns [name] in table {table}"),
        (f"TRUNCATE TABLE {table}", f"Cannot truncate table {table}"),
        (f"DROP TABLE {table}", f"Cannot drop table {table}"),
        (f"ALTER TABLE {table} ADD COLUMN age INTEGER", f"Cannot add a column to table {table}"),
        ("CREATE TABLE iceberg.sales_gold.mine (id BIGINT)",
         "Cannot create table iceberg.sales_gold.mine"),
        ("CREATE TABLE iceberg.sales_gold.copy AS SELECT id FROM iceberg.sales_gold.customers",
         "Cannot create table iceberg.sales_gold.copy"),
        ("CREATE SCHEMA iceberg.sam_sandbox", "Cannot create schema iceberg.sam_sandbox"),
        ("DROP SCHEMA iceberg.marketing_gold", "Cannot drop schema iceberg.marketing_gold"),
        ("CREATE VIEW iceberg.sales_gold.v AS SELECT 1 AS one",
         "Cannot create view iceberg.sales_gold.v"),
        (f"MERGE INTO {table} t USING (SELECT 9 AS id) s ON t.id = s.id "
         "WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'n', 'e')", f"Cannot insert into table {table}"),
        ("CREATE CATALOG other USING memory", "Cannot create catalog other"),
        # An ingestion job writes as its owner.
        (f"CREATE INGESTION feed INTO {table} WITH (connector = 'kafka', topic = 't', "
         "properties.bootstrap.server = '127.0.0.1:1')", f"Cannot insert into table {table}"),
    ]:
        assert denied(port, "sam", sql) == f"Access Denied: {message}", sql
    # Nothing changed.
    assert run(port, "root", f"SELECT count(*) FROM {table}") == [[2]]
    # The engineer owns the sales schemas: creates, writes and drops there, not elsewhere.
    run(port, "eng", "CREATE TABLE iceberg.sales_silver.orders (id BIGINT, amount DOUBLE)")
    run(port, "eng", "INSERT INTO iceberg.sales_silver.orders VALUES (1, 9.5)")
    run(port, "eng", "UPDATE iceberg.sales_silver.orders SET amount = 10 WHERE id = 1")
    assert run(port, "eng", "SELECT * FROM iceberg.sales_silver.orders") == [[1, 10.0]]
    # Reading another domain to write one's own is still a read of it.
    assert denied(port, "eng", "INSERT INTO iceberg.sales_silver.orders "
                  "SELECT id, 1.0 FROM iceberg.marketing_gold.leads") == (
        "Access Denied: Cannot select from table iceberg.marketing_gold.leads")
    assert denied(port, "eng", "CREATE TABLE iceberg.marketing_gold.x (id BIGINT)") == (
        "Access Denied: Cannot create table iceberg.marketing_gold.x")
    run(port, "eng", "DROP TABLE iceberg.sales_silver.orders")


def test_masks_and_row_filters_apply_on_every_read(policy_server):
    _, server = policy_server
    port = server.http_port
    contacts = "iceberg.sales_gold.contacts"
    assert run(port, "sam", f"SELECT id, region, email, phone FROM {contacts} ORDER BY id") == [
        [1, "EU", "***", "555****"], [2, "US", "***", "555****"], [3, "EU", "***", "555****"]]
    # A condition sees the masked value, as it does in Trino.
    assert run(port, "sam", f"SELECT count(*) FROM {contacts} WHERE email = 'a@x.org'") == [[0]]
    assert run(port, "sam", f"SELECT max(c.email) FROM {contacts} c JOIN "
               "iceberg.sales_gold.customers u ON u.id = c.id") == [["***"]]
    # The regional analyst reads her region only, however she asks.
    assert run(port, "rita", f"SELECT id, email FROM {contacts} ORDER BY id") == [
        [1, "a@x.org"], [3, "c@x.org"]]
    assert run(port, "rita", f"SELECT count(*) FROM {contacts}") == [[2]]
    assert run(port, "rita", f"WITH x AS (SELECT * FROM {contacts} WHERE id > 1) "
               "SELECT id FROM x") == [[3]]
    # Her DELETE deletes within the filter; UPDATE is refused as Trino refuses it.
    assert run(port, "rita", f"DELETE FROM {contacts} WHERE id >= 2") == [[1]]
    assert sorted(run(port, "root", f"SELECT id FROM {contacts}")) == [[1], [2]]
    with pytest.raises(trino.exceptions.TrinoUserError) as failure:
        run(port, "rita", f"UPDATE {contacts} SET email = 'x' WHERE id = 1")
    assert failure.value.error_name == "NOT_SUPPORTED"
    assert failure.value.message == "Updating a table with a row filter is not supported"
    # The metadata tables of a filtered or masked table would show its values.
    for user in ("rita", "sam"):
        assert denied(port, user, 'SELECT * FROM iceberg.sales_gold."contacts$files"') == (
            "Access Denied: Cannot select from table iceberg.sales_gold.contacts$files")
    run(port, "rita", f"INSERT INTO {contacts} VALUES (3, 'EU', 'c@x.org', '5550000')")
    assert run(port, "root", f"SELECT count(*) FROM {contacts}") == [[3]]


def test_views_read_with_their_owners_rights_unless_invoker(policy_server):
    _, server = policy_server
    port = server.http_port
    leads = "iceberg.marketing_gold.leads"
    # Trino's default, SECURITY DEFINER: the owner's rights read the view's tables.
    run(port, "root", f"CREATE VIEW iceberg.sales_gold.lead_count AS SELECT count(*) AS n "
        f"FROM {leads}")
    assert run(port, "sam", "SELECT n FROM iceberg.sales_gold.lead_count") == [[1]]
    run(port, "root", f"CREATE VIEW iceberg.sales_gold.lead_count_invoker SECURITY INVOKER AS "
        f"SELECT count(*) AS n FROM {leads}")
    assert denied(port, "sam", "SELECT n FROM iceberg.sales_gold.lead_count_invoker") == (
        f"Access Denied: Cannot select from table {leads}")
    assert run(port, "root", "SHOW CREATE VIEW iceberg.sales_gold.lead_count_invoker")[0][0] \
        .startswith("CREATE VIEW iceberg.sales_gold.lead_count_invoker SECURITY INVOKER AS")
    # An owner who may read a table but not let others read it.
    run(port, "vic", "CREATE VIEW iceberg.sales_gold.vic_ids AS "
        "SELECT id FROM iceberg.sales_gold.customers")
    assert sorted(run(port, "vic", "SELECT id FROM iceberg.sales_gold.vic_ids")) == [[1], [2]]
    assert denied(port, "sam", "SELECT id FROM iceberg.sales_gold.vic_ids") == (
        "Access Denied: View owner does not have sufficient privileges: View owner 'vic' "
        "cannot create view that selects from iceberg.sales_gold.customers")
    for view in ("lead_count", "lead_count_invoker", "vic_ids"):
        run(port, "root", f"DROP VIEW iceberg.sales_gold.{view}")


def test_a_materialized_view_is_read_by_its_name(policy_server):
    _, server = policy_server
    port = server.http_port
    run(port, "root", "CREATE MATERIALIZED VIEW iceberg.sales_gold.counts AS "
        "SELECT count(*) AS n FROM iceberg.sales_gold.customers")
    run(port, "root", "REFRESH MATERIALIZED VIEW iceberg.sales_gold.counts")
    assert run(port, "sam", "SELECT n FROM iceberg.sales_gold.counts") == [[2]]
    assert denied(port, "sam", "REFRESH MATERIALIZED VIEW iceberg.sales_gold.counts") == (
        "Access Denied: Cannot refresh materialized view iceberg.sales_gold.counts")
    assert denied(port, "nobody", "SELECT n FROM iceberg.sales_gold.counts") == (
        "Access Denied: Cannot select from table iceberg.sales_gold.counts")
    run(port, "root", "DROP MATERIALIZED VIEW iceberg.sales_gold.counts")


def test_listings_show_only_what_a_user_may_see(policy_server):
    _, server = policy_server
    port = server.http_port
    schemas = [r[0] for r in run(port, "sam", "SHOW SCHEMAS FROM iceberg")]
    assert "sales_gold" in schemas and "marketing_gold" not in schemas, schemas
    assert "marketing_gold" in [r[0] for r in run(port, "root", "SHOW SCHEMAS FROM iceberg")]
    assert run(port, "sam", "SHOW TABLES FROM iceberg.sales_gold") == [
        ["contacts"], ["customers"]]
    assert denied(port, "sam", "SHOW TABLES FROM iceberg.marketing_gold") == (
        "Access Denied: Cannot show tables of schema iceberg.marketing_gold")
    columns = [r[0] for r in run(port, "sam", "SHOW COLUMNS FROM iceberg.sales_gold.customers")]
    assert columns == ["id", "name"]
    assert denied(port, "sam", "SHOW COLUMNS FROM iceberg.marketing_gold.leads") == (
        "Access Denied: Cannot show columns of table iceberg.marketing_gold.leads")
    assert denied(port, "sam", "SHOW CREATE TABLE iceberg.sales_gold.customers") == (
        "Access Denied: Cannot show create table for iceberg.sales_gold.customers")
    assert "iceberg" in [r[0] for r in run(port, "sam", "SHOW CATALOGS")]
    # information_schema lists the same.
    tables = run(port, "sam", "SELECT table_schema, table_name FROM iceberg.information_schema"
                 ".tables WHERE table_schema <> 'information_schema' ORDER BY 1, 2")
    assert tables == [["sales_gold", "contacts"], ["sales_gold", "customers"]]
    assert run(port, "sam", "SELECT column_name FROM iceberg.information_schema.columns "
               "WHERE table_name = 'customers' ORDER BY ordinal_position") == [["id"], ["name"]]
    assert run(port, "sam", "SELECT schema_name FROM iceberg.information_schema.schemata") == [
        ["sales_gold"]]
    assert ["marketing_gold", "leads"] in run(
        port, "root", "SELECT table_schema, table_name FROM iceberg.information_schema.tables")


def test_changed_rules_apply_after_the_refresh_period(policy_server):
    folder, server = policy_server
    port = server.http_port
    table = "iceberg.sales_gold.customers"
    opened = json.loads(json.dumps(RULES))
    next(r for r in opened["tables"] if r.get("group") == "sales" and "table" not in r)[
        "columns"] = []
    (folder / "rules.json").write_text(json.dumps(opened))
    time.sleep(1)
    assert len(run(port, "sam", f"SELECT * FROM {table}")) == 2
    # A file that no longer parses fails every check until it is fixed, as in Trino.
    (folder / "rules.json").write_text("{not json")
    time.sleep(1)
    with pytest.raises(trino.exceptions.TrinoQueryError) as failure:
        run(port, "root", "SELECT 1")
    assert "access control rules cannot be used" in failure.value.message
    (folder / "rules.json").write_text(json.dumps(RULES))
    time.sleep(1)
    assert denied(port, "sam", f"SELECT * FROM {table}") == (
        f"Access Denied: Cannot select from table {table}")


def test_a_rules_file_that_cannot_be_used_stops_the_start(tmp_path):
    (tmp_path / "rules.json").write_text(json.dumps(
        {"tables": [{"privileges": ["SELECT"], "colour": "red"}]}))
    with pytest.raises(RuntimeError) as failure:
        Server(tmp_path / "warehouse", "--access-control-config", str(tmp_path / "rules.json"))
    assert "unknown field `colour`" in str(failure.value)
