"""The guide's object API (q2jax.workflows) on the bundled CH3F case.

Objectives are the examples' own (``examples/workflow_*.py``) and shared per
module, so each distinct objective compiles once (tests/test_examples.py
runs the same scripts with the same budgets and so reuses the compilations):

- ``obj_a``: harmonic, eight parameters, QM frequencies and QM bond lengths /
  angles scored at the MM-relaxed geometry (Workflows A and C);
- ``obj_b``: MM3, four force constants, QM frequencies at the QM geometry,
  which stays the MM minimum because the equilibrium values are frozen at it
  (Workflows B and D).

Independent checks: the honest figures are recomputed by q2jax.evaluate
(relaxation + frequencies) and must improve on the QFUERZA start (209.2
cm^-1); OpenMM evaluates the same residuals with its own energies and
finite-difference Hessians; vmapped multi-start equals per-start runs;
finite-difference sensitivities equal autodiff derivatives.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

from q2jax.datasets import load_case
from q2jax.errors import InputError, UnitError
from q2jax.reference import FrequencyData, GeometryData, ReferenceSet
from q2jax.units import HARTREE_BOHR2_TO_KCAL_MOL_A2
from q2jax.workflows import (
    JaxOptOptimizer,
    MultiStartOptimizer,
    ObjectiveFunction,
    OptimizationLoop,
    ReferenceData,
    ScipyOptimizer,
    compute_sensitivity,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# keep equal to tests/test_examples.py: the compiled pure-JAX solvers are then shared
JAX_MAXITER = 10
N_STARTS = 4
PCT = 20.0
QFUERZA_RMSD = 209.2  # cm^-1, CH3F QFUERZA start at its relaxed geometry (printed by evaluate)


def _example(name: str) -> dict:
    return runpy.run_path(str(EXAMPLES / f"{name}.py"))


@pytest.fixture(scope="module")
def build_a():
    return _example("workflow_a_lbfgsb")["build_objective"]


@pytest.fixture(scope="module")
def build_b():
    return _example("workflow_b_multistart")["build_objective"]


@pytest.fixture(scope="module")
def openmm_engine():
    pytest.importorskip("openmm", reason="OpenMM is not installed")
    from q2jax.adapters.openmm import OpenMMEngine

    return OpenMMEngine()


def _rmsd(figures) -> float:
    return figures[0].freq_rmsd_cm1


# --- ReferenceData ------------------------------------------------------------------------


def test_reference_data_builds_the_reference_set(build_a):
    obj = build_a()
    refs = obj.reference
    freq = [d for d in refs.data if isinstance(d, FrequencyData)]
    geom = [d for d in refs.data if isinstance(d, GeometryData)]
    assert len(freq) == 1 and freq[0].values.size == 9
    assert [d.kind for d in geom].count("bond") == 4 and [d.kind for d in geom].count("angle") == 6
    # the QM C-F bond is ~1.38 Å and tetrahedral-ish angles ~108-111 degrees
    cf = next(d for d in geom if d.atoms == (0, 1))
    assert 1.3 < cf.value < 1.45
    assert all(100.0 < d.value < 115.0 for d in geom if d.kind == "angle")
    mol = obj.molecules[0]
    with pytest.raises(InputError, match="vibrations"):
        ReferenceData().add_frequency(1000.0, data_idx=9).to_reference_set([mol])
    with pytest.raises(InputError, match="ascending"):
        ReferenceData().add_frequencies([2000.0, 1000.0]).to_reference_set([mol])
    with pytest.raises(InputError, match="already"):
        ReferenceData().add_frequency(1.0, data_idx=0).add_frequency(2.0, data_idx=0)
    with pytest.raises(InputError, match="molecules"):
        ReferenceData().add_frequency(1.0, data_idx=0).to_reference_set()
    with pytest.raises(InputError, match="atom"):
        ReferenceData().add_bond_length(1.0, atom_indices=(0, 7)).to_reference_set([mol])
    with pytest.raises(InputError, match="atom_indices"):
        ReferenceData().add_torsion_angle(60.0, atom_indices=None)
    # bonds and angles by position in the molecule's lists (Q2MM's data_idx)
    by_idx = ReferenceData().add_bond_length(1.1, data_idx=2).add_bond_angle(109.0, data_idx=5)
    g = by_idx.to_reference_set([mol]).data
    assert (g[0].atoms, g[1].atoms) == (tuple(mol.bonds[2]), tuple(mol.topology().angles[5]))
    with pytest.raises(InputError, match="data_idx"):
        ReferenceData().add_bond_length(1.1, data_idx=4).to_reference_set([mol])
    # Hessians: converted from the stated units and checked for a plausible magnitude
    case = load_case("ch3f")
    with pytest.raises(UnitError, match="units"):
        ReferenceData().add_hessian(case.hessian)  # kcal/(mol Å^2) read as Hartree/Bohr^2
    with pytest.raises(UnitError):
        ReferenceData().add_hessian(case.hessian, units="furlongs")
    au = case.hessian / HARTREE_BOHR2_TO_KCAL_MOL_A2
    eig = ReferenceData().add_eigenmatrix_from_hessian(au, skip_first=True, weights={"eig_o": 0})
    d = eig.to_reference_set([mol]).data[0]
    np.testing.assert_allclose(d.hessian, case.hessian, rtol=1e-12)
    assert d.weight_diagonal.shape == (9,) and d.weight_diagonal[0] == 0.0
    assert d.weight_offdiagonal == 0.0
    with pytest.raises(InputError, match="weight keys"):
        ReferenceData().add_eigenmatrix_from_hessian(au, weights={"eig_d_low": 0.1})
    with pytest.raises(InputError, match="differ"):
        ObjectiveFunction(obj.forcefield, None, [mol, mol], ReferenceSet([mol]).add(freq[0]))


# --- ObjectiveFunction ------------------------------------------------------------------------


def test_exact_gradient_matches_finite_differences_through_relaxation(build_a):
    """value_and_grad of the relaxed objective vs central differences of its value."""
    obj = build_a()
    assert obj.has_analytical_gradient and obj.frequencies_at == "relaxed"
    p = np.asarray(obj.forcefield.params) * np.array([1.1, 1.01, 0.9, 0.995, 1.2, 1.02, 0.8, 0.98])
    f, g = obj.value_and_grad(p)
    assert obj(p) == pytest.approx(f, rel=1e-12)
    # Fourth-order central differences, step 1e-4 of each value: the loss (~6e5) carries
    # relaxation/eigensolver noise of ~5e-8, so a second-order stencil with a step small
    # enough for its truncation error (parameter 5: 1e-5 relative needs h < 1e-3 degree)
    # is at the mercy of that noise (measured up to 7e-5 relative at h = 1e-4 degree).
    for i in (0, 3, 5):
        h = 1e-4 * abs(p[i])

        def f(t, i=i):
            q = p.copy()
            q[i] += t
            return obj(q)

        fd = (8.0 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12.0 * h)
        assert fd == pytest.approx(g[i], rel=1e-5)
    assert obj.n_eval == 2 + 12 and len(obj.history) == 14
    obj.reset()
    assert obj.n_eval == 0 and obj.history == []


def test_openmm_engine_evaluates_the_same_objective(build_a, build_b, openmm_engine):
    """OpenMM (own energies, finite-difference Hessian, own minimiser) vs the JAX objective.

    Tolerance: OpenMM's Hessian is a central difference of its forces with a
    1e-4 Å step, ~1e-8 relative to the analytic one (q2jax.adapters.openmm),
    so each frequency is off by δν <= 0.5e-8 ν; the loss Σ r² by about
    2 Σ|r| δν. We allow ten times that (and 1e-7 ν when the geometry is also
    relaxed by OpenMM's minimiser, to gtol = 1e-7 kcal/(mol Å)).
    """
    for build, p_scale, rel_nu in (
        (build_a, [1.1, 1.01, 0.9, 0.995, 1.2, 1.02, 0.8, 0.98], 1e-7),
        (build_b, [1.1, 0.9, 1.2, 0.8], 0.5e-8),
    ):
        jax_obj = build()
        mm = ObjectiveFunction(
            jax_obj.initial_forcefield,
            openmm_engine,
            jax_obj.molecules,
            jax_obj.reference,
            frequencies_at=jax_obj.frequencies_at,
        )
        assert not mm.has_analytical_gradient and mm.jacobian is None
        p = np.asarray(jax_obj.forcefield.params) * np.array(p_scale)
        f_jax, f_mm = jax_obj(p), mm(p)
        r = np.sqrt(mm.breakdown(p)["frequency"] / 9)  # rms frequency residual
        bound = 10 * 2 * 9 * r * rel_nu * 3200.0
        assert abs(f_mm - f_jax) <= bound, (f_mm, f_jax, bound)
    with pytest.raises(InputError, match="JAX engine"):
        ObjectiveFunction(
            jax_obj.initial_forcefield,
            openmm_engine,
            jax_obj.molecules,
            jax_obj.reference,
            transition_state=True,
            frequencies_at="relaxed",
        )
    with pytest.raises(InputError, match="lacks"):
        ObjectiveFunction(
            jax_obj.initial_forcefield, object(), jax_obj.molecules, jax_obj.reference
        )


# --- optimizers ----------------------------------------------------------------------------


def test_scipy_lbfgsb_analytical_improves_honest_figures(build_a, tmp_path):
    obj = build_a()
    start = obj.forcefield
    res = ScipyOptimizer("L-BFGS-B", maxiter=25, jac="analytical", verbose=False).optimize(obj)
    assert res.jac == "analytical" and res.method == "L-BFGS-B"
    # exact gradients: about one evaluation per iteration, not n + 1
    assert res.n_evaluations <= 2 * res.n_iterations + 5
    assert res.final_score < 0.2 * res.initial_score
    assert len(res.history) == res.n_evaluations and min(res.history) == res.final_score
    # the force field was rebound (not mutated) and carries the final parameters
    assert obj.forcefield is not start
    np.testing.assert_array_equal(start.params, obj.initial_forcefield.params)
    np.testing.assert_allclose(obj.forcefield.params, res.final_params)
    assert obj(res.final_params) == pytest.approx(res.final_score, rel=1e-12)
    # honest figures: recomputed by relaxing with each force field
    assert _rmsd(res.start_figures) == pytest.approx(QFUERZA_RMSD, abs=0.1)
    assert _rmsd(res.final_figures) < 0.5 * QFUERZA_RMSD
    assert res.final_figures[0].geom_rmsd_angstrom < 0.05
    assert res.final_figures[0].n_imaginary == 0
    text = res.summary()
    assert "Honest figures" in text and "MM-relaxed geometry" in text and "freq RMSD" in text
    png = res.plot(tmp_path / "a.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_jac_modes(build_b, openmm_engine):
    obj = build_b()
    n = obj.n_params
    fd = ScipyOptimizer("L-BFGS-B", maxiter=3, jac=None, verbose=False).run(obj)
    assert fd.jac == "finite-difference"
    assert fd.n_evaluations >= (n + 1) * fd.n_iterations  # SciPy's forward differences
    auto = ScipyOptimizer("L-BFGS-B", maxiter=3, jac="auto", verbose=False)
    assert auto.resolve_jac(obj) == "analytical"
    mm = ObjectiveFunction(
        obj.initial_forcefield,
        openmm_engine,
        obj.molecules,
        obj.reference,
        frequencies_at="reference",
    )
    assert auto.resolve_jac(mm) is None  # no exact gradient: finite differences
    with pytest.raises(InputError, match="no analytical"):
        ScipyOptimizer(jac="analytical", verbose=False).optimize(mm)
    with pytest.raises(InputError, match="derivative-free"):
        ScipyOptimizer("Nelder-Mead", jac="analytical", verbose=False).run(obj)
    with pytest.raises(InputError, match="JAX engine"):
        JaxOptOptimizer("lbfgsb", verbose=False).optimize(mm)
    with pytest.raises(InputError, match="JAX engine"):
        OptimizationLoop(mm, full_method="jaxopt:lbfgsb", verbose=False).run()
    with pytest.raises(InputError):
        ScipyOptimizer(jac="exact")


@pytest.fixture(scope="module")
def multistart_b(build_b):
    obj = build_b()
    opt = ScipyOptimizer("L-BFGS-B", maxiter=JAX_MAXITER, verbose=False)
    res = MultiStartOptimizer(opt, n_starts=N_STARTS, perturbation_pct=PCT, seed=0).optimize(obj)
    return obj, res


def test_multistart_vmapped_equals_each_start_alone(build_b, multistart_b):
    obj, ms = multistart_b
    assert ms.vmapped and ms.method == "multi:jaxopt:lbfgsb" and ms.n_starts == N_STARTS
    assert any("jaxopt:lbfgsb" in note for note in ms.notes)
    np.testing.assert_array_equal(ms.start_params[0], obj.initial_forcefield.params)
    alone = build_b()
    for i in range(N_STARTS):
        r = JaxOptOptimizer("lbfgsb", maxiter=JAX_MAXITER, verbose=False).run(
            alone, ms.start_params[i]
        )
        np.testing.assert_allclose(ms.all_final_params[i], r.final_params, rtol=1e-8)
        assert ms.final_scores[i] == pytest.approx(r.final_score, rel=1e-9)
        assert ms.start_scores[i] == pytest.approx(r.initial_score, rel=1e-12)
    assert ms.best_index == int(np.argmin(ms.final_scores))
    assert _rmsd(ms.final_figures) < QFUERZA_RMSD - 50.0
    assert "starts" in ms.summary() and "Honest figures" in ms.summary()


def test_multistart_sequential_for_openmm(build_b, multistart_b, openmm_engine):
    obj = build_b()
    mm = ObjectiveFunction(
        obj.initial_forcefield,
        openmm_engine,
        obj.molecules,
        obj.reference,
        frequencies_at="reference",
    )
    opt = ScipyOptimizer("L-BFGS-B", maxiter=2, jac="auto", verbose=False)
    res = MultiStartOptimizer(opt, n_starts=2, perturbation_pct=PCT, seed=0).optimize(mm)
    assert not res.vmapped and res.method == "multi:L-BFGS-B"
    # same seed and formula: the same start points as the vmapped run
    np.testing.assert_allclose(res.start_params, multistart_b[1].start_params[:2], rtol=1e-15)
    assert np.all(res.final_scores <= res.start_scores)
    assert res.final_score == pytest.approx(np.min(res.final_scores))


def test_jaxopt_optimizer_improves_honest_figures(build_b):
    obj = build_b()
    res = JaxOptOptimizer("lbfgsb", maxiter=JAX_MAXITER, verbose=False).optimize(obj)
    assert res.method == "jaxopt:lbfgsb" and res.n_iterations <= JAX_MAXITER
    assert res.final_score < 0.1 * res.initial_score
    assert len(res.history) == res.n_iterations + 1
    assert obj(res.final_params) == pytest.approx(res.final_score, rel=1e-10)
    # frozen QM equilibrium values: the QM geometry stays the minimum, score = honest figure
    fig = res.final_figures[0]
    assert fig.geom_rmsd_angstrom < 1e-4  # (QFUERZA averages the slightly uneven QM C-H)
    assert fig.freq_rmsd_cm1 == pytest.approx(np.sqrt(res.final_score / 9), rel=1e-4)
    assert fig.freq_rmsd_cm1 >= 41.1  # the known floor of this model
    assert "score measured at the QM geometry; honest figures below" in res.summary()
    assert "known floor" in res.summary()


def test_optimization_loop_grad_simp_with_l2(build_a):
    obj = build_a(regularization=0.1)
    loop = OptimizationLoop(
        obj,
        max_params=3,
        max_cycles=2,
        full_method="L-BFGS-B",
        full_maxiter=15,
        simp_maxiter=15,
        full_jac="analytical",
        verbose=False,
    )
    res = loop.run()
    assert 1 <= res.n_cycles <= 2 and len(res.cycle_scores) == res.n_cycles + 1
    assert np.all(np.diff(res.cycle_scores) <= 0)
    assert res.final_score == pytest.approx(res.cycle_scores[-1])
    assert len(res.selected_indices) == res.n_cycles == len(res.sensitivity_results)
    for idx, s in zip(res.selected_indices, res.sensitivity_results, strict=True):
        assert len(idx) == 3 and list(idx) == list(s.ranking[:3])
    assert obj(res.final_params) == pytest.approx(res.final_score, rel=1e-10)
    # the L2 term is λ‖p − p_start‖² on top of the unregularised objective
    l2 = 0.1 * np.sum((res.final_params - res.initial_params) ** 2)
    assert l2 > 1.0
    assert obj(res.final_params) - build_a()(res.final_params) == pytest.approx(l2, rel=1e-8)
    assert _rmsd(res.final_figures) < 0.5 * QFUERZA_RMSD
    assert "cycle 1" in res.summary() and "Honest figures" in res.summary()


@pytest.fixture(scope="module")
def energy_case(build_a, build_b):
    """Synthetic CH3F data with known answers: the energies (kcal/mol) of twelve distorted
    geometries under a target harmonic force field (all eight parameters moved from the
    QFUERZA start). Energy-only references keep compiled solver loops small."""
    from q2jax.energy import batch_energy
    from q2jax.system import build_batch

    b = build_b()
    mol = b.molecules[0]
    start = build_a().initial_forcefield
    scale = np.array([1.3, 1.01, 1.1, 0.99, 1.6, 1.02, 1.05, 0.98])
    target = start.with_params(np.asarray(start.params) * scale)
    rng = np.random.default_rng(0)
    mols = [
        mol.with_coords(np.asarray(mol.coords) + 0.04 * rng.standard_normal((5, 3)))
        for _ in range(12)
    ]
    ref = ReferenceData()
    for i, e in enumerate(np.asarray(batch_energy(target, build_batch(target, mols)))):
        ref.add_energy(float(e), molecule_idx=i)
    return start, target, mols, ref


def test_optimization_loop_pure_jax_recovers_known_parameters(energy_case):
    """One jitted grad-simp loop (Levenberg-Marquardt full pass on the residuals +
    Nelder-Mead) recovers the target force field from the QFUERZA start."""
    start, target, mols, ref = energy_case
    obj = ObjectiveFunction(start, None, mols, ref, frequencies_at="reference")
    res = OptimizationLoop(
        obj,
        max_params=2,
        max_cycles=3,
        full_method="lm",
        full_maxiter=30,
        simp_maxiter=30,
        verbose=False,
    ).run()
    assert "one jitted loop" in res.method and res.success
    np.testing.assert_allclose(res.final_params, target.params, rtol=1e-6)
    np.testing.assert_allclose(obj.forcefield.params, res.final_params)
    assert res.final_score < 1e-12 * res.initial_score
    assert len(res.cycle_scores) == res.n_cycles + 1 == len(res.sensitivity_results) + 1
    assert all(len(i) == 2 and set(i) <= set(range(8)) for i in res.selected_indices)
    assert res.final_figures is None and "unavailable" in res.summary()


def test_sensitivity_fd_matches_autodiff(energy_case, build_b, openmm_engine):
    start, _, mols, ref = energy_case
    obj = ObjectiveFunction(start, None, mols, ref, frequencies_at="reference")
    n = obj.n_params
    h = 0.01 * obj.forcefield.get_step_sizes()
    fd = compute_sensitivity(obj, "simp_var", "fd", step_sizes=h)
    ad = compute_sensitivity(obj, "simp_var", "autodiff")
    assert fd.n_evals == 2 * n + 1 == obj.n_eval - (n + 1)  # autodiff counts 1 + n
    np.testing.assert_allclose(fd.d1, ad.d1, rtol=1e-6)
    np.testing.assert_allclose(fd.d2, ad.d2, rtol=1e-4)
    np.testing.assert_array_equal(fd.ranking, ad.ranking)
    assert fd.labels[int(fd.ranking[0])] in start.get_param_type_labels()
    # frequencies at Q2MM's default steps: JAX vs the OpenMM engine (2N + 1 evaluations each)
    b = build_b()
    jax_fd = compute_sensitivity(b, "abs_d1")
    mm = ObjectiveFunction(
        b.initial_forcefield, openmm_engine, b.molecules, b.reference, frequencies_at="reference"
    )
    mm_fd = compute_sensitivity(mm, "abs_d1")
    assert mm_fd.n_evals == 2 * b.n_params + 1 == mm.n_eval
    np.testing.assert_allclose(mm_fd.d1, jax_fd.d1, rtol=1e-6)
    np.testing.assert_allclose(mm_fd.d2, jax_fd.d2, rtol=1e-4)
    np.testing.assert_array_equal(mm_fd.ranking, np.argsort(-np.abs(jax_fd.d1), stable=True))
    with pytest.raises(InputError, match="JAX engine"):
        compute_sensitivity(mm, mode="autodiff")
