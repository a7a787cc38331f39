"""Grad-simp cycling (Q2MM's ``OptimizationLoop``; Norrby & Liljefors 1998), pure JAX.

Each cycle, from the current parameters ``x`` with score ``f(x)``:

1. full-space pass: ``full_solver`` on all parameters (``full_maxiter``);
2. sensitivity: :func:`~q2jax.solvers.sensitivity.compute_sensitivity` at the
   result, ranking by ``metric`` ("simp_var" or "abs_d1");
3. subspace simplex: Nelder–Mead on the ``max_params`` best-ranked
   parameters (gathered with traced indices, scattered back with
   ``x.at[idx].set``; bounds gathered too), accepted only if it lowers ``f``;
4. stop when the fractional improvement of the cycle
   ``(f_before − f_after) / f_before`` is in ``[0, convergence)`` (0 counts as
   converged when ``f_before ≤ 0``, as in Q2MM) or after ``max_cycles``.

The whole loop is one ``lax.while_loop`` (jit/vmap-able) with fixed-size
records: ``cycle_scores`` (initial score then one per cycle, NaN-padded),
``selected_indices`` (−1-padded), and per-cycle ``d1`` / ``d2`` /
``simp_var``. ``verbose=True`` runs the same compiled cycle from a host loop
and prints one line per cycle.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from q2jax.errors import InputError
from q2jax.solvers._types import BoolScalar, IntScalar, Matrix, Scalar, Vector
from q2jax.solvers.driver import AbstractSolver, Bounds, Fun, run
from q2jax.solvers.nelder_mead import NelderMead
from q2jax.solvers.result import Status, status_message
from q2jax.solvers.sensitivity import compute_sensitivity


class CyclingResult(eqx.Module):
    """Outcome of :func:`grad_simp_cycling` (field names follow Q2MM's ``LoopResult``)."""

    params: Vector
    value: Scalar
    initial_value: Scalar
    n_cycles: IntScalar
    n_evals: IntScalar
    converged: BoolScalar
    status: IntScalar
    cycle_scores: Vector
    """``(max_cycles + 1,)``: initial score, then the score after each cycle."""
    full_scores: Vector
    """``(max_cycles,)``: score after each cycle's full-space pass."""
    full_status: Any
    """``(max_cycles,)`` status code of each full-space pass (−1 if not run)."""
    selected_indices: Any
    """``(max_cycles, max_params)`` parameters given to the simplex (−1 padding)."""
    d1: Matrix
    d2: Matrix
    simp_var: Matrix
    method: str = eqx.field(static=True, default="grad-simp")

    @property
    def improvement(self) -> float:
        v0, v1 = float(self.initial_value), float(self.value)
        return 0.0 if v0 == 0 else (v0 - v1) / v0

    @property
    def message(self) -> str:
        if int(self.status) == Status.SUCCESS:
            return "converged"
        if int(self.status) == Status.MAX_ITERATIONS:
            return "maximum number of cycles reached"
        return status_message(int(self.status))

    def cycle_scores_trimmed(self) -> np.ndarray:
        return np.asarray(self.cycle_scores)[: int(self.n_cycles) + 1]

    def selected_trimmed(self) -> list[list[int]]:
        sel = np.asarray(self.selected_indices)[: int(self.n_cycles)]
        return [[int(i) for i in row if i >= 0] for row in sel]

    def summary(self) -> str:
        return (
            f"OptimizationLoop ({self.method}): {self.message}\n"
            f"  Cycles:      {int(self.n_cycles)}\n"
            f"  Evaluations: {int(self.n_evals)}\n"
            f"  Score:       {float(self.initial_value):.6f} -> {float(self.value):.6f}\n"
            f"  Improvement: {self.improvement:.2%}"
        )


class _Carry(eqx.Module):
    x: Vector
    score: Scalar
    cycle: IntScalar
    n_evals: IntScalar
    done: BoolScalar
    status: IntScalar
    record: CyclingResult


def _one_cycle(
    fun: Fun,
    full_fun: Fun,
    full_solver: AbstractSolver,
    simp_solver: AbstractSolver,
    c: _Carry,
    args: Any,
    bounds: Bounds,
    steps: Vector | None,
    max_params: int,
    full_maxiter: int,
    simp_maxiter: int,
    convergence: float,
    max_cycles: int,
    metric: str,
    sensitivity_mode: str,
) -> _Carry:
    x0, f0 = c.x, c.score
    full = run(full_solver, full_fun, x0, args, bounds, full_maxiter)
    x1 = full.params
    f1 = fun(x1, args) if full_fun is not fun else full.value
    extra = 0 if full_fun is fun else 1
    keep = ~(f1 <= f0)  # never accept a worse (or non-finite) full pass
    x1 = jnp.where(keep, x0, x1)
    f1 = jnp.where(keep, f0, f1)

    sens = compute_sensitivity(fun, x1, args, steps, metric, sensitivity_mode)
    idx = sens.ranking[:max_params]

    def sub_fun(z: Vector, sub_args: Any) -> Scalar:
        a, base, ii = sub_args
        return fun(base.at[ii].set(z), a)

    sub_bounds = (bounds[0][idx], bounds[1][idx])
    simp = run(simp_solver, sub_fun, x1[idx], (args, x1, idx), sub_bounds, simp_maxiter)
    improved = simp.value < f1
    x2 = jnp.where(improved, x1.at[idx].set(simp.params), x1)
    f2 = jnp.where(improved, simp.value, f1)

    change = jnp.where(f0 > 0, (f0 - f2) / jnp.where(f0 > 0, f0, 1.0), 0.0)
    converged = (change >= 0) & (change < convergence)
    bad = ~jnp.isfinite(f2)
    k = c.cycle
    r = c.record
    pad = jnp.full((r.selected_indices.shape[1],), -1, jnp.int32).at[: idx.shape[0]].set(idx)
    record = eqx.tree_at(
        lambda t: (
            t.cycle_scores,
            t.full_scores,
            t.full_status,
            t.selected_indices,
            t.d1,
            t.d2,
            t.simp_var,
        ),
        r,
        (
            r.cycle_scores.at[k + 1].set(f2),
            r.full_scores.at[k].set(f1),
            r.full_status.at[k].set(full.status),
            r.selected_indices.at[k].set(pad),
            r.d1.at[k].set(sens.d1),
            r.d2.at[k].set(sens.d2),
            r.simp_var.at[k].set(sens.simp_var),
        ),
    )
    status = jnp.where(
        bad, Status.NONFINITE, jnp.where(converged, Status.SUCCESS, Status.MAX_ITERATIONS)
    )
    return _Carry(
        x=x2,
        score=f2,
        cycle=k + 1,
        n_evals=c.n_evals + full.n_evals + extra + sens.n_evals + simp.n_evals,
        done=converged | bad | (k + 1 >= max_cycles),
        status=status.astype(jnp.int32),
        record=record,
    )


def _init(
    fun: Fun, params0: Vector, args: Any, max_cycles: int, max_params: int, method: str
) -> _Carry:
    n = params0.shape[0]
    f0 = fun(params0, args)
    nan_c = jnp.full((max_cycles + 1,), jnp.nan, params0.dtype).at[0].set(f0)
    nan_m = jnp.full((max_cycles, n), jnp.nan, params0.dtype)
    record = CyclingResult(
        params=params0,
        value=f0,
        initial_value=f0,
        n_cycles=jnp.asarray(0, jnp.int32),
        n_evals=jnp.asarray(1, jnp.int32),
        converged=jnp.asarray(False),
        status=jnp.asarray(Status.MAX_ITERATIONS, jnp.int32),
        cycle_scores=nan_c,
        full_scores=jnp.full((max_cycles,), jnp.nan, params0.dtype),
        full_status=jnp.full((max_cycles,), -1, jnp.int32),
        selected_indices=jnp.full((max_cycles, max_params), -1, jnp.int32),
        d1=nan_m,
        d2=nan_m,
        simp_var=nan_m,
        method=method,
    )
    bad = ~jnp.isfinite(f0)
    return _Carry(
        x=params0,
        score=f0,
        cycle=jnp.asarray(0, jnp.int32),
        n_evals=jnp.asarray(1, jnp.int32),
        done=bad | (max_cycles == 0),
        status=jnp.where(bad, Status.NONFINITE, Status.MAX_ITERATIONS).astype(jnp.int32),
        record=record,
    )


def _finish(c: _Carry) -> CyclingResult:
    return eqx.tree_at(
        lambda t: (t.params, t.value, t.n_cycles, t.n_evals, t.converged, t.status),
        c.record,
        (c.x, c.score, c.cycle, c.n_evals, c.status == Status.SUCCESS, c.status),
    )


_one_cycle_jit = eqx.filter_jit(_one_cycle)
_init_jit = eqx.filter_jit(_init)


def grad_simp_cycling(
    fun: Fun,
    params0: Vector,
    args: Any = None,
    *,
    bounds: Bounds,
    full_solver: AbstractSolver,
    simp_solver: AbstractSolver | None = None,
    full_fun: Fun | None = None,
    max_params: int = 3,
    max_cycles: int = 10,
    convergence: float = 0.01,
    full_maxiter: int = 200,
    simp_maxiter: int = 200,
    steps: Vector | None = None,
    metric: str = "simp_var",
    sensitivity_mode: str = "fd",
    verbose: bool = False,
) -> CyclingResult:
    """Grad-simp cycling of ``fun(params, args)``; see the module docstring.

    Args:
        fun: scalar objective (the score of Q2MM).
        params0: start vector; ``bounds``: ``(lower, upper)`` arrays.
        full_solver: the full-space solver (e.g. ``LBFGS(bounded=True)``).
        simp_solver: the subspace solver (default ``NelderMead()``).
        full_fun: the function the full solver works on when it differs from
            ``fun`` — the residual function for Levenberg–Marquardt.
        max_params: parameters per simplex pass (at most ``len(params0)``).
        steps: sensitivity steps (``ForceField.get_step_sizes()``; default
            :func:`~q2jax.solvers.sensitivity.default_steps`).
        verbose: print one line per cycle (host loop; not vmappable).
    """
    n = params0.shape[0]
    if max_params < 1:
        raise InputError(f"max_params must be at least 1; got {max_params}")
    if max_cycles < 0:
        raise InputError(f"max_cycles must be non-negative; got {max_cycles}")
    k = min(max_params, n)
    simp_solver = NelderMead() if simp_solver is None else simp_solver
    full_fun = fun if full_fun is None else full_fun
    method = f"grad-simp({full_solver.method}+{simp_solver.method})"
    cycle_args = (
        fun,
        full_fun,
        full_solver,
        simp_solver,
    )
    static = dict(
        steps=steps,
        max_params=k,
        full_maxiter=full_maxiter,
        simp_maxiter=simp_maxiter,
        convergence=convergence,
        max_cycles=max_cycles,
        metric=metric,
        sensitivity_mode=sensitivity_mode,
    )
    carry = _init_jit(fun, params0, args, max_cycles, k, method)
    if verbose:
        carry = jax.block_until_ready(carry)
        print(f"[{method}] initial score {float(carry.score):.8g}", flush=True)
        while not bool(carry.done):
            before = float(carry.score)
            carry = _one_cycle_jit(*cycle_args, carry, args, bounds, **static)
            j = int(carry.cycle) - 1
            sel = [int(i) for i in np.asarray(carry.record.selected_indices[j])]
            print(
                f"[{method}] cycle {j + 1}: {before:.8g} -> full "
                f"{float(carry.record.full_scores[j]):.8g} -> simplex {float(carry.score):.8g} "
                f"(params {sel})",
                flush=True,
            )
        return _finish(carry)

    return _all_cycles_jit(*cycle_args, carry, args, bounds, **static)


def _all_cycles(
    fun: Fun,
    full_fun: Fun,
    full_solver: AbstractSolver,
    simp_solver: AbstractSolver,
    carry: _Carry,
    args: Any,
    bounds: Bounds,
    **static: Any,
) -> CyclingResult:
    def body(c: _Carry) -> _Carry:
        return _one_cycle(fun, full_fun, full_solver, simp_solver, c, args, bounds, **static)

    return _finish(jax.lax.while_loop(lambda c: ~c.done, body, carry))


_all_cycles_jit = eqx.filter_jit(_all_cycles)


def optimization_loop(
    fun: Fun,
    params0: Any,
    args: Any = None,
    *,
    bounds: Any = None,
    max_params: int = 3,
    max_cycles: int = 10,
    convergence: float = 0.01,
    full_method: str = "jaxopt:lbfgsb",
    simp_method: str = "Nelder-Mead",
    full_maxiter: int = 200,
    simp_maxiter: int = 200,
    full_options: dict[str, Any] | None = None,
    simp_options: dict[str, Any] | None = None,
    residuals: Fun | None = None,
    steps: Any = None,
    metric: str = "simp_var",
    sensitivity_mode: str = "fd",
    verbose: bool = False,
) -> CyclingResult:
    """Grad-simp cycling by method names (the arguments of Q2MM's ``OptimizationLoop``).

    ``full_method`` is any pure-JAX method of :mod:`q2jax.solvers.registry`
    including ``"multi:<method>"`` (``full_options`` then may hold
    ``n_starts``, ``perturbation_pct``, ``seed``) and ``"lm"`` (give
    ``residuals``). SciPy's ``"L-BFGS-B"`` is not pure JAX: the workflows
    layer runs that variant; here use ``"jaxopt:lbfgsb"``. Simplex options
    default to Q2MM's ``xatol = 1e-6``, ``fatol = 1e-8``.
    """
    from q2jax.solvers._common import as_bounds, as_params
    from q2jax.solvers.multistart import MultiStart
    from q2jax.solvers.registry import UNBOUNDED, canonical_method, get_solver

    p0 = as_params(params0)
    box = as_bounds(bounds, p0)
    full_options = dict(full_options or {})
    multi = full_method.startswith("multi:")
    base = canonical_method(full_method[len("multi:") :] if multi else full_method)
    if base in UNBOUNDED and bounds is not None:
        raise InputError(f"full_method {base!r} does not take bounds; use 'jaxopt:lbfgsb'")
    multi_opts = {
        k: full_options.pop(k)
        for k in ("n_starts", "perturbation_pct", "seed", "include_initial")
        if k in full_options
    }
    full_solver = get_solver(base, maxiter=full_maxiter, **full_options)
    if multi:
        full_solver = MultiStart(local=full_solver, local_maxiter=full_maxiter, **multi_opts)
    if base == "lm" and residuals is None:
        raise InputError("full_method 'lm' needs residuals=res(params, args)")
    simp_options = {"xatol": 1e-6, "fatol": 1e-8, **(simp_options or {})}
    simp_solver = get_solver(simp_method, maxiter=simp_maxiter, **simp_options)
    return grad_simp_cycling(
        fun,
        p0,
        args,
        bounds=box,
        full_solver=full_solver,
        simp_solver=simp_solver,
        full_fun=residuals if base == "lm" else None,
        max_params=max_params,
        max_cycles=max_cycles,
        convergence=convergence,
        full_maxiter=0 if multi else full_maxiter,
        simp_maxiter=simp_maxiter,
        steps=None if steps is None else jnp.asarray(steps, p0.dtype),
        metric=metric,
        sensitivity_mode=sensitivity_mode,
        verbose=verbose,
    )


__all__ = ["CyclingResult", "grad_simp_cycling", "optimization_loop"]
