"""q2jax.adapters.pyscf: QM reference data from PySCF + geomeTRIC, and a fit on it.

Independent checks: the Cartesian Hessian against central differences of
PySCF's analytic gradients (atom/axis ordering and units), frequencies
against PySCF's own harmonic analysis (``pyscf.hessian.thermo``), the
residual gradient at the optimized geometry from a fresh PySCF calculation,
and the written files read back by ``q2jax.io``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pyscf = pytest.importorskip("pyscf", reason="PySCF is not installed (pip install 'q2jax[qm]')")
pytest.importorskip("geometric", reason="geomeTRIC is not installed (pip install 'q2jax[qm]')")

from pyscf import dft, gto, scf  # noqa: E402
from pyscf.hessian import thermo  # noqa: E402

from q2jax import Molecule  # noqa: E402
from q2jax.adapters import pyscf as qp  # noqa: E402
from q2jax.errors import ConvergenceError, EngineError, InputError, Q2JaxError  # noqa: E402
from q2jax.units import (  # noqa: E402
    HARTREE_BOHR2_TO_KCAL_MOL_A2,
    HARTREE_BOHR_TO_KCAL_MOL_A,
    HARTREE_TO_KCAL_MOL,
)

# a deliberately unsymmetric water, so every Hessian row/column is distinct
H2O_XYZ = """3
water
O   0.000  0.000  0.110
H   0.000  0.790 -0.470
H   0.000 -0.760 -0.450
"""
LEVEL = {"method": "hf", "basis": "3-21g"}


def _pyscf_mf(symbols, coords_angstrom, method, basis, charge=0, spin=0):
    """A converged PySCF SCF built directly (not through the adapter)."""
    mol = gto.M(atom=list(zip(symbols, map(tuple, np.asarray(coords_angstrom)), strict=True)),
                unit="Angstrom", basis=basis, charge=charge, spin=spin, verbose=0)
    if method == "hf":
        mf = scf.RHF(mol) if spin == 0 else scf.UHF(mol)
    else:
        mf = dft.RKS(mol) if spin == 0 else dft.UKS(mol)
        mf.xc = method
    mf.conv_tol = 1e-12
    mf.kernel()
    assert mf.converged
    return mf


def _pyscf_frequencies(mf, masses):
    """PySCF's harmonic analysis (its projection, its constants) with the given masses."""
    h = mf.Hessian().kernel()
    res = thermo.harmonic_analysis(mf.mol, h, imaginary_freq=False, mass=np.asarray(masses))
    return np.sort(np.asarray(res["freq_wavenumber"], float))


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread():
    """PySCF's OpenMP threads spin-wait badly on a shared 2-core machine: one thread
    is 5-20x faster here (the adapter's ``threads`` option does the same per call)."""
    from pyscf import lib

    old = lib.num_threads()
    lib.num_threads(1)
    yield
    lib.num_threads(old)


