"""Bearer JWTs of an identity provider (issue 34), as Trino's JWT authenticator takes them:
a PEM public key or a JWKS URL, the required issuer and audience, the user from `sub`;
through the python `trino` client's JWTAuthentication and PyIceberg's bearer token."""

import base64
import http.server
import json
import threading
import time

import jwt
import pytest
import requests
import trino
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pyiceberg.catalog import load_catalog
from trino.auth import JWTAuthentication

from lakehouse import Server

ISSUER = "https://idp.example.org"
AUDIENCE = "aichemy"


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(key, sub="sam", kid=None, **claims):
    payload = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 600,
               **claims}
    return jwt.encode(payload, key, algorithm="RS256",
                      headers={"kid": kid} if kid else None)


def query(server, bearer, sql="SELECT current_user"):
    cursor = trino.dbapi.connect(
        host="localhost", port=server.https_port, http_scheme="https",
        auth=JWTAuthentication(bearer), verify=str(server.certificate)).cursor()
    cursor.execute(sql)
    return cursor.fetchall()


def refused(server, bearer):
    with pytest.raises(trino.exceptions.HttpError) as failure:
        query(server, bearer)
    assert "401" in str(failure.value), failure.value


@pytest.fixture(autouse=True)
def own_certificate(monkeypatch):
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def jwt_server(warehouse, key_source):
    server = Server(warehouse, env={
        "AICHEMY_SERVER__JWT_KEY_FILE": key_source,
        "AICHEMY_SERVER__JWT_REQUIRED_ISSUER": ISSUER,
        "AICHEMY_SERVER__JWT_REQUIRED_AUDIENCE": AUDIENCE})
    server.certificate = warehouse / "tls" / "aichemy.crt"
    return server


def test_a_pem_key_verifies_tokens_and_names_their_user(tmp_path):
    key = new_key()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "idp.pem").write_bytes(pem)
    server = jwt_server(tmp_path / "warehouse", str(tmp_path / "idp.pem"))
    try:
        assert query(server, token(key)) == [["sam"]]
        refused(server, token(key, aud="someone-else"))
        refused(server, token(key, iss="https://evil.example"))
        refused(server, token(key, exp=int(time.time()) - 600))
        refused(server, jwt.encode({"sub": "sam", "aud": AUDIENCE, "exp": int(time.time()) + 600},
                                   key, algorithm="RS256"))
        refused(server, token(new_key()))
        # A token signed with the public key as an HMAC secret is no token.
        forged = jwt.encode({"sub": "root", "iss": ISSUER, "aud": AUDIENCE,
                             "exp": int(time.time()) + 600}, "not-the-key", algorithm="HS256")
        refused(server, forged)
        # Without a token nothing passes.
        response = requests.post(f"https://localhost:{server.https_port}/v1/statement",
                                 data="SELECT 1", headers={"X-Trino-User": "root"},
                                 verify=str(server.certificate))
        assert response.status_code == 401
        # The Iceberg REST catalog takes the same tokens.
        catalog = load_catalog("jwt", **{
            "type": "rest", "uri": f"https://localhost:{server.https_port}/iceberg",
            "token": token(key), "ssl": {"cabundle": str(server.certificate)}})
        catalog.create_namespace("from_jwt")
        assert ("from_jwt",) in catalog.list_namespaces()
        # Refusals are audited, without the token.
        denied = token(key, aud="someone-else")
        refused(server, denied)
        rows = query(server, token(key, sub="root"),
                     "SELECT decision, action, reason FROM system.runtime.audit "
                     "WHERE kind = 'AUTHENTICATION' AND decision = 'DENIED'")
        assert rows and all(r[1] == "jwt" for r in rows)
        assert denied not in json.dumps(rows)
    finally:
        server.stop()


class Jwks(http.server.BaseHTTPRequestHandler):
    body = b"{}"

    def do_GET(self):  # noqa: N802 - the handler's name
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(Jwks.body)

    def log_message(self, *args):
        pass


def jwk(key, kid):
    numbers = key.public_key().public_numbers()

    def b64(n):
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64(numbers.n), "e": b64(numbers.e)}


