"""Tinker parameter files (``.prm``) for q2jax force fields, read and write.

A written file is a self-contained Tinker force field whose energy is the
q2jax energy of the same form. Its header states every unit and functional
constant explicitly (Tinker's defaults are never relied on), parameters are
written with shortest round-trip precision, and atom types are numbered
1, 2, ... (Tinker type = class); the q2jax atom-type key is the ``atom``
line's quoted description, and a marker comment tells the reader so.

Tinker energy terms (facts from Tinker's ``eangle.f``, ``estrbnd.f``,
``eopbend.f``, ``etors.f``, ``ebuck.f``, ``elj.f``, ``kvdw.f``; d = deviation
in degrees) and their q2jax equivalents:

- ``bond``:   E = bondunit K dr^2 (1 + cubic dr + quartic dr^2)  -> k = bondunit K
- ``angle``:  E = angleunit K d^2 (1 + c3 d + c4 d^2 + c5 d^3 + c6 d^4)
  -> k (kcal/mol/rad^2) = angleunit K (180/pi)^2
- ``strbnd``: E = strbndunit (K1 dr1 + K2 dr2) d -> k = strbndunit K (180/pi), K1 = K2 = K
- ``ureybrad``: E = ureyunit K (d13 - d0)^2 (urey-cubic/quartic 0) -> k = ureyunit K
- ``torsion``: E = torsionunit sum_n A_n (1 + cos(n phi - phase_n)) -> with phases
  0/180/0 this is V1/2 (1 + cos phi) + V2/2 (1 - cos 2phi) + V3/2 (1 + cos 3phi), V_n =
  2 torsionunit A_n
- ``vdw``: R-MIN radii summed (ARITHMETIC, RADIUS) and GEOMETRIC well depths, as
  q2jax; LENNARD-JONES eps [(r*/r)^12 - 2 (r*/r)^6] (harmonic form) or BUCKINGHAM
  eps [a exp(-b r/r*) - c (r*/r)^6] (MM3 form). Tinker switches BUCKINGHAM to an
  r^-12 wall below r = r*/2; q2jax does not (no difference at ordinary distances).
- ``charge``: E = electric q_i q_j / (dielectric r), 1-4 pairs times chg-14-scale.
- ``opbend`` (opbendtype W-D-C): one term per neighbour D of a trivalent centre B,
  E = opbendunit K chi_D^2 (degrees), chi_D the angle between bond B-D and the
  plane of B and its other two neighbours. q2jax's out-of-plane term is
  k (mean signed chi)^2 over the three neighbours. It is written as K = k/3 per
  neighbour, which is exact only when the three Wilson angles are equal (e.g. the
  umbrella motion of a symmetric centre, and the Hessian at any planar centre
  whose neighbours are symmetry-equivalent); otherwise the two energies differ.

Written headers (``tinker_header``) for form ``"mm3"`` use q2jax's MM3 constants:
bondunit 71.94, bond-cubic -2.55, bond-quartic 3.793125 (= 7/12 2.55^2),
angleunit 0.021914, angle cubic..sextic -0.014, 5.6e-5, -7e-7, 2.2e-8 (the sextic as
in Tinker's mm3.prm and MacroModel MM3*), strbndunit 2.51118, torsionunit 0.5, vdwtype
BUCKINGHAM with a, b, c = 184000, 12, 2.25, 1-4 scales 1, dielectric 1.5. Tinker's own
``params/mm3.prm`` differs in angleunit (0.02191418), vdwtype (MM3-HBOND), electric
(332.0538) and opbendtype (ALLINGER with MM3's sextic opbend polynomial): reading
that file is possible with ``strict=False``, which warns about each difference.
Form ``"harmonic"`` is AMBER-like: bondunit 1, angleunit (pi/180)^2, strbndunit
pi/180, torsionunit 1, LENNARD-JONES, 1-4 scales from the force field's settings.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from q2jax import elements
from q2jax.errors import ParameterError, ParseError, TopologyError
from q2jax.forcefield import ForceField, Settings
from q2jax.params import KINDS, canonical_key, label
from q2jax.terms.bend import MM3_BEND_C3, MM3_BEND_C4, MM3_BEND_C5, MM3_BEND_C6
from q2jax.terms.stretch import MM3_CUBIC, MM3_QUARTIC
from q2jax.terms.vdw import MM3_VDW_A, MM3_VDW_B, MM3_VDW_C
from q2jax.units import (
    COULOMB_KCAL_MOL_A,
    DEG_TO_RAD,
    MM3_BEND_UNIT_DEG,
    MM3_STRETCH_BEND_UNIT,
    MM3_STRETCH_UNIT,
    RAD_TO_DEG,
)

KEYS_MARKER = "# q2jax-atom-keys: description"
MAX_LINE = 240  # Tinker reads at most 240 characters of a parameter line
MAX_DESCRIPTION = 24  # Tinker's atom description field (character*24)

# Tinker's parameter keywords (readprm.f); the ones q2jax reads are handled, the
# others make a file unrepresentable (strict) or are skipped with a warning.
_READ = {"atom", "bond", "angle", "strbnd", "ureybrad", "opbend", "torsion", "vdw", "charge"}
_HARMLESS = {"biotype", "echo"}
_UNSUPPORTED = {
    "angang", "angcflux", "angle3", "angle4", "angle5", "anglef", "anglep", "angtors",
    "bndcflux", "bond3", "bond4", "bond5", "chgpen", "chgtrn", "dipole", "dipole3",
    "dipole4", "dipole5", "dispersion", "electneg", "exchpol", "hbond", "improper",
    "imptors", "metal", "multipole", "opdist", "piatom", "pibond", "pibond4", "pibond5",
    "pitors", "polarize", "polpair", "repulsion", "solute", "strtors", "torsion4",
    "torsion5", "tortors", "vdw14", "vdwpair", "vdwpr",
}
# Tinker defaults (initprm.f) of the header keywords q2jax interprets.
_DEFAULTS: dict[str, str] = {
    "bondunit": "1.0", "bond-cubic": "0", "bond-quartic": "0",
    "angleunit": repr(DEG_TO_RAD**2), "angle-cubic": "0", "angle-quartic": "0",
    "angle-pentic": "0", "angle-sextic": "0", "strbndunit": repr(DEG_TO_RAD),
    "opbendtype": "W-D-C", "opbendunit": repr(DEG_TO_RAD**2), "opbend-cubic": "0",
    "opbend-quartic": "0", "opbend-pentic": "0", "opbend-sextic": "0", "torsionunit": "1.0",
    "vdwindex": "CLASS", "vdwtype": "LENNARD-JONES", "radiusrule": "ARITHMETIC",
    "radiustype": "R-MIN", "radiussize": "RADIUS", "epsilonrule": "GEOMETRIC",
    "a-expterm": "0", "b-expterm": "0", "c-expterm": "0", "vdw-12-scale": "0",
    "vdw-13-scale": "0", "vdw-14-scale": "1", "chg-12-scale": "0", "chg-13-scale": "0",
    "chg-14-scale": "1", "electric": "332.0637133", "dielectric": "1.0",
    "ureyunit": "1.0", "urey-cubic": "0", "urey-quartic": "0",
}
_HEADER_WORDS = set(_DEFAULTS) | {"forcefield"}
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][+-]?\d+)?")
_INT_RE = re.compile(r"[+-]?\d+")
_ATOM_RE = re.compile(r'^\s*atom\s+(\S+)\s+(?:(\d+)\s+)?(\S+)\s+"([^"]*)"\s*(.*)$', re.I)


class TinkerAtomType(NamedTuple):
    """One ``atom`` line: type and class numbers, symbol, description (the q2jax
    key in files q2jax writes), atomic number, mass (amu), valence."""

    type: int
    cls: int
    symbol: str
    description: str
    atomic_number: int
    mass: float
    valence: int


class TinkerPrm(NamedTuple):
    """What :func:`read_tinker_prm` returns."""

    forcefield: ForceField
    atoms: tuple[TinkerAtomType, ...]
    header: dict[str, str]  # keyword -> value text, as in the file
    type_numbers: dict[str, int]  # q2jax atom-type key -> Tinker type number
    skipped: tuple[tuple[int, str, str], ...]  # (line, keyword, reason), strict=False only


def _fmt(x: float) -> str:
    """Shortest decimal text that reads back as exactly ``x`` (no exponent)."""
    return np.format_float_positional(float(x), unique=True, trim="0")


def tinker_header(form: str, settings: Settings) -> tuple[tuple[str, str], ...]:
    """Header keyword/value pairs that make Tinker's energy the q2jax energy."""
    mm3 = form == "mm3"
    zero = "0.0"
    rows: list[tuple[str, float | str]] = [
        ("forcefield", "Q2JAX-MM3" if mm3 else "Q2JAX-HARMONIC"),
        ("bondunit", MM3_STRETCH_UNIT if mm3 else 1.0),
        ("bond-cubic", -MM3_CUBIC if mm3 else zero),
        ("bond-quartic", MM3_QUARTIC if mm3 else zero),
        ("angleunit", MM3_BEND_UNIT_DEG if mm3 else DEG_TO_RAD**2),
        ("angle-cubic", MM3_BEND_C3 if mm3 else zero),
        ("angle-quartic", MM3_BEND_C4 if mm3 else zero),
        ("angle-pentic", MM3_BEND_C5 if mm3 else zero),
        ("angle-sextic", MM3_BEND_C6 if mm3 else zero),
        ("strbndunit", MM3_STRETCH_BEND_UNIT if mm3 else DEG_TO_RAD),
        ("opbendtype", "W-D-C"),
        ("opbendunit", MM3_BEND_UNIT_DEG if mm3 else DEG_TO_RAD**2),
        ("opbend-cubic", zero), ("opbend-quartic", zero),
        ("opbend-pentic", zero), ("opbend-sextic", zero),
        ("torsionunit", 0.5 if mm3 else 1.0),
        ("vdwindex", "CLASS"),
        ("vdwtype", "BUCKINGHAM" if mm3 else "LENNARD-JONES"),
        ("radiusrule", "ARITHMETIC"), ("radiustype", "R-MIN"),
        ("radiussize", "RADIUS"), ("epsilonrule", "GEOMETRIC"),
    ]
    if mm3:
        rows += [("a-expterm", MM3_VDW_A), ("b-expterm", MM3_VDW_B), ("c-expterm", MM3_VDW_C)]
    rows += [
        ("vdw-12-scale", zero), ("vdw-13-scale", zero), ("vdw-14-scale", settings.vdw_14_scale),
        ("chg-12-scale", zero), ("chg-13-scale", zero), ("chg-14-scale", settings.elec_14_scale),
        ("electric", COULOMB_KCAL_MOL_A), ("dielectric", settings.dielectric),
    ]
    return tuple((k, v if isinstance(v, str) else _fmt(v)) for k, v in rows)


