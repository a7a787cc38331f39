"""Basin hopping with a pure-JAX local solver."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from q2jax.solvers import minimize

from .solver_problems import (
    objective,
    quad_bounds,
    quad_problem,
    quad_solution,
    residuals,
    rosen_problem,
    rosen_start,
)


def double_well(x, args):
    """Per coordinate (x^2 - 1)^2 + 0.3 x: global minimum near -1.04, local near +0.96."""
    return jnp.sum((x**2 - 1.0) ** 2 + 0.3 * x)


def test_basin_hopping_escapes_local_minimum():
    x0 = jnp.array([1.0, 1.0])
    local = minimize(double_well, x0, None, method="Nelder-Mead", maxiter=400)
    assert np.all(np.asarray(local.params) > 0.9)  # stuck in the local well
    kw = dict(maxiter=400, niter=20, T=1.0, stepsize=1.5, seed=3)
    r = minimize(double_well, x0, None, method="basinhopping:Nelder-Mead", **kw)
    # global minimum of (x^2-1)^2 + 0.3x: root of 4x^3 - 4x + 0.3 near -1.04
    x_star = min(np.roots([4.0, 0.0, -4.0, 0.3]).real)
    np.testing.assert_allclose(r.params, [x_star, x_star], atol=1e-5)
    assert float(r.value) < float(local.value) - 1.0
    # best value per hop never increases; the same seed gives the same run
    h = np.asarray(r.history)[: int(r.n_iter) + 1]
    assert np.all(np.diff(h) <= 0)
    again = minimize(double_well, x0, None, method="basinhopping:Nelder-Mead", **kw)
    np.testing.assert_array_equal(again.params, r.params)


def test_basin_hopping_rosenbrock():
    r = minimize(
        objective,
        rosen_start(2),
        rosen_problem(2),
        method="basinhopping:Nelder-Mead",
        maxiter=400,
        niter=5,
        T=1.0,
        stepsize=0.3,
        seed=0,
        xatol=1e-9,
        fatol=1e-14,
    )
    np.testing.assert_allclose(r.params, [1.0, 1.0], atol=1e-6)


def test_basin_hopping_bounded_quadratic_lm():
    p = quad_problem(5)
    r = minimize(
        None,
        jnp.full(5, 0.5),
        p,
        method="basinhopping:lm",
        residuals=residuals,
        bounds=quad_bounds(5),
        maxiter=100,
        niter=5,
        T=0.5,
        stepsize=0.5,
        seed=1,
    )
    x = np.asarray(r.params)
    assert np.all(x >= 0.0) and np.all(x <= 1.0)
    np.testing.assert_allclose(x, quad_solution(p), atol=1e-8)
    assert int(r.status) == 0
