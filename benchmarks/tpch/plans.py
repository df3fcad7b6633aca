"""The `EXPLAIN` of the 22 TPC-H queries, to show that an engine change kept every plan:

    python benchmarks/tpch/plans.py --scale 1 --data DIR --out FILE BIN [BIN2]
        [--out2 FILE2] [--baseline FILE0] [--catalogs hive,iceberg] [--threads 2]
        [--queries 1,2,…]

Generates TPC-H Parquet with tpchgen-cli into `--data` (reused when already there; the
same `generate` as tpch.py), and for each binary starts a fresh warehouse of its own,
registers the files there as `hive` external tables with tpch.py's `register` (and, unless
`--catalogs hive`, copies them into `iceberg` tables with CREATE TABLE AS), then runs
`EXPLAIN <query>` for each query of `queries/` through `aichemy sql` (one process per
query, `--format json`) and writes the plans to one text file, query by query under
`==== <catalog> q<n> ====` headers.

Catalogs: both `hive` and `iceberg` by default (the iceberg plans follow the hive ones in
the file). Copying SF 1 into iceberg takes about 85 s per binary with a debug build on two
cores, the 44 EXPLAINs about 8 s, so a run with one binary takes about 1.5 min, with two
about 3 min; `--catalogs hive` skips the copies (then some 20 s per binary).

With a second binary BIN2 its plans go to `--out2` (default FILE with `-2` before its
suffix); with `--baseline FILE0` the plans of BIN are compared with a file an earlier run
wrote. Either way a unified diff is printed for every query whose plan differs, and the
exit status is 1 when any differs.

Normalised, as they change from run to run: the data folder and the warehouse folder
(`<data>`, `<warehouse>`, with or without `file://` and the leading slash) and UUIDs
(`<uuid>`). Nothing else: partition counts, byte ranges of file groups, join modes and
every expression stay as EXPLAIN prints them. The thread count is fixed (`--threads`,
default 2, as tpch.py) because plans depend on it; AICHEMY_* variables of the caller's
environment still apply, to both binaries alike.

Run it with the harness's python (scripts/python-env.sh; its venv holds tpchgen-cli):

    source scripts/python-env.sh
    "$AICHEMY_VENV/bin/python" benchmarks/tpch/plans.py --scale 1 --data /tmp/tpch-sf1 \\
        --out /tmp/plans-before.txt /tmp/aichemy-before
    # after the change, against that baseline (no need to keep the old binary):
    "$AICHEMY_VENV/bin/python" benchmarks/tpch/plans.py --scale 1 --data /tmp/tpch-sf1 \\
        --out /tmp/plans-after.txt --baseline /tmp/plans-before.txt target/debug/aichemy
"""

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tpch

HEADER = re.compile(r"^==== (\S+) q(\d+) ====$")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def normaliser(data, warehouse):
    """A function replacing what changes from run to run in a plan's text."""
    folders = []
    for folder, name in ((warehouse.resolve(), "<warehouse>"), (data.resolve(), "<data>")):
        text = str(folder).rstrip("/")
        # As a URL, as an absolute path and as DataFusion prints object store paths
        # (no leading slash).
        folders += [(f"file://{text}", name), (text, name), (text.lstrip("/"), name)]
    # Longest first, so that a folder inside another is replaced as itself.
    folders.sort(key=lambda pair: -len(pair[0]))

    def normalise(text):
        for folder, name in folders:
            text = text.replace(folder, name)
        return UUID.sub("<uuid>", text)
    return normalise


def explain(binary, warehouse, catalog, sql, env):
    """EXPLAIN's rows for one query, as text: `-- <plan_type>` lines, each before its plan;
    a failure as an `ERROR:` line."""
    done = subprocess.run(
        [binary, "--warehouse", str(warehouse), "sql", "--format", "json",
         "--catalog", catalog, "--schema", "tpch",
         "-e", f"EXPLAIN {sql.strip().rstrip(';')}"],
        capture_output=True, text=True, env=env)
    if done.returncode != 0:
        # The error itself, not log lines (their timestamps change from run to run).
        message = [line for line in done.stderr.splitlines() if line.strip()]
        failed = [line for line in message if "failed" in line.lower()]
        return "ERROR: " + (" | ".join((failed or message)[-3:]) or f"exit {done.returncode}")
    lines = []
    for line in done.stdout.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        kind = row.get("plan_type", "?")
        plan = row.get("plan", json.dumps(row, sort_keys=True))
        lines.append(f"-- {kind}")
        lines.extend(str(plan).rstrip("\n").splitlines())
    return "\n".join(lines)


