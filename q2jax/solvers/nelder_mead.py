"""Nelder–Mead simplex ("Nelder-Mead") in pure JAX, with optional box bounds.

A simplex of ``n + 1`` vertices, kept sorted so that ``f(x_0) ≤ … ≤ f(x_n)``.
With the centroid ``x̄`` of the best ``n`` vertices, every trial point is
``x(t) = x̄ + t (x̄ − x_n)``: reflection ``t = α``, expansion ``t = α χ``,
outside contraction ``t = α ψ``, inside contraction ``t = −ψ``; a failed
contraction shrinks the simplex towards ``x_0`` by ``σ``. Standard
coefficients ``(α, χ, ψ, σ) = (1, 2, ½, ½)``; the adaptive ones of Gao & Han
(2012), ``(1, 1 + 2/n, ¾ − 1/(2n), 1 − 1/n)``, work better beyond a few
parameters. The same case analysis as SciPy's ``Nelder-Mead``.

Bounds: every trial point (and the initial simplex) is clipped to the box.
A non-finite objective counts as ``+inf``, so the simplex retreats from it.
Stops with ``Status.SUCCESS`` when ``max|x_i − x_0| ≤ xatol`` and
``max|f_i − f_0| ≤ fatol``. ``grad_norm`` is NaN (no gradient is computed).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from q2jax.solvers._common import project
from q2jax.solvers._types import BoolScalar, IntScalar, Matrix, Scalar, Vector
from q2jax.solvers.driver import AbstractSolver, Bounds, Fun, Info
from q2jax.solvers.result import Status


class NelderMeadState(eqx.Module):
    simplex: Matrix
    """``(n + 1, n)`` vertices, best first."""
    fvals: Vector
    """``(n + 1,)`` objective at the vertices (non-finite replaced by ``+inf``)."""
    n_evals: IntScalar


def _safe(f: Scalar) -> Scalar:
    return jnp.where(jnp.isfinite(f), f, jnp.inf)


def _sorted(simplex: Matrix, fvals: Vector) -> tuple[Matrix, Vector]:
    order = jnp.argsort(fvals)
    return simplex[order], fvals[order]


def initial_simplex(x0: Vector, bounds: Bounds, step: Vector | float | None = None) -> Matrix:
    """Vertices ``x0`` and ``x0 + h_i e_i``, clipped to the box.

    Default ``h_i = 0.05 x0_i`` (``0.00025`` where ``x0_i = 0``), as SciPy.
    A vertex that clipping would put back onto ``x0`` steps the other way.
    """
    if step is None:
        h = jnp.where(x0 != 0, 0.05 * x0, 0.00025)
    else:
        h = jnp.broadcast_to(jnp.asarray(step, x0.dtype), x0.shape)
    up = project(x0 + h, bounds)
    down = project(x0 - h, bounds)
    h_eff = jnp.where(up != x0, up - x0, down - x0)
    vertices = x0[None, :] + jnp.diag(h_eff)
    return jnp.concatenate([x0[None, :], vertices], axis=0)


class NelderMead(AbstractSolver):
    """Bounded (by clipping) Nelder–Mead on ``fun(params, args)``.

    Attributes:
        xatol, fatol: simplex-size and value-spread tolerances.
        adaptive: Gao–Han dimension-dependent coefficients.
        initial_step: per-parameter (or scalar) edge of the initial simplex;
            ``None`` for SciPy's 5 % rule.
    """

    xatol: float = 1e-8
    fatol: float = 1e-12
    adaptive: bool = eqx.field(static=True, default=False)
    initial_step: Any = None

    @property
    def method(self) -> str:  # type: ignore[override]
        return "Nelder-Mead"

    def _coefficients(self, n: int) -> tuple[float, float, float, float]:
        if self.adaptive:
            return 1.0, 1.0 + 2.0 / n, 0.75 - 1.0 / (2.0 * n), 1.0 - 1.0 / n
        return 1.0, 2.0, 0.5, 0.5

    def init(self, fun: Fun, params: Vector, args: Any, bounds: Bounds) -> NelderMeadState:
        simplex = initial_simplex(params, bounds, self.initial_step)
        fvals = jax.vmap(lambda x: _safe(fun(x, args)))(simplex)
        # keep x0 first on ties so that params0 is returned when nothing improves
        simplex, fvals = _sorted(simplex, fvals)
        n1 = simplex.shape[0]
        return NelderMeadState(simplex, fvals, jnp.asarray(n1, jnp.int32))

    def start_params(self, params: Vector, state: NelderMeadState) -> Vector:
        return state.simplex[0]

    def step(
        self, fun: Fun, params: Vector, state: NelderMeadState, args: Any, bounds: Bounds
    ) -> tuple[Vector, NelderMeadState]:
        sim, fv = state.simplex, state.fvals
        n = sim.shape[1]
        alpha, chi, psi, sigma = self._coefficients(n)
        f_eval = lambda x: _safe(fun(x, args))  # noqa: E731

        worst, f_worst, f_second = sim[-1], fv[-1], fv[-2]
        xbar = jnp.mean(sim[:-1], axis=0)
        xr = project(xbar + alpha * (xbar - worst), bounds)
        fr = f_eval(xr)

        expand = fr < fv[0]
        accept_r = (fr >= fv[0]) & (fr < f_second)
        outside = (fr >= f_second) & (fr < f_worst)
        inside = fr >= f_worst
        t2 = jnp.where(expand, alpha * chi, jnp.where(outside, alpha * psi, -psi))
        x2 = project(xbar + t2 * (xbar - worst), bounds)
        f2 = jax.lax.cond(~accept_r, f_eval, lambda x: jnp.asarray(jnp.inf, fv.dtype), x2)

        use2 = (expand & (f2 < fr)) | (outside & (f2 <= fr)) | (inside & (f2 < f_worst))
        shrink = (outside & (f2 > fr)) | (inside & (f2 >= f_worst))
        new_x = jnp.where(use2, x2, xr)
        new_f = jnp.where(use2, f2, fr)

        def do_shrink(s: Matrix) -> tuple[Matrix, Vector]:
            shrunk = project(s[0] + sigma * (s - s[0]), bounds)
            shrunk = shrunk.at[0].set(s[0])
            f_new = jax.vmap(f_eval)(shrunk[1:])
            return shrunk, jnp.concatenate([fv[:1], f_new])

        def replace(s: Matrix) -> tuple[Matrix, Vector]:
            return s.at[-1].set(new_x), fv.at[-1].set(new_f)

        sim, fv = jax.lax.cond(shrink, do_shrink, replace, sim)
        sim, fv = _sorted(sim, fv)
        n_evals = state.n_evals + 1 + (~accept_r).astype(jnp.int32) + n * shrink.astype(jnp.int32)
        return sim[0], NelderMeadState(sim, fv, n_evals)

    def terminate(
        self, fun: Fun, params: Vector, state: NelderMeadState, args: Any, bounds: Bounds
    ) -> tuple[BoolScalar, IntScalar]:
        sim, fv = state.simplex, state.fvals
        x_spread = jnp.max(jnp.abs(sim[1:] - sim[0]))
        f_spread = jnp.max(jnp.abs(fv[1:] - fv[0]))
        converged = (x_spread <= self.xatol) & (f_spread <= self.fatol)
        return converged, jnp.asarray(Status.SUCCESS, jnp.int32)

    def info(self, params: Vector, state: NelderMeadState, bounds: Bounds) -> Info:
        return Info(
            value=state.fvals[0],
            grad_norm=jnp.asarray(jnp.nan, state.fvals.dtype),
            n_evals=state.n_evals,
            n_grad_evals=jnp.asarray(0, jnp.int32),
        )


__all__ = ["NelderMead", "NelderMeadState", "initial_simplex"]
