"""Vector search on a Lance table: AIchemy's IVF_PQ index and its SQL next to lancedb on the
same files, DuckDB's brute force and numpy's exact answers:

    ~/.cache/aichemy/venv/bin/python benchmarks/vector_search.py --bin …/release/aichemy \\
        [--rows 1000000] [--dim 128] [--queries 200] [--save] [--check]

Generates `--rows` random float32 vectors (numpy, seeded) with ids 0..rows-1 and a
`category` of 100 values (`category = 7` keeps 1 %), written with pylance as the Lance
dataset `vectors.lance` (id bigint, category int, embedding fixed_size_list<float32, dim>)
twice: copy A, which `aichemy serve` (a fresh warehouse, free ports) registers as
`lance.bench.vectors` and indexes with `ALTER TABLE … EXECUTE create_vector_index`, and
copy B, which lancedb indexes with its own `create_index` (the same IVF_PQ parameters).
The first 10,000 rows are a third dataset, `lance.bench.vectors_10k`, without an index:
AIchemy's exact kNN SQL on it must return numpy's top 10 (`--check` stops after that).

Every method answers the same `--queries` random vectors after a few warm-up ones (not
measured), each timed from request to last row; it reports p50 and p99 latency and
recall@10 against numpy's exact top 10 (L2, float64 re-ranking; restricted to category 7
for the filtered runs):

  aichemy exact         ORDER BY euclidean_distance(embedding, ARRAY[…]) LIMIT 10, no index
  aichemy sql           the same statement once the index exists
  aichemy vector_search TABLE(vector_search(…, nprobes => n, refine_factor => r)), a sweep
  lancedb A / B         lancedb's search with the same nprobes and refine_factor on copy A
                        (the index AIchemy built) and copy B (lancedb's own index)
  duckdb                array_distance brute force over a FLOAT[dim] table (exact), and
                        array_cosine_distance once for reference (against cosine truth)

The sweep (`--nprobes`, `--refine`) reports every point and names the cheapest (lowest p50)
reaching recall 0.95; the filtered runs (`WHERE category = 7` in SQL, vector_search's
`filter => 'category = 7'`, lancedb's prefilter) use each method's chosen point. AIchemy
statements that fail (not implemented, an error, past `--query-timeout`) are printed and
the run goes on; each method stops measuring after `--budget` seconds. `--save` writes
the table to benchmarks/results/vector-search-<git short sha>-<date>.txt.
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import lance
import lancedb
import numpy as np
import pyarrow as pa
import trino
from lancedb.index import IvfPq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "clients"))

import lakehouse  # noqa: E402

# The index both engines build; change it here.
INDEX_TYPE = "IVF_PQ"
METRIC = "l2"
PARTITIONS = 256
SUB_VECTORS = 16
# The search sweep (overridable with --nprobes/--refine) and what counts as good enough.
NPROBES = (10, 20, 40)
REFINE = (1, 5, 10)
TARGET_RECALL = 0.95
K = 10
CATEGORIES = 100
CATEGORY = 7
WARMUPS = 3
BUDGET = 300  # seconds per measured method (--budget); the rest of its queries are skipped
LATENT_DIM = 16  # the intrinsic dimension of --data latent
CHECK_ROWS = 10_000
SCHEMA = "lance.bench"
TABLE = f"{SCHEMA}.vectors"
SMALL_TABLE = f"{SCHEMA}.vectors_10k"


# --- AIchemy's statements: each built in one place so its form is easy to change. --------

def vector_literal(vector):
    """A query vector as SQL: each float32 written in its shortest exact form, so the
    server computes with the very vector numpy does."""
    values = ", ".join(
        f"REAL '{np.format_float_positional(x, unique=True, trim='0')}'" for x in vector)
    return f"ARRAY[{values}]"


def create_index_sql():
    return (f"ALTER TABLE {TABLE} EXECUTE create_vector_index(column => 'embedding', "
            f"type => '{INDEX_TYPE}', metric => '{METRIC}', partitions => {PARTITIONS}, "
            f"sub_vectors => {SUB_VECTORS})")


def knn_sql(table, vector, category=None):
    where = f" WHERE category = {category}" if category is not None else ""
    return (f"SELECT id FROM {table}{where} "
            f"ORDER BY euclidean_distance(embedding, {vector_literal(vector)}) LIMIT {K}")


def vector_search_sql(vector, nprobes, refine, category=None):
    # The filter goes inside, as the function's `filter` (the k nearest rows it keeps); a
    # WHERE around the call would filter the k rows found.
    where = f", filter => 'category = {category}'" if category is not None else ""
    return (f"SELECT id FROM TABLE(vector_search(table => '{TABLE}', column => 'embedding', "
            f"query => {vector_literal(vector)}, k => {K}, metric => '{METRIC}'{where}, "
            f"nprobes => {nprobes}, refine_factor => {refine}))")


# --- Data and exact answers. -------------------------------------------------------------

def generate(kind, rows, dim, queries, seed):
    """Seeded random vectors, queries and categories. `latent` (the default) is shaped like
    real embeddings, whose intrinsic dimension is low: a standard normal point in
    LATENT_DIM dimensions through a fixed random LATENT_DIM x dim matrix, plus N(0, 0.1²)
    noise in every dimension; queries come from the same distribution. `uniform` is
    U[0, 1) in every dimension: no structure at all, the worst case for IVF and PQ (their
    recall stays low at any small nprobes)."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        def draw(n):
            return rng.random((n, dim), dtype=np.float32)
    else:
        projection = rng.standard_normal((LATENT_DIM, dim), dtype=np.float32)

        def draw(n):
            out = np.empty((n, dim), dtype=np.float32)
            for start in range(0, n, 65536):  # in chunks: no float64 or noise copy of it all
                m = min(65536, n - start)
                out[start:start + m] = rng.standard_normal((m, LATENT_DIM), dtype=np.float32) \
                    @ projection + 0.1 * rng.standard_normal((m, dim), dtype=np.float32)
            return out
    vectors = draw(rows)
    categories = rng.integers(0, CATEGORIES, rows, dtype=np.int32)
    return vectors, categories, draw(queries), draw(WARMUPS)


