"""BFGS from optimistix ("optimistix:bfgs"), unbounded.

Optimistix's BFGS (dense inverse-Hessian update, Newton descent, backtracking
Armijo search) driven by the q2jax loop. Each driver iteration
is one optimistix step, i.e. one trial point of the line search and one
value-and-gradient evaluation; ``history`` records the accepted objective.
It compiles several times faster than the jaxopt solvers (no zoom line
search), which matters when many specs or starts are compiled. (optimistix
0.1.0's ``LBFGS`` is not offered: it stalls on the 2-D Rosenbrock function.)

Converged when the gradient infinity norm at the accepted point is at most
``tol``, or when optimistix's own test (relative/absolute changes of ``y``
and ``f`` below ``rtol`` / ``atol``) fires; an optimistix failure code ends
the run with ``Status.STAGNATION``.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx

from q2jax.solvers._common import projected_grad_norm
from q2jax.solvers._types import BoolScalar, IntScalar, Vector
from q2jax.solvers.driver import AbstractSolver, Bounds, Fun, Info
from q2jax.solvers.result import Status


class OptxState(eqx.Module):
    inner: Any
    n_evals: IntScalar


def _with_aux(fun: Fun) -> Any:
    def fn(y: Vector, args: Any) -> tuple[Any, None]:
        return fun(y, args), None

    return fn


class OptimistixBFGS(AbstractSolver):
    """optimistix BFGS; ``tol`` on the gradient, ``rtol`` / ``atol`` for optimistix's test."""

    tol: float = 1e-8
    rtol: float = 1e-12
    atol: float = 1e-14

    @property
    def method(self) -> str:  # type: ignore[override]
        return "optimistix:bfgs"

    def _optx(self) -> Any:
        return optx.BFGS(rtol=self.rtol, atol=self.atol)

    def init(self, fun: Fun, params: Vector, args: Any, bounds: Bounds) -> OptxState:
        solver, fn = self._optx(), _with_aux(fun)
        f_struct = jax.ShapeDtypeStruct((), params.dtype)
        inner = solver.init(fn, params, args, {}, f_struct, None, frozenset())
        # optimistix evaluates y0 in its first step: take it now so the state holds f(y0)
        _, inner, _ = solver.step(fn, params, args, {}, inner, frozenset())
        return OptxState(inner=inner, n_evals=jnp.asarray(1, jnp.int32))

    def step(
        self, fun: Fun, params: Vector, state: OptxState, args: Any, bounds: Bounds
    ) -> tuple[Vector, OptxState]:
        new, inner, _ = self._optx().step(
            _with_aux(fun), params, args, {}, state.inner, frozenset()
        )
        return new, OptxState(inner=inner, n_evals=state.n_evals + 1)

    def terminate(
        self, fun: Fun, params: Vector, state: OptxState, args: Any, bounds: Bounds
    ) -> tuple[BoolScalar, IntScalar]:
        inner = state.inner
        small_grad = projected_grad_norm(params, inner.f_info.grad, bounds) <= self.tol
        ok = inner.result == optx.RESULTS.successful
        done = small_grad | inner.terminate
        status = jnp.where(small_grad | ok, Status.SUCCESS, Status.STAGNATION)
        return done, status.astype(jnp.int32)

    def info(self, params: Vector, state: OptxState, bounds: Bounds) -> Info:
        f_info = state.inner.f_info
        return Info(
            value=f_info.f,
            grad_norm=projected_grad_norm(params, f_info.grad, bounds),
            n_evals=state.n_evals,
            n_grad_evals=state.n_evals,
        )


__all__ = ["OptimistixBFGS", "OptxState"]
