"""The TPC-H benchmark harness at SF 0.01, so that it keeps working: all 22 queries run
through `aichemy serve` on hive and iceberg tables and return DuckDB's rows."""

import os
import subprocess
import sys
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "benchmarks" / "tpch" / "tpch.py"


def test_tpch_sf001_matches_duckdb():
    done = subprocess.run(
        [sys.executable, str(HARNESS), "--scale", "0.01", "--check-only"],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAILED" not in done.stdout
    assert "over 22 queries" in done.stdout, done.stdout
