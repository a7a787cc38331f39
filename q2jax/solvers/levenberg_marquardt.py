"""Levenberg–Marquardt ("lm") on a residual vector, with box bounds.

Minimises ``f(x) = ‖r(x)‖²`` for ``r = res(x, args)`` (the q2jax loss
convention: a plain sum of squares, no ½). With ``J = ∂r/∂x`` (by
:func:`jax.jacfwd`, or :func:`jax.jacrev` when there are more parameters than
residuals) and ``g = Jᵀr``, each iteration solves the damped Gauss–Newton
system with Marquardt scaling::

    (JᵀJ + λ D) δ = −g,     D = diag(JᵀJ) (floored),

on the *free* parameters only (a parameter sitting on a bound that the
gradient pushes against is held fixed: projected Newton), clips the trial
point to the box, and accepts it when the objective decreases (or, at the
rounding floor of ``f``, where comparing values decides nothing, when it keeps
``f`` within its rounding noise and lowers the projected gradient). The damping
follows Nielsen (1999): on acceptance ``λ ← λ · max(1/3, 1 − (2ρ − 1)³)``,
``ν = 2``; on rejection ``λ ← λ ν``, ``ν ← 2ν``, with ``ρ`` the ratio of actual
to predicted decrease. A non-finite trial point is rejected like a bad step.

Stops with ``Status.SUCCESS`` when the projected gradient of ``f``
(infinity norm) is at most ``tol``, when an accepted step changes ``f`` by a
relative ``ftol`` or less, or when it moves ``x`` by at most
``xtol · (xtol + ‖x‖)``; when ``λ`` exceeds ``max_damping`` (no step
decreases ``f``) with ``Status.SUCCESS`` if the undamped Gauss–Newton step
predicts a relative decrease below ``ftol`` (the rounding floor), else with
``Status.STAGNATION``.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from q2jax import linalg
from q2jax.solvers._common import free_mask, project, projected_grad_norm
from q2jax.solvers._types import BoolScalar, IntScalar, Matrix, Scalar, Vector
from q2jax.solvers.driver import AbstractSolver, Bounds, Fun, Info
from q2jax.solvers.result import Status

_FLOOR_ULPS = 128.0
"""Rounding noise of ``f`` in units of its last place (measured ~30 on CH3F)."""


class LMState(eqx.Module):
    residuals: Vector
    jac: Matrix
    value: Scalar
    damping: Scalar
    nu: Scalar
    n_evals: IntScalar
    small_step: BoolScalar
    """The last accepted step met the ``ftol`` / ``xtol`` test."""


class LevenbergMarquardt(AbstractSolver):
    """Bounded Levenberg–Marquardt on ``residuals(params, args) -> vector``.

    The ``fun`` handed to this solver by the driver is the *residual*
    function. Attributes: ``tol`` (projected-gradient infinity norm of
    ``‖r‖²``), ``ftol``, ``xtol``, ``damping0`` (initial λ relative to
    ``max(diag JᵀJ)``), ``max_damping``, ``jac_mode`` ("fwd" or "rev").
    """

    tol: float = 1e-10
    ftol: float = 1e-14
    xtol: float = 1e-14
    damping0: float = 1e-3
    max_damping: float = 1e16
    jac_mode: str = eqx.field(static=True, default="fwd")

    @property
    def method(self) -> str:  # type: ignore[override]
        return "lm"

    def _eval(self, res: Fun, params: Vector, args: Any) -> tuple[Vector, Matrix]:
        def r2(p: Vector) -> tuple[Vector, Vector]:
            r = jnp.ravel(res(p, args))
            return r, r

        jacobian = jax.jacfwd if self.jac_mode == "fwd" else jax.jacrev
        jac, r = jacobian(r2, has_aux=True)(params)
        return r, jac

    def init(self, fun: Fun, params: Vector, args: Any, bounds: Bounds) -> LMState:
        r, jac = self._eval(fun, params, args)
        scale = jnp.max(jnp.sum(jac * jac, axis=0), initial=0.0)
        return LMState(
            residuals=r,
            jac=jac,
            value=r @ r,
            damping=self.damping0 * jnp.maximum(scale, 1e-30),
            nu=jnp.asarray(2.0, r.dtype),
            n_evals=jnp.asarray(1, jnp.int32),
            small_step=jnp.asarray(False),
        )

    def step(
        self, fun: Fun, params: Vector, state: LMState, args: Any, bounds: Bounds
    ) -> tuple[Vector, LMState]:
        r, jac, lam = state.residuals, state.jac, state.damping
        g = jac.T @ r
        a = jac.T @ jac
        diag = jnp.diagonal(a)
        d = jnp.maximum(diag, 1e-12 * jnp.max(diag, initial=0.0) + 1e-300)
        free = free_mask(params, g, bounds)
        both = free[:, None] & free[None, :]
        m = jnp.where(both, a + jnp.diag(lam * d), 0.0) + jnp.diag(jnp.where(free, 0.0, 1.0))
        delta = linalg.solve(m, -jnp.where(free, g, 0.0))
        trial = project(params + delta, bounds)
        s = trial - params

        r_t, jac_t = self._eval(fun, trial, args)
        f_t = r_t @ r_t
        f = state.value
        lin = r + jac @ s
        predicted = f - lin @ lin
        rho = (f - f_t) / jnp.where(predicted > 0, predicted, jnp.inf)
        # At the rounding floor of f (the model's decrease below f's rounding noise)
        # comparing values decides nothing; there a step is accepted when it does not
        # raise f beyond that noise and lowers the projected gradient, which is computed
        # far more precisely than f (so fits converge to g = 0, not to f's noise).
        noise = _FLOOR_ULPS * jnp.finfo(f.dtype).eps * jnp.abs(f)
        at_floor = (predicted <= noise) & (f_t <= f + noise)
        g_t = jac_t.T @ r_t
        flatter = projected_grad_norm(trial, g_t, bounds) < projected_grad_norm(params, g, bounds)
        ok = jnp.isfinite(f_t) & jnp.all(jnp.isfinite(jac_t)) & ((f_t < f) | (at_floor & flatter))

        lam_ok = lam * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
        small = (f - f_t <= self.ftol * jnp.maximum(f, 1e-300)) | (
            jnp.linalg.norm(s) <= self.xtol * (self.xtol + jnp.linalg.norm(params))
        )
        new_state = LMState(
            residuals=jnp.where(ok, r_t, r),
            jac=jnp.where(ok, jac_t, jac),
            value=jnp.where(ok, f_t, f),
            damping=jnp.where(ok, lam_ok, lam * state.nu),
            nu=jnp.where(ok, 2.0, 2.0 * state.nu),
            n_evals=state.n_evals + 1,
            small_step=ok & small & (f_t < f),
        )
        return jnp.where(ok, trial, params), new_state

    def terminate(
        self, fun: Fun, params: Vector, state: LMState, args: Any, bounds: Bounds
    ) -> tuple[BoolScalar, IntScalar]:
        r, jac = state.residuals, state.jac
        g = jac.T @ r
        gnorm = projected_grad_norm(params, 2.0 * g, bounds)
        converged = (gnorm <= self.tol) | state.small_step | (state.value == 0.0)
        stuck = state.damping > self.max_damping

        # Stuck: at the rounding floor if even the undamped Gauss-Newton step on the free
        # parameters predicts a relative decrease below ftol.
        def at_floor(_: None) -> BoolScalar:
            free = free_mask(params, g, bounds)
            a = jac.T @ jac
            eps = 1e-12 * jnp.max(jnp.diagonal(a), initial=0.0) + 1e-300
            a = jnp.where(free[:, None] & free[None, :], a, 0.0) + jnp.diag(
                jnp.where(free, eps, 1.0)
            )
            gf = jnp.where(free, g, 0.0)
            predicted = gf @ linalg.solve(a, gf)  # g^T A^-1 g: Gauss-Newton decrease
            return predicted <= self.ftol * state.value

        floor = jax.lax.cond(stuck, at_floor, lambda _: jnp.asarray(False), None)
        converged = converged | (stuck & floor)
        status = jnp.where(converged, Status.SUCCESS, Status.STAGNATION)
        return converged | stuck, status.astype(jnp.int32)

    def info(self, params: Vector, state: LMState, bounds: Bounds) -> Info:
        return Info(
            value=state.value,
            grad_norm=projected_grad_norm(params, 2.0 * state.jac.T @ state.residuals, bounds),
            n_evals=state.n_evals,
            n_grad_evals=state.n_evals,
        )


__all__ = ["LMState", "LevenbergMarquardt"]
