"""q2jax.linalg: jnp.linalg's results and derivatives, with one matrix per
LAPACK call under vmap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from q2jax import linalg


def _matrices(key, shape, n, sym):
    a = jax.random.normal(key, (*shape, n, n))
    return a + jnp.swapaxes(a, -1, -2) if sym else a + n * jnp.eye(n)


@pytest.mark.parametrize("axes", [(0, 0), (None, 0), (0, None)])
@pytest.mark.parametrize("rhs", [(), (3,)])
def test_solve_matches_jnp_under_vmap(axes, rhs):
    k1, k2 = jax.random.split(jax.random.key(0))
    a = _matrices(k1, (4,), 5, sym=False)
    b = jax.random.normal(k2, (4, 5, *rhs))
    args = (a if axes[0] == 0 else a[0], b if axes[1] == 0 else b[0])
    got = jax.vmap(linalg.solve, axes)(*args)
    want = jax.vmap(jnp.linalg.solve, axes)(*args)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    # nested vmap: one level of problems, one of right-hand sides
    nested = jax.vmap(jax.vmap(linalg.solve, (None, 0)), (0, None))(a, b)
    np.testing.assert_allclose(nested, jax.vmap(jax.vmap(jnp.linalg.solve, (None, 0)),
                                                 (0, None))(a, b), rtol=1e-13, atol=1e-13)


def test_solve_derivatives_match_jnp():
    """Reverse, forward and second derivatives in both arguments, batched."""
    k1, k2 = jax.random.split(jax.random.key(1))
    a, b = _matrices(k1, (3,), 4, sym=False), jax.random.normal(k2, (3, 4))

    def f(solve):
        return lambda a, b: jnp.sum(jnp.sin(jax.vmap(solve)(a, b)))

    for d in (jax.grad, jax.jacfwd):
        for x, y in zip(d(f(linalg.solve), (0, 1))(a, b), d(f(jnp.linalg.solve), (0, 1))(a, b),
                        strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)
    h = jax.hessian(lambda a: f(linalg.solve)(a, b))(a)
    np.testing.assert_allclose(h, jax.hessian(lambda a: f(jnp.linalg.solve)(a, b))(a),
                               rtol=1e-10, atol=1e-12)


def test_eigh_matches_jnp_and_loops_under_vmap():
    a = _matrices(jax.random.key(2), (2, 3), 6, sym=True)
    w, v = jax.vmap(jax.vmap(linalg.eigh))(a)
    w0, v0 = jnp.linalg.eigh(a)
    np.testing.assert_allclose(w, w0, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(np.abs(np.einsum("...ji,...ji->...i", v, v0)), 1.0, rtol=1e-12)
    np.testing.assert_allclose(jax.jvp(linalg.eigh, (a[0, 0],), (a[0, 1],))[1][0],
                               jax.jvp(jnp.linalg.eigh, (a[0, 0],), (a[0, 1],))[1][0],
                               rtol=1e-12, atol=1e-12)
    # the fix itself: every eigh that reaches LAPACK holds one matrix
    text = jax.jit(jax.vmap(jax.vmap(linalg.eigh))).lower(a).as_text()
    calls = [line for line in text.splitlines() if "syevd" in line]
    assert calls and all("tensor<6x6xf64>" in line for line in calls), calls


def test_batched_objective_jacobian_calls_lapack_one_matrix_at_a_time():
    """The hot path of batch fits and multi-start, the Jacobian of the relaxed
    objective vmapped over problems: every LAPACK call in its compiled program
    sees one matrix (jaxlib 0.10's batched kernels can stall for good when two
    run at once on a 2-core machine; see q2jax.linalg)."""
    import re

    from q2jax import ForceField
    from q2jax.datasets import load_case
    from q2jax.fit import default_references, qfuerza_start
    from q2jax.objective import make_objective, residuals

    case = load_case("ch3f")
    ff = qfuerza_start(ForceField.from_molecules([case.molecule]), [case.molecule],
                       [case.hessian])
    spec = make_objective(ff, default_references([case.molecule], [case.hessian]))
    specs = jax.tree.map(lambda x: jnp.stack([x, x, x]), spec)
    params = jnp.stack([ff.params, 1.01 * ff.params, 0.99 * ff.params])
    text = jax.jit(jax.vmap(jax.jacfwd(residuals))).lower(params, specs).as_text()
    calls = [line for line in text.splitlines() if "lapack_" in line]
    assert any("syevd" in c for c in calls) and any("getrf" in c for c in calls)
    for call in calls:
        operand = re.search(r"\(tensor<([0-9x]+)xf64>", call.split(" : ")[-1]).group(1)
        dims = [int(d) for d in operand.split("x")]
        assert np.prod(dims[:-2]) == 1, call.split(" : ")[-1]
