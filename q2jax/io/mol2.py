"""Tripos MOL2 files: ``read_mol2(path, index=None)`` and ``read_mol2_all(path)``.

Written here: cclib 1.8.1 has no MOL2 parser of its own (only through Open
Babel, which q2jax does not depend on). Per molecule the reader uses the
``@<TRIPOS>MOLECULE`` counts line (atoms, bonds), the ``@<TRIPOS>ATOM`` rows
``id name x y z type [subst_id subst_name [charge]]`` (Å) and the
``@<TRIPOS>BOND`` rows ``id origin target type``; the counts must match the
rows, ids must run 1, 2, ..., and other record types are skipped.

``atom_types`` are the type column as written (SYBYL ``C.3``, or the
MacroModel/AMBER-style names the bundled files use: ``C3``, ``HC``, ``RH``).
The element is the SYBYL element when the type has one (``C.ar`` -> C, a
bare element type such as ``Cl``); otherwise it is read from the atom name:
its leading letters, where a two-letter reading and a one-letter reading are
both elements (``CA``, ``HG``) the type column decides (its leading letters
must match one of them), else the name is ambiguous and a ParseError is
raised.

Bond type ``nc`` ("not connected") rows are kept as bonds by default
(``include_nc=True``): in the bundled Rh-enamide files they are exactly the
order-0 Rh-O and Rh-C bonds of the Maestro files, which MacroModel gives
stretch terms.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from q2jax.elements import ELEMENTS
from q2jax.io._build import build, pick_one
from q2jax.io._text import TextFile, parse_float, parse_int, read_text
from q2jax.io.qmdata import QMData

__all__ = ["read_mol2", "read_mol2_all"]

_BOND_TYPES = {"1", "2", "3", "am", "ar", "du", "un", "nc"}


def read_mol2(path: str | Path, *, index: int | None = None, include_nc: bool = True) -> QMData:
    """One molecule of a MOL2 file (``index=None``: the file must hold one)."""
    return pick_one(read_mol2_all(path, include_nc=include_nc), index, str(path), "molecule")


def read_mol2_all(path: str | Path, *, include_nc: bool = True) -> list[QMData]:
    """Every molecule of a MOL2 file: elements, Å coordinates, atom types,
    bonds (0-based) and charges (when the ATOM rows have them)."""
    f = read_text(path)
    starts = [ln for ln, t in f.numbered() if t.strip().upper() == "@<TRIPOS>MOLECULE"]
    if not starts:
        raise f.missing("no @<TRIPOS>MOLECULE record")
    first_rti = next((ln for ln, t in f.numbered() if t.strip().startswith("@<TRIPOS>")), None)
    if first_rti != starts[0]:
        raise f.error("records before the first @<TRIPOS>MOLECULE", first_rti)
    out = []
    for k, start in enumerate(starts):
        end = starts[k + 1] - 1 if k + 1 < len(starts) else len(f.lines)
        out.append(_molecule(f, start, end, include_nc))
    return out


def _molecule(f: TextFile, start: int, end: int, include_nc: bool) -> QMData:
    title = f.line(start + 1, "the molecule name").strip()
    counts = f.line(start + 2, "the counts line").split()
    if not counts:
        raise f.error("empty counts line (expected 'num_atoms [num_bonds ...]')", start + 2)
    n_atoms = parse_int(counts[0], f, start + 2, "the number of atoms")
    n_bonds = parse_int(counts[1], f, start + 2, "the number of bonds") if len(counts) > 1 else 0
    if n_atoms <= 0 or n_bonds < 0:
        raise f.error("atom count must be positive and bond count non-negative", start + 2)
    records: dict[str, int] = {}
    for ln in range(start + 1, end + 1):
        t = f.lines[ln - 1].strip()
        if t.startswith("@<TRIPOS>"):
            name = t.upper()
            if name in records:
                raise f.error(f"record {t} appears twice in one molecule", ln)
            records[name] = ln
    if "@<TRIPOS>ATOM" not in records:
        raise f.error("molecule has no @<TRIPOS>ATOM record", start)
    rows = _record_rows(f, records["@<TRIPOS>ATOM"], end, n_atoms, "atom")
    symbols: list[str] = []
    types: list[str] = []
    coords = np.empty((n_atoms, 3))
    charges: list[float] = []
    for k, (ln, fields) in enumerate(rows):
        if len(fields) < 6:
            raise f.error(f"atom row needs 'id name x y z type', found {len(fields)} fields", ln)
        if parse_int(fields[0], f, ln, "an atom id") != k + 1:
            raise f.error(f"atom ids must run 1, 2, ...; expected {k + 1}", ln)
        coords[k] = [parse_float(v, f, ln, "a coordinate") for v in fields[2:5]]
        types.append(fields[5])
        symbols.append(_element(f, fields[1], fields[5], ln))
        if len(fields) >= 9:
            charges.append(parse_float(fields[8], f, ln, "a charge"))
    if charges and len(charges) != n_atoms:
        raise f.error("some atom rows have a charge and others do not", rows[0][0])
    bonds: list[tuple[int, int]] = []
    if n_bonds:
        if "@<TRIPOS>BOND" not in records:
            raise f.error(f"counts line announces {n_bonds} bonds but there is no "
                          "@<TRIPOS>BOND record", start + 2)
        for k, (ln, fields) in enumerate(_record_rows(f, records["@<TRIPOS>BOND"], end, n_bonds,
                                                      "bond")):
            if len(fields) < 4:
                raise f.error(f"bond row needs 'id origin target type', found {len(fields)} "
                              "fields", ln)
            if parse_int(fields[0], f, ln, "a bond id") != k + 1:
                raise f.error(f"bond ids must run 1, 2, ...; expected {k + 1}", ln)
            a = parse_int(fields[1], f, ln, "an atom id") - 1
            b = parse_int(fields[2], f, ln, "an atom id") - 1
            if not (0 <= a < n_atoms and 0 <= b < n_atoms):
                raise f.error(f"bond {a + 1}-{b + 1} refers to an atom outside 1..{n_atoms}", ln)
            kind = fields[3].lower()
            if kind not in _BOND_TYPES:
                raise f.error(f"unknown bond type {fields[3]!r}", ln)
            if kind != "nc" or include_nc:
                bonds.append((a, b))
    elif "@<TRIPOS>BOND" in records:
        _record_rows(f, records["@<TRIPOS>BOND"], end, 0, "bond")
    return build(f, symbols=symbols, coords=coords, atom_types=types, bonds=bonds,
                 charges=np.asarray(charges) if charges else None, name=title or None,
                 program="mol2", source_units={"coords": "angstrom"}, line=start)


def _record_rows(f: TextFile, rti: int, end: int, count: int, what: str):
    """The ``count`` non-blank rows after record line ``rti``; anything but a
    blank line or a new record after them is an error."""
    rows = []
    ln = rti + 1
    while len(rows) < count:
        if ln > end:
            raise f.error(f"expected {count} {what} rows, found {len(rows)}", min(ln, end))
        t = f.lines[ln - 1]
        if t.strip().startswith("@<TRIPOS>"):
            raise f.error(f"expected {count} {what} rows, found {len(rows)}", ln)
        if t.strip():
            rows.append((ln, t.split()))
        ln += 1
    while ln <= end:
        t = f.lines[ln - 1].strip()
        if t.startswith("@<TRIPOS>"):
            break
        if t:
            raise f.error(f"more {what} rows than the {count} announced", ln)
        ln += 1
    return rows


def _element(f: TextFile, name: str, atom_type: str, line: int) -> str:
    sybyl = atom_type.split(".", 1)[0]
    sym = sybyl[:1].upper() + sybyl[1:].lower()
    if ("." in atom_type or sybyl in ELEMENTS) and sym in ELEMENTS:
        return sym
    letters = ""
    for ch in name:
        if not ch.isalpha():
            break
        letters += ch
    one = letters[:1].upper()
    two = letters[:1].upper() + letters[1:2].lower()
    ok_one = one in ELEMENTS
    ok_two = len(letters) >= 2 and two in ELEMENTS
    if ok_one and ok_two:
        head = atom_type.upper()
        if head.startswith(two.upper()) and not head.startswith(one + "."):
            return two
        if head.startswith(one):
            return one
        raise f.error(f"atom name {name!r} is ambiguous ({one} or {two}) and type "
                      f"{atom_type!r} does not decide", line)
    if ok_two:
        return two
    if ok_one:
        return one
    raise f.error(f"cannot tell the element of atom {name!r} (type {atom_type!r})", line)
