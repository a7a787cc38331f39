"""Shared fixtures: float64 everywhere, the bundled data directory."""

from __future__ import annotations

import os
from pathlib import Path

# Tests compile many small programs and run each briefly: XLA's fast-compile
# settings halve the suite's time. The CLI's persistent compilation cache is
# switched off in tests (CLI tests run in-process and must not write to ~/.cache).
os.environ.setdefault(
    "XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
)
os.environ["Q2JAX_NO_COMPILATION_CACHE"] = "1"
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see q2jax/__init__.py

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import gc  # noqa: E402

import pytest  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "q2jax" / "data"
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def test_data_dir() -> Path:
    return TEST_DATA


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
    """Drop JAX's compiled executables after each test module. Each one keeps a
    few memory mappings; one process running the whole suite would otherwise
    pass the kernel's vm.max_map_count (65530) and crash inside XLA."""
    yield
    jax.clear_caches()
    gc.collect()