# --- atom table -------------------------------------------------------------------------


def _element_of_key(key: str) -> str | None:
    """Element of an atom-type key without a molecule: a properly cased two-letter
    symbol prefix ('Cl1', 'Rh'), else the first letter ('C3', 'HC', 'ca' -> C, H, C).
    Ambiguous keys ('cl' in GAFF is chlorine) need molecules."""
    if key[:2] in elements.ELEMENTS:
        return key[:2]
    first = key[:1].upper()
    return first if first in elements.ELEMENTS else None


def _ff_keys(ff: ForceField) -> list[str]:
    seen: dict[str, None] = {}
    for e in ff.entries:
        for t in e.key:
            seen.setdefault(t, None)
    return list(seen)


def tinker_atom_types(
    ff: ForceField,
    molecules: Iterable = (),
    *,
    type_numbers: Mapping[str, int] | None = None,
) -> tuple[TinkerAtomType, ...]:
    """The ``atom`` table for ``ff`` (and the atom types of ``molecules``).

    Types are numbered 1, 2, ... in order of first use in the force field, then
    in the molecules (``type_numbers`` fixes chosen numbers); class = type.
    Element, mass (amu) and valence come from the molecules, else the element
    is inferred from the key ('C3' -> C) with its most abundant isotope's mass.
    Raises TopologyError when atoms of one type differ in element or mass, and
    ParameterError when a key is not a valid Tinker description.
    """
    mols = list(molecules)
    keys = _ff_keys(ff)
    info: dict[str, dict] = {}
    for mol in mols:
        nbr = Counter()
        for a, b in mol.bonds:
            nbr[a] += 1
            nbr[b] += 1
        for i, (t, s, m) in enumerate(zip(mol.atom_types, mol.symbols, np.asarray(mol.masses),
                                          strict=True)):
            if t not in keys:
                keys.append(t)
            d = info.setdefault(t, {"symbols": set(), "masses": [], "valence": Counter()})
            d["symbols"].add(s)
            d["masses"].append(float(m))
            d["valence"][nbr[i]] += 1
    fixed = dict(type_numbers or {})
    used = set(fixed.values())
    if len(used) != len(fixed) or any(int(v) < 1 for v in used):
        raise ParameterError(f"type_numbers must be distinct positive integers, got {fixed}")
    nxt = 1
    out = []
    for key in keys:
        if not key or len(key) > MAX_DESCRIPTION or '"' in key:
            raise ParameterError(
                f"atom type {key!r} cannot be a Tinker atom description "
                f"(1-{MAX_DESCRIPTION} characters, no '\"')"
            )
        if key in fixed:
            num = int(fixed[key])
        else:
            while nxt in used:
                nxt += 1
            num, nxt = nxt, nxt + 1
            used.add(num)
        d = info.get(key)
        if d is not None:
            if len(d["symbols"]) != 1:
                raise TopologyError(f"atom type {key!r} is used by elements {sorted(d['symbols'])}")
            sym = d["symbols"].pop()
            m = np.asarray(d["masses"])
            if np.ptp(m) > 1e-9 * m.max():
                raise TopologyError(
                    f"atoms of type {key!r} have different masses {sorted(set(m.tolist()))}; "
                    "Tinker gives one mass per atom type"
                )
            mass, valence = float(m[0]), d["valence"].most_common(1)[0][0]
        else:
            sym = _element_of_key(key)
            if sym is None:
                raise ParameterError(
                    f"cannot infer the element of atom type {key!r}; pass molecules using it"
                )
            mass, valence = elements.mass(sym), 0
        out.append(TinkerAtomType(num, num, sym, key, elements.atomic_number(sym), mass, valence))
    return tuple(out)


