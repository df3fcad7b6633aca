"""Federated PostgreSQL catalogs through the python Trino client: two real databases
(`sales`, `marketing`) joined with each other and with the lakehouse."""

import random
from collections import defaultdict
from decimal import Decimal

import pytest
import trino

from lakehouse import Server
from postgres import PASSWORD, USER, Postgres

CROSS_DATABASE_TOP_10 = """
SELECT s.customer_name, COUNT(o.order_id) AS total_orders, SUM(o.total_amount) AS revenue, m.campaign_name
FROM sales.public.customers s
JOIN sales.public.orders o ON s.customer_id = o.customer_id
LEFT JOIN marketing.public.leads l ON s.email = l.email
LEFT JOIN marketing.public.campaigns m ON l.campaign_id = m.campaign_id
GROUP BY s.customer_name, m.campaign_name
ORDER BY revenue DESC
LIMIT 10
"""

EVIL_TABLE = 'we"ird;*/ tab'
EVIL_COLUMN = 'na"me;*/'
EVIL_VALUE = "o'k\"; DROP TABLE customers; -- */ \\"


def generate():
    rng = random.Random(5)
    customers = [
        (i, f"Customer {i:04d}", f"c{i}@example.com", rng.choice(["Paris", "Lyon", "Nice"]))
        for i in range(1, 2001)
    ]
    orders = [
        (i, rng.randint(1, 2000), Decimal(rng.randint(100, 1_000_000)) / 100,
         f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
        for i in range(1, 6001)
    ]
    campaigns = [(i, f"Campaign {i}") for i in range(1, 21)]
    leads = [(i, f"c{rng.randint(1, 2500)}@example.com", rng.randint(1, 20)) for i in range(1, 3001)]
    return customers, orders, campaigns, leads


def expected_groups(customers, orders, campaigns, leads):
    """Every (customer_name, total_orders, revenue, campaign_name) group, by revenue."""
    by_id = {c[0]: c for c in customers}
    campaign_names = dict(campaigns)
    leads_by_email = defaultdict(list)
    for _, email, campaign in leads:
        leads_by_email[email].append(campaign)
    groups = defaultdict(lambda: [0, Decimal(0)])
    for _, customer_id, amount, _ in orders:
        customer = by_id[customer_id]
        for campaign in leads_by_email.get(customer[2]) or [None]:
            group = groups[(customer[1], campaign_names.get(campaign))]
            group[0] += 1
            group[1] += amount
    ranked = sorted(groups.items(), key=lambda kv: kv[1][1], reverse=True)
    return [(name, count, revenue, campaign) for (name, campaign), (count, revenue) in ranked]


@pytest.fixture(scope="module")
def data():
    return generate()


@pytest.fixture(scope="module")
def pg(data):
    customers, orders, campaigns, leads = data
    server = Postgres()
    try:
        for database in ["sales_db", "marketing_db"]:
            server.psql("postgres", f"CREATE DATABASE {database} OWNER {USER}")
        server.psql("sales_db", f"""
            SET ROLE {USER};
            CREATE TABLE customers (customer_id integer PRIMARY KEY, customer_name text NOT NULL,
                email varchar(100), city varchar(40));
            CREATE TABLE orders (order_id integer PRIMARY KEY, customer_id integer NOT NULL,
                total_amount numeric(12,2), order_date date);
            CREATE TABLE gold_revenue (customer_name text NOT NULL,
                revenue numeric(14,2) CHECK (revenue >= 0));
            CREATE TABLE types (id int, n numeric(10,3), big numeric, t text, v varchar(20),
                c char(3), ts timestamp, tstz timestamptz, d date, b boolean, raw bytea,
                ints integer[], words text[], j json, jb jsonb, u uuid, span interval,
                r real, f double precision, s smallint, l bigint);
            INSERT INTO types VALUES
              (1, 12.345, 98765.4321, 'hé', 'v', 'ab', '2024-03-01 10:11:12.123456',
               '2024-03-01 10:11:12+02', '2024-03-01', true, '\\x00ff', '{{1,NULL,3}}',
               '{{"a","b c"}}', '{{"k": [1, 2]}}', '{{"k": 1}}',
               'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day 2 hours', 1.5, 2.25, 7, 9000000000),
              (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL);
            CREATE TABLE "{EVIL_TABLE.replace('"', '""')}" (id int, "{EVIL_COLUMN.replace('"', '""')}" text);
            CREATE TABLE big AS SELECT g AS id, g % 100 AS bucket, md5(g::text) AS label
                FROM generate_series(1, 20000) g;
        """)
        server.copy_in("sales_db", "customers", customers)
        server.copy_in("sales_db", "orders", orders)
        server.copy_in("sales_db", f'"{EVIL_TABLE.replace(chr(34), chr(34) * 2)}"',
                       [(1, EVIL_VALUE), (2, "plain")])
        server.psql("marketing_db", f"""
            SET ROLE {USER};
            CREATE TABLE campaigns (campaign_id integer PRIMARY KEY, campaign_name text);
            CREATE TABLE leads (lead_id integer PRIMARY KEY, email text, campaign_id integer);
        """)
        server.copy_in("marketing_db", "campaigns", campaigns)
        server.copy_in("marketing_db", "leads", leads)
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="module")
def served(pg, tmp_path_factory):
    """aichemy serve with `sales` from the configuration file (password from the
    environment) and `marketing` from a Trino catalog file (password from a file)."""
    root = tmp_path_factory.mktemp("federation")
    secret = root / "marketing.pw"
    secret.write_text(PASSWORD + "\n")
    catalogs = root / "catalog"
    catalogs.mkdir()
    (catalogs / "marketing.properties").write_text(
        "connector.name=postgresql\n"
        f"connection-url=jdbc:postgresql://127.0.0.1:{pg.port}/marketing_db\n"
        f"connection-user={USER}\n"
        f"connection-password=${{FILE:{secret}}}\n"
        # Settings of Trino's connector: accepted; the pushdown switches are honoured.
        "case-insensitive-name-matching=true\n"
        "metadata.cache-ttl=10m\n"
        "join-pushdown.enabled=false\n"
    )
    config = root / "aichemy.toml"
    config.write_text(
        "[catalogs.sales]\n"
        'connector = "postgresql"\n'
        f'url = "{pg.url("sales_db")}"\n'
        f'user = "{USER}"\n'
        'password_env = "SALES_DB_PASSWORD"\n'
        "connection_timeout_seconds = 2\n"
    )
    warehouse = root / "wh"
    env = {"SALES_DB_PASSWORD": PASSWORD}
    args = ["--config", str(config), "--catalog-dir", str(catalogs)]
    server = Server(warehouse, *args, env=env)
    server.restart_args = (warehouse, args, env)
    yield server
    log = server.stop()
    assert PASSWORD not in log


