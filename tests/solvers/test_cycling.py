"""Grad-simp cycling (Q2MM's OptimizationLoop) as one jitted loop."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from q2jax.errors import InputError
from q2jax.solvers import Status, compute_sensitivity, optimization_loop

from .solver_problems import (
    objective,
    quad_bounds,
    quad_problem,
    quad_solution,
    quad_value,
    residuals,
    rosen_problem,
    rosen_start,
)

N = 5
KW = dict(max_params=3, max_cycles=8, convergence=1e-6, full_maxiter=15, simp_maxiter=60)


def _check_records(r, p, bounds=None):
    k = int(r.n_cycles)
    scores = np.asarray(r.cycle_scores)
    assert scores[0] == pytest.approx(
        float(objective(rosen_start(N) if bounds is None else jnp.full(N, 0.5), p))
    )
    assert np.all(np.diff(scores[: k + 1]) <= 1e-12)  # a cycle never makes things worse
    assert np.all(np.isnan(scores[k + 1 :]))
    sel = np.asarray(r.selected_indices)
    for j in range(k):
        assert len(set(sel[j].tolist())) == 3 and np.all(sel[j] >= 0)
        # the simplex got the 3 lowest simp_var parameters of that cycle's sensitivity
        order = np.argsort(np.asarray(r.simp_var[j]), kind="stable")
        np.testing.assert_array_equal(np.sort(sel[j]), np.sort(order[:3]))
    assert np.all(sel[k:] == -1)
    assert r.selected_trimmed() == [list(map(int, row)) for row in sel[:k]]


def test_cycling_rosenbrock_lbfgsb():
    p = rosen_problem(N)
    r = optimization_loop(objective, rosen_start(N), p, full_method="jaxopt:lbfgsb", **KW)
    np.testing.assert_allclose(r.params, np.ones(N), atol=1e-6)
    assert float(r.value) < 1e-12
    _check_records(r, p)
    # the full pass alone (15 iterations) is not enough: cycles were needed
    assert int(r.n_cycles) >= 2
    assert int(r.n_evals) > 0


def test_cycling_bounded_quadratic():
    p = quad_problem(N)
    bounds = quad_bounds(N)
    r = optimization_loop(
        objective, jnp.full(N, 0.5), p, bounds=bounds, full_method="jaxopt:lbfgsb", **KW
    )
    x = np.asarray(r.params)
    assert np.all(x >= 0.0) and np.all(x <= 1.0)
    np.testing.assert_allclose(x, quad_solution(p), atol=1e-6)
    assert float(r.value) == pytest.approx(quad_value(p, quad_solution(p)), rel=1e-9)
    _check_records(r, p, bounds)


def test_cycling_lm_verbose_equals_pure(capsys):
    """The host loop (verbose) and the single jitted while_loop give the same cycles."""
    p = rosen_problem(N)
    kw = dict(KW, full_method="lm", residuals=residuals, full_maxiter=25)
    pure = optimization_loop(objective, rosen_start(N), p, **kw)
    loud = optimization_loop(objective, rosen_start(N), p, verbose=True, **kw)
    assert "cycle 1" in capsys.readouterr().out
    np.testing.assert_array_equal(pure.params, loud.params)
    np.testing.assert_array_equal(pure.cycle_scores, loud.cycle_scores)
    np.testing.assert_allclose(pure.params, np.ones(N), atol=1e-7)
    assert int(pure.status) == Status.SUCCESS


def test_cycling_sensitivity_record_matches_compute_sensitivity():
    p = rosen_problem(N)
    kw = dict(KW, full_method="lm", residuals=residuals, full_maxiter=25)
    r = optimization_loop(objective, rosen_start(N), p, **kw)
    # cycle 1's sensitivity is taken at the result of cycle 1's full pass; recompute it there
    from q2jax.solvers import minimize

    full = minimize(None, rosen_start(N), p, method="lm", residuals=residuals, maxiter=25)
    assert float(r.full_scores[0]) == pytest.approx(float(full.value), rel=1e-9)
    s = compute_sensitivity(objective, full.params, p)
    np.testing.assert_allclose(r.d1[0], s.d1, rtol=1e-7)
    np.testing.assert_allclose(r.d2[0], s.d2, rtol=1e-7)
    np.testing.assert_array_equal(np.isinf(r.simp_var[0]), np.isinf(s.simp_var))


def test_cycling_rejects_bad_arguments():
    with pytest.raises(InputError):
        optimization_loop(objective, rosen_start(N), rosen_problem(N), max_params=0)
    with pytest.raises(InputError, match="SciPy"):
        optimization_loop(objective, rosen_start(N), rosen_problem(N), full_method="L-BFGS-B")
    with pytest.raises(InputError, match="residuals"):
        optimization_loop(objective, rosen_start(N), rosen_problem(N), full_method="lm")
