"""Bundled QM reference cases (see ``q2jax/data/README.md`` for provenance).

``load_case("ch3f")`` returns the molecule at its QM geometry, the QM
Hessian in kcal/(mol Å^2) and the QM frequencies (cm^-1) as a
:class:`QMCase`; ``"sn2-ts"`` is the F- + CH3F SN2 transition state and
``"ethane"`` the ethane ground state (Gaussian fchk).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from q2jax.errors import InputError
from q2jax.molecule import Molecule, validate_hessian
from q2jax.units import HARTREE_BOHR2_TO_KCAL_MOL_A2, HARTREE_TO_KCAL_MOL

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class QMCase:
    """A molecule at its QM geometry with its QM Hessian (kcal/(mol Å^2)),
    frequencies (cm^-1, ascending, imaginary negative) and energy (kcal/mol)."""

    molecule: Molecule
    hessian: np.ndarray
    frequencies: np.ndarray
    energy: float | None = None
    transition_state: bool = False

    @property
    def name(self) -> str:
        return self.molecule.name


def _npy_case(
    folder: str,
    stem: str,
    name: str,
    *,
    bond_tolerance: float = 1.3,
    transition_state: bool = False,
) -> QMCase:
    from q2jax.io.xyz import read_xyz

    d = DATA_DIR / folder
    qm = read_xyz(d / f"{stem}-optimized.xyz")
    mol = qm.to_molecule(name=name, bond_tolerance=bond_tolerance)
    raw = np.load(d / f"{stem}-hessian.npy")  # Hartree/Bohr^2 (data README)
    hess = validate_hessian(raw * HARTREE_BOHR2_TO_KCAL_MOL_A2, mol.n_atoms, name=f"{stem} Hessian")
    freqs = np.loadtxt(d / f"{stem}-frequencies.txt")
    energy_file = d / f"{stem}-energy.txt"
    energy = None
    if energy_file.exists():
        energy = float(np.loadtxt(energy_file)) * HARTREE_TO_KCAL_MOL
    return QMCase(mol, hess, np.sort(freqs), energy, transition_state)


def _ethane() -> QMCase:
    from q2jax.io.gaussian import read_fchk

    qm = read_fchk(DATA_DIR / "ethane-gs" / "GS.fchk")
    mol = qm.to_molecule(name="ethane")
    from q2jax.vibrations import frequencies

    hess = qm.checked_hessian()
    import jax.numpy as jnp

    nu = np.asarray(frequencies(jnp.asarray(hess), mol.coords, mol.masses, mol.n_vibrations))
    return QMCase(mol, hess, nu, qm.energy, False)


CASES = {
    "ch3f": lambda: _npy_case("ch3f", "ch3f", "ch3f"),
    # the SN2 TS has C-F = 1.85 Å: bonds need a transition-state tolerance
    "sn2-ts": lambda: _npy_case(
        "sn2-ts", "sn2-ts", "sn2-ts", bond_tolerance=1.45, transition_state=True
    ),
    "ethane": _ethane,
}


def load_case(name: str) -> QMCase:
    """One bundled case by name: 'ch3f', 'sn2-ts' or 'ethane'."""
    try:
        return CASES[name.lower()]()
    except KeyError:
        raise InputError(f"unknown bundled case {name!r}; have {sorted(CASES)}") from None


__all__ = ["QMCase", "load_case", "CASES", "DATA_DIR"]
