"""The Rh-enamide training set: nine Rh-diphosphine transition states of the
Rh-catalysed enamide hydrogenation with their Jaguar QM Hessians, MacroModel
atom types and the MM3* force field of Donoghue et al. (J. Chem. Theory
Comput. 2008, 4, 1313; Q2MM, J. Chem. Theory Comput. 2016,
doi:10.1021/acs.jctc.6b00654).

``load_rh_enamide(start) -> (forcefield, molecules, qm_data)`` where
``start`` picks the complete MM3* file (MM3 plus the Rh substructure):

* ``"start"``  rh_hyd_enamide_start.fld (every Rh force constant 0.5),
* ``"final"``  ff/rh_hyd_enamide_final.fld (the published force field),
* ``"seminario"`` rh_hyd_enamide_seminario.fld (Seminario estimates).

Structures: atom order, MacroModel types (RH = type 250 from the bundled
atom.typ) and bonds with orders (zero-order Rh-O, Rh-C and C...H bonds kept)
from rh_enamide_training_set.mae; coordinates and Hessians (kcal/(mol Å²))
from the Jaguar ``.in`` files (&zmat, &hess), frequencies and energies from
the matching ``.out``. The two sources must agree atom by atom (element and
position within 1e-3 Å) or ParseError is raised.

Parameter set (``parameters``):

* ``"q2mm"`` (default): Q2MM's published parameter vector, 182 values --
  the bond (r0, k), angle (theta0, k) and torsion (V1, V2, V3) values of the
  two ``OPT`` Rh substructures (8 x 2 + 23 x 2 + 16 x 3 = 110) and the
  radius and epsilon of the 36 van der Waals rows of mm3.fld (72). Q2MM
  counts every line, so 64 of these values touch none of the nine structures
  (one angle and four torsion lines no structure matches; 25 vdW rows of atom
  types or environments that do not occur); their gradient is zero.
* ``"used"``: the OPT-substructure values the structures actually use
  (96: 8 bonds, 22 angles, 12 torsions), van der Waals fixed.

Everything else (the MM3 main section, stretch-bends, bend-bends,
torsion-stretches, impropers, charges) is fixed. See
:mod:`q2jax.io.mm3_assign` for the MM3* terms q2jax models and what it
leaves out.

By default the energy is MacroModel's MM3* as it ran for the published
force field (checked family by family against its .mmo printout in
tests/test_rh_enamide.py): Rh takes the Z0 van der Waals row (MacroModel's
atom.typ maps type 250 there; ``vdw_aliases={}`` uses the file's own RH row,
2.69 Å and 0.14 kcal/mol, Donoghue's values), bond-dipole charges use
MacroModel's 4.803 D/(e Å), the Coulomb constant is the file's 1389.5 kJ
Å/mol/e^2, van der Waals well depths are tapered between 6 and 8 Å
(``vdw_taper``), and hydrogens sit at MM3's reduced sites in every term.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from q2jax.errors import InputError, ParseError
from q2jax.forcefield import ForceField
from q2jax.io._text import parse_int, read_text
from q2jax.io.jaguar import read_jaguar_in, read_jaguar_out
from q2jax.io.macromodel import read_mae_all
from q2jax.io.mm3_assign import (
    MACROMODEL_VDW_TAPER,
    Mm3ForceField,
    assign_parameters,
    build_mm3_forcefield,
    opt_substructure_trainable,
)
from q2jax.io.mm3_fld import Fld, FldParam, FldVdw, read_fld
from q2jax.io.qmdata import QMData
from q2jax.molecule import Molecule
from q2jax.units import MACROMODEL_DEBYE_PER_E_ANGSTROM

__all__ = ["load_rh_enamide", "load_rh_enamide_set", "RhEnamideSet", "RH_ENAMIDE_DIR",
           "RH_ENAMIDE_FLD", "read_mae_bond_orders"]

RH_ENAMIDE_DIR = Path(__file__).resolve().parent / "data" / "rh-enamide"
RH_ENAMIDE_FLD = {
    "start": "rh_hyd_enamide_start.fld",
    "final": "ff/rh_hyd_enamide_final.fld",
    "seminario": "rh_hyd_enamide_seminario.fld",
}
_SET = "rh_enamide_training_set"
_JAGUAR = (
    "1ZDMPfromJCTCSI_loner1",
    "2DMPEConformation1fromJCTCSI_isomer1",
    "3DMPEConformation2fromJCTCSI_isomer2",
    "4RR-Me-DuPHOSpro-RfromJCTCSI_isomer3",
    "5RR-Me-DuPHOSpro-SfromJCTCSI_isomer4",
    "6RR-Me-BPEpro-RConformation1fromJCTCSI_isomer5",
    "7RR-Me-BPEpro-RConformation2fromJCTCSI_isomer6",
    "8RR-Me-BPEpro-SConformation1fromJCTCSI_isomer7",
    "9RR-Me-BPEpro-SConformation2fromJCTCSI_isomer8",
)
N_Q2MM_PARAMETERS = 182
MACROMODEL_VDW_ALIASES = {"RH": "Z0"}
"""MacroModel's atom.typ maps the Rh type (250) to Z0's van der Waals row."""


@dataclass(frozen=True)
class RhEnamideSet:
    """Everything the loader builds: the force field, the nine molecules
    (MacroModel types, QM geometry), their QM data, and ``mm3`` (the
    term tables of each molecule, ``mm3.systems``, and the map back to the
    ``.fld`` file, ``mm3.to_fld(ff)``)."""

    forcefield: ForceField
    molecules: tuple[Molecule, ...]
    qm_data: tuple[QMData, ...]
    mm3: Mm3ForceField
    fld: Fld


def load_rh_enamide(start: str = "start", **kwargs) -> tuple[ForceField, list[Molecule],
                                                             list[QMData]]:
    """(forcefield, molecules, qm_data) of the nine structures; see the module
    docstring for ``start`` and the keyword arguments of :func:`load_rh_enamide_set`.
    The molecules' MM term tables are ``load_rh_enamide_set(...).mm3.systems``."""
    s = load_rh_enamide_set(start, **kwargs)
    return s.forcefield, list(s.molecules), list(s.qm_data)


