"""Assign MM3* ``.fld`` parameters to molecules typed with MacroModel atom types,
and build the q2jax force field (``form="mm3"``) and term tables they need.

Assignment follows MacroModel's rules as the MacroModel Reference Manual
(App. D) states them, checked interaction by interaction against the
``.mmo`` file MacroModel wrote for the Rh-enamide set (tests/test_rh_enamide.py):

* interactions: every bond (zero-order coordination bonds included), every
  angle at every atom, every torsion chain a-b-c-d of distinct atoms, an
  improper torsion at each atom with exactly three covalent neighbours whose
  type has a ``5`` line, a stretch-bend for each angle with a ``3`` line;
* main section: the *first* line in file order whose atom types (exact,
  ``00`` any atom, an equivalence such as ``PX``, an element wildcard such as
  ``C0``), bond symbols (``-`` single, ``=`` double, ``%`` triple, ``*`` any
  covalent bond, ``.`` zero-order) and attached-atom descriptors (``C200``:
  a C2 bound to that atom besides the interaction's own atoms; a continuation
  line adds a second shell) match, read forwards or backwards;
* substructures, in file order, override it: every match of the pattern
  (injective, types and bond symbols as above; enumerated atom by atom along
  the pattern, neighbours in connection-table order) applies each of the
  section's lines, later ones winning. Numbers refer to pattern atoms; a type
  names an atom bonded along the chain, which must lie outside the match
  unless it is a wildcard. Lines with an alternative letter (``a1``) replace
  the plain line with the same atoms when the section's condition for that
  letter holds, ``aA 3 2 9 180.0 45.0``: the angle 3-2-9 of the match lies
  within 45 degrees of 180 (evaluated once, at the given geometry);
  a substructure torsion whose V1 = V2 = V3 = 0 never overrides a nonzero
  torsion the file already assigns (MacroModel's documented behaviour); a
  substructure torsion ``00 a b 00`` (wildcards at both ends) is shared: each
  of the n torsions about the bond a-b gets V/n (what MacroModel prints, e.g.
  the benzenoid 36.8 -> 9.2 on a ring bond with four torsions); q2jax stores
  V/n as the parameter and writes V back;
* van der Waals: the first ``-6`` row for the atom's type whose descriptor
  matches; formal charge from that row's charge column;
* point charges, as MacroModel makes them from bond dipoles: a stretch line's
  bond moment mu (Debye) puts +mu / (c r0) e on the line's first atom
  and the opposite charge on the second (r0 the line's ideal length, Å;
  c = 4.803 in MacroModel, 4.80320 from CODATA by default here); verified
  against the charges MacroModel prints and its charge-charge energies.

What q2jax's energy models (relative to MacroModel's MM3*; MacroModel's own
per-term energies for the nine Rh-enamide structures are in the .mmo and
compared in tests/test_rh_enamide.py, every family to its print precision):

* MM3 stretch (cubic/quartic), MM3 sextic bend, 1-3-fold torsions,
  stretch-bend (one constant for both bonds, as MacroModel's S-B 1), the
  improper torsion E = 14.388 k (1 - cos 2w) (MacroModel's "cosine mimic of
  harmonic out-of-plane", stored as a torsion V2 = 28.776 k on the atoms
  (n1, centre, n2, n3));
* bend-bend, E = -0.021914 kbb_1 kbb_2 d1 d2 (degrees), for *every* pair of
  angles at one centre (shared end atom or not) whose main-section bend lines
  both have a nonzero third value kbb; MacroModel takes kbb and the reference
  angles from the main section even where a substructure overrides the bend;
* torsion-stretch (``8`` lines, first match), E = -(11.995/2) K dr (1 + cos 3w)
  about the central bond (MacroModel's sign);
* MM3's reduced hydrogen sites: an atom whose ``-6`` row has an offset d (H1:
  -0.077) is represented by x_p + (1 + d)(x - x_p), p its first covalent
  neighbour, in *every* term: van der Waals, charges, bends, torsions, and
  bond lengths as the site distance divided by (1 + d) (so a bridging hydride's
  forming C...H bond, whose site lies on its Rh-H bond, is 0.14 A longer than
  the atoms' distance: what made MacroModel's energies look like r0 = 1.608);
* MM3 exp-6 van der Waals with r*_ij = r_i + r_j and eps_ij = sqrt(eps_i eps_j),
  replaced by a main-section ``6`` line where one matches (C3-H1: 3.56 A,
  0.023 kcal/mol), eps tapered by MacroModel's (r_off^2 - r^2)/(r_off^2 -
  r_on^2) between 6 and 8 A of the real atom distance (``build_mm3_forcefield``'s
  ``vdw_taper``);
* charge-charge electrostatics at the sites with dielectric 1.0, 1-4 pairs
  unscaled, MacroModel's constant from the file's ``ELE`` factor (1389.5 kJ
  A/mol/e^2 = 332.0985 kcal, not CODATA's 332.0637) and its bond-dipole charges
  (mu / (4.803 r0) with ``debye_per_e_angstrom=MACROMODEL_DEBYE_PER_E_ANGSTROM``);
* left out: MacroModel's electrostatic cut-off (12 A; no charged pair of the
  nine structures is farther than 10.4 A apart), the Buckingham "softcut" at
  very short range (the closest pair of the nine structures is at 0.67 r*,
  where it does not act), hydrogen bonds (``7`` lines), substructure ``5`` and
  ``6`` lines, higher-order torsions; charges are fixed at load time from the
  file's r0 and mu (they do not follow r0 during a fit; MacroModel recomputes
  them);
* known MacroModel oddity: its RH atoms take Z0's van der Waals row unless the
  atom.typ says otherwise (``vdw_aliases``).

Parameters are stored in q2jax units: bond k = MM3_STRETCH_UNIT * k(mdyn/Å),
angle k = MM3_BEND_UNIT * k(mdyn Å/rad²), stretch-bend k =
MM3_STRETCH_BEND_UNIT_RAD * k(mdyn/rad), improper V2 = MM3_IMPROPER_V2_UNIT * k;
equilibrium values in Å and degrees, torsion V in kcal/mol.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from q2jax.errors import ParameterError
from q2jax.io._mm3_build import (
    MACROMODEL_SETTINGS,
    MACROMODEL_VDW_TAPER,
    Mm3ForceField,
    build_mm3_forcefield,
    opt_substructure_trainable,
)
from q2jax.io._mm3_match import (
    _SYMMETRIC,
    MMGraph,
    _angle_deg,
    _chain_matches,
    _descriptor_ok,
    _descriptors_ok,
    _enumerate,
    _ident,
    _improper_matches,
    _pattern_matches,
    _sub_chains,
    _torsions_about,
    _Types,
    mm_graph,
)
from q2jax.io.mm3_fld import Fld, FldParam
from q2jax.molecule import Molecule
from q2jax.topology import LINEAR_ANGLE_DEG
from q2jax.units import DEBYE_PER_E_ANGSTROM

__all__ = [
    "MMGraph",
    "Interaction",
    "Mm3Assignment",
    "Mm3ForceField",
    "MACROMODEL_SETTINGS",
    "MACROMODEL_VDW_TAPER",
    "mm_graph",
    "assign_parameters",
    "build_mm3_forcefield",
    "opt_substructure_trainable",
]


@dataclass(frozen=True)
class Interaction:
    """One MM term: its atoms (0-based, in the orientation of the assigning
    line: the line's first atom first) and the ``.fld`` line that sets it."""

    kind: str
    atoms: tuple[int, ...]
    line: int
    divisor: int = 1  # a substructure torsion 00-a-b-00 is shared among the torsions about a-b

    @property
    def key(self) -> tuple[int, ...]:
        return _ident(self.kind, self.atoms)


@dataclass(frozen=True)
class Mm3Assignment:
    """Which ``.fld`` line sets each interaction of one molecule.

    ``vdw_rows[i]`` is the ``-6`` row (line number) of atom i; ``charges`` are
    MacroModel's point charges (e); ``torsion_stretches`` the torsions with a
    nonzero ``8`` line; ``bend_bends`` the pairs of angles at one centre coupled
    by their main-section bend lines (both with a nonzero third value);
    ``vdw_pairs`` the nonbonded pairs a ``6`` line sets; ``site_parents`` and
    ``site_scales`` each atom's reduced site (the atom itself and 1.0 unless its
    vdW row has a hydrogen offset); ``missing`` lists what has no parameter
    (with ``allow_missing``); ``notes`` what is left out; ``pairs`` the
    non-bonded pairs (0-based).
    """

    molecule: str
    stretches: tuple[Interaction, ...]
    bends: tuple[Interaction, ...]
    torsions: tuple[Interaction, ...]
    impropers: tuple[Interaction, ...]
    stretch_bends: tuple[Interaction, ...]
    torsion_stretches: tuple[Interaction, ...]
    vdw_rows: tuple[int, ...]
    charges: np.ndarray
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int32))
    bend_bends: tuple[tuple[Interaction, Interaction], ...] = ()
    vdw_pairs: tuple[Interaction, ...] = ()
    site_parents: tuple[int, ...] = ()
    site_scales: tuple[float, ...] = ()

    def lines_used(self) -> set[int]:
        out = {i.line for grp in (self.stretches, self.bends, self.torsions, self.impropers,
                                  self.stretch_bends, self.torsion_stretches, self.vdw_pairs)
               for i in grp}
        out |= {i.line for pair in self.bend_bends for i in pair}
        return out | {r for r in self.vdw_rows if r >= 0}


