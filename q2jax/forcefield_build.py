"""Build the parameter set a list of molecules needs (host side)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from q2jax.errors import InputError
from q2jax.params import KINDS, canonical_key

DEFAULT_FAMILIES = ("bond", "angle", "torsion", "improper")
LINEAR_SNAP_DEG = 179.9


def _angle_deg(xyz, i, j, k):
    u, v = xyz[i] - xyz[j], xyz[k] - xyz[j]
    c = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def parameters_from_molecules(
    molecules: Sequence,
    *,
    families: Sequence[str] | None = None,
    equilibrium_from_geometry: bool = True,
) -> list[tuple[str, tuple[str, ...], float]]:
    """``(kind, key, start value)`` for every parameter the molecules use.

    Equilibrium bond lengths and angles are averaged over all occurrences of
    a key in the given geometries; force constants start at their kind's
    default. Families with no occurrence are left out.
    """
    if not molecules:
        raise InputError("need at least one molecule to build a force field")
    fams = tuple(families) if families is not None else DEFAULT_FAMILIES
    unknown = set(fams) - {"bond", "angle", "torsion", "improper", "stretch_bend", "vdw", "charge",
                           "urey_bradley"}
    if unknown:
        raise InputError(f"unknown term families {sorted(unknown)}")
    bond_r: dict = defaultdict(list)
    angle_t: dict = defaultdict(list)
    ub_r: dict = defaultdict(list)
    torsions: set = set()
    impropers: set = set()
    types_seen: list[str] = []
    for mol in molecules:
        xyz = np.asarray(mol.coords)
        t = mol.atom_types
        topo = mol.topology()
        for a, b in topo.bonds:
            bond_r[canonical_key("bond", (t[a], t[b]))].append(
                float(np.linalg.norm(xyz[a] - xyz[b]))
            )
        for a, b, c in topo.angles:
            angle_t[canonical_key("angle", (t[a], t[b], t[c]))].append(_angle_deg(xyz, a, b, c))
            ub_r[canonical_key("urey_bradley", (t[a], t[b], t[c]))].append(
                float(np.linalg.norm(xyz[a] - xyz[c])))
        for a, b, c, d in topo.torsions:
            torsions.add(canonical_key("torsion", (t[a], t[b], t[c], t[d])))
        for c, a, b, d in topo.impropers:
            impropers.add(canonical_key("improper", (t[c], t[a], t[b], t[d])))
        for x in t:
            if x not in types_seen:
                types_seen.append(x)

    out: list[tuple[str, tuple[str, ...], float]] = []
    if "bond" in fams:
        for key in sorted(bond_r):
            r0 = (
                float(np.mean(bond_r[key]))
                if equilibrium_from_geometry
                else KINDS["bond_eq"].default
            )
            out += [("bond_k", key, KINDS["bond_k"].default), ("bond_eq", key, r0)]
    if "angle" in fams:
        for key in sorted(angle_t):
            t0 = (
                float(np.mean(angle_t[key]))
                if equilibrium_from_geometry
                else KINDS["angle_eq"].default
            )
            if t0 > LINEAR_SNAP_DEG:
                t0 = 180.0  # a reference a hair below 180 puts a cusp in E(x) near linearity
            out += [("angle_k", key, KINDS["angle_k"].default), ("angle_eq", key, t0)]
    if "torsion" in fams:
        for key in sorted(torsions):
            out += [(k, key, KINDS[k].default) for k in ("torsion_v1", "torsion_v2", "torsion_v3")]
    if "improper" in fams:
        for key in sorted(impropers):
            out.append(("improper_k", key, KINDS["improper_k"].default))
    if "urey_bradley" in fams:
        for key in sorted(ub_r):
            out += [("ub_k", key, KINDS["ub_k"].default), ("ub_eq", key, float(np.mean(ub_r[key])))]
    if "stretch_bend" in fams:
        for key in sorted(angle_t):
            out.append(("stretch_bend_k", key, KINDS["stretch_bend_k"].default))
    if "vdw" in fams:
        for x in types_seen:
            out += [
                ("vdw_radius", (x,), KINDS["vdw_radius"].default),
                ("vdw_epsilon", (x,), KINDS["vdw_epsilon"].default),
            ]
    if "charge" in fams:
        for x in types_seen:
            out.append(("charge", (x,), 0.0))
    return out


__all__ = ["parameters_from_molecules", "DEFAULT_FAMILIES"]