def load_rh_enamide_set(
    start: str = "start",
    *,
    parameters: str = "q2mm",
    vdw_aliases: dict[str, str] | None = None,
    electrostatics: bool = True,
    vdw_taper: tuple[float, float] | None = MACROMODEL_VDW_TAPER,
    data_dir: str | Path | None = None,
) -> RhEnamideSet:
    """Load the set (see the module docstring). ``vdw_aliases`` defaults to
    MacroModel's ``{"RH": "Z0"}``; ``vdw_taper`` (r_on, r_off) Å or None."""
    if vdw_aliases is None:
        vdw_aliases = MACROMODEL_VDW_ALIASES
    root = Path(data_dir) if data_dir is not None else RH_ENAMIDE_DIR
    if start not in RH_ENAMIDE_FLD:
        raise InputError(f"start must be one of {sorted(RH_ENAMIDE_FLD)}, got {start!r}")
    if parameters not in ("q2mm", "used"):
        raise InputError(f"parameters must be 'q2mm' or 'used', got {parameters!r}")
    fld = read_fld(root / RH_ENAMIDE_FLD[start])
    molecules, qm = _structures(root)
    orders = read_mae_bond_orders(root / _SET / f"{_SET}.mae")
    assignments = [assign_parameters(fld, m, o, vdw_aliases=vdw_aliases,
                                     debye_per_e_angstrom=MACROMODEL_DEBYE_PER_E_ANGSTROM)
                   for m, o in zip(molecules, orders, strict=True)]
    base = read_fld(root / "mm3.fld")
    # the Rh sections: OPT-flagged in mm3.fld (final.fld drops the flag), found by pattern
    opt = opt_substructure_trainable(fld, [s.pattern for s in base.substructures if s.opt])
    include: list[int] = []
    trainable = opt
    if parameters == "q2mm":
        base_rows = _base_vdw_rows(fld, base)
        opt_lines = [p.line for p in fld.params if opt(p, "")]
        include = opt_lines + sorted(base_rows)

        def trainable(rec: FldParam | FldVdw, kind: str) -> bool:
            return opt(rec, kind) or (isinstance(rec, FldVdw) and rec.line in base_rows)

    mm3 = build_mm3_forcefield(fld, molecules, assignments, trainable=trainable,
                               include_lines=include, electrostatics=electrostatics,
                               vdw_taper=vdw_taper)
    return RhEnamideSet(mm3.forcefield, tuple(molecules), tuple(qm), mm3, fld)


