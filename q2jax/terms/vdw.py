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


def lennard_jones_in_r2(r2: Float[Array, " n"], rstar: Float[Array, " n"]):
    """(u, du/d(r^2), d2u/d(r^2)^2) of the unit-depth Lennard-Jones u = x^2 - 2 x,
    x = (r*^2 / r^2)^3 (E = eps u)."""
    x6 = (rstar * rstar / r2) ** 3
    return x6 * x6 - 2.0 * x6, 6.0 * (x6 - x6 * x6) / r2, (42.0 * x6 * x6 - 24.0 * x6) / (r2 * r2)


def mm3_buckingham_in_r2(r2: Float[Array, " n"], rstar: Float[Array, " n"]):
    """(u, du/d(r^2), d2u/d(r^2)^2) of the unit-depth MM3 exp-6
    u = 1.84e5 exp(-k r) - 2.25 x, k = 12/r*, x = (r*^2 / r^2)^3 (E = eps u):
    d/d(r^2) of exp(-k r) is -k exp(-k r) / (2 r), of x is -3 x / r^2."""
    r = jnp.sqrt(r2)
    k = MM3_VDW_B / rstar
    rep = MM3_VDW_A * jnp.exp(-k * r)
    disp = MM3_VDW_C * (rstar * rstar / r2) ** 3
    return (
        rep - disp,
        -k * rep / (2.0 * r) + 3.0 * disp / r2,
        k * rep * (k * r + 1.0) / (4.0 * r2 * r) - 12.0 * disp / (r2 * r2),
    )


__all__ = [
    "lennard_jones",
    "lennard_jones_in_r2",
    "mm3_buckingham",
    "mm3_buckingham_in_r2",
    "MM3_VDW_A",
    "MM3_VDW_B",
    "MM3_VDW_C",
]
