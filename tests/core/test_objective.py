"""Objective: residuals/loss for every reference type, gradients vs finite
differences, and the known floor of the four-constant CH3F model."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from q2jax import ForceField
from q2jax.objective import loss, loss_breakdown, make_objective, residuals
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

from ._cases import ch3f, distorted

TIGHT = RelaxOptions(gtol=1e-10, max_steps=100)


@functools.lru_cache
def every_kind_spec(form: str):
    c = ch3f()
    m0 = c.molecule
    m1 = m0.with_coords(distorted(m0.coords, 0.03, seed=3))
    mols = [m0, m1]
    ff = ForceField.from_molecules(mols, form)
    # move away from the geometry-derived start so every block has a gradient
    p = np.asarray(ff.params) * np.array([1.1, 1.01, 0.9, 0.99, 1.2, 1.01, 0.8, 0.99])
    ff = ff.with_params(jnp.asarray(p))
    refs = ReferenceSet(mols)
    refs.add(FrequencyData(0, c.frequencies, 0.1))
    refs.add(EigenmatrixData(0, c.hessian, 0.05, 0.02))
    refs.add(HessianData(0, c.hessian, 0.01))
    refs.add(GeometryData(0, "bond", (0, 1), 1.40, 10.0))
    refs.add(GeometryData(0, "angle", (1, 0, 2), 108.9, 1.0))
    refs.add(GeometryData(0, "torsion", (2, 0, 1, 3), 121.0, 1.0))
    refs.add(CartesianData(0, np.asarray(m0.coords), 5.0))
    refs.add(EnergyData(0, 0.0, 1.0))
    refs.add(EnergyData(1, 2.5, 1.0))
    # harmonic: everything at the relaxed geometry (differentiating through the
    # relaxation); mm3: at the reference geometry, so the energy block has a gradient
    where = "relaxed" if form == "harmonic" else "reference"
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


@pytest.mark.parametrize("form", ["harmonic", "mm3"])
def test_loss_gradient_matches_finite_differences_every_reference_type(form):
    ff, spec = every_kind_spec(form)
    blocks = loss_breakdown(ff.params, spec)
    for kind in (
        "frequency",
        "eigenmatrix",
        "eigenmatrix_offdiagonal",
        "hessian",
        "geometry",
        "cartesian",
        "energy",
        "stationarity",
        "regularization",
    ):
        # (at the relaxed geometry both CH3F copies reach the same minimum: the cartesian
        # RMSD of the undistorted copy can still be > 0 because its equilibrium values differ)
        assert blocks[kind] > 0.0, kind
    vg = jax.jit(jax.value_and_grad(loss))
    lj = jax.jit(loss)
    value, grad = vg(ff.params, spec)
    assert float(value) == pytest.approx(sum(blocks.values()), rel=1e-10)
    p0 = np.asarray(ff.params)
    steps = 1e-5 * np.maximum(1.0, np.abs(p0))
    fd = np.array(
        [
            (float(lj(jnp.asarray(p0 + e), spec)) - float(lj(jnp.asarray(p0 - e), spec)))
            / (2 * e[i])
            for i, e in enumerate(np.diag(steps))
        ]
    )
    np.testing.assert_allclose(np.asarray(grad), fd, rtol=1e-6, atol=1e-6 * np.max(np.abs(fd)))


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
    r = np.asarray(residuals(ff.params, spec))
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
