"""Build the q2jax ForceField (``form="mm3"``) and each molecule's term tables
from a ``.fld`` file and the assignments of :mod:`q2jax.io.mm3_assign`, and
write a force field's values back into the file."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from q2jax.errors import InputError, ParameterError
from q2jax.forcefield import ForceField, Settings
from q2jax.io.mm3_fld import Fld, FldParam, FldVdw
from q2jax.molecule import Molecule
from q2jax.params import KINDS, canonical_key
from q2jax.system import System, Terms, stack_systems
from q2jax.units import (
    COULOMB_KCAL_MOL_A,
    KCAL_TO_KJ,
    MM3_BEND_BEND_UNIT,
    MM3_BEND_UNIT,
    MM3_IMPROPER_V2_UNIT,
    MM3_STRETCH_BEND_UNIT_RAD,
    MM3_STRETCH_UNIT,
    MM3_TORSION_STRETCH_UNIT,
)

if TYPE_CHECKING:
    from q2jax.io.mm3_assign import Mm3Assignment

MACROMODEL_SETTINGS = Settings(vdw_14_scale=1.0, elec_14_scale=1.0, dielectric=1.0)
"""MacroModel MM3* as run for the Rh-enamide .mmo: 1-4 multipliers 1.0, constant dielectric 1."""

MACROMODEL_VDW_TAPER = (6.0, 8.0)
"""MacroModel's van der Waals taper as run for the Rh-enamide .mmo (its "maximum van der
Waals distance 7.0"): eps scaled by (8^2 - r^2)/(8^2 - 6^2) between 6 and 8 Å, Å."""

# (fld kind, value field) -> (q2jax kind, factor file -> q2jax)
_CONVERSIONS: dict[tuple[str, int], tuple[str, float]] = {
    ("stretch", 0): ("bond_eq", 1.0),
    ("stretch", 1): ("bond_k", MM3_STRETCH_UNIT),
    ("bend", 0): ("angle_eq", 1.0),
    ("bend", 1): ("angle_k", MM3_BEND_UNIT),
    ("torsion", 0): ("torsion_v1", 1.0),
    ("torsion", 1): ("torsion_v2", 1.0),
    ("torsion", 2): ("torsion_v3", 1.0),
    ("improper", 1): ("torsion_v2", MM3_IMPROPER_V2_UNIT),
    ("stretch_bend", 0): ("stretch_bend_k", MM3_STRETCH_BEND_UNIT_RAD),
    ("vdw", 0): ("vdw_radius", 1.0),
    ("vdw", 1): ("vdw_epsilon", 1.0),
    ("bend", 2): ("bend_bend_k", MM3_BEND_BEND_UNIT),  # only for lines a bend-bend uses
    ("torsion_stretch", 0): ("torsion_stretch_k", MM3_TORSION_STRETCH_UNIT),
    ("vdw_pair", 0): ("vdw_pair_rstar", 1.0),
    ("vdw_pair", 1): ("vdw_pair_epsilon", 1.0),
}


def opt_substructure_trainable(
    fld: Fld, patterns: Iterable[str] | None = None
) -> Callable[[FldParam | FldVdw, str], bool]:
    """Q2MM's choice: every bond (r0, k), angle (theta0, k) and torsion (V1-V3)
    value of the substructures whose name carries ``OPT`` (or, if ``patterns``
    is given, whose pattern line is one of them) is trainable."""
    if patterns is None:
        opt = {s.index for s in fld.substructures if s.opt}
    else:
        pats = set(patterns)
        opt = {s.index for s in fld.substructures if s.pattern in pats}

    def predicate(rec: FldParam | FldVdw, kind: str) -> bool:
        return (isinstance(rec, FldParam) and rec.substructure in opt
                and rec.kind in ("stretch", "bend", "torsion"))

    return predicate


