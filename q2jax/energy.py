"""MM energy, gradient and Hessian of a System under a force field.

Every term family is a *local* energy ``e(x_local, theta)`` of the 2-4 atoms
it involves; the molecular energy gathers each term's atoms and parameters
(positions in ``ForceField.full_params``), evaluates the family vmapped over
its terms and sums. The Hessian is assembled the same way, from the small
per-term Hessians (6x6 to 12x12) scattered into the 3N x 3N matrix, which is
much cheaper to compile and run than differentiating the whole energy
twice; it stays differentiable (for relaxed-geometry frequencies).

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

# Non-degenerate stand-in geometries for padded (masked) terms, so that their
# derivatives stay finite; their energy is multiplied by zero.
_DUMMY = {
    2: jnp.array([[0.0, 0.0, 0.0], [1.3, 0.0, 0.0]]),
    3: jnp.array([[1.1, 0.0, 0.0], [0.0, 0.0, 0.0], [0.3, 1.2, 0.0]]),
    4: jnp.array([[1.1, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.2], [0.7, 0.9, 1.3]]),
}
_ONE = jnp.ones((1,), bool)
_I2, _I3, _I4 = jnp.array([[0, 1]]), jnp.array([[0, 1, 2]]), jnp.array([[0, 1, 2, 3]])


class Family(NamedTuple):
    """One term family: atoms (n, k), mask (n,), parameters theta (n, m), local energy."""

    name: str
    atoms: Array
    mask: Array
    theta: Array
    local: Callable[[Array, Array], Array]


def _stretch_local(mm3: bool):
    def e(x, th):
        r = distances(x, _I2, _ONE)[0]
        return (mm3_stretch if mm3 else harmonic_stretch)(r, th[0], th[1])

    return e


def _bend_local(mm3: bool):
    def e(x, th):
        d, d2 = bend_deviation(x, _I3, _ONE, th[1:2])
        return (mm3_bend(d, d2, th[0]) if mm3 else harmonic_bend(d2, th[0]))[0]

    return e


def _torsion_local(x, th):
    phi = dihedrals(x, _I4, _ONE)[0]
    return fourier_torsion(phi, th[0], th[1], th[2])


def _oop_local(x, th):
    return harmonic_out_of_plane(out_of_plane(x, _I4, _ONE)[0], th[0])


def _stretch_bend_local(x, th):
    r1 = distances(x, jnp.array([[0, 1]]), _ONE)[0]
    r2 = distances(x, jnp.array([[1, 2]]), _ONE)[0]
    dth, _ = bend_deviation(x, _I3, _ONE, th[3:4])
    return stretch_bend(r1 - th[1], r2 - th[2], dth[0], th[0])


def _pair_local(mm3: bool, dielectric: float):
    vdw = mm3_buckingham if mm3 else lennard_jones

    def e(x, th):
        # th = [r*, eps, vdw scale (0 when absent), q_i q_j * elec scale]
        r = distances(x, _I2, _ONE)[0]
        rstar = jnp.where(th[2] != 0.0, th[0], 1.0)
        return th[2] * vdw(r, rstar, th[1]) + coulomb(r, th[3], 1.0, dielectric)

    return e


def families(
    full_params: Float[Array, " p_all"],
    terms: Terms,
    form: str = "harmonic",
    settings: Settings = Settings(),
) -> tuple[Family, ...]:
    """The term families of one molecule with their gathered parameters."""
    p = full_params
    mm3 = form == "mm3"
    bp, ap, tp = terms.bond_params, terms.angle_params, terms.torsion_params
    sp = terms.sb_params
    pa = terms.pair_atoms
    av = terms.atom_vdw_params
    rstar = p[av[pa[:, 0], 0]] + p[av[pa[:, 1], 0]]
    eps = jnp.sqrt(p[av[pa[:, 0], 1]] * p[av[pa[:, 1], 1]] + 1e-300)
    q = p[terms.atom_charge_params]
    pair_theta = jnp.stack(
        [
            rstar,
            eps,
            jnp.where(rstar > 0.0, terms.pair_vdw_scale, 0.0),
            q[pa[:, 0]] * q[pa[:, 1]] * terms.pair_elec_scale,
        ],
        axis=-1,
    )
    return (
        Family(
            "stretch",
            terms.bond_atoms,
            terms.bond_mask,
            jnp.stack([p[bp[:, 0]], p[bp[:, 1]]], -1),
            _stretch_local(mm3),
        ),
        Family(
            "bend",
            terms.angle_atoms,
            terms.angle_mask,
            jnp.stack([p[ap[:, 0]], p[ap[:, 1]] * DEG_TO_RAD], -1),
            _bend_local(mm3),
        ),
        Family(
            "torsion",
            terms.torsion_atoms,
            terms.torsion_mask,
            jnp.stack([p[tp[:, 0]], p[tp[:, 1]], p[tp[:, 2]]], -1),
            _torsion_local,
        ),
        Family(
            "out_of_plane",
            terms.improper_atoms,
            terms.improper_mask,
            p[terms.improper_params[:, :1]],
            _oop_local,
        ),
        Family(
            "stretch_bend",
            terms.sb_atoms,
            terms.sb_mask,
            jnp.stack([p[sp[:, 0]], p[sp[:, 1]], p[sp[:, 2]], p[sp[:, 3]] * DEG_TO_RAD], -1),
            _stretch_bend_local,
        ),
        Family("nonbonded", pa, terms.pair_mask, pair_theta, _pair_local(mm3, settings.dielectric)),
    )


def _local_coords(coords: Array, fam: Family) -> Array:
    k = fam.atoms.shape[1]
    x = coords[fam.atoms]  # (n, k, 3)
    return jnp.where(fam.mask[:, None, None], x, _DUMMY[k][None])


def _family_energies(coords: Array, fam: Family) -> Array:
    if fam.atoms.shape[0] == 0:
        return jnp.zeros((0,), coords.dtype)
    e = jax.vmap(fam.local)(_local_coords(coords, fam), fam.theta)
    return jnp.where(fam.mask, e, 0.0)


def energy_components(
    full_params: Float[Array, " p_all"],
    coords: Float[Array, "atoms 3"],
    terms: Terms,
    form: str = "harmonic",
    settings: Settings = Settings(),
) -> dict[str, Array]:
    """Energy of each term family, kcal/mol. The nonbonded family is split
    into ``vdw`` and ``electrostatic`` for reports."""
    out = {}
    for fam in families(full_params, terms, form, settings):
        if fam.name != "nonbonded":
            out[fam.name] = jnp.sum(_family_energies(coords, fam))
            continue
        r = distances(coords, fam.atoms, fam.mask)
        th = fam.theta
        vdw = mm3_buckingham if form == "mm3" else lennard_jones
        e_vdw = th[:, 2] * vdw(r, jnp.where(th[:, 2] != 0.0, th[:, 0], 1.0), th[:, 1])
        e_ele = coulomb(r, th[:, 3], 1.0, settings.dielectric)
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
    for fam in families(full_params, terms, form, settings):
        total = total + jnp.sum(_family_energies(coords, fam))
    return total


def gradient(full_params, coords, terms, form="harmonic", settings=Settings()):
    """dE/dx, kcal/(mol Å), shape (atoms, 3)."""
    return jax.grad(energy, argnums=1)(full_params, coords, terms, form, settings)


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
    h = jnp.zeros((n, 3, n, 3), coords.dtype)
    for fam in families(full_params, terms, form, settings):
        m, k = fam.atoms.shape
        if m == 0:
            continue
        local = jax.vmap(jax.hessian(fam.local))(_local_coords(coords, fam), fam.theta)
        local = jnp.where(fam.mask[:, None, None, None, None], local, 0.0)  # (m, k, 3, k, 3)
        rows = jnp.broadcast_to(fam.atoms[:, :, None], (m, k, k))
        cols = jnp.broadcast_to(fam.atoms[:, None, :], (m, k, k))
        blocks = jnp.transpose(local, (0, 1, 3, 2, 4))  # (m, k, k, 3, 3)
        h = h.at[rows, :, cols, :].add(blocks)
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
