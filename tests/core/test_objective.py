"""Objective: residuals/loss for every reference type, gradients vs finite
differences, and the known floor of the four-constant CH3F model."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from q2jax import ForceField
from q2jax.objective import loss, make_objective, residual_blocks, residuals
from q2jax.reference import (
    CartesianData,
    EigenmatrixData,
    EnergyData,
    FrequencyData,
    GeometryData,
    HessianData,
    ReferenceSet,
)
from q2jax.relax import RelaxOptions

from ._cases import ch3f, distorted, numpy_normal_modes

TIGHT = RelaxOptions(gtol=1e-10, max_steps=100)
ASYMMETRIC_TYPES = ("C", "F", "HA", "HB", "HC")
"""CH3F with its three hydrogens typed apart: each C-H bond and each angle has its
own parameters, so (perturbed unevenly) the MM minimum is not C3v and every
geometry value there -- the H-C-F-H torsion included -- depends on the parameters."""
BLOCKS_AT = {
    # where="relaxed": everything at the MM minimum, differentiated through the relaxation;
    # both copies relax to the same minimum, so their relative energy cannot vary
    "relaxed": ("frequency", "eigenmatrix", "eigenmatrix_offdiagonal", "hessian", "geometry",
                "torsion", "cartesian", "stationarity", "regularization"),
    # where="reference": everything at the fixed QM (and distorted) geometries, so the
    # energy block varies and the geometry blocks cannot
    "reference": ("frequency", "eigenmatrix", "eigenmatrix_offdiagonal", "hessian", "energy",
                  "stationarity", "regularization"),
}


@functools.lru_cache
def every_kind_spec(form: str, where: str):
    c = ch3f()
    m0 = c.molecule.with_atom_types(ASYMMETRIC_TYPES)
    m1 = m0.with_coords(distorted(m0.coords, 0.03, seed=3))
    mols = [m0, m1]
    ff = ForceField.from_molecules(mols, form)
    # move unevenly away from the geometry-derived start so every block has a gradient
    rng = np.random.default_rng(11)
    p = np.asarray(ff.params) * rng.uniform(0.9, 1.1, ff.n_params)
    eq = np.array([e.kind.endswith("_eq") for e in ff.trainable_entries])
    p[eq] = np.asarray(ff.params)[eq] * rng.uniform(0.985, 1.015, int(eq.sum()))
    ff = ff.with_params(jnp.asarray(p))
    refs = ReferenceSet(mols)
    refs.add(FrequencyData(0, c.frequencies, 0.1))
    refs.add(EigenmatrixData(0, c.hessian, 0.05, 0.02))
    refs.add(HessianData(0, c.hessian, 0.01))
    refs.add(GeometryData(0, "bond", (0, 1), 1.40, 10.0))
    refs.add(GeometryData(0, "angle", (1, 0, 2), 108.9, 1.0))
    refs.add(CartesianData(0, np.asarray(m0.coords), 5.0))
    refs.add(EnergyData(0, 0.0, 1.0))
    refs.add(EnergyData(1, 2.5, 1.0))
    refs.add(GeometryData(1, "torsion", (2, 0, 1, 3), 121.0, 1.0))
    spec = make_objective(
        ff,
        refs,
        lam=0.01,
        p_ref=np.asarray(ff.params) * 0.95,
        stationarity_weight=[0.0, 0.1],
        relax_options=TIGHT,
        frequencies_at=where,
        hessian_at=where,
    )
    return ff, spec


def _central_differences(f, p0: np.ndarray, spec) -> np.ndarray:
    """Central differences of ``f(params, spec)`` (a scalar or a vector) in each
    parameter, step 1e-5 max(1, |p|); the parameter axis last."""
    steps = 1e-5 * np.maximum(1.0, np.abs(p0))
    return np.stack([(np.asarray(f(jnp.asarray(p0 + e), spec))
                      - np.asarray(f(jnp.asarray(p0 - e), spec))) / (2 * e[i])
                     for i, e in enumerate(np.diag(steps))], axis=-1)


def _block_losses(params, spec, kinds):
    """Sum of squares of each residual block; the torsion rows split from 'geometry'."""
    b = residual_blocks(params, spec)
    torsion = spec.refs.geom_kind.reshape(-1) == 2
    split = {**b, "torsion": jnp.where(torsion, b["geometry"], 0.0),
             "geometry": jnp.where(torsion, 0.0, b["geometry"])}
    return jnp.stack([jnp.sum(split[k] ** 2) for k in kinds])


@pytest.mark.parametrize("where", ["relaxed", "reference"])
@pytest.mark.parametrize("form", ["harmonic", "mm3"])
def test_loss_gradient_matches_finite_differences_every_reference_type(form, where):
    """Issue 3: per reference type, the autodiff gradient of that block's sum of squares
    equals central finite differences to 1e-6 relative, component by component (no
    allowance scaled by the largest component). Each block must have a gradient."""
    ff, spec = every_kind_spec(form, where)
    kinds = (*sorted(jax.eval_shape(residual_blocks, ff.params, spec)), "torsion")
    assert set(BLOCKS_AT[where]) <= set(kinds)
    f = jax.jit(functools.partial(_block_losses, kinds=kinds))
    jac = jax.jit(jax.jacfwd(functools.partial(_block_losses, kinds=kinds)))
    p0 = np.asarray(ff.params)
    values = np.asarray(f(jnp.asarray(p0), spec))
    assert np.sum(values) == pytest.approx(float(jax.jit(loss)(ff.params, spec)), rel=1e-10)
    g = np.asarray(jac(jnp.asarray(p0), spec))  # (blocks, params)
    fd = _central_differences(f, p0, spec)
    for b, kind in enumerate(kinds):
        if kind in BLOCKS_AT[where]:
            assert np.linalg.norm(g[b]) > 1e-6 * max(values[b], 1.0), f"{kind}: no gradient"
        # absolute floor for components that are exactly zero (a parameter the block does
        # not see): FD round-off ~1e-16 |value| / step, and at the relaxed geometry the
        # relaxation's own tolerance (gtol 1e-10 kcal/(mol Å), geometry noise ~1e-12 Å)
        floor = (1e-7 if where == "relaxed" else 1e-9) * max(values[b], 1.0)
        np.testing.assert_allclose(g[b], fd[b], rtol=1e-6, atol=floor, err_msg=kind)


def test_residuals_are_weighted_differences():
    """Frequency residuals at the start equal weight * (MM - QM) computed independently."""
    from q2jax.energy import hessian
    from q2jax.system import build_system
    from q2jax.vibrations import frequencies

    c = ch3f()
    ff = ForceField.from_molecules([c.molecule])
    spec = make_objective(
        ff,
        ReferenceSet.from_qm([c.molecule], [c.hessian], frequency_weight=2.0),
        frequencies_at="reference",
    )
    s = build_system(ff, c.molecule)
    nu = np.asarray(
        frequencies(hessian(ff.full_params(), s.coords, s.terms), s.coords, s.masses, 9)
    )
    r = np.asarray(jax.jit(residuals)(ff.params, spec))
    np.testing.assert_allclose(r[:9], 2.0 * (nu - c.frequencies), atol=1e-8)


def test_ch3f_four_force_constants_reach_the_model_floor():
    """Data README: equilibrium values fixed at the QM geometry, four force constants,
    least squares on sorted frequencies from physical starts -> 41.2 cm^-1
    (C-F 403, C-H 381, F-C-H 62.7, H-C-H 39.1)."""
    c = ch3f()
    ff = ForceField.from_molecules([c.molecule]).freeze(["bond_eq", "angle_eq"])
    spec = make_objective(ff, ReferenceSet.from_qm([c.molecule], [c.hessian]))
    res = jax.jit(residuals)
    jac = jax.jit(jax.jacfwd(residuals))
    sol = scipy.optimize.least_squares(
        lambda p: np.asarray(res(jnp.asarray(p), spec)),
        np.array([350.0, 350.0, 50.0, 50.0]),
        jac=lambda p: np.asarray(jac(jnp.asarray(p), spec)),
        xtol=1e-12,
        ftol=1e-12,
    )
    rmsd = np.sqrt(np.sum(sol.fun**2) / 9)
    assert rmsd == pytest.approx(41.2, abs=1.0)
    np.testing.assert_allclose(sol.x, [403, 381, 62.7, 39.1], rtol=0.01)


def test_bad_objective_inputs():
    from q2jax.errors import InputError

    c = ch3f()
    ff = ForceField.from_molecules([c.molecule])
    with pytest.raises(InputError):
        make_objective(ff, ReferenceSet.from_qm([c.molecule], [c.hessian]), frequencies_at="qm")
    with pytest.raises(InputError):
        make_objective(ff, ReferenceSet([c.molecule], [FrequencyData(3, c.frequencies)]))
    with pytest.raises(InputError):
        ReferenceSet.from_qm([c.molecule], [c.hessian[:9, :9]])
    with pytest.raises(InputError):
        make_objective(ff, ReferenceSet.from_qm([c.molecule], [c.hessian]), p_ref=np.zeros(3))


def test_warm_started_relaxation_same_minimum_and_gradient():
    """``with_relax_start``: starting the relaxation at a nearby geometry (here the
    minimum of slightly different parameters) reaches the same MM minimum, so loss,
    gradient and the returned geometry equal the cold start's; the geometry returned by
    ``loss_and_coords`` is stationary; the warm-started gradient matches central finite
    differences."""
    from q2jax.energy import gradient
    from q2jax.objective import loss_and_coords
    from q2jax.system import build_system

    c = ch3f()
    m0 = c.molecule
    ff = ForceField.from_molecules([m0], "mm3")
    ff = ff.with_params(ff.params * jnp.asarray([1.1, 1.02, 0.9, 0.98, 1.2, 1.01, 0.8, 0.99]))
    refs = ReferenceSet.from_qm([m0], [c.hessian], frequency_weight=0.1)
    refs.add(CartesianData(0, np.asarray(m0.coords), 5.0))
    cold = make_objective(ff, refs, relax_options=TIGHT)
    lc = jax.jit(loss_and_coords)
    _, x_near = lc(ff.params * 1.01, cold)
    warm = cold.with_relax_start(x_near)
    vg = jax.jit(jax.value_and_grad(loss))
    (v_cold, g_cold), (v_warm, g_warm) = vg(ff.params, cold), vg(ff.params, warm)
    assert float(v_warm) == pytest.approx(float(v_cold), rel=1e-9)
    np.testing.assert_allclose(
        np.asarray(g_warm),
        np.asarray(g_cold),
        rtol=1e-6,
        atol=1e-8 * float(jnp.max(jnp.abs(g_cold))),
    )
    _, x_star = lc(ff.params, warm)
    s = build_system(ff, m0)
    g = gradient(ff.full_params(), x_star[0], s.terms, ff.form, ff.settings)
    assert float(jnp.max(jnp.abs(g))) < 1e-8
    assert float(jnp.max(jnp.abs(x_star[0] - x_near[0]))) > 1e-4  # it did move
    fd = _central_differences(jax.jit(loss), np.asarray(ff.params), warm)
    np.testing.assert_allclose(np.asarray(g_warm), fd, rtol=1e-6, atol=1e-6 * np.max(np.abs(fd)))
    from q2jax.errors import InputError

    with pytest.raises(InputError):
        cold.with_relax_start(np.zeros((2, 3)))


@pytest.mark.parametrize("where", ["relaxed", "reference"])
def test_frequency_drop_mode_matches_numpy_and_finite_differences(where):
    """FrequencyData.drop_mode: the MM mode overlapping the given QM mode most (after
    rotating the MM modes into the reference frame) leaves the sorted comparison; checked
    against a NumPy normal-mode analysis of the same MM Hessian, with the relaxation
    started from a rotated copy of the molecule (so the rotation matters); gradient vs
    central finite differences."""
    from q2jax.energy import hessian
    from q2jax.modes import kabsch_rotation
    from q2jax.objective import residual_blocks_and_coords
    from q2jax.reference import qm_modes
    from q2jax.units import EIGENVALUE_TO_CM1

    c = ch3f()
    m0 = c.molecule
    ff = ForceField.from_molecules([m0], "mm3")
    ff = ff.with_params(ff.params * jnp.asarray([1.1, 1.02, 0.9, 0.98, 1.2, 1.01, 0.8, 0.99]))
    _, q = qm_modes(np.asarray(c.hessian), m0, m0.n_vibrations, m0.n_atoms)
    drop = q[:, 3]  # the umbrella bend, 1495 cm^-1 (A1, not degenerate)
    qm_nu = np.delete(np.asarray(c.frequencies, float), 3)
    refs = ReferenceSet([m0]).add(FrequencyData(0, qm_nu, 0.5, drop_mode=drop))
    spec = make_objective(ff, refs, relax_options=TIGHT, frequencies_at=where)
    x_qm = np.asarray(m0.coords)
    if where == "relaxed":
        ang = 1.2
        rot = np.array([[1, 0, 0], [0, np.cos(ang), -np.sin(ang)], [0, np.sin(ang), np.cos(ang)]])
        spec = spec.with_relax_start(((x_qm - x_qm.mean(0)) @ rot.T)[None])
    blocks, x = residual_blocks_and_coords(ff.params, spec)
    x = np.asarray(x[0])
    from q2jax.system import build_system

    s = build_system(ff, m0)
    h = np.asarray(hessian(ff.full_params(), jnp.asarray(x), s.terms, ff.form, ff.settings))
    masses = np.asarray(m0.masses)
    w, v = numpy_normal_modes(h, x, masses)
    r = kabsch_rotation(x, x_qm, masses)
    v_qm = np.einsum("ab,nbk->nak", r, v.reshape(5, 3, 9)).reshape(15, 9)
    ov = (drop @ v_qm) ** 2
    j = int(np.argmax(ov))
    assert ov[j] > 0.5
    if where == "relaxed":  # without the rotation the overlap would pick poorly
        assert (drop @ v[:, j]) ** 2 < 0.5 * ov[j]
    nu = np.sign(w) * np.sqrt(np.abs(w)) * EIGENVALUE_TO_CM1
    want = 0.5 * (np.delete(nu, j) - qm_nu)
    np.testing.assert_allclose(np.asarray(blocks["frequency"])[:8], want, rtol=1e-7, atol=1e-6)

    _, grad = jax.jit(jax.value_and_grad(loss))(ff.params, spec)
    fd = _central_differences(jax.jit(loss), np.asarray(ff.params), spec)
    np.testing.assert_allclose(np.asarray(grad), fd, rtol=1e-6, atol=1e-6 * np.max(np.abs(fd)))


def test_frequency_drop_mode_inputs():
    from q2jax.errors import InputError

    c = ch3f()
    m0 = c.molecule
    nu = np.asarray(c.frequencies, float)
    with pytest.raises(InputError, match="reference frequencies"):
        ReferenceSet([m0]).add(FrequencyData(0, nu, drop_mode=np.eye(15)[0])).validate()
    with pytest.raises(InputError, match="3N"):
        ReferenceSet([m0]).add(FrequencyData(0, nu[1:], drop_mode=np.ones(9) / 3)).validate()
    with pytest.raises(InputError, match="unit vector"):
        ReferenceSet([m0]).add(FrequencyData(0, nu[1:], drop_mode=np.ones(15))).validate()