DISTRIBUTIONS = {
    "latent": "a {latent}-dim standard normal latent through a random {latent} x dim "
              "matrix + N(0, 0.1^2) noise",
    "uniform": "uniform [0,1) in every dimension",
}


def arrow_table(vectors, categories):
    rows, dim = vectors.shape
    return pa.table({
        "id": pa.array(np.arange(rows, dtype=np.int64)),
        "category": pa.array(categories),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
    })


def exact_top_k(vectors, queries, metric="l2", ids=None, chunk=65536):
    """The k nearest rows of every query: candidates from float32 matrix products over
    chunks of rows (4k per query), then re-ranked in float64 with the metric itself.
    Answers ids (row numbers, or `ids[row]`), shape (queries, k)."""
    wanted = min(4 * K, len(vectors))
    q32 = np.asarray(queries, dtype=np.float32)
    best_score = np.full((len(q32), 0), np.inf, dtype=np.float32)
    best_row = np.zeros((len(q32), 0), dtype=np.int64)
    for start in range(0, len(vectors), chunk):
        part = vectors[start:start + chunk]
        dots = q32 @ part.T  # (queries, rows in the chunk)
        if metric == "l2":  # |x|² - 2 x·q ranks as |x - q|² does
            score = np.einsum("ij,ij->i", part, part)[None, :] - 2 * dots
        else:  # cosine: -x·q / |x| ranks as 1 - cos does
            score = -dots / np.maximum(np.linalg.norm(part, axis=1), 1e-30)[None, :]
        rows = np.broadcast_to(np.arange(start, start + len(part)), score.shape)
        score = np.concatenate([best_score, score], axis=1)
        rows = np.concatenate([best_row, rows], axis=1)
        keep = np.argpartition(score, min(wanted, score.shape[1] - 1), axis=1)[:, :wanted]
        best_score = np.take_along_axis(score, keep, axis=1)
        best_row = np.take_along_axis(rows, keep, axis=1)
    candidates = vectors[best_row].astype(np.float64)  # (queries, wanted, dim)
    q64 = np.asarray(queries, dtype=np.float64)[:, None, :]
    if metric == "l2":
        exact = np.sqrt(((candidates - q64) ** 2).sum(axis=2))
    else:
        exact = 1 - (candidates * q64).sum(axis=2) / (
            np.linalg.norm(candidates, axis=2) * np.linalg.norm(q64, axis=2))
    order = np.argsort(exact, axis=1, kind="stable")[:, :K]
    top = np.take_along_axis(best_row, order, axis=1)
    return top if ids is None else ids[top]


# --- Measuring. --------------------------------------------------------------------------

