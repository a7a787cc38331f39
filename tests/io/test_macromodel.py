"""Maestro .mae and MacroModel .mmo readers on the Rh-enamide training set.

Independent check of the integer -> name atom-type table: the .mmo is
MacroModel's own printout of the same structures with the type NAMES, so
mapping the .mae integers must give exactly those names, atom by atom.
"""

from __future__ import annotations

import numpy as np
import pytest
from _io_paths import ATOM_TYP, RH, RH_SET, text_of
from _where import assert_names, line_of, n_lines

from q2jax import units
from q2jax.errors import InputError, ParseError
from q2jax.io import (
    MACROMODEL_ATOM_TYPES,
    read_atom_typ,
    read_mae,
    read_mae_all,
    read_mae_bond_orders,
    read_mmo,
    read_mmo_all,
)

MAE = RH_SET / "rh_enamide_training_set.mae"
MMO = RH_SET / "rh_enamide_training_set.mmo.gz"
SINGLE = RH_SET / "mae" / "1_ZDMP_from_JCTC_SI.mae"
N_ATOMS = [36, 38, 38, 62, 62, 58, 58, 58, 58]
N_BONDS = [38, 40, 40, 67, 67, 62, 62, 62, 62]
# "Total energy: ... kJ/mol ( ... kcal/mol )" as printed for the nine structures
KCAL = [96.5407, 89.4327, 87.2787, 143.4943, 138.8160, 132.8496, 137.0149, 128.1668, 129.6967]


@pytest.fixture(scope="module")
def maes():
    return read_mae_all(MAE, atom_typ=ATOM_TYP)


@pytest.fixture(scope="module")
def mmos():
    return read_mmo_all(MMO, atom_typ=ATOM_TYP)


def test_nine_structures_with_types_and_bonds(maes, mmos):
    assert [m.n_atoms for m in maes] == [m.n_atoms for m in mmos] == N_ATOMS
    assert [len(m.bonds) for m in maes] == [len(m.bonds) for m in mmos] == N_BONDS
    for mae, mmo in zip(maes, mmos, strict=True):
        assert mae.name == mmo.name
        assert mae.atom_types == mmo.atom_types        # integer table vs MacroModel's names
        assert mae.symbols == mmo.symbols
        assert mae.bonds == mmo.bonds
        np.testing.assert_array_equal(mae.coords, mmo.coords)
    assert maes[0].atom_types[:8] == ("RH", "O2", "C2", "N2", "C2", "C2", "C1", "N1")
    assert sorted({t for m in maes for t in m.atom_types}) == [
        "C1", "C2", "C3", "H1", "H3", "N1", "N2", "O2", "P3", "RH"]


def test_zero_order_bonds_are_bonds(maes):
    """Rh-O2, Rh-C5 and C6-H18 have i_m_order 0 in the .mae and are stretch
    terms in MacroModel's printout: they belong to the bond list."""
    assert {(0, 1), (0, 4), (5, 17)} <= set(maes[0].bonds)


def test_bond_orders(maes):
    orders = read_mae_bond_orders(MAE)
    assert [sorted((a, b) for a, b, _ in o) for o in orders] == [list(m.bonds) for m in maes]
    first = {(a, b): o for a, b, o in orders[0]}
    assert first[(0, 1)] == first[(0, 4)] == first[(5, 17)] == 0   # dative Rh-O, Rh-C, C-H
    assert first[(1, 2)] == 2 and first[(6, 7)] == 3                # C=O, C#N
    tmpl = read_mae_bond_orders(RH / "rh-hydrogenation-enamide-template.mae")[0]
    assert len(tmpl) == 11 and (0, 1, 0) in tmpl


def test_mmo_energies_and_charges(mmos):
    for q, kcal in zip(mmos, KCAL, strict=True):
        assert q.source_units["energy"] == "kJ/mol"
        assert q.energy == pytest.approx(kcal, abs=6e-5)   # kJ value converted once
    assert mmos[0].charges[0] == 0.046 and mmos[0].charges[1] == -0.382
    assert abs(mmos[0].charges.sum() - 1.0) < 1e-3          # "Total QQ charge on system = 1.000"


def test_single_files_equal_the_master_file(maes):
    files = sorted((RH_SET / "mae").glob("*.mae"))
    assert len(files) == 9
    for path, ref in zip(files, maes, strict=True):
        q = read_mae(path, atom_typ=ATOM_TYP)
        assert (q.symbols, q.atom_types, q.bonds, q.name) == (ref.symbols, ref.atom_types,
                                                                 ref.bonds, ref.name)
        np.testing.assert_array_equal(q.coords, ref.coords)


def test_template_lists_bonds_both_ways_and_uses_site_types():
    q = read_mae(RH / "rh-hydrogenation-enamide-template.mae", atom_typ=ATOM_TYP)
    assert q.atom_types == ("RH", "O2", "C2", "N2", "C2", "C2", "P2", "P1", "H6", "H7")
    assert len(q.bonds) == 11        # 22 rows = 11 bonds listed in both directions
    assert q.charges[0] == 0.03186


