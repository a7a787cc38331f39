"""Shared fixtures: float64 everywhere, the bundled data directory."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Tests compile many small programs and run each briefly: XLA's fast-compile
# settings halve the suite's time. A session-wide persistent cache lets tests
# that build the same objective share one compilation.
os.environ.setdefault(
    "XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
)

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
_CACHE = tempfile.mkdtemp(prefix="q2jax-xla-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

import pytest  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "q2jax" / "data"
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def test_data_dir() -> Path:
    return TEST_DATA
