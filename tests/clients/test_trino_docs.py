"""Trino's documented examples (benchmarks/trino-docs) through the python `trino` client:
every example listed in benchmarks/trino-docs/passing.txt still returns its documented result.
Regenerate the list with `coverage.py --write-passing benchmarks/trino-docs/passing.txt` when
more pass. Also checks the comparer itself on answers as Trino sends them."""

import base64
import importlib.util
import sys
from pathlib import Path

import pytest

from lakehouse import Server

DOCS = Path(__file__).resolve().parents[2] / "benchmarks" / "trino-docs"


def load_coverage():
    spec = importlib.util.spec_from_file_location("trino_docs_coverage", DOCS / "coverage.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


coverage = load_coverage()


def test_documented_examples_that_passed_still_pass(tmp_path):
    passing = [line.strip() for line in (DOCS / "passing.txt").read_text().splitlines()
               if line.strip()]
    tpch = tmp_path / "tpch"
    served = Server(tmp_path / "warehouse",
                    env={"AICHEMY_STORAGE__ALLOWED_LOCATIONS": f"file://{tpch}"})
    try:
        report = coverage.run(port=served.http_port, workdir=tmp_path, timeout=10)
    finally:
        served.stop()
    print(report.table())
    print(report.summary())
    unknown = [i for i in passing if i not in report.outcomes]
    lost = [report.outcomes[i] for i in passing
            if i in report.outcomes and report.outcomes[i].status != "pass"]
    gained = sorted(set(report.passing()) - set(passing))
    if gained:
        print(f"{len(gained)} examples pass that passing.txt does not list: {' '.join(gained)}")
    lines = [f"{o.id} [{o.status}] {coverage.one_line(o.sql)}\n"
             f"    expected: {coverage.one_line(o.expected)}\n"
             + (f"    error:    {o.error_name}: {coverage.one_line(o.error)}" if o.error_name
                else f"    got:      {coverage.one_line(o.got)}") for o in lost]
    lines += [f"{i}: no such example in examples.json (regenerate passing.txt)"
              for i in unknown]
    assert not lines, f"{len(lines)} documented examples no longer pass:\n" + "\n".join(lines)


def b64(data):
    return base64.b64encode(data).decode()


# (documented text, column types, rows as Trino sends them, options, should match)
WIRE = [
    ("2012-10-30 18:00:00.000 America/Los_Angeles  (session zone)",
     ["timestamp(3) with time zone"], [["2012-10-30 18:00:00.000 America/Los_Angeles"]], {},
     True),
    ("1970-01-01 00:00:00.000000100 UTC", ["timestamp(9) with time zone"],
     [["1970-01-01 00:00:00.000000100 UTC"]], {}, True),
    ("1970-01-01 00:00:00.000000100 UTC", ["timestamp(9) with time zone"],
     [["1970-01-01 00:00:00.000000200 UTC"]], {}, False),
    ("2020-05-11 11:15:05.055 +01:00", ["timestamp(3) with time zone"],
     [["2020-05-11 10:15:05.055 UTC"]], {}, False),
    ("1:02:03.456-08:00", ["time(3) with time zone"], [["01:02:03.456-08:00"]], {}, True),
    ("2020-06-10 15:55:23", ["timestamp(0)"], [["2020-06-10 15:55:23"]], {}, True),
    ("2020-06-10 15:55:23", ["timestamp(3)"], [["2020-06-10 15:55:23.000"]], {}, False),
    ("2 03:00:00.000", ["interval day to second"], [["2 03:00:00.000"]], {}, True),
    ("3-5", ["interval year to month"], [["3-5"]], {}, True),
    ("{k1 = JSON '[1,23]', k2 = JSON '456'}", ["map(varchar, json)"],
     [[{"k1": "[1,23]", "k2": "456"}]], {}, True),
    ("JSON 'a' (invalid JSON)", ["json"], [["a"]], {}, True),
    ("X'5b 74 72 75 65 2c 31 5d'", ["varbinary"], [[b64(b"[true,1]")]], {}, True),
    ("{v1=123, v2=abc, v3=true}", ["row(v1 bigint, v2 varchar, v3 boolean)"],
     [[[123, "abd", True]]], {}, False),
    ("[ROW(1, '1b'), ROW(2, null), ROW(null, '3b')]", ["array(row(integer, varchar(2)))"],
     [[[[1, "1b"], [2, None], [None, "3b"]]]], {}, True),
    ("{k1 -> ROW(1, null), k2 -> ROW(2, 4), k3 -> ROW(null, 9)}",
     ["map(varchar(2), row(integer, integer))"],
     [[{"k1": [1, None], "k2": [2, 4], "k3": [None, 9]}]], {}, True),
    ("0.01613008990009257", ["double"], [[0.016130089900092574]], {}, True),
    ("0.01613008990009257", ["double"], [[0.01613009]], {}, False),
    ("3.4577", ["double"], [[3.457736]], {"kind": "prose"}, True),
    ("3.4577", ["double"], [[3.457736]], {}, False),
    ("23.000", ["double"], [[23.0]], {}, False),
    ("75", ["double"], [[75.0]], {}, False),
    ("1.0E10", ["double"], [[1e10]], {}, True),
    ("1.1", ["real"], [[1.100000023841858]], {}, False),
    ("1.234567890123456789012345678901234567890123456789E+79 without loss of precision",
     ["number"], [["12345678901234567890123456789012345678901234567890E+30"]], {}, True),
    ("{4.0=6, 5.0=33, 6.0=11}\n{4.0=37, 5.0=2, 3.0=11}\n{1.0=50}", ["map(double, bigint)"],
     [[{"1.0": 50}], [{"5.0": 33, "4.0": 6, "6.0": 11}], [{"3.0": 11, "4.0": 37, "5.0": 2}]],
     {}, True),
    ("{4.0=6, 5.0=33, 6.0=11}\n{1.0=50}", ["map(double, bigint)"],
     [[{"1.0": 50}], [{"5.0": 33, "4.0": 6, "6.0": 12}]], {}, False),
    ("(1, 12)\n(2, 13)", ["integer", "bigint"], [[2, 13], [1, 12]], {}, True),
    ("(1, 12)\n(2, 13)", ["integer", "bigint"], [[2, 12], [1, 13]], {}, False),
    ("[1.0, 1.2, 4.0]", ["array(decimal(2,1))"], [[["1.0", "1.2", "4.0"]]], {}, True),
    ("[1, 1.2, 4]", ["array(decimal(2,1))"], [[["1.0", "1.2", "4.0"]]], {}, False),
    ("[a, b,c]", ["array(varchar)"], [[["a", "b,c"]]], {}, True),
    ("[a, b,c]", ["array(varchar)"], [[["a", "b", "c"]]], {}, False),
    ("'nice        '", ["char(12)"], [["nice"]], {}, False),
    ("null", ["boolean"], [[None]], {}, True),
    ("13\n42", ["integer"], [[42], [13]], {"sql": "SELECT 13 UNION SELECT 42"}, True),
    ("13\n42", ["integer"], [[42], [13]], {"sql": "SELECT x FROM t ORDER BY 1"}, False),
]


@pytest.mark.parametrize("documented,types,rows,options,matches", WIRE)
def test_comparer(documented, types, rows, options, matches):
    names = ["n", "k"] if len(types) == 2 else None
    assert coverage.compare_wire(documented, types, rows, names=names, **options) is matches


def test_comparer_orders_ties_freely():
    rows = [["ALGERIA", 0], ["KENYA", 0], ["ARGENTINA", 1]]
    table = [["KENYA", "0"], ["ALGERIA", "0"], ["ARGENTINA", "1"]]
    sql = "SELECT name, regionkey FROM nation ORDER BY regionkey"
    assert coverage.compare_wire(table, ["varchar", "bigint"], rows, sql=sql,
                                 kind="psql_table", names=["name", "regionkey"])
    table = [["ARGENTINA", "1"], ["KENYA", "0"], ["ALGERIA", "0"]]
    assert not coverage.compare_wire(table, ["varchar", "bigint"], rows, sql=sql,
                                     kind="psql_table", names=["name", "regionkey"])
