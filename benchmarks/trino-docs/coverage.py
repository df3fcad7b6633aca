#!/usr/bin/env python3
"""How much of Trino's documentation AIchemy reproduces, through the python `trino` client.

    "$AICHEMY_VENV/bin/python" benchmarks/trino-docs/coverage.py [--bin PATH]
        [--page functions/math ...] [--show-failures] [--causes] [--json OUT]
        [--diff OLD.json] [--write-passing FILE] [--timeout 20] [--no-tpch]

Starts `aichemy serve` on a fresh temporary warehouse (free ports, plain HTTP, user `docs`),
builds the docs' sample tables it can build honestly, runs every documented example of
examples.json that has a documented result and compares the client's rows with it, and asks
`SHOW FUNCTIONS` which documented functions (functions.json) exist. Prints a table per page
and the two target percentages (over all pages but the excluded `functions/ai`):

- functions present: distinct documented function names (per page) that `SHOW FUNCTIONS`
  lists in its `Function` column. If SHOW FUNCTIONS fails, presence is "unknown" (functions
  are never probed by calling them).
- examples passing: examples whose documented result the server returns, over all examples
  with a documented result (those needing data the docs don't show count as not passing).

Outcome of an example: `pass`, `fail` (a different result, or success where the docs show an
error), `error` (the query failed, or the client could not decode what the server sent),
`needs-data` (reads a table the docs don't show in full), `no-result` (the docs show no
result) or `excluded` (`excluded_from_targets`).

Sample tables (each page gets schema `iceberg.<page>`, e.g. `iceberg.functions_json`):

- rows the docs print in full: `customers` (functions/json), `shipping` (functions/conditional
  and, a different one, sql/select);
- TPC-H `nation`, `region` and `customer` (scale factor 1, the tpch connector's column names
  and types) for sql/select and functions/string, generated with `tpchgen-cli` (from the
  venv) unless --no-tpch. `iris`, `orders` and the rest are not built: "needs data".

Comparison: each value the client returns is rendered as the Trino CLI prints it (strings
bare, NULL, true/false, `[1, 2]`, `{k=v}`, rows `{x=1, y=2}`, decimals with their scale,
doubles as Java prints them, timestamps with the type's precision, varbinary as hex) and in
the other spellings the docs use (quoted strings `'abc'`, `{k -> v}`, `ROW(1, 'x')`,
`JSON '...'`, `X'..'`); the documented text must match one of them exactly, except that
NULL's case is free, doubles compare by value with a relative tolerance of 1e-9 (prose
examples, which round, to the digits shown), NUMBER by exact value, map entries in any
order, and rows in any order unless the query's ORDER BY fixes it (ties stay free). Known
notes after a result ("(session zone)", "without loss of precision", ...) are dropped.
Nondeterministic examples (`now()`, `current_timestamp`, ...) pass on the shape (every digit
may differ). Documented errors pass when the query fails for a reason other than "the
engine does not know this" (syntax error, unknown function or type, not supported), unless
the message is the documented one. Examples run in the session time zone the docs assumed
(`session_zone`), else UTC. ERRATA below corrects the few documented results that are wrong.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import decimal
import itertools
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE / "examples.json"
FUNCTIONS = HERE / "functions.json"
DEFAULT_TIMEOUT = 20

STATUSES = ["pass", "fail", "error", "needs-data", "no-result", "excluded"]


def default_bin():
    return os.environ.get("AICHEMY_BIN") or os.path.expanduser(
        "~/.cache/aichemy/target/debug/aichemy")


# --------------------------------------------------------------------------------------------
# Documented results that are wrong, and what Trino really answers for the SQL as written
# --------------------------------------------------------------------------------------------

ERRATA = {
    "functions/json:1282": {
        "reason": "the docs show Q1 where the input holds Q15",
        "expected": [["1", "Africa", "Q15"], ["2", "Americas", "Q828"], ["3", "Asia", "Q48"],
                     ["4", "Europe", "Q51"]],
    },
    "functions/conditional:245": {
        "reason": "the shipping table shown has 225 packages and a total cost of 490 for "
                  "New Jersey: 490 / 225 is 2 in integer division, the docs show 19",
        "expected": [["4"], ["14"], ["0"], ["2"]],
    },
    "functions/json:1975": {
        "reason": "'[\"a\": 1, \"b\": 2]' is not JSON (a member inside an array), which "
                  "json_parse refuses; the object meant parses to its compact text",
        "sql": """SELECT json_parse('{"a": 1, "b": 2}')""",
        "expected": """JSON '{"a":1,"b":2}'""",
    },
    "functions/conditional:219": {
        "reason": "TRY(CAST(origin_zip AS BIGINT)) is a bigint, printed without the leading "
                  "zero the text '08544' has",
        "expected": [["94131"], ["NULL"], ["94025"], ["8544"]],
    },
    "sql/select:394": {
        "reason": "the result is TPC-H customer's (mktsegment, acctbal), not shipping's",
        "sql": "SELECT mktsegment, sum(acctbal) FROM customer GROUP BY AUTO",
    },
}

# Trino types a timestamp or time literal at the digits written: TIMESTAMP '2020-05-01 12:34:56'
# is timestamp(0) (Trino's TestTimestamp.testLiterals), and so is what is computed from it. These
# results were written when every literal was timestamp(3) (before Trino 341's variable precision).
LITERAL_PRECISION = {
    "functions/datetime:10": "04:00:00",
    "functions/datetime:11": "2012-08-09 06:00:00",
    "functions/datetime:12": "2012-11-30 01:00:00",
    "functions/datetime:16": "22:00:00",
    "functions/datetime:17": "2012-08-06 20:00:00",
    "functions/datetime:18": "2012-09-30 01:00:00",
    "functions/datetime:28": "2012-10-31 01:00:00 UTC",
    "functions/datetime:31": "2012-10-30 18:00:00 America/Los_Angeles",
    "functions/datetime:38": "2012-10-30 18:00:00 America/Los_Angeles",
    "functions/datetime:271": "2022-10-20 00:00:00",
    "functions/datetime:274": "2022-10-01 00:00:00",
    "functions/datetime:277": "2022-01-01 00:00:00",
    "functions/datetime:304": "2020-03-01 00:01:26",
    "functions/datetime:307": "2020-03-01 09:00:00",
    "functions/datetime:310": "2020-02-29 00:00:00 UTC",
}
ERRATA.update({
    id: {"reason": "a literal without fractional seconds has precision 0 since Trino 341",
         "expected": expected}
    for id, expected in LITERAL_PRECISION.items()
})

# Names the `tables` heuristic takes for tables but that are not (`NULL IS DISTINCT FROM`).
NOT_TABLES = {"null"}

# --------------------------------------------------------------------------------------------
# The docs' sample tables
# --------------------------------------------------------------------------------------------

# Tables a page prints in full: page -> table -> (columns, rows as SQL VALUES tuples).
DOC_TABLES = {
    # functions/json, "Let `customers` be a table containing two columns: `id:bigint`,
    # `description:varchar`." followed by its three rows.
    "functions/json": {
        "customers": ("id bigint, description varchar", [
            """(101, '{"comment" : "nice", "children" : [10, 13, 16]}')""",
            """(102, '{"comment" : "problematic", "children" : [8, 11]}')""",
            """(103, '{"comment" : "knows best", "children" : [2]}')""",
        ]),
    },
    # functions/conditional (try): `SELECT * FROM shipping` shows the four rows; origin_zip
    # holds 'P332a' and '08544', so it is a varchar.
    "functions/conditional": {
        "shipping": ("origin_state varchar, origin_zip varchar, packages integer, "
                     "total_cost integer", [
                         "('California', '94131', 25, 100)",
                         "('California', 'P332a', 5, 72)",
                         "('California', '94025', 0, 155)",
                         "('New Jersey', '08544', 225, 490)",
                     ]),
    },
    # sql/select (GROUPING SETS): `SELECT * FROM shipping` shows the six rows.
    "sql/select": {
        "shipping": ("origin_state varchar, origin_zip integer, destination_state varchar, "
                     "destination_zip integer, package_weight integer", [
                         "('California', 94131, 'New Jersey', 8648, 13)",
                         "('California', 94131, 'New Jersey', 8540, 42)",
                         "('New Jersey', 7081, 'Connecticut', 6708, 225)",
                         "('California', 90210, 'Connecticut', 6927, 1337)",
                         "('California', 94131, 'Colorado', 80302, 5)",
                         "('New York', 10002, 'New Jersey', 8540, 3)",
                     ]),
    },
}

# TPC-H tables as Trino's tpch connector names and types them (scale factor 1), selected from
# the tpchgen-cli files.
TPCH_TABLES = {
    "region": ("r_regionkey bigint, r_name varchar, r_comment varchar",
               "r_regionkey AS regionkey, r_name AS name, r_comment AS comment"),
    "nation": ("n_nationkey bigint, n_name varchar, n_regionkey bigint, n_comment varchar",
               "n_nationkey AS nationkey, n_name AS name, n_regionkey AS regionkey, "
               "n_comment AS comment"),
    "customer": ("c_custkey bigint, c_name varchar, c_address varchar, c_nationkey bigint, "
                 "c_phone varchar, c_acctbal decimal(15,2), c_mktsegment varchar, "
                 "c_comment varchar",
                 "c_custkey AS custkey, c_name AS name, c_address AS address, "
                 "c_nationkey AS nationkey, c_phone AS phone, CAST(c_acctbal AS double) AS "
                 "acctbal, c_mktsegment AS mktsegment, c_comment AS comment"),
}
# Pages whose examples read the TPC-H tables unqualified (the docs' session schema tpch.sf1).
TPCH_PAGES = {
    "sql/select": ["nation", "region", "customer"],
    "functions/string": ["nation"],
    "functions/comparison": ["nation", "region"],
}


def schema_of(page):
    return re.sub(r"[^a-z0-9]+", "_", page.lower())


def page_tables(page, tpch):
    names = set(DOC_TABLES.get(page, {}))
    if tpch:
        names |= set(TPCH_PAGES.get(page, []))
    return names


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`aichemy serve` on free ports (the flags of tests/clients/lakehouse.py)."""

    def __init__(self, bin, warehouse, env=None):
        self.bin, self.warehouse, self.env = bin, warehouse, env or {}
        self.start()

    def start(self):
        self.http_port = free_port()
        self.https_port = free_port()
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [self.bin, "--warehouse", str(self.warehouse), "serve", "--bind", "127.0.0.1",
             "--http-port", str(self.http_port), "--https-port", str(self.https_port)],
            stdout=subprocess.DEVNULL, stderr=self.log,
            env={**os.environ, "NO_COLOR": "1", **self.env})
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/v1/info", timeout=1)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    self.log.seek(0)
                    raise RuntimeError("aichemy serve did not start:\n"
                                       + self.log.read().decode(errors="replace")[-4000:])
                time.sleep(0.2)

    def alive(self):
        return self.process.poll() is None

    def restart(self):
        if self.alive():
            self.stop()
        self.start()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --------------------------------------------------------------------------------------------
