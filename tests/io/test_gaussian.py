"""Gaussian readers on the bundled ethane frequency job (Gaussian 94, NoSymm).

Independent checks: the .log archive and the .fchk are two separate
printouts of one calculation; the frequencies Gaussian printed are a third.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _io_paths import ETHANE, text_of
from _where import assert_names, line_of, n_lines

from q2jax import units
from q2jax.elements import mass
from q2jax.errors import ParseError
from q2jax.io import read_fchk, read_gaussian_log, rotational_residual
from q2jax.vibrations import frequencies

LOG, FCHK = ETHANE / "GS.log", ETHANE / "GS.fchk"
PRINTED = np.array([312.9189, 831.7378, 832.4266, 1010.0217, 1235.4014, 1235.5487, 1433.0238,
                    1454.2083, 1531.7465, 1532.1621, 1537.4225, 1537.8152, 3047.0774, 3047.9938,
                    3098.3069, 3098.5764, 3122.6553, 3122.9498])  # GS.log lines 969-1054
AU = units.HARTREE_BOHR2_TO_KCAL_MOL_A2
_freqs = jax.jit(frequencies, static_argnums=3)


@pytest.fixture(scope="module")
def log():
    return read_gaussian_log(LOG)


@pytest.fixture(scope="module")
def fchk():
    return read_fchk(FCHK)


def _nu(qm):
    m = jnp.asarray([mass(s) for s in qm.symbols])
    n_vib = 3 * qm.n_atoms - 6
    return np.asarray(_freqs(jnp.asarray(qm.hessian), jnp.asarray(qm.coords), m, n_vib))


def test_log_and_fchk_give_the_same_molecule_and_hessian(log, fchk):
    assert log.symbols == fchk.symbols == ("H", "C", "H", "C", "H", "H", "H", "H")
    np.testing.assert_allclose(log.coords, fchk.coords, atol=1e-6)       # Å
    # archive: 8 decimals, fchk: 9 significant digits -> agree to ~1e-8 au
    np.testing.assert_allclose(log.hessian, fchk.hessian, rtol=0, atol=1.5e-8 * AU)
    np.testing.assert_allclose(log.gradient, fchk.gradient, rtol=0,
                               atol=1e-8 * units.HARTREE_BOHR_TO_KCAL_MOL_A)
    assert log.energy == pytest.approx(fchk.energy, abs=1e-10 * units.HARTREE_TO_KCAL_MOL)


@pytest.mark.parametrize("which", ["log", "fchk"])
def test_frequencies_from_either_hessian_match_the_printed_ones(which, log, fchk):
    nu = _nu(log if which == "log" else fchk)
    np.testing.assert_allclose(nu, PRINTED, atol=1.0)   # the requirement
    assert np.abs(nu - PRINTED).max() < 2e-3             # what is reached (print rounding)


def test_log_reports_printed_frequencies(log):
    np.testing.assert_array_equal(log.frequencies, PRINTED)


def test_units_are_converted_once(log, fchk):
    assert log.source_units == {"coords": "angstrom", "hessian": "hartree/bohr2",
                                "gradient": "hartree/bohr", "energy": "hartree",
                                "frequencies": "cm-1"}
    assert fchk.source_units["coords"] == "bohr"
    # first archive force constant 0.04969903 Hartree/Bohr^2; SCF energy -79.8304168919 Hartree
    assert log.hessian[0, 0] == pytest.approx(0.04969903 * AU, rel=1e-12)
    assert fchk.hessian[0, 0] == pytest.approx(4.96990292e-02 * AU, rel=1e-12)
    assert log.energy == pytest.approx(-79.8304168919 * units.HARTREE_TO_KCAL_MOL, rel=1e-14)
    # fchk 'Current cartesian coordinates' are Bohr: C2 z = 2.059963... Bohr = 1.0900717 Å
    assert fchk.coords[1, 2] == pytest.approx(1.0900716871, abs=1e-6)


def test_gradient_is_minus_the_printed_forces(log, fchk):
    """Log 'Forces (Hartrees/Bohr)' atom 1: 0.000001336 -0.000001606 -0.000000446.
    The fchk array named 'Cartesian Forces' (G94) holds dE/dx, i.e. -F."""
    g = log.gradient[0] / units.HARTREE_BOHR_TO_KCAL_MOL_A
    np.testing.assert_allclose(g, [-1.34e-6, 1.61e-6, 4.5e-7], atol=6e-9)
    gf = fchk.gradient[0] / units.HARTREE_BOHR_TO_KCAL_MOL_A
    np.testing.assert_allclose(gf, [-1.33617168e-06, 1.60633231e-06, 4.46178167e-07], rtol=1e-12)


def test_masses_are_full_precision_isotope_masses(log):
    """Printed '1.00783' equals the H-1 mass to 5 decimals -> table value."""
    assert log.masses[0] == mass("H") and log.masses[1] == 12.0


def test_hessian_is_in_the_frame_of_its_coordinates(log, fchk):
    """At a stationary point H·(ω×r) = 0 only in the Hessian's own frame."""
    assert rotational_residual(log.hessian, log.coords) < 1e-3
    assert rotational_residual(fchk.hessian, fchk.coords) < 1e-3
    rot = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    assert rotational_residual(log.hessian, log.coords @ rot.T) > 0.1


