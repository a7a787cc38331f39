"""MM3 cross terms as MacroModel's MM3* evaluates them (checked against its
.mmo printout of the Rh-enamide set): bend-bend and torsion-stretch."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float


def mm3_bend_bend(
    dtheta1: Float[Array, " n"],
    dtheta2: Float[Array, " n"],
    k1: Float[Array, " n"],
    k2: Float[Array, " n"],
):
    """E = -k1 k2 dtheta1 dtheta2 (radians) for two angles at one centre.

    MM3 writes -0.021914 kbb_1 kbb_2 d1 d2 with d in degrees and kbb (the third
    value of each main-section bend line) in mdyn^0.5 Å^0.5/rad, i.e.
    k = sqrt(0.021914 (180/pi)^2) kbb = ``units.MM3_BEND_BEND_UNIT`` kbb.
    """
    return -k1 * k2 * dtheta1 * dtheta2


def mm3_torsion_stretch(dr: Float[Array, " n"], phi: Float[Array, " n"], k: Float[Array, " n"]):
    """E = -k (r - r0) (1 + cos 3 phi), r the central bond of the torsion (Å), k in
    kcal/(mol Å): eclipsing (phi = 0) lengthens the bond.

    k = 11.995 / 2 K_ts (``units.MM3_TORSION_STRETCH_UNIT``) with K_ts the .fld value;
    the sign is MacroModel's (its printed energies are exactly minus MM3's
    11.995 (K_ts / 2) dr (1 + cos 3w) as Allinger 1989 prints it)."""
    return -k * dr * (1.0 + jnp.cos(3.0 * phi))


__all__ = ["mm3_bend_bend", "mm3_torsion_stretch"]
