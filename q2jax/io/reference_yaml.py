"""Reference-set YAML: the Q2MM reference schema, extended (q2jax's native format).

A file lists molecules, each with a geometry and data to fit::

    form: harmonic            # optional fit settings (used by `q2jax fit CONFIG.yaml`)
    method: lm
    molecules:
      - name: ch3f
        xyz: ch3f-optimized.xyz          # or  qm: GS.fchk | job.log | job.out | job.in
        hessian: ch3f-hessian.npy        # optional (.npy); paths relative to this file
        hessian_units: hartree/bohr2     # default for .npy Hessians
        geometry: {symbols: [...], coordinates: [[...]]}   # inline alternative to xyz, Å
        transition_state: false
        bond_tolerance: 1.3
        data:
          - {kind: frequency}                       # from the Hessian, or `values: [...]` cm^-1
          - {kind: eigenmatrix, diagonal_weight: 0.1, offdiagonal_weight: 0.05}
          - {kind: hessian, weight: 0.01}
          - {kind: energy, value: -139.7621, units: hartree, group: set1}
          - {kind: bond_length, atoms: [0, 1], value: 1.383, weight: 10.0}   # Å
          - {kind: bond_angle, atoms: [1, 0, 2], value: 108.4}                # degrees
          - {kind: torsion_angle, atoms: [2, 0, 1, 3], value: 120.0}          # degrees
          - {kind: cartesian, weight: 1.0}          # RMSD to this geometry after alignment

Kinds of the Q2MM schema (energy, frequency, bond_length, bond_angle,
torsion_angle, eigenmatrix, hessian) read as Q2MM defines them; Q2MM's
per-element kinds (eig_diagonal, eig_offdiagonal, hessian_element) are
refused with a message, since q2jax fits whole blocks. Energies are absolute
QM energies in ``units`` (default hartree) and are compared within ``group``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from q2jax.errors import InputError, ParseError
from q2jax.reference import (
    TS_REPLACEMENT_EIGENVALUE,
    CartesianData,
    EigenmatrixData,
    EnergyData,
    FrequencyData,
    GeometryData,
    HessianData,
    ReferenceSet,
)
from q2jax.units import HARTREE_TO_KCAL_MOL, KJ_TO_KCAL, hessian_factor

ENERGY_UNITS = {"hartree": HARTREE_TO_KCAL_MOL, "kcal/mol": 1.0, "kj/mol": KJ_TO_KCAL}
GEOMETRY_KIND = {"bond_length": "bond", "bond_angle": "angle", "torsion_angle": "torsion"}


@dataclass
class ReferenceFile:
    """A parsed reference YAML: the ReferenceSet, QM Hessians and frequencies
    per molecule, transition-state flags and top-level settings."""

    refs: ReferenceSet
    hessians: list[np.ndarray | None]
    qm_frequencies: list[np.ndarray | None]
    transition_state: list[bool]
    settings: dict = field(default_factory=dict)
    path: str = ""


def _err(path, msg):
    return ParseError(msg, path=str(path))


def _float(x, what, path):
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise _err(path, f"{what}: expected a number, got {x!r}") from None
    if not np.isfinite(v):
        raise _err(path, f"{what}: not finite ({x!r})")
    return v


def _load_molecule(entry: dict, index: int, base: Path, path):
    from q2jax.io import read_qm
    from q2jax.molecule import Molecule

    ctx = f"molecules[{index}]"
    if not isinstance(entry, dict):
        raise _err(path, f"{ctx} must be a mapping")
    name = str(entry.get("name", f"molecule{index}"))
    tol = {}
    if "bond_tolerance" in entry:
        tol["bond_tolerance"] = _float(entry["bond_tolerance"], f"{ctx}.bond_tolerance", path)
    hessian = None
    qm_freqs = None
    if "qm" in entry or "xyz" in entry:
        src = base / str(entry.get("qm", entry.get("xyz")))
        if not src.exists():
            raise _err(path, f"{ctx}: file not found: {src}")
        qm = read_qm(src)
        mol = qm.to_molecule(name=name, **tol)
        if qm.hessian is not None:
            hessian = qm.checked_hessian()
        if qm.frequencies is not None:
            qm_freqs = np.sort(np.asarray(qm.frequencies, float))
    elif "geometry" in entry:
        g = entry["geometry"]
        if not isinstance(g, dict) or "symbols" not in g or "coordinates" not in g:
            raise _err(path, f"{ctx}.geometry needs 'symbols' and 'coordinates'")
        mol = Molecule.from_arrays(g["symbols"], g["coordinates"], name=name, **tol)
    else:
        raise _err(path, f"{ctx}: give 'xyz', 'qm' or 'geometry'")
    if "hessian" in entry:
        hp = base / str(entry["hessian"])
        if not hp.exists():
            raise _err(path, f"{ctx}: Hessian file not found: {hp}")
        try:
            raw = np.load(hp)
        except (ValueError, OSError) as exc:
            raise _err(path, f"{ctx}: cannot read Hessian {hp}: {exc}") from None
        factor = hessian_factor(str(entry.get("hessian_units", "hartree/bohr2")))
        from q2jax.molecule import validate_hessian

        hessian = validate_hessian(raw * factor, mol.n_atoms, name=f"{hp.name}")
    return mol, hessian, qm_freqs


def read_reference_yaml(path: str | Path) -> ReferenceFile:
    """Read a reference YAML (Q2MM schema or q2jax's extension) into a ReferenceSet."""
    import yaml

    from q2jax.vibrations import frequencies as mm_frequencies

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such reference file")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise ParseError(f"invalid YAML ({exc})", path=str(path),
                         line=None if line is None else line + 1) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("molecules"), list):
        raise _err(path, "expected a mapping with a 'molecules' list")
    base = path.parent
    mols, hessians, qm_freqs, ts = [], [], [], []
    for i, entry in enumerate(doc["molecules"]):
        mol, h, f = _load_molecule(entry, i, base, path)
        mols.append(mol)
        hessians.append(h)
        if f is None and h is not None:
            import jax.numpy as jnp

            f = np.asarray(mm_frequencies(jnp.asarray(h), mol.coords, mol.masses, mol.n_vibrations))
        qm_freqs.append(f)
        flag = entry.get("transition_state")
        ts.append(bool(flag) if flag is not None else bool(f is not None and np.any(f < -50.0)))
    refs = ReferenceSet(mols)
    for i, entry in enumerate(doc["molecules"]):
        data = entry.get("data", [{"kind": "frequency"}] if hessians[i] is not None else [])
        if not isinstance(data, list):
            raise _err(path, f"molecules[{i}].data must be a list")
        for j, d in enumerate(data):
            refs.add(
                _datum(
                    d,
                    i,
                    mols[i],
                    hessians[i],
                    qm_freqs[i],
                    ts[i],
                    f"molecules[{i}].data[{j}]",
                    path,
                )
            )
    refs.validate()
    settings = {k: v for k, v in doc.items() if k != "molecules"}
    return ReferenceFile(refs, hessians, qm_freqs, ts, settings, str(path))


