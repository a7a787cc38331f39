"""``OptimizationLoop`` (grad-simp cycling) and ``compute_sensitivity`` on an ObjectiveFunction.

Cycle (Norrby & Liljefors 1998, as in Q2MM): full-space pass on all
parameters; sensitivity ``d1``, ``d2`` by central differences with the force
field's per-kind steps ``h`` (2N + 1 evaluations), ``simp_var = d2 / d1²``;
simplex on the ``max_params`` best-ranked parameters; stop when the cycle's
fractional improvement ``(f_before − f_after) / f_before`` is below
``convergence``.

- Pure-JAX ``full_method`` ("jaxopt:lbfgs", "jaxopt:lbfgsb", "optax:adam",
  "lm", "multi:jaxopt:...") with the JAX engine: the whole loop is
  :func:`q2jax.solvers.optimization_loop`, one jitted ``while_loop``
  (``verbose`` runs the same compiled cycle from a host loop, one line per cycle).
- SciPy ``full_method`` ("L-BFGS-B", "multi:L-BFGS-B", "Powell", ...), or
  any non-JAX engine: a host-side cycle of :class:`ScipyOptimizer` (or
  :class:`MultiStartOptimizer`) for the full pass, :func:`compute_sensitivity`,
  and SciPy's ``simp_method`` on the subspace (Q2MM's ``xatol = 1e-6``,
  ``fatol = 1e-8``); a pass is kept only if it lowers the score.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

import jax.numpy as jnp
import numpy as np

from q2jax._workflows_multistart import MultiStartOptimizer
from q2jax._workflows_optimizers import ScipyOptimizer, finish, log, require_jax
from q2jax._workflows_results import LoopResult, SensitivityResult
from q2jax.errors import InputError

JAX_FULL = ("jaxopt:lbfgs", "jaxopt:lbfgsb", "optax:adam", "lm", "optimistix:bfgs")


def _labels(objective: Any) -> list[str]:
    return objective.forcefield.get_param_type_labels()


def compute_sensitivity(
    objective: Any,
    metric: str = "simp_var",
    mode: str = "fd",
    *,
    step_sizes: Any = None,
    params: Any = None,
) -> SensitivityResult:
    """Sensitivity of the objective to each parameter at ``params`` (default current).

    ``mode="fd"`` (Q2MM): central differences with ``step_sizes`` (default
    ``ForceField.get_step_sizes()``), 2N + 1 evaluations of ``objective(x)``
    (for a JAX objective, its one compiled value function, shared with the
    optimizers: no further compilation); ``mode="autodiff"`` (JAX engine):
    exact gradient and Hessian diagonal from :func:`q2jax.solvers.compute_sensitivity`.
    """
    from q2jax.solvers.sensitivity import METRICS, MODES, rank

    if metric not in METRICS or mode not in MODES:
        raise InputError(f"metric must be one of {METRICS} and mode one of {MODES}")
    ff = objective.forcefield
    p = np.asarray(ff.params if params is None else params, float)
    h = np.asarray(ff.get_step_sizes() if step_sizes is None else step_sizes, float)
    if h.shape != p.shape:
        raise InputError(f"step_sizes has shape {h.shape}; expected {p.shape}")
    if mode == "autodiff":
        if not getattr(objective, "is_jax", False):
            raise InputError("mode='autodiff' needs the JAX engine; use mode='fd'")
        from q2jax.objective import loss
        from q2jax.solvers import compute_sensitivity as core

        s = core(loss, jnp.asarray(p), objective.spec, jnp.asarray(h), metric, mode)
        objective.n_eval += int(s.n_evals)
        return SensitivityResult(
            np.asarray(s.d1),
            np.asarray(s.d2),
            np.asarray(s.simp_var),
            np.asarray(s.ranking),
            metric,
            int(s.n_evals),
            mode,
            float(s.value),
            _labels(objective),
        )
    f0 = objective(p)
    active = h != 0
    d1, d2 = np.zeros_like(p), np.zeros_like(p)
    for i in np.flatnonzero(active):
        up, down = p.copy(), p.copy()
        up[i] += h[i]
        down[i] -= h[i]
        fp, fm = objective(up), objective(down)
        d1[i] = (fp - fm) / (2 * h[i])
        d2[i] = (fp + fm - 2 * f0) / h[i] ** 2
    nonzero = active & (d1 != 0)
    simp_var = np.where(nonzero, d2 / np.where(nonzero, d1 * d1, 1.0), np.inf)
    ranking = np.asarray(rank(jnp.asarray(d1), jnp.asarray(simp_var), metric, jnp.asarray(active)))
    return SensitivityResult(
        d1,
        d2,
        simp_var,
        ranking,
        metric,
        1 + 2 * int(active.sum()),
        mode,
        float(f0),
        _labels(objective),
    )


class _Subspace:
    """The objective as a function of the parameters ``idx`` only (others held at ``base``)."""

    def __init__(self, objective: Any, idx: np.ndarray, base: np.ndarray):
        self.objective, self.idx, self.base = objective, idx, base

    def full(self, z: np.ndarray) -> np.ndarray:
        x = self.base.copy()
        x[self.idx] = z
        return x

    def __call__(self, z: np.ndarray) -> float:
        return self.objective(self.full(np.asarray(z, float)))


class OptimizationLoop:
    """Grad-simp cycling with the Q2MM guide's arguments (see the module docstring).

    ``sensitivity_mode``: "fd" (Q2MM) or "autodiff" (JAX engine);
    ``n_starts`` / ``perturbation_pct`` / ``seed`` configure "multi:" full passes.
    """

    def __init__(
        self,
        objective: Any,
        *,
        max_params: int = 3,
        max_cycles: int = 10,
        convergence: float = 0.01,
        full_method: str = "L-BFGS-B",
        simp_method: str = "Nelder-Mead",
        full_maxiter: int = 200,
        simp_maxiter: int = 200,
        sensitivity_metric: str = "simp_var",
        eps: float = 1e-3,
        full_jac: str | None = None,
        verbose: bool = True,
        sensitivity_mode: str = "fd",
        n_starts: int = 10,
        perturbation_pct: float = 10.0,
        seed: int = 0,
    ):
        if max_params < 1 or max_cycles < 0:
            raise InputError("max_params must be >= 1 and max_cycles >= 0")
        self.objective = objective
        self.max_params, self.max_cycles, self.convergence = max_params, max_cycles, convergence
        self.full_method, self.simp_method = full_method, simp_method
        self.full_maxiter, self.simp_maxiter = full_maxiter, simp_maxiter
        self.sensitivity_metric, self.sensitivity_mode = sensitivity_metric, sensitivity_mode
        self.eps, self.full_jac, self.verbose = eps, full_jac, verbose
        self.n_starts, self.perturbation_pct, self.seed = n_starts, perturbation_pct, seed

    @property
    def pure_jax(self) -> bool:
        base = self.full_method.removeprefix("multi:")
        return base in JAX_FULL or base.lower() in ("lbfgs", "lbfgsb", "adam")

    def run(self) -> LoopResult:
        t0 = time.perf_counter()
        res = self._run_jax() if self.pure_jax else self._run_host()
        res.wall_time = time.perf_counter() - t0
        return finish(self.objective, res)

    # --- one jitted loop ----------------------------------------------------------------------
    def _run_jax(self) -> LoopResult:
        from q2jax.objective import loss, residuals
        from q2jax.solvers import optimization_loop
        from q2jax.solvers.registry import UNBOUNDED, canonical_method
        from q2jax.solvers.sensitivity import rank

        obj = self.objective
        require_jax(obj, f"OptimizationLoop(full_method={self.full_method!r})")
        if self.simp_method != "Nelder-Mead":
            raise InputError("a pure-JAX OptimizationLoop has simp_method 'Nelder-Mead' only")
        multi = self.full_method.startswith("multi:")
        base = canonical_method(self.full_method.removeprefix("multi:"))
        opts = (
            {
                "n_starts": self.n_starts,
                "perturbation_pct": self.perturbation_pct,
                "seed": self.seed,
            }
            if multi
            else {}
        )
        p0 = np.asarray(obj.forcefield.params, float)
        stream = sys.stderr if self.verbose else sys.stdout
        with contextlib.redirect_stdout(stream):
            c = optimization_loop(
                loss,
                jnp.asarray(p0),
                obj.spec,
                bounds=None if base in UNBOUNDED else obj.get_bounds(),
                max_params=min(self.max_params, p0.size),
                max_cycles=self.max_cycles,
                convergence=self.convergence,
                full_method=self.full_method,
                simp_method="Nelder-Mead",
                full_maxiter=self.full_maxiter,
                simp_maxiter=self.simp_maxiter,
                full_options=opts,
                residuals=residuals if base == "lm" else None,
                steps=obj.forcefield.get_step_sizes(),
                metric=self.sensitivity_metric,
                sensitivity_mode=self.sensitivity_mode,
                verbose=self.verbose,
            )
        n = int(c.n_cycles)
        labels = _labels(obj)
        sens = []
        for k in range(n):
            d1, d2, sv = (np.asarray(a[k]) for a in (c.d1, c.d2, c.simp_var))
            order = np.asarray(rank(jnp.asarray(d1), jnp.asarray(sv), self.sensitivity_metric))
            sens.append(
                SensitivityResult(
                    d1,
                    d2,
                    sv,
                    order,
                    self.sensitivity_metric,
                    1 + (p0.size if self.sensitivity_mode == "autodiff" else 2 * p0.size),
                    self.sensitivity_mode,
                    labels=labels,
                )
            )
        scores = [float(v) for v in c.cycle_scores_trimmed()]
        obj.n_eval += int(c.n_evals)
        obj.history.extend(scores)
        return LoopResult(
            success=bool(c.converged),
            initial_score=float(c.initial_value),
            final_score=float(c.value),
            n_cycles=n,
            n_eval=int(c.n_evals),
            cycle_scores=scores,
            selected_indices=c.selected_trimmed(),
            sensitivity_results=sens,
            message=c.message,
            history=scores,
            initial_params=p0,
            final_params=np.asarray(c.params, float),
            method=f"{c.method} (one jitted loop)",
        )

    # --- host-side cycle ----------------------------------------------------------------------
    def _full_optimizer(self) -> Any:
        base = self.full_method.removeprefix("multi:")
        opt = ScipyOptimizer(
            base, self.full_maxiter, eps=self.eps, jac=self.full_jac, verbose=False
        )
        if self.full_method.startswith("multi:"):
            return MultiStartOptimizer(opt, self.n_starts, self.perturbation_pct, self.seed)
        return opt

    def _simplex(self, x: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, float]:
        from q2jax.adapters.scipy import scipy_minimize

        sub = _Subspace(self.objective, idx, x)
        lo, hi = self.objective.get_bounds()
        r = scipy_minimize(
            sub,
            x[idx],
            method=self.simp_method,
            bounds=(lo[idx], hi[idx]),
            maxiter=self.simp_maxiter,
            options={"xatol": 1e-6, "fatol": 1e-8} if self.simp_method == "Nelder-Mead" else None,
        )
        return sub.full(np.asarray(r.params, float)), float(r.value)

    def _run_host(self) -> LoopResult:
        obj = self.objective
        full = self._full_optimizer()
        x = np.asarray(obj.forcefield.params, float)
        p0 = x.copy()
        n_eval0, h0 = obj.n_eval, len(obj.history)
        f = f_init = obj(x)
        scores, selected, sens_all = [f], [], []
        converged, message = False, "maximum number of cycles reached"
        method = f"grad-simp({self.full_method}+{self.simp_method}, host-side cycle)"
        for cycle in range(self.max_cycles):
            f_before = f
            r = full.run(obj, x, verbose=False)
            f_full = r.final_score
            if f_full < f:
                x, f = np.asarray(r.final_params, float), f_full
            s = compute_sensitivity(obj, self.sensitivity_metric, self.sensitivity_mode, params=x)
            idx = np.asarray(s.ranking[: min(self.max_params, x.size)])
            x_s, f_s = self._simplex(x, idx)
            if f_s < f:
                x, f = x_s, f_s
            obj.forcefield = obj.forcefield.with_params(jnp.asarray(x))
            scores.append(f)
            selected.append([int(i) for i in idx])
            sens_all.append(s)
            if self.verbose:
                names = [_labels(obj)[i] for i in idx]
                log(
                    f"[OptimizationLoop] cycle {cycle + 1}: {f_before:.8g} -> full {f_full:.8g} "
                    f"-> simplex {f:.8g} (params {names})"
                )
            change = (f_before - f) / f_before if f_before > 0 else 0.0
            if 0 <= change < self.convergence:
                converged, message = True, "converged"
                break
        obj.forcefield = obj.forcefield.with_params(jnp.asarray(p0))  # finish() applies x
        return LoopResult(
            success=converged,
            initial_score=f_init,
            final_score=f,
            n_cycles=len(selected),
            n_eval=obj.n_eval - n_eval0,
            cycle_scores=scores,
            selected_indices=selected,
            sensitivity_results=sens_all,
            message=message,
            history=list(obj.history[h0:]),
            initial_params=p0,
            final_params=x,
            method=method,
        )


__all__ = ["OptimizationLoop", "compute_sensitivity"]
