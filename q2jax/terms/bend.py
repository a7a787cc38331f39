"""Angle bending. k in kcal/(mol rad^2) with E = k dtheta^2 (no 1/2); the
deviation and its (smooth) square come from ``geometry.bend_deviation``."""

from __future__ import annotations

from jaxtyping import Array, Float

from q2jax.units import RAD_TO_DEG

# MM3 sextic bend: 1 - 0.014 d + 5.6e-5 d^2 - 7e-7 d^3 + 2.2e-8 d^4, d in degrees.
# Allinger 1989 printed 9.0e-10 for the sextic term; MacroModel's MM3* and Tinker's
# mm3.prm both use 2.2e-8 (checked against MacroModel's bend energies of the
# Rh-enamide set to 0.002 kJ/mol), so q2jax follows the engines people run.
MM3_BEND_C3 = -0.014
MM3_BEND_C4 = 5.6e-5
MM3_BEND_C5 = -7.0e-7
MM3_BEND_C6 = 2.2e-8


def harmonic_bend(dtheta_sq: Float[Array, " n"], k: Float[Array, " n"]):
    """E = k (theta - theta0)^2 (radians)."""
    return k * dtheta_sq


def mm3_bend(dtheta: Float[Array, " n"], dtheta_sq: Float[Array, " n"], k: Float[Array, " n"]):
    """MM3: E = k dtheta^2 (1 - 0.014 d + 5.6e-5 d^2 - 7e-7 d^3 + 2.2e-8 d^4),
    dtheta in radians, d = dtheta in degrees.

    With k = 0.021914 (180/pi)^2 k_b (k_b in mdyn Å/rad^2) this is MM3's
    0.021914 k_b d^2 (...)."""
    d = dtheta * RAD_TO_DEG
    poly = 1.0 + d * (MM3_BEND_C3 + d * (MM3_BEND_C4 + d * (MM3_BEND_C5 + d * MM3_BEND_C6)))
    return k * dtheta_sq * poly


__all__ = ["harmonic_bend", "mm3_bend", "MM3_BEND_C3", "MM3_BEND_C4", "MM3_BEND_C5", "MM3_BEND_C6"]
