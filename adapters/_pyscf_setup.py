"""Private helpers of ``q2jax.adapters.pyscf``: imports with clear errors, input
checks, PySCF objects, OpenMP threads and geomeTRIC's logging.

PySCF and geomeTRIC are imported only inside functions, so importing this
module (and ``q2jax.adapters.pyscf``) works without the ``qm`` extra.
"""

from __future__ import annotations

import contextlib
import logging
import logging.config
import sys
from collections.abc import Iterator
from typing import NamedTuple
from unittest import mock

import numpy as np

from q2jax.errors import EngineError, InputError, Q2JaxError
from q2jax.molecule import Molecule

INSTALL_HINT = "install with pip install 'q2jax[qm]'"

SCF_CONV_TOL = 1e-11
"""SCF energy convergence (Hartree): tight, so gradients are good to ~1e-7 Hartree/Bohr."""

SCF_MAX_CYCLE = 200

HF_NAMES = ("hf", "rhf", "uhf", "scf")
NO_HESSIAN = ("rohf", "roks", "mp2", "ccsd", "ccsd(t)", "casscf", "casci")


class Level(NamedTuple):
    """A checked level of theory: method (lower case), basis name, charge,
    spin (2S), optional ECP name and DFT grid level, OpenMP threads, PySCF verbosity."""

    method: str
    basis: str
    charge: int
    spin: int
    ecp: str | None
    grid_level: int | None
    threads: int | None
    verbose: bool

    def label(self) -> str:
        return f"{self.method}/{self.basis}"


def require_pyscf():
    """The pyscf package, or EngineError with the install hint."""
    try:
        import pyscf
        from pyscf import dft, gto, scf  # noqa: F401
    except ImportError as exc:
        raise EngineError(f"PySCF is not available ({exc}); {INSTALL_HINT}") from None
    return pyscf


def require_geometric():
    """(geometric, pyscf.geomopt.geometric_solver), or EngineError with the install hint."""
    require_pyscf()
    try:
        import geometric
        from pyscf.geomopt import geometric_solver
    except ImportError as exc:
        raise EngineError(f"geomeTRIC is not available ({exc}); {INSTALL_HINT}") from None
    return geometric, geometric_solver


def check_method(method: str) -> str:
    """The method name in lower case, checked against PySCF: HF or a functional
    PySCF's libxc interface parses. InputError otherwise."""
    if not isinstance(method, str) or not method.strip():
        raise InputError(f"method must be 'hf' or a DFT functional name, got {method!r}")
    key = method.strip().lower()
    if key in HF_NAMES:
        return key
    if key in NO_HESSIAN:
        raise InputError(
            f"method {method!r}: PySCF has no analytic Hessian for it; use 'hf' or a DFT "
            "functional (e.g. 'b3lyp')"
        )
    require_pyscf()
    from pyscf.dft import libxc

    try:
        libxc.parse_xc(key)
    except Exception as exc:  # PySCF raises KeyError, ValueError, ... for unknown names
        raise InputError(
            f"unknown method {method!r}: neither 'hf' nor a functional PySCF knows ({exc})"
        ) from None
    return key


