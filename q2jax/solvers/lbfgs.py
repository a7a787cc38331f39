"""L-BFGS and L-BFGS-B ("jaxopt:lbfgs", "jaxopt:lbfgsb"): jaxopt's update rules
driven by the q2jax loop (:mod:`q2jax.solvers.driver`).

Quasi-Newton step ``x_{k+1} = x_k + α_k d_k`` with ``d_k = −H_k ∇f(x_k)``,
``H_k`` the limited-memory inverse-Hessian estimate from the last
``history_size`` pairs ``(s, y) = (Δx, Δ∇f)``, ``α_k`` from a zoom (strong
Wolfe) line search. L-BFGS-B (Byrd, Lu, Nocedal, Zhu 1995) adds box bounds via
a generalised Cauchy point and a subspace minimisation.

Converged when the projected-gradient infinity norm ``‖P(x − ∇f) − x‖_∞``
is at most ``tol``; optionally also when the relative decrease
``(f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1)`` is at most ``ftol`` (SciPy's
``ftol``; 0 disables it). A failed line search stops the run with
``Status.LINESEARCH_FAILED``.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import equinox as eqx
import jax.numpy as jnp

with warnings.catch_warnings():  # jaxopt announces it is unmaintained; its L-BFGS-B is used
    warnings.simplefilter("ignore", DeprecationWarning)
    import jaxopt

from q2jax.solvers._common import projected_grad_norm
from q2jax.solvers._types import BoolScalar, IntScalar, Scalar, Vector
from q2jax.solvers.driver import AbstractSolver, Bounds, Fun, Info
from q2jax.solvers.result import Status


class LbfgsState(eqx.Module):
    """jaxopt's state plus the previous objective (for the ``ftol`` test)."""

    inner: NamedTuple
    prev_value: Scalar


class LBFGS(AbstractSolver):
    """L-BFGS (``bounded=False``) or L-BFGS-B (``bounded=True``) on ``fun(params, args)``.

    Attributes:
        tol: projected-gradient infinity-norm tolerance.
        ftol: relative-decrease tolerance (0 disables).
        history_size: number of stored ``(s, y)`` pairs.
        maxls: maximum line-search iterations per step.
        max_stepsize: largest trial step of the line search.
        bounded: use L-BFGS-B (honours ``bounds``) instead of L-BFGS.
    """

    tol: float = 1e-8
    ftol: float = 0.0
    history_size: int = eqx.field(static=True, default=10)
    maxls: int = eqx.field(static=True, default=30)
    max_stepsize: float = 1.0
    linesearch: str = eqx.field(static=True, default="zoom")
    bounded: bool = eqx.field(static=True, default=False)

    @property
    def method(self) -> str:  # type: ignore[override]
        return "jaxopt:lbfgsb" if self.bounded else "jaxopt:lbfgs"

    def _jaxopt(self, fun: Fun) -> Any:
        common = dict(
            fun=fun,
            tol=0.0,
            maxiter=1,
            history_size=self.history_size,
            maxls=self.maxls,
            max_stepsize=self.max_stepsize,
            linesearch=self.linesearch,
            implicit_diff=False,
        )
        return jaxopt.LBFGSB(**common) if self.bounded else jaxopt.LBFGS(**common)

    def init(self, fun: Fun, params: Vector, args: Any, bounds: Bounds) -> LbfgsState:
        solver = self._jaxopt(fun)
        if self.bounded:
            inner = solver.init_state(params, bounds, args)
        else:
            inner = solver.init_state(params, args)
        return LbfgsState(inner=inner, prev_value=jnp.asarray(jnp.inf, inner.value.dtype))

    def step(
        self, fun: Fun, params: Vector, state: LbfgsState, args: Any, bounds: Bounds
    ) -> tuple[Vector, LbfgsState]:
        solver = self._jaxopt(fun)
        if self.bounded:
            new_params, inner = solver.update(params, state.inner, bounds, args)
        else:
            new_params, inner = solver.update(params, state.inner, args)
        return new_params, LbfgsState(inner=inner, prev_value=state.inner.value)

    def terminate(
        self, fun: Fun, params: Vector, state: LbfgsState, args: Any, bounds: Bounds
    ) -> tuple[BoolScalar, IntScalar]:
        inner = state.inner
        gnorm = projected_grad_norm(params, inner.grad, bounds)
        f0, f1 = state.prev_value, inner.value
        scale = jnp.maximum(jnp.maximum(jnp.abs(f0), jnp.abs(f1)), 1.0)
        small_decrease = jnp.isfinite(f0) & ((f0 - f1) <= self.ftol * scale) & (self.ftol > 0)
        converged = (gnorm <= self.tol) | small_decrease
        failed = jnp.asarray(inner.failed_linesearch) & ~converged
        status = jnp.where(converged, Status.SUCCESS, Status.LINESEARCH_FAILED)
        return converged | failed, status.astype(jnp.int32)

    def info(self, params: Vector, state: LbfgsState, bounds: Bounds) -> Info:
        inner = state.inner
        return Info(
            value=inner.value,
            grad_norm=projected_grad_norm(params, inner.grad, bounds),
            n_evals=jnp.asarray(inner.num_fun_eval, jnp.int32),
            n_grad_evals=jnp.asarray(inner.num_grad_eval, jnp.int32),
        )


def lbfgs_solver(bounded: bool = False, **options: Any) -> LBFGS:
    """An :class:`LBFGS` configured from keyword options."""
    return LBFGS(bounded=bounded, **options)


__all__ = ["LBFGS", "LbfgsState", "lbfgs_solver"]