class Results:
    def __init__(self):
        self.builds = []  # (name, seconds or None, note)
        self.rows = []  # (method, params, recall, p50, p99, n, note)
        self.chosen = {}  # method: ((nprobes, refine), whether it reached TARGET_RECALL)

    def build(self, name, seconds, note=""):
        self.builds.append((name, seconds, note))
        shown = f"{seconds:.1f} s" if seconds is not None else "FAILED"
        print(f"build {name}: {shown} {note}".rstrip(), flush=True)

    def failed(self, method, params, error):
        note = f"FAILED: {first_line(error)}"
        self.rows.append((method, params, None, None, None, 0, note))
        print(f"{method} {params}: {note}", flush=True)

    def measured(self, method, params, recall, latencies, note=""):
        ms = np.asarray(latencies) * 1000
        p50, p99 = np.percentile(ms, 50), np.percentile(ms, 99)
        self.rows.append((method, params, recall, p50, p99, len(ms), note))
        print(f"{method} {params}: recall@{K} {recall:.3f}  p50 {p50:.1f} ms  "
              f"p99 {p99:.1f} ms  over {len(ms)} {note}".rstrip(), flush=True)
        return recall, p50


def first_line(error):
    text = str(error).strip() or type(error).__name__
    if isinstance(error, trino.exceptions.TrinoQueryError):
        text = f"{error.error_name}: {error.message}"
    line = text.splitlines()[0] if text else text
    return line[:200] + ("…" if len(line) > 200 else "")


def timed(search, queries, warmups):
    """Runs `search(vector) -> ids` on the warm-up vectors, then on the queries until
    BUDGET seconds have passed since the start (at least one query); answers the
    latencies and the ids of the queries run."""
    deadline = time.perf_counter() + BUDGET
    for vector in warmups:
        if time.perf_counter() > deadline:
            break
        search(vector)
    latencies, answers = [], []
    for vector in queries:
        if answers and time.perf_counter() > deadline:
            break
        start = time.perf_counter()
        answers.append(search(vector))
        latencies.append(time.perf_counter() - start)
    return latencies, answers


def measure(results, method, params, search, queries, warmups, truth, note=""):
    """Times `search` (see timed) and records recall@K against `truth` (ids per query).
    A failure is recorded, not raised. Answers (recall, p50 ms) or None."""
    try:
        latencies, answers = timed(search, queries, warmups)
        hits = sum(len(set(ids[:K]) & set(expected.tolist()))
                   for ids, expected in zip(answers, truth))
        if len(answers) < len(queries):
            note = f"{note} (budget: {len(answers)} of {len(queries)} queries)".strip()
        return results.measured(method, params, hits / (K * len(answers)), latencies, note)
    except Exception as error:  # noqa: BLE001 - every failure is reported, the run goes on
        results.failed(method, params, error)
        return None


def sweep(results, method, make_search, queries, warmups, truth, nprobes, refine):
    """Every (nprobes, refine) point, until one fails; answers the cheapest reaching
    TARGET_RECALL (or the best recall when none does), as (nprobes, refine), or None when
    the first point failed."""
    points = {}
    for n, r in [(n, r) for n in nprobes for r in refine]:
        got = measure(results, method, f"nprobes={n} refine={r}", make_search(n, r),
                      queries, warmups, truth)
        if not got:
            print(f"{method}: the sweep stops at its first failure")
            break
        points[n, r] = got
    if not points:
        return None
    good = [p for p, (recall, _) in points.items() if recall >= TARGET_RECALL]
    if good:
        chosen = min(good, key=lambda p: points[p][1])
        print(f"{method}: cheapest point reaching recall {TARGET_RECALL}: "
              f"nprobes={chosen[0]} refine={chosen[1]} (p50 {points[chosen][1]:.1f} ms)")
    else:
        chosen = max(points, key=lambda p: points[p][0])
        print(f"{method}: no point reaches recall {TARGET_RECALL}; the best is "
              f"nprobes={chosen[0]} refine={chosen[1]} (recall {points[chosen][0]:.3f})")
    results.chosen[method] = (chosen, chosen in good)
    return chosen


# --- The engines. ------------------------------------------------------------------------

