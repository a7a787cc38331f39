"""MM3's reduced hydrogen sites and MacroModel's van der Waals taper.

MM3 puts the van der Waals site of a hydrogen on its bond, at
``x_p + f (x_H - x_p)`` with f = 0.923 (the ``-6`` row's offset -0.077), x_p
the atom it is bonded to. MacroModel's MM3* uses that site for *every* term
of the hydrogen: van der Waals, charges, bends, torsions, and bond lengths
(divided back by f, so a bond to its own parent keeps its real length, while
a bond to another atom, such as the forming C...H bond of a bridging hydride,
does not). Other atoms have f = 1 (site = atom).
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float, Int


def site_coordinates(
    coords: Float[Array, "atoms 3"],
    parent: Int[Array, " atoms"],
    scale: Float[Array, " atoms"],
) -> Float[Array, "atoms 3"]:
    """s_i = x_p(i) + f_i (x_i - x_p(i)), Å (s_i = x_i exactly when p(i) = i or f_i = 1)."""
    xp = coords[parent]
    return xp + scale[:, None] * (coords - xp)


def site_map_transpose(
    h: Float[Array, "atoms 3 atoms 3"],
    parent: Int[Array, " atoms"],
    scale: Float[Array, " atoms"],
) -> Float[Array, "atoms 3 atoms 3"]:
    """A^T H A for the linear map s = A x of :func:`site_coordinates`: a Hessian in
    site coordinates as a Hessian in atom coordinates (exact: the map is linear)."""

    h = site_map_rows(h, parent, scale)
    return jnp.moveaxis(site_map_rows(jnp.moveaxis(h, 2, 0), parent, scale), 0, 2)


def site_map_rows(m: Array, parent: Int[Array, " atoms"], scale: Float[Array, " atoms"]) -> Array:
    """Aᵀ m along the leading (atom) axis of m (the site map s = A x):
    (Aᵀ m)_j = f_j m_j + sum_{i: p(i) = j} (1 - f_i) m_i."""
    w = (1.0 - scale).reshape((-1,) + (1,) * (m.ndim - 1))
    return scale.reshape(w.shape) * m + jnp.zeros_like(m).at[parent].add(w * m)


def vdw_taper(
    r: Float[Array, " n"], r_on: Float[Array, " n"], r_off: Float[Array, " n"]
) -> Float[Array, " n"]:
    """MacroModel's van der Waals taper, a factor on eps: 1 below r_on, 0 beyond r_off,
    (r_off^2 - r^2) / (r_off^2 - r_on^2) between (r the real atom distance, Å).
    r_off = 0 means no taper (factor 1). Continuous; its slope jumps at r_on, r_off.

    (Fitted to the well depths MacroModel prints for every pair of the Rh-enamide
    set, cut-offs 6 and 8 Å, to their 4 printed digits.)"""
    on = r_off > 0.0
    den = jnp.where(on, r_off * r_off - r_on * r_on, 1.0)
    s = jnp.clip((r_off * r_off - r * r) / den, 0.0, 1.0)
    return jnp.where(on, s, 1.0)


__all__ = ["site_coordinates", "site_map_rows", "site_map_transpose", "vdw_taper"]
