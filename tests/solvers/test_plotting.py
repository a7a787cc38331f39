"""Convergence plots (PNG files)."""

from __future__ import annotations

import numpy as np
import pytest

from q2jax.errors import InputError
from q2jax.plotting import plot_convergence
from q2jax.solvers import minimize

from .solver_problems import objective, rosen_problem, rosen_start

PNG = b"\x89PNG\r\n\x1a\n"


def test_plot_history_of_a_solver_result(tmp_path):
    r = minimize(
        objective,
        rosen_start(2),
        rosen_problem(2),
        method="Nelder-Mead",
        maxiter=2000,
        xatol=1e-8,
        fatol=1e-12,
    )
    out = plot_convergence(r, tmp_path / "sub" / "history.png", title="NM")
    data = out.read_bytes()
    assert data.startswith(PNG) and len(data) > 2000


def test_plot_cycle_scores_and_plain_lists(tmp_path):
    class Loop:
        cycle_scores = np.array([42.9, 12.3, 4.1, 1.8, 1.7, np.nan, np.nan])

    assert plot_convergence(Loop(), tmp_path / "c.png").read_bytes().startswith(PNG)
    # per-evaluation histories jump around; non-positive values switch off the log axis
    p = plot_convergence([3.0, 5.0, 1.0, 0.0, 2.0], tmp_path / "l.png", log=True)
    assert p.exists()


def test_plot_rejects_empty_or_bad_input(tmp_path):
    with pytest.raises(InputError):
        plot_convergence([np.nan, np.nan], tmp_path / "x.png")
    with pytest.raises(InputError):
        plot_convergence(np.zeros((2, 2)), tmp_path / "x.png")
