"""``ReferenceData``: the Q2MM guide's reference builder, producing a q2jax ReferenceSet.

Keyword arguments follow Q2MM (``value`` positional, the rest by keyword;
``label`` is accepted and kept for display). Data are keyed by molecule
index; the molecules are given when the set is built (``to_reference_set``,
or by :class:`~q2jax.workflows.ObjectiveFunction`). Units are q2jax's:
frequencies cm^-1, bond lengths Å, angles and torsions degrees, energies
kcal/mol. Hessians are given in ``units`` — by default Hartree/Bohr^2
("au"), as Q2MM expects — converted once here (``q2jax.units.hessian_factor``)
and checked for a plausible magnitude, so a Hessian in the wrong units is an
error, not a silently wrong fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from q2jax.errors import InputError, UnitError
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

HESSIAN_DIAG_RANGE = (10.0, 1.0e5)
"""Plausible largest |H_ii| of a molecule's Cartesian Hessian, kcal/(mol Å^2) (as the
Seminario unit check): Hartree/Bohr^2 values read as kcal/(mol Å^2) fall below it,
kcal/(mol Å^2) values read as Hartree/Bohr^2 above it."""

EIGENMATRIX_WEIGHTS = {"eig_i": 1.0, "eig_d": 1.0, "eig_o": 0.05}
"""Default eigenmatrix weights (residuals in kcal/(mol Å^2 amu)): first diagonal element,
other diagonal elements, off-diagonal elements."""


def _index(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise InputError(f"{name} must be a non-negative integer; got {value!r}")
    return int(value)


def _finite(value: float, what: str) -> float:
    v = float(value)
    if not np.isfinite(v):
        raise InputError(f"{what} must be finite; got {value!r}")
    return v


def hessian_in_kcal(hessian, units: str) -> np.ndarray:
    """A QM Hessian converted from ``units`` to kcal/(mol Å^2), magnitude-checked."""
    h = np.asarray(hessian, float) * hessian_factor(units)
    if h.ndim != 2 or h.shape[0] != h.shape[1] or h.shape[0] % 3 or not np.all(np.isfinite(h)):
        raise InputError(f"a Hessian must be a finite (3N, 3N) matrix; got shape {h.shape}")
    diag = float(np.max(np.abs(np.diag(h))))
    lo, hi = HESSIAN_DIAG_RANGE
    if h.shape[0] > 3 and not lo <= diag <= hi:
        raise UnitError(
            f"Hessian: largest |diagonal| is {diag:.4g} kcal/(mol Å^2) after conversion from "
            f"{units!r}, outside the plausible {lo:g}-{hi:g}; wrong units? (Hartree/Bohr^2: "
            "units='au'; q2jax's own data, e.g. load_case(...).hessian: units='kcal/mol/A2')"
        )
    return h


@dataclass
class _Pending:
    """A bond or angle given by its position in the molecule's list (resolved at build)."""

    kind: str
    molecule: int
    data_idx: int
    value: float
    weight: float


