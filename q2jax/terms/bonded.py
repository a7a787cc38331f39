"""The bonded families as potentials of a few internal coordinates q (bond
lengths, bend supplements, dihedrals), which are functions of polynomial
invariants I of the term's bond vectors (``q2jax.terms.invariants``):
e = potential(internal(I(x)), theta). Only ``potential`` sees the parameters,
so the Hessian's parameter derivative passes through its 1-3 inputs alone.

Each invariant set lists the bond vectors (rows of V, b = V x over the term's
atoms) and the polynomials; ``internal`` and ``potential`` act on one term.
The geometry is computed as in ``q2jax.terms.geometry``: bends from u x v and
u . v (``bend_supplement``), dihedrals from n1 . n2 and b0 . (b1 x b2)
(``dihedral_from``; n1 . n2 = (b0.b1)(b1.b2) - (b0.b2)(b1.b1)).
Units: Å, radians, kcal/mol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp
from jaxtyping import Array

from q2jax.terms.bend import harmonic_bend, mm3_bend
from q2jax.terms.cross import mm3_bend_bend, mm3_torsion_stretch
from q2jax.terms.geometry import bend_supplement, deviation_from_supplement, dihedral_from
from q2jax.terms.invariants import Invariants, cross, dot, invariants, triple
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


@dataclass(frozen=True, eq=False)  # compared and hashed by identity (holds numpy tensors)
class Bonded:
    """A bonded family's invariants I(x), internal coordinates q(I) and potential e(q, theta)."""

    invariants: Invariants
    internal: Callable[[Array], Array]
    potential: Callable[[Array, Array], Array]


def _length(inv):
    return jnp.sqrt(inv[:1])


def _supplement(inv):
    return jnp.stack(bend_supplement(inv[1:4], inv[0]))


def _dihedral_and_length(inv):
    b01, b12, b02, b11, triple_product = inv
    length = jnp.sqrt(b11)
    return jnp.stack([dihedral_from(b01 * b12 - b02 * b11, -length * triple_product), length])


def _stretch_bend_internal(inv):
    return jnp.stack([jnp.sqrt(inv[0]), jnp.sqrt(inv[1]), bend_supplement(inv[3:6], inv[2])[0]])


def _bend_bend_internal(inv):
    return jnp.stack([bend_supplement(inv[1:4], inv[0])[0], bend_supplement(inv[5:8], inv[4])[0]])


def stretch(mm3: bool) -> Bonded:
    """q = [|b|]; theta = [k, r0, length scale 1/(f_i f_j)]."""
    form = mm3_stretch if mm3 else harmonic_stretch

    def potential(q, th):
        return form(q[0] * th[2], th[0], th[1])

    return Bonded(STRETCH, _length, potential)


def bend(mm3: bool) -> Bonded:
    """q = [pi - theta, (pi - theta)^2 (smooth at linearity)]; theta = [k, theta0 (rad)]."""

    def potential(q, th):
        d, d2 = deviation_from_supplement(q[0], q[1], th[1])
        return mm3_bend(d, d2, th[0]) if mm3 else harmonic_bend(d2, th[0])

    return Bonded(BEND, _supplement, potential)


def _torsion_potential(q, th):
    phi, length = q
    return fourier_torsion(phi, th[0], th[1], th[2]) + mm3_torsion_stretch(
        length * th[5] - th[4], phi, th[3]
    )


TORSION_FAMILY = Bonded(TORSION, _dihedral_and_length, _torsion_potential)
"""Fourier torsion plus torsion-stretch: q = [phi, |b1|]; theta = [V1, V2, V3, k_ts, r0,
length scale] (one family for both, so that they form one batch)."""


def _stretch_bend_potential(q, th):
    return stretch_bend(q[0] * th[4] - th[1], q[1] * th[5] - th[2], (jnp.pi - th[3]) - q[2], th[0])


STRETCH_BEND_FAMILY = Bonded(STRETCH_BEND, _stretch_bend_internal, _stretch_bend_potential)
"""q = [|u|, |v|, pi - theta]; theta = [k, r0_ij, r0_jk, theta0, length scale ij, jk]."""


def _bend_bend_potential(q, th):
    return mm3_bend_bend((jnp.pi - th[2]) - q[0], (jnp.pi - th[3]) - q[1], th[0], th[1])


BEND_BEND_FAMILY = Bonded(BEND_BEND, _bend_bend_internal, _bend_bend_potential)
"""q = [pi - theta_1, pi - theta_2]; theta = [k1, k2, theta0_1, theta0_2]."""


__all__ = [
    "Bonded",
    "STRETCH",
    "BEND",
    "STRETCH_BEND",
    "BEND_BEND",
    "TORSION",
    "stretch",
    "bend",
    "TORSION_FAMILY",
    "STRETCH_BEND_FAMILY",
    "BEND_BEND_FAMILY",
]