def _assign_main(kind: str, items, fld: Fld, g: MMGraph, tm: _Types) -> dict:
    lines = []
    for p in fld.main_params(kind):
        allowed = [tm.allowed(a) for a in p.atoms]
        if all(allowed):
            lines.append((p, allowed))
    kp = 1 if kind in ("bend", "stretch_bend", "torsion", "torsion_stretch") else 0
    index: dict[tuple, list[int]] = {}  # (type, element) at position kp -> line indices
    for n, (_, allowed) in enumerate(lines):
        for s in allowed[kp]:
            index.setdefault(s, []).append(n)
    by_types: dict[tuple, list[tuple[FldParam, bool, bool]]] = {}
    out = {}
    for atoms in items:
        sig = tuple((g.types[a], g.elements[a]) for a in atoms)
        cands = by_types.get(sig)
        if cands is None:  # lines whose atom types fit, forwards or backwards, in file order
            rsig = sig[::-1]
            near = set(index.get(sig[kp], ()))
            if kind in _SYMMETRIC:
                near |= set(index.get(rsig[kp], ()))
            cands = []
            for n in sorted(near):
                p, allowed = lines[n]
                fwd = all(s in al for s, al in zip(sig, allowed, strict=True))
                rev = kind in _SYMMETRIC and all(s in al for s, al in zip(rsig, allowed,
                                                                           strict=True))
                if fwd or rev:
                    cands.append((p, fwd, rev))
            by_types[sig] = cands
        for p, fwd, rev in cands:
            if fwd and _chain_matches(p, atoms, g, tm):
                out[_ident(kind, atoms)] = Interaction(kind, tuple(atoms), p.line)
                break
            if rev and _chain_matches(p, atoms[::-1], g, tm):
                out[_ident(kind, atoms)] = Interaction(kind, tuple(atoms[::-1]), p.line)
                break
    return out


