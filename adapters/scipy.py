"""SciPy optimisers for any objective, JAX or not (``q2jax.adapters.scipy``).

Objective protocol (duck-typed; a q2jax ``ObjectiveFunction``, an OpenMM- or
Tinker-backed objective, or :func:`jax_objective` all follow it):

- ``objective(x: np.ndarray) -> float`` (required);
- ``objective.gradient(x) -> np.ndarray`` and/or
  ``objective.value_and_grad(x) -> (float, np.ndarray)`` (optional);
- ``objective.has_analytical_gradient: bool`` (optional; says whether
  ``gradient`` is exact rather than itself a finite difference);
- ``objective.residuals(x) -> np.ndarray`` (optional; for ``least_squares``),
  ``objective.jacobian(x) -> np.ndarray`` (optional).

``jac`` (gradient-based methods): ``None`` — SciPy finite differences with
absolute step ``eps``; ``"auto"`` — the objective's analytical gradient when
it provides one (``has_analytical_gradient`` true, or, without that
attribute, a ``gradient`` / ``value_and_grad`` method), else finite
differences; ``"analytical"`` — the objective's gradient, and
:class:`~q2jax.errors.InputError` if it has none.

Evaluation counting follows the Q2MM guide: ``n_evals`` counts objective
values (including SciPy's finite-difference probes; a ``value_and_grad`` call
counts once), ``n_grad_evals`` the analytical gradient calls, and
``history`` holds the objective value of every evaluation in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from q2jax.errors import InputError

GRADIENT_METHODS = ("L-BFGS-B", "BFGS", "CG", "TNC", "SLSQP", "trust-constr")
DERIVATIVE_FREE = ("Nelder-Mead", "Powell", "COBYLA")
BOUNDED = ("L-BFGS-B", "TNC", "SLSQP", "trust-constr", "Nelder-Mead", "Powell", "COBYLA")
JAC_MODES = (None, "auto", "analytical")


@dataclass
class ScipyResult:
    """Outcome of a SciPy run (host-side; mirrors :class:`q2jax.solvers.SolverResult`)."""

    params: np.ndarray
    value: float
    initial_value: float
    n_evals: int
    n_grad_evals: int
    n_iter: int
    success: bool
    message: str
    wall_time: float
    method: str
    jac: str
    history: list[float] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return self.success

    @property
    def improvement(self) -> float:
        v0 = self.initial_value
        return 0.0 if v0 == 0 else (v0 - self.value) / v0

    def summary(self) -> str:
        return (
            f"Method: {self.method} (jac={self.jac})\n"
            f"Success: {self.success} ({self.message})\n"
            f"Score: {self.initial_value:.6g} -> {self.value:.6g} "
            f"({self.improvement:.1%} improvement)\n"
            f"Iterations: {self.n_iter}, Evaluations: {self.n_evals} "
            f"({self.n_grad_evals} gradients), wall time {self.wall_time:.3f} s"
        )


class _Counted:
    """Wraps an objective; counts calls and records the value of every evaluation."""

    def __init__(self, objective: Any):
        self.objective = objective
        self.n_evals = 0
        self.n_grad_evals = 0
        self.history: list[float] = []

    def __call__(self, x: np.ndarray) -> float:
        f = float(self.objective(np.asarray(x, float)))
        self.n_evals += 1
        self.history.append(f)
        return f

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.asarray(x, float)
        if callable(getattr(self.objective, "value_and_grad", None)):
            f, g = self.objective.value_and_grad(x)
            f = float(f)
            self.n_evals += 1
            self.history.append(f)
        else:
            f = self(x)
            g = self.objective.gradient(x)
        self.n_grad_evals += 1
        return f, np.asarray(g, float)

    def residuals(self, x: np.ndarray) -> np.ndarray:
        r = np.asarray(self.objective.residuals(np.asarray(x, float)), float)
        self.n_evals += 1
        self.history.append(float(r @ r))
        return r

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        self.n_grad_evals += 1
        return np.asarray(self.objective.jacobian(np.asarray(x, float)), float)


def has_gradient(objective: Any) -> bool:
    """True if the objective offers a ``gradient`` or ``value_and_grad`` method."""
    return callable(getattr(objective, "gradient", None)) or callable(
        getattr(objective, "value_and_grad", None)
    )


def use_analytical_gradient(objective: Any, jac: str | None, method: str) -> bool:
    """Resolve ``jac`` (None / "auto" / "analytical") for ``method``; see module docstring."""
    if jac not in JAC_MODES:
        raise InputError(f"jac must be one of {JAC_MODES}; got {jac!r}")
    if method in DERIVATIVE_FREE:
        if jac == "analytical":
            raise InputError(f"method {method!r} is derivative-free; jac='analytical' is invalid")
        return False
    if jac is None:
        return False
    flag = getattr(objective, "has_analytical_gradient", None)
    if jac == "analytical":
        if not has_gradient(objective) or flag is False:
            raise InputError(
                "jac='analytical' but the objective has no analytical gradient (no "
                "gradient(x)/value_and_grad(x), or has_analytical_gradient is False, e.g. a "
                "finite-difference engine); use jac=None (finite differences) or jac='auto'"
            )
        return True
    return has_gradient(objective) if flag is None else bool(flag) and has_gradient(objective)


def _as_bounds(bounds: Any, n: int) -> list[tuple[float, float]] | None:
    """SciPy's list of ``(lo, hi)`` pairs from ``None``, pairs, or ``(lower, upper)``."""
    if bounds is None:
        return None
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        bounds = (bounds.lb, bounds.ub)
    if (
        isinstance(bounds, Sequence)
        and len(bounds) == 2
        and all(b is None or np.ndim(b) == 0 or np.shape(b) == (n,) for b in bounds)
    ):
        lo = np.broadcast_to(np.asarray(-np.inf if bounds[0] is None else bounds[0], float), (n,))
        hi = np.broadcast_to(np.asarray(np.inf if bounds[1] is None else bounds[1], float), (n,))
        pairs = list(zip(lo.tolist(), hi.tolist(), strict=True))
    elif isinstance(bounds, Sequence) and len(bounds) == n:
        pairs = [
            (-np.inf if b[0] is None else float(b[0]), np.inf if b[1] is None else float(b[1]))
            for b in bounds
        ]
    else:
        raise InputError(f"bounds must be (lower, upper) or {n} (lo, hi) pairs")
    if any(lo > hi for lo, hi in pairs):
        raise InputError("bounds: some lower bound exceeds its upper bound")
    return pairs