class Aichemy:
    """`aichemy serve` on a fresh warehouse; searches run on one kept connection whose
    statements fail after `timeout` seconds (the session's query_max_run_time), the
    statements that change tables on another without a limit."""

    def __init__(self, binary, warehouse, allowed, timeout):
        lakehouse.BIN = str(binary)
        self.server = lakehouse.Server(warehouse, env={
            "AICHEMY_STORAGE__ALLOWED_LOCATIONS": f"file://{allowed}", "AICHEMY_LOG": "warn"})
        self.admin = self.connect().cursor()
        self.cursor = self.connect(query_max_run_time=f"{timeout}s").cursor()

    def connect(self, **session):
        return trino.dbapi.connect(host="127.0.0.1", port=self.server.http_port, user="bench",
                                   session_properties=session)

    def run(self, sql):
        self.admin.execute(sql)
        return self.admin.fetchall()

    def ids(self, sql, limited=True):
        cursor = self.cursor if limited else self.admin
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]

    def stop(self):
        try:
            self.server.stop()
        except Exception as error:  # noqa: BLE001
            print(f"aichemy serve did not stop cleanly: {first_line(error)}")


def lancedb_search(table, n=None, r=None, category=None):
    def search(vector):
        query = table.search(vector, vector_column_name="embedding").distance_type(METRIC)
        if n is not None:
            query = query.nprobes(n).refine_factor(r)
        if category is not None:
            query = query.where(f"category = {category}", prefilter=True)
        # With _distance named, lance does not warn that it will stop adding it.
        return query.limit(K).select(["id", "_distance"]).to_arrow().column("id").to_pylist()
    return search


def has_vector_index(path):
    return any("embedding" in index.field_names
               for index in lance.dataset(str(path)).describe_indices())


# --- The run. ----------------------------------------------------------------------------

def machine():
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}"


def git_sha():
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                          capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def report(results, args, header):
    lines = list(header)
    lines.append("")
    lines.append("index builds")
    for name, seconds, note in results.builds:
        shown = f"{seconds:9.1f} s" if seconds is not None else "   FAILED"
        lines.append(f"  {name:<44}{shown}  {note}".rstrip())
    lines.append("")
    lines.append(f"{'method':<32}{'parameters':<32}{'recall@' + str(K):>10}{'p50 ms':>10}"
                 f"{'p99 ms':>10}{'n':>6}")
    for method, params, recall, p50, p99, n, note in results.rows:
        if recall is None:
            lines.append(f"{method:<32}{params:<32}  {note}")
        else:
            lines.append(f"{method:<32}{params:<32}{recall:>10.3f}{p50:>10.1f}{p99:>10.1f}"
                         f"{n:>6}  {note}".rstrip())
    if results.chosen:
        lines.append("")
        for method, ((n, r), reached) in results.chosen.items():
            verdict = f"cheapest reaching {TARGET_RECALL}" if reached else \
                f"none reaches {TARGET_RECALL}, best recall"
            lines.append(f"{method}: {verdict}: nprobes={n} refine={r}")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.save:
        folder = HERE / "results"
        folder.mkdir(exist_ok=True)
        path = folder / f"vector-search-{git_sha()}-{datetime.date.today():%Y%m%d}.txt"
        path.write_text(text)
        print(f"written to {path}")


def check_phase(results, server, vectors, queries, warmups):
    """AIchemy's exact kNN SQL on the first 10,000 rows (no index) against numpy's top 10:
    answers whether every query returned exactly numpy's ids in numpy's order. Without
    the query timeout: on 10,000 rows a slow answer is still an answer to check."""
    small = vectors[:CHECK_ROWS]
    truth = exact_top_k(small, queries)
    method = f"check: aichemy exact {len(small)} rows"
    try:
        latencies, answers = timed(
            lambda v: server.ids(knn_sql(SMALL_TABLE, v), limited=False), queries, warmups)
    except Exception as error:  # noqa: BLE001
        results.failed(method, "", error)
        return False
    mismatches = [(i, ids, truth[i].tolist()) for i, ids in enumerate(answers)
                  if ids != truth[i].tolist()]
    hits = sum(len(set(ids) & set(truth[i].tolist())) for i, ids in enumerate(answers))
    checked = f"{len(answers)} of {len(queries)} queries" if len(answers) < len(queries) \
        else "every query"
    note = f"exact: numpy's top {K} in order for {checked}" if not mismatches else \
        f"MISMATCH on {len(mismatches)} of {len(answers)} queries, first: query " \
        f"{mismatches[0][0]} got {mismatches[0][1]} want {mismatches[0][2]}"
    results.measured(method, "", hits / (K * len(answers)), latencies, note)
    return not mismatches


