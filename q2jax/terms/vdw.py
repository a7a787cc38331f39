"""Van der Waals pair energies. Radii r* are per-atom (r*_ij = r*_i + r*_j,
MM3 convention), well depths combine as eps_ij = sqrt(eps_i eps_j)."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

MM3_VDW_A = 1.84e5
MM3_VDW_B = 12.0
MM3_VDW_C = 2.25


def lennard_jones(r: Float[Array, " n"], rstar: Float[Array, " n"], eps: Float[Array, " n"]):
    """E = eps [(r*/r)^12 - 2 (r*/r)^6], minimum -eps at r = r*."""
    x6 = (rstar / r) ** 6
    return eps * (x6 * x6 - 2.0 * x6)


def mm3_buckingham(r: Float[Array, " n"], rstar: Float[Array, " n"], eps: Float[Array, " n"]):
    """MM3 exp-6: E = eps [1.84e5 exp(-12 r/r*) - 2.25 (r*/r)^6] (Allinger 1989)."""
    return eps * (MM3_VDW_A * jnp.exp(-MM3_VDW_B * r / rstar) - MM3_VDW_C * (rstar / r) ** 6)


__all__ = ["lennard_jones", "mm3_buckingham", "MM3_VDW_A", "MM3_VDW_B", "MM3_VDW_C"]
