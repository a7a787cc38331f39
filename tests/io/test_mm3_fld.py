"""MacroModel MM3* .fld files: parse facts, byte-exact round trip, value edits,
bad input; and parameter assignment on small hand-made cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _where import assert_names

from q2jax.errors import ParameterError, ParseError
from q2jax.io.mm3_assign import assign_parameters, build_mm3_forcefield
from q2jax.io.mm3_fld import parse_fld, parse_pattern, read_fld, write_fld
from q2jax.molecule import Molecule
from q2jax.units import MM3_BEND_UNIT, MM3_STRETCH_UNIT

RH = Path(__file__).resolve().parents[2] / "q2jax" / "data" / "rh-enamide"
FILES = ["mm3.fld", "rh_hyd_enamide_start.fld", "rh_hyd_enamide_seminario.fld",
         "ff/rh_hyd_enamide_final.fld", "ff/rh_hyd_enamide_start.fld"]


@pytest.fixture(scope="module")
def mm3():
    return read_fld(RH / "mm3.fld")


def _values(fld):
    return ([(p.line, p.kind, p.alt, p.atoms, p.bonds, p.values, p.descriptors, p.descriptors2,
              p.substructure) for p in fld.params]
            + [(r.line, r.atom_type, r.values, r.descriptor) for r in fld.vdw])


@pytest.mark.parametrize("name", FILES)
def test_round_trip_is_byte_exact_and_keeps_every_parameter(name, tmp_path):
    raw = (RH / name).read_bytes()
    fld = read_fld(RH / name)
    write_fld(fld, tmp_path / "out.fld")
    assert (tmp_path / "out.fld").read_bytes() == raw
    again = read_fld(tmp_path / "out.fld")
    assert _values(again) == _values(fld)
    write_fld(fld, tmp_path / "out.fld.gz")  # gzip transparently
    assert _values(read_fld(tmp_path / "out.fld.gz")) == _values(fld)


def test_mm3_fld_contents_match_the_file(mm3):
    # introductory section: MacroModel's MM3* equations and kJ/mol factors
    assert mm3.conversion_factors["STR"] == (3, 601.99392)
    assert mm3.conversion_factors["IMP"] == (1, 60.19939)
    assert mm3.conversion_factors["ELE"] == (1, 1389.5)
    assert 601.99392 / 4.184 == pytest.approx(2 * MM3_STRETCH_UNIT, rel=1e-6)
    assert mm3.equivalences["HX"] == ("H1", "H2", "H3", "H4", "H5", "H6", "H7")
    assert mm3.equivalences["PX"] == ("P0", "P3", "P4", "P5")
    kinds = {}
    for p in mm3.params:
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
    assert kinds == {"stretch": 186, "bend": 529, "torsion": 911, "stretch_bend": 6,
                     "torsion_stretch": 6, "improper": 4, "vdw_pair": 7, "hbond": 37,
                     "angle_condition": 1}
    assert len(mm3.vdw) == 36
    assert [s.name for s in mm3.substructures][:2] == ["Benzenoid", "Cyclopropane"]
    assert [s.opt for s in mm3.substructures].count(True) == 2
    # line 60: '1  C3 - C3  1.5177  4.4900  0.0000 1C200 0000' + continuation 'O200 0000'
    p = mm3.record(60)
    assert (p.kind, p.atoms, p.bonds, p.values) == ("stretch", ("C3", "C3"), ("-",),
                                                     (1.5177, 4.49, 0.0))
    assert p.descriptors == ("C200", "0000") and p.descriptors2 == ("O200", "0000")
    assert p.continuation_line == 61 and p.comment == "(O=C-)C(sp3)-C(sp3)"
    rh = mm3.record(1064)  # '  RH  2.6900  0.1400  0.0000  1.0000 ... Donoghue'
    assert (rh.atom_type, rh.radius, rh.epsilon, rh.charge, rh.comment) == (
        "RH", 2.69, 0.14, 1.0, "Donoghue")


def test_rh_substructure_pattern_and_alternatives(mm3):
    sub = mm3.substructures[16]
    assert sub.pattern == "HX-RH(-PX)-HX.C2*C2(.2)-N2-C2=O2.2"
    assert sub.pattern_atoms == ("HX", "RH", "PX", "HX", "C2", "C2", "N2", "C2", "O2")
    assert set(sub.pattern_bonds) == {(0, 1, "-"), (1, 2, "-"), (1, 3, "-"), (3, 4, "."),
                                      (4, 5, "*"), (5, 1, "."), (5, 6, "-"), (6, 7, "-"),
                                      (7, 8, "="), (8, 1, ".")}
    lines = [mm3.params[i] for i in sub.params]
    cond = [p for p in lines if p.kind == "angle_condition"]
    assert [(p.alt, p.atoms, p.values) for p in cond] == [("a", ("3", "2", "9"), (180.0, 45.0))]
    assert sum(1 for p in lines if p.alt and p.kind != "angle_condition") == 5
    assert (sum(p.kind == "stretch" for p in lines), sum(p.kind == "bend" for p in lines),
            sum(p.kind == "torsion" for p in lines)) == (8, 22, 15)


def test_start_and_final_differ_only_in_rh_force_constants():
    start = read_fld(RH / "rh_hyd_enamide_start.fld")
    final = read_fld(RH / "ff/rh_hyd_enamide_final.fld")
    s = {(p.kind, p.atoms, p.alt, p.substructure, p.descriptors): p.values for p in start.params}
    f = {(p.kind, p.atoms, p.alt, p.substructure, p.descriptors): p.values for p in final.params}
    assert s.keys() == f.keys()
    changed = [(k, s[k], f[k]) for k in s if s[k] != f[k]]
    # the 8 bond and 23 angle force constants of the Rh sections, nothing else
    assert len(changed) == 31
    for k, a, b in changed:
        assert k[0] in ("stretch", "bend") and k[3] in (16, 17)
        assert a[0] == b[0] and a[2:] == b[2:] and a[1] == 0.5
    assert f[("stretch", ("4", "5"), "", 16, ())][1] == 21.9463


def test_with_values_rewrites_only_the_changed_field(mm3):
    line = 1866  # ' 1   4   5    1.7492    21.9463    -1.3716'
    edited = mm3.with_values({(line, 1): 123.45678, (line, 0): 1.7492})
    old, new = mm3.lines[line - 1], edited.lines[line - 1]
    assert edited.record(line).values == (1.7492, 123.4568, -1.3716)  # file precision: 4 decimals
    assert new.replace("123.4568", "21.9463".rjust(8)) == old
    assert all(a == b for k, (a, b) in enumerate(zip(mm3.lines, edited.lines, strict=True))
               if k != line - 1)
    assert mm3.with_values({(line, 1): 21.9463}).text() == mm3.text()
    with pytest.raises(ParameterError, match="does not fit"):
        mm3.with_values({(line, 0): 1.0e7})  # would run into the atom columns
    wide = mm3.with_values({(line, 1): -2345.6789})  # widens into the blanks to its left
    assert wide.record(line).values == (1.7492, -2345.6789, -1.3716)
    with pytest.raises(ParameterError, match="no parameter line"):
        mm3.with_values({(1, 0): 1.0})


def test_pattern_parser():
    atoms, bonds = parse_pattern("C3-C2(=O)-00-00-C3-1")
    assert atoms == ("C3", "C2", "O", "00", "00", "C3")
    assert bonds == ((0, 1, "-"), (1, 2, "="), (1, 3, "-"), (3, 4, "-"), (4, 5, "-"), (5, 0, "-"))
    for bad in ("C3-(C2", "C3--C2", "C3-9", "C3-C2)", "C3-C2-", "C3-CCC"):
        with pytest.raises(ParseError) as err:
            parse_pattern(bad, "x.fld", 7)  # a pattern names the file line it came from
        assert_names(err, "x.fld", 7)


BAD_LINES = [
    (" 1  C3 - C3                1.5x77     4.4900     0.0000  0000 0000", "non-numeric"),
    (" 1  C3 - C3                1.5d77     4.4900     0.0000  0000 0000", "non-numeric"),
    (" 1  C3 - C3 - C3           1.5177     4.4900     0.0000  0000 0000", "needs 2 atoms"),
    (" 2  C3 - C3 - C3         109.4700", "needs 2 to 3 numeric"),
    (" Q  C3 - C3                1.5177     4.4900     0.0000  0000 0000", "unknown interaction"),
    (" 1                                                       O200 0000", "continuation"),
    (" 1  C3 - C3                1.5177     4.4900     0.0000  0000 0000 junkword", "unexpected"),
    ("-7", "unknown format"),
    (" 1  C3 - C3                1.5177     4.4900     0.0000  0000", "descriptors for 2 atoms"),
]


@pytest.mark.parametrize("line,message", BAD_LINES)
def test_malformed_lines_name_file_and_line(line, message):
    text = f"title\n-1\n 0    STR     3      601.99392\n-2\n C comment\n{line}\n"
    with pytest.raises(ParseError, match=message) as err:
        parse_fld(text, "broken.fld")
    assert err.value.path == "broken.fld" and err.value.line == 6


def test_truncated_substructure_and_bad_vdw_row_are_errors():
    with pytest.raises(ParseError, match="pattern line") as err:
        parse_fld("t\n-3\n C  Ring\n-2\n", "x.fld")
    assert_names(err, "x.fld", 4)  # the -2 line
    with pytest.raises(ParseError, match="ends inside a substructure") as err:
        parse_fld("t\n-3\n C  Ring\n", "x.fld")
    assert err.value.line == 4
    with pytest.raises(ParseError, match="non-numeric van der Waals") as err:
        parse_fld("t\n-6\n  C1     1.9400     0.05x0     0.0000        0000    O 2\n", "x.fld")
    assert err.value.line == 3
    with pytest.raises(ParseError, match="out of range") as err:
        parse_fld("t\n-3\n C  Pair\n 9  C3-C3\n-2\n 1   1   3     1.5000     4.0000\n", "x.fld")
    assert_names(err, "x.fld", 6)  # pattern atom 3 of a 2-atom pattern


# --- assignment on a hand-made force field ------------------------------------------------------

TOY = """toy MM3* file
-1
 0    STR     3      601.99392