def main():
    global BUDGET
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.environ.get("AICHEMY_BIN"),
                        help="the aichemy binary (default $AICHEMY_BIN); none skips AIchemy")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--nprobes", default=",".join(map(str, NPROBES)))
    parser.add_argument("--refine", default=",".join(map(str, REFINE)))
    parser.add_argument("--data", choices=sorted(DISTRIBUTIONS), default="latent",
                        help="the vectors' distribution (see generate())")
    parser.add_argument("--budget", type=float, default=BUDGET,
                        help="seconds per measured method, warm-ups included: a method "
                             "stops after the query that passes it (default %(default)s)")
    parser.add_argument("--query-timeout", type=int, default=120,
                        help="AIchemy's query_max_run_time for each search, in seconds")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tmp", help="folder for the datasets and the warehouse")
    parser.add_argument("--check", action="store_true",
                        help="only the 10,000-row exact check through AIchemy's SQL")
    parser.add_argument("--save", action="store_true",
                        help="write the table to benchmarks/results/")
    args = parser.parse_args()
    BUDGET = args.budget
    nprobes = [int(x) for x in args.nprobes.split(",")]
    refine = [int(x) for x in args.refine.split(",")]

    header = [
        f"# Vector search (pylance {lance.__version__}, lancedb {lancedb.__version__}, "
        f"duckdb {duckdb.__version__}), git {git_sha()}, "
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}",
        f"# machine: {machine()}",
        f"# aichemy: {args.bin or '(none: skipped)'}",
        f"# {' '.join([Path(sys.argv[0]).name] + sys.argv[1:])}",
        f"# {args.rows} random float32 vectors of {args.dim} dims, "
        f"{DISTRIBUTIONS[args.data].format(latent=LATENT_DIM)} (seed {args.seed}); "
        f"{CATEGORIES} categories (category = {CATEGORY} keeps ~1 %); "
        f"{args.queries} queries after {WARMUPS} warm-ups, k = {K}, at most {args.budget:g} s "
        f"per method, AIchemy queries time out after {args.query_timeout} s",
        f"# index: {INDEX_TYPE} metric {METRIC}, {PARTITIONS} partitions, "
        f"{SUB_VECTORS} sub-vectors",
    ]
    print("\n".join(header), flush=True)
    results = Results()

    vectors, categories, queries, warmups = generate(
        args.data, args.rows, args.dim, args.queries, args.seed)

    with tempfile.TemporaryDirectory(prefix="aichemy-vectors-", dir=args.tmp) as tmp:
        tmp = Path(tmp)
        copy_a, copy_b, copy_c = tmp / "a", tmp / "b", tmp / "c"
        table = arrow_table(vectors, categories)
        start = time.perf_counter()
        for folder in (copy_a, copy_b):
            lance.write_dataset(table, str(folder / "vectors.lance"))
        if not args.check:
            print(f"wrote copies A and B in {time.perf_counter() - start:.1f} s", flush=True)
        lance.write_dataset(table.slice(0, CHECK_ROWS), str(copy_c / "vectors_10k.lance"))

        server = None
        if args.bin:
            try:
                server = Aichemy(Path(args.bin).resolve(), tmp / "warehouse", tmp,
                                 args.query_timeout)
                server.run(f"CREATE SCHEMA {SCHEMA}")
                for name, path in (("vectors", copy_a / "vectors.lance"),
                                   ("vectors_10k", copy_c / "vectors_10k.lance")):
                    server.run(f"CREATE TABLE {SCHEMA}.{name} (id BIGINT, category INTEGER, "
                               f"embedding ARRAY(REAL)) WITH (location = 'file://{path}')")
            except Exception as error:  # noqa: BLE001
                results.failed("aichemy serve and registration", "", error)
                if server:
                    server.stop()
                server = None
        try:
            ok = check_phase(results, server, vectors, queries, warmups) if server else None
            if args.check:
                report(results, args, header)
                sys.exit(0 if ok else 1)
            run_all(args, results, server, vectors, categories, queries, warmups,
                    copy_a, copy_b, nprobes, refine)
        finally:
            if server:
                server.stop()
    report(results, args, header)


