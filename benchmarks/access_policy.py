"""The policy of the access-control overhead benchmark (issue 34): a Trino rules file of 200
table rules, of which the benchmark's user matches the last three — a row filter on
`orders`, a column mask on `customer`, then everything — so that every check walks the
other 197 first, and the filter and mask are planned into every query that reads those
tables (both keep the rows and values as they are, so the answers do not change).

    python benchmarks/access_policy.py /tmp/policy [--user $USER]
    ~/.cache/aichemy/venv/bin/python benchmarks/tpch/ab.py --data /tmp/tpch-sf1 --rounds 3 \\
        policy=BIN:AICHEMY_SERVER__ACCESS_CONTROL_CONFIG=/tmp/policy/rules.json base=BIN
"""

import argparse
import json
import os
import pathlib

ALL = ["SELECT", "INSERT", "DELETE", "UPDATE", "OWNERSHIP", "GRANT_SELECT"]
TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders",
          "lineitem"]


def policy(user):
    others = [
        {"user": f"analyst_{i:03d}", "schema": "tpch", "table": TABLES[i % len(TABLES)],
         "privileges": ["SELECT"], "filter": f"{i} > 0"}
        if i % 3 else
        {"group": f"team_{i:03d}", "schema": "tpch|sales_.*", "privileges": ["SELECT"],
         "columns": [{"name": "c_phone", "mask": "'***'"}]}
        for i in range(197)
    ]
    mine = [
        {"user": user, "schema": "tpch", "table": "orders", "privileges": ALL,
         "filter": "o_orderkey > 0"},
        {"user": user, "schema": "tpch", "table": "customer", "privileges": ALL,
         "columns": [{"name": "c_comment", "mask": "c_comment"}]},
        {"user": user, "privileges": ALL},
    ]
    return {"catalogs": [{"allow": "all"}], "schemas": [{"owner": True}],
            "tables": others + mine}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=pathlib.Path)
    parser.add_argument("--user", default=os.environ.get("USER", "aichemy"))
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    rules = policy(args.user)
    assert len(rules["tables"]) == 200
    (args.folder / "rules.json").write_text(json.dumps(rules, indent=1))
    print(args.folder / "rules.json")


if __name__ == "__main__":
    main()
