"""QM reference data from PySCF: optimize, analytic Hessian, frequencies, reference set.

For users without a commercial QM code. Needs the optional extra::

    pip install 'q2jax[qm]'          # PySCF + geomeTRIC

Command line::

    q2jax qm molecule.xyz --method b3lyp --basis 6-31g* --out DIR
    q2jax fit DIR/molecule.yaml

From Python::

    from q2jax.adapters.pyscf import make_reference
    yaml_path = make_reference("h2o.xyz", "h2o-ref", method="b3lyp", basis="6-31g*")
    # h2o-ref/h2o.yaml, h2o-ref/h2o-hessian.npy (Hartree/Bohr^2), h2o-ref/h2o-optimized.xyz

Steps: (1) geomeTRIC minimises the PySCF energy to tight criteria
(:data:`TIGHT_CONVERGENCE`, max gradient 2e-6 Hartree/Bohr), so the Hessian is
taken at a stationary point; (2) PySCF's analytic Hessian (RHF/UHF/RKS/UKS);
(3) harmonic frequencies with q2jax's own Eckart projection
(``q2jax.vibrations``) and the molecule's masses (most abundant isotopes);
(4) a reference YAML (``q2jax.io.reference_yaml``) with the geometry inline,
the Hessian as ``<name>-hessian.npy`` and the QM settings (program, version,
method, basis, charge, spin, energy, residual gradient) under ``qm:``; the
reference data are the QM frequencies and the QM geometry (:data:`DEFAULT_DATA`).

``threads`` sets PySCF's OpenMP threads for a call; on a small shared machine
``threads=1`` can be several times faster than PySCF's default (all cores).

``method`` is ``"hf"`` (also ``"rhf"``/``"uhf"``) or any exchange-correlation
functional PySCF knows (``"b3lyp"``, ``"pbe0"``, ``"pbe"``, ...); restricted
for ``spin == 0``, unrestricted otherwise. ``spin`` is PySCF's 2S (number of
unpaired electrons; multiplicity = spin + 1). ``basis`` is any basis name
PySCF knows (``"sto-3g"``, ``"6-31g*"``, ``"def2-svp"``, ...).

Units at this boundary: PySCF works in Hartree and Bohr; every value returned
here is in q2jax units (Å, kcal/mol, kcal/(mol Å), kcal/(mol Å^2), cm^-1),
converted once with the factors of ``q2jax.units``. PySCF's Hessian is
returned per atom pair, ``h[i, j, a, b] = d2E / dx_(i,a) dx_(j,b)``; the
Cartesian matrix has row ``3 i + a`` and column ``3 j + b``.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from q2jax.errors import ConvergenceError, EngineError, InputError, Q2JaxError
from q2jax.molecule import Molecule
from q2jax.units import (
    HARTREE_BOHR2_TO_KCAL_MOL_A2,
    HARTREE_BOHR_TO_KCAL_MOL_A,
    HARTREE_TO_KCAL_MOL,
)

from ._pyscf_setup import (
    INSTALL_HINT,
    Level,
    geometric_logging,
    make_level,
    make_scf,
    molecule_at,
    omp_threads,
    require_geometric,
    require_pyscf,
    run_scf,
)

DEFAULT_METHOD = "b3lyp"
DEFAULT_BASIS = "6-31g*"

TIGHT_CONVERGENCE: dict[str, float] = {
    "convergence_energy": 1e-8,  # Hartree
    "convergence_grms": 1e-6,  # Hartree/Bohr
    "convergence_gmax": 2e-6,  # Hartree/Bohr
    "convergence_drms": 4e-6,  # Å
    "convergence_dmax": 6e-6,  # Å
}
"""geomeTRIC criteria: Gaussian's opt=verytight for gradients and steps, energy 1e-8 Hartree."""

