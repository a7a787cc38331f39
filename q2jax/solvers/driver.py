"""One generic driver for every iterative solver (the optimistix pattern).

A solver is a small :class:`AbstractSolver` with ``init`` / ``step`` /
``terminate`` / ``info``. :func:`run` loops ``step`` under
:func:`jax.lax.while_loop`, writes the objective after each iteration into a
fixed-size history buffer, and turns every way of stopping into a status code
(:class:`~q2jax.solvers.result.Status`) instead of an exception, so the same
code runs under ``jit`` and ``vmap``.

A step that makes the objective or the parameters non-finite is rolled back
and the run stops with ``Status.NONFINITE``: the result then holds the last
finite iterate (and the evaluations of the rolled-back step are not counted).
Solvers that can recover from a non-finite trial point (Nelder–Mead treats it
as ``+inf``, Levenberg–Marquardt rejects the step) never trigger this.

Long runs: :func:`run_chunked` is the host-side variant that advances the
same compiled loop ``chunk`` iterations per call and reports progress between
calls; there are no host callbacks inside the pure path.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from q2jax.solvers._types import BoolScalar, History, IntScalar, Scalar, Vector
from q2jax.solvers.result import SolverResult, Status, empty_history

Fun = Callable[[Array, Any], Array]
"""An objective ``fun(params, args) -> scalar``."""

Bounds = tuple[Vector, Vector]
"""Box ``(lower, upper)``; ``-inf`` / ``+inf`` where a side is open."""


class Info(eqx.Module):
    """What the driver reads from a solver state after each step."""

    value: Scalar
    grad_norm: Scalar
    n_evals: IntScalar
    n_grad_evals: IntScalar


class AbstractSolver(eqx.Module):
    """Interface of an iterative solver run by :func:`run`.

    ``fun(params, args) -> scalar`` (or a residual vector for
    Levenberg–Marquardt) is passed to every method rather than stored, so the
    solver itself is a small static configuration.
    """

    @abc.abstractmethod
    def init(self, fun: Fun, params: Array, args: Any, bounds: Bounds) -> Any:
        """Evaluate the start point and build the state."""

    @abc.abstractmethod
    def step(self, fun: Fun, params: Array, state: Any, args: Any, bounds: Bounds) -> tuple:
        """One iteration: ``(params, state) -> (new_params, new_state)``."""

    @abc.abstractmethod
    def terminate(
        self, fun: Fun, params: Array, state: Any, args: Any, bounds: Bounds
    ) -> tuple[BoolScalar, IntScalar]:
        """``(done, status)``; status is only read when ``done``."""

    @abc.abstractmethod
    def info(self, params: Array, state: Any, bounds: Bounds) -> Info:
        """Objective, gradient norm and evaluation counts held in ``state``."""

    def start_params(self, params: Vector, state: Any) -> Vector:
        """The iterate that ``init`` settled on (e.g. the best simplex vertex)."""
        return params

    @property
    @abc.abstractmethod
    def method(self) -> str:
        """The method name reported in the result."""


class Carry(eqx.Module):
    """Loop state of the driver (resumable between chunks)."""

    params: Array
    state: Any
    it: IntScalar
    history: History
    done: BoolScalar
    status: IntScalar


def _all_finite(x: Array) -> BoolScalar:
    return jnp.all(jnp.isfinite(x))


def _select(pred: BoolScalar, on_true: Any, on_false: Any) -> Any:
    dyn_t, static = eqx.partition(on_true, eqx.is_array)
    dyn_f = eqx.filter(on_false, eqx.is_array)
    picked = jax.tree.map(lambda a, b: jnp.where(pred, a, b), dyn_t, dyn_f)
    return eqx.combine(picked, static)


def init_carry(
    solver: AbstractSolver, fun: Fun, params0: Array, args: Any, bounds: Bounds, maxiter: int
) -> Carry:
    """Evaluate the start and set up the loop state (no iteration yet)."""
    state = solver.init(fun, params0, args, bounds)
    params0 = solver.start_params(params0, state)
    info = solver.info(params0, state, bounds)
    done, status = solver.terminate(fun, params0, state, args, bounds)
    bad = ~(jnp.isfinite(info.value) & _all_finite(params0))
    return Carry(
        params=params0,
        state=state,
        it=jnp.asarray(0, dtype=jnp.int32),
        history=empty_history(maxiter, info.value),
        done=jnp.asarray(done | bad),
        status=jnp.where(bad, Status.NONFINITE, status).astype(jnp.int32),
    )


def advance(
    solver: AbstractSolver,
    fun: Fun,
    carry: Carry,
    args: Any,
    bounds: Bounds,
    stop_at: IntScalar | int,
) -> Carry:
    """Iterate until the solver is done or ``carry.it == stop_at``."""
    stop_at = jnp.minimum(jnp.asarray(stop_at, jnp.int32), carry.history.shape[0] - 1)

    # only arrays go through the loop; static parts of a state (e.g. closure-converted
    # functions inside an optimistix state) are held fixed outside it
    dynamic, static = eqx.partition(carry, eqx.is_array)

    def cond(d: Carry) -> BoolScalar:
        c = eqx.combine(d, static)
        return ~c.done & (c.it < stop_at)

    def body(d: Carry) -> Carry:
        c = eqx.combine(d, static)
        params, state = solver.step(fun, c.params, c.state, args, bounds)
        info = solver.info(params, state, bounds)
        bad = ~(jnp.isfinite(info.value) & _all_finite(params))
        done, status = solver.terminate(fun, params, state, args, bounds)
        params, state = _select(bad, (c.params, c.state), (params, state))
        it = jnp.where(bad, c.it, c.it + 1)
        history = jnp.where(bad, c.history, c.history.at[c.it + 1].set(info.value))
        new = Carry(
            params=params,
            state=state,
            it=it,
            history=history,
            done=done | bad,
            status=jnp.where(bad, Status.NONFINITE, status).astype(jnp.int32),
        )
        return eqx.filter(new, eqx.is_array)

    return eqx.combine(jax.lax.while_loop(cond, body, dynamic), static)


def finalize(solver: AbstractSolver, carry: Carry, bounds: Bounds) -> SolverResult:
    """Turn the loop state into a :class:`SolverResult`."""
    info = solver.info(carry.params, carry.state, bounds)
    status = jnp.where(carry.done, carry.status, Status.MAX_ITERATIONS).astype(jnp.int32)
    return SolverResult(
        params=carry.params,
        value=info.value,
        n_iter=carry.it,
        n_evals=jnp.asarray(info.n_evals, jnp.int32),
        n_grad_evals=jnp.asarray(info.n_grad_evals, jnp.int32),
        converged=status == Status.SUCCESS,
        status=status,
        grad_norm=info.grad_norm,
        history=carry.history,
        method=solver.method,
    )


def run(
    solver: AbstractSolver,
    fun: Fun,
    params0: Array,
    args: Any,
    bounds: Bounds,
    maxiter: int,
) -> SolverResult:
    """Run ``solver`` from ``params0`` for at most ``maxiter`` iterations (pure; jit/vmap-able)."""
    carry = init_carry(solver, fun, params0, args, bounds, maxiter)
    carry = advance(solver, fun, carry, args, bounds, maxiter)
    return finalize(solver, carry, bounds)


run_jit = eqx.filter_jit(run)
_init_jit = eqx.filter_jit(init_carry)
_advance_jit = eqx.filter_jit(advance)
_finalize_jit = eqx.filter_jit(finalize)


def print_progress(method: str, it: int, maxiter: int, value: float, n_evals: int) -> None:
    """Default progress reporter of :func:`run_chunked` (one line per chunk)."""
    print(f"[{method}] iter {it:>6d}/{maxiter}  loss {value:.8g}  evals {n_evals}", flush=True)


def run_chunked(
    solver: AbstractSolver,
    fun: Fun,
    params0: Array,
    args: Any,
    bounds: Bounds,
    maxiter: int,
    *,
    chunk: int = 50,
    progress: Callable[[str, int, int, float, int], None] | None = print_progress,
) -> SolverResult:
    """Host-side driver: the same compiled loop, ``chunk`` iterations per call.

    Gives the same iterates as :func:`run` (the loop body is identical) while
    ``progress(method, iteration, maxiter, loss, n_evals)`` is called on the
    host between chunks. Not vmappable (it reads ``done`` on the host).
    """
    carry = _init_jit(solver, fun, params0, args, bounds, maxiter)
    while not bool(carry.done) and int(carry.it) < maxiter:
        stop = min(int(carry.it) + chunk, maxiter)
        carry = _advance_jit(solver, fun, carry, args, bounds, jnp.asarray(stop, jnp.int32))
        if progress is not None:
            info = solver.info(carry.params, carry.state, bounds)
            progress(solver.method, int(carry.it), maxiter, float(info.value), int(info.n_evals))
    return _finalize_jit(solver, carry, bounds)


__all__ = [
    "AbstractSolver",
    "Bounds",
    "Carry",
    "Fun",
    "Info",
    "advance",
    "finalize",
    "init_carry",
    "print_progress",
    "run",
    "run_chunked",
    "run_jit",
]
