"""Basin hopping (Wales & Doye 1997), pure JAX, any q2jax local solver.

Start: a local minimisation of ``x0``. Each hop: displace the current
minimum ``x`` uniformly, ``x' = P(x + u)`` with ``u_i ~ U(−s_i, s_i)``
(``s`` = ``stepsize``, scalar or per parameter; ``P`` clips to the box),
minimise locally from ``x'`` to ``x*``, and accept ``x*`` as the new current
point with the Metropolis probability ``min(1, exp(−(f(x*) − f(x)) / T))``
(``T = 0``: only improvements). The best minimum seen is returned.

One hop is one iteration of the driver, so ``history`` holds the best value
after each hop. Stops after ``niter`` hops (``Status.SUCCESS`` if the best
local minimisation converged, else its status), or earlier when the best has
not improved for ``niter_success`` hops. Random numbers come from
``jax.random.key(seed)``: same seed, same run.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from q2jax.solvers._common import project
from q2jax.solvers._types import BoolScalar, IntScalar, Scalar, Vector
from q2jax.solvers.driver import AbstractSolver, Bounds, Fun, Info, run
from q2jax.solvers.result import SolverResult


class BasinHoppingState(eqx.Module):
    current: Vector
    current_value: Scalar
    best_value: Scalar
    best_grad_norm: Scalar
    best_status: IntScalar
    key: Any
    hops: IntScalar
    since_best: IntScalar
    n_accepted: IntScalar
    n_evals: IntScalar
    n_grad_evals: IntScalar


def _value(r: SolverResult) -> Scalar:
    return jnp.where(jnp.isfinite(r.value), r.value, jnp.inf)


class BasinHopping(AbstractSolver):
    """Basin hopping around ``local`` (any :class:`AbstractSolver` on a scalar ``fun``).

    Attributes:
        local: the local minimiser; ``local_maxiter`` its iteration budget.
        niter: number of hops.
        temperature: Metropolis temperature ``T`` (objective units).
        stepsize: displacement half-width (parameter units; scalar or vector).
        seed: PRNG seed.
        niter_success: stop after this many hops without a new best (0: never).
    """

    local: AbstractSolver
    local_maxiter: int = eqx.field(static=True, default=200)
    niter: int = eqx.field(static=True, default=100)
    temperature: float = 1.0
    stepsize: Any = 0.5
    seed: int = 0
    niter_success: int = eqx.field(static=True, default=0)

    @property
    def method(self) -> str:  # type: ignore[override]
        return f"basinhopping:{self.local.method}"

    def _local(self, fun: Fun, x: Vector, args: Any, bounds: Bounds) -> SolverResult:
        return run(self.local, fun, x, args, bounds, self.local_maxiter)

    def init(self, fun: Fun, params: Vector, args: Any, bounds: Bounds) -> BasinHoppingState:
        r = self._local(fun, params, args, bounds)
        zero = jnp.asarray(0, jnp.int32)
        return BasinHoppingState(
            current=r.params,
            current_value=_value(r),
            best_value=_value(r),
            best_grad_norm=r.grad_norm,
            best_status=r.status,
            key=jax.random.key(self.seed),
            hops=zero,
            since_best=zero,
            n_accepted=zero,
            n_evals=r.n_evals,
            n_grad_evals=r.n_grad_evals,
        )

    def start_params(self, params: Vector, state: BasinHoppingState) -> Vector:
        return state.current

    def step(
        self, fun: Fun, params: Vector, state: BasinHoppingState, args: Any, bounds: Bounds
    ) -> tuple[Vector, BasinHoppingState]:
        key, k_step, k_accept = jax.random.split(state.key, 3)
        s = jnp.broadcast_to(jnp.asarray(self.stepsize, params.dtype), params.shape)
        u = jax.random.uniform(k_step, params.shape, params.dtype, -1.0, 1.0) * s
        r = self._local(fun, project(state.current + u, bounds), args, bounds)
        f_new, f_cur = _value(r), state.current_value
        t = jnp.asarray(self.temperature, params.dtype)
        boltzmann = jnp.exp(-(f_new - f_cur) / jnp.where(t > 0, t, 1.0))
        metropolis = (t > 0) & (jax.random.uniform(k_accept, (), params.dtype) < boltzmann)
        accept = jnp.isfinite(f_new) & ((f_new < f_cur) | metropolis)
        better = f_new < state.best_value
        new_state = BasinHoppingState(
            current=jnp.where(accept, r.params, state.current),
            current_value=jnp.where(accept, f_new, f_cur),
            best_value=jnp.where(better, f_new, state.best_value),
            best_grad_norm=jnp.where(better, r.grad_norm, state.best_grad_norm),
            best_status=jnp.where(better, r.status, state.best_status),
            key=key,
            hops=state.hops + 1,
            since_best=jnp.where(better, 0, state.since_best + 1),
            n_accepted=state.n_accepted + accept.astype(jnp.int32),
            n_evals=state.n_evals + r.n_evals,
            n_grad_evals=state.n_grad_evals + r.n_grad_evals,
        )
        return jnp.where(better, r.params, params), new_state

    def terminate(
        self, fun: Fun, params: Vector, state: BasinHoppingState, args: Any, bounds: Bounds
    ) -> tuple[BoolScalar, IntScalar]:
        stalled = (self.niter_success > 0) & (state.since_best >= self.niter_success)
        done = (state.hops >= self.niter) | stalled
        return done, state.best_status

    def info(self, params: Vector, state: BasinHoppingState, bounds: Bounds) -> Info:
        return Info(
            value=state.best_value,
            grad_norm=state.best_grad_norm,
            n_evals=state.n_evals,
            n_grad_evals=state.n_grad_evals,
        )


__all__ = ["BasinHopping", "BasinHoppingState"]
