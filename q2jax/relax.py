"""Differentiable MM geometry relaxation.

``relax`` finds a stationary point x* of the MM energy E(x; θ) by a
trust-region Newton method in the space orthogonal to rigid-body motions
(eigenvector following: a minimum for ``saddle_order=0``, a first-order saddle
for ``saddle_order=1``), inside ``lax.while_loop``. Its derivative with
respect to the force-field parameters comes from the implicit function
theorem at the solution, ∂x*/∂θ = −H⁻¹ ∂²E/∂x∂θ (``lax.custom_root``;
forward and reverse mode), never from unrolling the iterations.
Units: Å, kcal/mol.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from q2jax import linalg
from q2jax.energy import energy, hessian
from q2jax.forcefield import Settings
from q2jax.system import Terms
from q2jax.vibrations import internal_projector


class RelaxOptions(NamedTuple):
    """Static relaxation settings."""

    max_steps: int = 200
    gtol: float = 1e-7  # kcal/(mol Å): largest Cartesian gradient component at convergence
    trust_radius: float = 0.2  # Å, initial step cap (norm of the whole step)
    max_trust: float = 0.5
    min_curvature: float = 1e-2  # floor of |eigenvalue| in the Newton step, kcal/(mol Å^2)
    max_displacement: float = 3.0  # Å: give up (not converged) if any atom moves further


class RelaxResult(NamedTuple):
    coords: Float[Array, "n 3"]
    energy: Float[Array, ""]
    max_force: Float[Array, ""]  # kcal/(mol Å)
    n_steps: Array
    converged: Bool[Array, ""]


def _projector(coords, atom_mask):
    # Cartesian (unit-mass) projector onto internal motions of the real atoms
    return internal_projector(coords, jnp.ones(coords.shape[0]), atom_mask)


def _newton_step(grad_flat, hess, proj, trust, saddle_order, opts: RelaxOptions):
    """Eigenvector-following step in the internal space, capped at ``trust``."""
    n = grad_flat.shape[0]
    h = proj @ hess @ proj
    h = 0.5 * (h + h.T)
    bound = jax.lax.stop_gradient(jnp.max(jnp.sum(jnp.abs(h), axis=1)))
    h = h + (10.0 * bound + 1.0) * (jnp.eye(n) - proj)
    w, v = linalg.eigh(h)
    g = v.T @ (proj @ grad_flat)
    mag = jnp.maximum(jnp.abs(w), opts.min_curvature)
    order = jnp.arange(n)
    # uphill along the lowest `saddle_order` modes, downhill along the rest
    sign = jnp.where(order < saddle_order, -1.0, 1.0)
    step = -(v @ (g / (sign * mag)))
    norm = jnp.linalg.norm(step)
    return step * jnp.minimum(1.0, trust / jnp.maximum(norm, 1e-300))


def _solve_stationary(e_fn, h_fn, coords0, atom_mask, saddle_order, opts: RelaxOptions):
    """Trust-region eigenvector following; returns (coords, n_steps).
    ``e_fn(x)`` is the energy, ``h_fn(x)`` the (3N, 3N) Hessian. Each step
    costs one Hessian and one energy-and-gradient evaluation (the energy
    function is traced twice in all, which keeps compilation small)."""
    shape = coords0.shape
    mask3 = jnp.repeat(atom_mask, 3)

    def value_and_grad(xf):
        e, g = jax.value_and_grad(e_fn)(xf.reshape(shape))
        g = jnp.where(mask3, g.reshape(-1), 0.0)
        # merit: energy for minima, squared gradient for saddles (saddle_order may be traced)
        return jnp.where(saddle_order == 0, e, jnp.sum(g * g)), g

    x0 = coords0.reshape(-1)

    def cond(state):
        xf, _, g, trust, it = state
        gmax = jnp.max(jnp.abs(g))
        moved = jnp.max(jnp.linalg.norm((xf - x0).reshape(shape), axis=1))
        return (
            (gmax > opts.gtol)
            & (it < opts.max_steps)
            & (trust > 1e-12)
            & jnp.isfinite(gmax)
            & (moved < opts.max_displacement)
        )

    def body(state):
        xf, m, g, trust, it = state
        h = h_fn(xf.reshape(shape))
        proj = _projector(xf.reshape(shape), atom_mask)
        step = _newton_step(g, h, proj, trust, saddle_order, opts)
        x_new = xf + step
        m_new, g_new = value_and_grad(x_new)
        # accept downhill moves (minimum) or moves that shrink |g| (saddle); near
        # convergence round-off makes the merit flat, so accept tiny steps too
        ok = jnp.isfinite(m_new) & (
            (m_new <= m + 1e-12 * (1.0 + jnp.abs(m))) | (jnp.linalg.norm(step) < 1e-6)
        )
        xf = jnp.where(ok, x_new, xf)
        m = jnp.where(ok, m_new, m)
        g = jnp.where(ok, g_new, g)
        full = jnp.linalg.norm(step) >= 0.99 * trust
        trust = jnp.where(
            ok, jnp.where(full, jnp.minimum(2.0 * trust, opts.max_trust), trust), 0.25 * trust
        )
        return xf, m, g, trust, it + 1

    m0, g0 = value_and_grad(x0)
    state0 = (x0, m0, g0, jnp.asarray(opts.trust_radius, x0.dtype), jnp.asarray(0))
    xf, _, _, _, it = jax.lax.while_loop(cond, body, state0)
    return xf.reshape(shape), it


def relax(
    full_params: Float[Array, " p_all"],
    coords0: Float[Array, "n 3"],
    terms: Terms,
    atom_mask: Bool[Array, " n"] | None = None,
    form: str = "harmonic",
    settings: Settings = Settings(),
    options: RelaxOptions = RelaxOptions(),
    saddle_order: int | Array = 0,
) -> RelaxResult:
    """Relax ``coords0`` to a stationary point of the MM energy.

    ``saddle_order`` (may be traced, e.g. per molecule under vmap) is the
    number of negative-curvature directions sought: 0 for a minimum, 1 for a
    transition state. Differentiable in ``full_params`` by implicit
    differentiation; vmappable.
    Check ``converged`` / ``max_force``: a geometry that did not converge is
    reported, not hidden.
    """
    if atom_mask is None:
        atom_mask = jnp.ones(coords0.shape[0], bool)
    shape = coords0.shape
    mask3 = jnp.repeat(atom_mask, 3)

    def e_fn(x, p):
        return energy(p, x, terms, form, settings)

    def f(xf):
        # closes over full_params: custom_root differentiates through it
        g = jax.grad(e_fn)(xf.reshape(shape), full_params).reshape(-1)
        return jnp.where(mask3, g, 0.0)

    # Undifferentiated solve; custom_root then supplies the implicit derivative.
    p_const = jax.lax.stop_gradient(full_params)
    x_pre, it = _solve_stationary(
        lambda y: e_fn(y, p_const),
        lambda y: hessian(p_const, y, terms, form, settings),
        jax.lax.stop_gradient(coords0),
        atom_mask,
        jnp.asarray(saddle_order),
        options,
    )
    x_star = jax.lax.stop_gradient(x_pre.reshape(-1))
    proj = _projector(x_pre, atom_mask)

    # The linearised root function is the Hessian at the solution; it is assembled
    # once from the per-term Hessians instead of differentiating the gradient again.
    h_star = hessian(p_const, x_pre, terms, form, settings)
    m3 = mask3.astype(h_star.dtype)
    n3 = h_star.shape[0]
    h_int = proj @ (h_star * m3[:, None] * m3[None, :]) @ proj + (jnp.eye(n3) - proj)

    def tangent_solve(_g_lin, y):
        # H dx = y restricted to internal motions (H is singular along rigid motions)
        return proj @ linalg.solve(h_int, proj @ y)

    xf = jax.lax.custom_root(f, x_star, lambda _f, _x: x_star, tangent_solve)
    x = xf.reshape(shape)
    grad = jax.grad(e_fn)(x, full_params)
    gmax = jnp.max(jnp.where(atom_mask[:, None], jnp.abs(grad), 0.0))
    return RelaxResult(
        coords=x,
        energy=e_fn(x, full_params),
        max_force=jax.lax.stop_gradient(gmax),
        n_steps=it,
        converged=jax.lax.stop_gradient(gmax) <= 10.0 * options.gtol,
    )


__all__ = ["RelaxOptions", "RelaxResult", "relax"]
