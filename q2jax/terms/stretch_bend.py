"""MM3 stretch-bend coupling."""

from __future__ import annotations

from jaxtyping import Array, Float


def stretch_bend(
    dr1: Float[Array, " n"],
    dr2: Float[Array, " n"],
    dtheta: Float[Array, " n"],
    k: Float[Array, " n"],
):
    """E = k (dr1 + dr2) dtheta; dr in Å, dtheta in radians, k in kcal/(mol Å rad).

    MM3 writes 2.51118 k_sb (dr1 + dr2) d_deg with k_sb in mdyn/rad, i.e.
    k = 2.51118 * 180/pi * k_sb."""
    return k * (dr1 + dr2) * dtheta


__all__ = ["stretch_bend"]
