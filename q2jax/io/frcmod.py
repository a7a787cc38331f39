"""AMBER ``frcmod`` files: read, write, and convert to / from a q2jax
harmonic ForceField.

Format (AMBER Reference Manual, "frcmod" / parm.dat sections): a title
line, then keyword sections, each ending at a blank line::

    MASS      type  mass(amu)  [polarizability(Å^3)]
    BOND      t1-t2        K(kcal/mol/Å^2)    r0(Å)
    ANGLE     t1-t2-t3     K(kcal/mol/rad^2)  theta0(deg)
    DIHE      t1-t2-t3-t4  IDIVF  PK(kcal/mol)  PHASE(deg)  PN     (PN < 0: more terms follow)
    IMPROPER  t1-t2-t3-t4  PK  PHASE  PN                           (central atom third)
    NONBON    type  R*(Å, Rmin/2)  epsilon(kcal/mol)

Atom types are up to two characters, joined by ``-`` (``c -c4``); text after
the numbers is a comment and is kept. Lines starting with ``#`` before the
first section (Q2MM writes ``# Q2MM`` / ``# OPT``) are kept as header
comments; other sections (HBON, LJEDIT, CMAP, ...) are kept verbatim.

Units: AMBER's harmonic terms are E = K (x - x0)^2 with no 1/2 -- the q2jax
convention -- so K is a q2jax bond/angle force constant as it stands
(``units.AMBER_FRCMOD_K_UNIT = 1``). A dihedral term (PK/IDIVF)(1 + cos(n phi
- gamma)) with n = 1, 2, 3 and gamma = 0 or 180 maps onto q2jax's
V_n/2 (1 +- cos n phi) series exactly up to a constant: V_n = +-2 PK/IDIVF,
the sign chosen by n and gamma; the constant (2 PK/IDIVF for the flipped
forms) is dropped, which shifts energies but no force or Hessian. Other
phases or n > 3 are not representable and raise ParameterError. AMBER's
periodic impropers are not q2jax's harmonic Wilson-angle improper: the
conversion refuses them unless ``impropers="skip"``. NONBON R* and epsilon
are q2jax's per-type vdW radius and epsilon (r*_ij = R*_i + R*_j,
eps_ij = sqrt(eps_i eps_j), AMBER's Lorentz-Berthelot with Rmin/2).

:func:`write_frcmod` normalises the layout (types padded to two characters,
numbers in their shortest exact form, right-aligned, comments kept), so
read -> write -> read keeps every value and comment, not every blank.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from q2jax.errors import InputError, ParameterError
from q2jax.forcefield import ForceField
from q2jax.io._text import TextFile, is_float, parse_float, read_text
from q2jax.units import AMBER_FRCMOD_K_UNIT

__all__ = [
    "Frcmod",
    "FrcmodTerm",
    "read_frcmod",
    "parse_frcmod",
    "write_frcmod",
    "format_frcmod",
    "frcmod_to_forcefield",
    "forcefield_to_frcmod",
    "SECTIONS",
]

SECTIONS = {"MASS": 1, "BOND": 2, "ANGL": 3, "DIHE": 4, "IMPR": 4, "NONB": 1}
_N_VALUES = {"MASS": (1, 2), "BOND": (2, 2), "ANGLE": (2, 2), "DIHE": (4, 4), "IMPROPER": (3, 3),
             "NONBON": (2, 2)}
_CANONICAL = {"MASS": "MASS", "BOND": "BOND", "ANGL": "ANGLE", "DIHE": "DIHE", "IMPR": "IMPROPER",
              "NONB": "NONBON"}
_TYPE_RE = re.compile(r"[A-Za-z0-9*+'_]{1,2}")


@dataclass(frozen=True)
class FrcmodTerm:
    """One parameter line: atom types, values in the file's units, comment."""

    section: str
    types: tuple[str, ...]
    values: tuple[float, ...]
    comment: str = ""
    line: int | None = None


