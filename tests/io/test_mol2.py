"""MOL2 reader: ethane and the Rh-enamide set, checked against the Gaussian
log and the Maestro files of the same structures."""

from __future__ import annotations

import numpy as np
import pytest
from _io_paths import ATOM_TYP, ETHANE, RH_SET, text_of
from _where import assert_names, line_of, n_lines

from q2jax.errors import InputError, ParseError
from q2jax.io import read_gaussian_log, read_mae_all, read_mol2, read_mol2_all


def test_ethane_mol2_matches_the_log():
    q = read_mol2(ETHANE / "GS.mol2")
    log = read_gaussian_log(ETHANE / "GS.log")
    assert q.symbols == log.symbols
    assert q.atom_types == ("HC", "C3", "HC", "C3", "HC", "HC", "HC", "HC")
    np.testing.assert_allclose(q.coords, log.coords, atol=5.01e-5)  # mol2: 4 decimals
    assert q.bonds == ((0, 1), (1, 2), (1, 3), (1, 4), (3, 5), (3, 6), (3, 7))
    np.testing.assert_allclose(q.charges, [0.0227, -0.0681] + [0.0227, -0.0681] + [0.0227] * 4)
    assert q.name == "Basic Ethane minimum"


def test_rh_master_mol2_matches_the_mae():
    mols = read_mol2_all(RH_SET / "rh_enamide_training_set.mol2")
    maes = read_mae_all(RH_SET / "rh_enamide_training_set.mae", atom_typ=ATOM_TYP)
    assert len(mols) == 9
    for m, a in zip(mols, maes, strict=True):
        assert (m.name, m.symbols, m.bonds) == (a.name, a.symbols, a.bonds)
        np.testing.assert_array_equal(m.coords, a.coords)
    assert mols[0].atom_types[:4] == ("RH", "O2", "C2", "N2")


def test_nc_bonds_are_the_zero_order_bonds():
    p = RH_SET / "mol2" / "1_ZDMP_from_JCTC_SI.mol2"
    with_nc, without = read_mol2(p), read_mol2(p, include_nc=False)
    assert set(with_nc.bonds) - set(without.bonds) == {(0, 1), (0, 4), (5, 17)}


def test_raw_mol2_with_wrong_bond_count_is_rejected():
    """A real-world bad file: '2_dmpe_conf_1.mol2' announces 38 bonds but lists 40."""
    p = RH_SET / "mol2" / "2_dmpe_conf_1.mol2"
    with pytest.raises(ParseError, match="more bond rows than the 38 announced") as err:
        read_mol2(p)
    assert_names(err, p, 85)


def test_element_from_names_and_types(write):
    body = ("@<TRIPOS>MOLECULE\nm\n4 0\nSMALL\nNO_CHARGES\n\n@<TRIPOS>ATOM\n"
            "1 CA 0 0 0 C.ar\n2 CA1 1.5 0 0 Ca\n3 CL 0 1.7 0 Cl\n4 HG12 0 0 1.1 HC\n")
    assert read_mol2(write("e.mol2", body)).symbols == ("C", "Ca", "Cl", "H")
    bad = body.replace("4 HG12 0 0 1.1 HC", "4 HG12 0 0 1.1 X9")
    p = write("amb.mol2", bad)
    with pytest.raises(ParseError, match="ambiguous") as err:
        read_mol2(p)
    assert_names(err, p, line_of(bad, "4 HG12"))


@pytest.mark.parametrize("old,new,what", [
    (" 8 7 0 0 0", " 9 7 0 0 0", "expected 9 atom rows"),
    (" 8 7 0 0 0", " 8 8 0 0 0", "expected 8 bond rows"),
    ("     7     4     8    1", "     7     4     8    5", "bond type"),
    ("     7     4     8    1", "     7     4     9    1", "outside"),
    ("     7     4     8    1", "     8     4     8    1", "bond ids"),
    ("      2 C          -0.0001", "      2 C          -0.000l", "coordinate"),
    ("      2 C          -0.0001", "      3 C          -0.0001", "atom ids"),
    ("      2 C          -0.0001", "      2 Q          -0.0001", "element"),
])
def test_bad_mol2_raises_with_line(write, old, new, what):
    text = text_of(ETHANE / "GS.mol2")
    assert old in text
    bad = text.replace(old, new, 1)
    p = write("bad.mol2", bad)
    with pytest.raises(ParseError, match=what) as err:
        read_mol2(p)
    # the damaged row; a wrong count, where the rows ran out (next record, end of file)
    line = {"expected 9 atom rows": line_of(bad, "@<TRIPOS>BOND"),
            "expected 8 bond rows": n_lines(bad)}.get(what, line_of(bad, new))
    assert_names(err, p, line)


def test_truncated_mol2(write):
    text = text_of(ETHANE / "GS.mol2")
    cut = text[: text.index("     6     7")]
    p = write("cut.mol2", cut)
    with pytest.raises(ParseError, match="bond rows") as err:
        read_mol2(p)
    assert_names(err, p, n_lines(cut))  # the file ends before the last bond rows


def test_multi_molecule_needs_index():
    p = RH_SET / "rh_enamide_training_set.mol2"
    with pytest.raises(InputError, match="9 molecules") as err:
        read_mol2(p)
    assert str(p) in str(err.value)
