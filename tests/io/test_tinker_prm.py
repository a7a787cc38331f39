"""Tinker .prm read/write: round trips (both forms), the written syntax against
Tinker's documented keywords and columns, unit facts, and bad input.

The energy check of the unit factors (a pure-Python Tinker energy evaluated
from the written files) is in tests/adapters/test_tinker.py.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

from q2jax import ForceField, Molecule
from q2jax.errors import ParameterError, ParseError, TopologyError
from q2jax.forcefield import Settings
from q2jax.io.tinker_prm import (
    KEYS_MARKER,
    format_tinker_prm,
    parse_tinker_prm,
    read_tinker_prm,
    tinker_atom_types,
    write_tinker_prm,
)

FAMILIES = ("bond", "angle", "torsion", "improper", "stretch_bend", "vdw", "charge")

# Keywords of Tinker parameter files (Tinker source/readprm.f and source/prmkey.f).
TINKER_KEYWORDS = {
    "forcefield", "bondunit", "bond-cubic", "bond-quartic", "angleunit", "angle-cubic",
    "angle-quartic", "angle-pentic", "angle-sextic", "strbndunit", "opbendtype", "opbendunit",
    "opbend-cubic", "opbend-quartic", "opbend-pentic", "opbend-sextic", "torsionunit",
    "vdwindex", "vdwtype", "radiusrule", "radiustype", "radiussize", "epsilonrule",
    "a-expterm", "b-expterm", "c-expterm", "vdw-12-scale", "vdw-13-scale", "vdw-14-scale",
    "chg-12-scale", "chg-13-scale", "chg-14-scale", "electric", "dielectric",
    "atom", "bond", "angle", "strbnd", "opbend", "torsion", "vdw", "charge",
}
INT = r"-?\d+"
REAL = r"-?\d+\.\d+"  # written numbers are plain decimals (no exponent)
# Documented columns of each parameter line (Tinker's readprm.f list-directed reads).
LINE_FORMATS = {
    "atom": rf'atom\s+{INT}\s+{INT}\s+[A-Z][a-z]?\s+"[^"]{{1,24}}"\s+{INT}\s+{REAL}\s+{INT}',
    "bond": rf"bond(\s+{INT}){{2}}(\s+{REAL}){{2}}",
    "angle": rf"angle(\s+{INT}){{3}}(\s+{REAL}){{2}}",
    "strbnd": rf"strbnd(\s+{INT}){{3}}(\s+{REAL}){{2}}",
    "opbend": rf"opbend(\s+{INT}){{4}}\s+{REAL}",
    "torsion": rf"torsion(\s+{INT}){{4}}\s+{REAL}\s+0\.0\s+1\s+{REAL}\s+180\.0\s+2\s+{REAL}"
               r"\s+0\.0\s+3",
    "vdw": rf"vdw\s+{INT}\s+{REAL}\s+{REAL}",
    "charge": rf"charge\s+{INT}\s+{REAL}",
}


def _ch3f(data_dir) -> Molecule:
    rows = (data_dir / "ch3f" / "ch3f-optimized.xyz").read_text().splitlines()[2:7]
    return Molecule.from_arrays([r.split()[0] for r in rows],
                                [[float(x) for x in r.split()[1:4]] for r in rows], name="ch3f")


def _ethane(data_dir) -> Molecule:
    text = (data_dir / "ethane-gs" / "GS.mol2").read_text()
    atoms = text.split("@<TRIPOS>ATOM")[1].split("@<TRIPOS>")[0].split("\n")
    rows = [r.split() for r in atoms if r.strip()]
    bonds = text.split("@<TRIPOS>BOND")[1].split("\n")
    pairs = [(int(b.split()[1]) - 1, int(b.split()[2]) - 1) for b in bonds if b.strip()]
    return Molecule.from_arrays([r[1] for r in rows], [[float(x) for x in r[2:5]] for r in rows],
                                atom_types=[r[5] for r in rows], bonds=pairs, name="ethane")


def _planar(center: str, nbrs: tuple[str, str, str], types=None, name="planar") -> Molecule:
    """A planar trivalent centre with bonds at 0/120/240 degrees (lengths 1.1-1.3)."""
    xyz = [[0.0, 0.0, 0.0]]
    for k, r in enumerate((1.3, 1.1, 1.2)):
        a = math.radians(120.0 * k + (3.0 if k == 2 else 0.0))
        xyz.append([r * math.cos(a), r * math.sin(a), 0.0])
    return Molecule.from_arrays((center,) + nbrs, xyz, bonds=[(0, 1), (0, 2), (0, 3)],
                                atom_types=types, name=name)


def perturbed(ff: ForceField, seed: int = 0) -> ForceField:
    """Every parameter set to a distinct, physically plausible non-default value."""
    rng = np.random.default_rng(seed)
    vals = ff.as_dict()
    new = {}
    for e in ff.entries:
        v = vals[e.label]
        new[(e.kind, e.key)] = {
            "bond_k": lambda: rng.uniform(200, 600),
            "bond_eq": lambda v=v: v * rng.uniform(0.98, 1.02),
            "angle_k": lambda: rng.uniform(40, 120),
            "angle_eq": lambda v=v: v + rng.uniform(-3, 3),
            "torsion_v1": lambda: rng.uniform(-2, 2),
            "torsion_v2": lambda: rng.uniform(-2, 2),
            "torsion_v3": lambda: rng.uniform(-2, 2),
            "improper_k": lambda: rng.uniform(5, 40),
            "stretch_bend_k": lambda: rng.uniform(-30, 30),
            "vdw_radius": lambda: rng.uniform(1.4, 2.2),
            "vdw_epsilon": lambda: rng.uniform(0.02, 0.2),
            "charge": lambda: rng.uniform(-0.4, 0.4),
        }[e.kind]()
    return ff.with_values(new)


def full_ff(mol: Molecule, form: str, seed: int = 0) -> ForceField:
    return perturbed(ForceField.from_molecules([mol], form, families=FAMILIES), seed)


def assert_same_ff(a: ForceField, b: ForceField, rtol: float = 1e-13) -> None:
    da, db = a.as_dict(), b.as_dict()
    assert set(da) == set(db)
    for k in da:
        assert db[k] == pytest.approx(da[k], rel=rtol, abs=1e-15), k
    assert a.form == b.form
    assert a.settings == pytest.approx(b.settings, rel=1e-15)


@pytest.fixture(scope="module")
def ch3f(data_dir):
    return _ch3f(data_dir)


@pytest.fixture(scope="module")
def ethane(data_dir):
    return _ethane(data_dir)


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["mm3", "harmonic"])
@pytest.mark.parametrize("which", ["ch3f", "ethane"])
def test_round_trip_keeps_every_parameter(which, form, ch3f, ethane, tmp_path):
    mol = {"ch3f": ch3f, "ethane": ethane}[which]
    ff = full_ff(mol, form)
    kinds = {e.kind for e in ff.entries}
    assert {"bond_k", "angle_eq", "stretch_bend_k", "vdw_radius", "charge"} <= kinds
    if which == "ethane":
        assert {"torsion_v1", "torsion_v2", "torsion_v3"} <= kinds
    path = write_tinker_prm(ff, tmp_path / f"{which}.prm", molecules=[mol])
    back = read_tinker_prm(path)
    assert back.skipped == ()
    assert_same_ff(ff, back.forcefield)
    assert back.type_numbers == {a.description: a.type for a in tinker_atom_types(ff, [mol])}


def test_round_trip_keeps_nondefault_settings(ch3f):
    ff = full_ff(ch3f, "harmonic")
    ff = ForceField(ff.params, ff.fixed, ff.entries, ff.form, Settings(0.4, 0.7, 2.5))
    assert_same_ff(ff, parse_tinker_prm(format_tinker_prm(ff)).forcefield)


@pytest.mark.parametrize("form", ["mm3", "harmonic"])
def test_round_trip_out_of_plane(form):
    """Impropers become one opbend line per distinct neighbour type and come back."""
    bf3 = _planar("B", ("F", "F", "F"), name="bf3")
    h2co = _planar("C", ("O", "H", "H"), name="h2co")
    for mol, n_lines in ((bf3, 1), (h2co, 2)):
        ff = perturbed(ForceField.from_molecules([mol], form, families=("bond", "angle",
                                                                        "improper")))
        assert any(e.kind == "improper_k" for e in ff.entries)
        text = format_tinker_prm(ff)
        assert sum(ln.startswith("opbend ") for ln in text.splitlines()) == n_lines
        assert_same_ff(ff, parse_tinker_prm(text).forcefield)


@pytest.mark.parametrize("form", ["mm3", "harmonic"])
def test_round_trip_urey_bradley(ch3f, form):
    """Urey-Bradley 1-3 terms (q2jax's TS force fields) become ``ureybrad`` lines in
    Tinker's units (kcal/mol/A^2, A; ureyunit 1) and come back unchanged."""
    ff = ForceField.from_molecules([ch3f], form, families=("bond", "angle", "urey_bradley"))
    ff = ff.with_values({(e.kind, e.key): 37.5 for e in ff.entries if e.kind == "ub_k"})
    assert {"ub_k", "ub_eq"} <= {e.kind for e in ff.entries}
    text = format_tinker_prm(ff)
    rows = [ln.split() for ln in text.splitlines() if ln.startswith("ureybrad")]
    assert len(rows) == 2  # F-C-H and H-C-H
    assert all(float(r[4]) == pytest.approx(37.5) for r in rows)
    assert all(1.7 < float(r[5]) < 2.5 for r in rows)  # 1-3 distances of CH3F, A
    assert_same_ff(ff, parse_tinker_prm(text).forcefield)


def test_class_keys_mode_reads_numbers(ch3f):
    ff = full_ff(ch3f, "mm3")
    back = parse_tinker_prm(format_tinker_prm(ff), keys="class").forcefield
    nums = {a.description: str(a.cls) for a in tinker_atom_types(ff)}
    assert back.value("bond_k", (nums["C"], nums["F"])) == pytest.approx(ff.value("bond_k",
                                                                                  ("C", "F")))
    assert back.value("charge", (nums["H"],)) == pytest.approx(ff.value("charge", ("H",)))


# --- the written text against Tinker's documented format --------------------------------


@pytest.mark.parametrize("form", ["mm3", "harmonic"])
def test_written_lines_follow_tinker_syntax(form, ethane):
    ff = full_ff(ethane, form)
    text = format_tinker_prm(ff, molecules=[ethane])
    assert KEYS_MARKER in text.splitlines()
    counts: dict[str, int] = {}
    for ln in text.splitlines():
        assert len(ln) <= 240  # Tinker reads 240 characters of a line
        if not ln.strip() or ln.startswith("#"):
            continue
        word = ln.split()[0]
        assert word in TINKER_KEYWORDS, ln
        counts[word] = counts.get(word, 0) + 1
        if word in LINE_FORMATS:
            assert re.fullmatch(LINE_FORMATS[word], ln.strip()), ln
        else:
            assert len(ln.split()) == 2, ln  # header keyword and one value
    header = TINKER_KEYWORDS - set(LINE_FORMATS)
    if form == "harmonic":
        header -= {"a-expterm", "b-expterm", "c-expterm"}
    # C3-C3 and C3-HC bonds, two angles and stretch-bends, one torsion, two atom types
    assert counts == {**dict.fromkeys(header, 1), "atom": 2, "bond": 2, "angle": 2,
                      "strbnd": 2, "torsion": 1, "vdw": 2, "charge": 2}


def _header(text: str) -> dict[str, str]:
    return {ln.split()[0]: ln.split()[1] for ln in text.splitlines()
            if ln.strip() and not ln.startswith("#") and len(ln.split()) == 2}


def test_mm3_header_has_mm3_constants(ch3f):
    """MM3 as Tinker keywords; angle-sextic 2.2e-8 as in Tinker's distributed mm3.prm
    (Allinger 1989 printed 9e-10; see q2jax.terms.bend)."""
    h = _header(format_tinker_prm(full_ff(ch3f, "mm3")))
    want = {"bondunit": 71.94, "bond-cubic": -2.55, "bond-quartic": 3.793125,
            "angleunit": 0.021914, "angle-cubic": -0.014, "angle-quartic": 0.000056,
            "angle-pentic": -0.0000007, "angle-sextic": 0.000000022, "strbndunit": 2.51118,
            "opbendunit": 0.021914, "torsionunit": 0.5, "a-expterm": 184000.0,
            "b-expterm": 12.0, "c-expterm": 2.25, "vdw-14-scale": 1.0, "chg-14-scale": 1.0,
            "dielectric": 1.5, "opbend-cubic": 0.0, "opbend-sextic": 0.0}
    for k, v in want.items():
        assert float(h[k]) == v, k
    assert float(h["bond-quartic"]) == pytest.approx(7.0 / 12.0 * 2.55**2, rel=1e-15)
    assert h["vdwtype"] == "BUCKINGHAM" and h["opbendtype"] == "W-D-C"
    assert (h["radiusrule"], h["radiustype"], h["radiussize"], h["epsilonrule"]) == (
        "ARITHMETIC", "R-MIN", "RADIUS", "GEOMETRIC")
    # CODATA e^2/(4 pi eps0) in kcal Å/mol, as q2jax's Coulomb term
    assert float(h["electric"]) == pytest.approx(332.0637133, rel=1e-9)


def test_harmonic_header_is_amber_like(ch3f):
    h = _header(format_tinker_prm(full_ff(ch3f, "harmonic")))
    assert float(h["bondunit"]) == 1.0 and float(h["torsionunit"]) == 1.0
    assert float(h["angleunit"]) == (math.pi / 180.0) ** 2
    assert float(h["strbndunit"]) == math.pi / 180.0
    assert h["vdwtype"] == "LENNARD-JONES"
    assert float(h["vdw-14-scale"]) == 0.5 and float(h["chg-14-scale"]) == 1 / 1.2
    for k in ("bond-cubic", "bond-quartic", "angle-cubic", "angle-sextic"):
        assert float(h[k]) == 0.0


def test_mm3_values_are_in_mdyn_units(ch3f):
    """k_internal = 71.94 k_s (stretch), 0.021914 (180/pi)^2 k_b (bend),
    2.51118 (180/pi) k_sb (stretch-bend): the prm shows the mdyn values."""
    ff = full_ff(ch3f, "mm3").with_values({
        ("bond_k", ("C", "F")): 71.94 * 5.25,
        ("angle_k", ("F", "C", "H")): 0.021914 * (180 / math.pi) ** 2 * 0.65,
        ("stretch_bend_k", ("F", "C", "H")): 2.51118 * 180 / math.pi * 0.125,
    })
    nums = {a.description: str(a.cls) for a in tinker_atom_types(ff)}
    rows = {}
    for ln in format_tinker_prm(ff).splitlines():
        toks = ln.split()
        if toks and toks[0] in ("bond", "angle", "strbnd"):
            n = 3 if toks[0] == "bond" else 4
            rows[tuple(toks[:n])] = toks[n:]
    c, f, h = nums["C"], nums["F"], nums["H"]
    assert float(rows[("bond", c, f)][0]) == pytest.approx(5.25, rel=1e-14)
    assert float(rows[("angle", f, c, h)][0]) == pytest.approx(0.65, rel=1e-14)
    sb = rows[("strbnd", f, c, h)]
    assert float(sb[0]) == pytest.approx(0.125, rel=1e-14) and sb[0] == sb[1]


def test_torsion_amplitudes_follow_torsionunit(ethane):
    """MM3 (torsionunit 0.5): amplitude = V_n; harmonic (torsionunit 1): V_n / 2."""
    for form, factor in (("mm3", 1.0), ("harmonic", 0.5)):
        ff = full_ff(ethane, form)
        (line,) = [ln.split() for ln in format_tinker_prm(ff).splitlines()
                   if ln.startswith("torsion ")]
        key = ("HC", "C3", "C3", "HC")
        for j, kind in enumerate(("torsion_v1", "torsion_v2", "torsion_v3")):
            assert float(line[5 + 3 * j]) == pytest.approx(factor * ff.value(kind, key),
                                                           rel=1e-14)


# --- reading Tinker's own MM3 header -------------------------------------------------------

# The header of Tinker's params/mm3.prm (TinkerTools/tinker, 2026) and a few
# parameter lines in its layout (classes 1 CSP3 ALKANE, 5 H; values illustrative).
TINKER_MM3 = """
forcefield              MM3-2000

bondunit                71.94
bond-cubic              -2.55
bond-quartic            3.793125     !! (7/12)*bond-cubic^2
angleunit               0.02191418
angle-cubic             -0.014
angle-quartic           0.000056
angle-pentic            -0.0000007
angle-sextic            0.000000022
strbndunit              2.51118
angangunit              -0.02191418
opbendtype              ALLINGER
opbendunit              0.02191418
opbend-cubic            -0.014
opbend-quartic          0.000056
opbend-pentic           -0.0000007
opbend-sextic           0.000000022
torsionunit             0.5
strtorunit              -5.9975
vdwtype                 MM3-HBOND
radiusrule              ARITHMETIC
radiustype              R-MIN
radiussize              RADIUS
epsilonrule             GEOMETRIC
a-expterm               184000.0
b-expterm               12.0
c-expterm               2.25
vdw-14-scale            1.0
chg-14-scale            1.0
electric                332.0538
dielectric              1.5

N. L. Allinger, Y. H. Yuh and J.-H. Lii, "Molecular Mechanics.

atom          1    C     "CSP3 ALKANE"                  6    12.000    4
atom          5    H     "EXCEPT ON N,O,S"              1     1.008    1

vdw           1               2.0400     0.0270
vdw           5               1.6200     0.0200      0.923

bond          1    1          4.4900     1.5247
bond          1    5          4.7400     1.1120

angle         1    1    1     0.6700   109.50   110.40   111.80
angle         1    1    5     0.5900   109.80   109.31   110.70
angle         5    1    5     0.5500   107.70

strbnd        1    1    1     0.1800   0.1800
torsion       1    1    1    1      0.185 0.0 1   0.170 180.0 2   0.520 0.0 3
torsion       5    1    1    5      0.000 0.0 1   0.000 180.0 2   0.280 0.0 3
"""


def test_tinker_mm3_header_is_flagged_strict():
    with pytest.raises(ParseError, match="angleunit|vdwtype|electric|opbend") as err:
        parse_tinker_prm(TINKER_MM3, source="mm3.prm")
    assert err.value.path == "mm3.prm"
    word = str(err.value).split(": ")[1]  # the keyword at fault, on its own line
    assert TINKER_MM3.splitlines()[err.value.line - 1].split()[0] == word


def test_tinker_mm3_reads_leniently_with_units():
    with pytest.warns(UserWarning, match="skipped"):
        prm = parse_tinker_prm(TINKER_MM3, source="mm3.prm", strict=False)
    ff = prm.forcefield
    assert ff.form == "mm3" and ff.settings == Settings(1.0, 1.0, 1.5)
    reasons = {kw for _, kw, _ in prm.skipped}
    assert {"opbendtype", "opbend-cubic", "vdwtype", "electric", "vdw", "angle"} <= reasons
    assert "angle-sextic" not in reasons  # q2jax uses Tinker's 2.2e-8
    # converted with the file's own units (angleunit 0.02191418 per deg^2)
    assert ff.value("bond_k", ("1", "5")) == pytest.approx(71.94 * 4.74, rel=1e-14)
    assert ff.value("angle_k", ("5", "1", "5")) == pytest.approx(
        0.02191418 * (180 / math.pi) ** 2 * 0.55, rel=1e-14)
    assert ff.value("angle_eq", ("5", "1", "5")) == 107.70
    assert ff.value("stretch_bend_k", ("1", "1", "1")) == pytest.approx(
        2.51118 * 180 / math.pi * 0.18, rel=1e-14)
    assert ff.value("torsion_v3", ("1", "1", "1", "1")) == pytest.approx(0.52, rel=1e-14)
    assert ff.value("torsion_v2", ("1", "1", "1", "1")) == pytest.approx(0.17, rel=1e-14)
    assert ff.value("vdw_radius", ("1",)) == 2.04
    assert not ff.has("vdw_radius", ("5",))  # reduction factor 0.923 cannot be represented
    assert not ff.has("angle_k", ("1", "1", "1"))  # ideal angle depends on attached H


# --- bad input -------------------------------------------------------------------------------


def _own_text(ch3f) -> str:
    return format_tinker_prm(full_ff(ch3f, "mm3"))


def _lineno(text: str, prefix: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith(prefix))


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ("bond ", "bond 1 2 x.5 1.1\n#", "expected a number"),
        ("bond ", "bond 1 2 4.5\n#", "needs 2 atom classes and 2 numbers"),
        ("bond ", "bond 1 9 4.5 1.1\n#", "atom class 9, which no atom line defines"),
        ("bond ", "bond 1 2 nan 1.1\n#", "expected a number"),
        ("strbnd ", "strbnd 2 1 3 0.1 0.2\n#", "two different constants"),
        ("vdw ", "vdw 1 1.8 0.05 0.92\n#", "reduction factor"),
        ("charge ", "hbond 1 2 3.0 4.0\n#", "no q2jax equivalent"),
        ("atom ", 'atom 7 7 C "C3 with no end quote 6 12.0 4\n#', "atom line must be"),
    ],
)
def test_bad_lines_name_file_and_line(ch3f, old, new, match):
    text = _own_text(ch3f)
    no = _lineno(text, old)
    lines = text.splitlines()
    lines[no - 1] = new + lines[no - 1]
    bad = "\n".join(lines)
    with pytest.raises(ParseError, match=match) as info:
        parse_tinker_prm(bad, source="bad.prm")
    assert info.value.path == "bad.prm"
    assert info.value.line == no