@pytest.fixture(scope="module")
def water_xyz(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("qm") / "h2o.xyz"
    p.write_text(H2O_XYZ)
    return p


@pytest.fixture(scope="module")
def reference(water_xyz, tmp_path_factory):
    """make_reference on H2O at HF/3-21G: YAML path, timing and progress lines."""
    out = tmp_path_factory.mktemp("ref")
    lines: list[str] = []
    t0 = time.perf_counter()
    path = qp.make_reference(water_xyz, out, progress=lines.append, **LEVEL)
    return path, time.perf_counter() - t0, lines


@pytest.fixture(scope="module")
def reference_file(reference):
    from q2jax.io.reference_yaml import read_reference_yaml

    return read_reference_yaml(reference[0])


# --- the reference set -------------------------------------------------------------------


def test_make_reference_writes_yaml_npy_xyz(reference, reference_file):
    from q2jax.io import read_xyz

    path, seconds, lines = reference
    print(f"\nmake_reference H2O {LEVEL}: {seconds:.1f} s")
    assert path.name == "h2o.yaml" and path.is_file()
    hess_npy = path.parent / "h2o-hessian.npy"
    xyz = path.parent / "h2o-optimized.xyz"
    assert hess_npy.is_file() and xyz.is_file()
    assert any("converged" in ln for ln in lines) and any("Hessian" in ln for ln in lines)

    qm = reference_file.settings["qm"]
    assert qm["program"] == "pyscf" and qm["version"] == pyscf.__version__
    assert qm["method"] == "hf" and qm["basis"] == "3-21g"
    assert qm["charge"] == 0 and qm["spin"] == 0 and qm["n_imaginary"] == 0
    assert qm["xyz"] == xyz.name

    mol = reference_file.refs.molecules[0]
    assert mol.symbols == ("O", "H", "H") and mol.name == "h2o"
    back = read_xyz(xyz)
    np.testing.assert_allclose(back.coords, np.asarray(mol.coords), atol=1e-9)
    assert back.name == "h2o"

    # the .npy is in Hartree/Bohr^2, symmetric, and the reader converts it once
    raw = np.load(hess_npy)
    assert raw.shape == (9, 9)
    np.testing.assert_allclose(raw, raw.T, atol=1e-8)
    converted = raw * HARTREE_BOHR2_TO_KCAL_MOL_A2
    np.testing.assert_allclose(reference_file.hessians[0], converted,
                               atol=1e-9 * np.max(np.abs(converted)))
    # an O-H stretch curvature is ~0.3-0.6 Hartree/Bohr^2: the units are atomic
    assert 0.1 < np.max(np.abs(raw)) < 2.0
    # energy recorded is PySCF's at that geometry, independently recomputed
    mf = _pyscf_mf(mol.symbols, mol.coords, "hf", "3-21g")
    assert abs(qm["energy_hartree"] - mf.e_tot) < 1e-8


def test_optimized_geometry_has_small_residual_gradient(reference_file):
    mol = reference_file.refs.molecules[0]
    mf = _pyscf_mf(mol.symbols, mol.coords, "hf", "3-21g")
    g = mf.nuc_grad_method().kernel()  # Hartree/Bohr
    print(f"\nresidual max|g| at the optimized geometry: {np.max(np.abs(g)):.2e} Hartree/Bohr")
    assert np.max(np.abs(g)) < 1e-5
    assert reference_file.settings["qm"]["max_gradient_hartree_bohr"] < 1e-5
    # and it moved from the distorted input: the two O-H bonds are now equal
    x = np.asarray(mol.coords)
    assert abs(np.linalg.norm(x[1] - x[0]) - np.linalg.norm(x[2] - x[0])) < 1e-4


def test_frequencies_match_pyscf_harmonic_analysis(reference_file):
    mol = reference_file.refs.molecules[0]
    ours = reference_file.qm_frequencies[0]  # q2jax.vibrations on the stored Hessian
    theirs = _pyscf_frequencies(_pyscf_mf(mol.symbols, mol.coords, "hf", "3-21g"), mol.masses)
    print(f"\nH2O HF/3-21G frequencies q2jax {ours}  PySCF {theirs}")
    assert ours.shape == (3,) and np.all(ours > 1000.0)
    np.testing.assert_allclose(ours, theirs, atol=0.1)
    np.testing.assert_allclose(qp.frequencies_cm1(mol, reference_file.hessians[0]), ours,
                               atol=1e-9)


# --- Hessian ordering and units, other methods -------------------------------------------


def test_hessian_ordering_and_units_against_gradient_differences():
    """H[3i+a, 3j+b] = d(dE/dx_(j,b))/dx_(i,a): central differences of PySCF's
    analytic gradient (HF/STO-3G) at a geometry with no symmetry."""
    mol = Molecule.from_arrays(["O", "H", "H"], [[0.0, 0.02, 0.11], [0.05, 0.79, -0.47],
                                                 [-0.03, -0.76, -0.45]], name="w")
    hess, energy = qp.compute_hessian(mol, method="hf", basis="sto-3g")
    assert hess.shape == (9, 9)
    np.testing.assert_allclose(hess, hess.T, atol=1e-6)

    x0 = np.asarray(mol.coords)
    step = 1e-4  # Å
    fd = np.zeros((9, 9))
    for k in range(9):
        grads = []
        for sign in (1.0, -1.0):
            x = x0.copy()
            x.reshape(-1)[k] += sign * step
            mf = _pyscf_mf(mol.symbols, x, "hf", "sto-3g")
            grads.append(mf.nuc_grad_method().kernel().reshape(-1) * HARTREE_BOHR_TO_KCAL_MOL_A)
        fd[k] = (grads[0] - grads[1]) / (2 * step)
    scale = np.max(np.abs(hess))
    print(f"\nHessian vs gradient differences: max |diff| {np.max(np.abs(hess - fd)):.2e} "
          f"of max |H| {scale:.0f} kcal/(mol Å^2)")
    np.testing.assert_allclose(hess, fd, atol=1e-4 * scale)

    mf = _pyscf_mf(mol.symbols, x0, "hf", "sto-3g")
    assert energy == pytest.approx(mf.e_tot * HARTREE_TO_KCAL_MOL, rel=1e-10)
    from pyscf import lib

    g, e_g = qp.compute_gradient(mol, method="hf", basis="sto-3g", threads=2)
    assert lib.num_threads() == 1  # restored after the call
    assert e_g == pytest.approx(energy, rel=1e-10)
    np.testing.assert_allclose(
        g, mf.nuc_grad_method().kernel() * HARTREE_BOHR_TO_KCAL_MOL_A, atol=1e-6
    )


def test_reshape_of_pyscf_pair_hessian():
    n = 2
    h = np.arange(n * n * 9, dtype=float).reshape(n, n, 3, 3)
    flat = qp.pyscf_hessian_to_cartesian(h)
    for i in range(n):
        for j in range(n):
            for a in range(3):
                for b in range(3):
                    assert flat[3 * i + a, 3 * j + b] == h[i, j, a, b]
    with pytest.raises(InputError):
        qp.pyscf_hessian_to_cartesian(np.zeros((3, 3)))


def test_dft_and_unrestricted_frequencies_match_pyscf(reference_file):
    """RKS (B3LYP) and UHF (H2O+, spin 1) paths; frequencies at the HF geometry
    (not stationary for these methods: both codes project the same
    translations and rotations, so they must still agree)."""
    mol = reference_file.refs.molecules[0]
    for method, basis, charge, spin in (("b3lyp", "sto-3g", 0, 0), ("hf", "sto-3g", 1, 1)):
        ours = qp.frequencies_cm1(mol, method=method, basis=basis, charge=charge, spin=spin)
        mf = _pyscf_mf(mol.symbols, mol.coords, method, basis, charge, spin)
        theirs = _pyscf_frequencies(mf, mol.masses)
        print(f"\n{method}/{basis} charge {charge} spin {spin}: q2jax {ours} PySCF {theirs}")
        np.testing.assert_allclose(ours, theirs, atol=0.1)


def test_optimize_geometry_returns_stationary_molecule():
    mol = Molecule.from_arrays(["H", "F"], [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]], name="hf_mol")
    opt, energy = qp.optimize_geometry(mol, method="hf", basis="sto-3g")
    assert opt.symbols == mol.symbols and opt.name == "hf_mol" and opt.bonds == mol.bonds
    mf = _pyscf_mf(opt.symbols, opt.coords, "hf", "sto-3g")
    assert energy == pytest.approx(mf.e_tot * HARTREE_TO_KCAL_MOL, abs=1e-6)
    assert np.max(np.abs(mf.nuc_grad_method().kernel())) < 1e-5
    r = float(np.linalg.norm(np.asarray(opt.coords[1] - opt.coords[0])))
    assert 0.9 < r < 1.0  # HF/STO-3G H-F bond, 0.956 Å
    with pytest.raises(ConvergenceError, match="did not converge"):
        qp.optimize_geometry(mol, method="hf", basis="sto-3g", max_steps=1)