def _assign_impropers(fld: Fld, g: MMGraph, tm: _Types, centres) -> dict:
    lines = [p for p in fld.main_params("improper") if all(tm.possible(a) for a in p.atoms)]
    out = {}
    for c in centres:
        nb = [x for x, o in g.nbrs[c] if o >= 1]
        for p in lines:
            hit = None
            for perm in itertools.permutations(nb):
                if _improper_matches(p, (c,) + perm, g, tm):
                    hit = perm
                    break
            if hit is None:
                continue
            first = hit[0] if p.atoms[1] != "00" else nb[0]
            rest = [x for x in nb if x != first]
            if p.values[0] != 0.0:
                raise ParameterError(f"{fld.path}:{p.line}: improper V1 = {p.values[0]} is not "
                                     "supported (only the V2 cosine term)")
            atoms = (first, c, rest[0], rest[1])
            out[atoms] = Interaction("improper", atoms, p.line)
            break
    return out


# --- substructures ---------------------------------------------------------------------------


def _active_alternatives(sub_params: list[FldParam], match, xyz, fld: Fld) -> set[str]:
    conds: dict[str, list[bool]] = {}
    for p in sub_params:
        if p.kind != "angle_condition":
            continue
        if not all(a.isdigit() and a != "00" for a in p.atoms):
            raise ParameterError(f"{fld.path}:{p.line}: an angle condition needs three pattern "
                                 "atom numbers")
        i, j, k = (match[int(a) - 1] for a in p.atoms)
        conds.setdefault(p.alt, []).append(abs(_angle_deg(xyz, i, j, k) - p.values[0])
                                           <= p.values[1])
    used = {p.alt for p in sub_params if p.alt and p.kind != "angle_condition"}
    for letter in used - set(conds):
        raise ParameterError(f"{fld.path}: substructure lines with alternative {letter!r} but no "
                             "condition line for it")
    return {letter for letter, ok in conds.items() if all(ok)}


