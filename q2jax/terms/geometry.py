"""Internal coordinates from Cartesians, vectorised and safe to differentiate.

Padded terms (mask False) point at atom 0 several times; their displacement
vectors are replaced by fixed non-degenerate ones before any norm, so the
masked entries never put NaN into gradients or Hessians.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

_EX = jnp.array([1.0, 0.0, 0.0])
_EY = jnp.array([0.0, 1.0, 0.0])
_EZ = jnp.array([0.0, 0.0, 1.0])


def _safe(vec: Float[Array, "n 3"], mask: Bool[Array, " n"], fill: Array) -> Float[Array, "n 3"]:
    return jnp.where(mask[:, None], vec, fill)


def safe_norm(v: Float[Array, "*batch 3"], eps: float = 1e-30) -> Float[Array, ...]:
    """|v| with a finite derivative at v = 0 (for masked or degenerate entries)."""
    sq = jnp.sum(v * v, axis=-1)
    safe_sq = jnp.where(sq > eps, sq, 1.0)
    return jnp.where(sq > eps, jnp.sqrt(safe_sq), 0.0)


def distances(
    coords: Float[Array, "atoms 3"], idx: Int[Array, "n 2"], mask: Bool[Array, " n"]
) -> Float[Array, " n"]:
    """r_ij = |x_j - x_i| in Å (1.0 for masked entries)."""
    d = _safe(coords[idx[:, 1]] - coords[idx[:, 0]], mask, _EX)
    return jnp.sqrt(jnp.sum(d * d, axis=-1))


def angles(
    coords: Float[Array, "atoms 3"], idx: Int[Array, "n 3"], mask: Bool[Array, " n"]
) -> Float[Array, " n"]:
    """Bend angle i-j-k (j central), radians, via atan2(|u x v|, u.v).

    atan2 keeps full precision near 0 and 180 degrees; ``safe_norm`` keeps the
    derivative finite at exactly linear geometries.
    """
    u = _safe(coords[idx[:, 0]] - coords[idx[:, 1]], mask, _EX)
    v = _safe(coords[idx[:, 2]] - coords[idx[:, 1]], mask, _EY)
    cross = jnp.cross(u, v)
    return jnp.arctan2(safe_norm(cross), jnp.sum(u * v, axis=-1))


def dihedrals(
    coords: Float[Array, "atoms 3"], idx: Int[Array, "n 4"], mask: Bool[Array, " n"]
) -> Float[Array, " n"]:
    """Dihedral angle i-j-k-l in radians, (-pi, pi]: 0 for cis (syn-periplanar),
    pi for trans, positive clockwise looking along j->k (IUPAC)."""
    b0 = _safe(coords[idx[:, 1]] - coords[idx[:, 0]], mask, _EX)
    b1 = _safe(coords[idx[:, 2]] - coords[idx[:, 1]], mask, _EY)
    b2 = _safe(coords[idx[:, 3]] - coords[idx[:, 2]], mask, _EZ)
    n1 = jnp.cross(b0, b1)
    n2 = jnp.cross(b1, b2)
    b1_unit = b1 / safe_norm(b1)[:, None]
    m1 = jnp.cross(n1, b1_unit)
    x = jnp.sum(n1 * n2, axis=-1)
    y = jnp.sum(m1 * n2, axis=-1)
    return dihedral_from(x, y)


def dihedral_from(x: Array, y: Array) -> Array:
    """The dihedral -atan2(y, x) from x = n1 . n2 and y = m1 . n2 = -|b1| b0 . (b1 x b2)
    (n1 = b0 x b1, n2 = b1 x b2, m1 = n1 x b1/|b1|); 0 where both vanish."""
    # atan2(y, x) with y,x -> 0 only for collinear atoms (excluded by topology)
    safe = (x * x + y * y) > 1e-30
    return jnp.where(safe, -jnp.arctan2(jnp.where(safe, y, 0.0), jnp.where(safe, x, 1.0)), 0.0)


def out_of_plane(
    coords: Float[Array, "atoms 3"], idx: Int[Array, "n 4"], mask: Bool[Array, " n"]
) -> Float[Array, " n"]:
    """Mean out-of-plane (Wilson) angle, radians, of centre c = idx[:, 0] with
    neighbours a, b, d: for each neighbour, the angle between its bond and the
    plane of the other two bonds, averaged over the three choices."""
    c = coords[idx[:, 0]]
    bonds = [_safe(coords[idx[:, k]] - c, mask, fill) for k, fill in ((1, _EX), (2, _EY), (3, _EZ))]
    total = 0.0
    for k in range(3):
        r = bonds[k]
        p, q = bonds[(k + 1) % 3], bonds[(k + 2) % 3]
        n = jnp.cross(p, q)
        sin_chi = jnp.sum(n * r, axis=-1) / (safe_norm(n) * safe_norm(r) + 1e-300)
        total = total + jnp.arcsin(jnp.clip(sin_chi, -1.0 + 1e-15, 1.0 - 1e-15))
    return total / 3.0


def bend_deviation(
    coords: Float[Array, "atoms 3"],
    idx: Int[Array, "n 3"],
    mask: Bool[Array, " n"],
    theta0: Float[Array, " n"],
) -> tuple[Float[Array, " n"], Float[Array, " n"]]:
    """(theta - theta0, (theta - theta0)^2) in radians, with the square smooth
    at exactly linear geometries.

    theta - theta0 = A - delta with A = pi - theta0 and delta = pi - theta. delta
    has a cusp at linearity (delta ~ |x_perp|) but delta^2 does not, so delta^2 is
    computed from |u x v|^2 / (u.v)^2 through the series of atan(sqrt(x))^2.
    The squared deviation A^2 - 2 A delta + delta^2 then has the right Hessian
    for a linear reference angle (A = 0), as in the SN2 transition state.
    """
    u = _safe(coords[idx[:, 0]] - coords[idx[:, 1]], mask, _EX)
    v = _safe(coords[idx[:, 2]] - coords[idx[:, 1]], mask, _EY)
    return bend_deviation_from(jnp.cross(u, v), jnp.sum(u * v, axis=-1), theta0)


def bend_deviation_from(
    cross: Float[Array, "*batch 3"], c: Float[Array, "*batch"], theta0: Float[Array, "*batch"]
) -> tuple[Float[Array, "*batch"], Float[Array, "*batch"]]:
    """:func:`bend_deviation` from the bond vectors' cross product u x v and dot product u . v."""
    return deviation_from_supplement(*bend_supplement(cross, c), theta0)