-5
 1  HX  H1 H2
-2
 1  C3 - C3                1.5000     4.0000     0.0000  O300 0000
 1  C3 - C3                1.5300     4.4000     0.0000  0000 0000
 1  C3 - HX                1.1000     4.7000    -0.5000  0000 0000
 1  O3 - C3                1.4100     5.0000    -1.0000  0000 0000
 1  O3 - H2                0.9500     7.0000    -1.5000  0000 0000
 2  00 - C3 - 00         109.5000     0.5000     0.0000  0000 0000 0000
 2  C3 - O3 - H2         106.0000     0.6000     0.0000  0000 0000 0000
 4  00 - C3 - C3 - 00      0.0000     0.0000     0.2000  0000 0000 0000 0000
 4  00 - C3 - O3 - 00      0.0000     0.0000     0.5000  0000 0000 0000 0000
-6
  C3     2.0400     0.0270     0.0000                                   0000    O 1
  H1     1.6200     0.0200    -0.0770                                   0000    O 1
  H2     1.6000     0.0160     0.0000                                   0000    O 1
  O3     1.8200     0.0590     0.0000                                   0000    O 1
 END OF NONBONDED INTERACTIONS
-3
 C  Ethanol core OPT
 9  C3-C3-O3
-2
aA   1   2   3           110.0000     5.0000
 1   1   2                 1.5100     4.5000