@dataclass
class ReferenceData:
    """Reference observations keyed by molecule index (Q2MM's builder)."""

    molecules: list[Molecule] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    _frequencies: dict[int, dict[int, tuple[float, float]]] = field(default_factory=dict)
    _data: list = field(default_factory=list)

    def _label(self, label: str) -> None:
        if label:
            self.labels.append(label)

    # --- frequencies --------------------------------------------------------------------------
    def add_frequency(
        self,
        value: float,
        *,
        data_idx: int,
        weight: float = 1.0,
        molecule_idx: int = 0,
        label: str = "",
    ) -> ReferenceData:
        """One QM frequency (cm^-1): mode ``data_idx`` (0-based) of the ascending list."""
        mol = _index(molecule_idx, "molecule_idx")
        idx = _index(data_idx, "data_idx")
        modes = self._frequencies.setdefault(mol, {})
        if idx in modes:
            raise InputError(f"frequency {idx} of molecule {mol} was already added")
        modes[idx] = (_finite(value, "frequency"), _finite(weight, "weight"))
        self._label(label)
        return self

    def add_frequencies(
        self,
        values: Sequence[float],
        *,
        weight: float | Sequence[float] = 1.0,
        molecule_idx: int = 0,
        skip_imaginary: bool = False,
    ) -> ReferenceData:
        """All QM frequencies of one molecule (cm^-1, ascending, imaginary negative)."""
        v = np.asarray(values, float)
        w = np.broadcast_to(np.asarray(weight, float), v.shape)
        for i, (nu, wi) in enumerate(zip(v, w, strict=True)):
            wi = 0.0 if (skip_imaginary and nu < 0) else wi
            self.add_frequency(nu, data_idx=i, weight=wi, molecule_idx=molecule_idx)
        return self

    # --- energies and geometry ----------------------------------------------------------------
    def add_energy(
        self,
        value: float,
        *,
        weight: float = 1.0,
        molecule_idx: int = 0,
        label: str = "",
        group: str = "default",
    ) -> ReferenceData:
        """Energy (kcal/mol, any zero); compared relative to the mean of its ``group``."""
        e = _finite(value, "energy")
        self._data.append(EnergyData(_index(molecule_idx, "molecule_idx"), e, weight, group))
        self._label(label)
        return self

    def _geometry(self, kind, value, data_idx, atoms, weight, molecule_idx, label):
        mol = _index(molecule_idx, "molecule_idx")
        v = _finite(value, kind)
        if atoms is None:
            if kind == "torsion" or data_idx is None or data_idx < 0:
                raise InputError(f"{kind}: give atom_indices (or, for bonds and angles, data_idx)")
            self._data.append(_Pending(kind, mol, int(data_idx), v, weight))
        else:
            atoms = tuple(_index(a, "atom index") for a in atoms)
            self._data.append(GeometryData(mol, kind, atoms, v, weight))
        self._label(label)
        return self

    def add_bond_length(
        self,
        value: float,
        *,
        data_idx: int = -1,
        atom_indices: Sequence[int] | None = None,
        weight: float = 1.0,
        molecule_idx: int = 0,
        label: str = "",
    ) -> ReferenceData:
        """Bond length (Å): ``atom_indices`` (0-based pair) or ``data_idx`` into the
        molecule's bond list."""
        return self._geometry("bond", value, data_idx, atom_indices, weight, molecule_idx, label)

    def add_bond_angle(
        self,
        value: float,
        *,
        data_idx: int = -1,
        atom_indices: Sequence[int] | None = None,
        weight: float = 1.0,
        molecule_idx: int = 0,
        label: str = "",
    ) -> ReferenceData:
        """Bend angle (degrees) i-j-k, j the centre: ``atom_indices`` or ``data_idx``
        into the molecule's angle list (``molecule.topology().angles``)."""
        return self._geometry("angle", value, data_idx, atom_indices, weight, molecule_idx, label)

    def add_torsion_angle(
        self,
        value: float,
        *,
        atom_indices: Sequence[int],
        weight: float = 1.0,
        molecule_idx: int = 0,
        label: str = "",
    ) -> ReferenceData:
        """Torsion angle (degrees) i-j-k-l; residuals are wrapped to (-180, 180]."""
        return self._geometry("torsion", value, None, atom_indices, weight, molecule_idx, label)

    def add_cartesian(self, coords, *, weight: float = 1.0, molecule_idx: int = 0) -> ReferenceData:
        """Reference Cartesian coordinates (Å): RMSD after optimal superposition."""
        c = np.asarray(coords, float)
        self._data.append(CartesianData(_index(molecule_idx, "molecule_idx"), c, weight))
        return self

    # --- Hessian-based data -------------------------------------------------------------------
    def add_eigenmatrix_from_hessian(
        self,
        hessian,
        *,
        units: str = "au",
        molecule_idx: int = 0,
        diagonal_only: bool = False,
        weights: dict[str, float] | None = None,
        skip_first: bool = False,
        transition_state: bool = False,
    ) -> ReferenceData:
        """Q2MM eigenmatrix data from a QM Hessian in ``units`` (default Hartree/Bohr^2).

        ``weights`` (residuals in kcal/(mol Å^2 amu)): ``"eig_i"`` first
        diagonal element (0 with ``skip_first``), ``"eig_d"`` other diagonal
        elements, ``"eig_o"`` off-diagonal elements (0 with ``diagonal_only``);
        defaults :data:`EIGENMATRIX_WEIGHTS`. ``transition_state`` replaces the
        negative QM eigenvalue by Q2MM's 1 Hartree/(Bohr^2 amu) (TSFF Method C).
        """
        w = dict(EIGENMATRIX_WEIGHTS)
        unknown = set(weights or {}) - set(w)
        if unknown:
            raise InputError(f"unknown eigenmatrix weight keys {sorted(unknown)}; have {sorted(w)}")
        w.update(weights or {})
        mol = _index(molecule_idx, "molecule_idx")
        h = hessian_in_kcal(hessian, units)
        diag = np.full(max(h.shape[0] - 5, 1), w["eig_d"])  # cut to 3N-6 or 3N-5 at build
        diag[0] = 0.0 if skip_first else w["eig_i"]
        self._data.append(
            EigenmatrixData(
                mol,
                h,
                diag,
                0.0 if diagonal_only else w["eig_o"],
                ts_replacement=TS_REPLACEMENT_EIGENVALUE if transition_state else None,
            )
        )
        return self

    def add_hessian(
        self, hessian, *, units: str = "au", weight: float = 1.0, molecule_idx: int = 0
    ) -> ReferenceData:
        """Cartesian Hessian elements (upper triangle) from a QM Hessian in ``units``."""
        h = hessian_in_kcal(hessian, units)
        self._data.append(HessianData(_index(molecule_idx, "molecule_idx"), h, weight))
        return self

    # --- building -------------------------------------------------------------------------------
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
            refs.add(_frequency_datum(mols, mol_idx, self._frequencies[mol_idx]))
        for d in self._data:
            if not 0 <= d.molecule < len(mols):
                raise InputError(f"{type(d).__name__} for molecule {d.molecule}; have {len(mols)}")
            refs.add(_resolve(d, mols[d.molecule]))
        refs.validate()
        if not refs.data:
            raise InputError("ReferenceData holds no observations")
        return refs