def test_bad_or_missing_header_values_name_a_line(ch3f):
    """A non-numeric unit is an error at its line; an absent keyword whose Tinker
    default differs from the form is reported at the last line read (found by the
    fuzz test: both used to escape as a bare ValueError or with no line)."""
    text = _own_text(ch3f)
    lines = text.splitlines()
    no = _lineno(text, "angleunit")
    lines[no - 1] = "angleunit    0.02x"
    with pytest.raises(ParseError, match="expected a number for angleunit") as info:
        parse_tinker_prm("\n".join(lines), source="h.prm")
    assert (info.value.path, info.value.line) == ("h.prm", no)
    lines = [ln for ln in text.splitlines() if not ln.startswith("vdwtype")]
    with pytest.raises(ParseError, match="vdwtype: not set .*LENNARD-JONES") as info:
        parse_tinker_prm("\n".join(lines), source="h.prm")
    assert info.value.line == len(lines)


def test_duplicate_parameter_names_both_lines(ch3f):
    text = _own_text(ch3f)
    bond = next(ln for ln in text.splitlines() if ln.startswith("bond "))
    toks = bond.split()
    flipped = f"bond {toks[2]} {toks[1]} {toks[3]} {toks[4]}"
    with pytest.raises(ParseError, match="defined twice") as info:
        parse_tinker_prm(text + flipped + "\n", source="dup.prm")
    assert info.value.line == len(text.splitlines()) + 1


