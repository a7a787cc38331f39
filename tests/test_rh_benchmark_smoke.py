"""Smoke test of benchmarks/rh_enamide.py at minimal size (one structure).

Checks the pieces against independent computations: the Q2MM eigenmatrix
weights and TSFF replacement against a NumPy eigenmatrix of the same MM and
QM Hessians; the reaction-coordinate drop against a synthetic spectrum with
a known rotation; the honest figures of the published TSFF on structure 1
(its reaction-coordinate MM mode is the stiff one the TSFF builds in).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import rh_enamide as rb  # noqa: E402
from core._cases import numpy_normal_modes  # noqa: E402

from q2jax.energy import hessian  # noqa: E402
from q2jax.reference import TS_REPLACEMENT_EIGENVALUE  # noqa: E402
from q2jax.rh_enamide import load_rh_enamide_set  # noqa: E402


def _first_only(rset):
    mm3 = dataclasses.replace(rset.mm3, systems=rset.mm3.systems[:1],
                              assignments=rset.mm3.assignments[:1])
    return dataclasses.replace(rset, molecules=rset.molecules[:1], qm_data=rset.qm_data[:1],
                               mm3=mm3)


@pytest.fixture(scope="module")
def one():
    return _first_only(load_rh_enamide_set("final"))


def test_eigenmatrix_objective_matches_numpy(one):
    """Diagonal eigenmatrix loss of the published final on structure 1 with Q2MM's
    weights (0.1 and 0.05 per kJ/(mol A^2 amu), eig_i = 0, TSFF replacement) equals
    the same sum computed from NumPy's eigenvectors of the QM Hessian."""
    spec = rb.make_spec(one, "reference")
    mol, q = one.molecules[0], one.qm_data[0]
    w = np.asarray(spec.refs.eig_weights)[0]
    k = mol.n_vibrations
    assert w[0] == rb.FIRST_MODE_WEIGHT
    assert np.allclose(w[1:k], 0.1 * 4.184) and not np.any(w[k:])
    assert float(spec.refs.eig_offdiag_weight[0]) == pytest.approx(0.05 * 4.184)
    assert float(spec.refs.eig_values[0, 0]) == pytest.approx(TS_REPLACEMENT_EIGENVALUE)
    ff = one.forcefield
    hess = jax.jit(hessian, static_argnums=(3, 4))
    h_mm = np.asarray(hess(ff.full_params(), jnp.asarray(mol.coords), one.mm3.systems[0].terms,
                           ff.form, ff.settings))
    n3 = 3 * mol.n_atoms
    lam_qm, v = numpy_normal_modes(np.asarray(q.hessian), mol.coords, mol.masses)
    assert lam_qm[0] < 0 < lam_qm[1]
    sm = np.repeat(np.sqrt(np.asarray(mol.masses)), 3)
    em = v.T @ (h_mm[:n3, :n3] / np.outer(sm, sm)) @ v
    ref = lam_qm.copy()
    ref[0] = TS_REPLACEMENT_EIGENVALUE
    wd = np.full(k, 0.1 * 4.184)
    wd[0] = rb.FIRST_MODE_WEIGHT
    want_diag = np.sum((wd * (np.diag(em) - ref)) ** 2)
    off = em[np.triu_indices(k, 1)]
    want_off = np.sum((0.05 * 4.184 * off) ** 2)
    got = rb.loss_breakdown_jit(ff.params, spec)
    assert got["eigenmatrix"] == pytest.approx(want_diag, rel=1e-6)
    assert got["eigenmatrix_offdiagonal"] == pytest.approx(want_off, rel=1e-6)


def test_reaction_coordinate_drop_with_a_rotated_frame():
    """A synthetic 4-atom spectrum: the MM mode equal to the QM reaction coordinate
    (after a known rotation of the whole frame) is the one dropped."""
    rng = np.random.default_rng(1)
    n, k = 4, 6
    xq = rng.normal(size=(n, 3))
    ang = 0.7
    rot = np.array([[np.cos(ang), -np.sin(ang), 0], [np.sin(ang), np.cos(ang), 0], [0, 0, 1]])
    xm = xq @ rot.T + 3.0  # MM geometry: the QM one rotated and shifted
    basis, _ = np.linalg.qr(rng.normal(size=(3 * n, k)))
    rc_qm = basis[:, 0]
    # MM modes in the MM frame: the QM modes rotated atom by atom, order shuffled
    mm_modes = np.einsum("ab,nbk->nak", rot, basis.reshape(n, 3, k)).reshape(3 * n, k)
    order = [3, 0, 1, 2, 4, 5]  # the RC is MM mode 1 (its 2nd column)
    mm_modes = mm_modes[:, order]
    nu_mm = np.array([100.0, 5000.0, 300.0, 400.0, 500.0, 600.0])
    qm = np.array([-650.0, 110.0, 290.0, 420.0, 480.0, 640.0])

    class Mol:
        n_atoms, n_vibrations = n, k
        masses = np.ones(n)
        coords = xq

    figs, mm_kept, qm_kept = rb._drop_rc(nu_mm, mm_modes, xm, Mol, rc_qm, qm)
    assert figs["rc_mm_mode_index"] == 1 and figs["rc_overlap"] == pytest.approx(1.0)
    assert figs["rc_mm_frequency_cm1"] == 5000.0
    d = np.array([100, 300, 400, 500, 600]) - qm[1:]
    assert figs["freq_rmsd_cm1"] == pytest.approx(np.sqrt(np.mean(d**2)))
    assert np.array_equal(qm_kept, qm[1:]) and len(mm_kept) == k - 1


