"""Shared fixtures: float64 everywhere, the bundled data directory."""

from __future__ import annotations

from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import pytest  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "q2jax" / "data"
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def test_data_dir() -> Path:
    return TEST_DATA