def _apply_substructures(fld: Fld, g: MMGraph, tm: _Types, xyz: np.ndarray, table: dict,
                         notes: list[str]) -> None:
    for sub in fld.substructures:
        if not all(tm.possible(t) for t in sub.pattern_atoms):
            continue
        matches = _pattern_matches(sub, g, tm)
        if not matches:
            continue
        params = [fld.params[i] for i in sub.params]
        alt_atoms = {(p.kind, p.atoms, p.alt) for p in params if p.alt}
        for match in matches:
            active = _active_alternatives(params, match, xyz, fld) if alt_atoms else set()
            for p in params:
                if p.kind == "angle_condition":
                    continue
                if p.alt and p.alt not in active:
                    continue
                if not p.alt and any((p.kind, p.atoms, a) in alt_atoms for a in active):
                    continue
                if p.kind in ("improper", "vdw_pair", "hbond"):
                    notes.append(f"{fld.path}:{p.line}: substructure {p.kind} line matched but is "
                                 "not modelled")
                    continue
                kind = p.kind
                shared = kind == "torsion" and p.atoms[0] == p.atoms[3] == "00"
                for atoms in _sub_chains(p, match, g, tm):
                    key = _ident(kind, atoms)
                    old = table[kind].get(key)
                    if (kind == "torsion" and not any(p.values) and old is not None
                            and any(fld.record(old.line).values)):
                        continue
                    div = _torsions_about(g, atoms[1], atoms[2]) if shared else 1
                    table[kind][key] = Interaction(kind, atoms, p.line, div)


# --- assignment -------------------------------------------------------------------------------


