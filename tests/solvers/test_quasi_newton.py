"""optimistix BFGS in the q2jax driver."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from q2jax.errors import InputError
from q2jax.solvers import Status, minimize

from .solver_problems import CENTRES, MAXITER, batch, objective, rosen_problem, rosen_start


@pytest.mark.parametrize("n", [2, 5])
def test_bfgs_rosenbrock(n):
    r = minimize(
        objective,
        rosen_start(n),
        rosen_problem(n),
        method="optimistix:bfgs",
        maxiter=MAXITER,
        tol=1e-9,
    )
    assert int(r.status) == Status.SUCCESS
    np.testing.assert_allclose(r.params, np.ones(n), atol=1e-8)
    assert float(r.grad_norm) <= 1e-9
    assert float(r.history[0]) == pytest.approx(float(objective(rosen_start(n), rosen_problem(n))))


def test_bfgs_vmap_over_args_with_a_failing_member():
    x0 = jnp.full(5, 0.5)
    out = jax.vmap(
        lambda p: minimize(objective, x0, p, method="optimistix:bfgs", maxiter=MAXITER, tol=1e-9)
    )(batch())
    assert int(out.status[2]) == Status.NONFINITE
    for i in (0, 1, 3):  # unbounded: the minimum is the centre
        assert int(out.status[i]) == Status.SUCCESS
        np.testing.assert_allclose(out.params[i], CENTRES[i], atol=1e-8)


def test_bfgs_rejects_bounds():
    with pytest.raises(InputError, match="bounds"):
        minimize(objective, rosen_start(2), rosen_problem(2), method="bfgs", bounds=(0.0, 1.0))
