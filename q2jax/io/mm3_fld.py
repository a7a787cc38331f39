"""MacroModel MM3* force-field files (``mm3.fld``): read, edit values, write.

A ``.fld`` file is a sequence of blocks, each opened by a format line
``-N`` (BatchMin / MacroModel Reference Manual, App. D):

* title lines (before the first format line);
* ``-1`` introductory section: ``0  STR  3  601.99392`` names the energy
  equation and the factor converting the file's units to kJ/mol (``SEL``
  lines list the selection flags);
* ``-5`` atom-type equivalences: ``1  CU  C1 C2`` makes ``CU`` match C1 or C2;
* ``-2`` parameter lines. Columns 1-2 hold the interaction code (``1``
  stretch, ``2`` bend, ``3`` stretch-bend, ``4`` torsion, ``5`` improper
  torsion, ``6`` special vdW pair, ``7`` hydrogen bond, ``8`` torsion-stretch;
  in substructures also ``A`` for an angle condition) with an optional
  lower-case alternative letter in column 1 (``a1``, ``aA``). Then come the
  atoms (types and bond symbols ``- = * % .`` in the main section, pattern
  atom numbers or types in substructures), up to three values, the optional
  attached-atom descriptors (``0000``, ``C200``, ``H1H1``; a leading ``1``
  announces a continuation line with second-level descriptors), the
  selection flags and, from column 97 (110 in substructures), a comment;
* ``-6`` van der Waals rows: type, radius (Å), epsilon (kcal/mol), hydrogen
  offset, optional formal charge, one descriptor, flags, comment; the block
  ends at ``END OF NONBONDED INTERACTIONS``;
* ``-3`` a substructure: a name line (``C`` or ``S`` in column 2; Q2MM marks
  the sections it optimises with ``OPT`` in the name), a ``9`` line with the
  linear pattern (``HX-RH(-PX)-HX.C2*C2(.2)-N2-C2=O2.2``), ``-2`` and its
  parameter lines, until the next ``-3``.

:class:`Fld` keeps every line of the file verbatim and a parsed view of it.
:meth:`Fld.with_values` rewrites only the number fields that change, in
place and in their original precision, so writing a file back with
unchanged parameters reproduces it byte for byte (no normalisation at all);
a changed value is right-aligned in its old field, widening into the blank
columns to its left when it needs more characters.

Values are kept in the file's own units (Å, degrees, mdyn/Å, mdyn Å/rad²,
kcal/mol, Debye); :mod:`q2jax.io.mm3_assign` converts them through
:mod:`q2jax.units`. Every malformed line raises :class:`ParseError` naming
the file and line.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from q2jax.errors import ParameterError, ParseError

__all__ = [
    "Fld",
    "FldParam",
    "FldVdw",
    "FldSubstructure",
    "INTERACTION_KINDS",
    "read_fld",
    "parse_fld",
    "write_fld",
    "parse_pattern",
]

INTERACTION_KINDS: dict[str, str] = {
    "1": "stretch",
    "2": "bend",
    "3": "stretch_bend",
    "4": "torsion",
    "5": "improper",
    "6": "vdw_pair",
    "7": "hbond",
    "8": "torsion_stretch",
    "A": "angle_condition",
}
"""Interaction code (column 2) -> kind."""

_N_ATOMS = {"stretch": 2, "bend": 3, "stretch_bend": 3, "torsion": 4, "improper": 4,
            "vdw_pair": 2, "torsion_stretch": 4, "angle_condition": 3}
_MIN_VALUES = {"stretch": 2, "bend": 2, "stretch_bend": 1, "torsion": 3, "improper": 2,
               "vdw_pair": 2, "hbond": 2, "torsion_stretch": 1, "angle_condition": 2}
BOND_SYMBOLS = frozenset("-=*%.#:~")
_MAIN_COMMENT_COL = 96
_SUB_COMMENT_COL = 109
_TYPE_RE = re.compile(r"[A-Za-z0-9]{1,2}")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _is_number(token: str) -> bool:
    """A plain decimal number of at most 1e100 in magnitude (MacroModel writes
    fixed-point fields; a Fortran ``D`` exponent is not one of them)."""
    return _NUMBER_RE.fullmatch(token) is not None and abs(float(token)) <= 1e100
_DESC_RE = re.compile(r"([0-9])?([A-Za-z0-9]{4})")


@dataclass(frozen=True)
class FldParam:
    """One ``-2`` parameter line (values in the file's units).

    ``atoms`` are atom types (``'C3'``, wildcard ``'00'``, equivalence
    ``'PX'``) or, in a substructure, pattern atom numbers (``'2'``). ``bonds``
    are the bond symbols between consecutive atoms ('' where the line has
    none). ``spans[k]`` is the column span of ``values[k]`` in the line.
    """

    line: int
    kind: str
    alt: str
    atoms: tuple[str, ...]
    bonds: tuple[str, ...]
    values: tuple[float, ...]
    spans: tuple[tuple[int, int], ...]
    descriptors: tuple[str, ...] = ()
    descriptors2: tuple[str, ...] = ()
    continuation_line: int | None = None
    flags: tuple[str, ...] = ()
    comment: str = ""
    substructure: int | None = None

    @property
    def code(self) -> str:
        return (self.alt or " ") + _code_of(self.kind)


@dataclass(frozen=True)
class FldVdw:
    """One ``-6`` van der Waals row: radius Å, epsilon kcal/mol, hydrogen
    offset (MM3's reduced hydrogen position), formal charge (None if blank)."""

    line: int
    atom_type: str
    radius: float
    epsilon: float
    offset: float
    charge: float | None
    descriptor: str
    spans: tuple[tuple[int, int], ...]
    flags: tuple[str, ...] = ()
    comment: str = ""

    @property
    def values(self) -> tuple[float, ...]:
        base = (self.radius, self.epsilon, self.offset)
        return base if self.charge is None else base + (self.charge,)


@dataclass(frozen=True)
class FldSubstructure:
    """A ``-3`` substructure: its linear pattern parsed into atoms (types) and
    bonds ``(i, j, symbol)`` with 0-based atom indices."""

    index: int
    name: str
    name_line: int
    stop: bool
    pattern: str
    pattern_line: int
    pattern_atoms: tuple[str, ...]
    pattern_bonds: tuple[tuple[int, int, str], ...]
    params: tuple[int, ...] = ()  # indices into Fld.params

    @property
    def opt(self) -> bool:
        """Q2MM marks the substructures it optimises with ``OPT`` in the name."""
        return "OPT" in self.name.split()


@dataclass(frozen=True)
class Fld:
    """A parsed ``.fld`` file. ``lines`` are the file's lines verbatim
    (``'\\n'.join(lines)`` is the text); the other fields are views of them."""

    path: str
    lines: tuple[str, ...]
    encoding: str
    conversion_factors: dict[str, tuple[int, float]]
    selections: tuple[tuple[int, str, str], ...]
    equivalences: dict[str, tuple[str, ...]]
    params: tuple[FldParam, ...]
    vdw: tuple[FldVdw, ...]
    substructures: tuple[FldSubstructure, ...]
    _by_line: dict[int, FldParam | FldVdw] = field(default_factory=dict, repr=False, compare=False)

    def text(self) -> str:
        """The file's text (byte-identical to what was read, edits aside)."""
        return "\n".join(self.lines)

    def record(self, line: int) -> FldParam | FldVdw:
        """The parameter or vdW record on 1-based ``line``."""
        try:
            return self._by_line[line]
        except KeyError:
            raise ParameterError(f"{self.path}:{line}: no parameter line there") from None

    def main_params(self, kind: str | None = None) -> list[FldParam]:
        """Main-section parameter lines (optionally of one kind), file order."""
        return [p for p in self.params
                if p.substructure is None and (kind is None or p.kind == kind)]

    def with_values(self, updates: Mapping[tuple[int, int], float]) -> Fld:
        """A new Fld with ``values[field]`` of the record on ``line`` replaced,
        for each ``(line, field): value``; untouched lines stay byte-identical."""
        lines = list(self.lines)
        for (lineno, fieldno), value in updates.items():
            rec = self.record(lineno)
            if not 0 <= fieldno < len(rec.spans):
                raise ParameterError(
                    f"{self.path}:{lineno}: has {len(rec.spans)} value fields, not field {fieldno}")
            # a widened number may use blanks to its left, but not the atom columns
            # (1-23 of a -2 line, 1-5 of a vdW row) or the previous number
            floor = rec.spans[fieldno - 1][1] + 1 if fieldno else (
                23 if isinstance(rec, FldParam) else 5)
            lines[lineno - 1] = _replace_number(lines[lineno - 1], rec.spans[fieldno],
                                                float(value), self.path, lineno, floor)
        return parse_fld("\n".join(lines), self.path, encoding=self.encoding)


# --- reading ---------------------------------------------------------------------------------


def read_fld(path: str | Path) -> Fld:
    """Read an MM3* ``.fld`` file (``.gz`` transparently). UTF-8, falling back
    to Latin-1 (both round-trip every byte)."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ParseError(f"cannot read file: {exc.strerror or exc}", name) from None
    if name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ParseError(f"not a valid gzip file: {exc}", name) from None
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = raw.decode("latin-1"), "latin-1"
    if "\x00" in text:
        raise ParseError("binary data (NUL byte) in a text file", name,
                         text.count("\n", 0, text.index("\x00")) + 1)
    return parse_fld(text, name, encoding=encoding)


def write_fld(fld: Fld, path: str | Path) -> None:
    """Write ``fld`` (gzip-compressed if ``path`` ends in ``.gz``)."""
    data = fld.text().encode(fld.encoding)
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    Path(path).write_bytes(data)


def parse_fld(text: str, path: str = "<string>", *, encoding: str = "utf-8") -> Fld:
    """Parse the text of a ``.fld`` file (see the module docstring)."""
    p = _Parser(text.split("\n"), path)
    p.run()
    params = tuple(p.params)
    vdw = tuple(p.vdw)
    by_line: dict[int, FldParam | FldVdw] = {r.line: r for r in params}
    by_line.update({r.line: r for r in vdw})
    return Fld(path, tuple(p.lines), encoding, p.factors, tuple(p.selections), p.equivalences,
               params, vdw, tuple(p.subs), by_line)


class _Parser:
    def __init__(self, lines: list[str], path: str):
        self.lines = lines
        self.path = path
        self.factors: dict[str, tuple[int, float]] = {}
        self.selections: list[tuple[int, str, str]] = []
        self.equivalences: dict[str, tuple[str, ...]] = {}
        self.params: list[FldParam] = []
        self.vdw: list[FldVdw] = []
        self.subs: list[FldSubstructure] = []

    def error(self, message: str, line: int) -> ParseError:
        return ParseError(message, self.path, line)

    def run(self) -> None:
        state = "title"
        sub: dict | None = None
        for k, raw in enumerate(self.lines):
            n = k + 1
            line = raw.rstrip("\r")
            stripped = line.strip()
            if not stripped:
                continue
            if re.match(r"-\d", line):
                fmt = line.split()[0]
                if fmt not in ("-1", "-2", "-3", "-5", "-6"):
                    raise self.error(f"unknown format line {fmt!r} (expected -1, -2, -3, -5, "
                                     "-6)", n)
                if fmt == "-3":
                    self._close_sub(sub)
                    sub = {"params": []}
                    state = "sub_name"
                elif fmt == "-2" and state in ("sub_pattern_done", "sub_params"):
                    state = "sub_params"
                elif fmt == "-2" and state.startswith("sub"):
                    raise self.error("-2 before the substructure's name and 9 pattern line", n)
                else:
                    state = {"-1": "header", "-2": "params", "-5": "equiv", "-6": "vdw"}[fmt]
                continue
            if state == "title":
                continue
            if state == "sub_name":
                if line[1:2] not in ("C", "S"):
                    raise self.error("expected a substructure name line ' C  name' after -3", n)
                sub.update(name=line[2:].strip(), name_line=n, stop=line[1] == "S")
                state = "sub_pattern"
                continue
            if line.startswith(" C") or line.startswith(" c"):
                continue  # comment
            if state == "header":
                self._header(line, n)
            elif state == "equiv":
                self._equivalence(line, n)
            elif state == "vdw":
                if stripped.upper().startswith("END OF"):
                    state = "after_vdw"
                else:
                    self.vdw.append(self._vdw(line, n))
            elif state == "params":
                self._param(line, n, None)
            elif state == "sub_pattern":
                if line[:2] != " 9":
                    raise self.error("expected the substructure pattern line ' 9  <pattern>'", n)
                tokens = line[2:].split()
                if not tokens:
                    raise self.error("empty substructure pattern", n)
                atoms, bonds = parse_pattern(tokens[0], self.path, n)
                sub.update(pattern=tokens[0], pattern_line=n, pattern_atoms=atoms,
                           pattern_bonds=bonds)
                state = "sub_pattern_done"
            elif state == "sub_params":
                self.params.append(self._param(line, n, sub))
                sub["params"].append(len(self.params) - 1)
            elif state == "sub_pattern_done":
                raise self.error("expected -2 after the substructure pattern line", n)
            else:  # after_vdw: only comments / format lines are allowed
                raise self.error(f"unexpected line outside any section: {stripped[:40]!r}", n)
        if sub is not None and "pattern" not in sub and "name" in sub:
            raise self.error("file ends inside a substructure header", len(self.lines))
        self._close_sub(sub)

    def _close_sub(self, sub: dict | None) -> None:
        if sub is None or "name" not in sub:
            return
        if "pattern" not in sub:
            raise self.error("substructure has no ' 9' pattern line", sub["name_line"])
        self.subs.append(FldSubstructure(
            index=len(self.subs), name=sub["name"], name_line=sub["name_line"], stop=sub["stop"],
            pattern=sub["pattern"], pattern_line=sub["pattern_line"],
            pattern_atoms=sub["pattern_atoms"], pattern_bonds=sub["pattern_bonds"],
            params=tuple(sub["params"])))
        # tag the substructure's parameter lines with its index
        for i in sub["params"]:
            p = self.params[i]
            n_pat = len(sub["pattern_atoms"])
            for a in p.atoms:
                if a.isdigit() and a != "00" and not 1 <= int(a) <= n_pat:
                    raise self.error(
                        f"pattern atom number {a} out of range 1..{n_pat} of the substructure "
                        f"pattern {sub['pattern']!r}", p.line)
            self.params[i] = FldParam(**{**p.__dict__, "substructure": len(self.subs) - 1})

    def _header(self, line: str, n: int) -> None:
        tok = line.split()
        if len(tok) < 3:
            raise self.error("expected '0  NAME  equation  factor' in the introductory section", n)
        name = tok[1]
        if not tok[2].lstrip("-").isdigit():
            raise self.error(f"expected an equation number, found {tok[2]!r}", n)
        eq = int(tok[2])
        if name == "SEL":
            self.selections.append((eq, tok[3] if len(tok) > 3 else "", " ".join(tok[4:])))
            return
        if len(tok) < 4 or not _is_number(tok[3]):
            raise self.error(f"expected a conversion factor for {name}, found "
                             f"{tok[3] if len(tok) > 3 else 'nothing'!r}", n)
        self.factors[name] = (eq, float(tok[3]))

    def _equivalence(self, line: str, n: int) -> None:
        tok = line.split()
        if len(tok) < 3 or not tok[0].isdigit():
            raise self.error("expected 'n  NEW  TYPE1 TYPE2 ...' in the equivalence section", n)
        self.equivalences[tok[1]] = tuple(tok[2:])

    def _vdw(self, line: str, n: int) -> FldVdw:
        body = line[:_MAIN_COMMENT_COL]
        toks = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", body)]
        if not toks or not _TYPE_RE.fullmatch(toks[0][2]):
            raise self.error("expected a van der Waals row '  TYPE  radius  epsilon  offset'", n)
        values, spans, rest = [], [], toks[1:]
        while rest and "." in rest[0][2] and rest[0][2] != ".":
            s, e, t = rest.pop(0)
            if not _is_number(t):
                raise self.error(f"non-numeric van der Waals field {t!r}", n)
            values.append(float(t))
            spans.append((s, e))
        if len(values) < 3 or len(values) > 4:
            raise self.error(f"expected radius, epsilon, offset [, charge]; found {len(values)} "
                             "numbers", n)
        if not rest or not _DESC_RE.fullmatch(rest[0][2]):
            bad = rest[0][2] if rest else "nothing"
            raise self.error(f"expected an attached-atom descriptor like 0000, found {bad!r}", n)
        desc = rest.pop(0)[2]
        return FldVdw(n, toks[0][2], values[0], values[1], values[2],
                      values[3] if len(values) == 4 else None, desc, tuple(spans),
                      tuple(t for _, _, t in rest), line[_MAIN_COMMENT_COL:].strip())

    def _param(self, line: str, n: int, sub: dict | None) -> FldParam | None:
        code = line[:2]
        comment_col = _MAIN_COMMENT_COL if sub is None else _SUB_COMMENT_COL
        body = line[:comment_col]
        toks = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", body[2:])]
        toks = [(s + 2, e + 2, t) for s, e, t in toks]
        alt = code[0] if code[0].isalpha() else ""
        if code[0] not in " " and not alt:
            raise self.error(f"bad interaction code {code!r}", n)
        kind = INTERACTION_KINDS.get(code[1])
        if kind is None:
            raise self.error(f"unknown interaction code {code!r} (expected 1-8 or A)", n)
        if sub is not None and kind == "hbond":
            raise self.error("hydrogen-bond lines are not allowed in a substructure", n)
        if sub is None and not body[2:55].strip():  # continuation: second-level descriptors
            descs = [t for _, _, t in toks if _DESC_RE.fullmatch(t)]
            if not descs or len(descs) != len([t for t in toks if len(t[2]) > 3]):
                raise self.error("expected second-level descriptors on a continuation line", n)
            return self._continuation(line, n, code, descs, sub)
        atoms: list[str] = []
        bonds: list[str] = []
        i = 0
        while i < len(toks) and not ("." in toks[i][2] and toks[i][2] != "."):
            t = toks[i][2]
            if t in BOND_SYMBOLS:
                if not atoms or len(bonds) >= len(atoms):
                    raise self.error(f"misplaced bond symbol {t!r}", n)
                bonds.append(t)
            elif _TYPE_RE.fullmatch(t):
                if len(bonds) < len(atoms):
                    bonds.append("")
                atoms.append(t)
            else:
                raise self.error(f"expected an atom type or pattern number, found {t!r}", n)
            i += 1
        values, spans = [], []
        while i < len(toks) and ("." in toks[i][2] and toks[i][2] != "."):
            s, e, t = toks[i]
            if not _is_number(t):
                raise self.error(f"non-numeric parameter field {t!r}", n)
            values.append(float(t))
            spans.append((s, e))
            i += 1
        descs, flags = [], []
        cont = False
        for _, _, t in toks[i:]:
            m = _DESC_RE.fullmatch(t)
            if m and not flags:
                if m.group(1):
                    if descs or m.group(1) != "1":
                        raise self.error(f"bad descriptor {t!r} (only the first may carry the "
                                         "continuation flag 1)", n)
                    cont = True
                descs.append(m.group(2))
            elif len(t) <= 3:
                flags.append(t)
            else:
                raise self.error(f"unexpected field {t!r} after the parameter values", n)
        need = _N_ATOMS.get(kind)
        if need is not None and len(atoms) != need:
            raise self.error(f"{kind} line needs {need} atoms, found {len(atoms)}", n)
        # one descriptor per atom (substructure lines may carry unused extra columns)
        if descs and (len(descs) < len(atoms) if sub is not None else len(descs) != len(atoms)):
            raise self.error(f"{len(descs)} attached-atom descriptors for {len(atoms)} atoms", n)
        if len(values) < _MIN_VALUES[kind] or len(values) > 3:
            raise self.error(f"{kind} line needs {_MIN_VALUES[kind]} to 3 numeric values, found "
                             f"{len(values)}", n)
        if sub is not None:
            if any(b for b in bonds):
                raise self.error("bond symbols are not allowed in substructure lines", n)
            bonds = [""] * (len(atoms) - 1)
        p = FldParam(n, kind, alt, tuple(atoms), tuple(bonds), tuple(values), tuple(spans),
                     tuple(descs), (), n if cont else None, tuple(flags),
                     line[comment_col:].strip())
        if sub is None:
            self.params.append(p)
        return p

    def _continuation(self, line, n, code, descs, sub):
        target = self.params[-1] if self.params else None
        if (sub is not None or target is None or target.continuation_line != target.line
                or target.descriptors2 or code[1] != _code_of(target.kind)):
            raise self.error("descriptor continuation line without a preceding line flagged '1'", n)
        if len(descs) != len(target.descriptors):
            raise self.error(f"continuation line has {len(descs)} descriptors, the line it "
                             f"continues has {len(target.descriptors)}", n)
        self.params[-1] = FldParam(**{**target.__dict__, "descriptors2": tuple(descs),
                                      "continuation_line": n})
        return None


def _code_of(kind: str) -> str:
    for c, k in INTERACTION_KINDS.items():
        if k == kind:
            return c
    return "?"


# --- substructure patterns -------------------------------------------------------------------


def parse_pattern(
    pattern: str, path: str = "<pattern>", line: int | None = None
) -> tuple[tuple[str, ...], tuple[tuple[int, int, str], ...]]:
    """Parse MacroModel's linear substructure notation.

    Atoms are atom types (``C2``, wildcard ``00``, equivalences such as
    ``PX``, or a bare element letter); a number refers back to an earlier
    atom (1-based) and closes a ring; ``(`` ... ``)`` is a branch; bond
    symbols are ``-`` single, ``=`` double, ``%``/``#`` triple, ``*`` any
    bond, ``.`` zero-order (coordination) bond. A missing symbol means ``-``.
    After a ring closure the walk continues from the referenced atom.
    Returns (atom types, bonds as (i, j, symbol) with 0-based i, j).
    """
    atoms: list[str] = []
    bonds: list[tuple[int, int, str]] = []
    stack: list[int] = []
    current: int | None = None
    pending: str | None = None
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch in BOND_SYMBOLS:
            if current is None or pending is not None:
                raise ParseError(f"misplaced bond symbol {ch!r} in pattern {pattern!r}", path, line)
            pending = ch
            i += 1
        elif ch == "(":
            if current is None:
                raise ParseError(f"branch before any atom in pattern {pattern!r}", path, line)
            stack.append(current)
            i += 1
        elif ch == ")":
            if not stack or pending is not None:
                raise ParseError(f"unbalanced ')' in pattern {pattern!r}", path, line)
            current = stack.pop()
            i += 1
        elif ch.isalnum():
            j = i
            while j < len(pattern) and pattern[j].isalnum():
                j += 1
            tok = pattern[i:j]
            i = j
            symbol = pending if pending is not None else "-"
            if tok.isdigit() and tok != "00":
                ref = int(tok) - 1
                if current is None or not 0 <= ref < len(atoms) or ref == current:
                    raise ParseError(f"bad ring reference {tok!r} in pattern {pattern!r}", path,
                                     line)
                bonds.append((current, ref, symbol))
                current = ref
            else:
                if len(tok) > 2:
                    raise ParseError(f"atom type {tok!r} longer than 2 characters in pattern "
                                     f"{pattern!r}", path, line)
                atoms.append(tok)
                if current is not None:
                    bonds.append((current, len(atoms) - 1, symbol))
                current = len(atoms) - 1
            pending = None
        else:
            raise ParseError(f"unexpected character {ch!r} in pattern {pattern!r}", path, line)
    if stack or pending is not None or not atoms:
        raise ParseError(f"incomplete pattern {pattern!r}", path, line)
    return tuple(atoms), tuple(bonds)


# --- editing ----------------------------------------------------------------------------------


def _replace_number(text: str, span: tuple[int, int], value: float, path: str, lineno: int,
                    floor: int = 0) -> str:
    """Write ``value`` into the number field ``text[span]`` with the same number
    of decimals, right-aligned at the field's end (no change if it prints the same)."""
    start, end = span
    old = text[start:end]
    if float(old) == value:
        return text
    decimals = len(old.split(".")[1]) if "." in old else 0
    new = f"{value:.{decimals}f}"
    if float(new) == 0.0:
        new = f"{0.0:.{decimals}f}"
    if new == old:
        return text
    width = len(new)
    new_start = end - width
    if width > len(old):
        gap = text[new_start:start]
        if new_start < max(floor, 1) or gap.strip() or text[new_start - 1] != " ":
            raise ParameterError(f"{path}:{lineno}: value {value!r} does not fit in its field "
                                 f"(columns {start + 1}-{end})")
        return text[:new_start] + new + text[end:]
    return text[:start] + new.rjust(len(old)) + text[end:]
