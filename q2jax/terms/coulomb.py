"""Point-charge electrostatics."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from q2jax.units import COULOMB_KCAL_MOL_A


def coulomb(
    r: Float[Array, " n"], qi: Float[Array, " n"], qj: Float[Array, " n"], dielectric: float = 1.0
):
    """E = 332.06 q_i q_j / (eps_r r), kcal/mol with r in Å and q in e."""
    return COULOMB_KCAL_MOL_A * qi * qj / (dielectric * r)


def coulomb_in_r2(r2: Float[Array, " n"], qq: Float[Array, " n"], dielectric: float = 1.0):
    """(E, dE/d(r^2), d2E/d(r^2)^2) of E = 332.06 qq / (eps_r r), r^2 in Å^2."""
    e = COULOMB_KCAL_MOL_A * qq / (dielectric * jnp.sqrt(r2))
    return e, -e / (2.0 * r2), 3.0 * e / (4.0 * r2 * r2)


__all__ = ["coulomb", "coulomb_in_r2"]