DEFAULT_DATA: tuple[dict, ...] = (
    {"kind": "frequency"},
    {"kind": "cartesian", "weight": 1000.0},
)
"""Reference data :func:`make_reference` writes by default: the QM frequencies
(cm^-1, weight 1) and the QM geometry (RMSD after superposition, Å, weight
1000: 0.01 Å of RMSD weighs as much as 10 cm^-1). Frequencies alone do not
pin equilibrium values: a fit can then trade geometry for frequencies
(water, harmonic bonds and angles: 1.4 cm^-1 RMSD, but 0.38 Å geometry RMSD
and a 180° reference angle)."""

IMAGINARY_CM1 = -5.0
"""A QM mode below this (cm^-1) is reported as imaginary."""

Progress = bool | Callable[[str], None]

__all__ = [
    "DEFAULT_BASIS",
    "DEFAULT_DATA",
    "DEFAULT_METHOD",
    "INSTALL_HINT",
    "TIGHT_CONVERGENCE",
    "compute_gradient",
    "compute_hessian",
    "frequencies_cm1",
    "make_reference",
    "optimize_geometry",
    "pyscf_hessian_to_cartesian",
    "write_xyz",
]


# --- small pure helpers -----------------------------------------------------------------


def pyscf_hessian_to_cartesian(hessian_pairs) -> np.ndarray:
    """PySCF's per-atom-pair Hessian (N, N, 3, 3) -> Cartesian (3N, 3N), same units.

    ``H[3 i + a, 3 j + b] = h[i, j, a, b]``: axes (i, a, j, b) flattened.
    """
    h = np.asarray(hessian_pairs, dtype=float)
    if h.ndim != 4 or h.shape[0] != h.shape[1] or h.shape[2:] != (3, 3):
        raise InputError(f"expected a PySCF Hessian of shape (N, N, 3, 3), got {h.shape}")
    n = h.shape[0]
    return h.transpose(0, 2, 1, 3).reshape(3 * n, 3 * n)


