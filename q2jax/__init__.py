"""q2jax: fit molecular-mechanics force fields to quantum chemistry in pure JAX."""

from __future__ import annotations

import jax

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
