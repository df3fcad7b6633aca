"""Secrets stay secret (issue 28, parts 4 to 7), through the python client and raw HTTP:

- `${ENV:…}`/`${FILE:…}` in a catalog made with SQL resolve only what an administrator
  listed: a canary variable and a canary file of the server never reach a "PostgreSQL
  server" the user controls (a socket that records what it gets and answers with it),
  nor an error, `system.runtime.queries` or the server's log;
- `EXECUTE IMMEDIATE`, `USING` values and prepared statements show no password in the
  query list, and users see only their own queries unless they are administrators;
- with passwords on, plain HTTP takes no claimed user (unless reopened, with a warning);
- a wrong password takes as long for a user that does not exist, and repeated failures
  are slowed down with the same 401.
"""

import base64
import http.client
import json
import os
import socket
import ssl
import statistics
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
import trino
import urllib3
from trino.auth import BasicAuthentication

from lakehouse import BIN, Server, free_port

CANARY_ENV = "AICHEMY_TEST_CANARY"
CANARY = f"canary-env-{uuid.uuid4().hex}"
FILE_CANARY = f"canary-file-{uuid.uuid4().hex}"
# A secret the administrator lists for CREATE CATALOG: it may go where users send it.
LISTED_ENV = "AICHEMY_TEST_LISTED"
LISTED = f"listed-{uuid.uuid4().hex}"
PASSWORD = "correct horse battery staple"


class FakePostgres:
    """A "PostgreSQL server" on a free port that asks every client for a clear-text
    password, records every byte it receives and answers with an error quoting all of it
    (as a hostile server would, to read secrets back through the error text)."""

    def __init__(self):
        self.received = bytearray()
        self.connections = 0
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, database="db"):
        return f"postgresql://127.0.0.1:{self.port}/{database}"

    def seen(self):
        with self.lock:
            return bytes(self.received)

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _read(self, connection, size):
        data = b""
        while len(data) < size:
            chunk = connection.recv(size - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        with self.lock:
            self.received += data
        return data

    def _serve(self, connection):
        with self.lock:
            self.connections += 1
        got = bytearray()
        try:
            with connection:
                connection.settimeout(10)
                length, code = struct.unpack("!ii", self._read(connection, 8))
                if code == 80877103:  # SSLRequest: no TLS here
                    connection.sendall(b"N")
                    length, code = struct.unpack("!ii", self._read(connection, 8))
                got += self._read(connection, length - 8)
                # AuthenticationCleartextPassword: the client sends its password as is.
                connection.sendall(b"R" + struct.pack("!ii", 8, 3))
                kind, length = struct.unpack("!ci", self._read(connection, 5))
                got += self._read(connection, length - 4)
                quoted = got.replace(b"\0", b" ").decode("utf-8", "replace")
                fields = (b"SFATAL\0C28P01\0M" + f"rejected: {quoted}".encode() + b"\0\0")
                connection.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)
        except (ConnectionError, OSError, struct.error):
            pass

    def close(self):
        self.listener.close()


@pytest.fixture(autouse=True)
def no_ca_bundle(monkeypatch):
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


@pytest.fixture(scope="module")
def canary_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("secrets") / "canary.txt"
    path.write_text(FILE_CANARY + "\n")
    return path


