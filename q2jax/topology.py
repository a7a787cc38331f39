"""Topology perception: bonds from covalent radii, then angles, proper
torsions, out-of-plane centres and nonbonded pairs, all from the bond graph.

Everything here is host-side NumPy on static connectivity; the results are
integer index arrays that the energy terms gather with.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from q2jax.elements import covalent_radius
from q2jax.errors import TopologyError

DEFAULT_BOND_TOLERANCE = 1.3
"""Bond if d < tolerance * (r_cov,i + r_cov,j); use ~1.4-1.5 for transition states."""

LINEAR_ANGLE_DEG = 175.0
"""Torsions through an angle wider than this are skipped (undefined dihedral)."""


class Topology(NamedTuple):
    """Index arrays (0-based atom indices) for every MM term of one molecule."""

    bonds: np.ndarray  # (nb, 2)
    angles: np.ndarray  # (na, 3) i-j-k with j the centre
    torsions: np.ndarray  # (nt, 4)
    impropers: np.ndarray  # (ni, 4) centre first, then its three neighbours
    pairs: np.ndarray  # (np, 2) nonbonded pairs beyond 1-3
    pairs_14: np.ndarray  # (np,) bool, True for 1-4 pairs (scaled)


def perceive_bonds(
    symbols: tuple[str, ...], coords: np.ndarray, tolerance: float = DEFAULT_BOND_TOLERANCE
) -> tuple[tuple[int, int], ...]:
    """Bonds (i < j) where |r_i - r_j| < tolerance * (r_cov,i + r_cov,j)."""
    xyz = np.asarray(coords, dtype=float)
    radii = np.array([covalent_radius(s) for s in symbols])
    d = np.linalg.norm(xyz[:, None, :] - xyz[None, :, :], axis=-1)
    cutoff = tolerance * (radii[:, None] + radii[None, :])
    i, j = np.nonzero(np.triu(d < cutoff, k=1))
    return tuple((int(a), int(b)) for a, b in zip(i, j, strict=True))


def normalize_bonds(bonds, n_atoms: int) -> tuple[tuple[int, int], ...]:
    """Sorted unique (i < j) pairs; raises TopologyError on bad indices."""
    out = set()
    for bond in bonds:
        if len(bond) != 2:
            raise TopologyError(f"a bond needs two atom indices, got {bond!r}")
        a, b = (int(x) for x in bond)
        if a == b:
            raise TopologyError(f"bond from atom {a} to itself")
        if not (0 <= a < n_atoms and 0 <= b < n_atoms):
            raise TopologyError(f"bond {bond!r} refers to an atom outside 0..{n_atoms - 1}")
        out.add((min(a, b), max(a, b)))
    return tuple(sorted(out))


def neighbours(bonds: tuple[tuple[int, int], ...], n_atoms: int) -> list[list[int]]:
    nbr: list[list[int]] = [[] for _ in range(n_atoms)]
    for a, b in bonds:
        nbr[a].append(b)
        nbr[b].append(a)
    return [sorted(x) for x in nbr]


def _angle_deg(xyz: np.ndarray, i: int, j: int, k: int) -> float:
    u, v = xyz[i] - xyz[j], xyz[k] - xyz[j]
    c = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def build_topology(
    bonds: tuple[tuple[int, int], ...],
    n_atoms: int,
    coords: np.ndarray | None = None,
    *,
    impropers: bool = True,
    planar_tolerance_deg: float = 20.0,
) -> Topology:
    """Angles, torsions, out-of-plane centres and nonbonded pairs from bonds.

    Torsions through a (near-)linear angle are dropped when ``coords`` is given.
    An out-of-plane term is placed on every atom with exactly three
    neighbours whose neighbours lie within ``planar_tolerance_deg`` of its plane
    (sp2 centres); pyramidal trivalent centres (amines, phosphines) get none.
    """
    nbr = neighbours(bonds, n_atoms)
    xyz = None if coords is None else np.asarray(coords, dtype=float)

    angles = [
        (i, j, k) for j in range(n_atoms) for a, i in enumerate(nbr[j]) for k in nbr[j][a + 1 :]
    ]

    def linear(i: int, j: int, k: int) -> bool:
        return xyz is not None and _angle_deg(xyz, i, j, k) > LINEAR_ANGLE_DEG

    torsions = []
    for b, c in bonds:
        for a in nbr[b]:
            if a == c or linear(a, b, c):
                continue
            for d in nbr[c]:
                if d == b or d == a or linear(b, c, d):
                    continue
                torsions.append((a, b, c, d) if a <= d else (d, c, b, a))

    oop = []
    if impropers:
        for c in range(n_atoms):
            if len(nbr[c]) != 3:
                continue
            i, j, k = nbr[c]
            if xyz is not None:
                total = (
                    _angle_deg(xyz, i, c, j) + _angle_deg(xyz, j, c, k) + _angle_deg(xyz, i, c, k)
                )
                if total < 360.0 - planar_tolerance_deg:
                    continue
            oop.append((c, i, j, k))

    # Graph distances up to 3 for exclusions and 1-4 flags.
    separation = np.full((n_atoms, n_atoms), 99, dtype=int)
    np.fill_diagonal(separation, 0)
    for a, b in bonds:
        separation[a, b] = separation[b, a] = 1
    for i, _, k in angles:
        separation[i, k] = separation[k, i] = min(separation[i, k], 2)
    for a, _, _, d in torsions:
        separation[a, d] = separation[d, a] = min(separation[a, d], 3)
    iu, ju = np.triu_indices(n_atoms, k=1)
    keep = separation[iu, ju] >= 3
    pairs = np.stack([iu[keep], ju[keep]], axis=1) if keep.any() else np.zeros((0, 2), int)
    pairs_14 = separation[iu[keep], ju[keep]] == 3

    def arr(rows, width):
        return np.asarray(rows, dtype=np.int32).reshape(-1, width)

    return Topology(
        bonds=arr(bonds, 2),
        angles=arr(angles, 3),
        torsions=arr(sorted(set(torsions)), 4),
        impropers=arr(oop, 4),
        pairs=pairs.astype(np.int32).reshape(-1, 2),
        pairs_14=np.asarray(pairs_14, dtype=bool).reshape(-1),
    )


__all__ = [
    "DEFAULT_BOND_TOLERANCE",
    "Topology",
    "perceive_bonds",
    "normalize_bonds",
    "neighbours",
    "build_topology",
]
