"""File readers. Every reader returns :class:`QMData` in q2jax units (Å,
kcal/mol, amu; Hessians kcal/(mol Å²)) with ``source_units`` recording what
the file used; bad input raises :class:`q2jax.errors.ParseError` naming the
file and line.

``read_qm(path, **kw)`` picks the reader from the file name (a trailing
``.gz`` is ignored):

========================  =========================================
``.xyz``                  :func:`read_xyz`
``.log``                  :func:`read_gaussian_log`
``.fchk``, ``.fch``       :func:`read_fchk`
``.out``                  Jaguar or Gaussian, told apart by the header
``.in``                   :func:`read_jaguar_in` (needs a Jaguar section)
``.mae``, ``.maegz``      :func:`read_mae`
``.mmo``                  :func:`read_mmo`
``.mol2``                 :func:`read_mol2`
========================  =========================================
"""

from __future__ import annotations

from pathlib import Path

from q2jax.errors import InputError
from q2jax.io.frcmod import (
    Frcmod,
    FrcmodTerm,
    forcefield_to_frcmod,
    format_frcmod,
    frcmod_to_forcefield,
    parse_frcmod,
    read_frcmod,
    write_frcmod,
)
from q2jax.io.gaussian import (
    is_gaussian_output,
    read_fchk,
    read_gaussian_log,
    rotational_residual,
)
from q2jax.io.jaguar import is_jaguar_input, is_jaguar_output, read_jaguar_in, read_jaguar_out
from q2jax.io.macromodel import (
    MACROMODEL_ATOM_TYPES,
    MacroModelAtomType,
    macromodel_atom_types,
    read_atom_typ,
    read_mae,
    read_mae_all,
    read_mae_bond_orders,
    read_mmo,
    read_mmo_all,
)
from q2jax.io.mm3_assign import (
    MACROMODEL_SETTINGS,
    Interaction,
    Mm3Assignment,
    Mm3ForceField,
    MMGraph,
    assign_parameters,
    build_mm3_forcefield,
    mm_graph,
    opt_substructure_trainable,
)
from q2jax.io.mm3_fld import (
    Fld,
    FldParam,
    FldSubstructure,
    FldVdw,
    parse_fld,
    parse_pattern,
    read_fld,
    write_fld,
)
from q2jax.io.mol2 import read_mol2, read_mol2_all
from q2jax.io.qmdata import QMData
from q2jax.io.reference_yaml import ReferenceFile, read_reference_yaml, write_reference_yaml
from q2jax.io.tinker_prm import (
    TinkerPrm,
    format_tinker_prm,
    parse_tinker_prm,
    read_tinker_prm,
    write_tinker_prm,
)
from q2jax.io.xyz import read_xyz, read_xyz_all


def read_qm(path: str | Path, **kw) -> QMData:
    """Read any supported structure/QM file by its extension (see the module
    docstring); keyword arguments go to the chosen reader."""
    name = str(path).lower()
    if name.endswith(".maegz"):
        return read_mae(path, **kw)
    if name.endswith(".gz"):
        name = name[:-3]
    ext = name.rsplit(".", 1)[-1] if "." in name.rsplit("/", 1)[-1] else ""
    if ext == "xyz":
        return read_xyz(path, **kw)
    if ext == "log":
        return read_gaussian_log(path, **kw)
    if ext in ("fchk", "fch"):
        return read_fchk(path, **kw)
    if ext == "out":
        if is_jaguar_output(path):
            return read_jaguar_out(path, **kw)
        if is_gaussian_output(path):
            return read_gaussian_log(path, **kw)
        raise InputError(f"{path}: .out file of neither Jaguar nor Gaussian (by its header)")
    if ext == "in":
        if is_jaguar_input(path):
            return read_jaguar_in(path, **kw)
        raise InputError(f"{path}: .in file without a Jaguar &gen/&zmat section")
    if ext == "mae":
        return read_mae(path, **kw)
    if ext == "mmo":
        return read_mmo(path, **kw)
    if ext == "mol2":
        return read_mol2(path, **kw)
    raise InputError(f"{path}: unknown file type {ext!r}; expected one of .xyz, .log, .fchk, "
                     ".out, .in, .mae, .mmo, .mol2 (optionally .gz)")


__all__ = [
    "QMData",
    "read_qm",
    "read_xyz",
    "read_xyz_all",
    "read_gaussian_log",
    "read_fchk",
    "rotational_residual",
    "is_gaussian_output",
    "is_jaguar_output",
    "is_jaguar_input",
    "read_jaguar_in",
    "read_jaguar_out",
    "read_mae",
    "read_mae_all",
    "read_mae_bond_orders",
    "read_mmo",
    "read_mmo_all",
    "read_atom_typ",
    "macromodel_atom_types",
    "MacroModelAtomType",
    "MACROMODEL_ATOM_TYPES",
    "read_mol2",
    "read_mol2_all",
    "read_reference_yaml",
    "write_reference_yaml",
    "ReferenceFile",
    # force-field formats
    "Fld",
    "FldParam",
    "FldSubstructure",
    "FldVdw",
    "read_fld",
    "parse_fld",
    "write_fld",
    "parse_pattern",
    "MMGraph",
    "Interaction",
    "Mm3Assignment",
    "Mm3ForceField",
    "MACROMODEL_SETTINGS",
    "mm_graph",
    "assign_parameters",
    "build_mm3_forcefield",
    "opt_substructure_trainable",
    "Frcmod",
    "FrcmodTerm",
    "read_frcmod",
    "parse_frcmod",
    "write_frcmod",
    "format_frcmod",
    "frcmod_to_forcefield",
    "forcefield_to_frcmod",
    "TinkerPrm",
    "read_tinker_prm",
    "parse_tinker_prm",
    "write_tinker_prm",
    "format_tinker_prm",
]