def write_xyz(path: str | Path, molecule: Molecule, comment: str | None = None) -> Path:
    """Write one XYZ frame (Å, 10 decimals); the comment defaults to the molecule name
    (``q2jax.io.read_xyz`` reads it back as the name)."""
    path = Path(path)
    text = molecule.name if comment is None else comment
    lines = [str(molecule.n_atoms), text.replace("\n", " ")]
    for sym, xyz in zip(molecule.symbols, np.asarray(molecule.coords) + 0.0, strict=True):
        lines.append(f"{sym:<2s} {xyz[0]:17.10f} {xyz[1]:17.10f} {xyz[2]:17.10f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _say(progress: Progress, message: str) -> None:
    if progress is True:
        print(f"[q2jax qm] {message}", file=sys.stderr, flush=True)
    elif callable(progress):
        progress(message)


def _safe_name(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name.strip()).strip("._")
    return safe or "molecule"


# --- QM at one geometry -----------------------------------------------------------------


def _gradient_point(molecule: Molecule, level: Level) -> tuple[np.ndarray, float]:
    """(gradient (N, 3) Hartree/Bohr, energy Hartree)."""
    with omp_threads(level.threads):
        mf = make_scf(molecule, level)
        e = run_scf(mf, molecule.name)
        try:
            g = np.asarray(mf.nuc_grad_method().kernel(), float)
        except Exception as exc:
            raise EngineError(f"PySCF gradient failed for {molecule.name!r}: {exc}") from None
    return g, e


def _hessian_point(
    molecule: Molecule, level: Level, progress: Progress
) -> tuple[np.ndarray, np.ndarray, float]:
    """(Cartesian Hessian (3N, 3N) Hartree/Bohr^2, gradient (N, 3) Hartree/Bohr, energy Hartree)."""
    t0 = time.perf_counter()
    with omp_threads(level.threads):
        mf = make_scf(molecule, level)
        _say(progress, f"{molecule.name}: SCF {level.label()} ({molecule.n_atoms} atoms, "
                       f"{mf.mol.nao} basis functions)")
        e = run_scf(mf, molecule.name)
        _say(progress, f"{molecule.name}: E = {e:.10f} Hartree; analytic Hessian ...")
        try:
            h = mf.Hessian().kernel()
            g = mf.nuc_grad_method().kernel()
        except (NotImplementedError, AttributeError, TypeError) as exc:
            raise EngineError(
                f"PySCF has no analytic Hessian for {type(mf).__name__} with "
                f"{level.method!r}: {exc}"
            ) from None
        except Exception as exc:
            raise EngineError(f"PySCF Hessian failed for {molecule.name!r}: {exc}") from None
    _say(progress, f"{molecule.name}: Hessian done in {time.perf_counter() - t0:.1f} s")
    return pyscf_hessian_to_cartesian(h), np.asarray(g, float), e


# --- public API -------------------------------------------------------------------------


def compute_gradient(
    molecule: Molecule,
    *,
    method: str = DEFAULT_METHOD,
    basis: str = DEFAULT_BASIS,
    charge: int | None = None,
    spin: int | None = None,
    ecp: str | None = None,
    grid_level: int | None = None,
    threads: int | None = None,
    verbose: bool = False,
) -> tuple[np.ndarray, float]:
    """Analytic nuclear gradient dE/dx, shape (N, 3) in kcal/(mol Å), and the
    energy in kcal/mol, at the molecule's geometry.

    ``charge``/``spin`` default to the molecule's (``spin = multiplicity - 1``);
    ``threads`` sets PySCF's OpenMP threads for the call (default: PySCF's own).
    """
    level = make_level(molecule, method, basis, charge, spin, ecp, grid_level, threads, verbose)
    g, e = _gradient_point(molecule, level)
    return g * HARTREE_BOHR_TO_KCAL_MOL_A, e * HARTREE_TO_KCAL_MOL


def compute_hessian(
    molecule: Molecule,
    *,
    method: str = DEFAULT_METHOD,
    basis: str = DEFAULT_BASIS,
    charge: int | None = None,
    spin: int | None = None,
    ecp: str | None = None,
    grid_level: int | None = None,
    threads: int | None = None,
    progress: Progress = False,
    verbose: bool = False,
) -> tuple[np.ndarray, float]:
    """Analytic Cartesian Hessian (3N, 3N) in kcal/(mol Å^2) and the energy in kcal/mol.

    ``H[3 i + a, 3 j + b] = d2E / dx_(i,a) dx_(j,b)`` in the molecule's atom
    order (PySCF's (N, N, 3, 3) array via :func:`pyscf_hessian_to_cartesian`,
    times ``HARTREE_BOHR2_TO_KCAL_MOL_A2``), at the molecule's geometry as
    given: optimize first (:func:`optimize_geometry`) for frequencies that
    mean something. Options as :func:`compute_gradient`.
    """
    level = make_level(molecule, method, basis, charge, spin, ecp, grid_level, threads, verbose)
    h, _, e = _hessian_point(molecule, level, progress)
    return h * HARTREE_BOHR2_TO_KCAL_MOL_A2, e * HARTREE_TO_KCAL_MOL


def frequencies_cm1(molecule: Molecule, hessian=None, **qm_options) -> np.ndarray:
    """Harmonic frequencies (cm^-1, ascending, imaginary negative) of a Cartesian
    Hessian in kcal/(mol Å^2): ``q2jax.vibrations.frequencies`` (Eckart
    projection, the molecule's masses). Without ``hessian`` it is computed
    first by :func:`compute_hessian` with ``qm_options`` (method, basis, ...)."""
    import jax.numpy as jnp

    from q2jax.molecule import validate_hessian
    from q2jax.vibrations import frequencies

    if hessian is None:
        hessian, _ = compute_hessian(molecule, **qm_options)
    elif qm_options:
        raise InputError(f"QM options {sorted(qm_options)} given together with a Hessian")
    h = validate_hessian(
        np.asarray(hessian, float), molecule.n_atoms, name=f"{molecule.name} Hessian"
    )
    nu = frequencies(jnp.asarray(h), molecule.coords, molecule.masses, molecule.n_vibrations)
    return np.asarray(nu)


def _optimize(
    molecule: Molecule,
    level: Level,
    conv: Mapping[str, float] | None,
    max_steps: int,
    progress: Progress,
) -> tuple[Molecule, float]:
    """geomeTRIC minimisation; (optimized molecule, energy in Hartree)."""
    geometric, geometric_solver = require_geometric()
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise InputError(f"max_steps must be a positive integer, got {max_steps!r}")
    params = dict(TIGHT_CONVERGENCE if conv is None else conv)
    last: dict[str, float] = {}
    t0 = time.perf_counter()

    def callback(env: dict) -> None:
        e = float(env["energy"])
        gmax = float(np.max(np.abs(env["gradients"])))
        last["energy"], last["gmax"] = e, gmax
        _say(progress, f"  step {env['self'].cycle:3d}  E = {e:.10f} Hartree  "
                       f"max|g| = {gmax:.2e} Hartree/Bohr")

    with omp_threads(level.threads):
        mf = make_scf(molecule, level)
        _say(progress, f"{molecule.name}: optimizing at {level.label()} with geomeTRIC "
                       f"{geometric.__version__} ({molecule.n_atoms} atoms, {mf.mol.nao} "
                       "basis functions)")
        try:
            with geometric_logging(level.verbose):
                converged, newmol = geometric_solver.kernel(
                    mf, callback=callback, maxsteps=max_steps, **params
                )
        except Q2JaxError:
            raise
        except Exception as exc:
            raise EngineError(
                f"geometry optimization of {molecule.name!r} failed: {type(exc).__name__}: {exc}"
            ) from None
    if not converged or "energy" not in last:
        raise ConvergenceError(
            f"geometry optimization of {molecule.name!r} did not converge in {max_steps} steps "
            f"(last max|g| = {last.get('gmax', float('nan')):.2e} Hartree/Bohr); raise "
            "max_steps or loosen conv"
        )
    coords = np.asarray(newmol.atom_coords(unit="Angstrom"), float)
    _say(progress, f"{molecule.name}: converged, E = {last['energy']:.10f} Hartree "
                   f"({time.perf_counter() - t0:.1f} s)")
    return molecule_at(molecule, coords, level), last["energy"]


def optimize_geometry(
    molecule: Molecule,
    *,
    method: str = DEFAULT_METHOD,
    basis: str = DEFAULT_BASIS,
    charge: int | None = None,
    spin: int | None = None,
    conv: Mapping[str, float] | None = None,
    max_steps: int = 100,
    ecp: str | None = None,
    grid_level: int | None = None,
    threads: int | None = None,
    progress: Progress = False,
    verbose: bool = False,
) -> tuple[Molecule, float]:
    """Minimise the QM energy with geomeTRIC; returns the optimized Molecule
    (same atoms, order, masses, types and bonds; coordinates Å) and its energy
    in kcal/mol.

    ``conv``: geomeTRIC criteria (``convergence_energy`` Hartree,
    ``convergence_grms``/``gmax`` Hartree/Bohr, ``convergence_drms``/``dmax`` Å,
    or ``{"convergence_set": "GAU_TIGHT"}``), default :data:`TIGHT_CONVERGENCE`.
    ConvergenceError if not converged within ``max_steps``. Other options as
    :func:`compute_gradient`.
    """
    level = make_level(molecule, method, basis, charge, spin, ecp, grid_level, threads, verbose)
    mol, e = _optimize(molecule, level, conv, max_steps, progress)
    return mol, e * HARTREE_TO_KCAL_MOL


def _program_versions() -> dict[str, str]:
    import pyscf

    out = {"version": str(pyscf.__version__)}
    try:
        import geometric

        out["optimizer"] = f"geometric {geometric.__version__}"
    except ImportError:
        pass
    return out


def make_reference(
    xyz_path: str | Path,
    out_dir: str | Path,
    *,
    method: str = DEFAULT_METHOD,
    basis: str = DEFAULT_BASIS,
    optimize: bool = True,
    charge: int = 0,
    spin: int = 0,
    name: str | None = None,
    conv: Mapping[str, float] | None = None,
    max_steps: int = 100,
    ecp: str | None = None,
    grid_level: int | None = None,
    threads: int | None = None,
    data: Sequence[Mapping] | None = None,
    progress: Progress = True,
    verbose: bool = False,
) -> Path:
    """Optimize (unless ``optimize=False``), compute the analytic Hessian and write
    a reference set that ``q2jax fit`` reads; returns the YAML path.

    Writes to ``out_dir`` (created): ``<name>.yaml`` (geometry inline, reference
    data, QM settings under ``qm:``), ``<name>-hessian.npy`` (Hartree/Bohr^2)
    and ``<name>-optimized.xyz`` (``<name>-geometry.xyz`` without optimization).
    ``xyz_path``: an .xyz file (or any structure file ``q2jax.io.read_qm``
    reads); ``name`` defaults to its stem. ``data``: the molecule's reference
    data entries (kinds of ``q2jax.io.reference_yaml``), default
    :data:`DEFAULT_DATA`. ``progress``: True prints one line per step to
    stderr, a callable receives the lines, False is silent. Other options as
    :func:`optimize_geometry`.
    """
    from q2jax.io import read_qm
    from q2jax.io.reference_yaml import write_reference_yaml

    src = Path(xyz_path)
    if not src.is_file():
        raise InputError(f"{src}: no such geometry file")
    require_pyscf()
    if optimize:
        require_geometric()
    level = make_level(None, method, basis, charge, spin, ecp, grid_level, threads, verbose)
    entries = [dict(d) for d in (DEFAULT_DATA if data is None else data)]
    if not all("kind" in d for d in entries):
        raise InputError(f"data: every entry needs a 'kind', got {entries}")
    label = _safe_name(name if name is not None else src.name.split(".")[0])
    mol = read_qm(src).to_molecule(name=label, use_atom_types=False)
    mol = molecule_at(mol, np.asarray(mol.coords), level)
    t0 = time.perf_counter()
    if optimize:
        mol, _ = _optimize(mol, level, conv, max_steps, progress)
    h_au, g_au, e_au = _hessian_point(mol, level, progress)
    hess = h_au * HARTREE_BOHR2_TO_KCAL_MOL_A2
    nu = frequencies_cm1(mol, hess)
    n_imag = int(np.sum(nu < IMAGINARY_CM1))
    _say(progress, f"{label}: frequencies (cm^-1) {' '.join(f'{x:.1f}' for x in nu)}")
    if n_imag:
        _say(progress, f"{label}: WARNING {n_imag} imaginary frequencies: not a minimum")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    xyz_name = f"{label}-optimized.xyz" if optimize else f"{label}-geometry.xyz"
    write_xyz(out / xyz_name, mol)
    qm = {
        "program": "pyscf",
        **_program_versions(),
        "method": level.method,
        "basis": level.basis,
        "charge": level.charge,
        "spin": level.spin,
        "optimized": bool(optimize),
        "energy_hartree": e_au,
        "max_gradient_hartree_bohr": float(np.max(np.abs(g_au))),
        "n_imaginary": n_imag,
        "source": str(src),
        "xyz": xyz_name,
    }
    if level.ecp is not None:
        qm["ecp"] = level.ecp
    if level.grid_level is not None:
        qm["grid_level"] = level.grid_level
    path = write_reference_yaml(out / f"{label}.yaml", [mol], [hess], settings={"qm": qm},
                                data=[entries])
    _say(progress, f"{label}: wrote {path} ({time.perf_counter() - t0:.1f} s)")
    return path