# --- writing ----------------------------------------------------------------------------


def _values(ff: ForceField) -> dict[tuple[str, tuple[str, ...]], float]:
    vals = np.asarray(ff.full_params())
    return {(e.kind, e.key): float(vals[i]) for i, e in enumerate(ff.entries)}


def _need(vals, kind, key):
    try:
        return vals[(kind, key)]
    except KeyError:
        raise ParameterError(
            f"{label(kind, key)!r} is missing; Tinker needs it with the rest of its family"
        ) from None


def format_tinker_prm(
    ff: ForceField,
    atoms: Sequence[TinkerAtomType] | None = None,
    *,
    molecules: Iterable = (),
    title: str | None = None,
) -> str:
    """Text of a Tinker ``.prm`` file equivalent to ``ff`` (see module docstring).

    ``atoms`` defaults to :func:`tinker_atom_types` of ``ff`` and ``molecules``.
    """
    table = tuple(atoms) if atoms is not None else tinker_atom_types(ff, molecules)
    num = {a.description: a.cls for a in table}
    missing = [k for k in _ff_keys(ff) if k not in num]
    if missing:
        raise ParameterError(f"atom table has no Tinker type for atom types {missing}")
    hdr = dict(tinker_header(ff.form, ff.settings))
    vals = _values(ff)
    k_angle = float(hdr["angleunit"]) * RAD_TO_DEG**2
    k_opb = float(hdr["opbendunit"]) * RAD_TO_DEG**2
    k_sb = float(hdr["strbndunit"]) * RAD_TO_DEG
    tors_scale = 2.0 * float(hdr["torsionunit"])

    def cls(key):
        return " ".join(f"{num[t]:>5d}" for t in key)

    head = [
        f"# {title or 'q2jax force field'}",
        f"# Written by q2jax; functional form {ff.form!r}. Energies equal q2jax's (see",
        "# q2jax.io.tinker_prm); out-of-plane terms are exact only at symmetric centres.",
        KEYS_MARKER,
        "",
    ]
    head += [f"{k:<24s}{v}" for k, v in tinker_header(ff.form, ff.settings)]
    body: dict[str, list[str]] = {f: [] for f in ("atom", "bond", "angle", "strbnd", "ureybrad",
                                                 "opbend", "torsion", "vdw", "charge")}
    for a in table:
        body["atom"].append(
            f'atom {a.type:>6d} {a.cls:>5d}  {a.symbol:<3s} "{a.description}" '
            f"{a.atomic_number:>4d} {_fmt(a.mass)} {a.valence}"
        )
    for e in ff.entries:
        key = e.key
        if e.kind == "bond_k":
            k, r0 = vals[(e.kind, key)], _need(vals, "bond_eq", key)
            body["bond"].append(
                f"bond      {cls(key)}  {_fmt(k / float(hdr['bondunit']))} {_fmt(r0)}"
            )
        elif e.kind == "angle_k":
            k, t0 = vals[(e.kind, key)], _need(vals, "angle_eq", key)
            body["angle"].append(f"angle     {cls(key)}  {_fmt(k / k_angle)} {_fmt(t0)}")
        elif e.kind == "stretch_bend_k":
            f = _fmt(vals[(e.kind, key)] / k_sb)
            body["strbnd"].append(f"strbnd    {cls(key)}  {f} {f}")
        elif e.kind == "ub_k":  # Tinker's default ureyunit 1, no cubic/quartic terms
            k, d0 = vals[(e.kind, key)], _need(vals, "ub_eq", key)
            body["ureybrad"].append(f"ureybrad  {cls(key)}  {_fmt(k)} {_fmt(d0)}")
        elif e.kind == "improper_k":
            f = _fmt(vals[(e.kind, key)] / (3.0 * k_opb))
            centre, nbrs = key[0], list(key[1:])
            for d in sorted(set(nbrs), key=lambda t: num[t]):
                rest = list(nbrs)
                rest.remove(d)
                a, c = sorted(rest, key=lambda t: num[t])
                body["opbend"].append(f"opbend    {cls((d, centre, a, c))}  {f}")
        elif e.kind == "torsion_v1":
            v = [vals.get((k, key), 0.0) / tors_scale for k in
                 ("torsion_v1", "torsion_v2", "torsion_v3")]
            terms = "  ".join(f"{_fmt(a)} {ph} {n}" for a, ph, n in
                              zip(v, ("0.0", "180.0", "0.0"), (1, 2, 3), strict=True))
            body["torsion"].append(f"torsion   {cls(key)}  {terms}")
        elif e.kind in ("torsion_v2", "torsion_v3") and ("torsion_v1", key) not in vals:
            raise ParameterError(f"torsion {'-'.join(key)} has no V1 entry; add all of V1-V3")
        elif e.kind == "vdw_radius":
            eps = _need(vals, "vdw_epsilon", key)
            if eps < 0:
                raise ParameterError(f"{label('vdw_epsilon', key)!r} is negative ({eps})")
            body["vdw"].append(f"vdw       {cls(key)}  {_fmt(vals[(e.kind, key)])} {_fmt(eps)}")
        elif e.kind == "charge":
            body["charge"].append(f"charge    {cls(key)}  {_fmt(vals[(e.kind, key)])}")
        elif e.kind in ("bond_eq", "angle_eq", "ub_eq") and (
                e.kind.replace("eq", "k"), key) not in vals:
            raise ParameterError(f"{label(e.kind, key)!r} has no force constant entry")
        elif e.kind == "vdw_epsilon" and ("vdw_radius", key) not in vals:
            raise ParameterError(f"{label(e.kind, key)!r} has no vdw radius entry")
    lines = list(head)
    for fam, rows in body.items():
        if rows:
            lines += ["", f"# {fam} parameters"] + rows
    too_long = [ln for ln in lines if len(ln) > MAX_LINE]
    if too_long:
        raise ParameterError(f"line longer than {MAX_LINE} characters: {too_long[0][:60]}...")
    return "\n".join(lines) + "\n"