@pytest.mark.parametrize(
    ("torsion", "match"),
    [
        ("0.5 0.0 1 0.3 0.0 2 0.0 0.0 3", r"phase 0.0 for n=2"),
        ("0.5 180.0 1", r"phase 180.0 for n=1"),
        ("0.0 0.0 1 0.0 180.0 2 0.0 0.0 3 0.4 0.0 4", "periodicity 4"),
        ("0.5 0.0 1 0.3 180.0", "triples"),
    ],
)
def test_unrepresentable_torsions(ethane, torsion, match):
    text = format_tinker_prm(full_ff(ethane, "harmonic"), molecules=[ethane])
    lines = text.splitlines()
    no = _lineno(text, "torsion ")
    lines[no - 1] = " ".join(lines[no - 1].split()[:5]) + " " + torsion
    with pytest.raises(ParseError, match=match) as info:
        parse_tinker_prm("\n".join(lines), source="t.prm")
    assert info.value.line == no
    if "triples" not in match:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lenient = parse_tinker_prm("\n".join(lines), strict=False)
        assert not lenient.forcefield.has("torsion_v1", ("HC", "C3", "C3", "HC"))


def test_incomplete_opbend_set_is_rejected():
    mol = _planar("C", ("O", "H", "H"))
    text = format_tinker_prm(perturbed(ForceField.from_molecules([mol], "harmonic",
                                                                 families=("bond", "angle",
                                                                           "improper"))))
    first = _lineno(text, "opbend ")
    lines = text.splitlines()
    del lines[first - 1]
    with pytest.raises(ParseError, match="one equal constant for each distinct neighbour") as err:
        parse_tinker_prm("\n".join(lines), source="ob.prm")
    assert (err.value.path, err.value.line) == ("ob.prm", first)  # the remaining opbend line


