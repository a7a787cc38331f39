"""The Molecule pytree: coordinates (Å) and masses (amu) are arrays; symbols,
atom types and connectivity are static metadata.

Build one with :meth:`Molecule.from_arrays` (topology perceived from
covalent radii unless ``bonds`` is given); every check on user input lives
there, so a Molecule that exists is well formed.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from q2jax.elements import mass as element_mass
from q2jax.elements import normalize_symbol
from q2jax.errors import InputError
from q2jax.topology import (
    DEFAULT_BOND_TOLERANCE,
    Topology,
    build_topology,
    normalize_bonds,
    perceive_bonds,
)


class Molecule(eqx.Module):
    """One molecule. ``coords`` in Å, ``masses`` in amu.

    ``atom_types`` are the MM atom types used to key parameters (the element
    symbols unless a file or the caller gives MM types). ``bonds`` are
    0-based pairs (i < j).
    """

    coords: Float[Array, "atoms 3"]
    masses: Float[Array, " atoms"]
    symbols: tuple[str, ...] = eqx.field(static=True)
    atom_types: tuple[str, ...] = eqx.field(static=True)
    bonds: tuple[tuple[int, int], ...] = eqx.field(static=True)
    name: str = eqx.field(static=True, default="molecule")
    charge: int = eqx.field(static=True, default=0)
    multiplicity: int = eqx.field(static=True, default=1)

    @classmethod
    def from_arrays(
        cls,
        symbols: Sequence[str],
        coords,
        *,
        bonds: Sequence[Sequence[int]] | None = None,
        atom_types: Sequence[str] | None = None,
        masses=None,
        name: str = "molecule",
        charge: int = 0,
        multiplicity: int = 1,
        bond_tolerance: float = DEFAULT_BOND_TOLERANCE,
    ) -> Molecule:
        """Validated constructor. Coordinates in Å; masses default to the most
        abundant isotopes. Raises :class:`InputError` on any malformed input."""
        if isinstance(symbols, str):
            raise InputError("symbols must be a sequence of element symbols, not one string")
        syms = tuple(normalize_symbol(s) for s in symbols)
        n = len(syms)
        if n == 0:
            raise InputError(f"molecule {name!r} has no atoms")
        xyz = _as_float_array(coords, "coordinates")
        if xyz.shape != (n, 3):
            raise InputError(
                f"molecule {name!r}: coordinates have shape {xyz.shape}, expected ({n}, 3) "
                f"for {n} atoms"
            )
        if not np.all(np.isfinite(xyz)):
            raise InputError(f"molecule {name!r}: coordinates contain NaN or inf")
        if masses is None:
            m = np.array([element_mass(s) for s in syms])
        else:
            m = _as_float_array(masses, "masses")
            if m.shape != (n,):
                raise InputError(
                    f"molecule {name!r}: {m.shape[0] if m.ndim else 0} masses for {n} atoms"
                )
            if not np.all(np.isfinite(m)) or np.any(m <= 0):
                raise InputError(f"molecule {name!r}: masses must be finite and positive, got {m}")
        if bonds is None:
            bond_list = perceive_bonds(syms, xyz, bond_tolerance)
        else:
            bond_list = normalize_bonds(bonds, n)
        if atom_types is None:
            types = syms
        else:
            types = tuple(str(t).strip() for t in atom_types)
            if len(types) != n:
                raise InputError(f"molecule {name!r}: {len(types)} atom types for {n} atoms")
            if any(not t for t in types):
                raise InputError(f"molecule {name!r}: empty atom type")
        if n > 1:
            d = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1) + np.eye(n)
            if d.min() < 0.1:
                i, j = np.unravel_index(np.argmin(d), d.shape)
                raise InputError(f"molecule {name!r}: atoms {i} and {j} are {d.min():.3f} Å apart")
        return cls(
            coords=jnp.asarray(xyz),
            masses=jnp.asarray(m),
            symbols=syms,
            atom_types=types,
            bonds=bond_list,
            name=str(name),
            charge=int(charge),
            multiplicity=int(multiplicity),
        )

    @property
    def n_atoms(self) -> int:
        return len(self.symbols)

    @property
    def is_linear(self) -> bool:
        """True if all atoms lie on one line (5 instead of 6 external modes)."""
        xyz = np.asarray(self.coords)
        if self.n_atoms < 3:
            return True
        centred = xyz - xyz.mean(axis=0)
        s = np.linalg.svd(centred, compute_uv=False)
        return bool(s[1] < 1e-3 * max(s[0], 1e-12))

    @property
    def n_vibrations(self) -> int:
        """3N - 6 (3N - 5 for linear molecules)."""
        return 3 * self.n_atoms - (5 if self.is_linear else 6)

    def topology(self, *, impropers: bool = True) -> Topology:
        """Angles, torsions, out-of-plane centres and nonbonded pairs (host side)."""
        return build_topology(
            self.bonds, self.n_atoms, np.asarray(self.coords), impropers=impropers
        )

    def with_coords(self, coords) -> Molecule:
        """Same molecule at other coordinates (Å); topology unchanged."""
        xyz = jnp.asarray(coords, dtype=self.coords.dtype)
        return eqx.tree_at(lambda m: m.coords, self, xyz)

    def with_atom_types(self, atom_types: Sequence[str]) -> Molecule:
        types = tuple(str(t) for t in atom_types)
        if len(types) != self.n_atoms:
            raise InputError(f"{len(types)} atom types for {self.n_atoms} atoms")
        return Molecule(
            self.coords,
            self.masses,
            self.symbols,
            types,
            self.bonds,
            self.name,
            self.charge,
            self.multiplicity,
        )

    def with_bonds(self, bonds: Sequence[Sequence[int]]) -> Molecule:
        return Molecule(
            self.coords,
            self.masses,
            self.symbols,
            self.atom_types,
            normalize_bonds(bonds, self.n_atoms),
            self.name,
            self.charge,
            self.multiplicity,
        )


def _as_float_array(value, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} are not numeric: {exc}") from None
    return arr


def validate_hessian(hessian, n_atoms: int, *, name: str = "Hessian", symmetry_tol: float = 1e-4):
    """Check a Cartesian Hessian (any units) and return it as a float64 array.

    Raises :class:`InputError` if its shape is not (3N, 3N), if it holds NaN or
    inf, or if it is not symmetric to ``symmetry_tol`` relative to its largest
    element. Returns the symmetrised matrix.
    """
    h = _as_float_array(hessian, name)
    if h.ndim == 1 and h.size == (3 * n_atoms) ** 2:
        h = h.reshape(3 * n_atoms, 3 * n_atoms)
    if h.shape != (3 * n_atoms, 3 * n_atoms):
        raise InputError(
            f"{name} has shape {h.shape}, expected ({3 * n_atoms}, {3 * n_atoms}) "
            f"for {n_atoms} atoms"
        )
    if not np.all(np.isfinite(h)):
        raise InputError(f"{name} contains NaN or inf")
    scale = max(float(np.abs(h).max()), 1e-300)
    asym = float(np.abs(h - h.T).max()) / scale
    if asym > symmetry_tol:
        raise InputError(f"{name} is not symmetric (max |H - H^T| / max |H| = {asym:.2e})")
    return 0.5 * (h + h.T)


__all__ = ["Molecule", "validate_hessian"]
