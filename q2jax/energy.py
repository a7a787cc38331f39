"""MM energy, gradient and Hessian of a System under a force field.

Every term family (``q2jax.families``) is a *local* energy ``e(x_local, theta)``
of the 2-5 atoms it involves; the molecular energy gathers each term's atoms and
parameters (positions in ``ForceField.full_params``), evaluates the family
vmapped over its terms and sums. The Hessian is assembled the same way, from the small
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

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from q2jax.families import Family, families, local_coordinates, merged
from q2jax.forcefield import ForceField, Settings
from q2jax.system import System, Terms
from q2jax.terms import (
    dense_pair_table,
    pair_coefficients,
    pair_derivatives,
    pair_energies,
    pair_gradients,
    pair_hessian_blocks,
    site_coordinates,
    site_map_rows,
    site_map_transpose,
)
from q2jax.terms.invariants import local_gradients, local_hessians, values


def _family_energies(coords: Array, fam: Family) -> Array:
    if fam.atoms.shape[0] == 0:
        return jnp.zeros((0,), coords.dtype)
    x = local_coordinates(coords, fam)
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
        x = local_coordinates(coords, fam)  # (n, 4, 3)
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
    for fam in merged(families(full_params, terms, form, settings)):
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
    for fam in merged(families(full_params, terms, form, settings)):
        if fam.atoms.shape[0] == 0:
            continue
        if fam.space == "site":
            xl = local_coordinates(sites, fam)
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
    xl = local_coordinates(x, fam)
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
    for fam in merged(families(full_params, terms, form, settings)):
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
    "Family",  # re-exported from q2jax.families
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
