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
from q2jax.fit import qfuerza_start
from q2jax.implicit import fit_implicit
from q2jax.objective import loss, make_objective, residuals
from q2jax.reference import ReferenceSet
from q2jax.solvers import minimize
from q2jax.vibrations import frequencies

MAXITER = 40
# Equilibrium values fixed at the QM geometry (where the frequencies are scored), and
# ethane's V1 and V2 (which its staggered geometry hardly constrains): with those free
# the problem has flat directions (eq values run to their bounds, C-F to 0.3 Å), and
# any two runs, batched or not, wander apart there by rounding (4e-8 after 60
# iterations, 1e-2 after 300).
FROZEN = {"ch3f": ["bond_eq", "angle_eq"],
          "ethane": ["bond_eq", "angle_eq", "torsion_v1", "torsion_v2"]}


@functools.lru_cache
def problems():
    """A mixed batch, each member its own molecule, parameters and QFUERZA start,
    frequencies at the QM geometry: CH3F (4 force constants) and ethane (4 force
    constants and V3, started at 1 kcal/mol) converge; ethane from 1 % of its start
    values is still descending at the iteration limit; CH3F from a corrupted (NaN)
    start cannot start."""
    out = []
    for name, scale in (("ch3f", 1.0), ("ethane", 1.0), ("ethane", 0.01), ("ch3f", 1.0)):
        c = load_case(name)
        ff = qfuerza_start(ForceField.from_molecules([c.molecule]), [c.molecule], [c.hessian])
        ff = ff.freeze(FROZEN[name])
        if name == "ethane":
            ff = ff.with_params(ff.params.at[-1].set(1.0))  # V3 (QFUERZA leaves it at 0)
        out.append((ff.with_params(scale * ff.params), ReferenceSet.from_qm([c.molecule],
                                                                          [c.hessian])))
    ff, refs = out[3]
    out[3] = (ff.with_params(ff.params.at[1].set(jnp.nan)), refs)
    return out


@functools.lru_cache
def batch_result():
    spec, p0, bounds, n_params = stack_problems(problems(), frequencies_at="reference")
    res = fit_batch(spec, p0, bounds, method="lm", maxiter=MAXITER, n_params=n_params, tol=1e-10)
    return spec, p0, bounds, res


def test_mixed_batch_equals_each_problem_alone():
    """Problem by problem (two molecules, 4 and 5 parameters, padded to one shape)
    the batch gives the single fit's status (converged, converged, iteration limit,
    non-finite start) and parameters to 1e-8 relative. Batched and single runs round
    differently and take different paths; they agree as far as each converges (measured
    2.3e-9 for CH3F, whose loss (1.5e4) is flat to its rounding over 1.5e-8 of the C-F
    constant: LM's gradient test at the rounding floor carries it below that; 7e-12
    for ethane)."""
    _, _, _, res = batch_result()
    assert res.n_params == (4, 5, 5, 4)
    np.testing.assert_array_equal(np.asarray(res.status), [0, 0, 1, 2])
    for i, (ff, refs) in enumerate(problems()):
        spec = make_objective(ff, refs, frequencies_at="reference")
        alone = minimize(loss, ff.params, spec, method="lm", residuals=residuals,
                         maxiter=MAXITER, bounds=ff.bounds(), tol=1e-10)
        assert int(res.status[i]) == int(alone.status)
        np.testing.assert_allclose(res.params_of(i), np.asarray(alone.params), rtol=1e-8)
        if i < 3:
            assert float(res.value[i]) == pytest.approx(float(alone.value), rel=1e-12)
            assert float(alone.value) < 0.1 * float(alone.history[0])


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


def _c3v_operations(coords, symbols, tol=1e-3):
    """The six C3v operations of a CH3X geometry as (kron(I, R), coordinate index
    map): R the rotation (0, 120, 240 degrees about the C-X axis) or reflection
    (in the plane of the axis and one H), the map sending each atom to its image
    (x_image = R x_atom about C, within ``tol`` Å)."""
    c = coords[0]
    axis = (coords[1] - c) / np.linalg.norm(coords[1] - c)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    out = []
    for angle in np.radians([0.0, 120.0, 240.0]):
        rot = np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross
        h = coords[2] - c
        normal = np.cross(axis, h - (h @ axis) * axis)
        normal /= np.linalg.norm(normal)
        for r in (rot, rot @ (np.eye(3) - 2 * np.outer(normal, normal))):
            image = (coords - c) @ r.T + c
            dist = np.linalg.norm(image[:, None, :] - coords[None, :, :], axis=2)
            to = np.argmin(dist, axis=1)
            assert np.all(dist[np.arange(len(coords)), to] < tol)
            assert [symbols[i] for i in to] == list(symbols) and len(set(to)) == len(to)
            inv = np.argsort(to)
            idx = (3 * inv[:, None] + np.arange(3)[None, :]).reshape(-1)
            out.append((np.kron(np.eye(len(coords)), r), idx))
    return out