a1   1   2                 1.4000     4.5000
 4  00   1   2  00         0.0000     0.0000     1.2000
"""


def _ethanol(types=("C3", "C3", "O3", "H1", "H1", "H1", "H1", "H1", "H2")) -> Molecule:
    xyz = np.array([[0.0, 0.0, 0.0], [1.52, 0.0, 0.0], [2.0, 1.34, 0.0], [-0.36, 1.02, 0.0],
                    [-0.36, -0.51, 0.88], [-0.36, -0.51, -0.88], [1.88, -0.51, 0.88],
                    [1.88, -0.51, -0.88], [2.95, 1.30, 0.0]])
    bonds = [(0, 1), (1, 2), (0, 3), (0, 4), (0, 5), (1, 6), (1, 7), (2, 8)]
    return Molecule.from_arrays(["C", "C", "O", "H", "H", "H", "H", "H", "H"], xyz, bonds=bonds,
                                atom_types=types, name="ethanol")


def test_assignment_descriptors_equivalences_wildcards_and_substructure():
    fld = parse_fld(TOY, "toy.fld")
    mol = _ethanol()
    orders = [(a, b, 1) for a, b in mol.bonds]
    a = assign_parameters(fld, mol, orders)
    # C-C: C1 carries the O3 descriptor -> substructure wins over it (line 26 or the 'a' line)
    cc = next(s for s in a.stretches if set(s.atoms) == {0, 1})
    # angle C-C-O at the geometry: 109.6 deg, within 5 of 110 -> the 'a' alternative applies
    assert fld.record(cc.line).alt == "a" and fld.record(cc.line).values[0] == 1.40
    ch = [s for s in a.stretches if 3 in s.atoms]
    assert fld.record(ch[0].line).atoms == ("C3", "HX")  # HX equivalence matches H1
    oh = next(s for s in a.stretches if 8 in s.atoms)
    assert fld.record(oh.line).atoms == ("O3", "H2") and oh.atoms == (2, 8)
    assert all(fld.record(b.line).atoms[0] == "00" for b in a.bends if b.atoms[1] == 0)
    assert len(a.torsions) == 9 + 3  # 3 x 3 about C-C, 3 x 1 about C-O, all by wildcard lines
    # charges from bond moments: q(H on O) = +1.5 / (4.8032 * 0.95)
    assert a.charges[8] == pytest.approx(1.5 / (4.803204712570264 * 0.95), rel=1e-9)
    assert a.charges.sum() == pytest.approx(0.0, abs=1e-12)
    # '4 00 1 2 00' is shared by the 9 torsions about C-C: each gets V3 / 9
    cc_tors = [t for t in a.torsions if {t.atoms[1], t.atoms[2]} == {0, 1}]
    assert len(cc_tors) == 9 and all(fld.record(t.line).values[2] == 1.2 and t.divisor == 9
                                     for t in cc_tors)
    # force field: the OPT substructure's values trainable, in q2jax units
    m = build_mm3_forcefield(fld, [mol], [a])
    ff = m.forcefield
    assert ff.form == "mm3" and sorted(ff.kinds) == ["bond_eq", "bond_k", "torsion_v1",
                                                     "torsion_v2", "torsion_v3"]
    assert ff.value("torsion_v3", ("00", "C3:1", "C3:2", "00")) == pytest.approx(1.2 / 9)
    assert ff.value("bond_k", ("C3", "HX")) == pytest.approx(4.7 * MM3_STRETCH_UNIT)
    assert ff.value("angle_k", ("00", "C3", "00")) == pytest.approx(0.5 * MM3_BEND_UNIT)
    # writing back the unchanged force field reproduces the file
    assert m.to_fld().text() == fld.text()
    moved = m.to_fld(ff.with_params(ff.params * 2.0))
    assert moved.record(cc.line).values[:2] == (2.8, 9.0)
    assert moved.record(cc_tors[0].line).values == (0.0, 0.0, 2.4)  # the file's V, not V / 9


def test_missing_parameter_names_the_atoms():
    fld = parse_fld(TOY, "toy.fld")
    mol = _ethanol(("C3", "C3", "O3", "H1", "H1", "H1", "H1", "H1", "H9"))
    with pytest.raises(ParameterError, match=r"toy.fld has no parameters for .*H99") as err:
        assign_parameters(fld, mol, [(a, b, 1) for a, b in mol.bonds])
    assert "vdW row for H99" in str(err.value) and "'ethanol'" in str(err.value)
