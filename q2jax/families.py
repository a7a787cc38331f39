"""Term families of one molecule: which atoms, which gathered parameters and which
local energy each family has (``q2jax.energy`` evaluates and differentiates them).

Every term family is a *local* energy ``e(x_local, theta)`` of the 2-5 atoms it
involves, with its parameters gathered from ``ForceField.full_params`` at the
positions the term tables hold. The bonded families are potentials of
polynomial invariants of their bond vectors (``q2jax.terms.bonded``) and act
on the atoms' sites; the nonbonded family holds each pair's two atoms and their
site parents (``q2jax.terms.pairs``) and acts on atom positions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Float

from q2jax.forcefield import Settings
from q2jax.system import Terms
from q2jax.terms import bonded, harmonic_out_of_plane, out_of_plane, pair_local
from q2jax.terms.invariants import values
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


def local_coordinates(coords: Array, fam: Family) -> Float[Array, "n k 3"]:
    """Each term's atom positions (n, k, 3); masked terms get a fixed non-degenerate stand-in."""
    k = fam.atoms.shape[1]
    x = coords[fam.atoms]  # (n, k, 3)
    return jnp.where(fam.mask[:, None, None], x, _DUMMY[k][None])


def merged(fams: tuple[Family, ...]) -> list[Family]:
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


__all__ = ["Family", "families", "local_coordinates", "merged"]
