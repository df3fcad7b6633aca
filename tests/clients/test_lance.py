"""Lance datasets shared with pylance: pylance reads the embeddings aichemy wrote (vectors as
fixed-size lists), and aichemy registers, reads and appends to a dataset pylance wrote."""

import lance
import pyarrow as pa
import pytest

from lakehouse import aichemy


def test_pylance_reads_what_aichemy_wrote(warehouse):
    aichemy(
        warehouse,
        """
        CREATE SCHEMA lance.ln_test;
        CREATE TABLE lance.ln_test.embeddings (id INTEGER, document_name VARCHAR,
            content VARCHAR, embedding ARRAY(DOUBLE), metadata MAP(VARCHAR, VARCHAR),
            created_at TIMESTAMP);
        INSERT INTO lance.ln_test.embeddings VALUES
         (1, 'doc1.txt', 'Sample text about AI', ARRAY[0.1, 0.2, 0.3, 0.4, 0.5],
          MAP(ARRAY['category', 'language'], ARRAY['tech', 'en']), CURRENT_TIMESTAMP),
         (2, 'doc2.txt', 'Another text', ARRAY[0.5, 0.4, 0.3, 0.2, 0.1],
          MAP(ARRAY['category'], ARRAY['tech']), CURRENT_TIMESTAMP);
        """,
    )
    dataset = lance.dataset(str(warehouse / "lance" / "ln_test" / "embeddings"))
    assert dataset.count_rows() == 2
    embedding = dataset.schema.field("embedding").type
    assert pa.types.is_fixed_size_list(embedding) and embedding.list_size == 5
    rows = dataset.to_table().sort_by("id").to_pylist()
    assert rows[0]["document_name"] == "doc1.txt"
    assert rows[0]["embedding"] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert dict(rows[0]["metadata"]) == {"category": "tech", "language": "en"}
    # Each INSERT is one Lance version.
    aichemy(warehouse, "INSERT INTO lance.ln_test.embeddings (id) VALUES (3)")
    assert lance.dataset(str(warehouse / "lance" / "ln_test" / "embeddings")).version == 2


def test_aichemy_reads_and_appends_to_what_pylance_wrote(warehouse, tmp_path, monkeypatch):
    # Files outside the warehouse are reachable only under storage.allowed_locations.
    monkeypatch.setenv("AICHEMY_STORAGE__ALLOWED_LOCATIONS", f"file://{tmp_path}")
    folder = tmp_path / "vectors.lance"
    table = pa.table({
        "id": pa.array([1, 2], pa.int64()),
        "label": ["a", "b"],
        "vec": pa.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], pa.list_(pa.float32(), 3)),
    })
    lance.write_dataset(table, str(folder))
    aichemy(
        warehouse,
        f"""
        CREATE SCHEMA lance.py;
        CREATE TABLE lance.py.vectors (id BIGINT, label VARCHAR, vec ARRAY(REAL))
            WITH (location = 'file://{folder}');
        INSERT INTO lance.py.vectors VALUES (3, 'c', ARRAY[REAL '0.5', REAL '0.5', REAL '0.0']);
        """,
    )
    rows = aichemy(
        warehouse,
        "SELECT id, label, cardinality(vec) AS n, vec[1] AS x FROM lance.py.vectors ORDER BY id",
    )
    assert rows == [
        {"id": 1, "label": "a", "n": 3, "x": 1.0},
        {"id": 2, "label": "b", "n": 3, "x": 0.0},
        {"id": 3, "label": "c", "n": 3, "x": 0.5},
    ]
    back = lance.dataset(str(folder))
    assert back.count_rows() == 3
    # Registered by location, so DROP TABLE leaves the dataset.
    aichemy(warehouse, "DROP TABLE lance.py.vectors")
    assert lance.dataset(str(folder)).count_rows() == 3


def test_pylance_reads_every_change_aichemy_commits(warehouse):
    """DELETE, UPDATE, MERGE and optimize on a Lance table: pylance reads the rows after
    them, each one a version; expire_snapshots leaves only the current version."""
    aichemy(
        warehouse,
        """
        CREATE SCHEMA lance.rc;
        CREATE TABLE lance.rc.docs (id INTEGER NOT NULL, title VARCHAR,
            embedding ARRAY(REAL));
        INSERT INTO lance.rc.docs VALUES (1, 'a', ARRAY[1, 0]), (2, 'b', ARRAY[0, 1]);
        INSERT INTO lance.rc.docs VALUES (3, 'c', ARRAY[1, 1]);
        DELETE FROM lance.rc.docs WHERE id = (SELECT min(id) FROM lance.rc.docs);
        UPDATE lance.rc.docs SET title = upper(title), embedding = ARRAY[2, 2] WHERE id = 3;
        MERGE INTO lance.rc.docs t USING (VALUES (2, 'bee'), (4, 'd')) AS s(id, title)
            ON t.id = s.id
            WHEN MATCHED THEN UPDATE SET title = s.title
            WHEN NOT MATCHED THEN INSERT (id, title) VALUES (s.id, s.title);
        """,
    )
    location = str(warehouse / "lance" / "rc" / "docs")
    dataset = lance.dataset(location)
    assert dataset.version == 5
    embedding = dataset.schema.field("embedding").type
    assert pa.types.is_fixed_size_list(embedding) and embedding.list_size == 2
    rows = sorted(dataset.to_table().to_pylist(), key=lambda r: r["id"])
    assert [(r["id"], r["title"]) for r in rows] == [(2, "bee"), (3, "C"), (4, "d")]
    assert rows[1]["embedding"] == pytest.approx([2.0, 2.0])
    assert rows[2]["embedding"] is None
    assert lance.dataset(location, version=2).count_rows() == 3

    aichemy(warehouse, "ALTER TABLE lance.rc.docs EXECUTE optimize")
    optimized = lance.dataset(location)
    assert len(optimized.get_fragments()) == 1
    assert sorted(optimized.to_table().column("id").to_pylist()) == [2, 3, 4]
    aichemy(warehouse, "SET SESSION iceberg.expire_snapshots_min_retention = '0s'; "
                       "ALTER TABLE lance.rc.docs EXECUTE expire_snapshots("
                       "retention_threshold => '0s')")
    assert [v["version"] for v in lance.dataset(location).versions()] == [optimized.version]
    assert sorted(lance.dataset(location).to_table().column("id").to_pylist()) == [2, 3, 4]