def write_tinker_prm(
    ff: ForceField,
    path: str | Path,
    atoms: Sequence[TinkerAtomType] | None = None,
    *,
    molecules: Iterable = (),
    title: str | None = None,
) -> Path:
    """Write :func:`format_tinker_prm` to ``path``; returns the path."""
    p = Path(path)
    p.write_text(format_tinker_prm(ff, atoms, molecules=molecules, title=title))
    return p


# --- reading ----------------------------------------------------------------------------


class _Reader:
    """State of one parse: tokens to numbers with file/line errors, skips."""

    def __init__(self, source: str, strict: bool):
        self.source, self.strict = source, strict
        self.skipped: list[tuple[int, str, str]] = []

    def error(self, msg: str, line: int | None) -> ParseError:
        return ParseError(msg, self.source, line)

    def unrepresentable(self, line: int, keyword: str, reason: str) -> None:
        if self.strict:
            raise self.error(f"{keyword}: {reason} (q2jax cannot represent it; "
                             "strict=False skips such lines with a warning)", line)
        self.skipped.append((line, keyword, reason))

    def number(self, tok: str, line: int | None, what: str) -> float:
        if not _FLOAT_RE.fullmatch(tok):
            raise self.error(f"expected a number for {what}, found {tok!r}", line)
        value = float(tok.replace("d", "e").replace("D", "e"))
        if not math.isfinite(value):
            raise self.error(f"{what} {tok!r} is out of range", line)
        return value

    def integer(self, tok: str, line: int, what: str) -> int:
        if not _INT_RE.fullmatch(tok):
            raise self.error(f"expected an integer {what}, found {tok!r}", line)
        return int(tok)

    def fields(self, toks, line, keyword, ints: int, floats: int):
        need = 1 + ints + floats
        if len(toks) < need:
            raise self.error(
                f"{keyword} line needs {ints} atom classes and {floats} numbers, "
                f"found {len(toks) - 1} fields", line)
        i = [self.integer(t, line, f"atom class for {keyword}") for t in toks[1:1 + ints]]
        f = [self.number(t, line, keyword) for t in toks[1 + ints:need]]
        return i, f