def _integer(value, what: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{what} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InputError(f"{what} must be >= {minimum}, got {value}")
    return int(value)


def make_level(
    molecule: Molecule | None,
    method: str,
    basis: str,
    charge: int | None,
    spin: int | None,
    ecp: str | None,
    grid_level: int | None,
    threads: int | None,
    verbose: bool,
) -> Level:
    """Check every option; charge and spin default to the molecule's
    (spin = multiplicity - 1), or 0 without a molecule."""
    require_pyscf()
    key = check_method(method)
    if not isinstance(basis, str) or not basis.strip():
        raise InputError(f"basis must be a basis-set name, got {basis!r}")
    if charge is None:
        charge = 0 if molecule is None else molecule.charge
    if spin is None:
        spin = 0 if molecule is None else molecule.multiplicity - 1
    return Level(
        method=key,
        basis=basis.strip(),
        charge=_integer(charge, "charge"),
        spin=_integer(spin, "spin (2S, the number of unpaired electrons)", 0),
        ecp=None if ecp is None else str(ecp),
        grid_level=None if grid_level is None else _integer(grid_level, "grid_level", 0),
        threads=None if threads is None else _integer(threads, "threads", 1),
        verbose=bool(verbose),
    )


def build_mole(molecule: Molecule, level: Level):
    """A built ``pyscf.gto.Mole`` at the molecule's geometry (Å). InputError when
    PySCF refuses the basis, ECP, charge or spin."""
    from pyscf import gto

    if not isinstance(molecule, Molecule):
        raise InputError(f"expected a q2jax Molecule, got {type(molecule).__name__}")
    mol = gto.Mole()
    mol.atom = [
        (s, tuple(float(v) for v in x))
        for s, x in zip(molecule.symbols, np.asarray(molecule.coords), strict=True)
    ]
    mol.unit = "Angstrom"
    mol.basis = level.basis
    if level.ecp is not None:
        mol.ecp = level.ecp
    mol.charge = level.charge
    mol.spin = level.spin
    mol.symmetry = False
    mol.verbose = 4 if level.verbose else 0
    try:
        mol.build()
    except Exception as exc:  # BasisNotFoundError, KeyError, RuntimeError (electron count)
        raise InputError(
            f"PySCF cannot set up {molecule.name!r} with basis {level.basis!r}, charge "
            f"{level.charge}, spin {level.spin}: {type(exc).__name__}: {exc}"
        ) from None
    return mol


def make_scf(molecule: Molecule, level: Level):
    """An SCF object (not yet run): RHF/RKS for spin 0 (unless 'uhf'), UHF/UKS otherwise."""
    from pyscf import dft, scf

    mol = build_mole(molecule, level)
    unrestricted = level.spin > 0 or level.method == "uhf"
    if level.method in HF_NAMES:
        mf = scf.UHF(mol) if unrestricted else scf.RHF(mol)
    else:
        mf = dft.UKS(mol) if unrestricted else dft.RKS(mol)
        mf.xc = level.method
        if level.grid_level is not None:
            mf.grids.level = level.grid_level
    mf.conv_tol = SCF_CONV_TOL
    mf.max_cycle = SCF_MAX_CYCLE
    return mf


def run_scf(mf, name: str) -> float:
    """Run the SCF; total energy in Hartree. EngineError when it fails or does not converge."""
    try:
        e = float(mf.kernel())
    except Q2JaxError:
        raise
    except Exception as exc:
        raise EngineError(f"PySCF SCF failed for {name!r}: {type(exc).__name__}: {exc}") from None
    if not mf.converged:
        raise EngineError(
            f"PySCF SCF did not converge for {name!r} ({type(mf).__name__}, "
            f"{mf.max_cycle} cycles)"
        )
    return e


@contextlib.contextmanager
def omp_threads(threads: int | None) -> Iterator[None]:
    """PySCF's OpenMP thread count set for the block (None: leave it) and restored."""
    if threads is None:
        yield
        return
    from pyscf import lib

    old = lib.num_threads()
    lib.num_threads(threads)
    try:
        yield
    finally:
        lib.num_threads(old)


@contextlib.contextmanager
def geometric_logging(verbose: bool) -> Iterator[None]:
    """geomeTRIC reconfigures the root logger from an ini file on every run
    (closing the caller's handlers); skip that, and keep geomeTRIC quiet
    (warnings only) unless ``verbose``, which sends its log to stderr."""
    glog = logging.getLogger("geometric.nifty")  # every geomeTRIC module logs here
    saved = (glog.level, glog.propagate, list(glog.handlers))
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.terminator = ""  # geomeTRIC's messages carry their own newlines
        glog.handlers = [handler]
        glog.setLevel(logging.INFO)
        glog.propagate = False
    else:
        glog.setLevel(logging.WARNING)
    try:
        with mock.patch.object(logging.config, "fileConfig", lambda *a, **k: None):
            yield
    finally:
        glog.setLevel(saved[0])
        glog.propagate = saved[1]
        glog.handlers = saved[2]


def molecule_at(molecule: Molecule, coords_angstrom, level: Level) -> Molecule:
    """The molecule at new coordinates (Å) with the level's charge and multiplicity;
    atoms, order, masses, types and bonds kept."""
    return Molecule.from_arrays(
        molecule.symbols,
        coords_angstrom,
        bonds=molecule.bonds,
        atom_types=molecule.atom_types,
        masses=np.asarray(molecule.masses),
        name=molecule.name,
        charge=level.charge,
        multiplicity=level.spin + 1,
    )
