"""The bonded families as potentials f(I, theta) of polynomial invariants I of
their bond vectors (``q2jax.terms.invariants``), so that their gradients and
Hessians follow by the chain rule through fixed tensors.

Each invariant set lists the bond vectors (rows of V, b = V x over the term's
atoms) and the polynomials; each potential takes one term's invariants and
parameters. The geometry is computed as in ``q2jax.terms.geometry``: bends
from u x v and u . v (``bend_deviation_from``), dihedrals from n1 . n2 and
b0 . (b1 x b2) (``dihedral_from``; n1 . n2 = (b0.b1)(b1.b2) - (b0.b2)(b1.b1)).
Units: Å, radians, kcal/mol.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from q2jax.terms.bend import harmonic_bend, mm3_bend
from q2jax.terms.cross import mm3_bend_bend, mm3_torsion_stretch
from q2jax.terms.geometry import bend_deviation_from, dihedral_from
from q2jax.terms.invariants import cross, dot, invariants, triple
from q2jax.terms.stretch import harmonic_stretch, mm3_stretch
from q2jax.terms.stretch_bend import stretch_bend
from q2jax.terms.torsion import fourier_torsion

_BEND_VECTORS = [[1, -1, 0], [0, -1, 1]]  # u = x_i - x_j, v = x_k - x_j (j central)

STRETCH = invariants([[-1, 1]], [dot(1, 0, 0)])
"""|b|^2 of the bond b = x_j - x_i."""

BEND = invariants(_BEND_VECTORS, [dot(2, 0, 1), *cross(2, 0, 1)])
"""u . v and u x v of the bend i-j-k."""

STRETCH_BEND = invariants(
    _BEND_VECTORS, [dot(2, 0, 0), dot(2, 1, 1), dot(2, 0, 1), *cross(2, 0, 1)]
)
"""|u|^2, |v|^2, u . v, u x v of the bend i-j-k."""

BEND_BEND = invariants(
    [[-1, 1, 0, 0, 0], [-1, 0, 1, 0, 0], [-1, 0, 0, 1, 0], [-1, 0, 0, 0, 1]],
    [dot(4, 0, 1), *cross(4, 0, 1), dot(4, 2, 3), *cross(4, 2, 3)],
)
"""u . v and u x v of the bends a1-c-b1 and a2-c-b2 (slots c, a1, b1, a2, b2)."""

TORSION = invariants(
    [[-1, 1, 0, 0], [0, -1, 1, 0], [0, 0, -1, 1]],
    [dot(3, 0, 1), dot(3, 1, 2), dot(3, 0, 2), dot(3, 1, 1)],
    [triple(3, 0, 1, 2)],
)
"""b0.b1, b1.b2, b0.b2, b1.b1 and b0.(b1 x b2) of the torsion i-j-k-l (b0 = x_j - x_i, ...)."""


def _dihedral_and_length(inv: Float[Array, " 5"]) -> tuple[Array, Array]:
    b01, b12, b02, b11, triple_product = inv
    length = jnp.sqrt(b11)
    return dihedral_from(b01 * b12 - b02 * b11, -length * triple_product), length


def stretch_potential(mm3: bool):
    """theta = [k, r0, length scale 1/(f_i f_j)]."""
    form = mm3_stretch if mm3 else harmonic_stretch

    def f(inv, th):
        return form(jnp.sqrt(inv[0]) * th[2], th[0], th[1])

    return f


def bend_potential(mm3: bool):
    """theta = [k, theta0 (rad)]."""

    def f(inv, th):
        d, d2 = bend_deviation_from(inv[1:4], inv[0], th[1])
        return mm3_bend(d, d2, th[0]) if mm3 else harmonic_bend(d2, th[0])

    return f


def torsion_potential(inv, th):
    """Fourier torsion plus torsion-stretch: theta = [V1, V2, V3, k_ts, r0, length scale]
    (one potential for both families, so that they form one batch)."""
    phi, length = _dihedral_and_length(inv)
    return fourier_torsion(phi, th[0], th[1], th[2]) + mm3_torsion_stretch(
        length * th[5] - th[4], phi, th[3]
    )


def stretch_bend_potential(inv, th):
    """theta = [k, r0_ij, r0_jk, theta0, length scale ij, length scale jk]."""
    dth, _ = bend_deviation_from(inv[3:6], inv[2], th[3])
    return stretch_bend(jnp.sqrt(inv[0]) * th[4] - th[1], jnp.sqrt(inv[1]) * th[5] - th[2], dth,
                        th[0])


def bend_bend_potential(inv, th):
    """theta = [k1, k2, theta0_1, theta0_2]."""
    d1, _ = bend_deviation_from(inv[1:4], inv[0], th[2])
    d2, _ = bend_deviation_from(inv[5:8], inv[4], th[3])
    return mm3_bend_bend(d1, d2, th[0], th[1])


__all__ = [
    "STRETCH",
    "BEND",
    "STRETCH_BEND",
    "BEND_BEND",
    "TORSION",
    "stretch_potential",
    "bend_potential",
    "torsion_potential",
    "stretch_bend_potential",
    "bend_bend_potential",
]
