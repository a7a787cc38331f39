"""Workflow A: single-shot L-BFGS-B with analytical gradients (CH3F, QFUERZA start).

The guide's Strategy 1 (``ScipyOptimizer("L-BFGS-B")``) with ``jac="analytical"``:
the gradient is exact (JAX autodiff, through the MM geometry relaxation), not
SciPy's finite differences. All eight harmonic parameters are free (force
constants and equilibrium values), so frequencies are scored at the geometry
relaxed with the force field being fitted (the q2jax default), and the QM bond
lengths and angles are fitted too, so the geometry cannot drift.

    python examples/workflow_a_lbfgsb.py [--maxiter 500] [--plot a.png]
"""

from __future__ import annotations

import argparse

import numpy as np

from q2jax import ForceField
from q2jax.datasets import load_case
from q2jax.workflows import (
    JaxEngine,
    ObjectiveFunction,
    ReferenceData,
    ScipyOptimizer,
    estimate_force_constants,
)

BOND_WEIGHT = 1000.0  # per Å: 0.001 Å costs as much as 1 cm^-1
ANGLE_WEIGHT = 10.0  # per degree: 0.1 degree costs as much as 1 cm^-1


def qm_geometry_references(ref: ReferenceData, molecule, molecule_idx: int = 0) -> ReferenceData:
    """Every bond length and bend angle of the QM geometry as a reference."""
    x = np.asarray(molecule.coords)
    for a, b in molecule.bonds:
        r = float(np.linalg.norm(x[a] - x[b]))
        ref.add_bond_length(r, atom_indices=(a, b), weight=BOND_WEIGHT, molecule_idx=molecule_idx)
    for i, j, k in molecule.topology().angles.tolist():
        u, v = x[i] - x[j], x[k] - x[j]
        deg = float(np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v))))
        ref.add_bond_angle(
            deg, atom_indices=(i, j, k), weight=ANGLE_WEIGHT, molecule_idx=molecule_idx
        )
    return ref


def build_objective(form: str = "harmonic", **options) -> ObjectiveFunction:
    """CH3F: QFUERZA start, QM frequencies (1 per cm^-1) and QM geometry as references."""
    case = load_case("ch3f")
    mol = case.molecule
    ff = ForceField.from_molecules([mol], form)  # parameters keyed by element
    ff = estimate_force_constants(ff, [mol], [case.hessian])  # QFUERZA
    ref = ReferenceData()
    for i, nu in enumerate(case.frequencies):
        ref.add_frequency(nu, data_idx=i, weight=1.0, molecule_idx=0)
    qm_geometry_references(ref, mol)
    return ObjectiveFunction(ff, JaxEngine(), [mol], ref, **options)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maxiter", type=int, default=500)
    parser.add_argument("--plot", default=None, help="write the convergence PNG here")
    args = parser.parse_args(argv)

    objective = build_objective()
    optimizer = ScipyOptimizer(method="L-BFGS-B", maxiter=args.maxiter, jac="analytical")
    result = optimizer.optimize(objective)
    print(result.summary())
    if args.plot:
        result.plot(args.plot)
    return result


if __name__ == "__main__":
    main()
