"""Out-of-plane bending at trivalent (sp2) centres."""

from __future__ import annotations

from jaxtyping import Array, Float


def harmonic_out_of_plane(chi: Float[Array, " n"], k: Float[Array, " n"]):
    """E = k chi^2, chi the mean Wilson angle (radians), k in kcal/(mol rad^2)."""
    return k * chi * chi


__all__ = ["harmonic_out_of_plane"]
