"""A System is what the energy needs for one molecule under one force field:
coordinates, masses and integer term tables, all arrays. Systems of
different molecules are padded to common sizes and stacked into one batch
evaluated with ``vmap``; padded atoms and terms are masked out.

Term tables hold atom indices and *positions* of parameters in
``ForceField.full_params()``; absent parameters point at its zero slot.

Bonded terms are evaluated at each atom's *site* (``atom_site_parent``,
``atom_site_scale``: MM3's reduced hydrogen positions as MacroModel uses them,
see ``q2jax.terms.sites``; every atom is its own site unless a MacroModel
MM3* assignment says otherwise). Nonbonded pairs take their distance between
sites and their van der Waals taper (``pair_taper``) from the real distance.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from q2jax.errors import TopologyError
from q2jax.forcefield import ForceField
from q2jax.molecule import Molecule
from q2jax.params import canonical_key, label


class Terms(eqx.Module):
    """Index tables of every MM term (leading axis: term; masks mark real rows)."""

    bond_atoms: Int[Array, "nb 2"]
    bond_params: Int[Array, "nb 2"]  # k, r0
    bond_mask: Bool[Array, " nb"]
    angle_atoms: Int[Array, "na 3"]
    angle_params: Int[Array, "na 2"]  # k, theta0
    angle_mask: Bool[Array, " na"]
    torsion_atoms: Int[Array, "nt 4"]
    torsion_params: Int[Array, "nt 3"]  # V1, V2, V3
    torsion_mask: Bool[Array, " nt"]
    improper_atoms: Int[Array, "ni 4"]
    improper_params: Int[Array, "ni 1"]
    improper_mask: Bool[Array, " ni"]
    sb_atoms: Int[Array, "ns 3"]
    sb_params: Int[Array, "ns 4"]  # k_sb, r0(ij), r0(jk), theta0
    sb_mask: Bool[Array, " ns"]
    pair_atoms: Int[Array, "np 2"]
    pair_vdw_scale: Float[Array, " np"]
    pair_elec_scale: Float[Array, " np"]
    pair_mask: Bool[Array, " np"]
    atom_vdw_params: Int[Array, "atoms 2"]  # radius, epsilon
    atom_charge_params: Int[Array, " atoms"]
    bb_atoms: Int[Array, "nbb 5"]  # centre c, a1, b1, a2, b2: angles a1-c-b1 and a2-c-b2
    bb_params: Int[Array, "nbb 4"]  # k1, k2, theta0_1, theta0_2
    bb_mask: Bool[Array, " nbb"]
    ts_atoms: Int[Array, "nts 4"]
    ts_params: Int[Array, "nts 2"]  # k, r0 of the central bond
    ts_mask: Bool[Array, " nts"]
    pair_vdw_params: Int[Array, "np 2"]  # pair-specific r*, eps (zero slot: combination rule)
    pair_taper: Float[Array, "np 2"]  # r_on, r_off (Å) of the eps taper; r_off = 0: none
    atom_site_parent: Int[Array, " atoms"]  # the atom whose bond the site lies on (or itself)
    atom_site_scale: Float[Array, " atoms"]  # f in s = x_p + f (x - x_p); 1 for a plain atom
    ub_atoms: Int[Array, "nub 2"]  # ends i, k of an angle i-j-k
    ub_params: Int[Array, "nub 2"]  # k, r0 of the 1-3 distance
    ub_mask: Bool[Array, " nub"]


class System(eqx.Module):
    """Coordinates (Å), masses (amu), atom mask and term tables of one molecule
    (or, stacked, of a padded batch)."""

    coords: Float[Array, "atoms 3"]
    masses: Float[Array, " atoms"]
    atom_mask: Bool[Array, " atoms"]
    terms: Terms

    @property
    def n_atoms(self) -> int:
        return int(self.coords.shape[-2])


def _lookup(pos, ff_zero, kind, key, missing, required):
    p = pos.get((kind, key))
    if p is None:
        if required:
            missing.add(label(kind, key))
        return ff_zero
    return p


def build_terms(ff: ForceField, molecule: Molecule, *, allow_missing: bool = False) -> Terms:
    """Term tables of ``molecule`` under ``ff`` (host side).

    A family the force field has at all must cover every term of that family
    in the molecule, else TopologyError lists the missing parameters (unless
    ``allow_missing``, which gives them zero values). Families the force field
    does not have are left out.
    """
    pos = ff.position_map()
    zero = ff.zero_slot
    fams = ff.families()
    t = molecule.atom_types
    topo = molecule.topology(impropers="improper" in fams)
    missing: set[str] = set()
    need = not allow_missing

    def rows(atoms, family, kinds, width_atoms):
        if family not in fams or len(atoms) == 0:
            return (np.zeros((0, width_atoms), np.int32), np.zeros((0, len(kinds)), np.int32))
        params = []
        for a in atoms:
            key = canonical_key(family, tuple(t[i] for i in a))
            params.append([_lookup(pos, zero, k, key, missing, need) for k in kinds])
        return np.asarray(atoms, np.int32), np.asarray(params, np.int32)

    b_atoms, b_par = rows(topo.bonds, "bond", ("bond_k", "bond_eq"), 2)
    a_atoms, a_par = rows(topo.angles, "angle", ("angle_k", "angle_eq"), 3)
    t_atoms, t_par = rows(topo.torsions, "torsion", ("torsion_v1", "torsion_v2", "torsion_v3"), 4)
    i_atoms, i_par = rows(topo.impropers, "improper", ("improper_k",), 4)

    if "stretch_bend" in fams and len(topo.angles):
        sb_atoms = np.asarray(topo.angles, np.int32)
        sb_par = []
        for i, j, k in topo.angles:
            akey = canonical_key("angle", (t[i], t[j], t[k]))
            sb_par.append(
                [
                    _lookup(pos, zero, "stretch_bend_k", akey, missing, False),
                    _lookup(
                        pos, zero, "bond_eq", canonical_key("bond", (t[i], t[j])), missing, need
                    ),
                    _lookup(
                        pos, zero, "bond_eq", canonical_key("bond", (t[j], t[k])), missing, need
                    ),
                    _lookup(pos, zero, "angle_eq", akey, missing, need),
                ]
            )
        sb_par = np.asarray(sb_par, np.int32)
        keep = sb_par[:, 0] != zero  # angles without a stretch-bend constant have no term
        sb_atoms, sb_par = sb_atoms[keep], sb_par[keep]
    else:
        sb_atoms, sb_par = np.zeros((0, 3), np.int32), np.zeros((0, 4), np.int32)

    ub_atoms, ub_par = _urey_bradley_rows(pos, zero, fams, t, topo.angles)
    bb_atoms, bb_par = _bend_bend_rows(pos, zero, fams, t, topo.angles, missing, need)
    ts_atoms, ts_par = _torsion_stretch_rows(pos, zero, fams, t, topo.torsions, missing, need)

    n = molecule.n_atoms
    has_vdw, has_q = "vdw" in fams, "charge" in fams
    atom_vdw = np.full((n, 2), zero, np.int32)
    atom_q = np.full((n,), zero, np.int32)
    for i, ti in enumerate(t):
        if has_vdw:
            atom_vdw[i] = [
                _lookup(pos, zero, "vdw_radius", (ti,), missing, need),
                _lookup(pos, zero, "vdw_epsilon", (ti,), missing, need),
            ]
        if has_q:
            atom_q[i] = _lookup(pos, zero, "charge", (ti,), missing, False)
    if missing:
        shown = ", ".join(sorted(missing)[:12])
        more = f" (and {len(missing) - 12} more)" if len(missing) > 12 else ""
        raise TopologyError(
            f"force field has no parameters for {shown}{more} needed by molecule {molecule.name!r}"
        )
    if has_vdw or has_q:
        pairs = np.asarray(topo.pairs, np.int32).reshape(-1, 2)
        is14 = np.asarray(topo.pairs_14, bool)
    else:
        pairs, is14 = np.zeros((0, 2), np.int32), np.zeros((0,), bool)
    s = ff.settings
    vdw_scale = np.where(is14, s.vdw_14_scale, 1.0)
    elec_scale = np.where(is14, s.elec_14_scale, 1.0)
    pair_vdw = np.full((pairs.shape[0], 2), zero, np.int32)
    if "vdw_pair" in fams:
        for m, (i, j) in enumerate(pairs.tolist()):
            key = canonical_key("vdw_pair", (t[i], t[j]))
            if ("vdw_pair_rstar", key) in pos:
                pair_vdw[m] = [pos[("vdw_pair_rstar", key)],
                               _lookup(pos, zero, "vdw_pair_epsilon", key, missing, True)]
        if missing:
            raise TopologyError(f"force field has no parameters for {', '.join(sorted(missing))}"
                                f" needed by molecule {molecule.name!r}")

    def ones(x):
        return jnp.ones((x.shape[0],), bool)

    return Terms(
        bond_atoms=jnp.asarray(b_atoms),
        bond_params=jnp.asarray(b_par),
        bond_mask=ones(b_atoms),
        angle_atoms=jnp.asarray(a_atoms),
        angle_params=jnp.asarray(a_par),
        angle_mask=ones(a_atoms),
        torsion_atoms=jnp.asarray(t_atoms),
        torsion_params=jnp.asarray(t_par),
        torsion_mask=ones(t_atoms),
        improper_atoms=jnp.asarray(i_atoms),
        improper_params=jnp.asarray(i_par),
        improper_mask=ones(i_atoms),
        sb_atoms=jnp.asarray(sb_atoms),
        sb_params=jnp.asarray(sb_par),
        sb_mask=ones(sb_atoms),
        pair_atoms=jnp.asarray(pairs),
        pair_vdw_scale=jnp.asarray(vdw_scale, jnp.float64),
        pair_elec_scale=jnp.asarray(elec_scale, jnp.float64),
        pair_mask=ones(pairs),
        atom_vdw_params=jnp.asarray(atom_vdw),
        atom_charge_params=jnp.asarray(atom_q),
        bb_atoms=jnp.asarray(bb_atoms),
        bb_params=jnp.asarray(bb_par),
        bb_mask=ones(bb_atoms),
        ts_atoms=jnp.asarray(ts_atoms),
        ts_params=jnp.asarray(ts_par),
        ts_mask=ones(ts_atoms),
        pair_vdw_params=jnp.asarray(pair_vdw),
        pair_taper=jnp.zeros((pairs.shape[0], 2), jnp.float64),
        atom_site_parent=jnp.arange(n, dtype=jnp.int32),
        atom_site_scale=jnp.ones((n,), jnp.float64),
        ub_atoms=jnp.asarray(ub_atoms),
        ub_params=jnp.asarray(ub_par),
        ub_mask=ones(ub_atoms),
    )


def _urey_bradley_rows(pos, zero, fams, types, angles):
    """Urey-Bradley 1-3 terms for the angles whose type has ``ub_k`` (optional per angle)."""
    rows, params = [], []
    if "urey_bradley" in fams:
        for i, j, k in angles:
            key = canonical_key("urey_bradley", (types[i], types[j], types[k]))
            kp = pos.get(("ub_k", key))
            if kp is None:
                continue
            rows.append((i, k))
            params.append((kp, pos.get(("ub_eq", key), zero)))
    return np.asarray(rows, np.int32).reshape(-1, 2), np.asarray(params, np.int32).reshape(-1, 2)


def _bend_bend_rows(pos, zero, fams, types, angles, missing, need):
    """Bend-bend terms: every pair of angles at one centre whose angle types both
    have a ``bend_bend_k`` (MacroModel couples all such pairs, shared end or not)."""
    rows, params = [], []
    if "bend_bend" in fams:
        by_centre: dict[int, list] = {}
        for i, j, k in angles:
            key = canonical_key("angle", (types[i], types[j], types[k]))
            kb = pos.get(("bend_bend_k", key))
            if kb is not None:
                eq = _lookup(pos, zero, "angle_eq", key, missing, need)
                by_centre.setdefault(j, []).append((i, k, kb, eq))
        for j, group in by_centre.items():
            for n, (a1, b1, k1, e1) in enumerate(group):
                for a2, b2, k2, e2 in group[n + 1:]:
                    rows.append([j, a1, b1, a2, b2])
                    params.append([k1, k2, e1, e2])
    return np.asarray(rows, np.int32).reshape(-1, 5), np.asarray(params, np.int32).reshape(-1, 4)


def _torsion_stretch_rows(pos, zero, fams, types, torsions, missing, need):
    """Torsion-stretch terms: every torsion whose type has a ``torsion_stretch_k``,
    with the equilibrium length of its central bond."""
    rows, params = [], []
    if "torsion_stretch" in fams:
        for a in torsions:
            key = canonical_key("torsion_stretch", tuple(types[i] for i in a))
            k = pos.get(("torsion_stretch_k", key))
            if k is not None:
                bkey = canonical_key("bond", (types[a[1]], types[a[2]]))
                rows.append(list(a))
                params.append([k, _lookup(pos, zero, "bond_eq", bkey, missing, need)])
    return np.asarray(rows, np.int32).reshape(-1, 4), np.asarray(params, np.int32).reshape(-1, 2)


def build_system(ff: ForceField, molecule: Molecule, *, allow_missing: bool = False) -> System:
    """The System of one molecule under ``ff``."""
    return System(
        coords=jnp.asarray(molecule.coords, jnp.float64),
        masses=jnp.asarray(molecule.masses, jnp.float64),
        atom_mask=jnp.ones((molecule.n_atoms,), bool),
        terms=build_terms(ff, molecule, allow_missing=allow_missing),
    )


def _pad_rows(x: np.ndarray, n: int, fill) -> np.ndarray:
    pad = n - x.shape[0]
    if pad < 0:
        raise ValueError("cannot pad to a smaller size")
    if pad == 0:
        return x
    widths = [(0, pad)] + [(0, 0)] * (x.ndim - 1)
    return np.pad(x, widths, constant_values=fill)


def pad_system(system: System, n_atoms: int, sizes: dict[str, int], zero_slot: int) -> System:
    """Pad one system to ``n_atoms`` atoms and the term counts in ``sizes``
    (group -> count, groups as the table name prefixes: bond, angle, torsion,
    improper, sb, pair, bb, ts; a group not in ``sizes`` keeps its count).

    Padded atoms sit far apart (no accidental contacts), weigh 1 amu, are
    their own sites and are masked; padded terms point at atom 0 and the zero
    parameter slot.
    """
    n0 = system.n_atoms
    coords = np.asarray(system.coords)
    extra = n_atoms - n0
    far = 1000.0 + 10.0 * np.arange(extra)[:, None] * np.array([[1.0, 0.0, 0.0]])
    coords = np.concatenate([coords, far], axis=0)
    masses = np.concatenate([np.asarray(system.masses), np.ones(extra)])
    mask = np.concatenate([np.asarray(system.atom_mask), np.zeros(extra, bool)])
    t = system.terms
    fields = {}
    for name in Terms.__dataclass_fields__:
        arr = np.asarray(getattr(t, name))
        if name == "atom_site_parent":  # padded atoms are their own sites
            fields[name] = np.concatenate([arr, np.arange(n0, n_atoms, dtype=arr.dtype)])
            continue
        if name == "atom_site_scale":
            fields[name] = _pad_rows(arr, n_atoms, 1.0)
            continue
        if name.startswith("atom_"):
            fields[name] = _pad_rows(arr, n_atoms, zero_slot)
            continue
        group = name.split("_")[0]
        size = sizes.get(group, arr.shape[0])
        if name.endswith("_mask"):
            fill = False
        elif name.endswith("_params"):
            fill = zero_slot
        elif name.endswith("_scale"):
            fill = 0.0
        else:
            fill = 0
        fields[name] = _pad_rows(arr, size, fill)
    return System(
        coords=jnp.asarray(coords),
        masses=jnp.asarray(masses),
        atom_mask=jnp.asarray(mask),
        terms=Terms(**{k: jnp.asarray(v) for k, v in fields.items()}),
    )


def stack_systems(systems: Sequence[System], zero_slot: int, n_atoms: int | None = None) -> System:
    """Pad systems to common sizes and stack them along a new leading axis."""
    if not systems:
        raise ValueError("no systems to stack")
    n = max(s.n_atoms for s in systems) if n_atoms is None else n_atoms
    groups = ("bond", "angle", "torsion", "improper", "sb", "pair", "bb", "ts", "ub")
    sizes = {g: max(int(getattr(s.terms, f"{g}_mask").shape[0]) for s in systems) for g in groups}
    padded = [pad_system(s, n, sizes, zero_slot) for s in systems]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *padded)


def build_batch(
    ff: ForceField,
    molecules: Sequence[Molecule],
    *,
    allow_missing: bool = False,
    n_atoms: int | None = None,
) -> System:
    """One padded, stacked System for a list of molecules (leading axis = molecule)."""
    return stack_systems(
        [build_system(ff, m, allow_missing=allow_missing) for m in molecules],
        ff.zero_slot,
        n_atoms=n_atoms,
    )


__all__ = [
    "Terms",
    "System",
    "build_terms",
    "build_system",
    "pad_system",
    "stack_systems",
    "build_batch",
]
