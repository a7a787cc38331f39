"""Bond stretching. Parameters in q2jax units: k in kcal/(mol Å^2) with
E = k dr^2 (no 1/2), r0 in Å."""

from __future__ import annotations

from jaxtyping import Array, Float

MM3_CUBIC = 2.55  # 1/Å, Allinger 1989
MM3_QUARTIC = (7.0 / 12.0) * MM3_CUBIC**2  # 1/Å^2


def harmonic_stretch(r: Float[Array, " n"], k: Float[Array, " n"], r0: Float[Array, " n"]):
    """E = k (r - r0)^2."""
    dr = r - r0
    return k * dr * dr


def mm3_stretch(r: Float[Array, " n"], k: Float[Array, " n"], r0: Float[Array, " n"]):
    """MM3: E = k dr^2 (1 - 2.55 dr + (7/12) 2.55^2 dr^2), dr in Å.

    With k = 71.94 k_s (k_s in mdyn/Å) this is Allinger's 71.94 k_s dr^2 (...)."""
    dr = r - r0
    return k * dr * dr * (1.0 - MM3_CUBIC * dr + MM3_QUARTIC * dr * dr)


__all__ = ["MM3_CUBIC", "MM3_QUARTIC", "harmonic_stretch", "mm3_stretch"]
