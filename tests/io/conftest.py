"""Fixtures of the I/O tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> path of a new file holding ``text``."""

    def _write(name: str, text: str) -> Path:
        p = tmp_path / name
        if name.endswith(".gz"):
            p.write_bytes(gzip.compress(text.encode()))
        else:
            p.write_text(text)
        return p

    return _write