def connect(server, **kwargs):
    return trino.dbapi.connect(host="127.0.0.1", port=server.http_port, user="analyst", **kwargs)


def rows(server, sql):
    cursor = connect(server).cursor()
    cursor.execute(sql)
    return cursor.fetchall()


def failure(server, sql):
    with pytest.raises(trino.exceptions.TrinoQueryError) as error:
        rows(server, sql)
    return error.value


def test_catalogs_schemas_tables_and_columns_are_live(served, pg):
    catalogs = [r[0] for r in rows(served, "SHOW CATALOGS")]
    assert {"sales", "marketing", "iceberg"} <= set(catalogs)
    assert ["sales", "sales", "postgresql"] in [
        list(r) for r in rows(served, "SELECT * FROM system.metadata.catalogs")
    ]
    assert "public" in [r[0] for r in rows(served, "SHOW SCHEMAS FROM sales")]
    tables = [r[0] for r in rows(served, "SHOW TABLES FROM sales.public")]
    assert {"customers", "orders", "types", EVIL_TABLE} <= set(tables)
    # A table created in PostgreSQL shows up at once: nothing is cached.
    pg.psql("sales_db", f"SET ROLE {USER}; CREATE TABLE fresh (x int)")
    assert "fresh" in [r[0] for r in rows(served, "SHOW TABLES FROM sales.public")]
    described = {r[0]: r[1] for r in rows(served, "DESCRIBE sales.public.types")}
    assert described == {
        "id": "integer", "n": "decimal(10,3)", "big": "decimal(38,9)", "t": "varchar",
        "v": "varchar(20)", "c": "char(3)", "ts": "timestamp(6)",
        "tstz": "timestamp(6) with time zone", "d": "date", "b": "boolean",
        "raw": "varbinary", "ints": "array(integer)", "words": "array(varchar)",
        "j": "json", "jb": "json", "u": "uuid", "span": "varchar", "r": "real",
        "f": "double", "s": "smallint", "l": "bigint",
    }
    columns = rows(served, """
        SELECT column_name, data_type FROM sales.information_schema.columns
        WHERE table_schema = 'public' AND table_name = 'orders' ORDER BY ordinal_position""")
    assert columns == [["order_id", "integer"], ["customer_id", "integer"],
                       ["total_amount", "decimal(12,2)"], ["order_date", "date"]]


