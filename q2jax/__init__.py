"""q2jax: fit molecular-mechanics force fields to quantum chemistry in pure JAX."""

from __future__ import annotations

import os

# JAX's CPU eigh/solve call LAPACK from SciPy's OpenBLAS. Its own thread pool
# on top of XLA's oversubscribes small cores: eigh of nine 186x186 Hessians took
# 2.9 s threaded vs 18 ms single-threaded here. Effective only if q2jax is
# imported before NumPy/SciPy load OpenBLAS; set the variable yourself to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

from q2jax.errors import (  # noqa: E402
    InputError,
    ParameterError,
    ParseError,
    Q2JaxError,
    TopologyError,
    UnitError,
)
from q2jax.forcefield import ForceField  # noqa: E402
from q2jax.molecule import Molecule  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ForceField",
    "InputError",
    "Molecule",
    "ParameterError",
    "ParseError",
    "Q2JaxError",
    "TopologyError",
    "UnitError",
    "__version__",
]
