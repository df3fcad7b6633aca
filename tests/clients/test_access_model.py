"""The access policy's proof (issue 34): a reference implementation of the semantics of
Trino's file-based access control — deny by default, the first matching rule decides, hidden
columns, row filters — checked against AIchemy through the python `trino` client for
thousands of random (user, table, operation, path) combinations drawn from random policies,
with zero mismatches allowed.

The reference below knows nothing of AIchemy: it reads the same rules the server reads and
answers what Trino's documentation says they mean. Its column checks are of the columns a
query reads; Trino also refuses a hidden column a query names but never reads (`SELECT
count(*) FROM (SELECT hidden FROM t)`), which AIchemy lets through, so no path here names
a column it does not use."""

import json
import random
import re
import time

import pytest
import trino

from lakehouse import Server

USERS = ["ann", "bob", "cy", "dee"]
GROUPS = {"ann": ["sales"], "bob": ["sales", "eng"], "cy": ["eng"], "dee": []}
SCHEMAS = ["s0", "s1"]
TABLES = ["t0", "t1", "t2"]
COLUMNS = ["id", "a", "b"]
ROWS = 6  # ids 1..6 in every table
PRIVILEGES = ["SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP"]
POLICIES = 6
CHECKS_PER_POLICY = 400

ADMIN_RULE = {"user": "admin", "privileges": PRIVILEGES + ["GRANT_SELECT"]}


def pattern(rng, names):
    """A whole-match regex over `names`: one name, an alternation or a prefix."""
    kind = rng.random()
    if kind < 0.5:
        return re.escape(rng.choice(names))
    if kind < 0.8:
        return "|".join(re.escape(n) for n in rng.sample(names, 2))
    return re.escape(rng.choice(names)[0]) + ".*"


def random_policy(rng):
    rules = [ADMIN_RULE]
    for _ in range(rng.randint(3, 9)):
        rule = {"privileges": rng.sample(PRIVILEGES, rng.randint(0, 3))}
        who = rng.random()
        if who < 0.5:
            rule["user"] = pattern(rng, USERS)
        elif who < 0.8:
            rule["group"] = pattern(rng, ["sales", "eng"])
        if rng.random() < 0.7:
            rule["schema"] = pattern(rng, SCHEMAS)
        if rng.random() < 0.6:
            rule["table"] = pattern(rng, TABLES)
        if rng.random() < 0.3:
            rule["columns"] = [{"name": rng.choice(["a", "b"]), "allow": False}]
        if rng.random() < 0.3:
            rule["filter"] = f"id > {rng.randint(0, 4)}"
        rules.append(rule)
    return {"catalogs": [{"allow": "all"}], "schemas": [{"user": "admin", "owner": True}],
            "tables": rules}


class Reference:
    """Trino's documented semantics for table rules, independently of the server."""

    def __init__(self, policy):
        self.rules = policy["tables"]

    def rule(self, user, schema, table):
        for rule in self.rules:
            if "user" in rule and not re.fullmatch(rule["user"], user):
                continue
            if "group" in rule and not any(re.fullmatch(rule["group"], g)
                                           for g in GROUPS.get(user, [])):
                continue
            if "schema" in rule and not re.fullmatch(rule["schema"], schema):
                continue
            if "table" in rule and not re.fullmatch(rule["table"], table):
                continue
            return rule
        return None

    def may(self, user, schema, table, privilege, columns=()):
        rule = self.rule(user, schema, table)
        if rule is None or privilege not in rule["privileges"]:
            return False
        hidden = {c["name"] for c in rule.get("columns", []) if not c["allow"]}
        return not hidden.intersection(columns)

    def visible(self, user, schema, table):
        rule = self.rule(user, schema, table)
        return rule is not None and bool(rule["privileges"])

    def rows(self, user, schema, table):
        rule = self.rule(user, schema, table)
        floor = int(rule["filter"].split(">")[1]) if rule and "filter" in rule else 0
        return ROWS - floor


def write(folder, policy):
    """Replaces the rules; the server reads them again at its next check (refresh 1 ms)."""
    (folder / "rules.json").write_text(json.dumps(policy))
    time.sleep(0.05)


def outcome(port, user, sql):
    """The rows, or "DENIED" for a refusal (any other error fails the test)."""
    cursor = trino.dbapi.connect(host="127.0.0.1", port=port, user=user).cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    except trino.exceptions.TrinoUserError as error:
        assert error.error_name == "PERMISSION_DENIED", (sql, error)
        return "DENIED"


