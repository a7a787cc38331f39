"""compute_sensitivity: finite differences (Q2MM, 2K + 1 evaluations) and autodiff."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from q2jax.errors import InputError
from q2jax.solvers import compute_sensitivity

A = np.array([0.5, -1.0, 0.2, 2.0])
B = np.array([1.0, 3.0, -0.5, 0.7])
C = 0.8


def f(x, args=None):
    """Σ a x³ + b x² + c x0 x1 + exp(0.3 x2)."""
    return jnp.sum(A * x**3 + B * x**2) + C * x[0] * x[1] + jnp.exp(0.3 * x[2])


def analytic(x):
    x = np.asarray(x)
    d1 = 3 * A * x**2 + 2 * B * x
    d1[0] += C * x[1]
    d1[1] += C * x[0]
    d1[2] += 0.3 * np.exp(0.3 * x[2])
    d2 = 6 * A * x + 2 * B
    d2[2] += 0.09 * np.exp(0.3 * x[2])
    return d1, d2


X = jnp.array([0.7, -0.4, 1.3, 0.25])


def test_fd_and_autodiff_agree_with_analytic_derivatives():
    d1, d2 = analytic(X)
    h = jnp.full(4, 1e-3)
    fd = compute_sensitivity(f, X, None, steps=h, mode="fd")
    ad = compute_sensitivity(f, X, None, mode="autodiff")
    np.testing.assert_allclose(ad.d1, d1, rtol=1e-13)
    np.testing.assert_allclose(ad.d2, d2, rtol=1e-13)
    # central differences: error h^2 f'''/6 (d1) and h^2 f''''/12 (d2)
    np.testing.assert_allclose(fd.d1, d1, rtol=1e-5)
    np.testing.assert_allclose(fd.d2, d2, rtol=1e-5)
    np.testing.assert_allclose(fd.d1, ad.d1, rtol=1e-5)
    np.testing.assert_allclose(fd.d2, ad.d2, rtol=1e-5)
    assert int(fd.n_evals) == 2 * 4 + 1
    assert float(fd.value) == pytest.approx(float(f(X)))


def test_simp_var_matches_q2mm_unnormalised_formula_and_ranking():
    """Q2MM: d1 = (f+ − f−)/2, d2 = f+ + f− − 2 f0 (unnormalised), simp_var = d2/d1²."""
    h = np.array([0.1, 0.02, 0.5, 0.05])
    x = np.asarray(X)
    f0 = float(f(X))
    fp = np.array([float(f(jnp.asarray(x + h[i] * np.eye(4)[i]))) for i in range(4)])
    fm = np.array([float(f(jnp.asarray(x - h[i] * np.eye(4)[i]))) for i in range(4)])
    d1_q, d2_q = (fp - fm) / 2, fp + fm - 2 * f0
    s = compute_sensitivity(f, X, None, steps=jnp.asarray(h), metric="simp_var")
    np.testing.assert_allclose(s.d1 * h, d1_q, rtol=1e-10)
    np.testing.assert_allclose(s.d2 * h**2, d2_q, rtol=1e-9)
    np.testing.assert_allclose(s.simp_var, d2_q / d1_q**2, rtol=1e-9)
    np.testing.assert_array_equal(s.ranking, np.argsort(d2_q / d1_q**2, kind="stable"))
    s_abs = compute_sensitivity(f, X, None, steps=jnp.asarray(h), metric="abs_d1")
    np.testing.assert_array_equal(s_abs.ranking, np.argsort(-np.abs(d1_q / h), kind="stable"))


def test_zero_step_excludes_parameter():
    h = jnp.array([1e-3, 0.0, 1e-3, 1e-3])
    for mode in ("fd", "autodiff"):
        s = compute_sensitivity(f, X, None, steps=h, mode=mode)
        assert float(s.d1[1]) == 0.0 and float(s.d2[1]) == 0.0
        assert np.isinf(float(s.simp_var[1]))
        assert int(s.ranking[-1]) == 1
    assert int(compute_sensitivity(f, X, None, steps=h).n_evals) == 2 * 3 + 1


def test_sensitivity_under_jit_and_vmap():
    xs = jnp.stack([X, X + 0.1, X - 0.2])
    batched = jax.jit(jax.vmap(lambda x: compute_sensitivity(f, x, None, mode="autodiff")))(xs)
    for i in range(3):
        d1, d2 = analytic(xs[i])
        np.testing.assert_allclose(batched.d1[i], d1, rtol=1e-12)
        np.testing.assert_allclose(batched.d2[i], d2, rtol=1e-12)


def test_bad_arguments():
    with pytest.raises(InputError):
        compute_sensitivity(f, X, None, metric="d2")
    with pytest.raises(InputError):
        compute_sensitivity(f, X, None, mode="complex-step")
    with pytest.raises(InputError):
        compute_sensitivity(f, X, None, steps=jnp.ones(3))