def bend_supplement(
    cross: Float[Array, "*batch 3"], c: Float[Array, "*batch"]
) -> tuple[Float[Array, "*batch"], Float[Array, "*batch"]]:
    """(delta, delta^2) with delta = pi - theta, from u x v and u . v; delta^2 from the
    series of atan(sqrt(x))^2 within ~0.6 degrees of linearity, so it stays smooth there
    (see :func:`bend_deviation`)."""
    s2 = jnp.sum(cross * cross, axis=-1)
    delta = jnp.arctan2(safe_norm(cross), -c)  # pi - theta
    x = s2 / jnp.where(c < 0.0, c * c, 1.0)  # tan^2(delta) when obtuse
    # the series is used only within ~0.6 degrees of linearity; elsewhere delta*delta
    # (dividing by c^2 near 90 degrees would lose precision in the derivatives)
    near_linear = (c < 0.0) & (x < 1e-4)
    xs = jnp.where(near_linear, x, 0.0)
    h_small = 1.0 - 2.0 * xs / 3.0 + 23.0 * xs * xs / 45.0
    return delta, jnp.where(near_linear, xs * h_small, delta * delta)


def deviation_from_supplement(delta, delta_sq, theta0):
    """(theta - theta0, (theta - theta0)^2) = (A - delta, A^2 - 2 A delta + delta^2),
    A = pi - theta0."""
    a = jnp.pi - theta0
    return a - delta, a * a - 2.0 * a * delta + delta_sq


__all__ = [
    "safe_norm",
    "distances",
    "angles",
    "bend_deviation",
    "bend_deviation_from",
    "bend_supplement",
    "deviation_from_supplement",
    "dihedrals",
    "dihedral_from",
    "out_of_plane",
]