@functools.lru_cache
def implicit_setup():
    """p*(QM Hessian, frequency weights) of the CH3F four-force-constant fit, and one
    compiled program giving p* and its directional derivative (forward mode through
    jax.lax.custom_root) along any (Hessian, weights) direction; the finite
    differences reuse it with zero tangents."""
    c = load_case("ch3f")
    m = c.molecule
    ff = ForceField.from_molecules([m]).freeze(["bond_eq", "angle_eq"]).with_params(
        jnp.array([350.0, 350.0, 50.0, 50.0]))
    spec = make_objective(ff, ReferenceSet.from_qm([m], [c.hessian]), frequencies_at="reference")

    def fitted(h, w):
        nu = frequencies(h, m.coords, m.masses, 9)
        s = eqx.tree_at(lambda s: (s.refs.freq_values, s.refs.freq_weights), spec,
                        (nu[None], w[None]))
        return fit_implicit(s, ff.params)

    jvp = jax.jit(lambda h, w, dh, dw: jax.jvp(fitted, (h, w), (dh, dw)))
    h0, w0 = jnp.asarray(c.hessian), jnp.ones(9)

    def p_star(h=h0, w=w0):
        return np.asarray(jvp(h, w, jnp.zeros_like(h), jnp.zeros_like(w))[0])

    def derivative(dh, dw):
        return np.asarray(jvp(h0, w0, jnp.asarray(dh), jnp.asarray(dw))[1])

    return c, m, h0, w0, p_star, derivative


def test_fit_implicit_reaches_the_least_squares_optimum():
    *_, p_star, _ = implicit_setup()
    np.testing.assert_allclose(p_star(), [403.06, 381.14, 62.66, 39.13], rtol=1e-4)  # README floor


def test_implicit_gradient_wrt_weights_matches_finite_differences():
    """dp*/dw (forward mode, column by column) vs central differences of the whole
    fit, each entry to 1e-5 of itself (measured 1.1e-6; the smallest entry is 1.5e-5 of
    the largest)."""
    _, _, h0, w0, p_star, derivative = implicit_setup()
    step = 1e-4
    zero_h = np.zeros(h0.shape)
    jac = np.stack([derivative(zero_h, e) for e in np.eye(9)], axis=1)
    fd = np.stack([(p_star(w=w0 + e) - p_star(w=w0 - e)) / (2 * step)
                   for e in np.eye(9) * step], axis=1)
    assert np.min(np.abs(fd)) > 1e-6 * np.max(np.abs(fd))  # no entry is ~0 ...
    np.testing.assert_allclose(jac, fd, rtol=1e-5)  # ... so each is held to 1e-5 of itself


def test_implicit_gradient_wrt_the_qm_hessian_matches_finite_differences():
    """dp*/dH along three random symmetric directions that keep CH3F's C3v
    degeneracies (the sorted frequencies of an E pair are not differentiable in
    directions that split it): each symmetric 3x3-block pattern is averaged over the
    molecule's six C3v operations, then compared with central differences of the
    whole fit, 1e-5 relative per component (measured 5e-8; unsymmetrised random
    directions split the E pairs and their differences are off by up to 6e-4)."""
    _, m, h0, w0, p_star, derivative = implicit_setup()
    rng = np.random.default_rng(0)
    ops = _c3v_operations(np.asarray(m.coords), m.symbols)
    zero_w = np.zeros(9)
    for _ in range(3):
        a = rng.standard_normal(h0.shape)
        d = a + a.T
        d = sum(big @ d[np.ix_(idx, idx)] @ big.T for big, idx in ops) / len(ops)
        d *= np.max(np.abs(np.asarray(h0))) / np.max(np.abs(d))
        step = 1e-5
        fd = (p_star(h=h0 + step * d) - p_star(h=h0 - step * d)) / (2 * step)
        ad = derivative(d, zero_w)
        np.testing.assert_allclose(ad, fd, rtol=1e-5)


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
        # inside user jit the placement is unknown: the mesh is passed
        mesh = p0_s.sharding.mesh
        fit = jax.jit(lambda p, s, lo, hi: fit_batch(s, p, (lo, hi), method="lm", maxiter=30,
                                                       mesh=mesh).params)
        np.testing.assert_allclose(np.asarray(fit(p0_s, spec_s, lo_s, hi_s)),
                                   np.asarray(sharded.params), rtol=1e-12)
        # each device ran its share as its own program
        assert "shard_map" in str(jax.make_jaxpr(fit)(p0_s, spec_s, lo_s, hi_s))
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