def _header_checks(hdr: dict[str, str], form: str) -> list[tuple[str, str, str]]:
    """(keyword, found, expected) for header values that differ from q2jax's form."""
    mm3 = form == "mm3"
    expect: dict[str, float | str] = {
        "bond-cubic": -MM3_CUBIC if mm3 else 0.0, "bond-quartic": MM3_QUARTIC if mm3 else 0.0,
        "angle-cubic": MM3_BEND_C3 if mm3 else 0.0, "angle-quartic": MM3_BEND_C4 if mm3 else 0.0,
        "angle-pentic": MM3_BEND_C5 if mm3 else 0.0, "angle-sextic": MM3_BEND_C6 if mm3 else 0.0,
        "opbendtype": "W-D-C", "opbend-cubic": 0.0, "opbend-quartic": 0.0,
        "opbend-pentic": 0.0, "opbend-sextic": 0.0, "vdwindex": "CLASS",
        "vdwtype": "BUCKINGHAM" if mm3 else "LENNARD-JONES", "radiusrule": "ARITHMETIC",
        "epsilonrule": "GEOMETRIC", "vdw-12-scale": 0.0, "vdw-13-scale": 0.0,
        "chg-12-scale": 0.0, "chg-13-scale": 0.0, "electric": COULOMB_KCAL_MOL_A,
        "urey-cubic": 0.0, "urey-quartic": 0.0,
    }
    if mm3:
        expect.update({"a-expterm": MM3_VDW_A, "b-expterm": MM3_VDW_B, "c-expterm": MM3_VDW_C})
    bad = []
    for k, want in expect.items():
        got = hdr[k]
        if isinstance(want, str):
            ok = got.upper() == want
        else:
            try:
                g = float(got.replace("d", "e").replace("D", "e"))
            except ValueError:
                g = math.nan
            ok = math.isclose(g, want, rel_tol=1e-8, abs_tol=1e-300)
        if not ok:
            bad.append((k, got, _fmt(want) if not isinstance(want, str) else want))
    return bad


