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