def test_values_keep_their_types_through_the_client(served):
    cursor = connect(served).cursor()
    cursor.execute("SELECT * FROM sales.public.types ORDER BY id")
    first, second = cursor.fetchall()
    types = {d[0]: d[1] for d in cursor.description}
    assert types["j"] == "json" and types["u"] == "uuid" and types["v"] == "varchar(20)"
    record = dict(zip([d[0] for d in cursor.description], first))
    assert record["n"] == Decimal("12.345")
    assert record["big"] == Decimal("98765.432100000")
    assert record["t"] == "hé" and record["c"] == "ab "
    assert str(record["ts"]) == "2024-03-01 10:11:12.123456"
    assert record["tstz"].isoformat().startswith("2024-03-01T08:11:12")
    assert str(record["d"]) == "2024-03-01" and record["b"] is True
    assert record["raw"] == b"\x00\xff"
    assert record["ints"] == [1, None, 3] and record["words"] == ["a", "b c"]
    assert record["j"].replace(" ", "") == '{"k":[1,2]}'
    assert str(record["u"]) == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert record["span"] == "1 day 02:00:00"
    assert (record["r"], record["f"], record["s"], record["l"]) == (1.5, 2.25, 7, 9000000000)
    assert all(v is None for v in second[1:])


def test_filters_projections_and_limits_run_in_postgresql(served):
    plan = "\n".join(str(c) for r in rows(served, """
        EXPLAIN SELECT customer_name FROM sales.public.customers
        WHERE customer_id BETWEEN 10 AND 20 AND city = 'Paris' AND email LIKE 'c1%' LIMIT 3""") for c in r)
    assert 'remote_query=SELECT "customer_name" FROM "public"."customers" WHERE' in plan, plan
    assert '"city" = E\'Paris\'' in plan and "LIMIT 3" in plan, plan
    assert "FilterExec" not in plan, plan
    got = rows(served, """
        SELECT customer_id FROM sales.public.customers
        WHERE customer_id BETWEEN 10 AND 20 AND email LIKE 'c1%' ORDER BY customer_id""")
    assert got == [[i] for i in range(10, 20)]
    # A filter PostgreSQL cannot evaluate the same way stays in the engine.
    plan = "\n".join(str(c) for r in rows(served, """
        EXPLAIN SELECT id FROM sales.public.big WHERE length(label) + id = 40""") for c in r)
    assert "FilterExec" in plan and "WHERE" not in plan, plan
    assert rows(served, "SELECT count(*) FROM sales.public.big") == [[20000]]
    assert rows(served, "SELECT count(*) FROM sales.public.big WHERE bucket = 7") == [[200]]


