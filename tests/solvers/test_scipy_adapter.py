"""q2jax.adapters.scipy: SciPy optimisers for any objective (NumPy protocol)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from q2jax.adapters.scipy import (
    jax_objective,
    scipy_basinhopping,
    scipy_minimize,
    use_analytical_gradient,
)
from q2jax.errors import InputError

from .solver_problems import objective, quad_problem, quad_solution, quad_value, residuals


class Rosen:
    """A plain NumPy objective (no JAX), as an external engine would provide."""

    def __init__(self, n=2, gradient=False, flag=None):
        self.n = n
        self.calls = 0
        self.grad_calls = 0
        if gradient:
            self.gradient = self._gradient
        if flag is not None:
            self.has_analytical_gradient = flag

    def __call__(self, x):
        self.calls += 1
        return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))

    def _gradient(self, x):
        self.grad_calls += 1
        g = np.zeros_like(x)
        g[:-1] += -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1 - x[:-1])
        g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
        return g


X0 = np.array([-1.2, 1.0])


@pytest.mark.parametrize(
    "method,kw,atol",
    [
        ("L-BFGS-B", dict(jac="auto", ftol=1e-14, options={"gtol": 1e-10}), 1e-6),
        ("Nelder-Mead", dict(ftol=1e-10), 1e-6),
        ("Powell", dict(ftol=1e-12), 1e-6),
        ("trust-constr", dict(jac="auto", ftol=1e-10), 1e-5),
    ],
)
def test_scipy_methods_reach_rosenbrock_minimum(method, kw, atol):
    r = scipy_minimize(Rosen(gradient=True), X0, method=method, maxiter=5000, **kw)
    assert r.success, r.message
    np.testing.assert_allclose(r.params, [1.0, 1.0], atol=atol)
    assert r.history[0] == pytest.approx(24.2)
    assert len(r.history) == r.n_evals
    assert r.wall_time > 0 and "Score" in r.summary()


@pytest.mark.parametrize("method", ["L-BFGS-B", "Nelder-Mead", "Powell"])
def test_scipy_bounded_quadratic(method):
    p = quad_problem(5)
    obj = jax_objective(objective, p)
    bounds = (np.zeros(5), np.ones(5))
    r = scipy_minimize(
        obj,
        np.full(5, 0.5),
        method=method,
        bounds=bounds,
        maxiter=20000,
        ftol=1e-13,
        jac="auto" if method == "L-BFGS-B" else None,
    )
    assert np.all(r.params >= 0) and np.all(r.params <= 1)
    np.testing.assert_allclose(r.params, quad_solution(p), atol=1e-4)
    assert r.value == pytest.approx(quad_value(p, quad_solution(p)), rel=1e-6)


def test_jac_none_uses_finite_differences_and_auto_uses_the_gradient():
    fd = scipy_minimize(Rosen(gradient=True), X0, jac=None, eps=1e-6, maxiter=500)
    auto = scipy_minimize(Rosen(gradient=True), X0, jac="auto", maxiter=500)
    assert fd.n_grad_evals == 0 and fd.jac == "finite-difference"
    assert auto.n_grad_evals > 0 and auto.jac == "analytical"
    # each FD gradient costs n = 2 extra evaluations; analytical gradients cost none
    assert auto.n_evals == auto.n_grad_evals + 1  # + the initial evaluation
    assert fd.n_evals >= 2.5 * auto.n_evals
    np.testing.assert_allclose(auto.params, [1, 1], atol=1e-4)


def test_auto_without_gradient_falls_back_to_finite_differences():
    plain = Rosen()
    r = scipy_minimize(plain, X0, jac="auto", eps=1e-6, maxiter=500)
    assert r.jac == "finite-difference" and r.n_grad_evals == 0
    assert plain.calls == r.n_evals
    # has_analytical_gradient = False: the gradient method is not trusted by "auto"
    flagged = Rosen(gradient=True, flag=False)
    r = scipy_minimize(flagged, X0, jac="auto", eps=1e-6, maxiter=500)
    assert r.jac == "finite-difference" and flagged.grad_calls == 0


def test_analytical_requires_a_gradient():
    with pytest.raises(InputError, match="analytical"):
        scipy_minimize(Rosen(), X0, jac="analytical")
    # a gradient the objective itself flags as not analytical (an FD engine) is refused
    with pytest.raises(InputError, match="has_analytical_gradient is False"):
        scipy_minimize(Rosen(gradient=True, flag=False), X0, jac="analytical")
    with pytest.raises(InputError, match="derivative-free"):
        use_analytical_gradient(Rosen(gradient=True), "analytical", "Nelder-Mead")
    with pytest.raises(InputError):
        scipy_minimize(Rosen(), X0, jac="exact")
    r = scipy_minimize(Rosen(gradient=True), X0, jac="analytical", maxiter=500)
    assert r.n_grad_evals > 0


def test_least_squares_and_jax_objective():
    p = quad_problem(5)
    obj = jax_objective(objective, p, residuals=residuals)
    x0 = np.full(5, 0.5)
    assert obj(x0) == pytest.approx(float(objective(jnp.asarray(x0), p)))
    f, g = obj.value_and_grad(x0)
    h = 1e-6
    g_fd = [(obj(x0 + h * e) - obj(x0 - h * e)) / (2 * h) for e in np.eye(5)]
    np.testing.assert_allclose(g, g_fd, rtol=1e-6)
    r = scipy_minimize(
        obj,
        x0,
        method="least_squares",
        bounds=(np.zeros(5), np.ones(5)),
        ftol=1e-14,
        maxiter=200,
        jac="auto",
    )
    assert r.method == "least_squares(trf)" and r.jac == "analytical"
    np.testing.assert_allclose(r.params, quad_solution(p), atol=1e-6)
    with pytest.raises(InputError, match="residuals"):
        scipy_minimize(Rosen(), X0, method="least_squares")


def test_scipy_basinhopping():
    def well(x):
        return float(np.sum((x**2 - 1.0) ** 2 + 0.3 * x))

    r = scipy_basinhopping(well, np.array([1.0]), T=1.0, stepsize=1.5, niter=20, seed=1, eps=1e-8)
    x_star = min(np.roots([4.0, 0.0, -4.0, 0.3]).real)
    np.testing.assert_allclose(r.params, [x_star], atol=1e-4)
    assert r.n_evals == len(r.history) and r.method == "basinhopping(L-BFGS-B)"
