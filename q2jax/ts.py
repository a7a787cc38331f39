"""Transition-state force fields with natural eigenvalues (Limé & Norrby's
Method D): the MM model itself has a first-order saddle at the TS geometry,
and its imaginary frequency is fitted like any other.

A TS has bonds that are forming or breaking: projected onto the QM Hessian
(Seminario), their force constants are negative. A harmonic bond with k < 0
makes BOTH the antisymmetric and the symmetric stretch of such a pair
unstable; a Urey–Bradley 1-3 term across each pair of reacting bonds (e.g.
F···F across F–C–F in an SN2 TS) restores the symmetric stretch while
leaving the reaction coordinate (antisymmetric, F···F length unchanged to
first order) unstable. Equilibrium values are held at the QM TS geometry, so
the TS is a stationary point of the model by construction and the fit
shapes only the curvature.

Method C (Q2MM's default TSFF: the TS is an MM *minimum* with the negative
eigenvalue replaced by a large positive one) is available through
``EigenmatrixData(ts_replacement=...)``; Method D is what keeps exactly one
imaginary mode.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from q2jax.forcefield import ForceField
from q2jax.forcefield_build import parameters_from_molecules
from q2jax.params import canonical_key


def reacting_angles(molecule, hessian) -> list[tuple[str, str, str]]:
    """Angle type keys i-j-k whose two bonds both have negative Seminario
    force constants (the bonds that form/break along the reaction coordinate)."""
    from q2jax.seminario import seminario_bond_k

    bonds = np.asarray(molecule.bonds, np.int32)
    k, _ = seminario_bond_k(jnp.asarray(hessian), molecule.coords, jnp.asarray(bonds))
    negative = {tuple(sorted(b)) for b, kk in zip(bonds.tolist(), np.asarray(k), strict=True)
                if kk < 0}
    t = molecule.atom_types
    keys = set()
    for i, j, kk in molecule.topology(impropers=False).angles:
        if tuple(sorted((i, j))) in negative and tuple(sorted((j, int(kk)))) in negative:
            keys.add(canonical_key("urey_bradley", (t[i], t[j], t[int(kk)])))
    return sorted(keys)


def ts_forcefield(molecules: Sequence, hessians: Sequence, form: str = "harmonic",
                  dft_scale: float | None = None) -> ForceField:
    """Method D start: bonds and angles (+ torsions/out-of-plane when present) with
    Seminario force constants taken as they are (negative for reacting bonds), a
    Urey–Bradley term across every pair of reacting bonds (start: the Seminario
    projection of that 1-3 atom pair), equilibrium values fixed at the QM geometry."""
    from q2jax.seminario import estimate_force_constants, seminario_bond_k

    molecules, hessians = list(molecules), list(hessians)
    ub_keys = set()
    for m, h in zip(molecules, hessians, strict=True):
        ub_keys.update(reacting_angles(m, h))
    triples = parameters_from_molecules(molecules, families=("bond", "angle", "torsion",
                                                             "improper", "urey_bradley"))
    triples = [tr for tr in triples if not tr[0].startswith("ub_") or tr[1] in ub_keys]
    ff = ForceField.from_entries(
        triples, form=form, bounds={"bond_k": (-5000.0, 5000.0)},
        trainable=lambda kind, key: not kind.endswith("_eq"))
    kwargs = {} if dft_scale is None else {"dft_scale": dft_scale}
    ff = estimate_force_constants(ff, molecules, hessians, ts_method=None, invalid="keep", **kwargs)
    updates = {}
    for key in ub_keys:
        vals = []
        for m, h in zip(molecules, hessians, strict=True):
            t = m.atom_types
            pairs = [(i, int(k)) for i, j, k in m.topology(impropers=False).angles
                     if canonical_key("urey_bradley", (t[i], t[j], t[int(k)])) == key]
            if pairs:
                kk, _ = seminario_bond_k(jnp.asarray(h), m.coords, jnp.asarray(pairs, jnp.int32))
                vals += list(np.asarray(kk))
        if vals:
            updates[("ub_k", key)] = float(np.mean(vals))
    return ff.with_values(updates) if updates else ff


__all__ = ["reacting_angles", "ts_forcefield"]
