"""Vector search (issue 36) through the python `trino` client: Trino's vector functions on
every catalog, Lance vector and text indexes made, listed, refreshed and dropped with
`ALTER TABLE … EXECUTE`, kNN as `ORDER BY distance LIMIT k` planned as an index search
(EXPLAIN says which), `TABLE(vector_search(…))` with its knobs and hybrid search, `embed()`
against a local OpenAI-compatible endpoint, `POST /v1/search`, the npm trino-client, the
access policy's row filters and masks on results; lancedb and pylance read what AIchemy
indexed."""

import base64
import hashlib
import json
import math
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import lance
import lancedb
import numpy as np
import pytest
import trino

from lakehouse import Server, node_sql

DIM = 16
ROWS = 3000


def run(port, sql, user="root"):
    cursor = trino.dbapi.connect(host="127.0.0.1", port=port, user=user,
                                 http_scheme="http").cursor()
    cursor.execute(sql)
    return cursor.fetchall()


def failure(port, sql, user="root"):
    with pytest.raises(trino.exceptions.TrinoQueryError) as failed:
        run(port, sql, user)
    return failed.value


def explain(port, sql):
    return "\n".join(row[1] for row in run(port, "EXPLAIN " + sql))


def literal(vector):
    return "ARRAY[" + ", ".join(f"REAL '{float(x)!r}'" for x in vector) + "]"


def vectors_sql(start, count):
    """Rows whose vectors lie near one of eight directions (like embeddings of eight
    topics), from SQL alone: `cat` names the topic, `body` holds its words."""
    coordinates = ", ".join(
        f"CAST(sin(x * {d + 1} * 0.37) * 0.3 + IF(x % 8 = {d % 8}, 1.0, 0.0) AS REAL)"
        for d in range(DIM)
    )
    return (
        f"SELECT x AS id, 'topic' || CAST(x % 8 AS varchar) AS cat, "
        f"CASE WHEN x % 8 = 3 THEN 'rotate the signing keys every month, document ' "
        f"ELSE 'billing and invoices, document ' END || CAST(x AS varchar) AS body, "
        f"ARRAY[{coordinates}] AS embedding "
        f"FROM UNNEST(sequence({start}, {start + count - 1})) AS t(x)"
    )


