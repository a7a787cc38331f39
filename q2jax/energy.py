"""MM energy, gradient and Hessian of a System under a force field.

``energy(full_params, coords, terms, form, settings)`` is a pure function:
gather the parameters of every term from ``full_params`` (see
``ForceField.full_params``), evaluate the vectorised term functions, sum.
Units: coordinates in Å, energy in kcal/mol, Hessian in kcal/(mol Å^2).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from q2jax.forcefield import ForceField, Settings
from q2jax.system import System, Terms
from q2jax.terms import (
    bend_deviation,
    coulomb,
    dihedrals,
    distances,
    fourier_torsion,
    harmonic_bend,
    harmonic_out_of_plane,
    harmonic_stretch,
    lennard_jones,
    mm3_bend,
    mm3_buckingham,
    mm3_stretch,
    out_of_plane,
    stretch_bend,
)
from q2jax.units import DEG_TO_RAD


def _masked_sum(values: Array, mask: Array) -> Array:
    return jnp.sum(jnp.where(mask, values, 0.0))


def energy_components(
    full_params: Float[Array, " p_all"],
    coords: Float[Array, "atoms 3"],
    terms: Terms,
    form: str = "harmonic",
    settings: Settings = Settings(),
) -> dict[str, Array]:
    """Energy of each term family, kcal/mol."""
    p = full_params
    mm3 = form == "mm3"
    out = {}

    # stretch
    r = distances(coords, terms.bond_atoms, terms.bond_mask)
    k, r0 = p[terms.bond_params[:, 0]], p[terms.bond_params[:, 1]]
    e = mm3_stretch(r, k, r0) if mm3 else harmonic_stretch(r, k, r0)
    out["stretch"] = _masked_sum(e, terms.bond_mask)

    # bend
    k, t0 = p[terms.angle_params[:, 0]], p[terms.angle_params[:, 1]] * DEG_TO_RAD
    d, d2 = bend_deviation(coords, terms.angle_atoms, terms.angle_mask, t0)
    e = mm3_bend(d, d2, k) if mm3 else harmonic_bend(d2, k)
    out["bend"] = _masked_sum(e, terms.angle_mask)

    # torsion
    phi = dihedrals(coords, terms.torsion_atoms, terms.torsion_mask)
    tp = terms.torsion_params
    e = fourier_torsion(phi, p[tp[:, 0]], p[tp[:, 1]], p[tp[:, 2]])
    out["torsion"] = _masked_sum(e, terms.torsion_mask)

    # out-of-plane
    chi = out_of_plane(coords, terms.improper_atoms, terms.improper_mask)
    e = harmonic_out_of_plane(chi, p[terms.improper_params[:, 0]])
    out["out_of_plane"] = _masked_sum(e, terms.improper_mask)

    # stretch-bend
    sb = terms.sb_atoms
    sp = terms.sb_params
    r1 = distances(coords, sb[:, :2], terms.sb_mask)
    r2 = distances(coords, sb[:, 1:], terms.sb_mask)
    dth, _ = bend_deviation(coords, sb, terms.sb_mask, p[sp[:, 3]] * DEG_TO_RAD)
    e = stretch_bend(r1 - p[sp[:, 1]], r2 - p[sp[:, 2]], dth, p[sp[:, 0]])
    out["stretch_bend"] = _masked_sum(e, terms.sb_mask)

    # nonbonded
    pa = terms.pair_atoms
    rij = distances(coords, pa, terms.pair_mask)
    av = terms.atom_vdw_params
    rstar = p[av[pa[:, 0], 0]] + p[av[pa[:, 1], 0]]
    eps = jnp.sqrt(p[av[pa[:, 0], 1]] * p[av[pa[:, 1], 1]] + 1e-300)
    has_vdw = terms.pair_mask & (rstar > 0.0)
    safe_rstar = jnp.where(has_vdw, rstar, 1.0)
    e = mm3_buckingham(rij, safe_rstar, eps) if mm3 else lennard_jones(rij, safe_rstar, eps)
    out["vdw"] = _masked_sum(e * terms.pair_vdw_scale, has_vdw)
    q = p[terms.atom_charge_params]
    e = coulomb(rij, q[pa[:, 0]], q[pa[:, 1]], settings.dielectric)
    out["electrostatic"] = _masked_sum(e * terms.pair_elec_scale, terms.pair_mask)
    return out


def energy(
    full_params: Float[Array, " p_all"],
    coords: Float[Array, "atoms 3"],
    terms: Terms,
    form: str = "harmonic",
    settings: Settings = Settings(),
) -> Float[Array, ""]:
    """Total MM energy, kcal/mol."""
    comps = energy_components(full_params, coords, terms, form, settings)
    return sum(comps.values())


def gradient(full_params, coords, terms, form="harmonic", settings=Settings()):
    """dE/dx, kcal/(mol Å), shape (atoms, 3)."""
    return jax.grad(energy, argnums=1)(full_params, coords, terms, form, settings)


def hessian(full_params, coords, terms, form="harmonic", settings=Settings()):
    """Cartesian Hessian d2E/dx2, kcal/(mol Å^2), shape (3N, 3N)."""
    n = coords.shape[0]
    h = jax.hessian(energy, argnums=1)(full_params, coords, terms, form, settings)
    return h.reshape(3 * n, 3 * n)


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
