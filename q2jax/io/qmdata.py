"""The one record every QM reader returns, in q2jax units."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from q2jax.molecule import Molecule, validate_hessian


@dataclass(frozen=True)
class QMData:
    """What a QM (or MM-structure) file holds, converted once to q2jax units.

    coords Å; hessian kcal/(mol Å^2) (Cartesian, atom order of ``symbols``);
    energy kcal/mol (absolute, as the program printed it, converted);
    gradient kcal/(mol Å); frequencies cm^-1 as the program printed them
    (imaginary ones negative). ``source_units`` records what the file used,
    e.g. {"coords": "bohr", "hessian": "hartree/bohr2"}.
    """

    symbols: tuple[str, ...]
    coords: np.ndarray
    hessian: np.ndarray | None = None
    energy: float | None = None
    gradient: np.ndarray | None = None
    frequencies: np.ndarray | None = None
    atom_types: tuple[str, ...] | None = None
    bonds: tuple[tuple[int, int], ...] | None = None
    charges: np.ndarray | None = None
    masses: np.ndarray | None = None
    name: str = "molecule"
    source: str = ""
    program: str = ""
    source_units: dict[str, str] = field(default_factory=dict)

    @property
    def n_atoms(self) -> int:
        return len(self.symbols)

    def to_molecule(
        self, *, use_atom_types: bool = True, bond_tolerance: float | None = None, **kwargs
    ) -> Molecule:
        """A Molecule with this geometry (bonds from the file when it has them)."""
        extra = {} if bond_tolerance is None else {"bond_tolerance": bond_tolerance}
        return Molecule.from_arrays(
            self.symbols,
            self.coords,
            bonds=kwargs.pop("bonds", self.bonds),
            atom_types=self.atom_types if use_atom_types else None,
            masses=kwargs.pop("masses", self.masses),
            name=kwargs.pop("name", self.name),
            **extra,
            **kwargs,
        )

    def checked_hessian(self) -> np.ndarray:
        """The Hessian, validated (shape 3N x 3N, finite, symmetric)."""
        from q2jax.errors import InputError

        if self.hessian is None:
            raise InputError(f"{self.source or self.name}: no Hessian in this file")
        return validate_hessian(
            self.hessian, self.n_atoms, name=f"{self.source or self.name} Hessian"
        )


__all__ = ["QMData"]
