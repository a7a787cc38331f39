"""Parameter sensitivity (Q2MM's selection step of grad-simp cycling).

For each parameter ``i`` with step ``h_i``:

- ``mode="fd"`` (Q2MM, ``2K + 1`` evaluations for the ``K`` parameters with
  ``h_i ≠ 0``, all in one vmapped call)::

      d1_i = (f(x + h_i e_i) − f(x − h_i e_i)) / (2 h_i)
      d2_i = (f(x + h_i e_i) + f(x − h_i e_i) − 2 f(x)) / h_i²

- ``mode="autodiff"``: exact ``d1 = ∇f`` and ``d2 = diag ∇²f`` (the
  diagonal from Hessian-vector products, forward over reverse).

Then ``simp_var = d2 / d1²`` (``+inf`` where ``d1 = 0`` or ``h_i = 0``).
Ranking: ``metric="simp_var"`` ascending (lowest = most suitable for the
simplex), ``metric="abs_d1"`` descending ``|d1|``.

Q2MM reports *unnormalised* differences ``h d1`` and ``h² d2``; q2jax returns
true derivatives (units of the objective per parameter unit). ``simp_var`` is
the same either way (``h²`` cancels), and Q2MM's ``abs_d1`` ranking also
divides by ``h``, so rankings agree with Q2MM.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from q2jax.errors import InputError
from q2jax.solvers._types import IntScalar, IntVector, Scalar, Vector
from q2jax.solvers.driver import Fun

METRICS = ("simp_var", "abs_d1")
MODES = ("fd", "autodiff")


class SensitivityResult(eqx.Module):
    """Derivatives and the parameter ranking (most suitable for simplex first)."""

    d1: Vector
    d2: Vector
    simp_var: Vector
    ranking: IntVector
    value: Scalar
    n_evals: IntScalar
    metric: str = eqx.field(static=True, default="simp_var")
    mode: str = eqx.field(static=True, default="fd")


def default_steps(params: Vector) -> Vector:
    """``h_i = 10⁻³ · max(|x_i|, 1)`` when no per-parameter steps are given
    (the workflows layer passes ``ForceField.get_step_sizes()``)."""
    return 1e-3 * jnp.maximum(jnp.abs(params), 1.0)


def _fd_derivatives(
    fun: Fun, params: Vector, args: Any, steps: Vector
) -> tuple[Vector, Vector, Scalar]:
    n = params.shape[0]
    shifts = jnp.diag(steps)
    points = jnp.concatenate([params[None, :], params + shifts, params - shifts], axis=0)
    values = jax.vmap(lambda p: fun(p, args))(points)
    f0, fp, fm = values[0], values[1 : n + 1], values[n + 1 :]
    active = steps != 0
    h = jnp.where(active, steps, 1.0)
    d1 = jnp.where(active, (fp - fm) / (2.0 * h), 0.0)
    d2 = jnp.where(active, (fp + fm - 2.0 * f0) / (h * h), 0.0)
    return d1, d2, f0


def _autodiff_derivatives(fun: Fun, params: Vector, args: Any) -> tuple[Vector, Vector, Scalar]:
    f = lambda p: fun(p, args)  # noqa: E731
    value, grad = jax.value_and_grad(f)(params)
    basis = jnp.eye(params.shape[0], dtype=params.dtype)
    hvp = jax.vmap(lambda e: jax.jvp(jax.grad(f), (params,), (e,))[1])(basis)
    return grad, jnp.diagonal(hvp), value


def rank(d1: Vector, simp_var: Vector, metric: str, active: Any = None) -> IntVector:
    """Indices ordered by ``metric`` (stable; inactive parameters last)."""
    if metric == "simp_var":
        key = simp_var
    elif metric == "abs_d1":
        key = -jnp.abs(d1)
    else:
        raise InputError(f"unknown sensitivity metric {metric!r}; expected one of {METRICS}")
    if active is not None:
        key = jnp.where(active, key, jnp.inf)
    key = jnp.where(jnp.isnan(key), jnp.inf, key)
    return jnp.argsort(key, stable=True).astype(jnp.int32)


def compute_sensitivity(
    fun: Fun,
    params: Vector,
    args: Any = None,
    steps: Vector | None = None,
    metric: str = "simp_var",
    mode: str = "fd",
) -> SensitivityResult:
    """Sensitivity of ``fun(params, args)`` to each parameter (pure; jit/vmap-able).

    Args:
        fun: scalar objective.
        params: 1-D parameter vector.
        args: passed through to ``fun``.
        steps: per-parameter finite-difference steps ``h`` (same units as
            ``params``); a zero step excludes the parameter (``d1 = d2 = 0``,
            ranked last). Default :func:`default_steps`.
        metric: ``"simp_var"`` or ``"abs_d1"``.
        mode: ``"fd"`` (2K + 1 evaluations) or ``"autodiff"``.
    """
    if metric not in METRICS:
        raise InputError(f"unknown sensitivity metric {metric!r}; expected one of {METRICS}")
    if mode not in MODES:
        raise InputError(f"unknown sensitivity mode {mode!r}; expected one of {MODES}")
    params = jnp.asarray(params)
    if params.ndim != 1:
        raise InputError(f"params must be a 1-D vector; got shape {params.shape}")
    steps = default_steps(params) if steps is None else jnp.asarray(steps, params.dtype)
    if steps.shape != params.shape:
        raise InputError(f"steps has shape {steps.shape}; expected {params.shape}")
    return _sensitivity_jit(fun, params, args, steps, metric, mode)


def _sensitivity(
    fun: Fun, params: Vector, args: Any, steps: Vector, metric: str, mode: str
) -> SensitivityResult:
    active = steps != 0
    n = params.shape[0]
    if mode == "fd":
        d1, d2, value = _fd_derivatives(fun, params, args, steps)
        n_evals = 1 + 2 * jnp.sum(active).astype(jnp.int32)
    else:
        d1, d2, value = _autodiff_derivatives(fun, params, args)
        d1, d2 = jnp.where(active, d1, 0.0), jnp.where(active, d2, 0.0)
        n_evals = jnp.asarray(1 + n, jnp.int32)
    nonzero = active & (d1 != 0)
    simp_var = jnp.where(nonzero, d2 / jnp.where(nonzero, d1 * d1, 1.0), jnp.inf)
    return SensitivityResult(
        d1=d1,
        d2=d2,
        simp_var=simp_var,
        ranking=rank(d1, simp_var, metric, active),
        value=value,
        n_evals=n_evals,
        metric=metric,
        mode=mode,
    )


_sensitivity_jit = eqx.filter_jit(_sensitivity)

__all__ = ["METRICS", "MODES", "SensitivityResult", "compute_sensitivity", "default_steps", "rank"]
