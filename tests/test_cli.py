"""The q2jax command line: a real fit on bundled data (outputs checked against plain
OpenMM), and one-line errors with exit status 2 for every kind of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from q2jax.cli import main

DATA = Path(__file__).resolve().parent.parent / "q2jax" / "data"
XYZ = DATA / "ch3f" / "ch3f-optimized.xyz"
HESS = DATA / "ch3f" / "ch3f-hessian.npy"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def ch3f_fit(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    code = main(["fit", "--xyz", str(XYZ), "--hessian", str(HESS), "--out", str(out),
                 "--maxiter", "30", "--quiet"])
    assert code == 0
    return out


def test_fit_writes_the_contract_files(ch3f_fit):
    report = json.loads((ch3f_fit / "report.json").read_text())
    for key in ("molecule", "form", "method", "n_atoms", "n_params", "param_labels",
                "qm_frequencies_cm1", "start", "final", "wall_time_s", "n_evaluations"):
        assert key in report, key
    assert report["n_params"] == 8 and len(report["param_labels"]) == 8
    for state in (report["start"], report["final"]):
        for key in ("freq_rmsd_cm1", "freq_mae_cm1", "freq_max_abs_err_cm1", "geom_rmsd_angstrom",
                    "n_imaginary", "max_force_kcal_mol_A", "frequencies_cm1", "at_qm_geometry"):
            assert key in state, key
        assert len(state["frequencies_cm1"]) == 9
    # the fit improves the honest figure from the QFUERZA start
    assert report["final"]["freq_rmsd_cm1"] < report["start"]["freq_rmsd_cm1"]
    # report.json frequencies are consistent with its own RMSD
    nu = np.array(report["final"]["frequencies_cm1"])
    qm = np.array(report["qm_frequencies_cm1"])
    assert np.sqrt(np.mean((nu - qm) ** 2)) == pytest.approx(report["final"]["freq_rmsd_cm1"])
    # mode-matched figures: a permutation of the same frequencies, never below sorted order
    matched = report["final"]["mode_matched"]
    assert sorted(matched["frequencies_cm1"]) == pytest.approx(sorted(nu))
    assert matched["freq_rmsd_cm1"] >= report["final"]["freq_rmsd_cm1"] - 1e-9
    from q2jax import ForceField

    ff = ForceField.from_json(ch3f_fit / "forcefield.json")
    np.testing.assert_allclose(np.asarray(ff.params), report["params_final"])


def test_fit_with_mode_matching_lowers_the_matched_error(ch3f_fit, tmp_path):
    """--match-modes fits each QM frequency against its overlap partner: the
    stricter (mode-matched) figure ends lower than with sorted-order fitting."""
    code = main(["fit", "--xyz", str(XYZ), "--hessian", str(HESS), "--out", str(tmp_path),
                 "--maxiter", "30", "--quiet", "--match-modes"])
    assert code == 0
    matched = json.loads((tmp_path / "report.json").read_text())
    sorted_fit = json.loads((ch3f_fit / "report.json").read_text())
    assert matched["settings"]["mode_matching"] and not sorted_fit["settings"]["mode_matching"]
    assert (matched["final"]["mode_matched"]["freq_rmsd_cm1"]
            < sorted_fit["final"]["mode_matched"]["freq_rmsd_cm1"])
    assert matched["final"]["n_imaginary"] == 0


def _openmm_frequencies(xml_path: Path, xyz_angstrom: np.ndarray) -> np.ndarray:
    """Minimise in plain OpenMM and compute frequencies from a finite-difference
    Hessian of OpenMM's forces (projection and units written out here)."""
    import openmm
    from openmm import unit

    system = openmm.XmlSerializer.deserialize(xml_path.read_text())
    integ = openmm.VerletIntegrator(1.0)
    ctx = openmm.Context(system, integ, openmm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(xyz_angstrom * 0.1)
    openmm.LocalEnergyMinimizer.minimize(ctx, 1e-8, 0)

    def forces(x_nm):
        ctx.setPositions(x_nm)
        f = ctx.getState(getForces=True).getForces(asNumpy=True)
        return np.asarray(f.value_in_unit(unit.kilojoule_per_mole / unit.nanometer))

    x = np.asarray(ctx.getState(getPositions=True).getPositions(asNumpy=True)
                   .value_in_unit(unit.nanometer))
    # polish with Newton steps on the FD Hessian (LocalEnergyMinimizer stops early)
    n = x.shape[0]
    h_step = 1e-5  # nm

    def fd_hessian(x):
        h = np.zeros((3 * n, 3 * n))
        for k in range(3 * n):
            d = np.zeros(3 * n)
            d[k] = h_step
            h[:, k] = -(forces(x + d.reshape(n, 3)) - forces(x - d.reshape(n, 3))).reshape(-1) / (
                2 * h_step)
        return 0.5 * (h + h.T)

    for _ in range(5):
        g = -forces(x).reshape(-1)
        x = x - (np.linalg.pinv(fd_hessian(x), rcond=1e-8) @ g).reshape(n, 3)
    hess = fd_hessian(x)  # kJ/(mol nm^2)
    m = np.array([system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(n)])
    sm = np.repeat(np.sqrt(m), 3)
    hmw = hess / np.outer(sm, sm)
    w = np.linalg.eigvalsh(hmw)  # kJ/(mol nm^2 amu) = 1e24 s^-2 ... in SI: x 1e3/1e-18/1.6605e-27
    lam_si = w * 1e3 / 6.02214076e23 / 1e-18 / 1.66053906660e-27
    nu = np.sign(lam_si) * np.sqrt(np.abs(lam_si)) / (2 * np.pi * 2.99792458e10)
    return np.sort(nu)[6:]  # drop the six external modes (near zero)


def test_system_xml_reproduces_reported_frequencies_in_plain_openmm(ch3f_fit):
    report = json.loads((ch3f_fit / "report.json").read_text())
    lines = XYZ.read_text().splitlines()[2:7]
    xyz = np.array([[float(v) for v in ln.split()[1:4]] for ln in lines])
    nu = _openmm_frequencies(ch3f_fit / "ch3f.system.xml", xyz)
    np.testing.assert_allclose(nu, report["final"]["frequencies_cm1"], atol=0.5)


def test_help_everywhere():
    for argv in (["--help"], ["fit", "--help"], ["evaluate", "--help"], ["seminario", "--help"],
                 ["export", "--help"], ["qm", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0


def _one_line_error(code, err, *needles):
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "fit", "--xyz", tmp_path / "nope.xyz", "--hessian", HESS)
    _one_line_error(code, err, "nope.xyz")


def test_sizes_that_disagree(capsys, tmp_path):
    bad = tmp_path / "h.npy"
    np.save(bad, np.eye(12))
    code, _, err = run(capsys, "fit", "--xyz", XYZ, "--hessian", bad)
    _one_line_error(code, err, "h.npy", "12x12", "5 atoms")


def test_unknown_units(capsys):
    code, _, err = run(
        capsys, "fit", "--xyz", XYZ, "--hessian", HESS, "--hessian-units", "furlongs"
    )
    _one_line_error(code, err, "furlongs")


def test_unparseable_file(capsys, tmp_path):
    bad = tmp_path / "broken.xyz"
    bad.write_text("5\ncomment\nC 0 0 zero\n")
    code, _, err = run(capsys, "fit", "--xyz", bad, "--hessian", HESS)
    _one_line_error(code, err, "broken.xyz")
    bad_npy = tmp_path / "garbage.npy"
    bad_npy.write_bytes(b"not a numpy file")
    code, _, err = run(capsys, "fit", "--xyz", XYZ, "--hessian", bad_npy)
    _one_line_error(code, err, "garbage.npy")


def test_nan_hessian_and_missing_hessian(capsys, tmp_path):
    h = np.load(HESS)
    h[0, 0] = np.nan
    bad = tmp_path / "nan.npy"
    np.save(bad, h)
    code, _, err = run(capsys, "fit", "--xyz", XYZ, "--hessian", bad)
    _one_line_error(code, err, "NaN")
    code, _, err = run(capsys, "fit", "--xyz", XYZ)
    _one_line_error(code, err, "--hessian")


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "q2jax.cli", "--debug", "fit", "--xyz", str(tmp_path / "x.xyz"),
         "--hessian", str(HESS)], capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "q2jax.cli", "fit", "--xyz", str(tmp_path / "x.xyz"),
         "--hessian", str(HESS)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_evaluate_and_export(capsys, ch3f_fit, tmp_path):
    ff = ch3f_fit / "forcefield.json"
    code, out, _ = run(capsys, "evaluate", "--forcefield", ff, "--xyz", XYZ, "--hessian", HESS,
                       "--json")
    assert code == 0
    state = json.loads(out)["state"]
    report = json.loads((ch3f_fit / "report.json").read_text())
    assert state["freq_rmsd_cm1"] == pytest.approx(report["final"]["freq_rmsd_cm1"], abs=1e-6)
    code, _, _ = run(capsys, "export", "--forcefield", ff, "--xyz", XYZ, "--openmm",
                     tmp_path / "x.xml")
    assert code == 0 and (tmp_path / "x.xml").exists()
    code, _, _ = run(capsys, "export", "--forcefield", ff, "--frcmod", tmp_path / "x.frcmod")
    assert code == 0 and "BOND" in (tmp_path / "x.frcmod").read_text()
    code, _, err = run(capsys, "export", "--forcefield", tmp_path / "missing.json", "--frcmod",
                       tmp_path / "y")
    _one_line_error(code, err, "missing.json")
