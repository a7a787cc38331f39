"""Projected Adam with learning-rate schedules."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from q2jax.errors import InputError
from q2jax.solvers import Status, make_schedule, minimize

from .solver_problems import (
    objective,
    quad_bounds,
    quad_problem,
    quad_solution,
    rosen_problem,
    rosen_start,
)

ADAM_MAXITER = 5000


def test_adam_rosenbrock_2d():
    r = minimize(
        objective,
        rosen_start(2),
        rosen_problem(2),
        method="optax:adam",
        maxiter=ADAM_MAXITER,
        learning_rate=0.1,
        schedule="warmup_cosine",
        tol=1e-8,
    )
    np.testing.assert_allclose(r.params, [1.0, 1.0], atol=1e-4)
    assert float(r.value) < 1e-8
    assert int(r.status) in (Status.SUCCESS, Status.MAX_ITERATIONS)


def test_adam_bounded_quadratic():
    p = quad_problem(5)
    r = minimize(
        objective,
        jnp.full(5, 0.5),
        p,
        method="optax:adam",
        bounds=quad_bounds(5),
        maxiter=ADAM_MAXITER,
        learning_rate=0.1,
        schedule="warmup_cosine",
        tol=1e-8,
    )
    x = np.asarray(r.params)
    assert np.all(x >= 0.0) and np.all(x <= 1.0)
    np.testing.assert_allclose(x, quad_solution(p), atol=1e-5)


def test_schedules_follow_their_formulas():
    lr, steps = 0.1, 1000
    cos = make_schedule("warmup_cosine", lr, steps, warmup_fraction=0.1, final_factor=1e-3)
    assert float(cos(0)) == pytest.approx(lr * 1e-3)
    assert float(cos(100)) == pytest.approx(lr)  # end of warm-up: the peak
    mid = 100 + (steps - 100) // 2  # half-way through the cosine: mean of peak and floor
    assert float(cos(mid)) == pytest.approx(0.5 * (lr + lr * 1e-3), rel=1e-3)
    assert float(cos(steps)) == pytest.approx(lr * 1e-3)
    exp = make_schedule("exponential", lr, steps, final_factor=1e-2)
    assert float(exp(steps // 2)) == pytest.approx(lr * 1e-1)
    assert float(exp(steps)) == pytest.approx(lr * 1e-2)
    assert float(make_schedule("constant", lr, steps)(123)) == pytest.approx(lr)
    with pytest.raises(InputError):
        make_schedule("linear", lr, steps)