def _scale(text: str) -> float:
    """Tinker reads a 1-4 scale s > 1 as 1/s (prmkey.f)."""
    s = float(text.replace("d", "e").replace("D", "e"))
    return 1.0 / s if s > 1.0 else s


def parse_tinker_prm(
    text: str, *, source: str = "<string>", strict: bool = True, keys: str = "auto"
) -> TinkerPrm:
    """Parse Tinker ``.prm`` text into a q2jax :class:`ForceField`.

    ``keys``: how Tinker classes become q2jax atom-type keys: ``"description"``
    (the atom line's description, as q2jax writes), ``"class"`` (the class
    number as text) or ``"auto"`` (description when the q2jax marker comment is
    present). Values are converted with the file's own unit keywords. With
    ``strict`` (default) anything q2jax cannot represent raises ParseError
    naming the line; with ``strict=False`` it is skipped, listed in
    ``skipped`` and reported by one warning.
    """
    if keys not in ("auto", "description", "class"):
        raise ValueError(f"keys must be 'auto', 'description' or 'class', got {keys!r}")
    rd = _Reader(source, strict)
    lines = text.splitlines()
    use_desc = keys == "description" or (keys == "auto" and any(
        ln.strip() == KEYS_MARKER for ln in lines))
    hdr: dict[str, str] = {}
    hdr_line: dict[str, int] = {}
    atoms: list[TinkerAtomType] = []
    atom_lines: list[int] = []
    params: list[tuple[int, str, list[str]]] = []
    for no, raw in enumerate(lines, start=1):
        s = raw.strip()
        if not s or s[0] in "#!":
            continue
        word = s.split()[0].lower()
        if word == "atom":
            atoms.append(_parse_atom(rd, s, no))
            atom_lines.append(no)
        elif word in _HEADER_WORDS:
            toks = s.split()
            if len(toks) < 2:
                raise rd.error(f"{word} needs a value", no)
            if _FLOAT_RE.fullmatch(_DEFAULTS.get(word, "")):  # a numeric keyword
                rd.number(toks[1], no, word)
            hdr[word], hdr_line[word] = toks[1], no
        elif word in _READ:
            params.append((no, word, s.replace(",", " ").split()))
        elif word in _UNSUPPORTED:
            rd.unrepresentable(no, word, "this Tinker term has no q2jax equivalent")
        # anything else (_HARMLESS, reference text, ...) is ignored, as Tinker does
    full = {**_DEFAULTS, **hdr}
    form = _detect_form(rd, full, hdr_line)
    for k, got, want in _header_checks(full, form):
        if k in hdr_line:
            rd.unrepresentable(hdr_line[k], k,
                               f"value {got} differs from q2jax's {form} form ({want})")
        else:  # absent: the last line read is where it was looked for
            rd.unrepresentable(len(lines) or None, k,
                               f"not set (searched to the end of the file): Tinker's default "
                               f"{got} differs from q2jax's {form} form ({want})")
    settings = Settings(
        vdw_14_scale=_scale(full["vdw-14-scale"]),
        elec_14_scale=_scale(full["chg-14-scale"]),
        dielectric=float(full["dielectric"].replace("d", "e").replace("D", "e")),
    )
    keymap = _class_keys(rd, atoms, atom_lines, use_desc)
    triples = _parameters(rd, params, full, keymap, use_desc, {a.type: a.cls for a in atoms})
    try:
        ff = ForceField.from_entries(triples, form=form, settings=settings)
    except ParameterError as exc:
        raise rd.error(str(exc), None) from None
    if rd.skipped:
        warnings.warn(
            f"{source}: skipped {len(rd.skipped)} line(s) q2jax cannot represent, e.g. line "
            f"{rd.skipped[0][0]}: {rd.skipped[0][1]}: {rd.skipped[0][2]}",
            stacklevel=2,
        )
    type_numbers = {}
    for a in atoms:
        type_numbers.setdefault(keymap.get(a.cls, str(a.cls)), a.type)
    return TinkerPrm(ff, tuple(atoms), hdr, type_numbers, tuple(rd.skipped))