def explain(server, sql):
    return "\n".join(str(c) for r in rows(server, "EXPLAIN " + sql) for c in r)


def test_joins_and_aggregates_within_one_database_run_there(served, data):
    customers, orders, _, _ = data
    city = {c[0]: c[3] for c in customers}
    expected = defaultdict(lambda: [0, Decimal(0), Decimal(10**9)])
    for _, customer_id, amount, day in orders:
        if day >= "2024-06-01":
            group = expected[city[customer_id]]
            group[0] += 1
            group[1] += amount
            group[2] = min(group[2], amount)
    sql = """
        SELECT c.city, count(*), sum(o.total_amount), min(o.total_amount)
        FROM sales.public.customers c JOIN sales.public.orders o
          ON c.customer_id = o.customer_id
        WHERE o.order_date >= DATE '2024-06-01'
        GROUP BY c.city"""
    plan = explain(served, sql)
    assert "JOIN" in plan and "GROUP BY" in plan and "DATE '2024-06-01'" in plan, plan
    assert "HashJoinExec" not in plan and "AggregateExec" not in plan, plan
    got = sorted(tuple(r) for r in rows(served, sql))
    assert got == sorted((k, *v) for k, v in expected.items())
    # In the cross-database query the sales join runs in sales; marketing's tables are
    # joined to it in the engine.
    plan = explain(served, CROSS_DATABASE_TOP_10)
    assert 'FROM "public"."customers" AS t0 JOIN "public"."orders" AS t1' in plan, plan
    # Three tables of one database: one remote query.
    sql = """
        SELECT count(*) FROM sales.public.orders o
        JOIN sales.public.customers c ON o.customer_id = c.customer_id
        JOIN sales.public.orders o2 ON o2.order_id = o.order_id
        LEFT JOIN sales.public.gold_revenue g ON g.customer_name = c.customer_name"""
    plan = explain(served, sql)
    assert "HashJoinExec" not in plan and "AggregateExec" not in plan, plan
    assert rows(served, sql) == [[len(orders)]]
    # marketing's catalog file turns join pushdown off, as in Trino.
    plan = explain(served, """
        SELECT count(*) FROM marketing.public.leads l
        JOIN marketing.public.campaigns m ON l.campaign_id = m.campaign_id""")
    assert "HashJoinExec" in plan, plan
    # What PostgreSQL would order or compare differently stays in the engine.
    plan = explain(served, "SELECT max(customer_name) FROM sales.public.customers")
    assert "AggregateExec" in plan, plan


def test_the_cross_database_query_returns_the_right_top_10(served, data):
    got = [tuple(r) for r in rows(served, CROSS_DATABASE_TOP_10)]
    groups = expected_groups(*data)
    # Groups of equal revenue may come in either order (a customer with leads of two
    # campaigns): the revenues must be the top 10, each row a real group.
    assert [r[2] for r in got] == [g[2] for g in groups[:10]]
    assert all(row in groups for row in got), got
    assert len(set(got)) == 10


def test_postgresql_tables_join_and_copy_into_iceberg(served, data):
    orders = data[1]
    rows(served, "CREATE SCHEMA iceberg.bronze")
    rows(served, "CREATE TABLE iceberg.bronze.orders AS SELECT * FROM sales.public.orders")
    assert rows(served, "SELECT count(*), sum(total_amount) FROM iceberg.bronze.orders") == [
        [len(orders), sum(o[2] for o in orders)]
    ]
    joined = rows(served, """
        SELECT c.city, count(*) FROM iceberg.bronze.orders o
        JOIN sales.public.customers c ON o.customer_id = c.customer_id
        GROUP BY c.city ORDER BY c.city""")
    assert sum(n for _, n in joined) == len(orders)
    assert [city for city, _ in joined] == ["Lyon", "Nice", "Paris"]