# Loading the docs' data
# --------------------------------------------------------------------------------------------


def load(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def resolve_pages(requested, known):
    if not requested:
        return list(known)
    pages = []
    for name in requested:
        if name in known:
            pages.append(name)
            continue
        matches = [p for p in known if p.split("/")[-1] == name or p.endswith("/" + name)]
        if len(matches) != 1:
            raise SystemExit(f"unknown page {name!r} (pages: {', '.join(known)})")
        pages.append(matches[0])
    return pages


def tpchgen():
    local = Path(sys.executable).parent / "tpchgen-cli"
    if local.exists():
        return str(local)
    return shutil.which("tpchgen-cli")


def build_tables(cursor_for, pages, needed, tpch_dir):
    """Creates the schemas of `pages` and the sample tables `needed` ({page: {table}}).
    Answers {page: set of tables built} and a list of problems."""
    built, problems = {}, []

    def run(page, sql):
        cur = cursor_for(page, "UTC").cursor()
        cur.execute(sql)
        cur.fetchall()

    def attempt(page, what, statements):
        try:
            for sql in statements:
                run(page, sql)
            built.setdefault(page, set()).add(what)
        except Exception as e:  # noqa: BLE001 -- reported, the examples count as needs-data
            problems.append(f"{page}: {what}: {error_text(e)}")

    for page in pages:
        try:
            run(page, f"CREATE SCHEMA IF NOT EXISTS iceberg.{schema_of(page)}")
        except Exception as e:  # noqa: BLE001
            problems.append(f"{page}: CREATE SCHEMA: {error_text(e)}")
    tpch_ready = False
    if tpch_dir and any(t in TPCH_TABLES for ts in needed.values() for t in ts):
        tables = sorted({t for ts in needed.values() for t in ts if t in TPCH_TABLES})
        try:
            subprocess.run([tpchgen(), "parquet", "-s", "1", "--parts=1",
                            "--tables=" + ",".join(tables), f"--output-dir={tpch_dir}"],
                           check=True, capture_output=True)
            run(pages[0], "CREATE SCHEMA IF NOT EXISTS hive.docs_tpch_files")
            for table in tables:
                run(pages[0], f"CREATE TABLE hive.docs_tpch_files.{table} "
                              f"({TPCH_TABLES[table][0]}) WITH (external_location = "
                              f"'file://{tpch_dir}/{table}', format = 'PARQUET')")
            tpch_ready = True
        except Exception as e:  # noqa: BLE001
            problems.append(f"TPC-H: {error_text(e)}")
    for page, tables in needed.items():
        for table in sorted(tables):
            target = f"iceberg.{schema_of(page)}.{table}"
            if table in DOC_TABLES.get(page, {}):
                columns, rows = DOC_TABLES[page][table]
                attempt(page, table, [f"CREATE TABLE {target} ({columns})",
                                      f"INSERT INTO {target} VALUES " + ", ".join(rows)])
            elif table in TPCH_TABLES and tpch_ready:
                attempt(page, table, [f"CREATE TABLE {target} AS SELECT "
                                      f"{TPCH_TABLES[table][1]} "
                                      f"FROM hive.docs_tpch_files.{table}"])
    return built, problems


# --------------------------------------------------------------------------------------------
# Rendering what the client returns
# --------------------------------------------------------------------------------------------


def java_double(v):
    """Java's Double.toString (shortest digits; plain in [1e-3, 1e7), else d.dddE±n)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0:
        return "-0.0" if math.copysign(1, v) < 0 else "0.0"
    sign = "-" if v < 0 else ""
    d = decimal.Decimal(repr(abs(v)))
    _, digits, exp = d.as_tuple()
    s = "".join(map(str, digits)).rstrip("0") or "0"
    exp += len("".join(map(str, digits))) - len(s)
    point = len(s) + exp  # digits before the decimal point
    if 1e-3 <= abs(v) < 1e7:
        if point <= 0:
            text = "0." + "0" * -point + s
        elif point >= len(s):
            text = s + "0" * (point - len(s)) + ".0"
        else:
            text = s[:point] + "." + s[point:]
    else:
        text = s[0] + "." + (s[1:] or "0") + "E" + str(point - 1)
    return sign + text


class Num:
    """A double of the result: matches a documented number within the tolerance."""
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def text(self):
        return java_double(self.value)


class Exact:
    """A NUMBER value: matches a documented number of the same exact value."""
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def text(self):
        return str(self.value)


class Rx:
    """A piece of pattern (with its display text)."""
    __slots__ = ("pattern", "display")

    def __init__(self, pattern, display):
        self.pattern, self.display = pattern, display

    def text(self):
        return self.display


class Null:
    __slots__ = ()

    def text(self):
        return "NULL"


NULL = Null()
NUMBER_RE = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|NaN|[-+]?Infinity"


@dataclasses.dataclass(frozen=True)
class Style:
    quote: bool = False          # strings as 'abc'
    map_sep: str = "="           # "=", " -> ", " = "
    row: str = "braces"          # "{x=1, y=2}", "paren" (1, 2), "ROW" ROW(1, 2)
    json: str = "bare"           # bare text, or JSON '...'
    binary: str = "hex"          # "ab cd", or X'ab cd'


def signature(text):
    """A Trino type as the protocol's typeSignature, from its name as SQL writes it
    (`map(varchar, array(row(a integer, b double)))`): for tests of the comparer."""
    text = text.strip()
    m = re.fullmatch(r"(\w+(?: \w+)*?)\s*(?:\((.*)\))?((?: with(?:out)? time zone)?)", text,
                     re.DOTALL)
    name, inner, suffix = m.group(1).lower(), m.group(2), m.group(3)
    args = []
    for part in split_top(inner) if inner else []:
        if re.fullmatch(r"\d+", part):
            args.append({"kind": "LONG", "value": int(part)})
        elif name == "row":
            field = re.fullmatch(r'("[^"]+"|[a-z_]\w*)\s+(.+)', part, re.I | re.DOTALL)
            if field and not re.fullmatch(r"[a-z_]\w*\s*\(.*", part, re.I | re.DOTALL) and \
                    field.group(2).split("(")[0].strip().lower() not in ("with", "time"):
                args.append({"kind": "NAMED_TYPE", "value": {
                    "fieldName": {"name": field.group(1).strip('"')},
                    "typeSignature": signature(field.group(2))}})
            else:
                args.append({"kind": "NAMED_TYPE", "value": {"typeSignature": signature(part)}})
        else:
            args.append({"kind": "TYPE", "value": signature(part)})
    return {"rawType": name + suffix, "arguments": args}


def split_top(text):
    parts, depth, current = [], 0, ""
    for c in text:
        depth += c == "("
        depth -= c == ")"
        if c == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += c
    return parts + [current.strip()]


def type_name(t):
    return (t or {}).get("rawType", "").lower()


def type_args(t):
    return (t or {}).get("arguments", [])


def precision(t, default=3):
    args = type_args(t)
    if args and args[0].get("kind") == "LONG":
        return args[0]["value"]
    return default


def row_fields(t):
    fields = []
    for arg in type_args(t):
        value = arg.get("value", {})
        if "typeSignature" in value:
            name = (value.get("fieldName") or {}).get("name")
            fields.append((name, value["typeSignature"]))
        else:
            fields.append((None, value))
    return fields


def needs_raw(t):
    """Temporal types past microseconds, which the client's python values cannot hold."""
    name = type_name(t)
    if name in ("timestamp", "timestamp with time zone", "time", "time with time zone"):
        return precision(t) > 6
    return any(needs_raw(arg.get("value", {}).get("typeSignature", arg.get("value")))
               for arg in type_args(t) if isinstance(arg.get("value"), dict))


def fraction(micros, p):
    if p <= 0:
        return ""
    digits = f"{micros:06d}"
    return "." + (digits + "0" * p)[:p]


def offset_text(delta):
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def zone_text(tz, value):
    key = getattr(tz, "key", None)
    if key:
        return key
    return offset_text(value.utcoffset())


def interval_day_second(td):
    millis = round(td / dt.timedelta(milliseconds=1))
    sign = "-" if millis < 0 else ""
    millis = abs(millis)
    days, millis = divmod(millis, 86_400_000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    seconds, millis = divmod(millis, 1000)
    return f"{sign}{days} {hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def interval_year_month(rd):
    months = rd.years * 12 + rd.months
    sign = "-" if months < 0 else ""
    return f"{sign}{abs(months) // 12}-{abs(months) % 12}"


def quote(s):
    return "'" + s.replace("'", "''") + "'"


def render(value, t, raw, style, hint=""):
    """The parts (text, Num, Exact, Rx, NULL) of a value printed in `style`. `raw` is the
    value as the server sent it, when known; `hint` the documented text (orders map entries
    the way the docs list them)."""
    if value is None:
        return [NULL]
    name = type_name(t)
    if name == "boolean":
        return ["true" if value else "false"]
    if name in ("tinyint", "smallint", "integer", "bigint"):
        return [str(value)]
    if name in ("double", "real"):
        return [Num(float(value))]
    if name == "decimal":
        return [format(value, "f")]
    if name == "number":
        return [Exact(value)]
    if name in ("varchar", "char"):
        return [quote(value) if style.quote else value]
    if name == "json":
        return ["JSON " + quote(value) if style.json == "literal" else value]
    if name == "varbinary":
        text = " ".join(f"{b:02x}" for b in value)
        return ["X'" + text + "'" if style.binary == "xlit" else text]
    if name == "date":
        return [value.isoformat()]
    if name in ("time", "time with time zone", "timestamp", "timestamp with time zone"):
        p = precision(t)
        if p > 6 and isinstance(raw, str):
            text = raw
        elif name in ("time", "time with time zone"):
            text = value.strftime("%H:%M:%S") + fraction(value.microsecond, p)
            if name == "time with time zone":
                text += offset_text(value.utcoffset())
            # the docs write an hour below 10 with and without its leading zero
            if text.startswith("0"):
                return [Rx("0?" + re.escape(text[1]), text[:2]), text[2:]]
            return [text]
        else:
            text = value.strftime("%Y-%m-%d %H:%M:%S") + fraction(value.microsecond, p)
            if name == "timestamp with time zone":
                text += " " + zone_text(value.tzinfo, value)
        return [text]
    if name == "interval day to second":
        return [interval_day_second(value)]
    if name == "interval year to month":
        return [interval_year_month(value)]
    if name == "uuid":
        return [str(value)]
    if name == "array":
        element = type_args(t)[0]["value"] if type_args(t) else None
        raws = raw if isinstance(raw, list) else [None] * len(value)
        parts = ["["]
        for i, (v, r) in enumerate(zip(value, raws)):
            if i:
                parts.append(", ")
            parts += render(v, element, r, style, hint)
        return parts + ["]"]
    if name == "map":
        args = type_args(t)
        kt, vt = (args[0]["value"], args[1]["value"]) if len(args) == 2 else (None, None)
        raw_items = list(raw.items()) if isinstance(raw, dict) else [(None, None)] * len(value)
        entries = []
        for (k, v), (rk, rv) in zip(value.items(), raw_items):
            key = render(k, kt, rk, style, hint)
            entries.append((key, render(v, vt, rv, style, hint)))

        def position(entry):
            key = parts_text(entry[0])
            found = hint.find(key + style.map_sep) if hint else -1
            return found if found >= 0 else len(hint or "") + 1

        entries.sort(key=position)
        parts = ["{"]
        for i, (key, val) in enumerate(entries):
            if i:
                parts.append(", ")
            parts += key + [style.map_sep] + val
        return parts + ["}"]
    if name == "row":
        fields = row_fields(t)
        raws = raw if isinstance(raw, list) else [None] * len(value)
        opening = {"braces": "{", "paren": "(", "ROW": "ROW("}[style.row]
        parts = [opening]
        for i, v in enumerate(value):
            if i:
                parts.append(", ")
            field_name, field_type = fields[i] if i < len(fields) else (None, None)
            if style.row == "braces" and field_name:
                parts.append(field_name + "=")
            parts += render(v, field_type, raws[i] if i < len(raws) else None, style, hint)
        return parts + ["}" if style.row == "braces" else ")"]
    # ipaddress, hyperloglog, ... : what the client returns
    if isinstance(value, bytes):
        return [" ".join(f"{b:02x}" for b in value)]
    if isinstance(value, (list, dict)):
        return [json.dumps(value)]
    return [str(value)]


def parts_text(parts):
    return "".join(p if isinstance(p, str) else p.text() for p in parts)


def features(t, found=None):
    """Which style choices matter for a type: strings, maps, rows, json, varbinary."""
    found = set() if found is None else found
    name = type_name(t)
    if name in ("varchar", "char"):
        found.add("quote")
    elif name in ("map", "row", "json", "varbinary"):
        found.add(name)
    for arg in type_args(t):
        value = arg.get("value")
        if isinstance(value, dict):
            features(value.get("typeSignature", value), found)
    return found


def styles(types):
    found = set()
    for t in types:
        features(t, found)
    choices = {
        "quote": [False, True] if "quote" in found or "row" in found else [False],
        "map_sep": ["=", " -> ", " = "] if "map" in found else ["="],
        "row": ["braces", "paren", "ROW"] if "row" in found else ["braces"],
        "json": ["bare", "literal"] if "json" in found else ["bare"],
        "binary": ["hex", "xlit"] if "varbinary" in found else ["hex"],
    }
    return [Style(*combo) for combo in itertools.product(*choices.values())]


def numbers_agree(documented, part, rounded):
    if isinstance(part, Exact):
        try:
            return decimal.Decimal(documented) == part.value or (
                part.value.is_nan() and documented == "NaN")
        except decimal.InvalidOperation:
            return False
    got = part.value
    if documented in ("NaN", "Infinity", "-Infinity", "+Infinity"):
        return java_double(got) == documented.lstrip("+")
    if math.isnan(got) or math.isinf(got):
        return False
    if documented == java_double(got):
        return True
    if not rounded:
        # Java prints a double with a point or an exponent and no superfluous zeros:
        # `2` or `23.000` is another type's value (integer, decimal), whatever its value.
        mantissa = re.split(r"[eE]", documented)[0]
        if "." not in documented and "e" not in documented.lower():
            return False
        if "." in mantissa and re.search(r"\.\d*[1-9]0+$|\.00+$", mantissa):
            return False
    want = float(documented)
    if want == got:
        return True
    if rounded:
        places = len(documented.split(".")[1]) if "." in documented and "e" not in \
            documented.lower() else 0
        return abs(want - got) <= 0.5 * 10 ** -places + 1e-12 * abs(want)
    return abs(want - got) <= 1e-9 * max(abs(want), abs(got))


def parts_match(parts, text, rounded=False, strip=False):
    if strip:
        parts = list(parts)
        if parts and isinstance(parts[0], str):
            parts[0] = parts[0].lstrip()
        if parts and isinstance(parts[-1], str):
            parts[-1] = parts[-1].rstrip()
    pattern, numbers = [], []
    for part in parts:
        if isinstance(part, str):
            pattern.append(re.escape(part))
        elif isinstance(part, (Num, Exact)):
            pattern.append("(" + NUMBER_RE + ")")
            numbers.append(part)
        elif isinstance(part, Rx):
            pattern.append(part.pattern)
        else:
            pattern.append("(?:NULL|null|Null)")
    m = re.fullmatch("".join(pattern), text, re.DOTALL)
    if not m:
        return False
    return all(numbers_agree(g, part, rounded) for g, part in zip(m.groups(), numbers))


class Cells:
    """One result row: python values, raw values (or None), column types."""

    def __init__(self, values, raws, types):
        self.values, self.raws, self.types = values, raws, types

    def parts(self, i, style, hint=""):
        raw = self.raws[i] if self.raws is not None else None
        return render(self.values[i], self.types[i], raw, style, hint)

    def tuple_parts(self, style, hint=""):
        parts = ["("]
        for i in range(len(self.values)):
            if i:
                parts.append(", ")
            parts += self.parts(i, style, hint)
        return parts + [")"]

    def display(self):
        style = Style()
        if len(self.values) == 1:
            return parts_text(self.parts(0, style))
        return parts_text(self.tuple_parts(style))


def cell_matches(text, cells, i, rounded=False, strip=False):
    for style in styles([cells.types[i]]):
        if parts_match(cells.parts(i, style, text), text, rounded, strip):
            return True
    return False


def line_matches(text, cells, rounded=False):
    """A documented line against a whole result row: its only value, or `(a, b)`."""
    if len(cells.values) == 1:
        return cell_matches(text, cells, 0, rounded)
    for style in styles(cells.types):
        if parts_match(cells.tuple_parts(style, text), text, rounded):
            return True
    return False


NOTES = [r"\(session zone\)", r"without loss of precision", r"\(invalid JSON\)",
         r"\(the double quote is gone\)"]


def normalise_text(text):
    text = text.strip()
    for note in NOTES:
        text = re.sub(r"\s*" + note + r"\s*$", "", text)
    return text


# --------------------------------------------------------------------------------------------
# Row order
# --------------------------------------------------------------------------------------------


def top_level_order_by(sql):
    """The ORDER BY items of the outermost query, or None."""
    depth, quote_char, i, last = 0, None, 0, None
    upper = sql.upper()
    while i < len(sql):
        c = sql[i]
        if quote_char:
            if c == quote_char:
                quote_char = None
        elif c in "'\"":
            quote_char = c
        elif c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end
            continue
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and re.match(r"ORDER\s+BY\b", upper[i:]) and (
                i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            last = i
        i += 1
    if last is None:
        return None
    clause = re.sub(r"^ORDER\s+BY\s+", "", sql[last:], flags=re.I)
    clause = re.split(r"\b(?:OFFSET|LIMIT|FETCH)\b", clause, flags=re.I)[0]
    items, depth, current = [], 0, ""
    for c in clause:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += c
    items.append(current)
    cleaned = []
    for item in items:
        item = re.sub(r"\s+NULLS\s+(FIRST|LAST)\s*$", "", item.strip(), flags=re.I)
        item = re.sub(r"\s+(ASC|DESC)\s*$", "", item, flags=re.I)
        cleaned.append(item.strip())
    return cleaned


def order_keys(sql, names):
    """Column indexes the ORDER BY sorts on; [] for no ORDER BY; None when unknown."""
    items = top_level_order_by(sql)
    if items is None:
        return []
    keys = []
    lowered = [n.lower() for n in names]
    for item in items:
        if item.isdigit():
            keys.append(int(item) - 1)
            continue
        name = item.split(".")[-1].strip('"').lower()
        if lowered.count(name) == 1:
            keys.append(lowered.index(name))
        else:
            return None
    return keys


def multiset_match(expected, got, matches):
    used = [False] * len(got)
    for e in expected:
        for j, g in enumerate(got):
            if not used[j] and matches(e, g):
                used[j] = True
                break
        else:
            return False
    return True


def rows_match(expected, got, matches, keys):
    """Documented rows against result rows: any order without ORDER BY, else in order but
    free among rows with equal sort keys."""
    if len(expected) != len(got):
        return False
    if not keys and keys is not None:
        return multiset_match(expected, got, matches)
    i = 0
    while i < len(got):
        j = i + 1
        if keys:
            key = [got[i].values[k] for k in keys]
            while j < len(got) and [got[j].values[k] for k in keys] == key:
                j += 1
        if not multiset_match(expected[i:j], got[i:j], matches):
            return False
        i = j
    return True


# --------------------------------------------------------------------------------------------
# Running the examples
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    id: str
    page: str
    status: str
    sql: str = ""
    expected: object = None
    got: str | None = None
    error_name: str | None = None
    error: str | None = None
    note: str | None = None
    seconds: float = 0.0

    def as_json(self):
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, "")}


class Result:
    def __init__(self, names, types, rows):
        self.names, self.types, self.rows = names, types, rows


class QueryFailed(Exception):
    def __init__(self, name, message):
        super().__init__(f"{name}: {message}")
        self.name, self.message = name, message


def error_text(e):
    if isinstance(e, QueryFailed):
        return f"{e.name}: {e.message}"
    name = getattr(e, "error_name", None)
    message = getattr(e, "message", None)
    if name:
        return f"{name}: {message}"
    return f"{type(e).__name__}: {e}"


# The engine not knowing a thing: such a failure is not the documented error.
UNSUPPORTED = {"SYNTAX_ERROR", "FUNCTION_NOT_FOUND", "NOT_SUPPORTED", "TYPE_NOT_FOUND",
               "FUNCTION_IMPLEMENTATION_MISSING", "GENERIC_INTERNAL_ERROR", "NOT_IMPLEMENTED",
               "CLIENT_DECODE", "TIMEOUT", "CLIENT_ERROR", "SERVER_EXITED",
               "EXCEEDED_TIME_LIMIT"}


class Runner:
    """Runs statements through the python client against one server."""

    def __init__(self, server=None, port=None, timeout=DEFAULT_TIMEOUT):
        import trino  # noqa: F401 -- fail early outside the venv
        self.server = server
        self.port = port if port is not None else server.http_port
        self.timeout = timeout
        self.connections = {}
        self.session = {"query_max_run_time": f"{int(timeout)}s"}
        try:
            self.query("functions_math", "UTC", "SELECT 1")
        except QueryFailed as e:
            if "query_max_run_time" not in e.message:
                raise
            self.session = {}

    def connection(self, schema, zone):
        import trino
        key = (self.port, schema, zone)
        if key not in self.connections:
            self.connections[key] = trino.dbapi.connect(
                host="127.0.0.1", port=self.port, user="docs", http_scheme="http",
                catalog="iceberg", schema=schema, timezone=zone,
                session_properties=dict(self.session), request_timeout=self.timeout + 30)
        return self.connections[key]

    def cursor_for(self, page, zone):
        return self.connection(schema_of(page), zone)

    def query(self, schema, zone, sql, raw=False):
        """Runs one statement; answers a Result or raises QueryFailed."""
        import trino
        cursor = self.connection(schema, zone).cursor(legacy_primitive_types=raw)
        timer = threading.Timer(self.timeout + 10, lambda: _cancel(cursor))
        timer.start()
        try:
            cursor.execute(sql)
            rows = cursor.fetchall()
        except trino.exceptions.TrinoQueryError as e:
            raise QueryFailed(e.error_name or e.error_type or "QUERY_FAILED",
                              e.message or str(e)) from None
        except trino.exceptions.TrinoDataError as e:
            raise QueryFailed("CLIENT_DECODE", str(e)) from None
        except Exception as e:  # noqa: BLE001 -- connection trouble, client bugs
            if self.server is not None and not self.server.alive():
                code = self.server.process.returncode
                self.server.restart()
                self.port = self.server.http_port
                raise QueryFailed("SERVER_EXITED", f"aichemy serve exited ({code}) "
                                  "and was restarted") from None
            if not timer.is_alive():
                raise QueryFailed("TIMEOUT", f"cancelled after {self.timeout + 10} s") \
                    from None
            raise QueryFailed("CLIENT_ERROR", f"{type(e).__name__}: {e}") from None
        finally:
            timer.cancel()
        columns = cursor._query.columns if cursor._query is not None else None
        columns = columns or []
        return Result([c.get("name", "") for c in columns],
                      [c.get("typeSignature", {"rawType": c.get("type", "")}) for c in columns],
                      rows)


def _cancel(cursor):
    try:
        cursor.cancel()
    except Exception:  # noqa: BLE001
        pass


def documented_error(text):
    text = text.strip()
    text = re.sub(r"^(Query failed:|ERROR!?:?|failure:)\s*", "", text, flags=re.I)
    return text.strip().strip('"`').strip()


def run_example(runner, page, ex):
    errata = ERRATA.get(ex["id"], {})
    sql = errata.get("sql", ex["sql"])
    expected = errata.get("expected", ex["expected"])
    outcome = Outcome(ex["id"], page, "fail", sql=sql, expected=expected)
    if errata:
        outcome.note = "erratum: " + errata["reason"]
    zone = ex.get("session_zone") or "UTC"
    started = time.monotonic()
    try:
        result = runner.query(schema_of(page), zone, sql)
        raws = None
        if any(needs_raw(t) for t in result.types):
            try:
                raws = runner.query(schema_of(page), zone, sql, raw=True).rows
            except QueryFailed:
                raws = None
    except QueryFailed as e:
        outcome.seconds = time.monotonic() - started
        outcome.error_name, outcome.error = e.name, e.message
        if ex.get("error"):
            want = documented_error(expected if isinstance(expected, str) else "")
            same = bool(want) and want.lower() in e.message.lower()
            if same or e.name not in UNSUPPORTED:
                outcome.status = "pass"
                outcome.note = ("fails with the documented message" if same else
                                "fails, with another message than the documented "
                                f"{want!r}" if want else "fails as documented")
            else:
                outcome.status = "fail"
                outcome.note = "documented to fail, but fails as unsupported"
        else:
            outcome.status = "error"
        return outcome
    outcome.seconds = time.monotonic() - started
    rows = [Cells(values, raws[i] if raws is not None and i < len(raws) else None,
                  result.types) for i, values in enumerate(result.rows)]
    outcome.got = "\n".join(r.display() for r in rows)
    if ex.get("error"):
        outcome.status = "fail"
        outcome.note = "documented to fail, but succeeds"
        return outcome
    ok = compare(ex, sql, expected, result, rows)
    if not ok and ex.get("nondeterministic"):
        ok = shape_matches(expected, rows)
        if ok:
            outcome.note = "nondeterministic: the shape matches"
    outcome.status = "pass" if ok else "fail"
    return outcome


def shape_matches(expected, rows):
    if not isinstance(expected, str) or len(rows) != 1:
        return False
    digits = lambda s: re.sub(r"\d", "#", s)  # noqa: E731
    return digits(normalise_text(expected)) == digits(rows[0].display())


def compare(ex, sql, expected, result, rows):
    rounded = ex.get("kind") == "prose"
    keys = order_keys(sql, result.names)
    if isinstance(expected, list):
        table = [list(r) for r in expected]
        # a trailing `|` in a psql table gives an empty last column
        while table and all(len(r) > len(result.names) and r[-1] == "" for r in table):
            table = [r[:-1] for r in table]
        strip = ex.get("kind") == "psql_table"

        def matches(cells_text, cells):
            return len(cells_text) == len(cells.values) and all(
                cell_matches(text, cells, i, rounded, strip)
                for i, text in enumerate(cells_text))

        if ex.get("truncated"):
            if ex.get("row_count") is not None and len(rows) != ex["row_count"]:
                return False
            if keys == []:
                return False  # an unordered prefix cannot be checked
            return rows_match(table, rows[:len(table)], matches, keys)
        return rows_match(table, rows, matches, keys)
    text = normalise_text(expected)
    if len(rows) == 1:
        return line_matches(text, rows[0], rounded)
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    return rows_match(lines, rows, lambda line, cells: line_matches(line, cells, rounded),
                      keys)


def compare_wire(expected, types, wire_rows, sql="SELECT 1", kind="following_comment",
                 names=None):
    """Compares a documented result with rows as the protocol carries them (`wire_rows`,
    of the SQL `types`), decoded by the client as a query's would be: the comparer's own
    test, with Trino's answers written by hand."""
    from trino.mapper import RowMapperFactory
    columns = [{"name": n, "type": t, "typeSignature": signature(t)}
               for n, t in zip(names or [f"_col{i}" for i in range(len(types))], types)]
    typed = RowMapperFactory().create(columns, legacy_primitive_types=False).map(
        [list(r) for r in wire_rows])
    result = Result([c["name"] for c in columns], [c["typeSignature"] for c in columns], typed)
    rows = [Cells(values, list(raw), result.types) for values, raw in zip(typed, wire_rows)]
    return compare({"kind": kind}, sql, expected, result, rows)


def needed_tables(ex):
    return {t.lower() for t in ex.get("tables") or []} - NOT_TABLES


def run(bin=None, pages=None, timeout=DEFAULT_TIMEOUT, tpch=True, workdir=None, port=None,
        log=None):
    """Runs the docs' examples against a server of its own (or the one on `port`, whose
    warehouse must allow reading `workdir` for the TPC-H files). Answers a Report."""
    examples = load(EXAMPLES)
    functions = load(FUNCTIONS)
    pages = resolve_pages(pages, list(examples))
    log = log or (lambda message: None)
    own = tempfile.TemporaryDirectory(prefix="aichemy-docs-") if workdir is None else None
    workdir = Path(workdir or own.name)
    tpch_dir = workdir / "tpch"
    tpch_ok = tpch and tpchgen() is not None
    server = None
    try:
        if port is None:
            server = Server(bin or default_bin(), workdir / "warehouse", env={
                "AICHEMY_STORAGE__ALLOWED_LOCATIONS": f"file://{tpch_dir}"})
        runner = Runner(server=server, port=port, timeout=timeout)
        needed = {}
        for page in pages:
            for ex in examples[page]:
                if ex["expected"] is None and not ex.get("error"):
                    continue
                wanted = needed_tables(ex) & page_tables(page, tpch_ok)
                if wanted:
                    needed.setdefault(page, set()).update(wanted)
        started = time.monotonic()
        built, problems = build_tables(runner.cursor_for, pages, needed,
                                       tpch_dir if tpch_ok else None)
        for problem in problems:
            log(f"sample data: {problem}")
        log(f"sample tables built in {time.monotonic() - started:.1f} s")
        present, presence_note = function_presence(runner)
        outcomes = {}
        for page in pages:
            for ex in examples[page]:
                if ex.get("excluded_from_targets"):
                    outcome = Outcome(ex["id"], page, "excluded", sql=ex["sql"])
                elif ex["expected"] is None and not ex.get("error"):
                    outcome = Outcome(ex["id"], page, "no-result", sql=ex["sql"])
                elif needed_tables(ex) - built.get(page, set()):
                    missing = sorted(needed_tables(ex) - built.get(page, set()))
                    outcome = Outcome(ex["id"], page, "needs-data", sql=ex["sql"],
                                      expected=ex["expected"],
                                      note="needs " + ", ".join(missing))
                else:
                    outcome = run_example(runner, page, ex)
                outcomes[ex["id"]] = outcome
        return Report(pages, examples, functions, outcomes, present, presence_note, problems)
    finally:
        if server is not None:
            server.stop()
        if own is not None:
            own.cleanup()


def function_presence(runner):
    """Names SHOW FUNCTIONS lists (lower case), or None and why not."""
    try:
        result = runner.query("functions_math", "UTC", "SHOW FUNCTIONS")
    except QueryFailed as e:
        return None, f"SHOW FUNCTIONS fails ({e.name}: {e.message}): presence unknown"
    lowered = [n.lower() for n in result.names]
    if "function" not in lowered:
        return None, f"SHOW FUNCTIONS has no Function column ({result.names}): presence unknown"
    index = lowered.index("function")
    return {str(row[index]).lower() for row in result.rows}, None


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


class Report:
    def __init__(self, pages, examples, functions, outcomes, present, presence_note, problems):
        self.pages, self.examples, self.functions = pages, examples, functions
        self.outcomes, self.present, self.presence_note = outcomes, present, presence_note
        self.problems = problems

    def excluded_page(self, page):
        return any(e.get("excluded_from_targets") for e in self.examples.get(page, [])) or \
            any(f.get("excluded_from_targets") for f in self.functions.get(page, []))

    def page_row(self, page):
        names = {f["base_name"].lower() for f in self.functions.get(page, [])}
        present = None if self.present is None else len(names & self.present)
        counts = {s: 0 for s in STATUSES}
        for ex in self.examples.get(page, []):
            outcome = self.outcomes.get(ex["id"])
            if outcome:
                counts[outcome.status] += 1
        with_result = sum(counts[s] for s in ("pass", "fail", "error", "needs-data"))
        return {"page": page, "functions": len(names), "present": present,
                "with_result": with_result, **counts}

    def totals(self):
        total = {"functions": 0, "present": 0 if self.present is not None else None,
                 "with_result": 0, **{s: 0 for s in STATUSES}}
        for page in self.pages:
            if self.excluded_page(page):
                continue
            row = self.page_row(page)
            for key in total:
                if total[key] is not None and row.get(key) is not None:
                    total[key] += row[key]
        total["functions_pct"] = (None if total["present"] is None or not total["functions"]
                                  else 100.0 * total["present"] / total["functions"])
        total["examples_pct"] = (100.0 * total["pass"] / total["with_result"]
                                 if total["with_result"] else 0.0)
        runnable = total["with_result"] - total["needs-data"]
        total["runnable_pct"] = 100.0 * total["pass"] / runnable if runnable else 0.0
        return total

    def table(self):
        header = ["page", "functions", "present", "with result", "pass", "fail", "error",
                  "needs data", "no result"]
        lines = ["| " + " | ".join(header) + " |",
                 "| --- | " + " | ".join(["---:"] * (len(header) - 1)) + " |"]

        def cells(row, name):
            present = "?" if row["present"] is None else str(row["present"])
            return [name, str(row["functions"]), present, str(row["with_result"]),
                    str(row["pass"]), str(row["fail"]), str(row["error"]),
                    str(row["needs-data"]), str(row["no-result"])]

        for page in self.pages:
            row = self.page_row(page)
            if not row["functions"] and not sum(row[s] for s in STATUSES):
                continue
            name = page + (" (excluded)" if self.excluded_page(page) else "")
            lines.append("| " + " | ".join(cells(row, name)) + " |")
        total = self.totals()
        lines.append("| " + " | ".join(f"**{c}**" for c in cells(total, "total")) + " |")
        return "\n".join(lines)

    def summary(self):
        t = self.totals()
        functions = ("unknown" if t["functions_pct"] is None else
                     f"{t['present']}/{t['functions']} = {t['functions_pct']:.1f} %")
        lines = [f"functions present: {functions}",
                 f"examples passing: {t['pass']}/{t['with_result']} = "
                 f"{t['examples_pct']:.1f} % of the examples with a documented result "
                 f"({t['runnable_pct']:.1f} % of the {t['with_result'] - t['needs-data']} "
                 "that need no missing data)"]
        if self.presence_note:
            lines.append(self.presence_note)
        return "\n".join(lines)

    def passing(self):
        return sorted(i for i, o in self.outcomes.items() if o.status == "pass")

    def failures(self):
        return [o for o in self.outcomes.values() if o.status in ("fail", "error")]

    def causes(self):
        """Failures grouped: the error's name and message (positions and literals elided),
        or "different result"."""
        groups = {}
        for o in self.failures():
            if o.status == "error":
                message = re.sub(r"^line \d+:\d+: ", "", o.error or "")
                message = message.split("\n")[0]
                message = re.sub(r"query_id=\S+", "", message)
                # syntax trees printed into messages: keep their head
                message = re.sub(r"(.{20,}?)[({]\s*\w+ \{.*$", r"\1", message)[:120]
                key = f"{o.error_name}: {message}"
            else:
                key = "different result" + (f" ({o.note})" if o.note and
                                            not o.note.startswith("erratum") else "")
            groups.setdefault(key, []).append(o.id)
        return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))

    def as_json(self):
        return {"totals": self.totals(), "presence_note": self.presence_note,
                "sample_data_problems": self.problems,
                "pages": [self.page_row(p) for p in self.pages],
                "outcomes": {i: o.status for i, o in sorted(self.outcomes.items())},
                "details": {i: o.as_json() for i, o in sorted(self.outcomes.items())
                            if o.status in ("fail", "error", "pass", "needs-data")}}


