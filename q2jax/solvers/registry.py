"""Method names (as in the Q2MM guide) -> solvers, and :func:`minimize`.

========================  ======================================================
``"jaxopt:lbfgs"``        L-BFGS (jaxopt update, zoom line search); no bounds
``"jaxopt:lbfgsb"``       L-BFGS-B (jaxopt); box bounds
``"optimistix:bfgs"``     BFGS (optimistix; fast to compile); no bounds
``"optax:adam"``          Adam with a learning-rate schedule; bounds by projection
``"lm"``                  Levenberg–Marquardt on ``residuals=``; bounds (projected)
``"Nelder-Mead"``         simplex, pure JAX; bounds by clipping
``"multi:<method>"``      multi-start over ``<method>`` (one vmapped call)
``"basinhopping:<m>"``    basin hopping with local method ``<m>``
========================  ======================================================

SciPy's names (``"L-BFGS-B"``, ``"Powell"``, ``"trust-constr"``,
``"least_squares"``) are not pure JAX: use :mod:`q2jax.adapters.scipy`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from q2jax.errors import InputError
from q2jax.solvers._common import as_bounds, as_params
from q2jax.solvers.adam import Adam
from q2jax.solvers.basin_hopping import BasinHopping
from q2jax.solvers.driver import AbstractSolver, Fun, print_progress, run_chunked, run_jit
from q2jax.solvers.lbfgs import LBFGS
from q2jax.solvers.levenberg_marquardt import LevenbergMarquardt
from q2jax.solvers.multistart import MultiStartResult, multistart_jit
from q2jax.solvers.nelder_mead import NelderMead
from q2jax.solvers.quasi_newton import OptimistixBFGS
from q2jax.solvers.result import SolverResult

METHODS = (
    "jaxopt:lbfgs",
    "jaxopt:lbfgsb",
    "optimistix:bfgs",
    "optax:adam",
    "lm",
    "Nelder-Mead",
)
UNBOUNDED = ("jaxopt:lbfgs", "optimistix:bfgs")
ALIASES = {
    "lbfgs": "jaxopt:lbfgs",
    "lbfgsb": "jaxopt:lbfgsb",
    "bfgs": "optimistix:bfgs",
    "adam": "optax:adam",
    "levenberg-marquardt": "lm",
    "nelder-mead": "Nelder-Mead",
    "neldermead": "Nelder-Mead",
}
SCIPY_ONLY = ("L-BFGS-B", "Powell", "trust-constr", "least_squares", "CG", "SLSQP", "TNC")
PREFIXES = ("multi:", "basinhopping:")
MULTI_OPTIONS = ("n_starts", "perturbation_pct", "seed", "include_initial", "starts")
BH_OPTIONS = ("niter", "temperature", "T", "stepsize", "seed", "niter_success")


def canonical_method(name: str) -> str:
    """The canonical spelling of a base method name (InputError if unknown)."""
    if name in METHODS:
        return name
    if name.lower() in ALIASES:
        return ALIASES[name.lower()]
    if name in SCIPY_ONLY:
        raise InputError(
            f"method {name!r} is SciPy's, not pure JAX: use q2jax.adapters.scipy.scipy_minimize "
            f"(or the pure-JAX 'jaxopt:lbfgsb' in place of 'L-BFGS-B')"
        )
    raise InputError(
        f"unknown method {name!r}; expected one of {METHODS}, optionally prefixed by {PREFIXES}"
    )


def available_methods() -> tuple[str, ...]:
    return METHODS + tuple(p + "<method>" for p in PREFIXES)


def get_solver(
    name: str, *, maxiter: int = 200, tol: float | None = None, **options: Any
) -> AbstractSolver:
    """A configured solver object for a base method name.

    ``tol``: projected-gradient infinity norm for the gradient methods; for
    Nelder–Mead it sets both ``xatol`` and ``fatol`` (as SciPy's ``tol``).
    ``options`` are the solver's attributes (e.g. ``history_size``,
    ``learning_rate``, ``schedule``, ``adaptive``, ``damping0``).
    """
    method = canonical_method(name)
    opts = dict(options)
    try:
        if method in ("jaxopt:lbfgs", "jaxopt:lbfgsb"):
            if tol is not None:
                opts["tol"] = tol
            return LBFGS(bounded=method == "jaxopt:lbfgsb", **opts)
        if method == "optimistix:bfgs":
            if tol is not None:
                opts["tol"] = tol
            return OptimistixBFGS(**opts)
        if method == "optax:adam":
            if tol is not None:
                opts["tol"] = tol
            opts.setdefault("decay_steps", maxiter)
            return Adam(**opts)
        if method == "lm":
            if tol is not None:
                opts["tol"] = tol
            return LevenbergMarquardt(**opts)
        if tol is not None:
            opts.setdefault("xatol", tol)
            opts.setdefault("fatol", tol)
        return NelderMead(**opts)
    except TypeError as err:
        raise InputError(f"bad option for method {method!r}: {err}") from None


def _split(options: dict[str, Any], keys: tuple[str, ...]) -> tuple[dict, dict]:
    inner = {k: v for k, v in options.items() if k not in keys}
    outer = {k: v for k, v in options.items() if k in keys}
    return outer, inner


def minimize(
    fun: Fun | None,
    params0: Any,
    args: Any = None,
    *,
    method: str = "jaxopt:lbfgsb",
    bounds: Any = None,
    maxiter: int = 200,
    tol: float | None = None,
    residuals: Fun | None = None,
    progress: bool | Callable[..., None] | None = None,
    chunk: int = 50,
    **options: Any,
) -> SolverResult | MultiStartResult:
    """Minimise ``fun(params, args)`` with the named method (jit-compiled; vmappable).

    Args:
        fun: scalar objective ``fun(params, args)``; may be ``None`` for
            ``"lm"``, which works on ``residuals`` and reports
            ``value = ‖residuals‖²`` (so pass the L2 term as residual rows).
        params0: 1-D start vector.
        args: anything ``fun`` takes as its second argument (e.g. an
            ``ObjectiveSpec`` pytree); traced, so one compilation serves all
            ``args`` of the same structure and ``jax.vmap`` over ``args`` works.
        method: see the module docstring.
        bounds: ``None``, ``(lower, upper)`` or SciPy-style pairs.
        maxiter: iteration budget (history length ``maxiter + 1``); for
            ``"basinhopping:<m>"`` the local solver's budget (hops: ``niter``).
        tol: see :func:`get_solver`.
        residuals: residual function ``residuals(params, args) -> vector``
            for ``"lm"`` (and ``"multi:lm"``, ``"basinhopping:lm"``).
        progress: ``True`` (print) or a callable ``(method, iteration,
            maxiter, loss, n_evals)``: run in host-side chunks of ``chunk``
            iterations; the same iterates, not vmappable. Single methods only.
        options: solver attributes; for ``"multi:"`` also ``n_starts``,
            ``perturbation_pct``, ``seed``, ``include_initial``, ``starts``;
            for ``"basinhopping:"`` also ``niter``, ``temperature`` (or
            ``T``), ``stepsize``, ``seed``, ``niter_success``.

    Returns:
        a :class:`SolverResult` (a :class:`MultiStartResult` for ``"multi:"``).
    """
    prefix = next((p for p in PREFIXES if method.startswith(p)), "")
    base = canonical_method(method[len(prefix) :])
    if base == "lm":
        if residuals is None:
            raise InputError(
                "method 'lm' needs the residual function: minimize(..., residuals=res)"
            )
        target = residuals
    else:
        if fun is None:
            raise InputError(f"method {method!r} needs a scalar objective fun(params, args)")
        target = fun
    if base in UNBOUNDED and bounds is not None:
        raise InputError(f"{base!r} does not take bounds; use 'jaxopt:lbfgsb'")
    p0 = as_params(params0)
    box = as_bounds(bounds, p0)

    if prefix == "multi:":
        outer, inner = _split(options, MULTI_OPTIONS)
        local = get_solver(base, maxiter=maxiter, tol=tol, **inner)
        if progress:
            raise InputError("progress reporting is not available for multi-start runs")
        return multistart_jit(local, target, p0, args, box, maxiter, **outer)

    if prefix == "basinhopping:":
        outer, inner = _split(options, BH_OPTIONS)
        if "T" in outer:
            outer["temperature"] = outer.pop("T")
        local = get_solver(base, maxiter=maxiter, tol=tol, **inner)
        solver: AbstractSolver = BasinHopping(local=local, local_maxiter=maxiter, **outer)
        budget = solver.niter
    else:
        solver = get_solver(base, maxiter=maxiter, tol=tol, **options)
        budget = maxiter

    if progress:
        report = print_progress if progress is True else progress
        return run_chunked(solver, target, p0, args, box, budget, chunk=chunk, progress=report)
    return run_jit(solver, target, p0, args, box, budget)


__all__ = [
    "ALIASES",
    "METHODS",
    "available_methods",
    "canonical_method",
    "get_solver",
    "minimize",
]
