"""``ScipyOptimizer``, ``MultiStartOptimizer`` and ``JaxOptOptimizer`` (the Q2MM guide's names).

- :class:`ScipyOptimizer` runs :func:`q2jax.adapters.scipy.scipy_minimize`
  on any :class:`~q2jax.workflows.ObjectiveFunction` (JAX or not).
- :class:`JaxOptOptimizer` runs a pure-JAX solver of :mod:`q2jax.solvers`
  on the frozen ``ObjectiveSpec`` (``minimize(loss, p0, spec, ...)``) in
  host-side chunks, so progress is printed between compiled chunks.
- ``MultiStartOptimizer`` (:mod:`q2jax._workflows_multistart`) runs either from many starts.

Each ``optimize`` rebinds ``objective.forcefield`` to the fitted parameters
(force fields are immutable) and evaluates the honest figures before and after.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import jax.numpy as jnp
import numpy as np

from q2jax._workflows_results import OptimizationResult, floor_note
from q2jax.errors import InputError


def log(message: str) -> None:
    """Progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def finish(objective: Any, result: Any, honest: bool = True) -> Any:
    """Apply the result to ``objective.forcefield`` (if finite) and attach the honest
    figures of the start and fitted force fields and the score notes."""
    start = objective.forcefield
    ok = np.isfinite(result.final_score) and np.all(np.isfinite(result.final_params))
    if ok:
        objective.apply(result.final_params)
    else:
        result.notes.append("the run ended non-finite: the force field was left at its start")
    result.labels = start.get_param_type_labels()
    result.frequencies_at = objective.frequencies_at
    if honest:
        result.start_figures = objective.honest_figures(result.initial_params)
        result.final_figures = objective.honest_figures()
    note = floor_note(start.kinds, [m.name for m in objective.molecules], start.form)
    if note:
        result.notes.append(note)
    return result


def bounds_of(objective: Any, use: bool):
    return objective.get_bounds() if use else None


# --- SciPy ---------------------------------------------------------------------------------


class ScipyOptimizer:
    """SciPy minimisation of an objective (Q2MM's ``ScipyOptimizer`` arguments).

    ``jac``: ``None`` finite differences with absolute step ``eps``;
    ``"auto"`` the objective's exact gradient when it has one (JAX engine),
    else finite differences; ``"analytical"`` the exact gradient, InputError
    if the engine has none. ``verbose`` prints one line every
    ``progress_every`` iterations to stderr.
    """

    title = "ScipyOptimizer"

    def __init__(
        self,
        method: str = "L-BFGS-B",
        maxiter: int = 500,
        ftol: float = 1e-8,
        eps: float = 1e-3,
        use_bounds: bool = True,
        verbose: bool = True,
        jac: str | None = None,
        progress_every: int = 10,
    ):
        if jac not in (None, "auto", "analytical"):
            raise InputError(f"jac must be None, 'auto' or 'analytical'; got {jac!r}")
        self.method, self.maxiter, self.ftol, self.eps = method, int(maxiter), ftol, eps
        self.use_bounds, self.verbose, self.jac = use_bounds, verbose, jac
        self.progress_every = max(1, int(progress_every))

    def resolve_jac(self, objective: Any) -> str | None:
        """``"analytical"`` or ``None`` (finite differences) for this objective."""
        exact = bool(getattr(objective, "has_analytical_gradient", False))
        if self.jac == "analytical" and not exact:
            raise InputError(
                f"jac='analytical' but the objective's engine "
                f"({type(getattr(objective, 'engine', None)).__name__}) has no analytical "
                "gradient; use jac='auto' or jac=None (finite differences), or JaxEngine()"
            )
        return "analytical" if self.jac is not None and exact else None

    def run(self, objective: Any, x0: Any = None, *, verbose: bool | None = None) -> Any:
        """One SciPy run from ``x0`` (default: the objective's current parameters);
        no honest figures, ``objective.forcefield`` untouched."""
        from q2jax.adapters.scipy import DERIVATIVE_FREE, scipy_minimize

        verbose = self.verbose if verbose is None else verbose
        p0 = np.asarray(objective.forcefield.params if x0 is None else x0, float)
        jac = None if self.method in DERIVATIVE_FREE else self.resolve_jac(objective)
        if self.method in DERIVATIVE_FREE and self.jac == "analytical":
            raise InputError(
                f"method {self.method!r} is derivative-free; jac='analytical' is invalid"
            )
        n_iter, h0, e0 = [0], len(objective.history), objective.n_eval
        tag = f"[{self.title} {self.method}]"

        def callback(*_: Any, **__: Any) -> None:
            n_iter[0] += 1
            if verbose and n_iter[0] % self.progress_every == 0 and objective.history[h0:]:
                log(
                    f"{tag} iter {n_iter[0]:>5d}/{self.maxiter}  score "
                    f"{min(objective.history[h0:]):.8g}  evals {objective.n_eval - e0}"
                )

        if verbose:
            log(
                f"{tag} start: {objective.forcefield.n_params} parameters, jac="
                f"{jac or 'finite-difference'}"
            )
        res = scipy_minimize(
            objective,
            p0,
            method=self.method,
            jac=jac,
            bounds=bounds_of(objective, self.use_bounds),
            maxiter=self.maxiter,
            ftol=self.ftol,
            eps=self.eps,
            callback=callback if self.method != "least_squares" else None,
        )
        if verbose:
            log(
                f"{tag} done: score {res.initial_value:.8g} -> {res.value:.8g} "
                f"({res.n_evals} evaluations, {res.wall_time:.2f} s)"
            )
        return OptimizationResult(
            success=res.success,
            message=res.message,
            initial_score=res.initial_value,
            final_score=res.value,
            n_iterations=res.n_iter,
            n_evaluations=res.n_evals,
            initial_params=p0,
            final_params=np.asarray(res.params, float),
            history=list(res.history),
            method=res.method,
            jac=res.jac,
            wall_time=res.wall_time,
            title=self.title,
        )

    def optimize(self, objective: Any) -> OptimizationResult:
        """Minimise, apply the result to ``objective.forcefield``, attach honest figures."""
        return finish(objective, self.run(objective))