@dataclass(frozen=True)
class Mm3ForceField:
    """A q2jax ForceField built from a ``.fld`` file for given molecules, with
    the map from each parameter back to its line and field in the file, and the
    term tables of each molecule (``systems``)."""

    forcefield: ForceField
    fld: Fld
    assignments: tuple[Mm3Assignment, ...]
    sources: dict[tuple[str, tuple[str, ...]], tuple[int, int, float]]
    line_keys: dict[tuple, tuple[str, ...]]  # (line, kind, divisor) or (line, kind) -> key
    systems: tuple[System, ...]

    def batch(self, n_atoms: int | None = None) -> System:
        """All molecules as one padded batch."""
        return stack_systems(list(self.systems), self.forcefield.zero_slot, n_atoms=n_atoms)

    def to_fld(self, forcefield: ForceField | None = None) -> Fld:
        """The ``.fld`` file with this force field's values written back (file
        units; every other byte unchanged)."""
        ff = self.forcefield if forcefield is None else forcefield
        vals = np.asarray(ff.full_params())
        updates = {}
        for i, e in enumerate(ff.entries):
            src = self.sources.get((e.kind, e.key))
            if src is not None:
                line, fieldno, factor = src
                updates[(line, fieldno)] = round(float(vals[i]) / factor, 10)
        return self.fld.with_values(updates)


def _line_label(fld: Fld, rec: FldParam | FldVdw, family: str) -> tuple[str, ...]:
    if isinstance(rec, FldVdw):
        d = "" if rec.descriptor == "0000" else f"[{rec.descriptor.replace('00', '')}]"
        return (rec.atom_type + d,)
    labels = []
    sub = fld.substructures[rec.substructure] if rec.substructure is not None else None
    for k, a in enumerate(rec.atoms):
        if sub is not None and a.isdigit() and a != "00":
            lab = f"{sub.pattern_atoms[int(a) - 1]}:{a}{rec.alt}"
        else:
            lab = a
        if rec.descriptors and rec.descriptors[k] != "0000":
            d = rec.descriptors[k].replace("00", "")
            if rec.descriptors2 and rec.descriptors2[k] != "0000":
                d += "(" + rec.descriptors2[k].replace("00", "") + ")"
            lab += f"[{d}]"
        labels.append(lab)
    if rec.kind == "improper":
        labels[0] = "oop:" + labels[0]
    return canonical_key(family, labels)