def test_published_tsff_honest_figures_on_structure_1(one):
    """Structure 1 relaxed with the published final TSFF: a converged minimum with no
    imaginary mode; its reaction-coordinate mode is stiff (the TSFF's replaced
    eigenvalue), so dropping it changes the RMSD a lot."""
    spec = rb.make_spec(one, "reference")
    modes_fn = rb._make_modes_fn(one.forcefield, spec.n_modes)
    h = rb.honest_figures(one.forcefield, one, modes_fn, rb.qm_reaction_modes(one))
    m = next(iter(h["molecules"].values()))
    assert m["converged"] and m["n_imaginary"] == 0
    assert m["rc_overlap"] > 0.5 and m["rc_mm_frequency_cm1"] > 3000.0
    assert m["freq_rmsd_cm1"] < 0.5 * m["freq_rmsd_all_sorted_cm1"]
    assert m["qm_imaginary_cm1"] == pytest.approx(-705.89)
    assert m["frequency_consistency_cm1"] < 1e-3


def test_relaxed_fit_objective_is_the_honest_figure_on_structure_1(one):
    """The relaxed fit's objective at the MM minimum of structure 1 (published final):
    its frequency block is the honest RC-dropped frequency RMSD squared (up to the
    smooth low-frequency map below 50 cm^-1), its Cartesian block the geometry RMSD
    times the weight; a warm start at the honest minimum reaches the same minimum."""
    from q2jax.objective import residual_blocks_and_coords

    spec0 = rb.make_spec(one, "reference")
    modes_fn = rb._make_modes_fn(one.forcefield, spec0.n_modes)
    h = rb.honest_figures(one.forcefield, one, modes_fn, rb.qm_reaction_modes(one))
    m = next(iter(h["molecules"].values()))
    spec = rb.make_relaxed_spec(one)
    w = np.asarray(spec.refs.freq_weights)[0]
    k = one.molecules[0].n_vibrations
    assert np.allclose(w[: k - 1], 1.0 / np.sqrt(k - 1)) and not np.any(w[k - 1 :])
    x_honest = None
    for _ in range(3):  # relax from the QM geometry (<= 15 steps per call)
        blocks, x = jax.jit(residual_blocks_and_coords)(one.forcefield.params, spec)
        if x_honest is not None and float(jnp.max(jnp.abs(x - x_honest))) < 1e-6:
            break
        x_honest = x
        spec = spec.with_relax_start(x)
    freq = float(jnp.sqrt(jnp.sum(blocks["frequency"] ** 2)))
    assert freq == pytest.approx(m["freq_rmsd_cm1"], abs=0.5)
    geom = float(blocks["cartesian"][0]) / rb.GEOMETRY_WEIGHT
    assert geom == pytest.approx(m["geom_rmsd_angstrom"], abs=2e-3)


def test_parameter_subset_maps_steps_and_bounds(one):
    """ParameterSubset: z = 0 is the start; one unit of z is one step size; bounds map."""
    ff = one.forcefield
    mask = rb.parameter_mask(ff, "force_constants")
    assert mask.sum() == 31  # the values the published final changed
    sub = rb.ParameterSubset.of(ff, mask)
    p0 = np.asarray(ff.params)
    assert np.allclose(np.asarray(sub.full(jnp.zeros(31))), p0)
    p1 = np.asarray(sub.full(jnp.ones(31)))
    assert np.allclose(p1[mask] - p0[mask], ff.get_step_sizes()[mask])
    assert np.array_equal(p1[~mask], p0[~mask])
    lo, hi = rb.fit_bounds(ff)
    assert np.allclose(p0[mask] + sub.lower * sub.step, lo[mask])
    assert np.allclose(p0[mask] + sub.upper * sub.step, hi[mask])