def _datum(d, i, mol, hessian, qm_freqs, ts, ctx, path):
    if not isinstance(d, dict) or "kind" not in d:
        raise _err(path, f"{ctx} must be a mapping with a 'kind'")
    kind = str(d["kind"])
    w = _float(d.get("weight", 1.0), f"{ctx}.weight", path)

    def need_hessian():
        if hessian is None:
            raise _err(path, f"{ctx}: kind {kind!r} needs a QM Hessian for molecule {mol.name!r}")
        return hessian

    if kind == "frequency":
        if "values" in d:
            vals = np.sort(np.asarray([_float(v, f"{ctx}.values", path) for v in d["values"]]))
        elif qm_freqs is not None:
            vals = qm_freqs
        else:
            raise _err(path, f"{ctx}: frequency needs 'values' or a QM Hessian")
        return FrequencyData(i, vals, w, skip_imaginary=bool(d.get("skip_imaginary", False)))
    if kind == "eigenmatrix":
        h = need_hessian()
        wd = _float(d.get("diagonal_weight", w), f"{ctx}.diagonal_weight", path)
        wo = _float(d.get("offdiagonal_weight", 0.0), f"{ctx}.offdiagonal_weight", path)
        repl = TS_REPLACEMENT_EIGENVALUE if (ts and d.get("ts_replacement", True)) else None
        return EigenmatrixData(i, h, wd, wo, repl)
    if kind == "hessian":
        return HessianData(i, need_hessian(), w)
    if kind == "energy":
        unit = str(d.get("units", "hartree")).lower()
        if unit not in ENERGY_UNITS:
            raise _err(path, f"{ctx}: unknown energy units {unit!r}; use {sorted(ENERGY_UNITS)}")
        value = _float(d.get("value"), f"{ctx}.value", path) * ENERGY_UNITS[unit]
        return EnergyData(i, value, w, str(d.get("group", "default")))
    if kind in GEOMETRY_KIND:
        atoms = d.get("atoms")
        if not isinstance(atoms, list) or not all(isinstance(a, int) for a in atoms):
            raise _err(path, f"{ctx}: 'atoms' must be a list of 0-based atom indices")
        return GeometryData(i, GEOMETRY_KIND[kind], tuple(atoms),
                            _float(d.get("value"), f"{ctx}.value", path), w)
    if kind == "cartesian":
        return CartesianData(i, np.asarray(mol.coords), w)
    if kind in ("eig_diagonal", "eig_offdiagonal", "hessian_element"):
        raise _err(path, f"{ctx}: per-element kind {kind!r} is not supported; use 'eigenmatrix' "
                         "or 'hessian' (whole blocks, with weights)")
    raise _err(path, f"{ctx}: unknown kind {kind!r}")


def write_reference_yaml(path: str | Path, molecules, hessians=None, *, settings=None,
                         data=None) -> Path:
    """Write a q2jax reference YAML: geometries inline (Å), Hessians as
    ``<name>-hessian.npy`` (Hartree/Bohr^2) next to it, frequency data by default."""
    import yaml

    from q2jax.units import HARTREE_BOHR2_TO_KCAL_MOL_A2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = []
    for k, mol in enumerate(molecules):
        e = {"name": mol.name,
             "geometry": {"symbols": list(mol.symbols),
                          "coordinates": np.asarray(mol.coords).round(10).tolist()}}
        if hessians is not None and hessians[k] is not None:
            hp = path.parent / f"{mol.name}-hessian.npy"
            np.save(hp, np.asarray(hessians[k]) / HARTREE_BOHR2_TO_KCAL_MOL_A2)
            e["hessian"] = hp.name
            e["hessian_units"] = "hartree/bohr2"
        e["data"] = data[k] if data is not None else [{"kind": "frequency"}]
        entries.append(e)
    doc = dict(settings or {})
    doc["molecules"] = entries
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


__all__ = ["ReferenceFile", "read_reference_yaml", "write_reference_yaml"]