def build_mm3_forcefield(
    fld: Fld,
    molecules: Sequence[Molecule],
    assignments: Sequence[Mm3Assignment],
    *,
    trainable: Callable[[FldParam | FldVdw, str], bool] | None = None,
    include_lines: Iterable[int] = (),
    electrostatics: bool = True,
    settings: Settings = MACROMODEL_SETTINGS,
    vdw_taper: tuple[float, float] | None = MACROMODEL_VDW_TAPER,
) -> Mm3ForceField:
    """The ForceField (form ``"mm3"``) holding exactly the parameters the
    molecules use (plus the records on ``include_lines``), trainable where
    ``trainable(record, kind)`` says so (default: the ``OPT`` substructures'
    bond, angle and torsion values), and each molecule's System.

    Charges are fixed per-atom parameters (kind ``charge``) keyed by the atom
    type and value; set ``electrostatics=False`` to leave them out. The
    Coulomb constant is the file's ``ELE`` factor (kJ A/mol/e^2; CODATA's if
    the header has none), carried in the pair tables' electrostatic scale.
    ``vdw_taper`` = (r_on, r_off) in Å tapers every pair's eps with the real
    atom distance as MacroModel does (None: no taper, no cut-off). Bend-bend
    constants, torsion-stretch constants, vdW pair lines and the main-section
    bend lines bend-bends refer to are fixed parameters (kinds ``bend_bend_k``,
    ``torsion_stretch_k``, ``vdw_pair_rstar``/``vdw_pair_epsilon``, ``angle_eq``)."""
    if len(molecules) != len(assignments):
        raise InputError(f"{len(assignments)} assignments for {len(molecules)} molecules")
    if vdw_taper is not None and not 0.0 <= vdw_taper[0] < vdw_taper[1]:
        raise InputError(f"vdw_taper must be (r_on, r_off) with 0 <= r_on < r_off, got {vdw_taper}")
    pred = trainable if trainable is not None else opt_substructure_trainable(fld)
    used = set(include_lines)
    bb_lines: set[int] = set()
    for a in assignments:
        used |= a.lines_used()
        bb_lines |= {i.line for pair in a.bend_bends for i in pair}
    divisors: dict[int, set[int]] = {}
    for a in assignments:
        for t in a.torsions:
            divisors.setdefault(t.line, set()).add(t.divisor)
    rows: list[tuple[str, tuple[str, ...], float, bool]] = []
    sources: dict[tuple[str, tuple[str, ...]], tuple[int, int, float]] = {}
    line_keys: dict[tuple, tuple[str, ...]] = {}
    for line in sorted(used):
        rec = fld.record(line)
        fkind = "vdw" if isinstance(rec, FldVdw) else rec.kind
        divs = sorted(divisors.get(line, {1})) if fkind == "torsion" else [1]
        if len(divs) > 1 and pred(rec, "torsion_v1"):
            raise ParameterError(f"{fld.path}:{line}: trainable torsion shared among different "
                                 f"numbers of torsions {divs} (one parameter cannot hold it)")
        for (ck, fieldno), (kind, factor) in _CONVERSIONS.items():
            if ck != fkind or fieldno >= len(rec.values):
                continue
            if kind == "bend_bend_k" and line not in bb_lines:
                continue
            family = KINDS[kind].family
            for d in divs:
                key = _line_label(fld, rec, family)
                if len(divs) > 1:
                    key = key[:-1] + (key[-1] + f"/{d}",)
                while (kind, key) in sources and sources[(kind, key)][0] != line:
                    key = (key[0] + f"@{line}",) + key[1:]
                sources[(kind, key)] = (line, fieldno, factor / d)
                line_keys[(line, kind, d)] = key
                if len(divs) == 1:  # (line, kind) for a line with one parameter per kind
                    line_keys[(line, kind)] = key
                rows.append((kind, key, rec.values[fieldno] * factor / d, bool(pred(rec, kind))))
    charge_keys: list[list[tuple[str, ...]]] = []
    if electrostatics:
        seen = set()
        for mol, a in zip(molecules, assignments, strict=True):
            keys = []
            for t, q in zip(mol.atom_types, a.charges, strict=True):
                key = (f"{t}{float(q):+.5f}",)
                keys.append(key)
                if key not in seen:
                    seen.add(key)
                    rows.append(("charge", key, float(q), False))
            charge_keys.append(keys)
    ff = ForceField.from_entries([(k, key, v) for k, key, v, _ in rows], form="mm3",
                                 trainable=[t for *_, t in rows], settings=settings)
    ele = fld.conversion_factors.get("ELE")
    elec_scale = ele[1] / KCAL_TO_KJ / COULOMB_KCAL_MOL_A if ele is not None else 1.0
    taper = (0.0, 0.0) if vdw_taper is None else tuple(float(x) for x in vdw_taper)
    systems = tuple(
        _system(ff, mol, a, line_keys, charge_keys[m] if electrostatics else None,
                elec_scale, taper)
        for m, (mol, a) in enumerate(zip(molecules, assignments, strict=True))
    )
    return Mm3ForceField(ff, fld, tuple(assignments), sources, line_keys, systems)


def _put(x) -> jnp.ndarray:
    """Host array -> device without tracing (jnp.asarray compiles a kernel per shape)."""
    return jax.device_put(np.asarray(x))


