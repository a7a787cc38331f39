"""minimize(): dispatch by name, vmap over args, failures as status codes, chunked progress."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from q2jax.errors import InputError
from q2jax.solvers import Status, as_bounds, available_methods, get_solver, minimize

from .solver_problems import CENTRES, MAXITER, batch, objective, residuals

N = 5
BOX = (jnp.zeros(N), jnp.ones(N))
CASES = {
    "jaxopt:lbfgsb": dict(maxiter=MAXITER, tol=1e-9),
    "lm": dict(maxiter=100, residuals=residuals),
    "Nelder-Mead": dict(maxiter=3000, xatol=1e-10, fatol=1e-14),
    "optax:adam": dict(maxiter=3000, learning_rate=0.05, tol=1e-9),
}
ATOL = {"jaxopt:lbfgsb": 1e-8, "lm": 1e-10, "Nelder-Mead": 1e-6, "optax:adam": 1e-5}


@pytest.mark.parametrize("method", list(CASES))
def test_vmap_over_args_with_a_failing_member(method):
    kw = CASES[method]
    fun = None if method == "lm" else objective
    x0 = jnp.full(N, 0.5)
    out = jax.vmap(lambda p: minimize(fun, x0, p, method=method, bounds=BOX, **kw))(batch())
    status = np.asarray(out.status)
    assert status[2] == Status.NONFINITE and not bool(out.converged[2])
    np.testing.assert_array_equal(out.params[2], x0)  # last finite iterate: the start
    assert int(out.n_iter[2]) == 0
    for i in (0, 1, 3):
        np.testing.assert_allclose(out.params[i], np.clip(CENTRES[i], 0, 1), atol=ATOL[method])
        if method != "optax:adam":  # Adam may end at maxiter with a tiny gradient
            assert status[i] == Status.SUCCESS
    # the poisoned member does not change the others: same as a batch without it
    clean = jax.vmap(lambda p: minimize(fun, x0, p, method=method, bounds=BOX, **kw))(
        batch(poison_index=None)
    )
    for i in (0, 1, 3):
        np.testing.assert_allclose(out.params[i], clean.params[i], atol=1e-12, rtol=0)


def test_nan_midway_is_rolled_back():
    """A step into a NaN region stops the run with status NONFINITE and the last finite point."""

    def f(x, args):
        return jnp.where(x[0] > 2.0, jnp.nan, jnp.sum((x - 3.0) ** 2))

    r = minimize(
        f,
        jnp.zeros(2),
        None,
        method="optax:adam",
        maxiter=2000,
        learning_rate=0.5,
        schedule="constant",
    )
    assert int(r.status) == Status.NONFINITE
    assert np.all(np.isfinite(np.asarray(r.params))) and float(r.params[0]) <= 2.0
    assert np.isfinite(float(r.value))
    k = int(r.n_iter)
    assert np.all(np.isfinite(np.asarray(r.history[: k + 1])))


def test_chunked_progress_gives_the_same_iterates(capsys):
    x0 = jnp.full(N, 0.5)
    p = jax.tree.map(lambda a: a[0], batch(poison_index=None))
    kw = dict(method="Nelder-Mead", bounds=BOX, maxiter=3000, xatol=1e-10, fatol=1e-14)
    pure = minimize(objective, x0, p, **kw)
    seen = []
    chunked = minimize(objective, x0, p, progress=lambda *a: seen.append(a), chunk=37, **kw)
    np.testing.assert_array_equal(pure.params, chunked.params)
    np.testing.assert_array_equal(pure.history, chunked.history)
    assert int(pure.n_iter) == int(chunked.n_iter)
    assert len(seen) == -(-int(pure.n_iter) // 37)
    assert seen[0][:3] == ("Nelder-Mead", 37, 3000)
    minimize(objective, x0, p, progress=True, chunk=500, **kw)
    assert "[Nelder-Mead] iter" in capsys.readouterr().out


def test_method_names():
    assert "jaxopt:lbfgsb" in available_methods()
    assert get_solver("lbfgsb").method == "jaxopt:lbfgsb"
    assert get_solver("nelder-mead", tol=1e-5).xatol == 1e-5
    with pytest.raises(InputError, match="adapters.scipy"):
        get_solver("L-BFGS-B")
    with pytest.raises(InputError, match="unknown method"):
        get_solver("newton")
    with pytest.raises(InputError, match="bad option"):
        get_solver("lm", learning_rate=0.1)
    with pytest.raises(InputError):
        minimize(objective, jnp.zeros((2, 2)), None)


def test_bounds_forms():
    x0 = jnp.zeros(3)
    lo, hi = as_bounds([(0, 1), (None, 2), (-1, None)], x0)
    np.testing.assert_array_equal(lo, [0, -np.inf, -1])
    np.testing.assert_array_equal(hi, [1, 2, np.inf])
    lo, hi = as_bounds(scipy.optimize.Bounds([0, 0, 0], [1, 1, 1]), x0)
    np.testing.assert_array_equal(hi, [1, 1, 1])
    lo, hi = as_bounds((None, 5.0), x0)
    assert np.all(np.isneginf(lo)) and np.all(np.asarray(hi) == 5.0)
    with pytest.raises(InputError, match="exceeds"):
        as_bounds(([0, 2, 0], [1, 1, 1]), x0)
    with pytest.raises(InputError):
        as_bounds([(0, 1)], x0)
