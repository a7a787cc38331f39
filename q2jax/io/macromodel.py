"""Maestro ``.mae`` and MacroModel ``.mmo`` files: structures, MacroModel
atom types and connectivity.

Public readers (put first for the loaders that build on them)::

    read_mae(path, *, index=None, atom_typ=None, strict=True) -> QMData
    read_mae_all(path, *, atom_typ=None, strict=True) -> list[QMData]
    read_mmo(path, *, index=None, atom_typ=None) -> QMData
    read_mmo_all(path, *, atom_typ=None) -> list[QMData]
    read_mae_bond_orders(path) -> list[list[tuple[int, int, int]]]
    read_atom_typ(path) -> dict[int, MacroModelAtomType]
    MACROMODEL_ATOM_TYPES: dict[int, MacroModelAtomType]

Written here: cclib 1.8.1 reads neither format. Facts used:

- A ``.mae`` ``f_m_ct`` block stores each atom's MacroModel type as an
  integer (``i_m_mmod_type``), Å coordinates and ``i_m_atomic_number``;
  ``m_bond`` rows give 1-based ``i_m_from``/``i_m_to`` and ``i_m_order``.
  The integer is mapped to the two-character type name that MM3 ``.fld``
  files use (C3, H1, RH, ...) through Schrödinger's ``atom.typ`` table:
  :data:`MACROMODEL_ATOM_TYPES` holds its standard types 1-115 (atom.typ
  version 6.51); site types (Q2MM's 201-254, e.g. 250 = RH for the
  Rh-enamide set) come from an ``atom.typ`` file passed as ``atom_typ``.
  Names are case-sensitive (``CA`` united-atom CH, ``Ca`` calcium ion).
  An atom whose type's atomic number disagrees with ``i_m_atomic_number``
  is an error.
- Bonds of order 0 (the Rh-enamide Rh-O and Rh-C dative bonds) are bonds:
  MacroModel gives them stretch terms (they appear in the ``.mmo`` stretch
  list). Maestro may list every bond in both directions; that is accepted,
  any other duplicate is an error.
- A ``.mmo`` (MacroModel printout) holds, per structure, the stretch,
  bend, torsion and non-bonded lists, the header "Input Structure Name",
  "Total energy: <kJ/mol> (<kcal/mol>)" and a "Connection Table" with type
  names, charges, Å coordinates (4 decimals) and attached atoms (suffix
  ``-`` single, ``=`` double, ``%`` triple, none: order 0). The reader
  checks that the connection table is symmetric and equals the stretch
  list, and returns the MM energy (converted from kJ/mol) as ``energy``.
  Elements come from the type table; a type without an atomic number in
  atom.typ (Q2MM's ``RH``) takes the element its name spells.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from q2jax import units
from q2jax.elements import ELEMENTS
from q2jax.io._build import build, pick_one, symbol_from_number
from q2jax.io._m2io import M2ioBlock, M2ioParser, unquote
from q2jax.io._text import TextFile, parse_float, parse_int, read_text
from q2jax.io.qmdata import QMData

__all__ = [
    "read_mae",
    "read_mae_all",
    "read_mmo",
    "read_mmo_all",
    "read_mae_bond_orders",
    "read_atom_typ",
    "macromodel_atom_types",
    "MacroModelAtomType",
    "MACROMODEL_ATOM_TYPES",
]


class MacroModelAtomType(NamedTuple):
    """One row of atom.typ: type number, two-character name, atomic number
    (None where atom.typ has '!'; -1 lone pair, -2 dummy)."""

    number: int
    name: str
    atomic_number: int | None


# Schrödinger atom.typ v6.51, standard types (number, name, atomic number).
_STANDARD: tuple[tuple[int, str, int | None], ...] = (
    (1, "C1", 6), (2, "C2", 6), (3, "C3", 6), (4, "CA", 6), (5, "CB", 6), (6, "CC", 6),
    (7, "CD", 6), (8, "CE", 6), (9, "CF", 6), (10, "CM", 6), (11, "CP", 6), (12, "CR", 6),
    (14, "C0", 6), (15, "O2", 8), (16, "O3", 8), (17, "OA", 8), (18, "OM", 8), (19, "OW", 8),
    (20, "OP", 8), (21, "OQ", 8), (23, "O0", 8), (24, "N1", 7), (25, "N2", 7), (26, "N3", 7),
    (27, "NA", 7), (28, "NB", 7), (29, "NC", 7), (30, "ND", 7), (31, "N4", 7), (32, "N5", 7),
    (33, "NE", 7), (34, "NF", 7), (35, "NG", 7), (36, "NH", 7), (37, "NI", 7), (38, "NM", 7),
    (39, "NP", 7), (40, "N0", 7), (41, "H1", 1), (42, "H2", 1), (43, "H3", 1), (44, "H4", 1),
    (45, "H5", 1), (48, "H0", 1), (49, "S1", 16), (50, "SA", 16), (51, "SM", 16),
    (52, "S0", 16), (53, "P3", 15), (54, "B2", 5), (55, "B3", 5), (56, "F0", 9), (57, "Cl", 17),
    (58, "Br", 35), (59, "I0", 53), (60, "Si", 14), (61, "Du", -2), (62, "Z0", None),
    (63, "Lp", -1), (64, "00", None), (65, "Li", 3), (66, "Na", 11), (67, "K0", 19),
    (68, "Rb", 37), (69, "Cs", 55), (70, "Ca", 20), (71, "Ba", 56), (72, "Mg", 12),
    (73, "M2", 25), (74, "M3", 25), (75, "M4", 25), (76, "M5", 25), (77, "M6", 25),
    (78, "M7", 25), (79, "f2", 26), (80, "f3", 26), (81, "o2", 27), (82, "o3", 27),
    (83, "n2", 28), (84, "n3", 28), (85, "c1", 29), (86, "c2", 29), (87, "Zn", 30),
    (88, "m3", 42), (89, "m4", 42), (90, "m5", 42), (91, "m6", 42), (92, "Sr", 38),
    (93, "L0", 3), (94, "M0", 12), (95, "As", 33), (100, "SP", 16), (101, "S2", 16),
    (102, "Cm", 17), (103, "B0", 5), (104, "Fm", 9), (105, "Bm", 35), (106, "Im", 53),
    (107, "P5", 15), (108, "P0", 15), (109, "S4", 16), (110, "S6", 16), (111, "P4", 15),
    (112, "Se", 34), (113, "ST", 16), (114, "Sm", 16), (115, "Om", 8),
)

MACROMODEL_ATOM_TYPES: dict[int, MacroModelAtomType] = {
    num: MacroModelAtomType(num, name, z) for num, name, z in _STANDARD
}

AtomTyp = str | Path | dict[int, MacroModelAtomType] | None


def read_mae(path: str | Path, *, index: int | None = None, atom_typ: AtomTyp = None,
             strict: bool = True) -> QMData:
    """One structure (``f_m_ct`` block) of a Maestro file; with ``index=None``
    the file must hold exactly one. ``atom_typ``: an atom.typ path or table
    adding site-specific MacroModel types to the standard ones."""
    return pick_one(read_mae_all(path, atom_typ=atom_typ, strict=strict), index,
                    str(path), "structure")


def read_mae_all(path: str | Path, *, atom_typ: AtomTyp = None,
                 strict: bool = True) -> list[QMData]:
    """Every ``f_m_ct`` structure of a Maestro file, in file order: element
    symbols, Å coordinates, MacroModel type names, bonds (0-based, all
    orders), partial charges (``r_m_charge1``) when present. With ``strict``
    (default) a structure must carry MacroModel atom types
    (``i_m_mmod_type``) and, if it has more than one atom, an ``m_bond``
    table; ``strict=False`` reads element-only or bond-less structures."""
    f = read_text(path)
    table = macromodel_atom_types(atom_typ)
    blocks = M2ioParser(f).parse()
    out = []
    for blk in blocks:
        if blk.name == "p_m_ct":
            raise f.error("partial ct blocks (p_m_ct) are not supported", blk.line)
        if blk.name != "f_m_ct":
            continue
        out.append(_mae_structure(f, blk, table, strict))
    if not out:
        raise f.missing("no f_m_ct structure block")
    return out


def read_mmo(path: str | Path, *, index: int | None = None, atom_typ: AtomTyp = None) -> QMData:
    """One structure of a MacroModel ``.mmo``; ``index=None`` needs exactly one."""
    return pick_one(read_mmo_all(path, atom_typ=atom_typ), index, str(path), "structure")


def read_mmo_all(path: str | Path, *, atom_typ: AtomTyp = None) -> list[QMData]:
    """Every structure of a MacroModel ``.mmo`` printout: type names,
    elements, Å coordinates, bonds, charges (QQ column) and the MM total
    energy (kcal/mol, converted from kJ/mol)."""
    f = read_text(path)
    table = macromodel_atom_types(atom_typ)
    by_name: dict[str, MacroModelAtomType] = {}
    for t in table.values():
        by_name.setdefault(t.name, t)
    tables = [ln for ln, t in f.numbered() if t.strip() == "Connection Table"]
    if not tables:
        raise f.missing("no 'Connection Table' (not a MacroModel .mmo printout?)")
    out = []
    prev = 0
    for ln in tables:
        out.append(_mmo_structure(f, prev, ln, by_name))
        prev = ln
    tail = prev
    while not f.lines[tail - 1].lstrip().startswith("Total QQ"):
        tail += 1
    for ln in range(tail + 1, len(f.lines) + 1):
        t = f.lines[ln - 1].strip()
        if t and t != "1" and not t.startswith("Total Sol charge"):
            raise f.error("a structure record after the last connection table is incomplete "
                          "(file truncated?)", ln)
    return out


def read_atom_typ(path: str | Path) -> dict[int, MacroModelAtomType]:
    """Types defined in an atom.typ file: '#' starts a comment, each other
    line is ``number atomic_number mass name ...`` ('!' = unspecified)."""
    f = read_text(path)
    out: dict[int, MacroModelAtomType] = {}
    for ln, t in f.numbered():
        body = t.split("#", 1)[0].split()
        if not body:
            continue
        if len(body) < 4:
            raise f.error("expected 'number atomic_number mass name ...'", ln)
        num = parse_int(body[0], f, ln, "an atom-type number")
        z = None if body[1] == "!" else parse_int(body[1], f, ln, "an atomic number")
        out[num] = MacroModelAtomType(num, body[3], z)
    if not out:
        raise f.missing("no atom types defined")
    return out


def macromodel_atom_types(atom_typ: AtomTyp = None) -> dict[int, MacroModelAtomType]:
    """The standard table updated with the types of ``atom_typ`` (a path to
    an atom.typ file or a ready table); later definitions win."""
    table = dict(MACROMODEL_ATOM_TYPES)
    if atom_typ is None:
        return table
    extra = atom_typ if isinstance(atom_typ, dict) else read_atom_typ(atom_typ)
    table.update(extra)
    return table


# ------------------------------------------------------------------- mae parse


def _mae_structure(f: TextFile, blk: M2ioBlock, table: dict[int, MacroModelAtomType],
                   strict: bool) -> QMData:
    if "m_atom" not in blk.tables:
        raise f.error("structure has no m_atom table", blk.line)
    cols, rows, tline = blk.tables["m_atom"]
    col = {c: k + 1 for k, c in enumerate(cols)}
    for need in ("r_m_x_coord", "r_m_y_coord", "r_m_z_coord"):
        if need not in col:
            raise f.error(f"m_atom has no {need} column", tline)
    if "i_m_mmod_type" not in col and (strict or "i_m_atomic_number" not in col):
        raise f.error("m_atom has no i_m_mmod_type column (MacroModel atom types); pass "
                      "strict=False to read elements only", tline)
    n = len(rows)
    if n == 0:
        raise f.error("m_atom has no atoms", tline)
    symbols: list[str] = []
    types: list[str] = []
    coords = np.empty((n, 3))
    charges = np.empty(n) if "r_m_charge1" in col else None
    for k, (vals, ln) in enumerate(rows):
        if parse_int(vals[0], f, ln, "an atom index") != k + 1:
            raise f.error(f"atom indices must run 1, 2, ...; expected {k + 1}", ln)
        z = None
        if "i_m_atomic_number" in col:
            z = parse_int(vals[col["i_m_atomic_number"]], f, ln, "an atomic number")
        if "i_m_mmod_type" in col:
            num = parse_int(vals[col["i_m_mmod_type"]], f, ln, "a MacroModel atom type")
            if num not in table:
                raise f.error(f"unknown MacroModel atom type {num} (atom {k + 1}); pass "
                              "atom_typ='.../atom.typ' that defines it", ln)
            t = table[num]
            if z is not None and t.atomic_number is not None and t.atomic_number != z:
                raise f.error(f"atom {k + 1}: MacroModel type {num} ({t.name}) is element "
                              f"{t.atomic_number}, but i_m_atomic_number is {z}", ln)
            types.append(t.name)
            z = z if z is not None else t.atomic_number
            if z is None:
                raise f.error(f"atom {k + 1}: type {t.name} has no atomic number", ln)
        symbols.append(symbol_from_number(z, f, ln))
        coords[k] = [parse_float(vals[col[c]], f, ln, "a coordinate")
                     for c in ("r_m_x_coord", "r_m_y_coord", "r_m_z_coord")]
        if charges is not None:
            charges[k] = parse_float(vals[col["r_m_charge1"]], f, ln, "a partial charge")
    if strict and n > 1 and "m_bond" not in blk.tables:
        raise f.error(f"structure with {n} atoms has no m_bond table (pass strict=False to "
                      "accept a structure without bonds)", blk.line)
    bonds = [(a, b) for a, b, _ in _mae_bonds(f, blk, n)]
    title = unquote(blk.props["s_m_title"][0]).strip() if "s_m_title" in blk.props else ""
    return build(f, symbols=symbols, coords=coords, atom_types=types or None, bonds=bonds,
                 charges=charges, name=title or None, program="maestro",
                 source_units={"coords": "angstrom"}, line=blk.line)


def _mae_bonds(f: TextFile, blk: M2ioBlock, n: int) -> list[tuple[int, int, int]]:
    """(i, j, order), 0-based, i < j, in file order; a bond listed in both
    directions (when every bond is) counts once."""
    if "m_bond" not in blk.tables:
        return []
    cols, rows, tline = blk.tables["m_bond"]
    col = {c: k + 1 for k, c in enumerate(cols)}
    if "i_m_from" not in col or "i_m_to" not in col:
        raise f.error("m_bond needs i_m_from and i_m_to columns", tline)
    listed: dict[tuple[int, int], tuple[int, int]] = {}
    for k, (vals, ln) in enumerate(rows):
        if parse_int(vals[0], f, ln, "a bond index") != k + 1:
            raise f.error(f"bond indices must run 1, 2, ...; expected {k + 1}", ln)
        a = parse_int(vals[col["i_m_from"]], f, ln, "an atom number") - 1
        b = parse_int(vals[col["i_m_to"]], f, ln, "an atom number") - 1
        order = parse_int(vals[col["i_m_order"]], f, ln, "a bond order") if "i_m_order" in col \
            else 1
        if not (0 <= a < n and 0 <= b < n) or a == b:
            raise f.error(f"bond {a + 1}-{b + 1} is not between two different atoms 1..{n}", ln)
        if (a, b) in listed:
            raise f.error(f"bond {a + 1}-{b + 1} listed twice", ln)
        listed[(a, b)] = (order, ln)
    both = all((b, a) in listed and listed[(b, a)][0] == o for (a, b), (o, _) in listed.items())
    out = []
    for (a, b), (order, ln) in listed.items():
        if (b, a) in listed:
            if not both:
                raise f.error(f"bond {a + 1}-{b + 1} listed in both directions, but not every "
                              "bond is (or with another order)", ln)
            if a > b:
                continue
        out.append((min(a, b), max(a, b), order))
    return out


def read_mae_bond_orders(path: str | Path) -> list[list[tuple[int, int, int]]]:
    """Bonds ``(i, j, order)`` (0-based, i < j, file order; order 0 for the
    dative bonds) of every ``f_m_ct`` structure, parsed and checked like
    :func:`read_mae_all` (which keeps only the pairs)."""
    f = read_text(path)
    out = []
    for blk in M2ioParser(f).parse():
        if blk.name == "f_m_ct":
            n = len(blk.tables["m_atom"][1]) if "m_atom" in blk.tables else 0
            out.append(_mae_bonds(f, blk, n))
    if not out:
        raise f.missing("no f_m_ct structure block")
    return out


# ------------------------------------------------------------------- mmo parse

_CT_ROW_RE = re.compile(
    r"^\s*(\S+)\s*\(\s*(\d+)\)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)(.*)$")
_ATTACH_RE = re.compile(r"(\d+)([-=%]?)")
_ORDER = {"-": 1, "=": 2, "%": 3, "": 0}


def _mmo_structure(f: TextFile, prev: int, ct_line: int, by_name) -> QMData:
    title = None
    energy = None
    stretch = None
    for ln in range(prev + 1, ct_line):
        t = f.lines[ln - 1]
        if "Input Structure Name:" in t:
            title = f.line(ln + 1, "the structure name").strip().strip("*").strip()
        elif t.startswith("Total energy:"):
            m = re.match(r"Total energy:\s+(\S+)\s+kJ/mol", t)
            if m is None:
                raise f.error("malformed 'Total energy' line", ln)
            energy = parse_float(m.group(1), f, ln, "the total energy")
        elif "BOND LENGTHS AND STRETCH ENERGIES" in t:
            stretch = ln
    if energy is None:
        raise f.error("no 'Total energy:' line for this structure", ct_line)
    k = ct_line + 1
    while not f.line(k, "the connection-table header").strip().startswith("Type  Number"):
        k += 1
        if k > ct_line + 8:
            raise f.error("connection-table header 'Type  Number ...' not found", ct_line)
    k += 1
    if f.line(k, "a blank line").strip():
        raise f.error("expected a blank line before the connection-table rows", k)
    k += 1
    types: list[str] = []
    symbols: list[str] = []
    coords: list[list[float]] = []
    charges: list[float] = []
    attached: list[list[tuple[int, int]]] = []
    row_lines: list[int] = []
    while True:
        t = f.line(k, "a connection-table row or a blank line")
        if not t.strip():
            break
        m = _CT_ROW_RE.match(t)
        if m is None:
            raise f.error("malformed connection-table row", k)
        if int(m.group(2)) != len(types) + 1:
            raise f.error(f"atom numbers must run 1, 2, ...; expected {len(types) + 1}", k)
        name = m.group(1)
        types.append(name)
        symbols.append(_element_of_type(f, name, by_name, k))
        charges.append(parse_float(m.group(3), f, k, "a charge"))
        coords.append([parse_float(m.group(i), f, k, "a coordinate") for i in (5, 6, 7)])
        links = []
        for tok in m.group(10).split():
            am = _ATTACH_RE.fullmatch(tok)
            if am is None:
                raise f.error(f"malformed attached-atom entry {tok!r}", k)
            links.append((int(am.group(1)) - 1, _ORDER[am.group(2)]))
        attached.append(links)
        row_lines.append(k)
        k += 1
    if not f.line(k + 1, "the total-charge line").strip().startswith("Total QQ"):
        raise f.error("connection table must be followed by 'Total QQ charge' (truncated?)", k + 1)
    n = len(types)
    if n == 0:
        raise f.error("empty connection table", ct_line)
    bonds: dict[tuple[int, int], int] = {}
    for i, links in enumerate(attached):
        for j, order in links:
            if not 0 <= j < n or j == i:
                raise f.error(f"atom {i + 1} attached to invalid atom {j + 1}", row_lines[i])
            key = (min(i, j), max(i, j))
            if key in bonds and bonds[key] != order:
                raise f.error(f"bond {key[0] + 1}-{key[1] + 1} has two different orders",
                              row_lines[i])
            bonds[key] = order
    for i, links in enumerate(attached):
        js = [j for j, _ in links]
        if len(set(js)) != len(js):
            raise f.error(f"atom {i + 1} lists an attached atom twice", row_lines[i])
        for j in js:
            if i not in [x for x, _ in attached[j]]:
                raise f.error(f"atom {i + 1} lists {j + 1} but not the reverse", row_lines[j])
    if stretch is not None:
        listed = _stretch_pairs(f, stretch)
        extra = sorted((ln, pair) for pair, ln in listed.items() if pair not in bonds)
        if extra:
            ln, (a, b) = extra[0]
            raise f.error("the stretch list and the connection table disagree on the bonds: "
                          f"stretch {a + 1}-{b + 1} is not a bond of the table", ln)
        if set(listed) != set(bonds):
            a, b = min(set(bonds) - set(listed))
            raise f.error("the stretch list and the connection table disagree on the bonds: "
                          f"bond {a + 1}-{b + 1} has no stretch", stretch)
    return build(f, symbols=symbols, coords=np.asarray(coords), atom_types=types,
                 bonds=sorted(bonds), charges=np.asarray(charges),
                 energy=energy * units.KJ_TO_KCAL,
                 name=title, program="macromodel",
                 source_units={"coords": "angstrom", "energy": "kJ/mol"}, line=ct_line)


def _stretch_pairs(f: TextFile, ln: int) -> dict[tuple[int, int], int]:
    """The bonds (0-based, sorted) of the stretch table at ``ln`` and their lines."""
    m = re.search(r"(\d+)\s+Stretch interactions present", f.lines[ln - 1])
    if m is None:
        raise f.error("malformed stretch-section header", ln)
    count = int(m.group(1))
    k = ln + 1
    while "Atom Numbers" not in f.line(k, "the stretch table header"):
        k += 1
        if k > ln + 5:
            raise f.error("stretch table header not found", ln)
    k += 2
    pairs: dict[tuple[int, int], int] = {}
    while len(pairs) < count:
        t = f.line(k, "a stretch row")
        fields = t.split()
        if fields:
            if len(fields) < 2:
                raise f.error("malformed stretch row", k)
            a = parse_int(fields[0], f, k, "an atom number") - 1
            b = parse_int(fields[1], f, k, "an atom number") - 1
            key = (min(a, b), max(a, b))
            if key in pairs:
                raise f.error(f"stretch {a + 1}-{b + 1} listed twice", k)
            pairs[key] = k
        k += 1
    return pairs


def _element_of_type(f: TextFile, name: str, by_name, line: int) -> str:
    t = by_name.get(name)
    if t is not None and t.atomic_number is not None:
        return symbol_from_number(t.atomic_number, f, line)
    guess = name[:1].upper() + name[1:].lower()
    if t is not None and guess in ELEMENTS:
        return guess
    raise f.error(f"unknown MacroModel atom type {name!r}: no element known (pass atom_typ)",
                  line)
