"""Proper torsions, the MM3 / MacroModel three-term Fourier series."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float


def fourier_torsion(
    phi: Float[Array, " n"], v1: Float[Array, " n"], v2: Float[Array, " n"], v3: Float[Array, " n"]
):
    """E = V1/2 (1 + cos phi) + V2/2 (1 - cos 2 phi) + V3/2 (1 + cos 3 phi), kcal/mol."""
    return 0.5 * (
        v1 * (1.0 + jnp.cos(phi))
        + v2 * (1.0 - jnp.cos(2.0 * phi))
        + v3 * (1.0 + jnp.cos(3.0 * phi))
    )


__all__ = ["fourier_torsion"]