def _base_vdw_rows(fld: Fld, base: Fld) -> set[int]:
    """Lines of ``fld``'s vdW rows that mm3.fld also has (type and descriptor):
    Q2MM's 36 rows, whatever rows a variant file adds (final.fld adds PD)."""
    keys = {(r.atom_type, r.descriptor) for r in base.vdw}
    return {r.line for r in fld.vdw if (r.atom_type, r.descriptor) in keys}


def _structures(root: Path) -> tuple[list[Molecule], list[QMData]]:
    mae = read_mae_all(root / _SET / f"{_SET}.mae", atom_typ=root / "atom.typ")
    if len(mae) != len(_JAGUAR):
        raise ParseError(f"expected {len(_JAGUAR)} structures, found {len(mae)}",
                         str(root / _SET / f"{_SET}.mae"))
    molecules, qm = [], []
    jdir = root / _SET / "jaguar_spe_freq_in_out"
    for k, (ct, stem) in enumerate(zip(mae, _JAGUAR, strict=True)):
        jin = read_jaguar_in(_existing(jdir / f"{stem}.01.in"))
        jout = read_jaguar_out(_existing(jdir / f"{stem}.out"))
        _check_same_structure(ct, jin)
        _check_same_structure(ct, jout)
        data = dataclasses.replace(jin, frequencies=jout.frequencies, energy=jout.energy,
                                   atom_types=ct.atom_types, bonds=ct.bonds, name=ct.name,
                                   source_units={**jin.source_units, **jout.source_units})
        mol = Molecule.from_arrays(jin.symbols, jin.coords, bonds=ct.bonds,
                                   atom_types=ct.atom_types, name=ct.name or f"rh-enamide {k + 1}",
                                   charge=1)
        molecules.append(mol)
        qm.append(data)
    return molecules, qm


def _existing(path: Path) -> Path:
    gz = path.with_name(path.name + ".gz")
    return path if path.exists() or not gz.exists() else gz


def _check_same_structure(ct: QMData, other: QMData) -> None:
    where = other.source or other.name
    if ct.symbols != other.symbols:
        raise ParseError(f"atoms differ from the Maestro structure {ct.name!r} "
                         f"({len(ct.symbols)} vs {len(other.symbols)} atoms or other elements)",
                         where)
    dev = float(np.abs(np.asarray(ct.coords) - np.asarray(other.coords)).max())
    if dev > 1e-3:
        raise ParseError(f"geometry differs from the Maestro structure {ct.name!r} by "
                         f"{dev:.4f} Å", where)


def read_mae_bond_orders(path: str | Path) -> list[list[tuple[int, int, int]]]:
    """Bonds (i, j, order), 0-based, in file order, of every ``m_bond`` table
    of a Maestro file (one list per structure). The order is what MM3* bond
    symbols (``- = % .``) match against; q2jax.io.macromodel keeps only the pairs."""
    f = read_text(path)
    out: list[list[tuple[int, int, int]]] = []
    k = 0
    lines = f.lines
    while k < len(lines):
        t = lines[k].strip()
        if t.startswith("m_bond[") and t.endswith("{"):
            try:
                nrows = int(t[len("m_bond["):t.index("]")])
            except ValueError:
                raise f.error(f"bad m_bond header {t!r}", k + 1) from None
            cols = []
            k += 1
            while k < len(lines) and lines[k].strip() != ":::":
                c = lines[k].strip()
                if not c.startswith("#"):
                    cols.append(c)
                k += 1
            need = ("i_m_from", "i_m_to", "i_m_order")
            if any(c not in cols for c in need):
                raise f.error("m_bond needs i_m_from, i_m_to and i_m_order", k)
            pos = [cols.index(c) + 1 for c in need]
            rows = []
            for r in range(nrows):
                ln = k + 2 + r
                vals = f.line(ln, f"bond row {r + 1} of {nrows}").split()
                if len(vals) != len(cols) + 1:
                    raise f.error(f"expected {len(cols) + 1} fields in a bond row", ln)
                a, b, o = (parse_int(vals[p], f, ln, "an integer") for p in pos)
                rows.append((a - 1, b - 1, o))
            if f.line(k + 2 + nrows, "the ':::' closing m_bond").strip() != ":::":
                raise f.error(f"m_bond declares {nrows} rows but more follow", k + 2 + nrows)
            out.append(rows)
            k += 2 + nrows
        k += 1
    return out