def _fd_gradient(fun: Callable[[np.ndarray], float], eps: float) -> Callable:
    """Forward differences with absolute step ``eps`` (n + 1 evaluations)."""

    def grad(x: np.ndarray) -> np.ndarray:
        f0 = fun(x)
        g = np.empty_like(x)
        for i in range(x.size):
            xp = x.copy()
            xp[i] += eps
            g[i] = (fun(xp) - f0) / eps
        return g

    return grad


def scipy_minimize(
    objective: Any,
    x0: Any,
    *,
    method: str = "L-BFGS-B",
    jac: str | None = None,
    bounds: Any = None,
    maxiter: int = 500,
    tol: float | None = None,
    ftol: float = 1e-8,
    eps: float = 1e-3,
    callback: Callable[..., Any] | None = None,
    options: dict[str, Any] | None = None,
) -> ScipyResult:
    """:func:`scipy.optimize.minimize` (or ``least_squares``) on any objective.

    Args:
        objective: see the module docstring.
        x0: start vector.
        method: ``"L-BFGS-B"``, ``"Nelder-Mead"``, ``"Powell"``,
            ``"trust-constr"``, ``"least_squares"`` (needs
            ``objective.residuals``; TRF with bounds, LM without), or any other
            :func:`scipy.optimize.minimize` method.
        jac: ``None`` / ``"auto"`` / ``"analytical"`` (module docstring).
        bounds: ``None``, ``(lower, upper)`` or ``(lo, hi)`` pairs; used by
            the methods that accept them (Nelder-Mead and Powell clip).
        maxiter: iteration budget (``max_nfev`` for ``least_squares``).
        tol, ftol: SciPy's ``tol``; method-specific function tolerance (Q2MM:
            ``ftol`` for L-BFGS-B, ``fatol`` / ``xatol`` for Nelder-Mead,
            ``ftol`` / ``xtol`` for Powell, ``gtol`` for trust-constr).
        eps: absolute finite-difference step (``jac=None``, or ``"auto"``
            without an analytical gradient); for ``least_squares`` SciPy's
            relative ``diff_step`` (as Q2MM passes it).
        callback: passed to SciPy (called once per iteration).
        options: extra SciPy options (override the defaults above).
    """
    x0 = np.asarray(x0, float).ravel()
    counted = _Counted(objective)
    pairs = _as_bounds(bounds, x0.size)
    start = time.perf_counter()
    if method == "least_squares":
        return _least_squares(counted, x0, jac, pairs, maxiter, ftol, eps, start)

    import scipy.optimize as so

    analytical = use_analytical_gradient(objective, jac, method)
    opts: dict[str, Any] = {"maxiter": maxiter}
    if method == "Nelder-Mead":
        opts.update(fatol=ftol, xatol=ftol)
    elif method == "Powell":
        opts.update(ftol=ftol, xtol=ftol)
    elif method == "trust-constr":
        opts.update(gtol=ftol)
    elif method in ("L-BFGS-B", "SLSQP", "TNC"):
        opts.update(ftol=ftol)
    fun: Callable = counted
    jac_arg: Any = None
    if analytical:
        fun, jac_arg = counted.value_and_grad, True
    elif method in ("L-BFGS-B", "BFGS", "CG", "TNC", "SLSQP"):
        opts["eps"] = eps
    elif method not in DERIVATIVE_FREE:
        jac_arg = _fd_gradient(counted, eps)
    opts.update(options or {})
    initial = counted(x0)
    res = so.minimize(
        fun,
        x0,
        method=method,
        jac=jac_arg,
        bounds=pairs if method in BOUNDED else None,
        tol=tol,
        callback=callback,
        options=opts,
    )
    x = np.asarray(res.x, float)
    value = float(res.fun) if np.ndim(res.fun) == 0 else counted(x)
    return ScipyResult(
        params=x,
        value=value,
        initial_value=initial,
        n_evals=counted.n_evals,
        n_grad_evals=counted.n_grad_evals,
        n_iter=int(getattr(res, "nit", 0) or 0),
        success=bool(res.success),
        message=str(res.message),
        wall_time=time.perf_counter() - start,
        method=method,
        jac="analytical" if analytical else "finite-difference",
        history=list(counted.history),
    )