def test_a_jwks_url_serves_the_keys_and_their_rotation(tmp_path):
    old, new = new_key(), new_key()
    Jwks.body = json.dumps({"keys": [jwk(old, "old")]}).encode()
    idp = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=idp.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{idp.server_address[1]}/.well-known/jwks.json"
    server = jwt_server(tmp_path / "warehouse", url)
    try:
        assert query(server, token(old, kid="old")) == [["sam"]]
        refused(server, token(new, kid="new"))
        # The provider rotates its keys: a token naming the new one is checked against the
        # keys read again (at most every 5 seconds).
        Jwks.body = json.dumps({"keys": [jwk(old, "old"), jwk(new, "new")]}).encode()
        deadline = time.monotonic() + 30
        while True:
            try:
                assert query(server, token(new, kid="new", sub="ann")) == [["ann"]]
                break
            except trino.exceptions.HttpError:
                assert time.monotonic() < deadline
                time.sleep(1)
    finally:
        server.stop()
        idp.shutdown()


def test_the_token_maps_its_user_and_groups_and_impersonation_follows_the_rules(tmp_path):
    """Trino's `jwt.user-mapping.pattern` and a groups claim (as its OAuth2 `groups-field`),
    whose groups the rules file matches; `X-Trino-User` naming another user is impersonation,
    allowed only by the rules file's `impersonation` section."""
    key = new_key()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "idp.pem").write_bytes(pem)
    (tmp_path / "rules.json").write_text(json.dumps({
        "catalogs": [{"allow": "all"}],
        "schemas": [{"owner": True}],
        "tables": [
            {"user": "root", "privileges": ["SELECT", "INSERT", "OWNERSHIP"]},
            {"group": "sales", "schema": "sales", "privileges": ["SELECT"]},
        ],
        "impersonation": [
            {"original_user": "svc_(.*)", "new_user": "$1"},
        ],
        "system_information": [{"user": "root", "allow": ["read"]}],
    }))
    (tmp_path / "access-control.properties").write_text(
        "access-control.name=file\nsecurity.config-file=rules.json\n")
    server = Server(tmp_path / "warehouse",
                    "--access-control-config", str(tmp_path / "access-control.properties"),
                    env={"AICHEMY_SERVER__JWT_KEY_FILE": str(tmp_path / "idp.pem"),
                         "AICHEMY_SERVER__JWT_REQUIRED_ISSUER": ISSUER,
                         "AICHEMY_SERVER__JWT_REQUIRED_AUDIENCE": AUDIENCE,
                         "AICHEMY_SERVER__JWT_USER_MAPPING_PATTERN": "(.*)@example\\.org",
                         "AICHEMY_SERVER__JWT_GROUPS_FIELD": "groups"})
    server.certificate = tmp_path / "warehouse" / "tls" / "aichemy.crt"

    def as_user(bearer, sql, user=None):
        cursor = trino.dbapi.connect(
            host="localhost", port=server.https_port, http_scheme="https", user=user,
            auth=JWTAuthentication(bearer), verify=str(server.certificate)).cursor()
        cursor.execute(sql)
        return cursor.fetchall()

    try:
        root = token(key, sub="root@example.org")
        as_user(root, "CREATE SCHEMA iceberg.sales")
        as_user(root, "CREATE TABLE iceberg.sales.orders AS SELECT 1 AS id")
        ann = token(key, sub="ann@example.org", groups=["sales"])
        assert as_user(ann, "SELECT current_user") == [["ann"]]
        assert as_user(ann, "SELECT id FROM iceberg.sales.orders") == [[1]]
        # Her next token no longer lists the group: her groups follow the token.
        with pytest.raises(trino.exceptions.TrinoUserError) as failure:
            as_user(token(key, sub="ann@example.org", groups=[]),
                    "SELECT id FROM iceberg.sales.orders")
        assert failure.value.message == (
            "Access Denied: Cannot select from table iceberg.sales.orders")
        # A principal the pattern does not map, or a groups claim that is no list, is refused.
        refused(server, token(key, sub="ann@evil.org"))
        refused(server, token(key, sub="ann@example.org", groups="sales"))
        # svc_ann may act as ann, with ann's rights; not as anyone else.
        service = token(key, sub="svc_ann@example.org", groups=["sales"])
        assert as_user(service, "SELECT current_user", user="ann") == [["ann"]]
        with pytest.raises(trino.exceptions.HttpError) as failure:
            as_user(service, "SELECT 1", user="root")
        assert "403" in str(failure.value)
        assert "User svc_ann cannot impersonate user root" in str(failure.value)
        # Both decisions are audited under the signed-in user.
        deadline = time.monotonic() + 10
        while True:
            rows = as_user(root, "SELECT action, decision FROM system.runtime.audit "
                                 "WHERE kind = 'AUTHENTICATION' AND user = 'svc_ann' "
                                 "AND action LIKE 'impersonate%' ORDER BY decision")
            if len(rows) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert rows == [["impersonate ann", "ALLOWED"], ["impersonate root", "DENIED"]]
    finally:
        server.stop()