@dataclass(frozen=True)
class Frcmod:
    """A parsed frcmod file: title, header comments, terms per section (file
    order) and any other sections verbatim (name, lines)."""

    title: str
    terms: tuple[FrcmodTerm, ...]
    header: tuple[str, ...] = ()
    other: tuple[tuple[str, tuple[str, ...]], ...] = ()
    path: str = "<frcmod>"
    order: tuple[str, ...] = field(default=("MASS", "BOND", "ANGLE", "DIHE", "IMPROPER", "NONBON"))

    def section(self, name: str) -> list[FrcmodTerm]:
        return [t for t in self.terms if t.section == name]


def read_frcmod(path: str | Path) -> Frcmod:
    """Read an AMBER frcmod file (``.gz`` transparently)."""
    f = read_text(path)
    return _parse(f)


def parse_frcmod(text: str, path: str = "<string>") -> Frcmod:
    return _parse(TextFile(path, text.splitlines()))


def _parse(f: TextFile) -> Frcmod:
    if not f.lines or not f.lines[0].strip():
        raise f.error("empty frcmod file or missing title line", 1)
    title = f.lines[0].rstrip()
    header: list[str] = []
    terms: list[FrcmodTerm] = []
    other: list[tuple[str, tuple[str, ...]]] = []
    order: list[str] = []
    section: str | None = None
    raw: list[str] = []
    for n, text in f.numbered(2):
        t = text.rstrip()
        key = t.strip()[:4].upper()
        if section is None:
            if not t.strip():
                continue
            if t.lstrip().startswith("#") and not order:
                header.append(t)
                continue
            if key in SECTIONS and t.strip().upper().startswith(key):
                section = _CANONICAL[key]
                order.append(section)
            elif t.strip().isupper() and t.strip().isalpha():
                section, raw = "RAW:" + t.strip(), [t]
                order.append(section)
            else:
                raise f.error(f"expected a section keyword (MASS, BOND, ANGLE, DIHE, IMPROPER, "
                              f"NONBON), found {t.strip()[:30]!r}", n)
            continue
        if section.startswith("RAW:"):
            if not t.strip():
                other.append((section[4:], tuple(raw)))
                section = None
            else:
                raw.append(t)
            continue
        if not t.strip():
            section = None
            continue
        terms.append(_term(f, n, section, t))
    if section is not None and section.startswith("RAW:"):
        other.append((section[4:], tuple(raw)))
    return Frcmod(title, tuple(terms), tuple(header), tuple(other), f.path, tuple(order))


def _term(f: TextFile, n: int, section: str, text: str) -> FrcmodTerm:
    ntypes = {"MASS": 1, "BOND": 2, "ANGLE": 3, "DIHE": 4, "IMPROPER": 4, "NONBON": 1}[section]
    body = text.strip()
    if ntypes == 1:
        parts = body.split(None, 1)
        types = [parts[0]]
        rest = parts[1] if len(parts) > 1 else ""
    else:
        width = 3 * ntypes - 1
        head = text.lstrip()[:width]
        rest = text.lstrip()[width:]
        types = [x.strip() for x in head.split("-")]
        if len(types) != ntypes or head.count("-") != ntypes - 1:
            raise f.error(f"{section} line needs {ntypes} atom types joined by '-', found "
                          f"{head!r}", n)
    for t in types:
        if not _TYPE_RE.fullmatch(t):
            raise f.error(f"bad atom type {t!r} in {section} line", n)
    if rest.lstrip().startswith("-"):
        raise f.error(f"{section} line needs {ntypes} atom types, found more", n)
    tokens = [(m.group(), m.end()) for m in re.finditer(r"\S+", rest)]
    lo, hi = _N_VALUES[section]
    values: list[float] = []
    k, end = 0, 0
    while k < len(tokens) and len(values) < hi and is_float(tokens[k][0]):
        values.append(parse_float(tokens[k][0], f, n, f"a {section} value"))
        end = tokens[k][1]
        k += 1
    if len(values) < lo:
        bad = tokens[k][0] if k < len(tokens) else "end of line"
        raise f.error(f"{section} line needs {lo} numbers; found {bad!r} after {len(values)}", n)
    if not all(math.isfinite(v) for v in values):
        raise f.error(f"non-finite number in {section} line", n)
    comment = rest[end:].strip()
    return FrcmodTerm(section, tuple(types), tuple(values), comment, n)


# --- writing ---------------------------------------------------------------------------------