def test_atom_typ_file():
    table = read_atom_typ(ATOM_TYP)
    assert table[250].name == "RH" and table[250].atomic_number is None
    assert table[253].name == "P2" and table[253].atomic_number == 15
    assert MACROMODEL_ATOM_TYPES[3].name == "C3" and MACROMODEL_ATOM_TYPES[41].name == "H1"
    assert MACROMODEL_ATOM_TYPES[4].name == "CA" and MACROMODEL_ATOM_TYPES[70].name == "Ca"


def test_site_type_without_atom_typ_is_an_error():
    with pytest.raises(ParseError, match="unknown MacroModel atom type 250") as err:
        read_mae(SINGLE)
    assert err.value.line == text_of(SINGLE).split("\n").index("  1 250 0.000000 0.000000 "
                                                                 "0.000000 1 4 \"UNL \" \"RH  "
                                                                 "\" 45 1E1EE1  RH ") + 1
    with pytest.raises(ParseError, match="'RH'") as err:
        read_mmo(MMO, index=0)
    assert_names(err, MMO, line_of(text_of(MMO), " RH (    1)"))  # its connection-table row


def test_multi_structure_needs_index():
    with pytest.raises(InputError, match="9 structures") as err:
        read_mae(MAE, atom_typ=ATOM_TYP)
    assert str(MAE) in str(err.value)
    assert read_mae(MAE, atom_typ=ATOM_TYP, index=-1).n_atoms == 58
    assert read_mmo(MMO, atom_typ=ATOM_TYP, index=3).n_atoms == 62


# -------------------------------------------------------------------- bad input


@pytest.mark.parametrize("old,new,what", [
    ("m_atom[36]", "m_atom[37]", "fewer rows"),
    ("m_atom[36]", "m_atom[35]", "end of the m_atom rows"),
    ("  3 2 1.132800 0.000000", "  3 2 1.1328O0 0.000000", "coordinate"),
    ("  3 2 1.132800 0.000000", "  3 41 1.132800 0.000000", "i_m_atomic_number is 6"),
    ("  3 2 1.132800 0.000000", "  3 999 1.132800 0.000000", "unknown MacroModel atom type 999"),
    ("  3 2 1.132800 0.000000", "  4 2 1.132800 0.000000", "atom indices"),
    ("  8 3 4 1\n", "  8 3 99 1\n", "bond 3-99"),
    ("  8 3 4 1\n", "  8 3 12 1\n", "listed twice"),
    ("  i_m_mmod_type\n", "  i_m_mmodtype\n", "i_m_mmod_type"),
    (" m_bond[38] {", " mbond[38] {", "no m_bond table"),
])
def test_bad_mae_raises_with_line(write, old, new, what):
    text = text_of(SINGLE)
    assert old in text
    p = write("bad.mae", text.replace(old, new, 1))
    with pytest.raises(ParseError, match=what) as err:
        read_mae(p, atom_typ=ATOM_TYP)
    assert_names(err, p)
    assert 1 <= err.value.line <= n_lines(text)


def test_strict_false_reads_elements_only(write):
    text = text_of(SINGLE).replace("  i_m_mmod_type\n", "  i_m_other\n", 1)
    text = text.replace(" m_bond[38] {", " m_other[38] {", 1)
    q = read_mae(write("plain.mae", text), strict=False)
    assert q.atom_types is None and q.bonds == () and q.symbols[0] == "Rh"


def test_truncated_mae(write):
    text = text_of(SINGLE)
    cut = text[: text.index("m_bond")]
    p = write("cut.mae", cut)
    with pytest.raises(ParseError, match="file ends early") as err:
        read_mae(p, atom_typ=ATOM_TYP)
    assert_names(err, p, n_lines(cut.rstrip()))  # its last token, where the file ends


def test_bad_mmo(write):
    text = text_of(MMO)
    second = text.index("Connection Table", text.index("Connection Table") + 100)
    cut = text[: second - 30000]
    p = write("cut.mmo", cut)
    with pytest.raises(ParseError, match="truncated") as err:
        read_mmo_all(p, atom_typ=ATOM_TYP)
    lines = cut.splitlines()  # the incomplete record starts after structure 1's last lines
    start = next(k for k in range(line_of(cut, " Total Sol charge") + 1, len(lines) + 1)
                 if lines[k - 1].strip() not in ("", "1"))
    assert_names(err, p, start)
    row = " O2 (    2)  -0.382 -0.382     0.0000     0.0000     2.2155   UNK   1       1     3="
    assert row in text
    bad = text.replace(row, row[:-3], 1)
    p = write("asym.mmo", bad)
    with pytest.raises(ParseError, match="atom 3 lists 2 but not the reverse") as err:
        read_mmo_all(p, atom_typ=ATOM_TYP)
    assert_names(err, p, line_of(bad, row[:-3]))  # atom 2's row, which lost its '3='
    stretch = "            1    12                1.5293"
    bad = text.replace("            1    13                1.5293", stretch, 1)
    p = write("str.mmo", bad)
    with pytest.raises(ParseError, match="stretch list .* stretch 1-12 is not a bond") as err:
        read_mmo_all(p, atom_typ=ATOM_TYP)
    assert_names(err, p, line_of(bad, stretch))  # the damaged stretch row


def test_energy_units(mmos):
    """403.9263 kJ/mol printed for structure 1 -> /4.184."""
    assert mmos[0].energy == pytest.approx(403.9263 * units.KJ_TO_KCAL, rel=1e-12)