def test_missing_file_is_a_parse_error(tmp_path):
    with pytest.raises(ParseError, match="cannot read") as err:
        read_tinker_prm(tmp_path / "absent.prm")
    assert err.value.path == str(tmp_path / "absent.prm")  # no line: there is no file


def test_writer_rejects_what_tinker_cannot_hold(ch3f):
    ff = full_ff(ch3f, "harmonic")
    long_key = ch3f.with_atom_types(["C", "F", "H" * 30, "H" * 30, "H" * 30])
    with pytest.raises(ParameterError, match="Tinker atom description"):
        format_tinker_prm(ForceField.from_molecules([long_key]), molecules=[long_key])
    only_k = ForceField.from_entries([("bond_k", ("C", "F"), 300.0)])
    with pytest.raises(ParameterError, match="bond C-F eq"):
        format_tinker_prm(only_k)
    neg = ff.with_values({("vdw_epsilon", ("F",)): -0.1})
    with pytest.raises(ParameterError, match="negative"):
        format_tinker_prm(neg)
    odd = ForceField.from_entries([("bond_k", ("Q1", "Q2"), 1.0), ("bond_eq", ("Q1", "Q2"), 1.0)])
    with pytest.raises(ParameterError, match="cannot infer the element"):
        format_tinker_prm(odd)
    mixed = ch3f.with_atom_types(["X", "X", "H", "H", "H"])
    with pytest.raises(TopologyError, match="used by elements"):
        tinker_atom_types(ForceField.from_molecules([mixed]), [mixed])