def _num(v: float, width: int = 10) -> str:
    s = repr(float(v))
    if s.endswith(".0"):
        s = s[:-2] + ".0"
    return s.rjust(width)


def _types(types: Sequence[str]) -> str:
    return "-".join(t.ljust(2) for t in types)


def format_frcmod(frc: Frcmod) -> str:
    """The text of ``frc`` in AMBER's layout (see the module docstring)."""
    out = [frc.title]
    out += list(frc.header)
    sections = list(frc.order) or ["MASS", "BOND", "ANGLE", "DIHE", "IMPROPER", "NONBON"]
    raw = dict(frc.other)
    for sec in sections:
        if sec.startswith("RAW:"):
            out += list(raw.get(sec[4:], ())) + [""]
            continue
        out.append(sec)
        for t in frc.section(sec):
            if sec in ("MASS", "NONBON"):
                line = t.types[0].ljust(4) + "".join(_num(v) for v in t.values)
            elif sec == "DIHE":
                idivf, pk, phase, pn = t.values
                line = (_types(t.types) + str(int(idivf)).rjust(4) + _num(pk, 15) + _num(phase, 15)
                        + _num(pn, 15))
            else:
                line = _types(t.types) + "".join(_num(v, 12 if sec == "IMPROPER" else 10)
                                                 for v in t.values)
            out.append(line + (f"   {t.comment}" if t.comment else ""))
        out.append("")
    return "\n".join(out) + "\n"


def write_frcmod(frc: Frcmod, path: str | Path | None = None) -> str:
    """Write ``frc`` (and return its text)."""
    text = format_frcmod(frc)
    if path is not None:
        Path(path).write_text(text)
    return text


# --- q2jax force fields --------------------------------------------------------------------------


def _dihedral_v(term: FrcmodTerm, path: str) -> tuple[int, float]:
    """(n, V_n) of one AMBER dihedral term, V_n in q2jax's V_n/2 (1 +- cos n phi)."""
    idivf, pk, phase, pn = term.values
    n = int(round(abs(pn)))
    if abs(abs(pn) - n) > 1e-6 or n not in (1, 2, 3) or idivf <= 0:
        raise ParameterError(f"{path}:{term.line}: dihedral periodicity {pn} / IDIVF {idivf} is "
                             "not representable (q2jax torsions are n = 1, 2, 3)")
    amp = 2.0 * pk / idivf
    ph = phase % 360.0
    if abs(ph) > 1e-6 and abs(ph - 180.0) > 1e-6:
        raise ParameterError(f"{path}:{term.line}: dihedral phase {phase} is not 0 or 180")
    zero = abs(ph) < 1e-6
    # q2jax: V1/2 (1 + cos), V2/2 (1 - cos 2), V3/2 (1 + cos 3)
    same = zero if n in (1, 3) else not zero
    return n, amp if same else -amp


def frcmod_to_forcefield(
    frc: Frcmod,
    *,
    impropers: str = "error",
    trainable: Callable[[str, tuple[str, ...]], bool] | None = None,
) -> ForceField:
    """A harmonic q2jax ForceField with the frcmod's bonds, angles, proper
    dihedrals (V1-V3) and NONBON radii/epsilons (see the module docstring for
    the conversions). ``impropers="skip"`` drops IMPROPER terms instead of
    raising ParameterError; MASS is not a parameter and is ignored."""
    if impropers not in ("error", "skip"):
        raise InputError(f"impropers must be 'error' or 'skip', got {impropers!r}")
    rows: list[tuple[str, tuple[str, ...], float]] = []
    for t in frc.section("BOND"):
        rows += [("bond_k", t.types, t.values[0] * AMBER_FRCMOD_K_UNIT),
                 ("bond_eq", t.types, t.values[1])]
    for t in frc.section("ANGLE"):
        rows += [("angle_k", t.types, t.values[0] * AMBER_FRCMOD_K_UNIT),
                 ("angle_eq", t.types, t.values[1])]
    tors: dict[tuple[str, ...], list[float]] = {}
    for t in frc.section("DIHE"):
        key = min(t.types, t.types[::-1])
        n, v = _dihedral_v(t, frc.path)
        acc = tors.setdefault(key, [0.0, 0.0, 0.0])
        acc[n - 1] += v
    for key, (v1, v2, v3) in tors.items():
        rows += [("torsion_v1", key, v1), ("torsion_v2", key, v2), ("torsion_v3", key, v3)]
    if frc.section("IMPROPER") and impropers == "error":
        first = frc.section("IMPROPER")[0]
        raise ParameterError(f"{frc.path}:{first.line}: AMBER periodic impropers have no q2jax "
                             "equivalent (q2jax's improper is k chi^2 on the Wilson angle); pass "
                             "impropers='skip' to drop them")
    for t in frc.section("NONBON"):
        rows += [("vdw_radius", t.types, t.values[0]), ("vdw_epsilon", t.types, t.values[1])]
    if frc.other:
        names = ", ".join(n for n, _ in frc.other)
        raise ParameterError(f"{frc.path}: sections {names} are not supported by the conversion")
    return ForceField.from_entries(rows, form="harmonic", trainable=trainable)


