"""Matching MM3* ``.fld`` lines and substructure patterns onto a molecule
(host side): the molecule as MacroModel sees it (types, elements, bonds with
orders in file order), type matching (exact, ``00``, equivalences, element
wildcards such as ``C0``), bond symbols, attached-atom descriptors, pattern
matches and the atom chains a substructure line applies to. The rules are
documented in :mod:`q2jax.io.mm3_assign`."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from q2jax.elements import ELEMENTS
from q2jax.errors import TopologyError
from q2jax.io.mm3_fld import FldParam
from q2jax.molecule import Molecule

_SINGLE_LETTER_ELEMENTS = frozenset(s for s in ELEMENTS if len(s) == 1)
_SYMMETRIC = ("stretch", "bend", "stretch_bend", "torsion", "torsion_stretch")


@dataclass(frozen=True)
class MMGraph:
    """MacroModel atom types, elements and bonds with orders (0 = zero-order
    coordination bond) in file order; ``nbrs[i]`` lists (neighbour, order) in
    connection-table order."""

    types: tuple[str, ...]
    elements: tuple[str, ...]
    bonds: tuple[tuple[int, int, int], ...]
    nbrs: tuple[tuple[tuple[int, int], ...], ...]

    def order(self, i: int, j: int) -> int | None:
        for k, o in self.nbrs[i]:
            if k == j:
                return o
        return None


def mm_graph(molecule: Molecule, bond_orders: Sequence[Sequence[int]] | None = None) -> MMGraph:
    """The MMGraph of ``molecule`` (its ``atom_types`` must be MacroModel types).

    ``bond_orders`` are (i, j, order) triples, 0-based, in the file's bond
    order, covering exactly ``molecule.bonds``; without them every bond is
    single (then ``=``/``%`` lines cannot match: give orders for real files).
    """
    n = molecule.n_atoms
    if bond_orders is None:
        triples = [(a, b, 1) for a, b in molecule.bonds]
    else:
        triples = []
        for row in bond_orders:
            if len(row) != 3:
                raise TopologyError(f"bond order rows need (i, j, order), got {row!r}")
            a, b, o = (int(x) for x in row)
            if not (0 <= a < n and 0 <= b < n) or a == b or o not in (0, 1, 2, 3):
                raise TopologyError(f"bad bond {row!r} for molecule {molecule.name!r} of {n} atoms")
            triples.append((a, b, o))
        given = {(min(a, b), max(a, b)) for a, b, _ in triples}
        if given != set(molecule.bonds) or len(given) != len(triples):
            raise TopologyError(f"bond orders of {molecule.name!r} do not cover exactly its bonds")
    nbrs: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for a, b, o in triples:
        nbrs[a].append((b, o))
        nbrs[b].append((a, o))
    return MMGraph(tuple(molecule.atom_types), tuple(molecule.symbols), tuple(triples),
                   tuple(tuple(x) for x in nbrs))


class _Types:
    """Type matching against one molecule (memoised)."""

    def __init__(self, g: MMGraph, equivalences: Mapping[str, tuple[str, ...]]):
        self.g = g
        self.eq = equivalences
        self.memo: dict[tuple[str, int], bool] = {}
        self.present = set(zip(g.types, g.elements, strict=True))
        self.allowed_memo: dict[str, frozenset] = {}

    def matches_type(self, pat: str, atype: str, elem: str) -> bool:
        if pat == "00" or pat == atype:
            return True
        if pat in self.eq:
            return atype in self.eq[pat]
        if len(pat) == 2 and pat[1] == "0" and pat[0] in _SINGLE_LETTER_ELEMENTS:
            return elem == pat[0]
        if len(pat) == 1 and pat in _SINGLE_LETTER_ELEMENTS:
            return elem == pat
        return False

    def __call__(self, pat: str, atom: int) -> bool:
        key = (pat, atom)
        hit = self.memo.get(key)
        if hit is None:
            hit = self.matches_type(pat, self.g.types[atom], self.g.elements[atom])
            self.memo[key] = hit
        return hit

    def allowed(self, pat: str) -> frozenset:
        """The (type, element) pairs of this molecule that ``pat`` matches."""
        hit = self.allowed_memo.get(pat)
        if hit is None:
            hit = frozenset(s for s in self.present if self.matches_type(pat, *s))
            self.allowed_memo[pat] = hit
        return hit

    def possible(self, pat: str) -> bool:
        return bool(self.allowed(pat))


def _is_wildcard(t: str) -> bool:
    return t == "00" or (len(t) == 2 and t[1] == "0" and t[0] in _SINGLE_LETTER_ELEMENTS)


def _bond_ok(symbol: str, order: int | None) -> bool:
    if order is None:
        return False
    if symbol in ("", "~"):
        return True
    if symbol == "*":
        return order >= 1
    return {"-": 1, "=": 2, "%": 3, "#": 3, ".": 0, ":": 1}.get(symbol) == order


def _descriptor_ok(g: MMGraph, tm: _Types, atom: int, d1: str, d2: str, exclude) -> bool:
    reqs = []
    for k in (0, 2):
        t = d1[k:k + 2]
        if t != "00":
            reqs.append((t, d2[k:k + 2] if d2 else "00"))
    if not reqs:
        return True
    cands = [x for x, o in g.nbrs[atom] if o >= 1 and x not in exclude]

    def ok(x: int, t: str, s: str) -> bool:
        if not tm(t, x):
            return False
        return s == "00" or any(tm(s, y) for y, o in g.nbrs[x] if o >= 1 and y != atom)

    if len(reqs) == 1:
        return any(ok(x, *reqs[0]) for x in cands)
    return any(ok(x, *reqs[0]) and ok(y, *reqs[1]) for x in cands for y in cands if x != y)


def _descriptors_ok(p: FldParam, atoms: Sequence[int], g: MMGraph, tm: _Types) -> bool:
    if not p.descriptors:
        return True
    exclude = set(atoms)
    for pos, a in enumerate(atoms):
        d2 = p.descriptors2[pos] if p.descriptors2 else ""
        if pos < len(p.descriptors) and not _descriptor_ok(g, tm, a, p.descriptors[pos], d2,
                                                            exclude):
            return False
    return True


def _chain_matches(p: FldParam, atoms: Sequence[int], g: MMGraph, tm: _Types) -> bool:
    for pat, a in zip(p.atoms, atoms, strict=True):
        if not tm(pat, a):
            return False
    for k in range(len(atoms) - 1):
        if not _bond_ok(p.bonds[k], g.order(atoms[k], atoms[k + 1])):
            return False
    return _descriptors_ok(p, atoms, g, tm)


def _improper_matches(p: FldParam, atoms: Sequence[int], g: MMGraph, tm: _Types) -> bool:
    c = atoms[0]
    for pat, a in zip(p.atoms, atoms, strict=True):
        if not tm(pat, a):
            return False
    for k in range(1, 4):
        if not _bond_ok(p.bonds[k - 1], g.order(c, atoms[k])):
            return False
    return _descriptors_ok(p, atoms, g, tm)


def _ident(kind: str, atoms: Sequence[int]) -> tuple[int, ...]:
    t = tuple(atoms)
    if kind == "improper":
        return t
    return min(t, t[::-1])


def _enumerate(g: MMGraph) -> dict[str, list[tuple[int, ...]]]:
    n = len(g.types)
    bonds = [(a, b) for a, b, _ in g.bonds]
    angles = []
    for j in range(n):
        nb = [x for x, _ in g.nbrs[j]]
        for a, b in itertools.combinations(nb, 2):
            angles.append((a, j, b))
    torsions = set()
    for b, c, _ in g.bonds:
        for a, _ in g.nbrs[b]:
            for d, _ in g.nbrs[c]:
                if len({a, b, c, d}) == 4:
                    torsions.add(min((a, b, c, d), (d, c, b, a)))
    centres = [j for j in range(n) if sum(1 for _, o in g.nbrs[j] if o >= 1) == 3]
    return {"stretch": bonds, "bend": angles, "torsion": sorted(torsions),
            "improper_centres": centres}


def _pattern_matches(sub, g: MMGraph, tm: _Types) -> list[tuple[int, ...]]:
    n = len(sub.pattern_atoms)
    parent: list[int | None] = [None] * n
    back: list[list[tuple[int, str]]] = [[] for _ in range(n)]
    for i, j, s in sub.pattern_bonds:
        hi, lo = max(i, j), min(i, j)
        if parent[hi] is None and j == hi:
            parent[hi] = lo
        back[hi].append((lo, s))
    out: list[tuple[int, ...]] = []
    f: list[int] = []
    used: set[int] = set()

    def rec(k: int) -> None:
        if k == n:
            out.append(tuple(f))
            return
        pk = parent[k]
        cands = [x for x, _ in g.nbrs[f[pk]]] if pk is not None else range(len(g.types))
        for x in cands:
            if x in used or not tm(sub.pattern_atoms[k], x):
                continue
            if all(_bond_ok(s, g.order(x, f[o])) for o, s in back[k]):
                f.append(x)
                used.add(x)
                rec(k + 1)
                f.pop()
                used.discard(x)

    rec(0)
    return out


def _sub_chains(
    p: FldParam, match: tuple[int, ...], g: MMGraph, tm: _Types
) -> list[tuple[int, ...]]:
    """Atom chains (in line order) a substructure line applies to for one match."""
    spec = p.atoms
    n = len(spec)
    fixed = [match[int(a) - 1] if (a.isdigit() and a != "00") else None for a in spec]
    inside = set(match)
    start = next((k for k, x in enumerate(fixed) if x is not None), None)
    if start is None:
        return []
    order = [start] + [k for d in range(1, n) for k in (start - d, start + d) if 0 <= k < n]
    out = []
    chain: list[int | None] = [None] * n

    def rec(idx: int) -> None:
        if idx == len(order):
            atoms = tuple(chain)
            if len(set(atoms)) == n and _descriptors_ok(p, atoms, g, tm):
                out.append(atoms)
            return
        k = order[idx]
        nbr_pos = k + 1 if k < start else k - 1
        if fixed[k] is not None:
            cands = [fixed[k]] if k == start else (
                [fixed[k]] if g.order(chain[nbr_pos], fixed[k]) is not None else [])
        else:
            t = spec[k]
            cands = [x for x, _ in g.nbrs[chain[nbr_pos]]
                     if tm(t, x) and (_is_wildcard(t) or x not in inside)]
        for x in cands:
            if x in chain:
                continue
            chain[k] = x
            rec(idx + 1)
            chain[k] = None

    rec(0)
    return out


def _torsions_about(g: MMGraph, b: int, c: int) -> int:
    """Number of torsions a-b-c-d about the bond b-c (distinct atoms)."""
    return sum(1 for a, _ in g.nbrs[b] for d, _ in g.nbrs[c] if len({a, b, c, d}) == 4)


def _angle_deg(xyz: np.ndarray, i: int, j: int, k: int) -> float:
    u, v = xyz[i] - xyz[j], xyz[k] - xyz[j]
    c = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))