def run_all(args, results, server, vectors, categories, queries, warmups, copy_a, copy_b,
            nprobes, refine):
    start = time.perf_counter()
    truth = exact_top_k(vectors, queries)
    in_category = np.flatnonzero(categories == CATEGORY)
    truth_filtered = exact_top_k(vectors[in_category], queries, ids=in_category)
    truth_cosine = exact_top_k(vectors, queries, metric="cosine")
    print(f"numpy ground truth (l2, l2 in category {CATEGORY}, cosine) in "
          f"{time.perf_counter() - start:.1f} s", flush=True)
    filtered = f"category={CATEGORY}"

    # AIchemy: brute force first, then its index and the searches that may use it.
    if server:
        measure(results, "aichemy exact (no index)", "", lambda v: server.ids(knn_sql(TABLE, v)),
                queries, warmups, truth)
        measure(results, "aichemy exact (no index)", filtered,
                lambda v: server.ids(knn_sql(TABLE, v, CATEGORY)), queries, warmups,
                truth_filtered)
        start = time.perf_counter()
        try:
            server.run(create_index_sql())
            results.build("aichemy create_vector_index (copy A)", time.perf_counter() - start)
            indexed = True
        except Exception as error:  # noqa: BLE001
            results.build("aichemy create_vector_index (copy A)", None, first_line(error))
            indexed = False
        if indexed:
            measure(results, "aichemy sql (index)", "",
                    lambda v: server.ids(knn_sql(TABLE, v)), queries, warmups, truth)
            measure(results, "aichemy sql (index)", filtered,
                    lambda v: server.ids(knn_sql(TABLE, v, CATEGORY)),
                    queries, warmups, truth_filtered)
        chosen = sweep(results, "aichemy vector_search",
                       lambda n, r: lambda v: server.ids(vector_search_sql(v, n, r)),
                       queries, warmups, truth, nprobes, refine)
        if chosen:
            n, r = chosen
            measure(results, "aichemy vector_search", f"nprobes={n} refine={r} {filtered}",
                    lambda v: server.ids(vector_search_sql(v, n, r, CATEGORY)),
                    queries, warmups, truth_filtered)

    # lancedb: its own index on copy B, and (when AIchemy built one) copy A's.
    table_b = lancedb.connect(str(copy_b)).open_table("vectors")
    start = time.perf_counter()
    try:
        table_b.create_index("embedding", config=IvfPq(
            distance_type=METRIC, num_partitions=PARTITIONS, num_sub_vectors=SUB_VECTORS))
        results.build("lancedb create_index (copy B)", time.perf_counter() - start)
    except Exception as error:  # noqa: BLE001
        results.build("lancedb create_index (copy B)", None, first_line(error))
    for method, folder in (("lancedb A (AIchemy's index)", copy_a),
                           ("lancedb B (its own index)", copy_b)):
        if not has_vector_index(folder / "vectors.lance"):  # a flat search is no comparison
            print(f"{method}: no vector index on the copy, skipped")
            continue
        table = lancedb.connect(str(folder)).open_table("vectors")
        chosen = sweep(results, method, lambda n, r: lancedb_search(table, n, r),
                       queries, warmups, truth, nprobes, refine)
        if chosen:
            n, r = chosen
            measure(results, method, f"nprobes={n} refine={r} {filtered}",
                    lancedb_search(table, n, r, CATEGORY), queries, warmups, truth_filtered,
                    note="prefilter")

    # DuckDB: exact by construction.
    con = duckdb.connect()
    start = time.perf_counter()
    source = lance.dataset(str(copy_b / "vectors.lance")).to_table(
        columns=["id", "category", "embedding"])
    con.register("source", source)
    con.execute(f"CREATE TABLE v AS SELECT id, category, "
                f"embedding::FLOAT[{args.dim}] AS embedding FROM source")
    con.unregister("source")
    del source
    results.build("duckdb load FLOAT[] table (no index)", time.perf_counter() - start)

    def duck(function, where=""):
        sql = (f"SELECT id FROM v{where} ORDER BY {function}(embedding, ?::FLOAT[{args.dim}]) "
               f"LIMIT {K}")
        return lambda v: [row[0] for row in con.execute(sql, [v.tolist()]).fetchall()]

    measure(results, "duckdb array_distance", "", duck("array_distance"),
            queries, warmups, truth)
    measure(results, "duckdb array_distance", filtered,
            duck("array_distance", f" WHERE category = {CATEGORY}"),
            queries, warmups, truth_filtered)
    measure(results, "duckdb array_cosine_distance", "", duck("array_cosine_distance"),
            queries, warmups, truth_cosine, note="recall vs cosine truth")


if __name__ == "__main__":
    main()
