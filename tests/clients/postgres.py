"""A real PostgreSQL server for the federation tests: Debian's binaries, `initdb` in a
temporary folder, a free port, password authentication over TCP."""

import glob
import os
import shutil
import subprocess
import tempfile
import time

from lakehouse import free_port

USER = "aichemy_app"
# Not a secret: a throwaway database that lives for one test run. The tests check that
# it never shows up in what aichemy prints.
PASSWORD = "pg-Secret-7f3a9"


def binary(name):
    """A PostgreSQL program from PATH or Debian's versioned folder."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if not candidates:
        raise RuntimeError(f"{name} not found: install Debian's postgresql package")
    return candidates[0]


class Postgres:
    """A PostgreSQL server of its own; `stop()` ends it, `start()` brings it back."""

    def __init__(self, logical=False, tls=False):
        # Logical decoding (change data capture) needs wal_level=logical and slots.
        self.settings = (
            " -c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20"
            if logical else ""
        )
        self.dir = tempfile.mkdtemp(prefix="aichemy-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        # initdb refuses to run as root: the server runs as the postgres user then.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres")
        os.chmod(self.dir, 0o755)
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write("postgres-admin\n")
        if self.as_user:
            shutil.chown(pwfile, "postgres")
        subprocess.run(
            [*self.as_user, binary("initdb"), "-D", self.data, "-U", "postgres",
             "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256",
             "-E", "UTF8", "--locale=C.UTF-8"],
            check=True, capture_output=True,
        )
        if tls:
            self.enable_tls()
        self.start()
        self.psql("postgres", f"CREATE USER {USER} PASSWORD '{PASSWORD}'")

    def enable_tls(self):
        """TLS only over TCP: a CA of its own (`self.ca`, a PEM file) signs the server's
        certificate for 127.0.0.1 and localhost; plain TCP connections are rejected."""
        def openssl(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.dir)

        self.ca = os.path.join(self.dir, "ca.crt")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=aichemy test CA", "-keyout", "ca.key", "-out", "ca.crt")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                "-keyout", "server.key", "-out", "server.csr")
        with open(os.path.join(self.dir, "san.ext"), "w") as f:
            f.write("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt")
        key = os.path.join(self.dir, "server.key")
        os.chmod(key, 0o600)
        if self.as_user:
            shutil.chown(key, "postgres")
        self.settings += (f" -c ssl=on -c ssl_cert_file={self.dir}/server.crt"
                          f" -c ssl_key_file={key}")
        hba = os.path.join(self.data, "pg_hba.conf")
        with open(hba) as f:
            lines = f.read().splitlines()
        with open(hba, "w") as f:
            for line in lines:
                f.write(("hostssl " + line[len("host "):] if line.startswith("host ") else line)
                        + "\n")

    def start(self):
        subprocess.run(
            [*self.as_user, binary("pg_ctl"), "-D", self.data, "-w", "-l",
             os.path.join(self.dir, "log"), "-o",
             f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
             + self.settings,
             "start"],
            check=True, capture_output=True,
        )

    def stop(self):
        subprocess.run(
            [*self.as_user, binary("pg_ctl"), "-D", self.data, "-w", "-m", "fast", "stop"],
            check=True, capture_output=True,
        )

    def destroy(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, database, sql, stdin=None):
        """Runs SQL as the superuser over the socket; answers the unaligned output."""
        done = subprocess.run(
            [*self.as_user, binary("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t",
             "-h", self.dir, "-p", str(self.port), "-U", "postgres", "-d", database,
             "-c", sql],
            input=stdin, capture_output=True, text=True,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def copy_in(self, database, table, rows):
        """Loads rows (tuples) into a table with COPY."""
        def field(value):
            if value is None:
                return "\\N"
            return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        text = "".join("\t".join(field(v) for v in row) + "\n" for row in rows)
        self.psql(database, f"COPY {table} FROM STDIN", stdin=text)

    def url(self, database):
        return f"postgresql://127.0.0.1:{self.port}/{database}"


def wait_until(condition, timeout=30):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.2)
