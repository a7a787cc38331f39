"""Nelder–Mead simplex in pure JAX, checked against SciPy's implementation."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize as scipy_minimize

from q2jax.solvers import Status, initial_simplex, minimize

from .solver_problems import (
    objective,
    quad_bounds,
    quad_problem,
    quad_solution,
    rosen_problem,
    rosen_start,
)

NM_MAXITER = 2000


@pytest.mark.parametrize("n", [2, 5])
def test_nelder_mead_rosenbrock_matches_scipy(n):
    p = rosen_problem(n)
    x0 = rosen_start(n)
    r = minimize(
        objective, x0, p, method="Nelder-Mead", maxiter=NM_MAXITER, xatol=1e-8, fatol=1e-12
    )
    assert int(r.status) == Status.SUCCESS
    np.testing.assert_allclose(r.params, np.ones(n), atol=1e-7)
    # same algorithm and defaults as SciPy: same path, so (almost) the same evaluation count
    ref = scipy_minimize(
        lambda x: float(objective(jnp.asarray(x), p)),
        np.asarray(x0),
        method="Nelder-Mead",
        options=dict(xatol=1e-8, fatol=1e-12, maxiter=NM_MAXITER, maxfev=10**6),
    )
    assert abs(int(r.n_evals) - ref.nfev) <= 0.02 * ref.nfev + 2
    assert np.isnan(float(r.grad_norm))


def test_nelder_mead_bounded_quadratic():
    p = quad_problem(5)
    r = minimize(
        objective,
        jnp.full(5, 0.5),
        p,
        method="Nelder-Mead",
        bounds=quad_bounds(5),
        maxiter=NM_MAXITER,
        xatol=1e-10,
        fatol=1e-14,
        adaptive=True,
    )
    x = np.asarray(r.params)
    assert np.all(x >= 0.0) and np.all(x <= 1.0)
    np.testing.assert_allclose(x, quad_solution(p), atol=1e-6)


def test_initial_simplex_respects_bounds():
    x0 = jnp.array([1.0, 0.0, 0.5])
    lo, hi = jnp.zeros(3), jnp.ones(3)
    s = np.asarray(initial_simplex(x0, (lo, hi)))
    assert s.shape == (4, 3)
    assert np.all(s >= 0) and np.all(s <= 1)
    # x0 sits on the upper bound in coordinate 0: its vertex steps inwards (-5 %)
    np.testing.assert_allclose(s[1], [0.95, 0.0, 0.5])
    # zero coordinate: SciPy's 0.00025 step
    np.testing.assert_allclose(s[2], [1.0, 0.00025, 0.5])
    # the simplex is not degenerate
    assert abs(np.linalg.det(s[1:] - s[0])) > 0


def test_nelder_mead_retreats_from_nan_region():
    """NaN counts as +inf: the simplex stays finite and still finds the minimum."""

    def f(x, args):
        return jnp.where(x[0] > 1.5, jnp.nan, jnp.sum((x - 1.0) ** 2))

    r = minimize(f, jnp.array([1.4, 0.0]), None, method="Nelder-Mead", maxiter=NM_MAXITER)
    assert int(r.status) == Status.SUCCESS
    np.testing.assert_allclose(r.params, [1.0, 1.0], atol=1e-6)