def plans(binary, data, catalogs, threads, texts):
    """The normalised plans of `texts` on every catalog, {(catalog, q): text}, from a
    fresh warehouse of `binary`."""
    env = {**os.environ, "AICHEMY_LOG": "warn", "AICHEMY_EXECUTION__THREADS": str(threads),
           "AICHEMY_STORAGE__ALLOWED_LOCATIONS": f"file://{data}"}
    with tempfile.TemporaryDirectory(prefix="aichemy-plans-") as work:
        warehouse = Path(work) / "warehouse"
        started = time.perf_counter()
        # tpch.register runs tpch.BIN with os.environ.
        saved_bin, saved_env = tpch.BIN, dict(os.environ)
        tpch.BIN = binary
        os.environ.update(env)
        try:
            tpch.register(warehouse, data, "iceberg" in catalogs)
        finally:
            tpch.BIN = saved_bin
            os.environ.clear()
            os.environ.update(saved_env)
        print(f"{binary}: tables registered in {time.perf_counter() - started:.1f} s",
              file=sys.stderr, flush=True)
        normalise = normaliser(data, warehouse)
        started = time.perf_counter()
        result = {}
        for catalog in catalogs:
            for q, sql in texts.items():
                result[(catalog, q)] = normalise(explain(binary, warehouse, catalog, sql, env))
        print(f"{binary}: {len(result)} plans in {time.perf_counter() - started:.1f} s",
              file=sys.stderr, flush=True)
    return result


def write(path, binary, args, catalogs, result):
    lines = ["# EXPLAIN of the TPC-H queries, written by benchmarks/tpch/plans.py",
             f"# binary: {binary}",
             f"# scale {args.scale:g}, threads {args.threads}, catalogs {','.join(catalogs)}"]
    for (catalog, q), text in result.items():
        lines += [f"==== {catalog} q{q} ====", text]
    path.write_text("\n".join(lines) + "\n")
    print(f"plans of {binary} written to {path}", file=sys.stderr)


def read(path):
    """The plans of a file `write` wrote, {(catalog, q): text}."""
    result, key, lines = {}, None, []
    for line in path.read_text().splitlines():
        header = HEADER.match(line)
        if header:
            if key:
                result[key] = "\n".join(lines)
            key, lines = (header[1], int(header[2])), []
        elif key:
            lines.append(line)
        # Lines before the first header are the file's comments.
    if key:
        result[key] = "\n".join(lines)
    return result


def compare(old, new, old_name, new_name):
    """Prints a unified diff per query whose plan differs; the number that differ."""
    differing = 0
    for key in sorted(set(old) | set(new)):
        catalog, q = key
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        differing += 1
        print(f"==== {catalog} q{q} differs ====")
        for line in difflib.unified_diff(
                (a if a is not None else "<missing>").splitlines(),
                (b if b is not None else "<missing>").splitlines(),
                f"{old_name} ({catalog} q{q})", f"{new_name} ({catalog} q{q})", lineterm=""):
            print(line)
        print()
    total = len(set(old) | set(new))
    print(f"{total - differing} of {total} plans identical, {differing} differ")
    return differing


def main():
    parser = argparse.ArgumentParser(
        description="EXPLAIN of the 22 TPC-H queries through `aichemy sql`, and their diff")
    parser.add_argument("binaries", nargs="+", metavar="BIN",
                        help="aichemy binary; a second one to compare with the first")
    parser.add_argument("--scale", type=float, default=1)
    parser.add_argument("--data", type=Path, required=True,
                        help="folder of the generated files, kept and reused")
    parser.add_argument("--out", type=Path, required=True, help="plans of the first BIN")
    parser.add_argument("--out2", type=Path,
                        help="plans of the second BIN (default: --out with -2 before its suffix)")
    parser.add_argument("--baseline", type=Path,
                        help="compare the plans of BIN with this file of an earlier run")
    parser.add_argument("--catalogs", default="hive,iceberg",
                        help="comma-separated, of hive and iceberg (default both)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queries", help="comma-separated query numbers (default all 22)")
    args = parser.parse_args()
    if len(args.binaries) > 2 or (len(args.binaries) == 2 and args.baseline):
        parser.error("give one binary, or two, or one and --baseline")
    catalogs = [c for c in args.catalogs.split(",") if c]
    if not catalogs or set(catalogs) - {"hive", "iceberg"}:
        parser.error("--catalogs takes hive and/or iceberg")
    if "hive" not in catalogs:
        catalogs.insert(0, "hive")  # the iceberg copies are made from the hive tables
    binaries = [str(Path(b).resolve()) for b in args.binaries]
    for binary in binaries:
        if not os.access(binary, os.X_OK):
            sys.exit(f"not an executable: {binary}")
    data = args.data.resolve()
    # tpchgen-cli comes with the harness's virtualenv, next to its python.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    started = time.perf_counter()
    tpch.generate(args.scale, data)
    texts = tpch.queries()
    if args.queries:
        texts = {q: texts[q] for q in map(int, args.queries.split(","))}
    results = []
    for binary in binaries:
        results.append(plans(binary, data, catalogs, args.threads, texts))
    write(args.out, binaries[0], args, catalogs, results[0])
    if len(binaries) == 2:
        out2 = args.out2 or args.out.with_name(f"{args.out.stem}-2{args.out.suffix}")
        write(out2, binaries[1], args, catalogs, results[1])
        differing = compare(results[0], results[1], binaries[0], binaries[1])
    elif args.baseline:
        baseline = {key: text for key, text in read(args.baseline).items()
                    if key[1] in texts}
        differing = compare(baseline, results[0], str(args.baseline), binaries[0])
    else:
        differing = 0
    print(f"done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