def _system(ff: ForceField, mol: Molecule, a: Mm3Assignment, line_keys, charge_keys,
            elec_scale: float = 1.0, taper: tuple[float, float] = (0.0, 0.0)) -> System:
    pos = ff.position_map()
    zero = ff.zero_slot

    def p(line: int, kind: str, divisor: int = 1) -> int:
        key = line_keys.get((line, kind, divisor))
        return zero if key is None else pos[(kind, key)]

    def table(rows, width):
        return np.asarray(rows, np.int32).reshape(-1, width)

    b_atoms = table([s.atoms for s in a.stretches], 2)
    b_par = table([[p(s.line, "bond_k"), p(s.line, "bond_eq")] for s in a.stretches], 2)
    a_atoms = table([s.atoms for s in a.bends], 3)
    a_par = table([[p(s.line, "angle_k"), p(s.line, "angle_eq")] for s in a.bends], 2)
    tors = list(a.torsions) + list(a.impropers)
    t_atoms = table([s.atoms for s in tors], 4)
    t_par = table([[p(s.line, f"torsion_v{n}", s.divisor) for n in (1, 2, 3)] for s in tors], 3)
    bond_line = {frozenset(s.atoms): s.line for s in a.stretches}
    angle_line = {s.key: s.line for s in a.bends}
    sbs = [s for s in a.stretch_bends if s.key in angle_line
           and frozenset(s.atoms[:2]) in bond_line and frozenset(s.atoms[1:]) in bond_line]
    sb_atoms = table([s.atoms for s in sbs], 3)
    sb_par = table([[p(s.line, "stretch_bend_k"),
                     p(bond_line[frozenset(s.atoms[:2])], "bond_eq"),
                     p(bond_line[frozenset(s.atoms[1:])], "bond_eq"),
                     p(angle_line[s.key], "angle_eq")] for s in sbs], 4)
    vdw = table([[p(line, "vdw_radius"), p(line, "vdw_epsilon")] for line in a.vdw_rows], 2)
    if charge_keys is None:
        q = np.full((mol.n_atoms,), zero, np.int32)
    else:
        q = np.asarray([pos[("charge", k)] for k in charge_keys], np.int32)
    pairs = a.pairs
    bb_atoms = table([(x.atoms[1], x.atoms[0], x.atoms[2], y.atoms[0], y.atoms[2])
                      for x, y in a.bend_bends], 5)
    bb_par = table([[p(x.line, "bend_bend_k"), p(y.line, "bend_bend_k"), p(x.line, "angle_eq"),
                     p(y.line, "angle_eq")] for x, y in a.bend_bends], 4)
    tss = [t for t in a.torsion_stretches if frozenset(t.atoms[1:3]) in bond_line]
    ts_atoms = table([t.atoms for t in tss], 4)
    ts_par = table([[p(t.line, "torsion_stretch_k"),
                     p(bond_line[frozenset(t.atoms[1:3])], "bond_eq")] for t in tss], 2)
    special = {frozenset(v.atoms): v.line for v in a.vdw_pairs}
    pair_vdw = np.full((pairs.shape[0], 2), zero, np.int32)
    for m, (i, j) in enumerate(pairs.tolist()):
        line = special.get(frozenset((i, j)))
        if line is not None:
            pair_vdw[m] = [p(line, "vdw_pair_rstar"), p(line, "vdw_pair_epsilon")]
    n = mol.n_atoms
    parents = np.asarray(a.site_parents if a.site_parents else range(n), np.int32)
    scales = np.asarray(a.site_scales if a.site_scales else np.ones(n), np.float64)

    def ones(x):  # host arrays: jnp.ones would compile one kernel per shape
        return _put(np.ones((x.shape[0],), bool))

    terms = Terms(
        bond_atoms=_put(b_atoms), bond_params=_put(b_par), bond_mask=ones(b_atoms),
        angle_atoms=_put(a_atoms), angle_params=_put(a_par), angle_mask=ones(a_atoms),
        torsion_atoms=_put(t_atoms), torsion_params=_put(t_par),
        torsion_mask=ones(t_atoms),
        improper_atoms=_put(np.zeros((0, 4), np.int32)),
        improper_params=_put(np.zeros((0, 1), np.int32)),
        improper_mask=_put(np.zeros((0,), bool)),
        sb_atoms=_put(sb_atoms), sb_params=_put(sb_par), sb_mask=ones(sb_atoms),
        pair_atoms=_put(pairs), pair_vdw_scale=_put(np.ones(pairs.shape[0])),
        pair_elec_scale=_put(np.full(pairs.shape[0], elec_scale)), pair_mask=ones(pairs),
        atom_vdw_params=_put(vdw), atom_charge_params=_put(q),
        bb_atoms=_put(bb_atoms), bb_params=_put(bb_par), bb_mask=ones(bb_atoms),
        ts_atoms=_put(ts_atoms), ts_params=_put(ts_par), ts_mask=ones(ts_atoms),
        pair_vdw_params=_put(pair_vdw), pair_taper=_put(np.tile(taper, (pairs.shape[0], 1))),
        atom_site_parent=_put(parents), atom_site_scale=_put(scales),
        ub_atoms=_put(np.zeros((0, 2), np.int32)), ub_params=_put(np.zeros((0, 2), np.int32)),
        ub_mask=_put(np.zeros((0,), bool)),
    )
    return System(coords=_put(np.asarray(mol.coords, np.float64)),
                  masses=_put(np.asarray(mol.masses, np.float64)),
                  atom_mask=jnp.ones((mol.n_atoms,), bool), terms=terms)
