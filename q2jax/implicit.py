"""Differentiable fits: fitted parameters as a function of the fit's inputs.

``fit_implicit(spec, params0)`` returns p*(spec) = argmin_p loss(p, spec),
differentiable with respect to every array in ``spec`` (reference values,
weights, λ, reference parameters, geometries...) by the implicit function
theorem at the optimality condition ∇_p loss(p*, spec) = 0:

    dp*/dz = −(∇²_p loss)⁻¹ ∂_z ∇_p loss,

via ``jax.lax.custom_root`` (forward and reverse mode). The solver loop is
never unrolled: it runs once, undifferentiated, and a few Newton steps on
∇_p loss polish p* to machine precision so that the implicit derivative is
the derivative of the exact optimum. Pure and jittable; no host callbacks.

The optimum must be an interior stationary point (no active bounds) with a
positive-definite Hessian; parameters pinned by bounds are not supported here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from q2jax import linalg
from q2jax.objective import loss, residuals


def _polish(p, spec, steps: int):
    """Newton steps on ∇loss = 0 (P is small: the dense Hessian is cheap)."""
    grad = jax.grad(loss)
    hess = jax.hessian(loss)

    def body(_, p):
        g = grad(p, spec)
        h = hess(p, spec)
        step = linalg.solve(h + 1e-12 * jnp.trace(h) * jnp.eye(h.shape[0]), g)
        return jnp.where(jnp.all(jnp.isfinite(step)), p - step, p)

    return jax.lax.fori_loop(0, steps, body, p)


def fit_implicit(spec, params0, *, method: str = "lm", maxiter: int = 200, polish_steps: int = 4,
                 **solver_options):
    """Fitted parameters, differentiable in ``spec`` (see the module docstring)."""
    from q2jax.solvers import get_solver
    from q2jax.solvers.driver import run

    solver = get_solver(method, maxiter=maxiter, **solver_options)
    fun = residuals if method == "lm" else loss
    big = jnp.full_like(params0, jnp.inf)

    def optimality(p):
        return jax.grad(loss)(p, spec)

    def solve(_f, p0):
        s = jax.lax.stop_gradient(spec)
        p = run(solver, fun, p0, s, (-big, big), maxiter).params
        return _polish(p, s, polish_steps)

    def tangent_solve(g_lin, y):
        # g_lin is the Hessian-vector product of the loss at p*; P is small
        h = jax.jacfwd(g_lin)(jnp.zeros_like(y))
        return linalg.solve(h, y)

    return jax.lax.custom_root(optimality, params0, solve, tangent_solve)


__all__ = ["fit_implicit"]