def one_line(value):
    if value is None:
        return "None"
    if isinstance(value, list):
        return " / ".join(" | ".join(r) for r in value)
    return " ".join(str(value).split())


def print_failures(report, out=sys.stdout):
    for o in sorted(report.failures(), key=lambda o: o.id):
        print(f"\n{o.id}  {o.status.upper()}" + (f"  ({o.note})" if o.note else ""), file=out)
        print(f"  sql:      {one_line(o.sql)}", file=out)
        print(f"  expected: {one_line(o.expected)}", file=out)
        if o.status == "error":
            print(f"  error:    {o.error_name}: {one_line(o.error)}", file=out)
        else:
            print(f"  got:      {one_line(o.got)}", file=out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=default_bin(), help="the aichemy binary")
    parser.add_argument("--page", action="append", nargs="+", default=[],
                        help="pages to run (functions/math or math); default: all")
    parser.add_argument("--show-failures", action="store_true")
    parser.add_argument("--causes", action="store_true",
                        help="print the failures grouped by cause")
    parser.add_argument("--json", metavar="OUT", help="write the per-example outcomes")
    parser.add_argument("--diff", metavar="OLD", help="compare with an earlier --json file")
    parser.add_argument("--write-passing", metavar="FILE",
                        help="write the sorted ids of the passing examples")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds per statement (query_max_run_time)")
    parser.add_argument("--no-tpch", action="store_true",
                        help="do not generate the TPC-H sample tables")
    args = parser.parse_args(argv)
    if not os.path.exists(args.bin):
        raise SystemExit(f"no aichemy binary at {args.bin}")
    pages = [p for group in args.page for p in group]
    started = time.monotonic()
    report = run(args.bin, pages, args.timeout, tpch=not args.no_tpch,
                 log=lambda m: print(m, file=sys.stderr))
    print(report.table())
    print()
    print(report.summary())
    print(f"({time.monotonic() - started:.0f} s)")
    if args.causes:
        print("\nfailures by cause:")
        for cause, ids in report.causes():
            print(f"{len(ids):4d}  {cause}\n      {' '.join(ids[:8])}"
                  + (" ..." if len(ids) > 8 else ""))
    if args.show_failures:
        print_failures(report)
    if args.diff:
        old = load(args.diff)["outcomes"]
        new = {i: o.status for i, o in report.outcomes.items()}
        changed = sorted(i for i in new if i in old and old[i] != new[i])
        print(f"\nchanged since {args.diff}: {len(changed)}")
        for i in changed:
            print(f"  {i}: {old[i]} -> {new[i]}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report.as_json(), fh, indent=1, default=str)
            fh.write("\n")
    if args.write_passing:
        with open(args.write_passing, "w", encoding="utf-8") as fh:
            fh.write("".join(i + "\n" for i in report.passing()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
