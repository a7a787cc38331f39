"""``ReferenceData``: the Q2MM guide's reference builder, producing a q2jax ReferenceSet.

Data are keyed by molecule index (``molecule_idx``) as in Q2MM; the
molecules themselves are given when the set is built (``to_reference_set``)
or by :class:`~q2jax.workflows.ObjectiveFunction`. Units are q2jax's:
frequencies cm^-1, bond lengths Å, angles and torsions degrees, energies
kcal/mol, Hessians kcal/(mol Å^2) unless ``units`` says otherwise (converted
once here with :func:`q2jax.units.hessian_factor`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from q2jax.errors import InputError
from q2jax.molecule import Molecule
from q2jax.reference import (
    TS_REPLACEMENT_EIGENVALUE,
    CartesianData,
    EigenmatrixData,
    EnergyData,
    FrequencyData,
    GeometryData,
    HessianData,
    ReferenceSet,
)
from q2jax.units import hessian_factor


def _index(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise InputError(f"{name} must be a non-negative integer; got {value!r}")
    return int(value)


def _finite(value: float, what: str) -> float:
    v = float(value)
    if not np.isfinite(v):
        raise InputError(f"{what} must be finite; got {value!r}")
    return v


@dataclass
class ReferenceData:
    """Reference observations keyed by molecule index (Q2MM's builder).

    Frequencies are added one mode at a time (``add_frequency(value,
    data_idx)``, ``data_idx`` the position in the ascending QM list) or as a
    whole list (``add_frequencies``). Everything else maps one to one onto
    q2jax's reference records.
    """

    molecules: list[Molecule] = field(default_factory=list)
    _frequencies: dict[int, dict[int, tuple[float, float]]] = field(default_factory=dict)
    _data: list = field(default_factory=list)

    # --- frequencies ------------------------------------------------------------------
    def add_frequency(
        self, value: float, data_idx: int, weight: float = 1.0, molecule_idx: int = 0
    ) -> ReferenceData:
        """One QM frequency (cm^-1): mode ``data_idx`` of the ascending list."""
        mol = _index(molecule_idx, "molecule_idx")
        idx = _index(data_idx, "data_idx")
        modes = self._frequencies.setdefault(mol, {})
        if idx in modes:
            raise InputError(f"frequency {idx} of molecule {mol} was already added")
        modes[idx] = (_finite(value, "frequency"), _finite(weight, "weight"))
        return self

    def add_frequencies(
        self,
        values: Sequence[float],
        weight: float | Sequence[float] = 1.0,
        molecule_idx: int = 0,
        skip_imaginary: bool = False,
    ) -> ReferenceData:
        """All QM frequencies of one molecule (cm^-1, ascending, imaginary negative)."""
        v = np.asarray(values, float)
        w = np.broadcast_to(np.asarray(weight, float), v.shape)
        for i, (nu, wi) in enumerate(zip(v, w, strict=True)):
            self.add_frequency(nu, i, 0.0 if (skip_imaginary and nu < 0) else wi, molecule_idx)
        return self

    # --- geometry and energy -------------------------------------------------------------
    def add_energy(
        self, value: float, weight: float = 1.0, molecule_idx: int = 0, group: str = "default"
    ) -> ReferenceData:
        """Energy (kcal/mol, any zero); compared relative to the mean of ``group``."""
        e = _finite(value, "energy")
        self._data.append(EnergyData(_index(molecule_idx, "molecule_idx"), e, weight, group))
        return self

    def _geometry(self, kind, value, atoms, weight, molecule_idx) -> ReferenceData:
        if atoms is None:
            raise InputError(f"add_{kind}: atom_indices are required")
        atoms = tuple(_index(a, "atom index") for a in atoms)
        v = _finite(value, kind)
        mol = _index(molecule_idx, "molecule_idx")
        self._data.append(GeometryData(mol, kind, atoms, v, weight))
        return self

    def add_bond_length(
        self, value: float, atom_indices: Sequence[int], weight: float = 1.0, molecule_idx: int = 0
    ) -> ReferenceData:
        """Bond length (Å) between two atoms (0-based indices)."""
        return self._geometry("bond", value, atom_indices, weight, molecule_idx)

    def add_bond_angle(
        self, value: float, atom_indices: Sequence[int], weight: float = 1.0, molecule_idx: int = 0
    ) -> ReferenceData:
        """Bend angle (degrees) i-j-k, j the central atom."""
        return self._geometry("angle", value, atom_indices, weight, molecule_idx)

    def add_torsion_angle(
        self, value: float, atom_indices: Sequence[int], weight: float = 1.0, molecule_idx: int = 0
    ) -> ReferenceData:
        """Torsion angle (degrees) i-j-k-l; residuals are wrapped to (-180, 180]."""
        return self._geometry("torsion", value, atom_indices, weight, molecule_idx)

    def add_cartesian(
        self, coords, weight: float = 1.0, molecule_idx: int = 0
    ) -> ReferenceData:
        """Reference Cartesian coordinates (Å): RMSD after superposition."""
        c = np.asarray(coords, float)
        self._data.append(CartesianData(_index(molecule_idx, "molecule_idx"), c, weight))
        return self

    # --- Hessian-based data ---------------------------------------------------------------
    def add_eigenmatrix_from_hessian(
        self,
        hessian,
        *,
        molecule_idx: int = 0,
        weight_diagonal: float = 1.0,
        weight_offdiagonal: float = 0.0,
        diagonal_only: bool = False,
        transition_state: bool = False,
        units: str = "kcal/mol/A2",
    ) -> ReferenceData:
        """Q2MM eigenmatrix data from a QM Hessian in ``units`` (default
        kcal/(mol Å^2); ``"au"`` for Hartree/Bohr^2). ``transition_state``
        replaces the negative QM eigenvalue by Q2MM's 1 Hartree/(Bohr^2 amu)
        (TSFF Method C)."""
        h = np.asarray(hessian, float) * hessian_factor(units)
        self._data.append(
            EigenmatrixData(
                _index(molecule_idx, "molecule_idx"),
                h,
                weight_diagonal,
                0.0 if diagonal_only else weight_offdiagonal,
                ts_replacement=TS_REPLACEMENT_EIGENVALUE if transition_state else None,
            )
        )
        return self

    def add_hessian(
        self, hessian, weight: float = 1.0, molecule_idx: int = 0, units: str = "kcal/mol/A2"
    ) -> ReferenceData:
        """Cartesian Hessian elements (upper triangle) from a QM Hessian in ``units``."""
        h = np.asarray(hessian, float) * hessian_factor(units)
        self._data.append(HessianData(_index(molecule_idx, "molecule_idx"), h, weight))
        return self

    # --- building ----------------------------------------------------------------------------
    @property
    def n_observations(self) -> int:
        return sum(len(m) for m in self._frequencies.values()) + len(self._data)

    def to_reference_set(self, molecules: Sequence[Molecule] | None = None) -> ReferenceSet:
        """A validated q2jax :class:`~q2jax.reference.ReferenceSet` over ``molecules``."""
        mols = list(molecules) if molecules is not None else list(self.molecules)
        if not mols:
            raise InputError("ReferenceData needs the molecules: pass them to ObjectiveFunction")
        refs = ReferenceSet(mols)
        for mol_idx in sorted(self._frequencies):
            if mol_idx >= len(mols):
                raise InputError(f"frequencies given for molecule {mol_idx}; have {len(mols)}")
            modes = self._frequencies[mol_idx]
            n = max(modes) + 1
            if n > mols[mol_idx].n_vibrations:
                raise InputError(
                    f"{mols[mol_idx].name}: frequency data_idx {n - 1} but the molecule has "
                    f"{mols[mol_idx].n_vibrations} vibrations"
                )
            values, weights = np.zeros(n), np.zeros(n)
            for i, (v, w) in modes.items():
                values[i], weights[i] = v, w
            if np.any(np.diff(values[weights > 0]) < 0):
                raise InputError(f"{mols[mol_idx].name}: frequencies must be ascending by data_idx")
            refs.add(FrequencyData(mol_idx, values, weights))
        for d in self._data:
            refs.add(d)
        refs.validate()
        if not refs.data:
            raise InputError("ReferenceData holds no observations")
        return refs


def as_reference_set(reference, molecules: Sequence[Molecule] | None) -> ReferenceSet:
    """A ReferenceSet from a :class:`ReferenceData` or a ReferenceSet (checked against
    ``molecules`` when both are given)."""
    if isinstance(reference, ReferenceData):
        return reference.to_reference_set(molecules)
    if isinstance(reference, ReferenceSet):
        if molecules is not None:
            mols = list(molecules)
            if len(mols) != len(reference.molecules) or any(
                a.n_atoms != b.n_atoms or a.symbols != b.symbols
                for a, b in zip(mols, reference.molecules, strict=True)
            ):
                raise InputError(
                    "the molecules passed to ObjectiveFunction differ from the reference set's"
                )
        reference.validate()
        return reference
    raise InputError(
        f"reference must be a q2jax ReferenceData or ReferenceSet; got {type(reference).__name__}"
    )


__all__ = ["ReferenceData", "as_reference_set"]