# --- pure JAX ----------------------------------------------------------------------------------


def _jax_result(sol: Any, p0: np.ndarray, title: str, wall: float) -> OptimizationResult:
    hist = np.asarray(sol.history)[: int(sol.n_iter) + 1]
    return OptimizationResult(
        success=bool(sol.converged),
        message=sol.message,
        initial_score=float(hist[0]),
        final_score=float(sol.value),
        n_iterations=int(sol.n_iter),
        n_evaluations=int(sol.n_evals),
        initial_params=p0,
        final_params=np.asarray(sol.params, float),
        history=[float(v) for v in hist],
        method=sol.method,
        jac="analytical (autodiff)",
        wall_time=wall,
        title=title,
    )


def require_jax(objective: Any, who: str) -> None:
    if not getattr(objective, "is_jax", False):
        raise InputError(
            f"{who} runs pure-JAX solvers on the frozen ObjectiveSpec: it needs an "
            f"ObjectiveFunction with the JAX engine (JaxEngine()), not "
            f"{type(getattr(objective, 'engine', None)).__name__}; use ScipyOptimizer instead"
        )


class JaxOptOptimizer:
    """A pure-JAX solver on the frozen ``ObjectiveSpec`` (Workflow D).

    ``method``: ``"lbfgs"`` (jaxopt L-BFGS, unbounded), ``"lbfgsb"``
    (jaxopt L-BFGS-B, the force field's bounds when ``use_bounds``), or any
    :mod:`q2jax.solvers` name (``"adam"``, ``"lm"``, ``"Nelder-Mead"``).
    ``tol``: projected-gradient infinity norm (default the solver's, 1e-8).
    ``verbose`` prints one line per chunk of ``chunk`` iterations to stderr.
    """

    title = "JaxOptOptimizer"

    def __init__(
        self,
        method: str = "lbfgs",
        maxiter: int = 500,
        tol: float | None = None,
        use_bounds: bool = True,
        verbose: bool = True,
        chunk: int = 50,
        **options: Any,
    ):
        from q2jax.solvers.registry import canonical_method

        self.solver_method = canonical_method(method)
        self.method, self.maxiter, self.tol = method, int(maxiter), tol
        self.use_bounds, self.verbose, self.chunk = use_bounds, verbose, int(chunk)
        self.options = options

    def bounds_for(self, objective: Any):
        from q2jax.solvers.registry import UNBOUNDED

        if self.solver_method in UNBOUNDED or not self.use_bounds:
            return None
        return objective.get_bounds()

    def run(self, objective: Any, x0: Any = None, *, verbose: bool | None = None) -> Any:
        """One solver run from ``x0`` (default the current parameters), in compiled chunks."""
        from q2jax.objective import loss, residuals
        from q2jax.solvers import minimize

        require_jax(objective, self.title)
        verbose = self.verbose if verbose is None else verbose
        p0 = np.asarray(objective.forcefield.params if x0 is None else x0, float)

        def progress(method: str, it: int, maxiter: int, value: float, n_evals: int) -> None:
            if verbose:
                log(
                    f"[{self.title} {method}] iter {it:>5d}/{maxiter}  score {value:.8g}  "
                    f"evals {n_evals}"
                )

        extra = {"residuals": residuals} if self.solver_method == "lm" else {}
        t0 = time.perf_counter()
        sol = minimize(
            loss,
            jnp.asarray(p0),
            objective.spec,
            method=self.solver_method,
            bounds=self.bounds_for(objective),
            maxiter=self.maxiter,
            tol=self.tol,
            progress=progress,
            chunk=self.chunk,
            **extra,
            **self.options,
        )
        res = _jax_result(sol, p0, self.title, time.perf_counter() - t0)
        objective.n_eval += res.n_evaluations
        objective.history.extend(res.history)
        return res

    def optimize(self, objective: Any) -> OptimizationResult:
        return finish(objective, self.run(objective))


__all__ = [
    "JaxOptOptimizer",
    "ScipyOptimizer",
    "finish",
    "log",
    "require_jax",
]