def assign_parameters(
    fld: Fld,
    molecule: Molecule,
    bond_orders: Sequence[Sequence[int]] | None = None,
    *,
    vdw_aliases: Mapping[str, str] | None = None,
    allow_missing: bool = False,
    debye_per_e_angstrom: float = DEBYE_PER_E_ANGSTROM,
) -> Mm3Assignment:
    """Which ``.fld`` line sets each interaction of ``molecule`` (see the module
    docstring for the rules). ``vdw_aliases`` maps an atom type to the type whose
    ``-6`` row it uses (MacroModel maps RH, type 250, to Z0's row through its
    atom.typ). Bond-dipole charges are mu / (c r0) with c =
    ``debye_per_e_angstrom`` (CODATA's 4.80320 by default; MacroModel uses
    4.803, ``units.MACROMODEL_DEBYE_PER_E_ANGSTROM``). A stretch, bend, torsion
    or vdW row the file lacks raises ParameterError naming the atoms, unless
    ``allow_missing``."""
    g = mm_graph(molecule, bond_orders)
    tm = _Types(g, fld.equivalences)
    xyz = np.asarray(molecule.coords, dtype=float)
    items = _enumerate(g)
    notes: list[str] = []
    table = {
        "stretch": _assign_main("stretch", items["stretch"], fld, g, tm),
        "bend": _assign_main("bend", items["bend"], fld, g, tm),
        "torsion": _assign_main("torsion", items["torsion"], fld, g, tm),
        "stretch_bend": {},
        "torsion_stretch": _assign_main("torsion_stretch", items["torsion"], fld, g, tm),
    }
    main_bends = dict(table["bend"])  # bend-bend uses the main section only
    _apply_substructures(fld, g, tm, xyz, table, notes)
    # stretch-bends: main first match on every angle, then substructure lines
    sb_main = _assign_main("stretch_bend", items["bend"], fld, g, tm)
    sb_main.update(table["stretch_bend"])
    table["stretch_bend"] = sb_main
    impropers = _assign_impropers(fld, g, tm, items["improper_centres"])

    def describe(kind, atoms):
        return f"{kind} " + "-".join(f"{g.types[a]}{a + 1}" for a in atoms)

    missing = [describe("stretch", a) for a in items["stretch"] if _ident("stretch", a)
               not in table["stretch"]]
    missing += [describe("bend", a) for a in items["bend"]
                if _ident("bend", a) not in table["bend"]]
    tors = []
    for a in items["torsion"]:
        hit = table["torsion"].get(_ident("torsion", a))
        if hit is None:
            if _near_linear(xyz, a):
                notes.append(f"no parameter for near-linear {describe('torsion', a)}: left out")
            else:
                missing.append(describe("torsion", a))
            continue
        if _near_linear(xyz, a):
            if any(fld.record(hit.line).values):
                notes.append(f"{describe('torsion', a)} through a near-linear angle left out")
            continue
        tors.append(hit)
    vdw_rows = []
    aliases = dict(vdw_aliases or {})
    for i, t in enumerate(g.types):
        want = aliases.get(t, t)
        row = next((r for r in fld.vdw if tm.matches_type(r.atom_type, want, g.elements[i])
                    and _descriptor_ok(g, tm, i, r.descriptor, "", {i})), None)
        if row is None:
            missing.append(f"vdW row for {t}{i + 1}")
            vdw_rows.append(-1)
        else:
            vdw_rows.append(row.line)
    if missing and not allow_missing:
        shown = ", ".join(missing[:12]) + (f" (and {len(missing) - 12} more)" if len(missing) > 12
                                          else "")
        raise ParameterError(f"{fld.path} has no parameters for {shown} in molecule "
                             f"{molecule.name!r}")
    charges = _charges(fld, g, table["stretch"].values(), debye_per_e_angstrom)
    sbs = tuple(sorted((x for x in table["stretch_bend"].values()
                        if fld.record(x.line).values[0] != 0.0), key=lambda x: x.key))
    tss = tuple(sorted((x for x in table["torsion_stretch"].values()
                        if fld.record(x.line).values[0] != 0.0), key=lambda x: x.key))
    pairs = _pairs(g)
    parents, scales = _sites(fld, g, vdw_rows, molecule.name)
    return Mm3Assignment(
        molecule=molecule.name,
        stretches=tuple(sorted(table["stretch"].values(), key=lambda x: x.key)),
        bends=tuple(sorted(table["bend"].values(), key=lambda x: x.key)),
        torsions=tuple(sorted(tors, key=lambda x: x.key)),
        impropers=tuple(impropers[k] for k in sorted(impropers)),
        stretch_bends=sbs,
        torsion_stretches=tss,
        vdw_rows=tuple(vdw_rows),
        charges=charges,
        missing=tuple(missing),
        notes=tuple(dict.fromkeys(notes)),
        pairs=pairs,
        bend_bends=_bend_bends(fld, main_bends),
        vdw_pairs=_assign_vdw_pairs(fld, g, tm, pairs),
        site_parents=parents,
        site_scales=scales,
    )


def _near_linear(xyz: np.ndarray, t: Sequence[int]) -> bool:
    a, b, c, d = t
    return max(_angle_deg(xyz, a, b, c), _angle_deg(xyz, b, c, d)) > LINEAR_ANGLE_DEG


