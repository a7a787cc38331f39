"""Jaguar readers on the nine bundled Rh-enamide frequency jobs.

The Hessian units are established from the data: frequencies computed from
the ``.in`` Hessian read as Hartree/Bohr² reproduce every frequency printed
in the matching ``.out`` to the print precision (0.01 cm⁻¹); any other unit
reading (kJ/(mol Å²), or the 9,376-fold inflation) misses by orders of
magnitude.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from _io_paths import ATOM_TYP, RH_NAMES, RH_SET, jaguar_in, jaguar_out, text_of
from _where import assert_names, line_of, n_lines

from q2jax import units
from q2jax.elements import mass
from q2jax.errors import ParseError
from q2jax.io import read_jaguar_in, read_jaguar_out, read_mae_all, read_mmo_all, read_qm
from q2jax.vibrations import frequencies

AU = units.HARTREE_BOHR2_TO_KCAL_MOL_A2
PAD = 62  # largest structure: one compiled frequency function for all nine


@pytest.fixture(scope="module")
def pairs():
    return [(read_jaguar_in(jaguar_in(s)), read_jaguar_out(jaguar_out(s))) for s in RH_NAMES]


@pytest.fixture(scope="module")
def freq_fn():
    def padded(h, x, m, mask):  # eager: XLA's jitted 186x186 eigh is ~15x slower on CPU
        return frequencies(jnp.asarray(h), jnp.asarray(x), jnp.asarray(m), 3 * PAD - 6,
                           jnp.asarray(mask))

    def run(hessian, coords, masses):
        n = len(masses)
        h = np.zeros((3 * PAD, 3 * PAD))
        h[: 3 * n, : 3 * n] = hessian
        x = np.zeros((PAD, 3))
        x[:n] = coords
        m = np.ones(PAD)
        m[:n] = masses
        mask = np.arange(PAD) < n
        return np.asarray(padded(h, x, m, mask))[: 3 * n - 6]

    return run


def test_nine_structures_present(pairs):
    assert len(pairs) == 9
    assert [a.n_atoms for a, _ in pairs] == [36, 38, 38, 62, 62, 58, 58, 58, 58]


def test_in_hessian_in_hartree_bohr2_reproduces_out_frequencies(pairs, freq_fn):
    worst = 0.0
    for qin, qout in pairs:
        assert qin.source_units["hessian"] == "hartree/bohr2"
        masses = [mass(s) for s in qin.symbols]
        nu = freq_fn(qin.hessian, qin.coords, masses)
        assert len(nu) == len(qout.frequencies) == 3 * qin.n_atoms - 6
        worst = max(worst, float(np.abs(nu - qout.frequencies).max()))
    # .out prints 2 decimals: 0.005 rounding (+ float noise); isotope masses
    assert worst < 0.01, worst


def test_other_unit_readings_are_far_off(pairs, freq_fn):
    """Reading the &hess numbers as kJ/(mol Å²), or inflating them 9,376-fold
    (Hartree/Bohr² -> kJ/(mol Å²) applied twice), scales every frequency by
    1/96.8 or 96.8 -- nothing like the printed ones."""
    qin, qout = pairs[0]
    masses = [mass(s) for s in qin.symbols]
    ratio = np.sqrt(AU / units.KJ_TO_KCAL)  # sqrt(9375.8) = 96.8
    as_kj = freq_fn(qin.hessian / AU * units.KJ_TO_KCAL, qin.coords, masses)
    inflated = freq_fn(qin.hessian * AU / units.KJ_TO_KCAL, qin.coords, masses)
    np.testing.assert_allclose(as_kj[-1] * ratio, qout.frequencies[-1], rtol=1e-5)
    np.testing.assert_allclose(inflated[-1] / ratio, qout.frequencies[-1], rtol=1e-5)
    assert ratio == pytest.approx(96.83, abs=0.01)


def test_first_elements_and_energy_in_file_units(pairs):
    qin, qout = pairs[0]
    assert qin.hessian[0, 0] == pytest.approx(2.944868e-01 * AU, rel=1e-12)
    assert qin.hessian[1, 0] == qin.hessian[0, 1] == pytest.approx(-1.904832e-02 * AU, rel=1e-12)
    assert qout.energy == pytest.approx(-1369.88293508102 * units.HARTREE_TO_KCAL_MOL, rel=1e-14)
    assert qout.frequencies[0] == -705.89  # the transition-state mode
    assert qin.symbols[:3] == ("Rh", "O", "C")


def test_atom_order_agrees_across_in_out_mae_mmo(pairs):
    """Same elements in the same order in all four files (the mapping is the
    identity); .in/.out coordinates are identical, .mae/.mmo round to 1e-4 Å."""
    maes = read_mae_all(RH_SET / "rh_enamide_training_set.mae", atom_typ=ATOM_TYP)
    mmos = read_mmo_all(RH_SET / "rh_enamide_training_set.mmo.gz", atom_typ=ATOM_TYP)
    for (qin, qout), mae, mmo in zip(pairs, maes, mmos, strict=True):
        assert qin.symbols == qout.symbols == mae.symbols == mmo.symbols
        np.testing.assert_array_equal(qin.coords, qout.coords)
        np.testing.assert_allclose(mae.coords, qin.coords, atol=5.01e-5)
        np.testing.assert_allclose(mmo.coords, qin.coords, atol=5.01e-5)


def test_read_qm_detects_jaguar():
    stem = RH_NAMES[0]
    assert read_qm(jaguar_out(stem)).program == "jaguar"
    assert read_qm(jaguar_in(stem)).hessian is not None


# -------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def in_text():
    return text_of(jaguar_in(RH_NAMES[0]))


def _lines(text):
    return text.split("\n")


def test_missing_hess_section(write, in_text):
    lines = _lines(in_text)
    start, end = lines.index("&hess"), lines.index("&rwr_svd")
    text = "\n".join(lines[:start] + lines[end:])
    p = write("nohess.in", text)
    with pytest.raises(ParseError, match="no &hess section") as err:
        read_jaguar_in(p)
    assert_names(err, p, n_lines(text))  # searched to the end
    assert read_jaguar_in(p, require_hessian=False).hessian is None


def test_truncated_hess(write, in_text):
    lines = _lines(in_text)
    start = lines.index("&hess")
    p = write("cut.in", "\n".join(lines[: start + 300]))
    with pytest.raises(ParseError, match="not closed") as err:
        read_jaguar_in(p)
    assert_names(err, p, start + 300)  # the last line: the file ends inside &hess
    # a block row dropped, the section still closed
    dropped = lines[: start + 50] + lines[start + 51:]
    p = write("drop.in", "\n".join(dropped))
    with pytest.raises(ParseError, match="expected &hess row") as err:
        read_jaguar_in(p)
    assert_names(err, p, start + 51)


@pytest.mark.parametrize("old,new,what", [
    (" C3              1.1327700000", " C3              1.13277OOOOO", "coordinate"),
    (" C3              1.1327700000", " Q3              1.1327700000", "element symbol"),
    (" C3              1.1327700000", " X3              1.1327700000", "dummy atom"),
    ("   1  2.944868E-01", "   1  2.944868E-01  1.0", "expected &hess row 1"),
    ("   2 -1.904832E-02  2.472421E-01", "   2 -1.904832E-02  2.472421E+O1", "Hessian element"),
    ("iacc=1", "iacc=1\niunit=2", "iunit=2"),
    (" N4              2.2649000000             0.0844000000             2.0176700000",
     " N4  C3 1.5 Rh1 120.0", "Cartesian"),
])
def test_bad_fields_raise(write, in_text, old, new, what):
    assert old in in_text
    text = in_text.replace(old, new, 1)
    p = write("bad.in", text)
    with pytest.raises(ParseError, match=what) as err:
        read_jaguar_in(p)
    assert_names(err, p, line_of(text, new))  # the damaged line


def test_wrong_atom_count_between_zmat_and_hess(write, in_text):
    """One atom removed from &zmat: the Hessian no longer fits 3N."""
    lines = _lines(in_text)
    k = next(i for i, t in enumerate(lines) if t.startswith(" H36"))
    text = "\n".join(lines[:k] + lines[k + 1:])
    p = write("n35.in", text)
    with pytest.raises(ParseError, match="expected the &hess block header '6'") as err:
        read_jaguar_in(p)
    # 3N = 105 now: the &hess line, its first block's header and 105 rows, then row 106
    hess = line_of(text, "\n&hess\n") - 1
    assert_names(err, p, hess + 1 + 105 + 1)


def test_truncated_or_inconsistent_out(write):
    text = text_of(jaguar_out(RH_NAMES[0]))
    cut = text[: len(text) // 2]
    p = write("cut.out", cut)
    with pytest.raises(ParseError, match="completed") as err:
        read_jaguar_out(p)
    assert_names(err, p, n_lines(cut.rstrip()))  # its last non-blank line
    bad = text.replace("Number of frequencies: 102", "Number of frequencies: 101")
    p = write("nf.out", bad)
    with pytest.raises(ParseError, match="frequencies announced") as err:
        read_jaguar_out(p)
    assert_names(err, p, line_of(bad, "Number of frequencies: 101"))
    row = "  frequencies      -705.89    42.10    64.83    82.41    89.32   116.11"
    assert row in text
    bad = text.replace(row, row[:-9])
    p = write("nr.out", bad)
    with pytest.raises(ParseError, match="6 frequencies") as err:
        read_jaguar_out(p)
    assert_names(err, p, line_of(bad, row[:-9]))