class Embeddings(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/embeddings: each text's vector from its SHA-256, so a text
    always gets the same one; counts requests and remembers the last Authorization."""

    requests = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Embeddings.requests.append((self.headers.get("Authorization"), body))
        if any(text == "fail" for text in body["input"]):
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"model overloaded")
            return
        data = [{"object": "embedding", "index": i, "embedding": embedding(text)}
                for i, text in enumerate(body["input"])]
        answer = json.dumps({"object": "list", "data": data, "model": body["model"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def embedding(text):
    digest = hashlib.sha256(text.encode()).digest()
    return [(b - 128) / 128 for b in digest[:DIM]]


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vectors")
    endpoint = ThreadingHTTPServer(("127.0.0.1", 0), Embeddings)
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    rules = {
        "catalogs": [{"allow": "all"}],
        "schemas": [{"user": "root", "owner": True}, {"user": "ann", "owner": False}],
        "tables": [
            {"user": "root", "privileges": ["SELECT", "INSERT", "DELETE", "UPDATE",
                                             "OWNERSHIP"]},
            # Ann reads the documents but not topic 0, and their words masked.
            {"user": "ann", "table": "docs", "privileges": ["SELECT"],
             "filter": "cat <> 'topic0'",
             "columns": [{"name": "body", "mask": "'(hidden)'"}]},
        ],
    }
    (folder / "rules.json").write_text(json.dumps(rules))
    env = {
        "AICHEMY_EMBEDDINGS__DEFAULT__URL": f"http://127.0.0.1:{endpoint.server_port}/v1",
        "AICHEMY_EMBEDDINGS__DEFAULT__MODEL": "hash-16",
        "AICHEMY_EMBEDDINGS__DEFAULT__API_KEY": "${ENV:TEST_EMBEDDING_KEY}",
        "AICHEMY_EMBEDDINGS__DEFAULT__BATCH_SIZE": "4",
        "TEST_EMBEDDING_KEY": "sk-test-1234",
    }
    server = Server(folder / "warehouse", "--access-control-config",
                    str(folder / "rules.json"), env=env)
    port = server.http_port
    run(port, "CREATE SCHEMA lance.rag")
    run(port, "CREATE TABLE lance.rag.docs (id BIGINT, cat VARCHAR, body VARCHAR, "
              "embedding ARRAY(REAL))")
    run(port, "INSERT INTO lance.rag.docs " + vectors_sql(0, ROWS))
    yield server, folder / "warehouse"
    server.stop()
    endpoint.shutdown()


def stored(warehouse, table="docs"):
    """The table's rows as pylance reads them: ids, categories and vectors."""
    rows = lance.dataset(str(warehouse / "lance" / "rag" / table)).to_table().to_pydict()
    return (np.array(rows["id"]), np.array(rows["cat"]),
            np.array(rows["embedding"], dtype=np.float64))


def exact(ids, vectors, query, k, metric="cosine", keep=None):
    query = np.asarray(query, dtype=np.float64)
    if metric == "cosine":
        distance = 1 - vectors @ query / (np.linalg.norm(vectors, axis=1)
                                          * np.linalg.norm(query))
    else:
        distance = np.linalg.norm(vectors - query, axis=1)
    if keep is not None:
        distance = np.where(keep, distance, np.inf)
    order = np.argsort(distance, kind="stable")[:k]
    return [int(ids[i]) for i in order if np.isfinite(distance[i])]


def test_vector_functions_are_trinos_on_every_catalog(lakehouse):
    server, _ = lakehouse
    port = server.http_port
    [[similarity, distance, dot, euclid, sparse]] = run(port, """
        SELECT cosine_similarity(ARRAY[1.0E0, 2.0E0], ARRAY[3.0E0, 4.0E0]),
               cosine_distance(ARRAY[1.0E0, 2.0E0], ARRAY[3.0E0, 4.0E0]),
               dot_product(ARRAY[1.0E0, 2.0E0], ARRAY[3.0E0, 4.0E0]),
               euclidean_distance(ARRAY[1.0E0, 2.0E0], ARRAY[3.0E0, 4.0E0]),
               cosine_similarity(MAP(ARRAY['a', 'b'], ARRAY[1.0E0, 2.0E0]),
                                 MAP(ARRAY['b', 'c'], ARRAY[3.0E0, 4.0E0]))""")
    assert similarity == pytest.approx(11 / (math.sqrt(5) * 5))
    assert distance == pytest.approx(1 - 11 / (math.sqrt(5) * 5))
    assert dot == 11 and euclid == pytest.approx(math.sqrt(8))
    assert sparse == pytest.approx(6 / (math.sqrt(5) * 5))
    error = failure(port, "SELECT cosine_similarity(ARRAY[1.0E0], ARRAY[1.0E0, 2.0E0])")
    assert error.error_name == "INVALID_FUNCTION_ARGUMENT", error
    # Brute-force kNN on iceberg, delta and hive tables gives the exact neighbours.
    _, warehouse = lakehouse
    ids, _, vectors = stored(warehouse)
    query = vectors[17] + 0.05
    want = exact(ids, vectors, query, 5)
    for catalog in ["iceberg", "delta", "hive"]:
        run(port, f"CREATE SCHEMA IF NOT EXISTS {catalog}.rag")
        run(port, f"CREATE TABLE {catalog}.rag.docs AS SELECT * FROM lance.rag.docs")
        got = run(port, f"SELECT id FROM {catalog}.rag.docs "
                        f"ORDER BY cosine_distance(embedding, {literal(query)}) LIMIT 5")
        assert [r[0] for r in got] == want, catalog


def test_knn_is_planned_on_the_index_for_its_metric(lakehouse):
    server, warehouse = lakehouse
    port = server.http_port
    ids, cats, vectors = stored(warehouse)
    query = vectors[123] * 0.9 + 0.02
    knn = f"SELECT id FROM lance.rag.docs ORDER BY cosine_distance(embedding, {literal(query)}) LIMIT 10"
    # No index yet: every vector is read, and the answer is exact.
    assert "LanceSearch: nearest 10 to embedding by cosine: exact" in explain(port, knn)
    assert [r[0] for r in run(port, knn)] == exact(ids, vectors, query, 10)

    error = failure(port, "ALTER TABLE lance.rag.docs EXECUTE create_vector_index("
                          "column => 'embedding', type => 'IVF_XX')")
    assert error.error_name == "INVALID_PROCEDURE_ARGUMENT", error
    run(port, "ALTER TABLE lance.rag.docs EXECUTE create_vector_index(column => 'embedding', "
              "type => 'IVF_PQ', metric => 'cosine', partitions => 8, sub_vectors => 4)")
    [index] = run(port, 'SELECT index_name, column_name, index_type, metric, indexed_rows, '
                        'unindexed_rows, up_to_date FROM lance.rag."docs$indexes"')
    assert index == ["embedding_idx", "embedding", "IVF_PQ", "cosine", ROWS, 0, True]
    error = failure(port, "ALTER TABLE lance.rag.docs EXECUTE create_vector_index("
                          "column => 'embedding', metric => 'cosine')")
    assert "already exists" in error.message
    plan = explain(port, knn)
    assert "index embedding_idx (IVF_PQ), nprobes=20, refine_factor=10" in plan
    assert "ANNIvfPartition" in plan

    # With refinement the index finds the exact neighbours here.
    searched = run(port, f"""SELECT id, _distance FROM TABLE(vector_search(
        table => 'lance.rag.docs', column => 'embedding', query => {literal(query)}, k => 10,
        metric => 'cosine', nprobes => 8, refine_factor => 10))""")
    assert [r[0] for r in searched] == exact(ids, vectors, query, 10)
    assert all(a[1] <= b[1] for a, b in zip(searched, searched[1:]))
    # Another metric has no index: exact.
    l2 = f"SELECT id FROM lance.rag.docs ORDER BY euclidean_distance(embedding, {literal(query)}) LIMIT 4"
    assert "by l2: exact (no index for this metric)" in explain(port, l2)
    assert [r[0] for r in run(port, l2)] == exact(ids, vectors, query, 4, "l2")
    exact_search = f"""SELECT id FROM TABLE(vector_search(table => 'lance.rag.docs',
        column => 'embedding', query => {literal(query)}, k => 6, metric => 'cosine',
        exact => true))"""
    assert "exact (exact asked)" in explain(port, exact_search)
    assert [r[0] for r in run(port, exact_search)] == exact(ids, vectors, query, 6)

    # The filter applies before the top k: a topic far from the query still gives k rows,
    # its own nearest.
    filtered = (f"SELECT id, cat FROM lance.rag.docs WHERE cat = 'topic5' AND id < 200 "
                f"ORDER BY cosine_distance(embedding, {literal(query)}) LIMIT 10")
    assert "LanceSearch" in explain(port, filtered)
    got = run(port, filtered)
    assert len(got) == 10 and {r[1] for r in got} == {"topic5"}
    keep = (cats == "topic5") & (ids < 200)
    assert len(set(r[0] for r in got) & set(exact(ids, vectors, query, 10, keep=keep))) >= 9

    # New rows are found before the index covers them, and optimize folds them in.
    fresh = [-1.0] * DIM
    knn = f"SELECT id FROM lance.rag.docs ORDER BY cosine_distance(embedding, {literal(fresh)}) LIMIT 3"
    run(port, f"INSERT INTO lance.rag.docs VALUES (99999, 'topic9', 'new', {literal(fresh)})")
    [[unindexed, current]] = run(port, 'SELECT unindexed_rows, up_to_date FROM '
                                       'lance.rag."docs$indexes"')
    assert (unindexed, current) == (1, False)
    assert run(port, knn)[0][0] == 99999
    run(port, "ALTER TABLE lance.rag.docs EXECUTE optimize")
    [[unindexed, current]] = run(port, 'SELECT unindexed_rows, up_to_date FROM '
                                       'lance.rag."docs$indexes"')
    assert (unindexed, current) == (0, True)
    assert run(port, knn)[0][0] == 99999
    # A DELETE rewrites the fragment holding the row; the index is built again over it.
    run(port, "DELETE FROM lance.rag.docs WHERE id = 99999")
    [[indexed, unindexed]] = run(port, 'SELECT indexed_rows, unindexed_rows FROM '
                                       'lance.rag."docs$indexes"')
    assert (indexed, unindexed) == (ROWS, 0)


def test_lancedb_and_pylance_read_the_index_aichemy_built(lakehouse, tmp_path):
    server, warehouse = lakehouse
    port = server.http_port
    run(port, "ALTER TABLE lance.rag.docs EXECUTE create_vector_index(column => 'embedding', "
              "type => 'IVF_PQ', metric => 'cosine', partitions => 8, sub_vectors => 4, "
              "replace => true)")
    indices = lance.dataset(str(warehouse / "lance" / "rag" / "docs")).list_indices()
    assert [(i["name"], i["type"]) for i in indices if i["name"] == "embedding_idx"] == [
        ("embedding_idx", "IVF_PQ")]
    # lancedb opens the folder <table>.lance of its database folder: a link to AIchemy's.
    (tmp_path / "docs.lance").symlink_to(warehouse / "lance" / "rag" / "docs")
    table = lancedb.connect(str(tmp_path)).open_table("docs")
    ids, _, vectors = stored(warehouse)
    for row in [5, 600, 2222]:
        query = vectors[row] + 0.01
        theirs = (table.search(query.astype(np.float32), vector_column_name="embedding")
                  .metric("cosine").nprobes(8).refine_factor(5).limit(10)
                  .select(["id"]).to_arrow()["id"].to_pylist())
        ours = [r[0] for r in run(port, f"""SELECT id FROM TABLE(vector_search(
            table => 'lance.rag.docs', column => 'embedding', query => {literal(query)},
            k => 10, metric => 'cosine', nprobes => 8, refine_factor => 5))""")]
        assert ours == theirs


def test_other_index_types_text_search_and_hybrid(lakehouse):
    server, _ = lakehouse
    port = server.http_port
    for statement in [
        "create_vector_index(column => 'embedding', type => 'IVF_HNSW_SQ', metric => 'l2', "
        "partitions => 4, m => 8, ef_construction => 50, name => 'hnsw')",
        "create_text_index(column => 'body')",
    ]:
        run(port, f"ALTER TABLE lance.rag.docs EXECUTE {statement}")
    listed = run(port, 'SELECT index_name, index_type, metric FROM lance.rag."docs$indexes" '
                       'ORDER BY index_name')
    assert listed == [["body_idx", "Inverted", None], ["embedding_idx", "IVF_PQ", "cosine"],
                      ["hnsw", "IVF_HNSW_SQ", "l2"]]
    query = [1.0 if d == 3 else 0.0 for d in range(DIM)]
    l2 = f"""SELECT id FROM TABLE(vector_search(table => 'lance.rag.docs',
        column => 'embedding', query => {literal(query)}, k => 5, ef => 64))"""
    assert "index hnsw (IVF_HNSW_SQ)" in explain(port, l2) and "ef=64" in explain(port, l2)
    assert len(run(port, l2)) == 5

    words = """SELECT id, body, _score FROM TABLE(vector_search(table => 'lance.rag.docs',
        text => 'rotating keys', text_column => 'body', k => 5))"""
    assert "best 5 matches in body: index body_idx" in explain(port, words)
    found = run(port, words)
    assert len(found) == 5 and all("rotate the signing keys" in r[1] for r in found)
    assert all(r[2] > 0 for r in found)

    hybrid = run(port, f"""SELECT id, _distance, _score FROM TABLE(vector_search(
        table => 'lance.rag.docs', column => 'embedding', query => {literal(query)},
        text => 'signing keys', text_column => 'body', key => 'id', k => 8,
        metric => 'cosine', filter => 'id < 1000'))""")
    assert len(hybrid) == 8 and all(r[0] < 1000 for r in hybrid)
    assert all(a[2] >= b[2] for a, b in zip(hybrid, hybrid[1:]))
    error = failure(port, f"""SELECT * FROM TABLE(vector_search(table => 'lance.rag.docs',
        column => 'embedding', query => {literal(query)}, text => 'x', text_column => 'body'))""")
    assert error.error_name == "INVALID_FUNCTION_ARGUMENT" and "key" in error.message

    run(port, "ALTER TABLE lance.rag.docs EXECUTE drop_index(name => 'hnsw')")
    error = failure(port, "ALTER TABLE lance.rag.docs EXECUTE drop_index(name => 'hnsw')")
    assert "does not exist" in error.message
    error = failure(port, "ALTER TABLE iceberg.rag.docs EXECUTE create_vector_index("
                          "column => 'embedding')")
    assert error.error_name == "NOT_SUPPORTED", error


def test_embed_calls_the_endpoint_in_batches_with_a_cache(lakehouse):
    server, _ = lakehouse
    port = server.http_port
    Embeddings.requests.clear()
    texts = ", ".join(f"('text {i}')" for i in range(10))
    got = run(port, f"SELECT t, embed(t) FROM (VALUES {texts}) AS v(t) ORDER BY t")
    assert [r[1] for r in got] == [pytest.approx(embedding(r[0]), abs=1e-6) for r in got]
    assert len(Embeddings.requests) == 3
    assert {auth for auth, _ in Embeddings.requests} == {"Bearer sk-test-1234"}
    assert {body["model"] for _, body in Embeddings.requests} == {"hash-16"}
    run(port, f"SELECT embed(t) FROM (VALUES {texts}) AS v(t)")
    assert len(Embeddings.requests) == 3
    # A question embedded inside the query searches through the index.
    question = ("SELECT id FROM lance.rag.docs "
                "ORDER BY cosine_distance(embedding, embed('where are my keys?')) LIMIT 3")
    assert "LanceSearch" in explain(port, question)
    assert len(run(port, question)) == 3
    error = failure(port, "SELECT embed('fail')")
    assert error.error_name == "GENERIC_EXTERNAL" and "HTTP 500" in error.message
    assert "sk-test" not in error.message
    error = failure(port, "SELECT embed('x', 'nope')")
    assert error.error_name == "INVALID_FUNCTION_ARGUMENT" and "nope" in error.message


def search(port, request, user="root"):
    http = urllib.request.Request(f"http://127.0.0.1:{port}/v1/search",
                                  data=json.dumps(request).encode(), method="POST",
                                  headers={"X-Trino-User": user,
                                           "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(http, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_search_over_http_and_the_npm_client(lakehouse):
    server, warehouse = lakehouse
    port = server.http_port
    ids, _, vectors = stored(warehouse)
    query = vectors[42] + 0.01
    status, answer = search(port, {"table": "lance.rag.docs", "column": "embedding",
                                   "query": query.tolist(), "k": 4, "metric": "cosine",
                                   "columns": ["id", "cat"], "exact": True})
    assert status == 200, answer
    assert answer["columns"] == ["id", "cat", "_distance"]
    assert [r["id"] for r in answer["rows"]] == exact(ids, vectors, query, 4)
    status, answer = search(port, {"table": "lance.rag.docs", "column": "embedding",
                                   "query": "where are my keys?", "k": 2,
                                   "metric": "cosine", "filter": "cat = 'topic3'"})
    assert status == 200 and len(answer["rows"]) == 2
    assert {r["cat"] for r in answer["rows"]} == {"topic3"}
    # The search is a query of its user: listed with its source, in the audit.
    [[source]] = run(port, "SELECT source FROM system.runtime.queries "
                           f"WHERE query_id = '{answer['queryId']}'")
    assert source == "aichemy-search"
    status, answer = search(port, {"table": "lance.rag.nope", "column": "embedding",
                                   "query": [1.0] * DIM})
    assert status == 400 and answer["error"]["errorName"] == "TABLE_NOT_FOUND"
    status, _ = search(port, {"table": "lance.rag.docs", "query": {"x": 1}})
    assert status == 400
    # The npm trino-client runs the same SQL.
    sql = (f"SELECT id FROM lance.rag.docs ORDER BY cosine_distance(embedding, "
           f"{literal(query)}) LIMIT 4")
    [result] = node_sql(f"http://127.0.0.1:{port}", "root", [sql])
    assert result["error"] is None
    assert [r[0] for r in result["rows"]] == [r[0] for r in run(port, sql)]


def test_row_filters_and_masks_apply_to_search_results(lakehouse):
    server, warehouse = lakehouse
    port = server.http_port
    ids, cats, vectors = stored(warehouse)
    # The query is a topic-0 document: its nearest rows are all hidden from Ann.
    query = vectors[8]
    assert cats[8] == "topic0"
    sql = (f"SELECT id, cat, body FROM lance.rag.docs "
           f"ORDER BY cosine_distance(embedding, {literal(query)}) LIMIT 5")
    mine = run(port, sql)
    assert {r[1] for r in mine} == {"topic0"}
    hers = run(port, sql, user="ann")
    assert len(hers) == 5 and "topic0" not in {r[1] for r in hers}
    assert {r[2] for r in hers} == {"(hidden)"}
    # Read exactly, her answer is the exact one among the rows she may read.
    exactly = run(port, f"""SELECT id FROM TABLE(vector_search(table => 'lance.rag.docs',
        column => 'embedding', query => {literal(query)}, k => 5, metric => 'cosine',
        exact => true))""", user="ann")
    assert [r[0] for r in exactly] == exact(ids, vectors, query, 5, keep=cats != "topic0")
    status, answer = search(port, {"table": "lance.rag.docs", "column": "embedding",
                                   "query": query.tolist(), "k": 5, "metric": "cosine"},
                            user="ann")
    assert status == 200
    assert "topic0" not in {r["cat"] for r in answer["rows"]}
    assert {r["body"] for r in answer["rows"]} == {"(hidden)"}
    # Building an index needs the table's ownership.
    error = failure(port, "ALTER TABLE lance.rag.docs EXECUTE drop_index(name => "
                          "'embedding_idx')", user="ann")
    assert error.error_name == "PERMISSION_DENIED", error
    assert "Cannot execute table procedure drop_index" in error.message