def read_tinker_prm(path: str | Path, *, strict: bool = True, keys: str = "auto") -> TinkerPrm:
    """Read a Tinker ``.prm`` file (see :func:`parse_tinker_prm`)."""
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ParseError(f"cannot read Tinker parameter file ({exc})", str(p)) from None
    return parse_tinker_prm(text, source=str(p), strict=strict, keys=keys)


def _parse_atom(rd: _Reader, s: str, no: int) -> TinkerAtomType:
    m = _ATOM_RE.match(s)
    if m is None:
        raise rd.error('atom line must be: atom type [class] symbol "description" '
                       "atomic_number mass valence", no)
    typ = rd.integer(m.group(1), no, "atom type")
    cls = int(m.group(2)) if m.group(2) else typ
    rest = m.group(5).split()
    if len(rest) < 3:
        raise rd.error("atom line needs atomic number, mass and valence after the description",
                       no)
    return TinkerAtomType(typ, cls or typ, m.group(3), m.group(4),
                          rd.integer(rest[0], no, "atomic number"),
                          rd.number(rest[1], no, "atomic mass"),
                          rd.integer(rest[2], no, "valence"))


def _detect_form(rd: _Reader, full: dict[str, str], hdr_line: dict[str, int]) -> str:
    vdw = full["vdwtype"].upper()
    cubic = float(full["bond-cubic"].replace("d", "e").replace("D", "e"))
    if vdw in ("BUCKINGHAM", "MM3-HBOND") or cubic != 0.0:
        return "mm3"
    if vdw != "LENNARD-JONES":
        raise rd.error(f"vdwtype {vdw} has no q2jax form (expected BUCKINGHAM or LENNARD-JONES)",
                       hdr_line.get("vdwtype"))
    return "harmonic"


def _class_keys(rd: _Reader, atoms: list[TinkerAtomType], lines: list[int],
                use_desc: bool) -> dict[int, str]:
    keymap: dict[int, str] = {}
    owner: dict[str, int] = {}
    if not use_desc:
        return keymap
    for a, no in zip(atoms, lines, strict=True):
        key = a.description.strip()
        if not key:
            raise rd.error(f"atom type {a.type} has an empty description (the q2jax key)", no)
        if keymap.get(a.cls, key) != key:
            raise rd.error(f"atom class {a.cls} has two q2jax keys {keymap[a.cls]!r}, {key!r}",
                           no)
        if owner.get(key, a.cls) != a.cls:
            raise rd.error(f"atom classes {owner[key]} and {a.cls} share one q2jax key {key!r} "
                           "(atom descriptions)", no)
        keymap[a.cls], owner[key] = key, a.cls
    return keymap


