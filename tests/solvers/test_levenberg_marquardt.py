"""Levenberg–Marquardt on residual vectors (with projected bounds)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import least_squares

from q2jax.errors import InputError
from q2jax.solvers import Status, minimize

from .solver_problems import (
    MAXITER,
    objective,
    quad_bounds,
    quad_problem,
    quad_solution,
    quad_value,
    residuals,
    rosen_problem,
    rosen_start,
)


@pytest.mark.parametrize("n", [2, 5])
def test_lm_rosenbrock(n):
    p = rosen_problem(n)
    r = minimize(None, rosen_start(n), p, method="lm", residuals=residuals, maxiter=MAXITER)
    assert int(r.status) == Status.SUCCESS
    np.testing.assert_allclose(r.params, np.ones(n), atol=1e-8)
    # the reported value is ||r||^2, i.e. the scalar objective of the same problem
    assert float(r.history[0]) == pytest.approx(float(objective(rosen_start(n), p)), rel=1e-12)
    # Gauss-Newton steps: far fewer evaluations than a quasi-Newton method needs
    assert int(r.n_evals) < 60


def test_lm_matches_scipy_least_squares_path_free():
    """Same minimum as SciPy's MINPACK LM (independent implementation) on Rosenbrock-5."""
    p = rosen_problem(5)
    ref = least_squares(
        lambda x: np.asarray(residuals(jnp.asarray(x), p)),
        np.asarray(rosen_start(5)),
        method="lm",
        xtol=1e-15,
        ftol=1e-15,
    )
    r = minimize(None, rosen_start(5), p, method="lm", residuals=residuals, maxiter=MAXITER)
    np.testing.assert_allclose(r.params, ref.x, atol=1e-8)


def test_lm_bounded_quadratic():
    p = quad_problem(5)
    x_ref = quad_solution(p)
    r = minimize(
        None,
        jnp.full(5, 0.5),
        p,
        method="lm",
        residuals=residuals,
        bounds=quad_bounds(5),
        maxiter=MAXITER,
    )
    assert int(r.status) == Status.SUCCESS
    x = np.asarray(r.params)
    assert np.all(x >= 0.0) and np.all(x <= 1.0)
    np.testing.assert_allclose(x, x_ref, atol=1e-9)
    assert float(r.value) == pytest.approx(quad_value(p, x_ref), rel=1e-12)


def test_lm_rosenbrock_active_bound():
    bounds = (jnp.array([-2.0, -2.0]), jnp.array([0.5, 2.0]))
    r = minimize(
        None,
        rosen_start(2),
        rosen_problem(2),
        method="lm",
        residuals=residuals,
        bounds=bounds,
        maxiter=MAXITER,
    )
    np.testing.assert_allclose(r.params, [0.5, 0.25], atol=1e-8)


def test_lm_needs_residuals():
    with pytest.raises(InputError, match="residual"):
        minimize(objective, rosen_start(2), rosen_problem(2), method="lm")