def test_insert_publishes_rows_to_postgresql_in_one_transaction(served, pg):
    done = rows(served, """
        INSERT INTO sales.public.gold_revenue
        SELECT s.customer_name, SUM(o.total_amount) FROM sales.public.customers s
        JOIN sales.public.orders o ON s.customer_id = o.customer_id
        GROUP BY s.customer_name ORDER BY 2 DESC LIMIT 5""")
    assert done == [[5]]
    assert pg.psql("sales_db", "SELECT count(*) FROM gold_revenue").strip() == "5"
    # A NULL into a NOT NULL column is refused before anything is sent.
    error = failure(served, """
        INSERT INTO sales.public.gold_revenue VALUES ('ok', 1), (NULL, 2)""")
    assert error.error_name == "CONSTRAINT_VIOLATION"
    # A row PostgreSQL refuses fails the whole INSERT: nothing of it lands.
    error = failure(served, """
        INSERT INTO sales.public.gold_revenue VALUES ('ok', 1), ('negative', -2)""")
    assert error.error_name == "JDBC_ERROR"
    assert error.message.startswith("Catalog 'sales': PostgreSQL error:"), error.message
    assert "gold_revenue_revenue_check" in error.message
    assert pg.psql("sales_db", "SELECT count(*) FROM gold_revenue").strip() == "5"


def test_names_and_values_cannot_change_the_remote_statement(served, pg):
    table = 'sales.public."' + EVIL_TABLE.replace('"', '""') + '"'
    column = '"' + EVIL_COLUMN.replace('"', '""') + '"'
    literal = "'" + EVIL_VALUE.replace("'", "''") + "'"
    assert rows(served, f"SELECT id, {column} FROM {table} WHERE {column} = {literal}") == [
        [1, EVIL_VALUE]
    ]
    assert rows(served, f"SELECT id FROM {table} WHERE {column} LIKE '%*/%'") == [[1]]
    assert rows(served, f"SELECT id FROM {table} WHERE {column} > 'p' ORDER BY id") == [[2]]
    rows(served, f"INSERT INTO {table} VALUES (3, {literal})")
    assert rows(served, f"SELECT count(*) FROM {table} WHERE {column} = {literal}") == [[2]]
    # Every table is still there.
    assert pg.psql("sales_db", "SELECT count(*) FROM customers").strip() == "2000"


def test_catalogs_created_at_run_time_persist_and_hide_their_password(served, pg):
    statement = (
        "CREATE CATALOG crm USING postgresql WITH ("
        f"\"connection-url\" = 'jdbc:postgresql://127.0.0.1:{pg.port}/sales_db', "
        f"\"connection-user\" = '{USER}', \"connection-password\" = '{PASSWORD}')"
    )
    rows(served, statement)
    assert rows(served, "SELECT count(*) FROM crm.public.customers") == [[2000]]
    error = failure(served, statement)
    assert error.error_name == "ALREADY_EXISTS"
    listed = rows(served, "SELECT query FROM system.runtime.queries")
    assert any("CREATE CATALOG crm" in q[0] for q in listed)
    assert not any(PASSWORD in q[0] for q in listed)
    ddl = rows(served, "SHOW CREATE TABLE crm.public.customers")[0][0]
    assert PASSWORD not in ddl
    # Kept in the metastore: a restarted server still has it.
    warehouse, args, env = served.restart_args
    assert PASSWORD not in served.stop()
    restarted = Server(warehouse, *args, env=env)
    served.process, served.http_port = restarted.process, restarted.http_port
    assert rows(served, "SELECT count(*) FROM crm.public.orders") == [[6000]]
    rows(served, "DROP CATALOG crm")
    assert "crm" not in [r[0] for r in rows(served, "SHOW CATALOGS")]
    assert failure(served, "DROP CATALOG crm").error_name == "CATALOG_NOT_FOUND"
    rows(served, "DROP CATALOG IF EXISTS crm")
    error = failure(served, "DROP CATALOG sales")
    assert "configuration" in error.message