# --- bad input --------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Basis may be available in basis-set-exchange")
def test_bad_input_raises_q2jax_errors(tmp_path, water_xyz):
    mol = Molecule.from_arrays(["H", "H"], [[0, 0, 0], [0, 0, 0.74]], name="h2")
    with pytest.raises(InputError, match="basis 'no-such-basis'"):
        qp.compute_hessian(mol, method="hf", basis="no-such-basis")
    with pytest.raises(InputError, match="unknown method 'b3lypp'"):
        qp.compute_hessian(mol, method="b3lypp", basis="sto-3g")
    with pytest.raises(InputError, match="no analytic Hessian"):
        qp.compute_hessian(mol, method="mp2", basis="sto-3g")
    with pytest.raises(InputError, match="spin 0"):  # 3 electrons cannot be a singlet
        qp.compute_hessian(mol, method="hf", basis="sto-3g", charge=-1, spin=0)
    with pytest.raises(InputError, match="spin"):
        qp.compute_hessian(mol, method="hf", basis="sto-3g", spin=-1)
    with pytest.raises(InputError, match="no such geometry file"):
        qp.make_reference(tmp_path / "missing.xyz", tmp_path / "out", **LEVEL)
    bad = tmp_path / "bad.xyz"
    bad.write_text("3\nwater\nO 0 0 0\nH 0 0 1\n")
    with pytest.raises(Q2JaxError, match="bad.xyz"):
        qp.make_reference(bad, tmp_path / "out", **LEVEL)
    with pytest.raises(InputError, match="together with a Hessian"):
        qp.frequencies_cm1(mol, np.zeros((6, 6)), method="hf")