# ------------------------------------------------------------- orientation guard


def _std_block(coords, zs):
    rows = "\n".join(f" {i + 1:6d} {z:10d} {0:11d} {x:14.6f}{y:12.6f}{w:12.6f}"
                     for i, (z, (x, y, w)) in enumerate(zip(zs, coords, strict=True)))
    dash = " " + "-" * 69
    return (f"                         Standard orientation:\n{dash}\n"
            " Center     Atomic      Atomic             Coordinates (Angstroms)\n"
            " Number     Number       Type             X           Y           Z\n"
            f"{dash}\n{rows}\n{dash}\n")


def _rewrite_archive(text, new_fc_values):
    start = text.rindex(" 1\\1\\GINC")
    end = text.index("\\@", start) + 2
    body = "".join(line[1:] for line in text[start:end].split("\n"))
    secs = body.split("\\\\")
    secs[5] = ",".join(f"{v:.8f}" for v in new_fc_values)
    joined = "\\\\".join(secs)
    lines = [" " + joined[k:k + 70] for k in range(0, len(joined), 70)]
    return text[:start] + "\n".join(lines) + text[end:]


def _rotated_variant(rotate_hessian: bool):
    text = text_of(LOG)
    qm = read_gaussian_log(LOG)
    rot = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    std = (qm.coords - qm.coords.mean(0)) @ rot.T
    zs = [6 if s == "C" else 1 for s in qm.symbols]
    marker = "                   Input orientation:"
    at = text.rindex(marker)
    text = text[:at] + _std_block(std, zs) + text[at:]
    if rotate_hessian:
        big = np.kron(np.eye(qm.n_atoms), rot)
        h = big @ (qm.hessian / AU) @ big.T
        text = _rewrite_archive(text, h[np.tril_indices(len(h))])
    return text.replace("Symmetry turned off by external request.", "")


def test_standard_orientation_block_does_not_move_the_frame(write):
    """A log that also prints a (rotated) standard orientation still returns
    archive coordinates and Hessian in the input orientation."""
    qm = read_gaussian_log(write("std.log", _rotated_variant(rotate_hessian=False)))
    ref = read_gaussian_log(LOG)
    np.testing.assert_array_equal(qm.coords, ref.coords)
    np.testing.assert_array_equal(qm.hessian, ref.hessian)


def test_hessian_in_the_other_frame_is_rejected(write):
    text = _rotated_variant(rotate_hessian=True)
    p = write("rot.log", text)
    with pytest.raises(ParseError, match="standard orientation") as err:
        read_gaussian_log(p)
    assert_names(err, p, line_of(text, " 1\\1\\GINC", last=True))  # the archive's constants


# -------------------------------------------------------------------- job steps


def test_link_selects_the_job_step():
    opt = read_gaussian_log(LOG, link=0)
    assert opt.hessian is None and opt.frequencies is None
    assert opt.symbols == read_gaussian_log(LOG).symbols
    assert opt.energy == pytest.approx(-79.8304168919 * units.HARTREE_TO_KCAL_MOL, abs=1e-6)
    with pytest.raises(ParseError, match="no Cartesian force constants") as err:
        read_gaussian_log(LOG, link=0, require_hessian=True)
    assert_names(err, LOG, line_of(text_of(LOG), "Normal termination"))  # step 0's end
    with pytest.raises(ParseError, match="out of range") as err:
        read_gaussian_log(LOG, link=2)
    assert_names(err, LOG)  # an argument error: no line of the file is at fault


