"""`aichemy serve` with a password file: HTTPS on a certificate generated once into the
warehouse, Trino's password-file format, `aichemy user`, and the python client's exact
snippet from the issue."""

import hashlib
import os
import ssl
import subprocess
import sys
import urllib.request

import pytest
import trino
import urllib3
from trino.auth import BasicAuthentication
from trino.dbapi import connect

from lakehouse import BIN, Server

PASSWORD = "correct horse battery staple"

# requests prefers these variables over `verify=False` (psf/requests#3829); a user's
# machine rarely sets them, this one may.
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}


def user_command(password_file, *args, password=None):
    return subprocess.run([BIN, "user", *args, "--password-file", str(password_file)],
                          input=password, capture_output=True, text=True)


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    folder = tmp_path_factory.mktemp("secured")
    password_file = folder / "password.db"
    done = user_command(password_file, "add", "admin", password=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    server = Server(folder / "wh", "--password-file", str(password_file))
    server.password_file = password_file
    server.warehouse = folder / "wh"
    yield server
    server.log = server.stop()


@pytest.fixture(autouse=True)
def no_ca_bundle(monkeypatch):
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def https_cursor(server, user="admin", password=PASSWORD):
    return connect(host="localhost", port=server.https_port, user=user, http_scheme="https",
                   auth=BasicAuthentication(user, password), verify=False).cursor()


def test_the_issue_snippet_prints_the_catalogs(secured):
    snippet = f"""
import urllib3
from trino.dbapi import connect
from trino.auth import BasicAuthentication
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
conn = connect(host='localhost', port={secured.https_port}, user='admin', http_scheme='https',
               auth=BasicAuthentication('admin', {PASSWORD!r}), verify=False)
cur = conn.cursor(); cur.execute('SHOW CATALOGS'); print(cur.fetchall())
"""
    done = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True,
                          env=CLEAN_ENV)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[['delta'], ['hive'], ['iceberg'], ['lance'], ['system']]"


def test_wrong_password_fails_and_runs_nothing(secured):
    cur = https_cursor(secured, password="wrong")
    with pytest.raises(trino.exceptions.HttpError) as error:
        cur.execute("CREATE SCHEMA iceberg.must_not_exist")
    assert "Authentication failed" in str(error.value)
    cur = https_cursor(secured, user="nobody", password=PASSWORD)
    with pytest.raises(trino.exceptions.HttpError) as error:
        cur.execute("CREATE SCHEMA iceberg.must_not_exist")
    assert "Authentication failed" in str(error.value)
    cur = https_cursor(secured)
    cur.execute("SELECT count(*) FROM system.runtime.queries "
                "WHERE query LIKE '%must_not_exist%' AND query NOT LIKE '%runtime%'")
    assert cur.fetchall() == [[0]]
    cur.execute("SHOW SCHEMAS FROM iceberg")
    assert ["must_not_exist"] not in cur.fetchall()


def request(url, headers, data=b"SELECT 1"):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_refusals_name_the_reason(secured):
    https = f"https://localhost:{secured.https_port}/v1/statement"
    basic = "Basic " + __import__("base64").b64encode(f"admin:{PASSWORD}".encode()).decode()
    # No credentials over HTTPS: Trino's challenge.
    assert request(https, {"X-Trino-User": "admin"}) == (401, b"Unauthorized")
    # Credentials of one user cannot act as another.
    status, body = request(https, {"X-Trino-User": "root", "Authorization": basic})
    assert (status, body) == (403, b"Access Denied: User admin cannot impersonate user root")
    # A malformed header is refused, not a crash.
    assert request(https, {"Authorization": "Basic %%%"}) == (401, b"Malformed credentials")
    # Plain HTTP takes neither passwords nor claimed users once passwords are on, as Trino
    # once authentication is configured.
    http = f"http://127.0.0.1:{secured.http_port}/v1/statement"
    status, body = request(http, {"X-Trino-User": "admin", "Authorization": basic})
    assert (status, body) == (403, b"Authentication over HTTP is not enabled")
    status, body = request(http, {"X-Trino-User": "admin"})
    assert (status, body) == (403, b"Authentication over HTTP is not enabled")


