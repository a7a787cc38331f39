"""Pure-JAX solvers: jit-compiled, vmappable, failures reported as status codes.

Entry point: :func:`minimize` (method names as in the Q2MM guide), plus
:func:`optimization_loop` (grad-simp cycling), :func:`compute_sensitivity`
and :func:`multistart`. Every solver is an :class:`AbstractSolver`
(``init`` / ``step`` / ``terminate``) run by one driver (:func:`run`).
"""

from __future__ import annotations

from q2jax.solvers._common import as_bounds, project, projected_grad_norm
from q2jax.solvers.adam import Adam, make_schedule
from q2jax.solvers.basin_hopping import BasinHopping
from q2jax.solvers.cycling import CyclingResult, grad_simp_cycling, optimization_loop
from q2jax.solvers.driver import (
    AbstractSolver,
    Bounds,
    Info,
    print_progress,
    run,
    run_chunked,
    run_jit,
)
from q2jax.solvers.lbfgs import LBFGS
from q2jax.solvers.levenberg_marquardt import LevenbergMarquardt
from q2jax.solvers.multistart import (
    MultiStart,
    MultiStartResult,
    multistart,
    multistart_jit,
    perturbed_starts,
)
from q2jax.solvers.nelder_mead import NelderMead, initial_simplex
from q2jax.solvers.quasi_newton import OptimistixBFGS
from q2jax.solvers.registry import (
    METHODS,
    available_methods,
    canonical_method,
    get_solver,
    minimize,
)
from q2jax.solvers.result import STATUS_MESSAGES, SolverResult, Status, status_message
from q2jax.solvers.sensitivity import SensitivityResult, compute_sensitivity, default_steps

__all__ = [
    "LBFGS",
    "METHODS",
    "STATUS_MESSAGES",
    "AbstractSolver",
    "Adam",
    "BasinHopping",
    "Bounds",
    "CyclingResult",
    "Info",
    "LevenbergMarquardt",
    "MultiStart",
    "MultiStartResult",
    "NelderMead",
    "OptimistixBFGS",
    "SensitivityResult",
    "SolverResult",
    "Status",
    "as_bounds",
    "available_methods",
    "canonical_method",
    "compute_sensitivity",
    "default_steps",
    "get_solver",
    "grad_simp_cycling",
    "initial_simplex",
    "make_schedule",
    "minimize",
    "multistart",
    "multistart_jit",
    "optimization_loop",
    "perturbed_starts",
    "print_progress",
    "project",
    "projected_grad_norm",
    "run",
    "run_chunked",
    "run_jit",
    "status_message",
]