def _bend_bends(fld: Fld, main_bends: dict) -> tuple[tuple[Interaction, Interaction], ...]:
    """Every pair of angles at one centre whose main-section bend lines (first
    match, substructures ignored: MacroModel takes the bend-bend constant and the
    reference angles from there) both have a nonzero third value kbb."""
    by_centre: dict[int, list[Interaction]] = {}
    for key in sorted(main_bends):
        b = main_bends[key]
        v = fld.record(b.line).values
        if len(v) > 2 and v[2] != 0.0:
            by_centre.setdefault(b.atoms[1], []).append(b)
    return tuple((x, y) for c in sorted(by_centre) for x, y in
                 itertools.combinations(by_centre[c], 2))


def _assign_vdw_pairs(fld: Fld, g: MMGraph, tm: _Types, pairs: np.ndarray
                      ) -> tuple[Interaction, ...]:
    """The first main-section ``6`` line (types and descriptors, either order)
    matching each nonbonded pair: it replaces the pair's combined r* and eps."""
    lines = [p for p in fld.main_params("vdw_pair") if all(tm.possible(a) for a in p.atoms)]
    out = []
    for i, j in pairs.tolist():
        for p in lines:
            hit = next((ab for ab in ((i, j), (j, i)) if tm(p.atoms[0], ab[0])
                        and tm(p.atoms[1], ab[1]) and _descriptors_ok(p, ab, g, tm)), None)
            if hit is not None:
                out.append(Interaction("vdw_pair", hit, p.line))
                break
    return tuple(out)


def _sites(fld: Fld, g: MMGraph, vdw_rows: Sequence[int], name: str
           ) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """MM3's reduced sites: an atom whose vdW row has a hydrogen offset d (-0.077
    for H1) sits at x_p + (1 + d)(x - x_p), p its first covalent neighbour in
    connection-table order (a bridging hydride keeps its covalent partner)."""
    parents, scales = [], []
    for i, line in enumerate(vdw_rows):
        off = fld.record(line).offset if line >= 0 else 0.0
        if off == 0.0:
            parents.append(i)
            scales.append(1.0)
            continue
        cov = [x for x, o in g.nbrs[i] if o >= 1]
        if not cov:
            raise ParameterError(f"{fld.path}:{line}: vdW row with hydrogen offset {off} for "
                                 f"atom {g.types[i]}{i + 1} of {name!r}, which has no covalent "
                                 "bond to put its site on")
        parents.append(cov[0])
        scales.append(1.0 + off)
    return tuple(parents), tuple(scales)


def _charges(fld: Fld, g: MMGraph, stretches: Iterable[Interaction],
             debye_per_e_angstrom: float = DEBYE_PER_E_ANGSTROM) -> np.ndarray:
    """q_i = formal charge of the atom's vdW row + sum over its bonds of
    +-mu / (c r0), c = ``debye_per_e_angstrom``: + on the stretch line's first atom."""
    q = np.zeros(len(g.types))
    for i, t in enumerate(g.types):  # formal charge: the atom's own type's row (no alias)
        row = next((r for r in fld.vdw if r.atom_type == t), None)
        q[i] = (row.charge or 0.0) if row is not None else 0.0
    for s in stretches:
        p = fld.record(s.line)
        if len(p.values) < 3 or p.values[2] == 0.0:
            continue
        dq = p.values[2] / (debye_per_e_angstrom * p.values[0])
        q[s.atoms[0]] += dq
        q[s.atoms[1]] -= dq
    return q


def _pairs(g: MMGraph) -> np.ndarray:
    """Non-bonded pairs: graph separation >= 3 over all bonds (zero-order included)."""
    n = len(g.types)
    sep = np.full((n, n), 99, dtype=int)
    np.fill_diagonal(sep, 0)
    for a, b, _ in g.bonds:
        sep[a, b] = sep[b, a] = 1
    for j in range(n):
        nb = [x for x, _ in g.nbrs[j]]
        for a, b in itertools.combinations(nb, 2):
            sep[a, b] = sep[b, a] = min(sep[a, b], 2)
    iu, ju = np.triu_indices(n, k=1)
    keep = sep[iu, ju] >= 3
    return np.stack([iu[keep], ju[keep]], axis=1).astype(np.int32).reshape(-1, 2)