@pytest.fixture(scope="module")
def attacker():
    server = FakePostgres()
    yield server
    server.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The default configuration (every user may CREATE CATALOG), with a canary in the
    environment and one secret listed for CREATE CATALOG."""
    folder = tmp_path_factory.mktemp("served")
    server = Server(folder / "wh", env={
        CANARY_ENV: CANARY, LISTED_ENV: LISTED,
        "AICHEMY_CREATE_CATALOG_SECRETS": f"ENV:{LISTED_ENV}",
    })
    yield server
    log = server.stop()
    assert CANARY not in log and FILE_CANARY not in log and LISTED not in log


def cursor(server, user="mallory", **kwargs):
    return trino.dbapi.connect(host="127.0.0.1", port=server.http_port, user=user,
                               **kwargs).cursor()


def run(server, sql, params=None, user="mallory", **kwargs):
    cur = cursor(server, user, **kwargs)
    cur.execute(sql, params)
    return cur.fetchall()


def failure(server, sql, params=None, user="mallory", **kwargs):
    with pytest.raises(trino.exceptions.TrinoQueryError) as error:
        run(server, sql, params, user, **kwargs)
    return error.value


def assert_no_canary(text):
    assert CANARY not in text and FILE_CANARY not in text, text


def create_catalog(name, url, **properties):
    values = {"connection-url": url, **properties}
    listed = ", ".join(f"\"{key}\" = '{value}'" for key, value in values.items())
    return f"CREATE CATALOG {name} USING postgresql WITH ({listed})"


def test_create_catalog_cannot_send_server_secrets_anywhere(served, attacker, canary_file):
    env, file = f"${{ENV:{CANARY_ENV}}}", f"${{FILE:{canary_file}}}"
    attempts = [
        create_catalog("e1", attacker.url(env)),
        create_catalog("e2", f"postgresql://{env}@127.0.0.1:{attacker.port}/db"),
        create_catalog("e3", attacker.url(), **{"connection-user": env}),
        create_catalog("e4", attacker.url(), **{"connection-password": file}),
        create_catalog("e5", attacker.url(f"db?password={file}")),
        create_catalog("e6", f"{env}://127.0.0.1/db"),
    ]
    for statement in attempts:
        error = failure(served, statement)
        assert error.error_name == "GENERIC_USER_ERROR", error
        assert "create_catalog_secrets" in error.message, error.message
        assert_no_canary(error.message)
    # Wrapped in EXECUTE IMMEDIATE, or with the reference as a parameter: the same.
    inner = attempts[3].replace("'", "''")
    error = failure(served, f"EXECUTE IMMEDIATE '{inner}'")
    assert "create_catalog_secrets" in error.message
    error = failure(served, "CREATE CATALOG e7 USING postgresql WITH "
                    "(\"connection-url\" = ?, \"connection-password\" = ?)",
                    [attacker.url(), env])
    assert "create_catalog_secrets" in error.message
    assert_no_canary(error.message)
    assert not any(name.startswith("e") and name[1:].isdigit()
                   for (name,) in run(served, "SHOW CATALOGS"))
    assert attacker.connections == 0
    assert_no_canary(attacker.seen().decode("utf-8", "replace"))
    listed = run(served, "SELECT query FROM system.runtime.queries")
    assert listed and all(CANARY not in q and FILE_CANARY not in q for (q,) in listed)


def test_errors_never_quote_a_password_or_a_listed_secret(served, attacker):
    """A secret the administrator listed does reach the server the user names (that is
    what listing it means), but no error shows it, nor a password, even when the server
    quotes them back."""
    before = attacker.connections
    run(served, create_catalog("rogue", attacker.url(), **{
        "connection-user": f"user-${{ENV:{LISTED_ENV}}}",
        "connection-password": "plain-password-1",
        "connection-timeout": "2"}))
    error = failure(served, "SHOW SCHEMAS FROM rogue")
    assert error.error_name == "JDBC_ERROR", error
    assert attacker.connections > before
    seen = attacker.seen().decode("utf-8", "replace")
    assert LISTED in seen and "plain-password-1" in seen
    assert "rejected:" in error.message and "***" in error.message, error.message
    assert LISTED not in error.message and "plain-password-1" not in error.message
    assert_no_canary(seen)
    run(served, "DROP CATALOG rogue")


def test_catalogs_an_administrator_configured_still_resolve_references(tmp_path):
    """The configuration file is the administrator's: its references resolve, and their
    values stay out of errors (the URL is shown as written)."""
    remote = FakePostgres()
    secret = f"admin-secret-{uuid.uuid4().hex}"
    config = tmp_path / "aichemy.toml"
    config.write_text(
        "[catalogs.ops]\nconnector = \"postgresql\"\n"
        f"url = \"postgresql://127.0.0.1:{remote.port}/${{ENV:OPS_DB}}\"\n"
        "user = \"ops\"\npassword_env = \"OPS_PW\"\nconnection_timeout_seconds = 2\n")
    server = Server(tmp_path / "wh", "--config", str(config),
                    env={"OPS_PW": secret, "OPS_DB": "ops-db-name"})
    try:
        error = failure(server, "SHOW SCHEMAS FROM ops")
        seen = remote.seen().decode("utf-8", "replace")
        assert secret in seen and "ops-db-name" in seen
        assert secret not in error.message and "ops-db-name" not in error.message, error
    finally:
        log = server.stop()
        remote.close()
    assert secret not in log


def test_query_list_hides_passwords_and_other_users_queries(tmp_path):
    secrets = [f"qsecret{i}-{uuid.uuid4().hex}" for i in range(5)]
    server = Server(tmp_path / "wh", env={"AICHEMY_SERVER__ADMIN_USERS": "admin"})
    url = "postgresql://127.0.0.1:9/db"
    try:
        # Alice may not create catalogs; her statements are listed all the same.
        inner = create_catalog("a1", url, **{"connection-password": secrets[0]})
        error = failure(server, "EXECUTE IMMEDIATE '" + inner.replace("'", "''") + "'",
                        user="alice")
        assert error.error_name == "PERMISSION_DENIED"
        assert run(server, "SELECT length(?)", [secrets[1]], user="alice") == [[len(secrets[1])]]
        assert run(server, "SELECT length(?)", [secrets[2]], user="alice",
                   legacy_prepared_statements=True) == [[len(secrets[2])]]
        # The administrator's CREATE CATALOG with parameters: immediate, and prepared (the
        # client sends the prepared text with the request; only `EXECUTE p …` is listed).
        statement = ("CREATE CATALOG {} USING postgresql WITH "
                     "(\"connection-url\" = ?, \"connection-password\" = ?)")
        run(server, statement.format("b1"), [url, secrets[3]], user="admin")
        assert raw_statement(server, "admin", f"EXECUTE p USING '{url}', '{secrets[4]}'", {
            "X-Trino-Prepared-Statement":
                "p=" + urllib.parse.quote(statement.format("b2"))}) == "FINISHED"
        # PREPARE of a CREATE CATALOG is refused (only queries and DML are prepared), and
        # its text is listed with the password masked.
        error = failure(server, "PREPARE p FROM " + create_catalog(
            "b3", url, **{"connection-password": secrets[0]}), user="admin")
        assert error.error_name == "SYNTAX_ERROR"
        assert {"b1", "b2"} <= {name for (name,) in run(server, "SHOW CATALOGS")}
        rows = run(server, "SELECT user, query FROM system.runtime.queries", user="admin")
        users = {user for user, _ in rows}
        assert {"alice", "admin"} <= users
        texts = "\n".join(query for _, query in rows)
        for secret in secrets:
            assert secret not in texts, texts
        assert "EXECUTE IMMEDIATE 'CREATE CATALOG a1" in texts
        assert "USING ?" in texts and "EXECUTE p USING ?, ?" in texts
        # Others see their own queries only.
        run(server, "SELECT 1", user="bob")
        assert {user for user, _ in run(server, "SELECT user, query FROM "
                                        "system.runtime.queries", user="bob")} == {"bob"}
        assert {user for (user,) in run(server, "SELECT user FROM system.runtime.queries",
                                        user="alice")} == {"alice"}
    finally:
        log = server.stop()
    for secret in secrets:
        assert secret not in log


def raw_statement(server, user, sql, headers):
    """Runs a statement through raw HTTP, following `nextUri`; answers its final state."""
    req = urllib.request.Request(f"http://127.0.0.1:{server.http_port}/v1/statement",
                                 data=sql.encode(), method="POST",
                                 headers={"X-Trino-User": user, **headers})
    body = json.loads(urllib.request.urlopen(req, timeout=30).read())
    while "nextUri" in body:
        body = json.loads(urllib.request.urlopen(body["nextUri"], timeout=30).read())
    assert "error" not in body, body["error"]
    return body["stats"]["state"]


def add_user(password_file, user, password):
    done = subprocess.run([BIN, "user", "add", user, "--password-file", str(password_file)],
                          input=password + "\n", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def request(url, headers=None, data=b"SELECT 1", method="POST"):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, context=context, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_http_takes_no_claimed_user_once_passwords_are_on(tmp_path):
    password_file = tmp_path / "password.db"
    add_user(password_file, "admin", PASSWORD)
    server = Server(tmp_path / "wh", "--password-file", str(password_file))
    http = f"http://127.0.0.1:{server.http_port}"
    try:
        status, body = request(f"{http}/v1/statement", {"X-Trino-User": "admin"},
                               b"CREATE CATALOG evil USING postgresql WITH "
                               b"(\"connection-url\" = 'postgresql://127.0.0.1:9/x')")
        assert (status, body) == (403, b"Authentication over HTTP is not enabled")
        with pytest.raises(trino.exceptions.HttpError, match="403"):
            cursor(server, "admin").execute("SELECT 1")
        # Health checks still answer; the REST catalog refuses HTTP outright.
        assert request(f"{http}/v1/info", method="GET")[0] == 200
        status, body = request(f"{http}/iceberg/v1/namespaces", method="GET", data=None)
        assert status == 401 and b"HTTPS only" in body
        status, _ = request(f"{http}/iceberg/v1/oauth/tokens",
                            {"Content-Type": "application/x-www-form-urlencoded"},
                            b"grant_type=client_credentials&client_id=admin"
                            b"&client_secret=" + PASSWORD.encode())
        assert status == 400
        # HTTPS with the password is the way in, and nothing ran before.
        cur = trino.dbapi.connect(host="localhost", port=server.https_port, user="admin",
                                  http_scheme="https", verify=False,
                                  auth=BasicAuthentication("admin", PASSWORD)).cursor()
        cur.execute("SHOW CATALOGS")
        assert ["evil"] not in cur.fetchall()
    finally:
        log = server.stop()
    assert "allow_insecure_over_http" not in log


def test_http_can_be_reopened_for_a_trusted_network_with_a_warning(tmp_path):
    password_file = tmp_path / "password.db"
    add_user(password_file, "admin", PASSWORD)
    server = Server(tmp_path / "wh", "--password-file", str(password_file),
                    env={"AICHEMY_SERVER__ALLOW_INSECURE_OVER_HTTP": "true"})
    try:
        assert run(server, "SELECT current_user", user="admin") == [["admin"]]
        status, _ = request(f"http://127.0.0.1:{server.http_port}/iceberg/v1/namespaces",
                            method="GET", data=None)
        assert status == 401
    finally:
        log = server.stop()
    warning = [line for line in log.splitlines() if "allow_insecure_over_http" in line]
    assert warning and "WARN" in warning[0], log


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Client:
    """One kept-alive HTTPS connection, timing each statement request."""

    def __init__(self, port):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.connection = http.client.HTTPSConnection("127.0.0.1", port, context=context,
                                                      timeout=60)

    def post(self, user, password):
        start = time.perf_counter()
        self.connection.request("POST", "/v1/statement", body=b"SELECT 1",
                                headers={"Authorization": basic(user, password),
                                         "X-Trino-User": user})
        response = self.connection.getresponse()
        body = response.read()
        return time.perf_counter() - start, response.status, body


def password_server(tmp_path, kind, env):
    warehouse = tmp_path / "wh"
    if kind == "file":
        password_file = tmp_path / "password.db"
        add_user(password_file, "admin", PASSWORD)
        return Server(warehouse, "--password-file", str(password_file), env=env)
    done = subprocess.run([BIN, "--warehouse", str(warehouse), "user", "add", "admin"],
                          input=PASSWORD + "\n", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return Server(warehouse, env={"AICHEMY_SERVER__PASSWORD_AUTHENTICATION": "true", **env})


@pytest.mark.parametrize("kind", ["file", "metastore"])
def test_a_wrong_password_takes_as_long_for_an_unknown_user(tmp_path, kind):
    """100 wrong passwords of an existing user and 100 of an unknown one, in pairs: the
    median of the pairs' differences is under 5 ms (skipping the hash made it ~90 ms).
    A busy machine spreads single tries over tens of milliseconds; a round whose median
    misses is measured again, up to three rounds (a real difference misses every one)."""
    server = password_server(tmp_path, kind, {"AICHEMY_SERVER__FAILED_LOGINS_BEFORE_DELAY": "0"})
    try:
        client = Client(server.https_port)
        client.post("admin", PASSWORD)  # the handshake, out of the timings
        rounds = []
        for _ in range(3):
            known, unknown = [], []
            for attempt in range(100):
                pair = [("admin", known), ("nobody", unknown)]
                # Each first in turn, so that whatever favours a pair's first try does not
                # favour one of them.
                for user, times in pair[::-1] if attempt % 2 else pair:
                    elapsed, status, body = client.post(user, "wrong password")
                    assert (status, body) == (401, b"Authentication failed: Invalid credentials")
                    times.append(elapsed * 1000)
            paired = statistics.median(k - u for k, u in zip(known, unknown))
            rounds.append((statistics.median(known), statistics.median(unknown), paired))
            print(f"{kind}: median {rounds[-1][0]:.1f} ms (existing user) vs "
                  f"{rounds[-1][1]:.1f} ms (unknown user), paired difference {paired:.1f} ms")
            if abs(paired) < 5:
                break
        assert abs(rounds[-1][2]) < 5, rounds
    finally:
        server.stop()


def test_repeated_failures_are_slowed_down_with_the_same_answer(tmp_path):
    server = password_server(tmp_path, "file", {"AICHEMY_SERVER__FAILED_LOGINS_BEFORE_DELAY": "3"})
    try:
        client = Client(server.https_port)
        answers = [client.post("admin", "wrong") for _ in range(3)]
        assert all(elapsed < 0.9 for elapsed, _, _ in answers), answers
        # The fourth attempt of the name (and of the address) waits a second first.
        slowed = client.post("admin", "wrong")
        assert slowed[0] >= 0.9, slowed
        refusal = (401, b"Authentication failed: Invalid credentials")
        assert all(answer[1:] == refusal for answer in answers + [slowed])
        # A name that does not exist is answered alike (the address's failures count).
        unknown = client.post("nobody", "wrong")
        assert unknown[1:] == refusal and unknown[0] >= 0.9, unknown
        # The right password still works, after the wait.
        elapsed, status, _ = client.post("admin", PASSWORD)
        assert status == 200 and elapsed >= 0.9, elapsed
    finally:
        server.stop()
