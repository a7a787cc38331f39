"""Energy term families: pure, vectorised functions of internal coordinates
and parameters (see ``q2jax.energy`` for how they are assembled)."""

from q2jax.terms.bend import harmonic_bend, mm3_bend
from q2jax.terms.coulomb import coulomb
from q2jax.terms.cross import mm3_bend_bend, mm3_torsion_stretch
from q2jax.terms.geometry import (
    angles,
    bend_deviation,
    bend_deviation_from,
    dihedral_from,
    dihedrals,
    distances,
    out_of_plane,
    safe_norm,
)
from q2jax.terms.oop import harmonic_out_of_plane
from q2jax.terms.pairs import (
    dense_pair_table,
    pair_coefficients,
    pair_derivatives,
    pair_energies,
    pair_energies_from,
    pair_gradients,
    pair_hessian_blocks,
    pair_local,
)
from q2jax.terms.sites import site_coordinates, site_map_rows, site_map_transpose, vdw_taper
from q2jax.terms.stretch import harmonic_stretch, mm3_stretch
from q2jax.terms.stretch_bend import stretch_bend
from q2jax.terms.torsion import fourier_torsion
from q2jax.terms.vdw import lennard_jones, mm3_buckingham

__all__ = [
    "angles",
    "bend_deviation",
    "bend_deviation_from",
    "coulomb",
    "dense_pair_table",
    "dihedral_from",
    "dihedrals",
    "distances",
    "fourier_torsion",
    "harmonic_bend",
    "harmonic_out_of_plane",
    "harmonic_stretch",
    "lennard_jones",
    "mm3_bend",
    "mm3_bend_bend",
    "mm3_buckingham",
    "mm3_stretch",
    "mm3_torsion_stretch",
    "out_of_plane",
    "pair_coefficients",
    "pair_energies",
    "pair_derivatives",
    "pair_energies_from",
    "pair_gradients",
    "pair_hessian_blocks",
    "pair_local",
    "safe_norm",
    "site_coordinates",
    "site_map_rows",
    "site_map_transpose",
    "stretch_bend",
    "vdw_taper",
]
