"""Point-charge electrostatics."""

from __future__ import annotations

from jaxtyping import Array, Float

from q2jax.units import COULOMB_KCAL_MOL_A


def coulomb(
    r: Float[Array, " n"], qi: Float[Array, " n"], qj: Float[Array, " n"], dielectric: float = 1.0
):
    """E = 332.06 q_i q_j / (eps_r r), kcal/mol with r in Å and q in e."""
    return COULOMB_KCAL_MOL_A * qi * qj / (dielectric * r)


__all__ = ["coulomb"]
