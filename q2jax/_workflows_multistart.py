"""``MultiStartOptimizer``: the best of many starts (Workflow B).

Starts ``x_i' = x_i (1 + p u_i)``, ``u_i ~ U(-1, 1)``, ``p = perturbation_pct / 100``
(start 0 is the start itself; clipped to the bounds; a zero parameter moves by
``p u_i``), as :func:`q2jax.solvers.perturbed_starts`. For a JAX objective all
starts run in one ``jax.vmap``-ed compiled call of the pure-JAX equivalent of
the optimizer (:data:`SCIPY_TO_JAX`); for other engines, or SciPy methods
without a pure-JAX equivalent, one run per start.
"""

from __future__ import annotations

import time
from typing import Any

import jax.numpy as jnp
import numpy as np

from q2jax._workflows_optimizers import (
    JaxOptOptimizer,
    ScipyOptimizer,
    bounds_of,
    finish,
    log,
)
from q2jax._workflows_results import MultiStartResult
from q2jax.errors import InputError

SCIPY_TO_JAX = {
    "L-BFGS-B": "jaxopt:lbfgsb",
    "BFGS": "jaxopt:lbfgs",
    "Nelder-Mead": "Nelder-Mead",
    "least_squares": "lm",
}


def pure_jax_method(optimizer: Any) -> str | None:
    """The pure-JAX method that stands in for ``optimizer`` under vmap (None: no equivalent)."""
    if isinstance(optimizer, JaxOptOptimizer):
        return optimizer.solver_method
    if isinstance(optimizer, ScipyOptimizer):
        name = SCIPY_TO_JAX.get(optimizer.method)
        if name == "jaxopt:lbfgsb" and not optimizer.use_bounds:
            return "jaxopt:lbfgs"
        return name
    return None


