"""Fixtures shared by the client tests."""

import pytest


@pytest.fixture()
def warehouse(tmp_path):
    """A warehouse folder of its own for each test."""
    return tmp_path / "wh"
