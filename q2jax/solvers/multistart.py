"""Multi-start ("multi:<method>"): one vmapped, compiled call over all starts.

Starts: ``x0`` itself (``include_initial=True``) and random perturbations
``x_i' = P(x_i (1 + p u_i))`` with ``u_i ~ U(−1, 1)``, ``p =
perturbation_pct / 100`` and ``P`` the clip to the box; a parameter that is
exactly zero is perturbed additively by ``p u_i`` instead. The local solver
runs on every start under :func:`jax.vmap` (one ``while_loop`` over the
batch; more than ``MAX_VMAP_CHUNK`` = 64 starts run as a loop over vmapped
chunks of 64, see :func:`q2jax.solvers._common.chunked_vmap`), with the starts
split over all devices when there are several
(:func:`q2jax.solvers._common.map_over_devices`; not for the ``optimistix:``
methods, whose linear operators reject ``jax.shard_map``'s per-device shapes).
The best start is the one with the lowest finite final objective.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from q2jax.errors import InputError
from q2jax.solvers._common import map_over_devices, project
from q2jax.solvers._types import BoolScalar, IntScalar, Matrix, Vector
from q2jax.solvers.driver import AbstractSolver, Bounds, Fun, Info, run
from q2jax.solvers.result import SolverResult, status_message


def perturbed_starts(
    params0: Vector,
    n_starts: int,
    perturbation_pct: float,
    seed: int | Any,
    bounds: Bounds,
    include_initial: bool = True,
) -> Matrix:
    """``(n_starts, n)`` start points (see module docstring); row 0 is ``x0`` if asked."""
    if n_starts < 1:
        raise InputError(f"n_starts must be at least 1; got {n_starts}")
    key = jax.random.key(seed) if isinstance(seed, int) else seed
    p = perturbation_pct / 100.0
    u = jax.random.uniform(key, (n_starts, params0.shape[0]), params0.dtype, -1.0, 1.0)
    scale = jnp.where(params0 != 0, params0, 1.0)
    base = jnp.where(params0 != 0, params0, 0.0)
    starts = project(base + scale * p * u, bounds)
    if include_initial:
        starts = starts.at[0].set(params0)
    return starts


class MultiStartResult(eqx.Module):
    """All per-start results (batched :class:`SolverResult`) and the best one.

    ``params``, ``value``, ``status``, ``converged``, ``history``, ``n_iter``
    and ``grad_norm`` are those of the best start; ``n_evals`` is the total
    over all starts.
    """

    best: SolverResult
    all: SolverResult
    starts: Matrix
    best_index: IntScalar

    @property
    def params(self) -> Vector:
        return self.best.params

    @property
    def value(self) -> Any:
        return self.best.value

    @property
    def status(self) -> Any:
        return self.best.status

    @property
    def converged(self) -> Any:
        return self.best.converged

    @property
    def history(self) -> Any:
        return self.best.history

    @property
    def n_iter(self) -> Any:
        return self.best.n_iter

    @property
    def grad_norm(self) -> Any:
        return self.best.grad_norm

    @property
    def n_evals(self) -> Any:
        return jnp.sum(self.all.n_evals, axis=-1)

    @property
    def method(self) -> str:
        return f"multi:{self.best.method}"

    @property
    def message(self) -> str:
        return status_message(int(self.best.status))

    def summary(self) -> str:
        """Host-side summary: best start plus the spread of final values."""
        values = jnp.asarray(self.all.value)
        ok = int(jnp.sum(self.all.converged))
        return (
            f"Multi-start over {values.shape[0]} starts ({ok} converged); "
            f"best start {int(self.best_index)}, final values "
            f"min {float(jnp.nanmin(values)):.6g} / median {float(jnp.nanmedian(values)):.6g} "
            f"/ max {float(jnp.nanmax(values)):.6g}; total evaluations {int(self.n_evals)}\n"
            + self.best.summary().replace("Method: ", "Method: multi:", 1)
        )


def multistart(
    local: AbstractSolver,
    fun: Fun,
    params0: Vector,
    args: Any,
    bounds: Bounds,
    maxiter: int,
    *,
    n_starts: int = 10,
    perturbation_pct: float = 10.0,
    seed: int = 0,
    include_initial: bool = True,
    starts: Matrix | None = None,
) -> MultiStartResult:
    """Run ``local`` from every start in one vmapped call (pure; jit-able).

    ``starts`` overrides the generated start points (shape ``(n_starts, n)``).
    """
    if starts is None:
        starts = perturbed_starts(
            params0, n_starts, perturbation_pct, seed, bounds, include_initial
        )
    # optimistix's solvers (lineax operators) reject the per-device shapes seen
    # inside jax.shard_map, so those run on one device
    spread = not local.method.startswith("optimistix:")
    results = map_over_devices(
        lambda x, c: run(local, fun, x, c[0], c[1], maxiter), starts, (args, bounds),
        spread=spread)
    finite = jnp.where(jnp.isfinite(results.value), results.value, jnp.inf)
    best_index = jnp.argmin(finite).astype(jnp.int32)
    best = jax.tree.map(lambda leaf: leaf[best_index], results)
    return MultiStartResult(best=best, all=results, starts=starts, best_index=best_index)


multistart_jit = eqx.filter_jit(multistart)


class MultiStartState(eqx.Module):
    best: SolverResult
    total_evals: IntScalar
    total_grad_evals: IntScalar


class MultiStart(AbstractSolver):
    """Multi-start as a one-shot solver (all work in ``init``; zero iterations),
    so it can stand wherever an :class:`AbstractSolver` is expected (e.g. the
    full-space pass of grad-simp cycling). Counts are totals over all starts."""

    local: AbstractSolver
    local_maxiter: int = eqx.field(static=True, default=200)
    n_starts: int = eqx.field(static=True, default=10)
    perturbation_pct: float = 10.0
    seed: int = 0
    include_initial: bool = eqx.field(static=True, default=True)

    @property
    def method(self) -> str:  # type: ignore[override]
        return f"multi:{self.local.method}"

    def init(self, fun: Fun, params: Vector, args: Any, bounds: Bounds) -> MultiStartState:
        ms = multistart(
            self.local,
            fun,
            params,
            args,
            bounds,
            self.local_maxiter,
            n_starts=self.n_starts,
            perturbation_pct=self.perturbation_pct,
            seed=self.seed,
            include_initial=self.include_initial,
        )
        return MultiStartState(
            best=ms.best,
            total_evals=jnp.sum(ms.all.n_evals),
            total_grad_evals=jnp.sum(ms.all.n_grad_evals),
        )

    def start_params(self, params: Vector, state: MultiStartState) -> Vector:
        return state.best.params

    def step(
        self, fun: Fun, params: Vector, state: MultiStartState, args: Any, bounds: Bounds
    ) -> tuple[Vector, MultiStartState]:
        return params, state

    def terminate(
        self, fun: Fun, params: Vector, state: MultiStartState, args: Any, bounds: Bounds
    ) -> tuple[BoolScalar, IntScalar]:
        return jnp.asarray(True), state.best.status

    def info(self, params: Vector, state: MultiStartState, bounds: Bounds) -> Info:
        return Info(
            value=state.best.value,
            grad_norm=state.best.grad_norm,
            n_evals=state.total_evals,
            n_grad_evals=state.total_grad_evals,
        )


__all__ = [
    "MultiStart",
    "MultiStartResult",
    "MultiStartState",
    "multistart",
    "multistart_jit",
    "perturbed_starts",
]