def checks(rng, reference):
    """Random (user, table, operation, path) checks with what the reference expects."""
    for _ in range(CHECKS_PER_POLICY):
        user = rng.choice(USERS)
        schema, table = rng.choice(SCHEMAS), rng.choice(TABLES)
        name = f"iceberg.{schema}.{table}"
        column = rng.choice(COLUMNS)
        may_select = reference.may(user, schema, table, "SELECT", [column])
        count = reference.rows(user, schema, table)
        path = rng.randrange(8)
        if path == 0:
            yield user, f"SELECT count({column}) FROM {name}", [[count]] if may_select else None
        elif path == 1:
            sql = (f"SELECT count(v) FROM (SELECT x.{column} AS v FROM {name} x "
                   "JOIN iceberg.open.ids o ON o.id = x.id)")
            yield user, sql, [[count]] if may_select else None
        elif path == 2:
            sql = f"WITH c AS (SELECT {column} FROM {name}) SELECT count({column}) FROM c"
            yield user, sql, [[count]] if may_select else None
        elif path == 3:
            sql = (f"SELECT count(*) FROM iceberg.open.ids WHERE id IN "
                   f"(SELECT id FROM {name} WHERE {column} IS NOT NULL)")
            ok = reference.may(user, schema, table, "SELECT", ["id", column])
            yield user, sql, [[count]] if ok else None
        elif path == 4:
            ok = reference.may(user, schema, table, "INSERT")
            yield user, f"EXPLAIN INSERT INTO {name} VALUES (99, 'x', 'y')", \
                "ANY" if ok else None
        elif path == 5:
            # Deletes nothing; its condition reads `id`, which needs SELECT, as in Trino.
            ok = (reference.may(user, schema, table, "DELETE")
                  and reference.may(user, schema, table, "SELECT", ["id"]))
            yield user, f"DELETE FROM {name} WHERE id = 99", [[0]] if ok else None
        elif path == 6:
            expected = [[t] for t in TABLES if reference.visible(user, schema, t)]
            sql = (f"SELECT table_name FROM iceberg.information_schema.tables "
                   f"WHERE table_schema = '{schema}' ORDER BY table_name")
            yield user, sql, expected
        else:
            # Every column: a hidden one makes it an error.
            ok = reference.may(user, schema, table, "SELECT", COLUMNS)
            yield user, f"SELECT * FROM {name}", count if ok else None


@pytest.fixture(scope="module")
def model_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    setup = {"catalogs": [{"allow": "all"}], "schemas": [{"owner": True}],
             "tables": [{"privileges": PRIVILEGES + ["GRANT_SELECT"]}]}
    (folder / "rules.json").write_text(json.dumps(setup))
    (folder / "access-control.properties").write_text(
        "access-control.name=file\nsecurity.config-file=rules.json\n"
        "security.refresh-period=1ms\n")
    (folder / "group.txt").write_text("sales:ann,bob\neng:bob,cy\n")
    (folder / "group-provider.properties").write_text(
        "group-provider.name=file\nfile.group-file=group.txt\nfile.refresh-period=1ms\n")
    server = Server(folder / "warehouse",
                    "--access-control-config", str(folder / "access-control.properties"),
                    "--group-provider-config", str(folder / "group-provider.properties"))
    port = server.http_port
    values = ", ".join(f"({i}, 'a{i}', 'b{i}')" for i in range(1, ROWS + 1))
    for schema in SCHEMAS + ["open"]:
        outcome(port, "admin", f"CREATE SCHEMA iceberg.{schema}")
    outcome(port, "admin", "CREATE TABLE iceberg.open.ids AS "
                           "SELECT * FROM UNNEST(sequence(1, 6)) AS u(id)")
    for schema in SCHEMAS:
        for table in TABLES:
            name = f"iceberg.{schema}.{table}"
            outcome(port, "admin", f"CREATE TABLE {name} (id BIGINT, a VARCHAR, b VARCHAR)")
            outcome(port, "admin", f"INSERT INTO {name} VALUES {values}")
    yield folder, server
    server.stop()


def test_random_policies_decide_as_the_reference_does(model_server):
    folder, server = model_server
    rng = random.Random(34)
    mismatches, total = [], 0
    for _ in range(POLICIES):
        policy = random_policy(rng)
        # Everyone reads the open table (the other side of the joins).
        policy["tables"].insert(1, {"schema": "open", "privileges": ["SELECT"]})
        write(folder, policy)
        reference = Reference(policy)
        for user, sql, expected in checks(rng, reference):
            got = outcome(server.http_port, user, sql)
            total += 1
            if expected is None:
                ok = got == "DENIED"
            elif expected == "ANY":
                ok = got != "DENIED"
            elif isinstance(expected, int):
                ok = got != "DENIED" and len(got) == expected
            else:
                ok = got == expected
            if not ok:
                mismatches.append((json.dumps(policy), user, sql, expected, got))
    assert total == POLICIES * CHECKS_PER_POLICY
    assert mismatches == [], [m[1:] for m in mismatches[:5]]
