"""MM energy, gradient and Hessian of a System under a force field.

Every term family is a *local* energy ``e(x_local, theta)`` of the 2-5 atoms
it involves; the molecular energy gathers each term's atoms and parameters
(positions in ``ForceField.full_params``), evaluates the family vmapped over
its terms and sums. The Hessian is assembled the same way, from the small
per-term Hessians (6x6 to 15x15) scattered into the 3N x 3N matrix, which is
much cheaper to compile and run than differentiating the whole energy
twice; it stays differentiable (for relaxed-geometry frequencies).

The bonded families are potentials of polynomial invariants of their bond
vectors (``q2jax.terms.bonded``): their local Hessians come from the chain
rule through fixed tensors (``q2jax.terms.invariants``), in which only a few
scalar derivatives per term depend on the parameters, so the Hessian and its
parameter derivative cost little more than the energy.

Bonded families act on the atoms' *sites* s = A x (``q2jax.terms.sites``:
MM3's reduced hydrogen positions, as MacroModel's MM3* uses them; s = x for
a plain atom), so their Hessian in atom coordinates is A^T H_s A (exact, the
map is linear). The nonbonded family acts on atom positions: each pair term
holds both atoms and their site parents (4 atoms), its energy depends on the
site distance and, through MacroModel's van der Waals taper, on the real one
(``q2jax.terms.pairs``). Nonbonded pairs cover most atom pairs, so their
Hessian is built from dense (atoms x atoms) pair tables, without a scatter.

Units: coordinates Å, energy kcal/mol, gradient kcal/(mol Å), Hessian
kcal/(mol Å^2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from q2jax.forcefield import ForceField, Settings
from q2jax.system import System, Terms
from q2jax.terms import (
    bonded,
    dense_pair_table,
    harmonic_out_of_plane,
    out_of_plane,
    pair_coefficients,
    pair_derivatives,
    pair_energies,
    pair_gradients,
    pair_hessian_blocks,
    pair_local,
    site_coordinates,
    site_map_rows,
    site_map_transpose,
)
from q2jax.terms.invariants import local_gradients, local_hessians, values
from q2jax.units import DEG_TO_RAD

# Non-degenerate stand-in geometries for padded (masked) terms, so that their
# derivatives stay finite; their energy is multiplied by zero.
_DUMMY = {
    2: jnp.array([[0.0, 0.0, 0.0], [1.3, 0.0, 0.0]]),
    3: jnp.array([[1.1, 0.0, 0.0], [0.0, 0.0, 0.0], [0.3, 1.2, 0.0]]),
    4: jnp.array([[1.1, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.2], [0.7, 0.9, 1.3]]),
    5: jnp.array(
        [[0.0, 0.0, 0.0], [1.1, 0.0, 0.0], [0.3, 1.2, 0.0], [0.0, 0.2, 1.2], [-0.8, -0.7, 0.4]]
    ),
}
_ONE = jnp.ones((1,), bool)
_I4 = jnp.array([[0, 1, 2, 3]])


class Family(NamedTuple):
    """One term family: atoms (n, k), mask (n,), parameters theta (n, m), local energy.

    ``space`` says which coordinates the atoms index: ``"site"`` (bonded terms,
    at the atoms' sites) or ``"atom"`` (nonbonded pairs). A family with
    ``bonded`` (``q2jax.terms.bonded``) has the local energy
    potential(internal(I(x)), theta) and its Hessian by the chain rule through
    the invariants I; otherwise ``local_hessian``, if given, replaces
    ``jax.hessian(local)`` (same signature, result (k, 3, k, 3)).
    """

    name: str
    atoms: Array
    mask: Array
    theta: Array
    local: Callable[[Array, Array], Array]
    space: str = "site"
    local_hessian: Callable[[Array, Array], Array] | None = None
    bonded: bonded.Bonded | None = None


def _local(fam: bonded.Bonded):
    """The local energy e(x, theta) = potential(internal(I(x)), theta) of one term."""

    def local(x, th):
        return fam.potential(fam.internal(values(fam.invariants, x[None])[0]), th)

    return local


_STRETCH = {mm3: bonded.stretch(mm3) for mm3 in (False, True)}
_BEND = {mm3: bonded.bend(mm3) for mm3 in (False, True)}
_LOCAL = {
    fam: _local(fam)
    for fam in (*_STRETCH.values(), *_BEND.values(), bonded.TORSION_FAMILY,
                bonded.STRETCH_BEND_FAMILY, bonded.BEND_BEND_FAMILY)
}


def _bonded(name, atoms, mask, theta, fam: bonded.Bonded) -> Family:
    return Family(name, atoms, mask, theta, _LOCAL[fam], bonded=fam)


def _oop_local(x, th):
    return harmonic_out_of_plane(out_of_plane(x, _I4, _ONE)[0], th[0])


def families(
    full_params: Float[Array, " p_all"],
    terms: Terms,
    form: str = "harmonic",
    settings: Settings = Settings(),
) -> tuple[Family, ...]:
    """The term families of one molecule with their gathered parameters.

    Bend-bend and torsion-stretch appear only when the tables have such rows
    (MM3* force fields); every other family is always there (maybe empty)."""
    p = full_params
    mm3 = form == "mm3"
    bp, ap, tp = terms.bond_params, terms.angle_params, terms.torsion_params
    sp = terms.sb_params
    inv_f = 1.0 / terms.atom_site_scale

    def scale(atoms, a, b):  # bond-length factor 1/(f_a f_b) of the bond atoms[:, a]-atoms[:, b]
        return inv_f[atoms[:, a]] * inv_f[atoms[:, b]]

    out = [
        _bonded(
            "stretch",
            terms.bond_atoms,
            terms.bond_mask,
            jnp.stack([p[bp[:, 0]], p[bp[:, 1]], scale(terms.bond_atoms, 0, 1)], -1),
            _STRETCH[mm3],
        ),
        _bonded(
            "bend",
            terms.angle_atoms,
            terms.angle_mask,
            jnp.stack([p[ap[:, 0]], p[ap[:, 1]] * DEG_TO_RAD], -1),
            _BEND[mm3],
        ),
        _bonded(
            "torsion",
            terms.torsion_atoms,
            terms.torsion_mask,
            jnp.concatenate([jnp.stack([p[tp[:, 0]], p[tp[:, 1]], p[tp[:, 2]]], -1),
                             _columns(tp.shape[0], 0.0, 0.0, 1.0)], -1),
            bonded.TORSION_FAMILY,
        ),
        Family(
            "out_of_plane",
            terms.improper_atoms,
            terms.improper_mask,
            p[terms.improper_params[:, :1]],
            _oop_local,
        ),
        _bonded(
            "stretch_bend",
            terms.sb_atoms,
            terms.sb_mask,
            jnp.stack(
                [p[sp[:, 0]], p[sp[:, 1]], p[sp[:, 2]], p[sp[:, 3]] * DEG_TO_RAD,
                 scale(terms.sb_atoms, 0, 1), scale(terms.sb_atoms, 1, 2)],
                -1,
            ),
            bonded.STRETCH_BEND_FAMILY,
        ),
    ]
    if terms.bb_atoms.shape[0]:
        bb = terms.bb_params
        out.append(_bonded(
            "bend_bend",
            terms.bb_atoms,
            terms.bb_mask,
            jnp.stack([p[bb[:, 0]], p[bb[:, 1]], p[bb[:, 2]] * DEG_TO_RAD,
                       p[bb[:, 3]] * DEG_TO_RAD], -1),
            bonded.BEND_BEND_FAMILY,
        ))
    if terms.ts_atoms.shape[0]:
        ts = terms.ts_params
        out.append(_bonded(
            "torsion_stretch",
            terms.ts_atoms,
            terms.ts_mask,
            jnp.concatenate([_columns(ts.shape[0], 0.0, 0.0, 0.0), jnp.stack(
                [p[ts[:, 0]], p[ts[:, 1]], scale(terms.ts_atoms, 1, 2)], -1)], -1),
            bonded.TORSION_FAMILY,
        ))
    if terms.ub_atoms.shape[0]:
        ub = terms.ub_params
        out.append(_bonded(
            "urey_bradley",
            terms.ub_atoms,
            terms.ub_mask,
            jnp.stack([p[ub[:, 0]], p[ub[:, 1]], scale(terms.ub_atoms, 0, 1)], -1),
            _STRETCH[False],  # harmonic in both forms
        ))
    out.append(_nonbonded_family(p, terms, mm3, settings.dielectric))
    return tuple(out)


def _columns(n: int, *values: float) -> Array:
    return jnp.broadcast_to(jnp.asarray(values), (n, len(values)))


def _nonbonded_family(p, terms: Terms, mm3: bool, dielectric: float) -> Family:
    pa = terms.pair_atoms
    av = terms.atom_vdw_params
    pv = terms.pair_vdw_params
    special = p[pv[:, 0]] > 0.0  # a pair-specific r* replaces the combination rule
    rstar = jnp.where(special, p[pv[:, 0]], p[av[pa[:, 0], 0]] + p[av[pa[:, 1], 0]])
    eps = jnp.where(special, p[pv[:, 1]],
                    jnp.sqrt(p[av[pa[:, 0], 1]] * p[av[pa[:, 1], 1]] + 1e-300))
    q = p[terms.atom_charge_params]
    f = terms.atom_site_scale
    theta = jnp.stack(
        [
            rstar,
            eps,
            jnp.where(rstar > 0.0, terms.pair_vdw_scale, 0.0),
            q[pa[:, 0]] * q[pa[:, 1]] * terms.pair_elec_scale,
            f[pa[:, 0]],
            f[pa[:, 1]],
            terms.pair_taper[:, 0],
            terms.pair_taper[:, 1],
        ],
        axis=-1,
    )
    parent = terms.atom_site_parent
    atoms = jnp.stack([pa[:, 0], parent[pa[:, 0]], pa[:, 1], parent[pa[:, 1]]], axis=-1)
    local, local_hessian = pair_local(mm3, dielectric)
    return Family("nonbonded", atoms, terms.pair_mask, theta, local, "atom", local_hessian)


def _local_coords(coords: Array, fam: Family) -> Array:
    k = fam.atoms.shape[1]
    x = coords[fam.atoms]  # (n, k, 3)
    return jnp.where(fam.mask[:, None, None], x, _DUMMY[k][None])


def _family_energies(coords: Array, fam: Family) -> Array:
    if fam.atoms.shape[0] == 0:
        return jnp.zeros((0,), coords.dtype)
    x = _local_coords(coords, fam)
    if fam.bonded is not None:
        b = fam.bonded
        e = jax.vmap(lambda i, th: b.potential(b.internal(i), th))(values(b.invariants, x),
                                                                   fam.theta)
    else:
        e = jax.vmap(fam.local)(x, fam.theta)
    return jnp.where(fam.mask, e, 0.0)


def _sites(coords: Array, terms: Terms) -> Array:
    return site_coordinates(coords, terms.atom_site_parent, terms.atom_site_scale)


def energy_components(
    full_params: Float[Array, " p_all"],
    coords: Float[Array, "atoms 3"],
    terms: Terms,
    form: str = "harmonic",
    settings: Settings = Settings(),
) -> dict[str, Array]:
    """Energy of each term family, kcal/mol. The nonbonded family is split
    into ``vdw`` and ``electrostatic`` for reports; ``bend_bend`` and
    ``torsion_stretch`` appear only when the term tables have them."""
    out = {}
    sites = _sites(coords, terms)
    for fam in families(full_params, terms, form, settings):
        if fam.name != "nonbonded":
            out[fam.name] = jnp.sum(_family_energies(sites, fam))
            continue
        x = _local_coords(coords, fam)  # (n, 4, 3)
        d = jnp.einsum("nua,nai->nui", jax.vmap(pair_coefficients)(fam.theta), x)
        e_vdw, e_ele = pair_energies(d[:, 0], d[:, 1], fam.theta, form == "mm3",
                                     settings.dielectric)
        out["vdw"] = jnp.sum(jnp.where(fam.mask, e_vdw, 0.0))
        out["electrostatic"] = jnp.sum(jnp.where(fam.mask, e_ele, 0.0))
    return out


def energy(
    full_params: Float[Array, " p_all"],
    coords: Float[Array, "atoms 3"],
    terms: Terms,
    form: str = "harmonic",
    settings: Settings = Settings(),
) -> Float[Array, ""]:
    """Total MM energy, kcal/mol."""
    total = jnp.zeros((), coords.dtype)
    sites = _sites(coords, terms)
    for fam in _merged(families(full_params, terms, form, settings)):
        x = sites if fam.space == "site" else coords
        total = total + jnp.sum(_family_energies(x, fam))
    return total


def gradient(
    full_params: Float[Array, " p_all"],
    coords: Float[Array, "atoms 3"],
    terms: Terms,
    form: str = "harmonic",
    settings: Settings = Settings(),
) -> Float[Array, "atoms 3"]:
    """dE/dx, kcal/(mol Å), shape (atoms, 3), assembled like :func:`hessian` from per-term
    gradients (the bonded ones by the chain rule through their invariants); in a program
    that also computes the Hessian at the same geometry, XLA computes the shared per-term
    derivatives once."""
    n = coords.shape[0]
    parent, scale = terms.atom_site_parent, terms.atom_site_scale
    g_site = jnp.zeros((n, 3), coords.dtype)
    g_atom = jnp.zeros((n, 3), coords.dtype)
    sites = _sites(coords, terms)
    for fam in _merged(families(full_params, terms, form, settings)):
        if fam.atoms.shape[0] == 0:
            continue
        if fam.space == "site":
            xl = _local_coords(sites, fam)
            if fam.bonded is not None:
                b = fam.bonded
                local = local_gradients(b.invariants, b.internal, b.potential, xl, fam.theta)
            else:
                local = jax.vmap(jax.grad(fam.local))(xl, fam.theta)
            local = jnp.where(fam.mask[:, None, None], local, 0.0)
            g_site = g_site.at[fam.atoms].add(local)
        else:
            table = _pair_table(sites, coords, fam, form, settings)
            g_s, g_x = pair_gradients(sites, coords, table)
            g_site = g_site + g_s
            g_atom = g_atom + g_x
    return site_map_rows(g_site, parent, scale) + g_atom


def _scatter_family_hessian(h: Array, x: Array, fam: Family) -> Array:
    m, k = fam.atoms.shape
    if m == 0:
        return h
    xl = _local_coords(x, fam)
    if fam.bonded is not None:
        b = fam.bonded
        local = local_hessians(b.invariants, b.internal, b.potential, xl, fam.theta)
    else:
        hess = fam.local_hessian if fam.local_hessian is not None else jax.hessian(fam.local)
        local = jax.vmap(hess)(xl, fam.theta)
    local = jnp.where(fam.mask[:, None, None, None, None], local, 0.0)  # (m, k, 3, k, 3)
    rows = jnp.broadcast_to(fam.atoms[:, :, None], (m, k, k))
    cols = jnp.broadcast_to(fam.atoms[:, None, :], (m, k, k))
    blocks = jnp.transpose(local, (0, 1, 3, 2, 4))  # (m, k, k, 3, 3)
    return h.at[rows, :, cols, :].add(blocks)


def _merged(fams: tuple[Family, ...]) -> list[Family]:
    """Families sharing one local function (torsion and torsion-stretch) as one batch."""
    groups: dict[tuple, list[Family]] = {}
    for f in fams:
        groups.setdefault((f.local, f.local_hessian, f.space), []).append(f)
    out = []
    for g in groups.values():
        if len(g) == 1:
            out.append(g[0])
            continue
        out.append(g[0]._replace(
            atoms=jnp.concatenate([f.atoms for f in g]),
            mask=jnp.concatenate([f.mask for f in g]),
            theta=jnp.concatenate([f.theta for f in g]),
        ))
    return out


def hessian(
    full_params: Float[Array, " p_all"],
    coords: Float[Array, "atoms 3"],
    terms: Terms,
    form: str = "harmonic",
    settings: Settings = Settings(),
) -> Float[Array, "n3 n3"]:
    """Cartesian Hessian d2E/dx2, kcal/(mol Å^2), shape (3N, 3N), assembled
    from per-term local Hessians (differentiable in parameters and coordinates)."""
    n = coords.shape[0]
    parent, scale = terms.atom_site_parent, terms.atom_site_scale
    h_site = jnp.zeros((n, 3, n, 3), coords.dtype)
    h_atom = jnp.zeros((n, 3, n, 3), coords.dtype)
    sites = _sites(coords, terms)
    for fam in _merged(families(full_params, terms, form, settings)):
        if fam.space == "site":
            h_site = _scatter_family_hessian(h_site, sites, fam)
        elif fam.atoms.shape[0]:  # nonbonded pairs: dense blocks in sites and real positions
            h_ss, h_sx, h_xx = pair_hessian_blocks(
                sites, coords, _pair_table(sites, coords, fam, form, settings))
            h_site = h_site + h_ss
            mixed = site_map_rows(h_sx, parent, scale)  # Aᵀ H_sx
            h_atom = h_atom + mixed + jnp.transpose(mixed, (2, 3, 0, 1)) + h_xx
    h = site_map_transpose(h_site, parent, scale) + h_atom
    return h.reshape(3 * n, 3 * n)


def _pair_table(sites: Array, coords: Array, fam: Family, form: str, settings: Settings):
    """:func:`pair_derivatives` of the nonbonded family's pairs on a dense table."""
    i, j = fam.atoms[:, 0], fam.atoms[:, 2]
    d_s, d_x = sites[j] - sites[i], coords[j] - coords[i]
    rho2 = jnp.where(fam.mask, jnp.sum(d_s * d_s, axis=-1), 1.0)
    r2 = jnp.where(fam.mask, jnp.sum(d_x * d_x, axis=-1), 1.0)
    out = pair_derivatives(rho2, r2, fam.theta, form == "mm3", settings.dielectric)
    return dense_pair_table(fam.atoms[:, ::2], jnp.where(fam.mask[:, None], out, 0.0),
                            coords.shape[0])


# --- conveniences taking a ForceField and a System ----------------------------------


def system_energy(ff: ForceField, system: System, params: Array | None = None) -> Array:
    return energy(ff.full_params(params), system.coords, system.terms, ff.form, ff.settings)


def system_gradient(ff: ForceField, system: System, params: Array | None = None) -> Array:
    return gradient(ff.full_params(params), system.coords, system.terms, ff.form, ff.settings)


def system_hessian(ff: ForceField, system: System, params: Array | None = None) -> Array:
    return hessian(ff.full_params(params), system.coords, system.terms, ff.form, ff.settings)


def batch_energy(ff: ForceField, batch: System, params: Array | None = None) -> Array:
    """Energies of a stacked batch, shape (molecules,)."""
    fp = ff.full_params(params)
    return jax.vmap(lambda x, t: energy(fp, x, t, ff.form, ff.settings))(batch.coords, batch.terms)


def batch_hessian(ff: ForceField, batch: System, params: Array | None = None) -> Array:
    """Hessians of a stacked batch, shape (molecules, 3N, 3N) (padded atoms give zero blocks)."""
    fp = ff.full_params(params)
    return jax.vmap(lambda x, t: hessian(fp, x, t, ff.form, ff.settings))(batch.coords, batch.terms)


__all__ = [
    "Family",
    "families",
    "energy",
    "energy_components",
    "gradient",
    "hessian",
    "system_energy",
    "system_gradient",
    "system_hessian",
    "batch_energy",
    "batch_hessian",
]
