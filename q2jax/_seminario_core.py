# ruff: noqa: F722  (jaxtyping shape strings are not forward references)
"""Seminario projections of a Cartesian Hessian: pure JAX, jittable, vmappable.

Units: Hessian in kcal/(mol Å^2), coordinates in Å. A *curvature* is the
second derivative d2E/dq2 (kcal/(mol Å^2) for bonds, kcal/(mol rad^2) for
angles); q2jax stores ``k = curvature / 2`` because its harmonic energy is
``E = k (q - q0)^2`` (no 1/2). Every function takes an optional boolean
``mask`` over its rows so that padded rows (any atom indices) give 0 and no NaN.
The public functions are jitted (``modified`` static) and work under
``jax.vmap`` over a padded batch of molecules; nothing here is differentiated.

Bond A-B (Seminario 1996): with (λ_i, v_i) the eigenpairs of the 3x3
interatomic block -H_AB (not symmetric, so general ``eig``; complex pairs
give a real sum) and u_AB the unit bond vector,

    k_AB = Σ_i λ_i |u_AB · v_i|,

averaged over the A→B and B→A blocks (H_BA = H_ABᵀ has the same eigenvalues
but other eigenvectors).

Angle A-B-C (B the centre): u_N = unit(u_BC × u_BA) is the plane normal,
u_PA = unit(u_N × u_BA) and u_PC = unit(u_BC × u_N) lie in the plane,
perpendicular to BA and BC. With the outer-centre blocks -H_AB and -H_CB,

    1/k_θ = 1/(R_AB^2 Σ λ_i^AB |u_PA·v_i^AB|) + 1/(R_CB^2 Σ λ_i^CB |u_PC·v_i^CB|).

Modified Seminario (Allen, Payne, Cole, J. Chem. Theory Comput. 2018, 14,
274): the AB sum is divided by f_A = 1 + mean_j |u_PA · u_PA(j)|^2 over the
other angles A-B-X_j of the same list (same centre B, sharing bond BA),
u_PA(j) the in-plane perpendicular to BA in plane A-B-X_j; f_A = 1 when BA
is in no other angle (and likewise f_C for the CB side). A linear angle has
no plane; an arbitrary perpendicular one is used (its bend is degenerate).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from q2jax.units import RAD_TO_DEG

_LINEAR_SIN = 1e-8  # |u_BA × u_BC| below this: treat the angle as linear
_EX = jnp.array([1.0, 0.0, 0.0])
_EY = jnp.array([0.0, 1.0, 0.0])


def interatomic_blocks(hessian: Float[Array, "n3 n3"]) -> Float[Array, "n n 3 3"]:
    """H reshaped so that ``blocks[a, b]`` is the 3x3 block d2E/dx_a dx_b."""
    n = hessian.shape[-1] // 3
    return jnp.swapaxes(hessian.reshape(n, 3, n, 3), 1, 2)


def projected_curvature(
    block: Float[Array, "... 3 3"], direction: Float[Array, "... 3"]
) -> Float[Array, " ..."]:
    """Σ_i λ_i |d · v_i| over the eigenpairs (λ_i, v_i) of ``-block`` (unit
    ``direction`` d): the Seminario curvature along d, units of the block."""
    lam, vec = jnp.linalg.eig(-block)
    overlap = jnp.abs(jnp.einsum("...i,...ik->...k", direction.astype(vec.dtype), vec))
    return jnp.real(jnp.sum(lam * overlap, axis=-1))


def _unit(v: Array) -> Array:
    return v / jnp.linalg.norm(v, axis=-1, keepdims=True)


def in_plane_perpendiculars(d_ba: Float[Array, "... 3"], d_bc: Float[Array, "... 3"]):
    """(u_BA, u_BC, u_PA, u_PC) for the angle with centre B, from the vectors
    B→A and B→C: u_PA ⟂ BA and u_PC ⟂ BC, both in the plane ABC."""
    u_a, u_c = _unit(d_ba), _unit(d_bc)
    normal = jnp.cross(u_c, u_a)
    sin = jnp.linalg.norm(normal, axis=-1, keepdims=True)
    ref = jnp.where(jnp.abs(u_a[..., :1]) < 0.9, _EX, _EY)
    normal = _unit(jnp.where(sin > _LINEAR_SIN, normal, jnp.cross(u_a, ref)))
    return u_a, u_c, _unit(jnp.cross(normal, u_a)), _unit(jnp.cross(u_c, normal))


@jax.jit
def seminario_bond_curvature(
    hessian: Float[Array, "n3 n3"],
    coords: Float[Array, "n 3"],
    bonds: Int[Array, "nb 2"],
    mask: Bool[Array, " nb"] | None = None,
) -> tuple[Float[Array, " nb"], Float[Array, " nb"]]:
    """(d2E/dr2 by Seminario projection, r) per bond; units of ``hessian`` and Å."""
    a, b = bonds[:, 0], bonds[:, 1]
    d = coords[b] - coords[a]
    if mask is not None:
        d = jnp.where(mask[:, None], d, _EX)
    r = jnp.linalg.norm(d, axis=-1)
    u = d / r[:, None]
    blocks = interatomic_blocks(hessian)
    curv = 0.5 * (projected_curvature(blocks[a, b], u) + projected_curvature(blocks[b, a], u))
    if mask is not None:
        curv, r = jnp.where(mask, curv, 0.0), jnp.where(mask, r, 0.0)
    return curv, r


@jax.jit
def seminario_bond_k(
    hessian: Float[Array, "n3 n3"],
    coords: Float[Array, "n 3"],
    bonds: Int[Array, "nb 2"],
    mask: Bool[Array, " nb"] | None = None,
) -> tuple[Float[Array, " nb"], Float[Array, " nb"]]:
    """Bond (k, r0): k = curvature/2 in kcal/(mol Å^2) for E = k (r - r0)^2
    (Hessian in kcal/(mol Å^2)), r0 the bond length in Å. Unscaled."""
    curv, r = seminario_bond_curvature(hessian, coords, bonds, mask)
    return 0.5 * curv, r


def _angle_vectors(coords, angles, mask):
    a, b, c = angles[:, 0], angles[:, 1], angles[:, 2]
    d_ba, d_bc = coords[a] - coords[b], coords[c] - coords[b]
    if mask is not None:
        d_ba = jnp.where(mask[:, None], d_ba, _EX)
        d_bc = jnp.where(mask[:, None], d_bc, _EY)
    return d_ba, d_bc


def _side_scaling(coords, angles, valid, outer, centre_to_outer, perp):
    """f = 1 + mean |perp · u_P(j)|^2 over the other angles of the list that
    share the bond centre→``outer`` (see the module docstring)."""
    first, centre, last = angles[:, 0], angles[:, 1], angles[:, 2]
    n = angles.shape[0]
    pair = valid[:, None] & valid[None, :] & (centre[:, None] == centre[None, :])
    pair = pair & ~jnp.eye(n, dtype=bool)
    hit_first = pair & (first[None, :] == outer[:, None])
    hit_last = pair & (last[None, :] == outer[:, None])
    share = hit_first | hit_last
    other = jnp.where(hit_first, last[None, :], first[None, :])  # X_j of angle j
    d_bx = coords[other] - coords[centre][:, None, :]
    d_bo = jnp.broadcast_to(centre_to_outer[:, None, :], d_bx.shape)
    d_bx = jnp.where(share[..., None], d_bx, d_bo)  # unused rows: a finite (linear) dummy
    _, _, perp_j, _ = in_plane_perpendiculars(d_bo, d_bx)
    dots2 = jnp.sum(perp[:, None, :] * perp_j, axis=-1) ** 2
    count = jnp.sum(share, axis=1)
    total = jnp.sum(jnp.where(share, dots2, 0.0), axis=1)
    return 1.0 + jnp.where(count > 0, total / jnp.maximum(count, 1), 0.0)


@functools.partial(jax.jit, static_argnames="modified")
def seminario_angle_curvature(
    hessian: Float[Array, "n3 n3"],
    coords: Float[Array, "n 3"],
    angles: Int[Array, "na 3"],
    modified: bool = True,
    mask: Bool[Array, " na"] | None = None,
) -> tuple[Float[Array, " na"], Float[Array, " na"]]:
    """(d2E/dθ2, θ in degrees) per angle A-B-C (rows ``[A, B, C]``, B the
    centre). Curvature in (Hessian energy unit)/rad^2. ``modified`` (static)
    selects Allen et al.'s scaling by the other angles of ``angles`` that
    share a bond (so pass every angle of the molecule)."""
    a, b, c = angles[:, 0], angles[:, 1], angles[:, 2]
    d_ba, d_bc = _angle_vectors(coords, angles, mask)
    u_a, u_c, p_a, p_c = in_plane_perpendiculars(d_ba, d_bc)
    blocks = interatomic_blocks(hessian)
    s_a = projected_curvature(blocks[a, b], p_a)
    s_c = projected_curvature(blocks[c, b], p_c)
    if modified:
        valid = jnp.ones(a.shape, bool) if mask is None else mask
        s_a = s_a / _side_scaling(coords, angles, valid, a, d_ba, p_a)
        s_c = s_c / _side_scaling(coords, angles, valid, c, d_bc, p_c)
    x = jnp.sum(d_ba * d_ba, axis=-1) * s_a
    y = jnp.sum(d_bc * d_bc, axis=-1) * s_c
    curv = x * y / (x + y)  # 1/k = 1/x + 1/y, two springs in series
    theta = jnp.arccos(jnp.clip(jnp.sum(u_a * u_c, axis=-1), -1.0, 1.0)) * RAD_TO_DEG
    if mask is not None:
        curv, theta = jnp.where(mask, curv, 0.0), jnp.where(mask, theta, 0.0)
    return curv, theta


@functools.partial(jax.jit, static_argnames="modified")
def seminario_angle_k(
    hessian: Float[Array, "n3 n3"],
    coords: Float[Array, "n 3"],
    angles: Int[Array, "na 3"],
    modified: bool = True,
    mask: Bool[Array, " na"] | None = None,
) -> tuple[Float[Array, " na"], Float[Array, " na"]]:
    """Angle (k, θ0): k = curvature/2 in kcal/(mol rad^2) for E = k (θ - θ0)^2
    (Hessian in kcal/(mol Å^2), coordinates in Å), θ0 in degrees. Unscaled."""
    curv, theta = seminario_angle_curvature(hessian, coords, angles, modified, mask)
    return 0.5 * curv, theta


@jax.jit
def replace_ts_curvature(
    hessian: Float[Array, "n3 n3"], replacement: float | Array
) -> Float[Array, "n3 n3"]:
    """Limé–Norrby Method C on a Cartesian Hessian: the most negative
    eigenvalue (the reaction coordinate of a first-order saddle) becomes
    ``replacement`` and any other negative eigenvalue becomes 0."""
    w, v = jnp.linalg.eigh(0.5 * (hessian + hessian.T))
    low = jnp.argmin(w)
    w = jnp.where(w < 0.0, 0.0, w).at[low].set(replacement)
    return (v * w) @ v.T


__all__ = [
    "interatomic_blocks",
    "projected_curvature",
    "in_plane_perpendiculars",
    "seminario_bond_curvature",
    "seminario_bond_k",
    "seminario_angle_curvature",
    "seminario_angle_k",
    "replace_ts_curvature",
]