# -------------------------------------------------------------------- bad input


def test_truncated_log_raises_at_its_last_line(write):
    text = text_of(LOG)
    cut = text[: text.index(" Harmonic frequencies") + 500]
    p = write("cut.log", cut)
    with pytest.raises(ParseError, match="Normal termination") as err:
        read_gaussian_log(p)
    assert err.value.line == len(cut.splitlines())
    with pytest.raises(ParseError, match="frequencies") as err:
        read_gaussian_log(p, allow_incomplete=True)
    assert_names(err, p, line_of(cut, " Harmonic frequencies"))  # the cut-off table


def test_file_cut_after_the_opt_step_of_an_opt_freq_job_raises(write):
    """Truncated exactly after the first 'Normal termination': a complete-looking
    optimization log, but its route asked for Freq too."""
    text = text_of(LOG)
    k = text.index("Normal termination")
    cut = text[: text.index("\n", k) + 1]
    p = write("opt.log", cut)
    with pytest.raises(ParseError, match="Opt and Freq") as err:
        read_gaussian_log(p)
    assert_names(err, p, line_of(cut, " 1\\1\\GINC"))  # the archive entry with the route


def test_missing_force_constants_in_a_frequency_job_raise(write):
    text = text_of(LOG)
    start = text.rindex(" 1\\1\\GINC")
    body = text[start:]
    k = body.index("NImag=0\\\\") + len("NImag=0\\\\")
    k2 = body.index("\\\\", k)
    # drop the force-constant section, keep the archive well formed
    broken = text[:start] + body[:k] + body[k2 + 2:]
    p = write("nofc.log", broken)
    with pytest.raises(ParseError, match="no Cartesian force constants") as err:
        read_gaussian_log(p)
    assert_names(err, p, line_of(broken, "Normal termination", last=True))  # the step's end


@pytest.mark.parametrize("old,new,what", [
    ("    2          6          -0.000121", "    2          7          -0.000121", "differs"),
    (" Frequencies --  1010.0217", " Frequencies --  10l0.0217", "frequency"),
    ("SCF Done:  E(RB+HF-LYP) =  -79.8304168919     A.U. after    1",
     "SCF Done:  E(RB+HF-LYP) =  -79.8314168919     A.U. after    1", "archive HF"),
    ("Atom  3 has atomic number  1 and mass", "Atom  3 has atomic number  6 and mass",
     "thermochemistry"),
])
def test_inconsistent_or_non_numeric_fields_raise(write, old, new, what):
    text = text_of(LOG)
    k = text.rindex(old)
    p = write("bad.log", text[:k] + new + text[k + len(old):])
    with pytest.raises(ParseError, match=what) as err:
        read_gaussian_log(p)
    bad = text[:k] + new + text[k + len(old):]
    # the damaged line; a geometry that disagrees, the block it was compared with
    line = line_of(bad, "Input orientation:", last=True) if what == "differs" else line_of(bad, new)
    assert_names(err, p, line)


def test_fchk_truncated_or_damaged(write):
    text = text_of(FCHK)
    k = text.index("Cartesian Force Constants")
    p = write("cut.fchk", text[:k])
    with pytest.raises(ParseError, match="Force Constants") as err:
        read_fchk(p)
    assert_names(err, p, n_lines(text[:k]))  # searched to the end
    p = write("cut2.fchk", text[: k + 2000])
    with pytest.raises(ParseError, match="needs 60 lines") as err:
        read_fchk(p)
    assert_names(err, p, n_lines(text[: k + 2000]))  # the array runs past the last line
    p = write("nan.fchk", text.replace("4.96990292E-02", "4.96990292E-0x", 1))
    with pytest.raises(ParseError, match="E-format") as err:
        read_fchk(p)
    assert_names(err, p, line_of(text, "4.96990292E-02"))
    bad_n = re.sub(r"(Number of atoms\s+I\s+)8", r"\g<1>9", text)
    p = write("n9.fchk", bad_n)
    with pytest.raises(ParseError, match="'Atomic numbers' has 8 values, expected 9") as err:
        read_fchk(p)
    assert_names(err, p, line_of(text, "Atomic numbers"))  # the array's header
    z0 = text.replace("           1           6", "           0           6", 1)
    p = write("z0.fchk", z0)
    with pytest.raises(ParseError, match="atomic number 0") as err:
        read_fchk(p)
    assert_names(err, p, line_of(z0, "           0           6"))
