"""Adam with a learning-rate schedule ("optax:adam"), bounds by projection.

Update (Kingma & Ba 2015) with step size ``η_k`` from a schedule::

    m_k = β1 m_{k-1} + (1 − β1) g_k,   v_k = β2 v_{k-1} + (1 − β2) g_k²
    x_{k+1} = P( x_k − η_k m̂_k / (√v̂_k + ε) )

where ``m̂, v̂`` are the bias-corrected moments and ``P`` clips to the box.
Schedules (``decay_steps`` is normally ``maxiter``):

- ``"warmup_cosine"``: linear warm-up over ``warmup_fraction`` of the steps
  to ``learning_rate``, then cosine decay to ``learning_rate · final_factor``;
- ``"exponential"``: ``η_k = learning_rate · final_factor^(k / decay_steps)``;
- ``"constant"``.

Converged when the projected-gradient infinity norm is at most ``tol``.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from q2jax.errors import InputError
from q2jax.solvers._common import project, projected_grad_norm
from q2jax.solvers._types import BoolScalar, IntScalar, Scalar, Vector
from q2jax.solvers.driver import AbstractSolver, Bounds, Fun, Info
from q2jax.solvers.result import Status

SCHEDULES = ("warmup_cosine", "exponential", "constant")


def make_schedule(
    name: str,
    learning_rate: float,
    decay_steps: int,
    warmup_fraction: float = 0.05,
    final_factor: float = 1e-3,
) -> optax.Schedule:
    """The optax learning-rate schedule called ``name`` (see module docstring)."""
    decay_steps = max(int(decay_steps), 1)
    if name == "warmup_cosine":
        warmup = max(int(warmup_fraction * decay_steps), 1)
        return optax.warmup_cosine_decay_schedule(
            init_value=learning_rate * final_factor,
            peak_value=learning_rate,
            warmup_steps=warmup,
            decay_steps=max(decay_steps, warmup + 1),
            end_value=learning_rate * final_factor,
        )
    if name == "exponential":
        return optax.exponential_decay(
            init_value=learning_rate, transition_steps=decay_steps, decay_rate=final_factor
        )
    if name == "constant":
        return optax.constant_schedule(learning_rate)
    raise InputError(f"unknown learning-rate schedule {name!r}; expected one of {SCHEDULES}")


class AdamState(eqx.Module):
    opt_state: Any
    value: Scalar
    grad: Vector
    n_evals: IntScalar


class Adam(AbstractSolver):
    """Projected Adam on ``fun(params, args)``; see the module docstring."""

    learning_rate: float = 1e-2
    schedule: str = eqx.field(static=True, default="warmup_cosine")
    decay_steps: int = eqx.field(static=True, default=1000)
    warmup_fraction: float = eqx.field(static=True, default=0.05)
    final_factor: float = eqx.field(static=True, default=1e-3)
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    tol: float = 1e-6

    @property
    def method(self) -> str:  # type: ignore[override]
        return "optax:adam"

    def _tx(self) -> optax.GradientTransformation:
        lr = make_schedule(
            self.schedule,
            self.learning_rate,
            self.decay_steps,
            self.warmup_fraction,
            self.final_factor,
        )
        return optax.adam(lr, b1=self.b1, b2=self.b2, eps=self.eps)

    def init(self, fun: Fun, params: Vector, args: Any, bounds: Bounds) -> AdamState:
        value, grad = jax.value_and_grad(fun)(params, args)
        return AdamState(self._tx().init(params), value, grad, jnp.asarray(1, jnp.int32))

    def step(
        self, fun: Fun, params: Vector, state: AdamState, args: Any, bounds: Bounds
    ) -> tuple[Vector, AdamState]:
        updates, opt_state = self._tx().update(state.grad, state.opt_state, params)
        new_params = project(optax.apply_updates(params, updates), bounds)
        value, grad = jax.value_and_grad(fun)(new_params, args)
        return new_params, AdamState(opt_state, value, grad, state.n_evals + 1)

    def terminate(
        self, fun: Fun, params: Vector, state: AdamState, args: Any, bounds: Bounds
    ) -> tuple[BoolScalar, IntScalar]:
        converged = projected_grad_norm(params, state.grad, bounds) <= self.tol
        return converged, jnp.asarray(Status.SUCCESS, jnp.int32)

    def info(self, params: Vector, state: AdamState, bounds: Bounds) -> Info:
        return Info(
            value=state.value,
            grad_norm=projected_grad_norm(params, state.grad, bounds),
            n_evals=state.n_evals,
            n_grad_evals=state.n_evals,
        )


__all__ = ["SCHEDULES", "Adam", "AdamState", "make_schedule"]