def _parameters(rd, params, full, keymap, use_desc, type_to_cls):
    """(kind, key, value) triples in q2jax units from the parameter lines."""

    def f(name):
        return float(full[name].replace("d", "e").replace("D", "e"))

    radius_factor = (2.0 ** (1.0 / 6.0) if full["radiustype"].upper() == "SIGMA" else 1.0) * (
        0.5 if full["radiussize"].upper() == "DIAMETER" else 1.0)
    k_angle, k_opb = f("angleunit") * RAD_TO_DEG**2, f("opbendunit") * RAD_TO_DEG**2
    out: list[tuple[str, tuple[str, ...], float]] = []
    seen: dict[tuple[str, tuple[str, ...]], int] = {}
    opb: dict[tuple[str, tuple[str, ...]], dict[str, tuple[float, int]]] = {}

    def key_of(classes, no, word):
        if any(c == 0 for c in classes):
            return None
        if use_desc:
            missing = [c for c in classes if c not in keymap]
            if missing:
                raise rd.error(f"{word} uses atom class {missing[0]}, which no atom line defines",
                               no)
            return tuple(keymap[c] for c in classes)
        return tuple(str(c) for c in classes)

    def add(kind, key, value, no):
        ck = (kind, canonical_key(KINDS[kind].family, key))
        if ck in seen:
            raise rd.error(f"{label(*ck)!r} is defined twice (lines {seen[ck]} and {no})", no)
        seen[ck] = no
        out.append((kind, key, value))

    for no, word, toks in params:
        arity = {"bond": 2, "angle": 3, "strbnd": 3, "ureybrad": 3, "opbend": 4, "torsion": 4,
                 "vdw": 1, "charge": 1}[word]
        nf = {"bond": 2, "angle": 2, "strbnd": 2, "ureybrad": 2, "opbend": 1, "torsion": 0,
              "vdw": 2, "charge": 1}[word]
        cl, v = rd.fields(toks, no, word, arity, nf)
        if word == "charge":  # charges are per atom type, the rest per class
            cl = [type_to_cls.get(cl[0], cl[0])]
        key = key_of(cl, no, word)
        if key is None:
            rd.unrepresentable(no, word, "wildcard atom class 0")
            continue
        extra = toks[1 + arity + nf:]
        if word == "bond":
            add("bond_k", key, f("bondunit") * v[0], no)
            add("bond_eq", key, v[1], no)
        elif word == "angle":
            alt = [rd.number(t, no, "angle") for t in extra[:2] if _FLOAT_RE.fullmatch(t)]
            if not (all(a == 0.0 for a in alt) or all(a == v[1] for a in alt)):
                rd.unrepresentable(no, word, "ideal angles that depend on attached hydrogens")
                continue
            add("angle_k", key, k_angle * v[0], no)
            add("angle_eq", key, v[1], no)
        elif word == "strbnd":
            if v[0] != v[1]:
                rd.unrepresentable(no, word, f"two different constants {v[0]} and {v[1]} "
                                   "(q2jax has one per angle)")
                continue
            add("stretch_bend_k", key, f("strbndunit") * RAD_TO_DEG * v[0], no)
        elif word == "ureybrad":  # E = ureyunit k (d - d0)^2, q2jax's harmonic 1-3 term
            add("ub_k", key, f("ureyunit") * v[0], no)
            add("ub_eq", key, v[1], no)
        elif word == "opbend":
            d, centre, a, c = key
            group = ("improper_k", canonical_key("improper", (centre, d, a, c)))
            by_d = opb.setdefault(group, {})
            if d in by_d:
                raise rd.error(f"opbend {'-'.join(key)} is defined twice (lines {by_d[d][1]} "
                               f"and {no})", no)
            by_d[d] = (v[0], no)
        elif word == "torsion":
            vs = _torsion_terms(rd, toks[5:], no)
            if vs is None:
                continue
            for kind, amp in zip(("torsion_v1", "torsion_v2", "torsion_v3"), vs, strict=True):
                add(kind, key, 2.0 * f("torsionunit") * amp, no)
        elif word == "vdw":
            if extra and _FLOAT_RE.fullmatch(extra[0]) and float(extra[0]) != 0.0:
                rd.unrepresentable(no, word, "a hydrogen reduction factor")
                continue
            add("vdw_radius", key, radius_factor * v[0], no)
            add("vdw_epsilon", key, abs(v[1]), no)
        else:
            add("charge", key, v[0], no)
    for (kind, ckey), by_d in opb.items():
        lines_ = sorted(n for _, n in by_d.values())
        ks = {k for k, _ in by_d.values()}
        if set(by_d) != set(ckey[1:]) or len(ks) != 1:
            rd.unrepresentable(
                lines_[0], "opbend",
                f"centre {ckey[0]} with neighbours {ckey[1:]} needs one equal constant for each "
                f"distinct neighbour type (lines {lines_})")
            continue
        add(kind, ckey, 3.0 * k_opb * ks.pop(), lines_[0])
    return out


def _torsion_terms(rd: _Reader, toks: list[str], no: int) -> tuple[float, float, float] | None:
    """Amplitudes of n = 1, 2, 3 from (amplitude, phase, n) triples; phases must be
    0, 180, 0 (q2jax's V1/V2/V3 convention) unless the amplitude is zero."""
    amps = [0.0, 0.0, 0.0]
    want_phase = {1: 0.0, 2: 180.0, 3: 0.0}
    nums = []
    for t in toks:
        if not _FLOAT_RE.fullmatch(t):
            break
        nums.append(t)
    if len(nums) % 3:
        raise rd.error("torsion terms must be (amplitude, phase, periodicity) triples", no)
    for i in range(0, len(nums), 3):
        amp = rd.number(nums[i], no, "torsion amplitude")
        phase = rd.number(nums[i + 1], no, "torsion phase")
        n = rd.integer(nums[i + 2], no, "torsion periodicity")
        if amp == 0.0:
            continue
        if n not in want_phase:
            rd.unrepresentable(no, "torsion", f"periodicity {n} (q2jax has 1, 2, 3)")
            return None
        if not math.isclose(phase % 360.0, want_phase[n], abs_tol=1e-9):
            rd.unrepresentable(no, "torsion", f"phase {phase} for n={n} (q2jax uses "
                               f"{want_phase[n]:g})")
            return None
        amps[n - 1] += amp
    return amps[0], amps[1], amps[2]


__all__ = [
    "KEYS_MARKER",
    "TinkerAtomType",
    "TinkerPrm",
    "format_tinker_prm",
    "parse_tinker_prm",
    "read_tinker_prm",
    "tinker_atom_types",
    "tinker_header",
    "write_tinker_prm",
]
