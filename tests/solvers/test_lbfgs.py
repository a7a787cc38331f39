"""L-BFGS / L-BFGS-B (jaxopt update rules in the q2jax driver)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from q2jax.errors import InputError
from q2jax.solvers import Status, minimize

from .solver_problems import (
    MAXITER,
    objective,
    quad_bounds,
    quad_problem,
    quad_solution,
    quad_value,
    rosen_problem,
    rosen_start,
)


@pytest.mark.parametrize("n", [2, 5])
def test_lbfgs_rosenbrock(n):
    p = rosen_problem(n)
    r = minimize(objective, rosen_start(n), p, method="jaxopt:lbfgs", maxiter=MAXITER, tol=1e-9)
    assert int(r.status) == Status.SUCCESS and bool(r.converged)
    np.testing.assert_allclose(r.params, np.ones(n), atol=1e-7)
    assert float(r.value) < 1e-14
    assert float(r.grad_norm) <= 1e-9
    # history: start value first, value after the last iteration, NaN padding after it
    h = np.asarray(r.history)
    assert h.shape == (MAXITER + 1,)
    assert h[0] == pytest.approx(float(objective(rosen_start(n), p)))
    k = int(r.n_iter)
    assert h[k] == float(r.value)
    assert np.all(np.isnan(h[k + 1 :]))
    assert np.all(np.diff(h[: k + 1]) <= 1e-12)  # Wolfe line search: monotone
    assert int(r.n_evals) >= k + 1 and int(r.n_grad_evals) == int(r.n_evals)


@pytest.mark.parametrize("n", [2, 5])
def test_lbfgsb_rosenbrock_unbounded(n):
    r = minimize(
        objective,
        rosen_start(n),
        rosen_problem(n),
        method="jaxopt:lbfgsb",
        maxiter=MAXITER,
        tol=1e-9,
    )
    assert int(r.status) == Status.SUCCESS
    np.testing.assert_allclose(r.params, np.ones(n), atol=1e-7)


def test_lbfgsb_rosenbrock_active_bound():
    # x0 <= 0.5: y = x0^2 stays free, f = (1 - x0)^2 is smallest at x0 = 0.5 -> (0.5, 0.25)
    bounds = (jnp.array([-2.0, -2.0]), jnp.array([0.5, 2.0]))
    r = minimize(
        objective,
        rosen_start(2),
        rosen_problem(2),
        method="jaxopt:lbfgsb",
        bounds=bounds,
        maxiter=MAXITER,
        tol=1e-9,
    )
    assert int(r.status) == Status.SUCCESS
    np.testing.assert_allclose(r.params, [0.5, 0.25], atol=1e-7)
    assert float(r.value) == pytest.approx(0.25, abs=1e-12)


def test_lbfgsb_bounded_quadratic():
    p = quad_problem(5)
    lo, hi = quad_bounds(5)
    x_ref = quad_solution(p)
    r = minimize(
        objective,
        jnp.full(5, 0.5),
        p,
        method="jaxopt:lbfgsb",
        bounds=(lo, hi),
        maxiter=MAXITER,
        tol=1e-9,
    )
    assert int(r.status) == Status.SUCCESS
    x = np.asarray(r.params)
    assert np.all(x >= 0.0) and np.all(x <= 1.0)
    np.testing.assert_allclose(x, x_ref, atol=1e-7)
    assert float(r.value) == pytest.approx(quad_value(p, x_ref), rel=1e-10)
    # the unconstrained minimum (f = 0 at c) lies outside the box
    assert float(r.value) > 1.0


def test_lbfgs_rejects_bounds():
    with pytest.raises(InputError, match="lbfgsb"):
        minimize(
            objective, rosen_start(2), rosen_problem(2), method="jaxopt:lbfgs", bounds=(0.0, 1.0)
        )


