"""q2jax inside JAX programs (issue 10): batch fits in one compiled call,
differentiable fits by implicit differentiation, no host callbacks, sharding."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from q2jax import ForceField
from q2jax.batch import fit_batch, stack_problems
from q2jax.datasets import load_case
from q2jax.energy import hessian
from q2jax.implicit import fit_implicit
from q2jax.objective import loss, make_objective, residuals
from q2jax.reference import ReferenceSet
from q2jax.solvers import minimize
from q2jax.system import build_system
from q2jax.vibrations import frequencies

MAXITER = 60


@functools.lru_cache
def problems():
    """Four CH3F-sized problems: the QM Hessian scaled per problem (fixed seed),
    the four-force-constant model; problem 3 has a corrupted (NaN) start and
    cannot converge."""
    c = load_case("ch3f")
    ff = ForceField.from_molecules([c.molecule]).freeze(["bond_eq", "angle_eq"])
    rng = np.random.default_rng(42)
    out = []
    for i in range(4):
        h = c.hessian * (1.0 + 0.05 * rng.standard_normal())
        p0 = (
            jnp.array([350.0, 350.0, 50.0, 50.0])
            if i < 3
            else jnp.array([350.0, np.nan, 50.0, 50.0])
        )
        out.append((ff.with_params(p0), ReferenceSet.from_qm([c.molecule], [h])))
    return out


@functools.lru_cache
def batch_result():
    spec, p0, bounds, n_params = stack_problems(problems(), frequencies_at="reference")
    res = fit_batch(spec, p0, bounds, method="lm", maxiter=MAXITER, n_params=n_params, tol=1e-10)
    return spec, p0, bounds, res


def test_batch_equals_each_problem_alone_including_a_failing_one():
    _, _, _, res = batch_result()
    status = np.asarray(res.status)
    assert status[3] == 2  # the corrupted start is reported as non-finite ...
    assert np.all(status[:3] == 0)  # ... and the others converge regardless
    for i, (ff, refs) in enumerate(problems()):
        spec = make_objective(ff, refs, frequencies_at="reference")
        alone = minimize(loss, ff.params, spec, method="lm", residuals=residuals,
                         maxiter=MAXITER, bounds=ff.bounds(), tol=1e-10)
        np.testing.assert_allclose(res.params_of(i), np.asarray(alone.params), rtol=1e-8)
        assert int(res.status[i]) == int(alone.status)


def test_chunked_batch_equals_single_vmap(monkeypatch):
    """Batches above q2jax.batch.MAX_VMAP_CHUNK run as a loop over vmapped chunks
    (uneven last chunk here: 4 problems in chunks of 3); problem by problem the
    results equal the single-vmap batch, the failing problem included."""
    import q2jax.batch as batch

    spec, p0, bounds, res = batch_result()
    monkeypatch.setattr(batch, "MAX_VMAP_CHUNK", 3)
    chunked = fit_batch(spec, p0, bounds, method="lm", maxiter=MAXITER, tol=1e-10)
    np.testing.assert_allclose(np.asarray(chunked.params)[:3], np.asarray(res.params)[:3],
                               rtol=1e-8)
    np.testing.assert_array_equal(np.asarray(chunked.status), np.asarray(res.status))


def test_batch_fit_jaxpr_has_no_host_callback():
    spec, p0, bounds, _ = batch_result()

    def user_code(p0, spec, lo, hi):
        return fit_batch(spec, p0, (lo, hi), method="lm", maxiter=5).params

    text = str(jax.make_jaxpr(user_code)(p0, spec, *bounds))
    assert "callback" not in text and "pure_callback" not in text and "io_callback" not in text
    # and it runs under the user's own jit
    out = jax.jit(user_code)(p0, spec, *bounds)
    assert out.shape == p0.shape and bool(jnp.all(jnp.isfinite(out[:3])))


@functools.lru_cache
def implicit_setup():
    c = load_case("ch3f")
    m = c.molecule
    ff = ForceField.from_molecules([m]).freeze(["bond_eq", "angle_eq"]).with_params(
        jnp.array([350.0, 350.0, 50.0, 50.0]))
    spec = make_objective(ff, ReferenceSet.from_qm([m], [c.hessian]), frequencies_at="reference")

    def from_hessian(h):
        nu = frequencies(h, m.coords, m.masses, 9)
        return fit_implicit(eqx.tree_at(lambda s: s.refs.freq_values, spec, nu[None]), ff.params)

    def from_weights(w):
        return fit_implicit(eqx.tree_at(lambda s: s.refs.freq_weights, spec, w[None]), ff.params)

    return c, m, jax.jit(from_hessian), jax.jit(from_weights)


def test_fit_implicit_reaches_the_least_squares_optimum():
    c, _, _, from_weights = implicit_setup()
    p = np.asarray(from_weights(jnp.ones(9)))
    np.testing.assert_allclose(p, [403.06, 381.14, 62.66, 39.13], rtol=1e-4)  # data README floor


def test_implicit_gradient_wrt_weights_matches_finite_differences():
    _, _, _, from_weights = implicit_setup()
    w = jnp.ones(9)
    jac = np.asarray(jax.jit(jax.jacrev(from_weights))(w))
    h = 1e-4
    fd = np.stack([(np.asarray(from_weights(w + e)) - np.asarray(from_weights(w - e))) / (2 * h)
                   for e in np.eye(9) * h], axis=1)
    np.testing.assert_allclose(jac, fd, rtol=1e-5, atol=1e-5 * np.max(np.abs(fd)))


def test_implicit_gradient_wrt_the_qm_hessian_matches_finite_differences():
    """Directions that keep CH3F's C3v degeneracies (the sorted frequencies of an E pair
    are not differentiable in directions that split it)."""
    c, m, from_hessian, _ = implicit_setup()
    h0 = jnp.asarray(c.hessian)
    jac = np.asarray(jax.jit(jax.jacrev(from_hessian))(h0))
    ff = ForceField.from_molecules([m])
    s = build_system(ff, m)
    dirs = [
        np.asarray(h0),
        np.asarray(hessian(ff.full_params(), s.coords, s.terms)),
        np.asarray(
            hessian(
                ff.full_params(ff.params * jnp.array([1.3, 1, 0.7, 1, 1.5, 1, 0.6, 1])),
                s.coords,
                s.terms,
            )
        ),
    ]
    for d in dirs:
        step = 1e-6
        fd = (np.asarray(from_hessian(h0 + step * d)) - np.asarray(from_hessian(h0 - step * d))) / (
            2 * step)
        ad = np.einsum("pij,ij->p", jac, d)
        np.testing.assert_allclose(ad, fd, rtol=1e-5, atol=1e-5 * np.max(np.abs(fd)))


def test_sharded_batch_equals_unsharded_on_two_devices(tmp_path):
    script = textwrap.dedent("""
        import numpy as np, jax, jax.numpy as jnp
        import q2jax
        from q2jax import ForceField
        from q2jax.batch import stack_problems, fit_batch, shard_problems
        from q2jax.datasets import load_case
        from q2jax.reference import ReferenceSet
        assert len(jax.devices()) == 2, jax.devices()
        c = load_case("ch3f")
        ff = ForceField.from_molecules([c.molecule]).freeze(["bond_eq", "angle_eq"])
        ff = ff.with_params(jnp.array([350.0, 350.0, 50.0, 50.0]))
        probs = [(ff, ReferenceSet.from_qm([c.molecule], [c.hessian * s])) for s in (0.95, 1.05)]
        spec, p0, (lo, hi), n = stack_problems(probs, frequencies_at="reference")
        plain = fit_batch(spec, p0, (lo, hi), method="lm", maxiter=30)
        spec_s, p0_s, lo_s, hi_s = shard_problems((spec, p0, lo, hi))
        assert len(p0_s.sharding.device_set) == 2
        sharded = fit_batch(spec_s, p0_s, (lo_s, hi_s), method="lm", maxiter=30)
        # the partitioned program sums in another order and LM stops at ~1e-8 relative
        np.testing.assert_allclose(np.asarray(sharded.params), np.asarray(plain.params), rtol=1e-7)
        print("OK")
    """)
    env = dict(os.environ)
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "OK" in proc.stdout


def test_stack_problems_rejects_mixed_structures():
    from q2jax.errors import InputError

    (ff, refs), *_ = problems()
    with pytest.raises(InputError):
        stack_problems([(ff, refs), (ff.with_form("mm3"), refs)])
    with pytest.raises(InputError):
        stack_problems([])