def test_users_are_managed_without_a_restart(secured):
    done = user_command(secured.password_file, "add", "analyst", password="first\n")
    assert done.returncode == 0, done.stderr
    cur = https_cursor(secured, user="analyst", password="first")
    cur.execute("SELECT current_user")
    assert cur.fetchall() == [["analyst"]]
    done = user_command(secured.password_file, "passwd", "analyst", password="second\n")
    assert done.returncode == 0, done.stderr
    with pytest.raises(trino.exceptions.HttpError):
        https_cursor(secured, user="analyst", password="first").execute("SELECT 1")
    cur = https_cursor(secured, user="analyst", password="second")
    cur.execute("SELECT 1")
    assert cur.fetchall() == [[1]]
    done = user_command(secured.password_file, "remove", "analyst")
    assert done.returncode == 0, done.stderr
    with pytest.raises(trino.exceptions.HttpError):
        https_cursor(secured, user="analyst", password="second").execute("SELECT 1")
    # The password is never an argument, and an existing user is not overwritten.
    done = user_command(secured.password_file, "add", "eve", "secret")
    assert done.returncode != 0 and "unexpected argument" in done.stderr
    done = user_command(secured.password_file, "add", "admin", password="x\n")
    assert done.returncode != 0 and "already exists" in done.stderr
    assert "admin:$2y$10$" in secured.password_file.read_text()
    assert PASSWORD not in secured.password_file.read_text()


def test_an_existing_trino_pbkdf2_entry_works(secured):
    salt = bytes(range(16))
    digest = hashlib.pbkdf2_hmac("sha256", b"from-trino", salt, 1000, 32)
    with open(secured.password_file, "a") as f:
        f.write(f"legacy:1000:{salt.hex()}:{digest.hex()}\n")
    cur = https_cursor(secured, user="legacy", password="from-trino")
    cur.execute("SELECT 1")
    assert cur.fetchall() == [[1]]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_is_1_2_or_later(secured):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    import socket
    with socket.create_connection(("localhost", secured.https_port)) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            certificate = tls.getpeercert(binary_form=True)
    on_disk = (secured.warehouse / "tls" / "aichemy.crt").read_text()
    assert ssl.PEM_cert_to_DER_cert(on_disk) == certificate
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    try:
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        return  # this OpenSSL cannot even offer TLS 1.1
    with socket.create_connection(("localhost", secured.https_port)) as raw:
        with pytest.raises(ssl.SSLError):
            old.wrap_socket(raw, server_hostname="localhost")


def test_certificate_generated_once_and_fingerprint_logged(tmp_path):
    password_file = tmp_path / "password.db"
    assert user_command(password_file, "add", "admin", password="pw\n").returncode == 0
    fingerprints = []
    for _ in range(2):
        server = Server(tmp_path / "wh", "--password-file", str(password_file))
        log = server.stop()
        line = next(line for line in log.splitlines() if "fingerprint" in line)
        fingerprints.append((line.split("fingerprint=")[1].split()[0],
                             "generated=true" in line))
    der = ssl.PEM_cert_to_DER_cert((tmp_path / "wh" / "tls" / "aichemy.crt").read_text())
    expected = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    assert fingerprints == [(expected, True), (expected, False)]
    assert oct((tmp_path / "wh" / "tls" / "aichemy.key").stat().st_mode & 0o777) == "0o600"


def test_http_can_be_closed_to_passwordless_clients(tmp_path):
    password_file = tmp_path / "password.db"
    assert user_command(password_file, "add", "admin", password="pw\n").returncode == 0
    server = Server(tmp_path / "wh", "--password-file", str(password_file),
                    env={"AICHEMY_SERVER__ALLOW_INSECURE_OVER_HTTP": "false"})
    try:
        status, body = request(f"http://127.0.0.1:{server.http_port}/v1/statement",
                               {"X-Trino-User": "admin"})
        assert (status, body) == (403, b"Authentication over HTTP is not enabled")
    finally:
        server.stop()


def test_a_bad_password_file_stops_the_start(tmp_path):
    bad = tmp_path / "password.db"
    bad.write_text("admin:$2y$04$abcdefghijklmnopqrstuu5Uj9yPz0A8J7CwAlVN8jHqC/1QG.Ywm\n")
    done = subprocess.run([BIN, "--warehouse", str(tmp_path / "wh"), "serve",
                           "--password-file", str(bad)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "Minimum cost of BCrypt password must be 8" in done.stderr
    assert "$2y$04$" not in done.stderr
