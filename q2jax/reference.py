"""Reference data: what the force field is fitted to.

Host-side records (one per datum or per block) are collected in a
:class:`ReferenceSet` with its molecules, then frozen into padded arrays
(:class:`ReferenceArrays`, a pytree) by :func:`build_reference_arrays`.

Units (q2jax internal): energies kcal/mol, frequencies cm^-1, Hessians
kcal/(mol Å^2), eigenmatrix elements kcal/(mol Å^2 amu), bonds Å, angles and
torsions degrees. Each datum has a weight; the residual is
``weight * (mm - reference)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from q2jax.errors import InputError
from q2jax.molecule import Molecule, validate_hessian
from q2jax.units import HARTREE_BOHR2_TO_KCAL_MOL_A2

TS_REPLACEMENT_EIGENVALUE = (
    HARTREE_BOHR2_TO_KCAL_MOL_A2  # 1 Hartree/(Bohr^2 amu), Q2MM's TSFF value
)

GEOMETRY_KINDS = {"bond": 2, "angle": 3, "torsion": 4}


@dataclass(frozen=True)
class EnergyData:
    """Energy of one molecule (kcal/mol, any zero): compared relative to the
    mean of its ``group`` in QM and in MM, so only differences matter."""

    molecule: int
    value: float
    weight: float = 1.0
    group: str = "default"


@dataclass(frozen=True)
class FrequencyData:
    """Vibrational frequencies (cm^-1, ascending, imaginary negative) of one molecule.

    ``weight`` is a scalar or one weight per mode. For transition states,
    ``skip_imaginary`` gives the imaginary QM modes zero weight.

    ``drop_mode``: a mass-weighted QM normal mode (3N,), e.g. the reaction coordinate
    of a transition state fitted as an MM minimum (TSFF). The MM mode with the largest
    squared overlap with it (MM modes at the evaluation geometry, rotated into the
    reference frame by a mass-weighted Kabsch fit; chosen outside the differentiated
    path) is left out of the sorted MM spectrum, and ``values`` must then be the QM
    frequencies *without* that mode (3N-7 of them at most).
    """

    molecule: int
    values: np.ndarray
    weight: float | np.ndarray = 1.0
    skip_imaginary: bool = False
    drop_mode: np.ndarray | None = None


@dataclass(frozen=True)
class HessianData:
    """Cartesian Hessian elements (kcal/(mol Å^2)); by default the upper triangle."""

    molecule: int
    hessian: np.ndarray
    weight: float = 1.0


@dataclass(frozen=True)
class EigenmatrixData:
    """Q2MM eigenmatrix: diag(Qᵀ H_MM,mw Q) vs the QM eigenvalues, Q the QM
    mass-weighted normal modes; off-diagonal elements vs zero.

    ``ts_replacement``: for a transition state, the negative QM eigenvalue is
    replaced by this value (kcal/(mol Å^2 amu); Q2MM's TSFF Method C uses
    1 Hartree/(Bohr^2 amu)); None keeps natural eigenvalues (Method D).
    """

    molecule: int
    hessian: np.ndarray
    weight_diagonal: float = 1.0
    weight_offdiagonal: float = 0.0
    ts_replacement: float | None = None


@dataclass(frozen=True)
class GeometryData:
    """An internal coordinate: 'bond' (Å), 'angle' or 'torsion' (degrees)."""

    molecule: int
    kind: str
    atoms: tuple[int, ...]
    value: float
    weight: float = 1.0


@dataclass(frozen=True)
class CartesianData:
    """Reference Cartesian coordinates (Å); residual = RMSD after optimal
    superposition (Kabsch), times ``weight``."""

    molecule: int
    coords: np.ndarray
    weight: float = 1.0


Datum = EnergyData | FrequencyData | HessianData | EigenmatrixData | GeometryData | CartesianData


@dataclass
class ReferenceSet:
    """Molecules (at their reference geometries) and the data to fit."""

    molecules: list[Molecule]
    data: list = field(default_factory=list)

    def add(self, datum) -> ReferenceSet:
        self.data.append(datum)
        return self

    def index_of(self, name: str) -> int:
        for i, m in enumerate(self.molecules):
            if m.name == name:
                return i
        raise InputError(f"no molecule named {name!r} in the reference set")

    def kinds(self) -> set[str]:
        return {_KIND_OF[type(d)] for d in self.data}

    def validate(self) -> None:
        n = len(self.molecules)
        if n == 0:
            raise InputError("reference set has no molecules")
        for d in self.data:
            if not (0 <= d.molecule < n):
                raise InputError(f"{type(d).__name__} refers to molecule {d.molecule}, have {n}")
            mol = self.molecules[d.molecule]
            if isinstance(d, FrequencyData):
                v = np.asarray(d.values, float)
                room = mol.n_vibrations - (d.drop_mode is not None)
                if v.ndim != 1 or v.size > room or not np.all(np.isfinite(v)):
                    raise InputError(
                        f"{mol.name}: {v.size} reference frequencies for {room} "
                        "vibrations (or non-finite values)"
                    )
                if d.drop_mode is not None:
                    q = np.asarray(d.drop_mode, float)
                    if q.shape != (3 * mol.n_atoms,) or not np.all(np.isfinite(q)):
                        raise InputError(
                            f"{mol.name}: drop_mode must be a finite vector of 3N = "
                            f"{3 * mol.n_atoms} values, got shape {q.shape}"
                        )
                    if abs(np.linalg.norm(q) - 1.0) > 1e-6:
                        raise InputError(f"{mol.name}: drop_mode must be a unit vector")
            elif isinstance(d, HessianData | EigenmatrixData):
                validate_hessian(d.hessian, mol.n_atoms, name=f"{mol.name} QM Hessian")
            elif isinstance(d, GeometryData):
                if d.kind not in GEOMETRY_KINDS or len(d.atoms) != GEOMETRY_KINDS[d.kind]:
                    raise InputError(f"{mol.name}: bad geometry datum {d.kind} {d.atoms}")
                if any(not (0 <= a < mol.n_atoms) for a in d.atoms):
                    raise InputError(f"{mol.name}: geometry datum atoms {d.atoms} out of range")
            elif isinstance(d, CartesianData):
                if np.asarray(d.coords).shape != (mol.n_atoms, 3):
                    raise InputError(f"{mol.name}: Cartesian reference has wrong shape")

    @classmethod
    def from_qm(
        cls,
        molecules: Sequence[Molecule],
        hessians: Sequence[np.ndarray],
        *,
        frequency_weight: float | None = 1.0,
        eigenmatrix_weight: float | None = None,
        hessian_weight: float | None = None,
        cartesian_weight: float | None = None,
        transition_state: Sequence[bool] | bool = False,
    ) -> ReferenceSet:
        """Frequencies (from each QM Hessian) and optional other blocks for each molecule."""
        from q2jax.vibrations import frequencies

        mols = list(molecules)
        if len(hessians) != len(mols):
            raise InputError(f"{len(hessians)} Hessians for {len(mols)} molecules")
        ts = (
            [transition_state] * len(mols)
            if isinstance(transition_state, bool)
            else list(transition_state)
        )
        refs = cls(mols)
        for i, (m, h) in enumerate(zip(mols, hessians, strict=True)):
            h = validate_hessian(h, m.n_atoms, name=f"{m.name} QM Hessian")
            if frequency_weight is not None:
                nu = np.asarray(frequencies(jnp.asarray(h), m.coords, m.masses, m.n_vibrations))
                refs.add(FrequencyData(i, nu, frequency_weight))
            if eigenmatrix_weight is not None:
                refs.add(
                    EigenmatrixData(
                        i,
                        h,
                        eigenmatrix_weight,
                        ts_replacement=TS_REPLACEMENT_EIGENVALUE if ts[i] else None,
                    )
                )
            if hessian_weight is not None:
                refs.add(HessianData(i, h, hessian_weight))
            if cartesian_weight is not None:
                refs.add(CartesianData(i, np.asarray(m.coords), cartesian_weight))
        return refs


_KIND_OF = {
    EnergyData: "energy",
    FrequencyData: "frequency",
    HessianData: "hessian",
    EigenmatrixData: "eigenmatrix",
    GeometryData: "geometry",
    CartesianData: "cartesian",
}


class ReferenceArrays(eqx.Module):
    """Padded reference arrays for M molecules of up to N atoms and L modes.
    Blocks a set does not use are None (static absence, no cost)."""

    freq_values: Float[Array, "M L"] | None = None
    freq_weights: Float[Array, "M L"] | None = None
    freq_index: Int[Array, "M L"] | None = None  # MM mode compared with each QM mode
    freq_drop_modes: Float[Array, "M N3"] | None = None  # QM mode whose MM partner is left out
    freq_n_vib: Int[Array, " M"] | None = None  # vibrations of each molecule (with drop modes)
    eig_modes: Float[Array, "M N3 L"] | None = None
    eig_values: Float[Array, "M L"] | None = None
    eig_weights: Float[Array, "M L"] | None = None
    eig_offdiag_weight: Float[Array, " M"] | None = None
    hess_values: Float[Array, "M N3 N3"] | None = None
    hess_weights: Float[Array, "M N3 N3"] | None = None
    geom_atoms: Int[Array, "M G 4"] | None = None
    geom_kind: Int[Array, "M G"] | None = None  # 0 bond, 1 angle, 2 torsion
    geom_values: Float[Array, "M G"] | None = None
    geom_weights: Float[Array, "M G"] | None = None
    cart_values: Float[Array, "M N 3"] | None = None
    cart_weights: Float[Array, " M"] | None = None
    energy_values: Float[Array, " M"] | None = None
    energy_weights: Float[Array, " M"] | None = None
    energy_groups: Float[Array, "M K"] | None = None  # one-hot group membership


def qm_modes(hessian: np.ndarray, molecule: Molecule, n_modes: int, n_atoms_padded: int):
    """(eigenvalues, mass-weighted modes padded to 3*n_atoms_padded rows) of a QM Hessian."""
    from q2jax.vibrations import normal_modes

    w, v = normal_modes(
        jnp.asarray(hessian), molecule.coords, molecule.masses, molecule.n_vibrations
    )
    w, v = np.asarray(w), np.asarray(v)
    modes = np.zeros((3 * n_atoms_padded, n_modes))
    values = np.zeros(n_modes)
    k = molecule.n_vibrations
    modes[: v.shape[0], :k] = v
    values[:k] = w
    return values, modes


def build_reference_arrays(refs: ReferenceSet, n_atoms: int, n_modes: int) -> ReferenceArrays:
    """Freeze a ReferenceSet into padded arrays (M molecules, N = n_atoms, L = n_modes)."""
    refs.validate()
    mols = refs.molecules
    m_count = len(mols)
    kinds = refs.kinds()
    out: dict[str, np.ndarray] = {}
    if "frequency" in kinds:
        vals = np.zeros((m_count, n_modes))
        wts = np.zeros((m_count, n_modes))
        for d in refs.data:
            if isinstance(d, FrequencyData):
                v = np.asarray(d.values, float)
                w = np.broadcast_to(np.asarray(d.weight, float), v.shape).copy()
                if d.skip_imaginary:
                    w[v < 0] = 0.0
                vals[d.molecule, : v.size] = v
                wts[d.molecule, : v.size] = w
        out.update(
            freq_values=vals,
            freq_weights=wts,
            freq_index=np.tile(np.arange(n_modes, dtype=np.int32), (m_count, 1)),
        )
        drops = [d for d in refs.data if isinstance(d, FrequencyData) and d.drop_mode is not None]
        if drops:
            q = np.zeros((m_count, 3 * n_atoms))
            for d in drops:
                v = np.asarray(d.drop_mode, float)
                q[d.molecule, : v.size] = v
            out.update(
                freq_drop_modes=q,
                freq_n_vib=np.array([m.n_vibrations for m in mols], np.int32),
            )
    if "eigenmatrix" in kinds:
        modes = np.zeros((m_count, 3 * n_atoms, n_modes))
        vals = np.zeros((m_count, n_modes))
        wts = np.zeros((m_count, n_modes))
        off = np.zeros(m_count)
        for d in refs.data:
            if isinstance(d, EigenmatrixData):
                mol = mols[d.molecule]
                h = validate_hessian(d.hessian, mol.n_atoms)
                v, q = qm_modes(h, mol, n_modes, n_atoms)
                k = mol.n_vibrations
                if d.ts_replacement is not None:
                    neg = np.arange(n_modes) < k
                    v = np.where(neg & (v < 0), d.ts_replacement, v)
                vals[d.molecule] = v
                modes[d.molecule] = q
                wts[d.molecule, :k] = d.weight_diagonal
                off[d.molecule] = d.weight_offdiagonal
        out.update(eig_modes=modes, eig_values=vals, eig_weights=wts, eig_offdiag_weight=off)
    if "hessian" in kinds:
        vals = np.zeros((m_count, 3 * n_atoms, 3 * n_atoms))
        wts = np.zeros_like(vals)
        for d in refs.data:
            if isinstance(d, HessianData):
                mol = mols[d.molecule]
                h = validate_hessian(d.hessian, mol.n_atoms)
                n3 = 3 * mol.n_atoms
                vals[d.molecule, :n3, :n3] = h
                wts[d.molecule, :n3, :n3] = np.triu(np.full((n3, n3), d.weight))
        out.update(hess_values=vals, hess_weights=wts)
    if "geometry" in kinds:
        per = [
            [d for d in refs.data if isinstance(d, GeometryData) and d.molecule == i]
            for i in range(m_count)
        ]
        g = max(1, max(len(p) for p in per))
        atoms = np.zeros((m_count, g, 4), np.int32)
        kind = np.zeros((m_count, g), np.int32)
        vals = np.zeros((m_count, g))
        wts = np.zeros((m_count, g))
        code = {"bond": 0, "angle": 1, "torsion": 2}
        for i, items in enumerate(per):
            for j, d in enumerate(items):
                a = list(d.atoms) + [d.atoms[-1]] * (4 - len(d.atoms))
                atoms[i, j], kind[i, j], vals[i, j], wts[i, j] = a, code[d.kind], d.value, d.weight
        out.update(geom_atoms=atoms, geom_kind=kind, geom_values=vals, geom_weights=wts)
    if "cartesian" in kinds:
        vals = np.zeros((m_count, n_atoms, 3))
        wts = np.zeros(m_count)
        for d in refs.data:
            if isinstance(d, CartesianData):
                c = np.asarray(d.coords, float)
                vals[d.molecule, : c.shape[0]] = c
                wts[d.molecule] = d.weight
        out.update(cart_values=vals, cart_weights=wts)
    if "energy" in kinds:
        groups = sorted({d.group for d in refs.data if isinstance(d, EnergyData)})
        vals = np.zeros(m_count)
        wts = np.zeros(m_count)
        onehot = np.zeros((m_count, len(groups)))
        for d in refs.data:
            if isinstance(d, EnergyData):
                vals[d.molecule], wts[d.molecule] = d.value, d.weight
                onehot[d.molecule, groups.index(d.group)] = 1.0
        out.update(energy_values=vals, energy_weights=wts, energy_groups=onehot)
    return ReferenceArrays(**{k: jnp.asarray(v) for k, v in out.items()})


__all__ = [
    "EnergyData",
    "FrequencyData",
    "HessianData",
    "EigenmatrixData",
    "GeometryData",
    "CartesianData",
    "ReferenceSet",
    "ReferenceArrays",
    "build_reference_arrays",
    "qm_modes",
    "TS_REPLACEMENT_EIGENVALUE",
]