def _frequency_datum(mols, mol_idx: int, modes: dict) -> FrequencyData:
    if mol_idx >= len(mols):
        raise InputError(f"frequencies given for molecule {mol_idx}; have {len(mols)}")
    mol = mols[mol_idx]
    n = max(modes) + 1
    if n > mol.n_vibrations:
        raise InputError(
            f"{mol.name}: frequency data_idx {n - 1}, but the molecule has "
            f"{mol.n_vibrations} vibrations"
        )
    values, weights = np.zeros(n), np.zeros(n)
    for i, (v, w) in modes.items():
        values[i], weights[i] = v, w
    given = np.array([i in modes for i in range(n)])
    if np.any(np.diff(values[given]) < 0):
        raise InputError(f"{mol.name}: frequencies must be ascending in data_idx")
    return FrequencyData(mol_idx, values, weights)


def _resolve(d, mol: Molecule):
    if isinstance(d, _Pending):
        table = np.asarray(mol.bonds if d.kind == "bond" else mol.topology().angles)
        if d.data_idx >= len(table):
            raise InputError(f"{mol.name}: {d.kind} data_idx {d.data_idx}; it has {len(table)}")
        atoms = tuple(int(a) for a in table[d.data_idx])
        return GeometryData(d.molecule, d.kind, atoms, d.value, d.weight)
    if isinstance(d, EigenmatrixData):
        k = mol.n_vibrations
        w = np.asarray(d.weight_diagonal, float)
        if w.ndim and w.size < k:
            raise InputError(f"{mol.name}: eigenmatrix Hessian is too small for the molecule")
        return EigenmatrixData(
            d.molecule, d.hessian, w[:k] if w.ndim else w, d.weight_offdiagonal, d.ts_replacement
        )
    return d


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


__all__ = ["EIGENMATRIX_WEIGHTS", "HESSIAN_DIAG_RANGE", "ReferenceData", "as_reference_set"]