class MultiStartOptimizer:
    """Run ``optimizer`` from ``n_starts`` perturbed starts and keep the best.

    For a JAX objective all starts run in one compiled ``jax.vmap`` call of
    the pure-JAX equivalent of ``optimizer`` (``ScipyOptimizer("L-BFGS-B")``
    → ``jaxopt:lbfgsb``, its ``maxiter``, the solver's own gradient
    tolerance; SciPy's ``ftol`` does not carry over); otherwise the starts run
    one after another with ``optimizer`` itself. The result names what ran.
    """

    title = "MultiStartOptimizer"

    def __init__(
        self, optimizer: Any, n_starts: int = 10, perturbation_pct: float = 10.0, seed: int = 0
    ):
        if int(n_starts) < 1:
            raise InputError(f"n_starts must be at least 1; got {n_starts}")
        if not np.isfinite(perturbation_pct) or perturbation_pct < 0:
            raise InputError(f"perturbation_pct must be >= 0; got {perturbation_pct!r}")
        self.optimizer, self.n_starts = optimizer, int(n_starts)
        self.perturbation_pct, self.seed = float(perturbation_pct), int(seed)

    def starts(self, objective: Any, x0: Any = None) -> np.ndarray:
        """The (n_starts, n) start points (row 0 = ``x0``, default the current parameters)."""
        from q2jax.solvers import as_bounds, perturbed_starts

        p0 = jnp.asarray(objective.forcefield.params if x0 is None else x0, jnp.float64)
        box = as_bounds(bounds_of(objective, getattr(self.optimizer, "use_bounds", True)), p0)
        starts = perturbed_starts(p0, self.n_starts, self.perturbation_pct, self.seed, box)
        return np.asarray(starts)

    def run(self, objective: Any, x0: Any = None, *, verbose: bool | None = None) -> Any:
        """All starts around ``x0`` (no honest figures, ``objective.forcefield`` untouched)."""
        verbose = getattr(self.optimizer, "verbose", False) if verbose is None else verbose
        starts = self.starts(objective, x0)
        method = pure_jax_method(self.optimizer) if getattr(objective, "is_jax", False) else None
        t0 = time.perf_counter()
        if method is not None:
            res = self._vmapped(objective, starts, method, verbose)
        else:
            res = self._sequential(objective, starts, verbose)
        res.wall_time = time.perf_counter() - t0
        if verbose:
            log(
                f"[{self.title}] {self.n_starts} starts done in {res.wall_time:.2f} s; best start "
                f"{res.best_index}: score {res.final_score:.8g}"
            )
        return res

    def optimize(self, objective: Any) -> MultiStartResult:
        return finish(objective, self.run(objective))

    def _vmapped(
        self, objective: Any, starts: np.ndarray, method: str, verbose: bool
    ) -> MultiStartResult:
        from q2jax.objective import loss, residuals
        from q2jax.solvers import minimize

        opt = self.optimizer
        if verbose:
            log(f"[{self.title}] {self.n_starts} starts of {method} in one vmapped compiled call")
        bounds = (
            opt.bounds_for(objective)
            if isinstance(opt, JaxOptOptimizer)
            else bounds_of(objective, opt.use_bounds)
        )
        extra = {"residuals": residuals} if method == "lm" else {}
        if isinstance(opt, JaxOptOptimizer):
            extra.update(opt.options)
        tol = opt.tol if isinstance(opt, JaxOptOptimizer) else None
        ms = minimize(
            loss,
            jnp.asarray(starts[0]),
            objective.spec,
            method="multi:" + method,
            bounds=bounds,
            maxiter=opt.maxiter,
            tol=tol,
            starts=jnp.asarray(starts),
            **extra,
        )
        a = ms.all
        best = int(ms.best_index)
        hist = np.asarray(a.history[best])[: int(a.n_iter[best]) + 1]
        n_evals = int(np.sum(np.asarray(a.n_evals)))
        objective.n_eval += n_evals
        objective.history.extend(float(v) for v in hist)
        scores0 = np.asarray(a.history[:, 0], float)
        notes = []
        if isinstance(opt, ScipyOptimizer):
            notes.append(
                f"SciPy {opt.method!r} ran as the pure-JAX {method!r} so that all "
                f"{self.n_starts} starts share one vmapped compiled call"
            )
        return MultiStartResult(
            success=bool(a.converged[best]),
            message=ms.message,
            initial_score=float(scores0[0]),
            final_score=float(a.value[best]),
            n_iterations=int(a.n_iter[best]),
            n_evaluations=n_evals,
            initial_params=starts[0],
            final_params=np.asarray(a.params[best], float),
            history=[float(v) for v in hist],
            method="multi:" + method,
            jac="analytical (autodiff)",
            title=self.title,
            notes=notes,
            n_starts=self.n_starts,
            start_params=starts,
            start_scores=scores0,
            final_scores=np.asarray(a.value, float),
            start_iterations=np.asarray(a.n_iter),
            start_success=np.asarray(a.converged),
            best_index=best,
            vmapped=True,
            all_final_params=np.asarray(a.params, float),
        )

    def _sequential(self, objective: Any, starts: np.ndarray, verbose: bool) -> MultiStartResult:
        runs = []
        for i, x in enumerate(starts):
            r = self.optimizer.run(objective, x, verbose=False)
            runs.append(r)
            if verbose:
                log(
                    f"[{self.title}] start {i + 1}/{self.n_starts}: {r.initial_score:.8g} -> "
                    f"{r.final_score:.8g}"
                )
        finals = np.array([r.final_score for r in runs])
        best = int(np.argmin(np.where(np.isfinite(finals), finals, np.inf)))
        b = runs[best]
        return MultiStartResult(
            success=b.success,
            message=b.message,
            initial_score=runs[0].initial_score,
            final_score=b.final_score,
            n_iterations=b.n_iterations,
            n_evaluations=sum(r.n_evaluations for r in runs),
            initial_params=starts[0],
            final_params=b.final_params,
            history=b.history,
            method=f"multi:{b.method}",
            jac=b.jac,
            title=self.title,
            n_starts=self.n_starts,
            start_params=starts,
            start_scores=np.array([r.initial_score for r in runs]),
            final_scores=finals,
            start_iterations=np.array([r.n_iterations for r in runs]),
            start_success=np.array([r.success for r in runs]),
            best_index=best,
            vmapped=False,
            all_final_params=np.stack([r.final_params for r in runs]),
        )


__all__ = ["SCIPY_TO_JAX", "MultiStartOptimizer", "pure_jax_method"]