def forcefield_to_frcmod(
    ff: ForceField,
    *,
    title: str = "written by q2jax",
    masses: dict[str, float] | None = None,
    template: Frcmod | None = None,
) -> Frcmod:
    """The frcmod of a harmonic ForceField (bonds, angles, torsions as one
    DIHE line per nonzero V_n, vdW as NONBON). With ``template`` its masses,
    comments and impropers are kept and its values updated where the force
    field has them."""
    if ff.form != "harmonic":
        raise ParameterError(f"frcmod holds harmonic force fields; this one is {ff.form!r}")
    vals = dict(zip(((e.kind, e.key) for e in ff.entries), map(float, ff.full_params()[:-1]),
                    strict=True))
    if any(e.kind in ("improper_k", "stretch_bend_k", "charge") for e in ff.entries):
        bad = sorted({e.kind for e in ff.entries if e.kind in ("improper_k", "stretch_bend_k",
                                                               "charge")})
        raise ParameterError(f"frcmod cannot hold q2jax parameters of kind {bad}")
    terms: list[FrcmodTerm] = []
    if template is not None:
        comments = {(t.section, t.types): t.comment for t in template.terms}
        terms += template.section("MASS")
    else:
        comments = {}
        terms += [FrcmodTerm("MASS", (t,), (m,)) for t, m in sorted((masses or {}).items())]

    def c(sec, key):
        return comments.get((sec, key), comments.get((sec, key[::-1]), ""))

    keys = list(dict.fromkeys(e.key for e in ff.entries))
    for key in keys:
        if ("bond_k", key) in vals:
            terms.append(FrcmodTerm("BOND", key, (vals[("bond_k", key)] / AMBER_FRCMOD_K_UNIT,
                                                   vals[("bond_eq", key)]), c("BOND", key)))
    for key in keys:
        if ("angle_k", key) in vals:
            terms.append(FrcmodTerm("ANGLE", key, (vals[("angle_k", key)] / AMBER_FRCMOD_K_UNIT,
                                                    vals[("angle_eq", key)]), c("ANGLE", key)))
    for key in keys:
        vs = [vals.get((f"torsion_v{n}", key)) for n in (1, 2, 3)]
        if all(v is None for v in vs):
            continue
        active = [(n, v) for n, v in zip((1, 2, 3), vs, strict=True) if v]
        if not active:
            active = [(3, 0.0)]
        for i, (n, v) in enumerate(active):
            pn = float(n) if i == len(active) - 1 else -float(n)
            same_phase = 0.0 if n in (1, 3) else 180.0
            phase = same_phase if v >= 0 else (180.0 - same_phase)
            terms.append(FrcmodTerm("DIHE", key, (1.0, abs(v) / 2.0, phase, pn), c("DIHE", key)))
    if template is not None:
        terms += template.section("IMPROPER")
    for key in keys:
        if ("vdw_radius", key) in vals:
            terms.append(FrcmodTerm("NONBON", key, (vals[("vdw_radius", key)],
                                                    vals[("vdw_epsilon", key)]), c("NONBON", key)))
    return Frcmod(title if template is None else template.title, tuple(terms),
                  template.header if template is not None else ())