def test_missing_pyscf_is_an_engine_error(monkeypatch, water_xyz, tmp_path):
    mol = Molecule.from_arrays(["H", "H"], [[0, 0, 0], [0, 0, 0.74]])
    for name in ("pyscf", "pyscf.dft", "pyscf.gto", "pyscf.scf"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(EngineError, match=r"pip install 'q2jax\[qm\]'"):
        qp.compute_hessian(mol, method="hf", basis="sto-3g")
    with pytest.raises(EngineError, match=r"q2jax\[qm\]"):
        qp.make_reference(water_xyz, tmp_path, **LEVEL)


def test_missing_geometric_is_an_engine_error(monkeypatch):
    mol = Molecule.from_arrays(["H", "H"], [[0, 0, 0], [0, 0, 0.74]])
    monkeypatch.setitem(sys.modules, "geometric", None)
    monkeypatch.setitem(sys.modules, "pyscf.geomopt.geometric_solver", None)
    with pytest.raises(EngineError, match="geomeTRIC"):
        qp.optimize_geometry(mol, method="hf", basis="sto-3g")


# --- a fit on the reference set ----------------------------------------------------------


def test_fit_on_the_reference_set(reference_file):
    """ForceField from the molecule, QFUERZA start, L-BFGS-B on the q2jax
    objective (frequencies at the MM-relaxed geometry + Cartesian RMSD),
    judged by q2jax.evaluate at the relaxed geometry."""
    import scipy.optimize

    from q2jax.evaluate import evaluate
    from q2jax.forcefield import ForceField
    from q2jax.objective import loss, make_objective
    from q2jax.seminario import estimate_force_constants

    rf = reference_file
    mols = rf.refs.molecules
    ff = ForceField.from_molecules(mols)
    ff0 = estimate_force_constants(ff, mols, rf.hessians)
    spec = make_objective(ff0, rf.refs)
    value_and_grad = jax.jit(jax.value_and_grad(loss))

    def fun(p):
        v, g = value_and_grad(jnp.asarray(p), spec)
        return float(v), np.asarray(g)

    lo, hi = ff0.bounds()
    t0 = time.perf_counter()
    res = scipy.optimize.minimize(fun, np.asarray(ff0.params), jac=True, method="L-BFGS-B",
                                  bounds=list(zip(lo, hi, strict=True)))
    t_fit = time.perf_counter() - t0
    ff1 = ff0.with_params(jnp.asarray(res.x))
    start, final = evaluate(ff0, mols, rf.qm_frequencies)[0], evaluate(ff1, mols,
                                                                       rf.qm_frequencies)[0]
    print(f"\nfit H2O: {res.nfev} evaluations, {t_fit:.1f} s; params "
          f"{dict(zip(ff0.get_param_type_labels(), np.round(res.x, 3), strict=True))}\n"
          f"  QM   {np.round(rf.qm_frequencies[0], 1)}\n"
          f"  start freq RMSD {start.freq_rmsd_cm1:.1f} cm^-1, geom RMSD "
          f"{start.geom_rmsd_angstrom:.4f} Å, {np.round(start.frequencies_cm1, 1)}\n"
          f"  final freq RMSD {final.freq_rmsd_cm1:.1f} cm^-1, geom RMSD "
          f"{final.geom_rmsd_angstrom:.4f} Å, {np.round(final.frequencies_cm1, 1)}")
    assert final.converged and final.n_imaginary == 0
    # HF/3-21G: 292 -> 20 cm^-1 (bonds and angles alone cannot split the two
    # O-H stretches as QM does), geometry within 0.02 Å of QM
    assert final.freq_rmsd_cm1 < 0.15 * start.freq_rmsd_cm1
    assert final.freq_rmsd_cm1 < 30.0
    assert final.geom_rmsd_angstrom < 0.05