def _least_squares(
    counted: _Counted,
    x0: np.ndarray,
    jac: str | None,
    pairs: list[tuple[float, float]] | None,
    maxiter: int,
    ftol: float,
    eps: float,
    start: float,
) -> ScipyResult:
    import scipy.optimize as so

    if not callable(getattr(counted.objective, "residuals", None)):
        raise InputError("method 'least_squares' needs objective.residuals(x) -> np.ndarray")
    has_jac = callable(getattr(counted.objective, "jacobian", None))
    if jac == "analytical" and not has_jac:
        raise InputError("least_squares with jac='analytical' needs objective.jacobian(x)")
    if jac not in JAC_MODES:
        raise InputError(f"jac must be one of {JAC_MODES}; got {jac!r}")
    use_jac = jac in ("auto", "analytical") and has_jac
    if pairs is None:
        ls_method, ls_bounds = "lm", (-np.inf, np.inf)
    else:
        ls_method = "trf"
        ls_bounds = (np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
    r0 = counted.residuals(x0)
    res = so.least_squares(
        counted.residuals,
        x0,
        jac=counted.jacobian if use_jac else "2-point",
        method=ls_method,
        bounds=ls_bounds,
        max_nfev=maxiter,
        ftol=ftol,
        diff_step=None if use_jac else eps,
    )
    return ScipyResult(
        params=np.asarray(res.x, float),
        value=float(2.0 * res.cost),
        initial_value=float(r0 @ r0),
        n_evals=counted.n_evals,
        n_grad_evals=counted.n_grad_evals,
        n_iter=int(res.njev or 0),
        success=bool(res.success),
        message=str(res.message),
        wall_time=time.perf_counter() - start,
        method=f"least_squares({ls_method})",
        jac="analytical" if use_jac else "finite-difference",
        history=list(counted.history),
    )


def scipy_basinhopping(
    objective: Any,
    x0: Any,
    *,
    T: float = 1.0,
    stepsize: float = 0.5,
    niter: int = 100,
    seed: int | None = None,
    minimizer_kwargs: dict[str, Any] | None = None,
    jac: str | None = None,
    bounds: Any = None,
    eps: float = 1e-3,
) -> ScipyResult:
    """:func:`scipy.optimize.basinhopping` on any objective.

    ``minimizer_kwargs`` go to the local :func:`scipy.optimize.minimize`
    (default method L-BFGS-B); ``jac`` / ``bounds`` / ``eps`` configure it as
    in :func:`scipy_minimize` unless ``minimizer_kwargs`` sets them.
    """
    import scipy.optimize as so

    x0 = np.asarray(x0, float).ravel()
    counted = _Counted(objective)
    kw = dict(minimizer_kwargs or {})
    method = kw.setdefault("method", "L-BFGS-B")
    analytical = use_analytical_gradient(objective, jac, method)
    fun: Callable = counted.value_and_grad if analytical else counted
    if analytical:
        kw.setdefault("jac", True)
    elif method in ("L-BFGS-B", "BFGS", "CG", "TNC", "SLSQP"):
        kw.setdefault("options", {}).setdefault("eps", eps)
    if method in BOUNDED:
        kw.setdefault("bounds", _as_bounds(bounds, x0.size))
    start = time.perf_counter()
    initial = counted(x0)
    res = so.basinhopping(
        fun, x0, niter=niter, T=T, stepsize=stepsize, minimizer_kwargs=kw, seed=seed
    )
    x = np.asarray(res.x, float)
    return ScipyResult(
        params=x,
        value=float(res.fun),
        initial_value=initial,
        n_evals=counted.n_evals,
        n_grad_evals=counted.n_grad_evals,
        n_iter=int(res.nit),
        success=bool(res.lowest_optimization_result.success),
        message="; ".join(res.message) if isinstance(res.message, list) else str(res.message),
        wall_time=time.perf_counter() - start,
        method=f"basinhopping({method})",
        jac="analytical" if analytical else "finite-difference",
        history=list(counted.history),
    )


class JaxObjective:
    """A JAX ``loss(params, args)`` as a protocol objective (NumPy in, NumPy out).

    Value, ``value_and_grad`` and (if given) ``residuals`` / ``jacobian`` are
    jit-compiled once; ``args`` (e.g. an ``ObjectiveSpec``) is passed as a
    traced argument, so a new spec of the same structure reuses the compiled
    code.
    """

    has_analytical_gradient = True

    def __init__(self, loss: Callable, args: Any = None, residuals: Callable | None = None):
        import jax

        self.args = args
        self._loss = jax.jit(loss)
        self._vg = jax.jit(jax.value_and_grad(loss))
        self._res = None if residuals is None else jax.jit(residuals)
        self._jac = None if residuals is None else jax.jit(jax.jacfwd(residuals))
        if residuals is None:
            self.residuals = None  # type: ignore[assignment]
            self.jacobian = None  # type: ignore[assignment]

    def __call__(self, x: np.ndarray) -> float:
        return float(self._loss(np.asarray(x, float), self.args))

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = self._vg(np.asarray(x, float), self.args)
        return float(f), np.asarray(g, float)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self.value_and_grad(x)[1]

    def residuals(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._res(np.asarray(x, float), self.args), float)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._jac(np.asarray(x, float), self.args), float)


def jax_objective(loss: Callable, args: Any = None, residuals: Callable | None = None) -> Any:
    """Wrap a JAX ``loss(params, args)`` (and optional ``residuals``) as an objective."""
    return JaxObjective(loss, args, residuals)


__all__ = [
    "BOUNDED",
    "DERIVATIVE_FREE",
    "GRADIENT_METHODS",
    "JaxObjective",
    "ScipyResult",
    "has_gradient",
    "jax_objective",
    "scipy_basinhopping",
    "scipy_minimize",
    "use_analytical_gradient",
]