def test_bad_catalogs_fail_alone_with_an_error_naming_them(served, pg):
    rows(served, f"""CREATE CATALOG wrongpw USING postgresql WITH (
        "connection-url" = '{pg.url("sales_db")}', "connection-user" = '{USER}',
        "connection-password" = 'not-the-password')""")
    error = failure(served, "SHOW SCHEMAS FROM wrongpw")
    assert error.error_name == "JDBC_ERROR"
    assert error.message.startswith("Catalog 'wrongpw'"), error.message
    assert "password authentication failed" in error.message
    assert "not-the-password" not in error.message
    assert rows(served, "SELECT count(*) FROM sales.public.orders") == [[6000]]
    error = failure(served, """CREATE CATALOG typo USING postgresql WITH (
        "connection-url" = 'postgresql://127.0.0.1/x', "conection-user" = 'u')""")
    assert "unknown catalog property 'conection-user'" in error.message
    rows(served, "DROP CATALOG wrongpw")


def test_an_unreachable_database_fails_its_catalog_until_it_is_back(served, pg):
    pg.stop()
    try:
        error = failure(served, "SELECT count(*) FROM sales.public.orders")
        assert error.error_name == "JDBC_ERROR"
        assert error.message.startswith("Catalog 'sales'"), error.message
        assert f"127.0.0.1:{pg.port}/sales_db" in error.message
        # The server and the lakehouse keep working.
        assert rows(served, "SELECT count(*) FROM iceberg.bronze.orders") == [[6000]]
    finally:
        pg.start()
    assert rows(served, "SELECT count(*) FROM sales.public.orders") == [[6000]]
    assert rows(served, "SELECT count(*) FROM marketing.public.leads") == [[3000]]


def test_only_admin_users_manage_catalogs_when_they_are_named(pg, tmp_path):
    server = Server(tmp_path / "wh", env={"AICHEMY_SERVER__ADMIN_USERS": "root_admin"})
    try:
        statement = (f"CREATE CATALOG ops USING postgresql WITH (\"connection-url\" = "
                     f"'{pg.url('sales_db')}', \"connection-user\" = '{USER}')")
        error = failure(server, statement)
        assert error.error_name == "PERMISSION_DENIED"
        assert error.message == "Access Denied: Cannot create catalog ops"
        admin = trino.dbapi.connect(host="127.0.0.1", port=server.http_port, user="root_admin")
        admin.cursor().execute(statement).fetchall()
        assert "ops" in [r[0] for r in rows(server, "SHOW CATALOGS")]
        assert failure(server, "DROP CATALOG ops").error_name == "PERMISSION_DENIED"
    finally:
        server.stop()


def test_a_catalog_over_tls_verified_against_the_servers_ca(tmp_path):
    """A PostgreSQL that takes TCP connections over TLS only: `sslmode=verify-full` with
    `sslrootcert` (the JDBC driver's URL parameters) reads it; plain TCP is refused."""
    pg = Postgres(tls=True)
    server = None
    try:
        pg.psql("postgres", f"CREATE DATABASE vault OWNER {USER}")
        pg.psql("vault", f"SET ROLE {USER}; CREATE TABLE secrets_kept (id integer); "
                         "INSERT INTO secrets_kept VALUES (1), (2)")
        server = Server(tmp_path / "wh")
        for name, query in [("verified", f"sslmode=verify-full&sslrootcert={pg.ca}"),
                            ("plain", "sslmode=disable")]:
            rows(server, f"CREATE CATALOG {name} USING postgresql WITH ("
                         f"\"connection-url\" = 'jdbc:postgresql://localhost:{pg.port}/vault"
                         f"?{query}', \"connection-user\" = '{USER}', "
                         f"\"connection-password\" = '{PASSWORD}')")
        assert rows(server, "SELECT count(*) FROM verified.public.secrets_kept") == [[2]]
        error = failure(server, "SELECT count(*) FROM plain.public.secrets_kept")
        assert "no encryption" in error.message or "SSL" in error.message, error.message
        assert PASSWORD not in error.message
    finally:
        if server:
            server.stop()
        pg.destroy()
