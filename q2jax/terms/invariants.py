"""Polynomial invariants of a term's bond vectors, and the chain rule through them.

A bonded term over k atoms sees its geometry through a few bond vectors
b = V x (V a fixed nb x k matrix of +-1, so b is translation invariant) and,
through those, through a few polynomials of degree 2 or 3 in b: dot products
b_p . b_q, cross-product components (b_p x b_q)_i and the triple product
b_p . (b_q x b_r). From these it forms 1-3 internal coordinates q(I) (bond
lengths, bend angles, dihedrals), and its energy is e = potential(q, theta).
Because the polynomials have fixed coefficient tensors (I_m = bᵀ M_m b, or
W_m[b, b, b]), their derivatives are exact and cheap:

    ∇I_m = 2 M_m b,  ∇²I_m = 2 M_m          (quadratic)
    ∇I_m = 3 W_m b b, ∇²I_m = 6 W_m b       (cubic)

and by the chain rule, with G = ∂I/∂x,

    ∇e = Σ_m F1_m ∇I_m,   ∇²e = Gᵀ F2 G + Σ_m F1_m ∇²I_m,
    F1 = e_qᵀ ∂q/∂I,   F2 = (∂q/∂I)ᵀ e_qq (∂q/∂I) + Σ_k e_q,k ∂²q_k/∂I²,

exactly the derivatives of the composition. Only e_q and e_qq (a few scalars
per term) depend on the parameters, so the parameter derivative of the
Hessian is cheap; batched over terms, the tensor contractions are matrix
products with fixed matrices.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

_LEVI_CIVITA = np.zeros((3, 3, 3))
for _i, _j, _k in itertools.permutations(range(3)):
    _LEVI_CIVITA[_i, _j, _k] = np.linalg.det(np.eye(3)[[_i, _j, _k]])


class Invariants(NamedTuple):
    """Polynomials in the bond vectors b = V x of a k-atom term (static numpy tensors).

    ``vectors`` V (nb, k); ``quadratic`` (m2, 3nb, 3nb), symmetric, I = bᵀ M b;
    ``cubic`` (m3, 3nb, 3nb, 3nb), symmetric, I = W[b, b, b] (b flattened as
    (vector, xyz)). The invariant vector is [quadratic..., cubic...]."""

    vectors: np.ndarray
    quadratic: np.ndarray
    cubic: np.ndarray

    @property
    def n_invariants(self) -> int:
        return self.quadratic.shape[0] + self.cubic.shape[0]


def dot(nb: int, p: int, q: int) -> np.ndarray:
    """M with bᵀ M b = b_p . b_q."""
    m = np.zeros((nb, 3, nb, 3))
    for i in range(3):
        m[p, i, q, i] += 0.5
        m[q, i, p, i] += 0.5
    return m.reshape(3 * nb, 3 * nb)


def cross(nb: int, p: int, q: int) -> list[np.ndarray]:
    """[M_x, M_y, M_z] with bᵀ M_i b = (b_p x b_q)_i."""
    out = []
    for i in range(3):
        m = np.zeros((nb, 3, nb, 3))
        m[p, :, q, :] += 0.5 * _LEVI_CIVITA[i]
        m[q, :, p, :] += 0.5 * _LEVI_CIVITA[i].T
        out.append(m.reshape(3 * nb, 3 * nb))
    return out


def triple(nb: int, p: int, q: int, r: int) -> np.ndarray:
    """Symmetric W with W[b, b, b] = b_p . (b_q x b_r)."""
    w = np.zeros((nb, 3, nb, 3, nb, 3))
    slots = (p, q, r)
    for perm in itertools.permutations(range(3)):
        # slot perm[s] of the product sits at tensor position s
        eps = np.transpose(_LEVI_CIVITA, np.argsort(perm))
        w[slots[perm[0]], :, slots[perm[1]], :, slots[perm[2]], :] += eps / 6.0
    return w.reshape(3 * nb, 3 * nb, 3 * nb)


def invariants(vectors, quadratic=(), cubic=()) -> Invariants:
    v = np.asarray(vectors, float)
    n = 3 * v.shape[0]
    quad = np.asarray(quadratic, float).reshape(-1, n, n)
    cub = np.asarray(cubic, float).reshape(-1, n, n, n)
    return Invariants(v, quad, cub)


def _bond_vectors(inv: Invariants, x: Array) -> Array:
    """b (terms, 3nb) from local coordinates x (terms, k, 3)."""
    b = jnp.einsum("ak,tki->tai", jnp.asarray(inv.vectors, x.dtype), x)
    return b.reshape(x.shape[0], -1)


def values(inv: Invariants, x: Float[Array, "t k 3"]) -> Float[Array, "t m"]:
    """The invariants of each term, (terms, m)."""
    b = _bond_vectors(inv, x)
    out = []
    if inv.quadratic.shape[0]:
        out.append(jnp.einsum("tp,mpq,tq->tm", b, jnp.asarray(inv.quadratic, x.dtype), b))
    if inv.cubic.shape[0]:
        w = jnp.asarray(inv.cubic, x.dtype)
        out.append(jnp.einsum("mpqr,tp,tq,tr->tm", w, b, b, b))
    return jnp.concatenate(out, axis=-1)


def _gradients_b(inv: Invariants, b: Array) -> tuple[Array, Array | None]:
    """(∂I/∂b (terms, m, 3nb), cubic W b (terms, m3, 3nb, 3nb) or None)."""
    out, wb = [], None
    if inv.quadratic.shape[0]:
        out.append(2.0 * jnp.einsum("mpq,tq->tmp", jnp.asarray(inv.quadratic, b.dtype), b))
    if inv.cubic.shape[0]:
        wb = jnp.einsum("mpqr,tr->tmpq", jnp.asarray(inv.cubic, b.dtype), b)
        out.append(3.0 * jnp.einsum("tmpq,tq->tmp", wb, b))
    return jnp.concatenate(out, axis=1), wb


def _value_jacobian_hessian(fn, z, *args):
    """fn(z, *args), its Jacobian and Hessian in z, by forward mode (z has 1-8 entries)."""

    def first(y):
        jac, val = jax.jacfwd(lambda w: (fn(w, *args),) * 2, has_aux=True)(y)
        return jac, (jac, val)

    hess, (jac, val) = jax.jacfwd(first, has_aux=True)(z)
    return val, jac, hess


def _chain(internal, potential, i_val, theta):
    """(F1, F2) = first and second derivatives of potential(internal(I), theta) in I."""

    def one(i, th):
        q, q1, q2 = _value_jacobian_hessian(internal, i)  # geometry only
        _, e1, e2 = _value_jacobian_hessian(potential, q, th)
        f1 = e1 @ q1
        f2 = q1.T @ e2 @ q1 + jnp.einsum("k,kmn->mn", e1, q2)
        return f1, f2

    return jax.vmap(one)(i_val, theta)


def _chain_at(inv: Invariants, internal, potential, x, theta):
    """What :func:`local_hessians` and :func:`local_gradients` share: the bond map
    v3 (3nb, 3k) with b = v3 x (NumPy), the bond vectors b (t, 3nb), the invariants'
    atom-space gradients ∇I (t, m, 3k) and (F1, F2) from :func:`_chain`."""
    v3 = np.kron(inv.vectors, np.eye(3))
    b = _bond_vectors(inv, x)
    g_b, _ = _gradients_b(inv, b)
    i_val = jnp.einsum("tmp,tp->tm", g_b, b) * _degree_weights(inv, x.dtype)
    f1, f2 = _chain(internal, potential, i_val, theta)
    g_x = jnp.einsum("tmp,px->tmx", g_b, jnp.asarray(v3, x.dtype))
    return v3, b, g_x, f1, f2


def local_hessians(
    inv: Invariants,
    internal: Callable[[Array], Array],
    potential: Callable[[Array, Array], Array],
    x: Float[Array, "t k 3"],
    theta: Float[Array, "t p"],
) -> Float[Array, "t k 3 k 3"]:
    """Hessians of e = potential(internal(I(x)), theta) for a batch of terms:
    Gᵀ F2 G + Σ_m F1_m ∇²I_m (module docstring), the second term from the fixed tensors
    Vᵀ M V and Vᵀ W V (atom coordinates) as matrix products."""
    t, k, _ = x.shape
    v3, b, g_x, f1, f2 = _chain_at(inv, internal, potential, x, theta)
    h = jnp.einsum("tma,tmn,tnb->tab", g_x, f2, g_x).reshape(t, -1)
    m2 = inv.quadratic.shape[0]
    if m2:
        quad_x = np.einsum("pa,mpq,qb->mab", v3, inv.quadratic, v3).reshape(m2, -1)
        h = h + 2.0 * f1[:, :m2] @ jnp.asarray(quad_x, x.dtype)
    if inv.cubic.shape[0]:
        cubic_x = np.einsum("pa,mpqr,qb->mrab", v3, inv.cubic, v3).reshape(-1, (3 * k) ** 2)
        f1_b = (f1[:, m2:, None] * b[:, None, :]).reshape(t, -1)  # ∇²W[b,b,b] = 6 W b
        h = h + 6.0 * f1_b @ jnp.asarray(cubic_x, x.dtype)
    return h.reshape(t, k, 3, k, 3)


def local_gradients(
    inv: Invariants,
    internal: Callable[[Array], Array],
    potential: Callable[[Array, Array], Array],
    x: Float[Array, "t k 3"],
    theta: Float[Array, "t p"],
) -> Float[Array, "t k 3"]:
    """Gradients of e = potential(internal(I(x)), theta) for a batch of terms: Σ_m F1_m ∇I_m
    (the same intermediate values as :func:`local_hessians`, so that a program computing both
    computes them once)."""
    t, k, _ = x.shape
    _, _, g_x, f1, _ = _chain_at(inv, internal, potential, x, theta)
    return jnp.einsum("tm,tmx->tx", f1, g_x).reshape(t, k, 3)


def _degree_weights(inv: Invariants, dtype) -> Array:
    """I = (∇I . b) / degree (Euler's theorem for homogeneous polynomials)."""
    w = np.concatenate([np.full(inv.quadratic.shape[0], 0.5), np.full(inv.cubic.shape[0], 1 / 3)])
    return jnp.asarray(w, dtype)


__all__ = [
    "Invariants",
    "invariants",
    "dot",
    "cross",
    "triple",
    "values",
    "local_hessians",
    "local_gradients",
]
