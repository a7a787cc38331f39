"""Honest evaluation of a force field against QM data.

Every quality figure q2jax reports comes from here: the geometry is first
relaxed with the force field to a tight stationary point of the same kind as
the QM structure (a minimum, or a first-order saddle for a transition
state), then MM frequencies there are compared with the QM ones (sorted
order), and the relaxed geometry with the QM geometry (RMSD after
superposition). The same figures at the QM geometry are given for
information only: there the MM model is generally not stationary.

Sorted order compares the k-th lowest MM frequency with the k-th lowest QM
one even when the force field has reordered the modes (an A1 stretch swapped
with an E bend). When the QM Hessians are given, each QM mode is also paired
with the MM mode of largest eigenvector overlap (mass-weighted, MM modes
rotated into the QM frame; Hungarian assignment, ``q2jax.modes``) and the
same errors are reported for that pairing (``mode_matched``), with the
number of modes whose partner is not the sorted one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from q2jax.energy import energy, hessian
from q2jax.forcefield import ForceField
from q2jax.modes import kabsch_rotation, overlap_assignment
from q2jax.molecule import Molecule
from q2jax.objective import _kabsch_rmsd
from q2jax.relax import RelaxOptions
from q2jax.system import build_batch
from q2jax.vibrations import eigenvalue_to_frequency, normal_modes, vibrational_eigenvalues

REORDERED_CM1 = 1.0
"""A QM mode counts as reordered when its overlap partner's frequency differs from
the sorted partner's by more than this (swaps within a degenerate pair do not count)."""

IMAGINARY_THRESHOLD_CM1 = 5.0
"""An MM mode counts as imaginary below -5 cm^-1 (numerical zero modes are far smaller)."""

TS_THRESHOLD_CM1 = 50.0
"""A QM structure with a frequency below -50 cm^-1 is treated as a transition state."""

KNOWN_FLOORS = {
    ("ch3f", "harmonic", "fixed_eq_4k"): (
        41.2,
        "harmonic CH3F model with equilibrium values fixed at the QM geometry and four "
        "force constants (C-F, C-H, F-C-H, H-C-H), in its physical basin",
    ),
}


@dataclass
class MoleculeEvaluation:
    """Figures of one molecule (frequencies cm^-1, geometry Å, force kcal/(mol Å))."""

    name: str
    freq_rmsd_cm1: float
    freq_mae_cm1: float
    freq_max_abs_err_cm1: float
    geom_rmsd_angstrom: float
    n_imaginary: int
    max_force_kcal_mol_A: float
    converged: bool
    frequencies_cm1: list[float]
    qm_frequencies_cm1: list[float]
    saddle_order: int
    at_qm_geometry: dict = field(default_factory=dict)
    mode_matched: dict = field(default_factory=dict)
    relaxed_coords: np.ndarray | None = None  # Å

    def state(self) -> dict:
        """The STATE object of report.json (CONTRACTS.md)."""
        d = asdict(self)
        for k in ("name", "qm_frequencies_cm1", "relaxed_coords"):
            d.pop(k)
        return d


def _errors(mm: np.ndarray, qm: np.ndarray) -> tuple[float, float, float]:
    d = mm - qm
    return float(np.sqrt(np.mean(d * d))), float(np.mean(np.abs(d))), float(np.max(np.abs(d)))


def evaluate(
    forcefield: ForceField,
    molecules: Sequence[Molecule],
    qm_frequencies: Sequence[np.ndarray],
    *,
    transition_state: Sequence[bool] | None = None,
    relax_options: RelaxOptions = RelaxOptions(max_steps=500, gtol=1e-8),
    params=None,
    system=None,
    qm_hessians: Sequence[np.ndarray | None] | None = None,
) -> list[MoleculeEvaluation]:
    """Relax every molecule with the force field and compare with QM.

    ``transition_state`` defaults to "QM has a frequency below -50 cm^-1";
    such molecules are relaxed to a first-order saddle. Molecules in
    ``molecules`` are at their QM geometries. ``system`` optionally supplies the
    stacked term tables (e.g. ``Mm3ForceField.batch()``). ``qm_hessians``
    (kcal/(mol Å^2), optional, per molecule) add the ``mode_matched`` figures.
    """
    mols = list(molecules)
    qm = [np.asarray(q, float) for q in qm_frequencies]
    if transition_state is None:
        transition_state = [bool(np.any(q < -TS_THRESHOLD_CM1)) for q in qm]
    batch = build_batch(forcefield, mols) if system is None else system
    n_modes = max(m.n_vibrations for m in mols)
    fp = forcefield.full_params(params)
    orders = jnp.asarray([1 if t else 0 for t in transition_state], jnp.int32)
    figures = _evaluate_batch(
        fp, batch.coords, batch.masses, batch.atom_mask, batch.terms, orders, forcefield.form,
        forcefield.settings, n_modes, relax_options,
    )
    figures = jax.tree_util.tree_map(np.asarray, figures)
    out = []
    for i, (mol, q) in enumerate(zip(mols, qm, strict=True)):
        k = mol.n_vibrations
        if q.size != k:
            from q2jax.errors import InputError

            raise InputError(f"{mol.name}: {q.size} QM frequencies for {k} vibrations")
        nu = figures["nu_relaxed"][i][:k]
        nu_qm_geom = figures["nu_qm_geometry"][i][:k]
        x_rel = figures["coords"][i][: mol.n_atoms]
        hq = None if qm_hessians is None else qm_hessians[i]
        matched = {} if hq is None else mode_matched_figures(
            nu, figures["modes_relaxed"][i][: 3 * mol.n_atoms, :k], x_rel, mol, hq, q)
        rmsd, mae, mx = _errors(nu, q)
        r0, m0, x0 = _errors(nu_qm_geom, q)
        out.append(
            MoleculeEvaluation(
                name=mol.name,
                freq_rmsd_cm1=rmsd,
                freq_mae_cm1=mae,
                freq_max_abs_err_cm1=mx,
                geom_rmsd_angstrom=float(figures["geom_rmsd"][i]),
                n_imaginary=int(np.sum(nu < -IMAGINARY_THRESHOLD_CM1)),
                max_force_kcal_mol_A=float(figures["max_force"][i]),
                converged=bool(figures["converged"][i]),
                frequencies_cm1=[float(x) for x in nu],
                qm_frequencies_cm1=[float(x) for x in q],
                saddle_order=int(orders[i]),
                at_qm_geometry={
                    "freq_rmsd_cm1": r0,
                    "freq_mae_cm1": m0,
                    "freq_max_abs_err_cm1": x0,
                    "max_force_kcal_mol_A": float(figures["max_force_qm_geometry"][i]),
                    "frequencies_cm1": [float(x) for x in nu_qm_geom],
                },
                mode_matched=matched,
                relaxed_coords=x_rel,
            )
        )
    return out


def mode_matched_figures(nu_mm: np.ndarray, modes_mm: np.ndarray, x_mm: np.ndarray,
                         mol: Molecule, qm_hessian: np.ndarray, qm_nu: np.ndarray) -> dict:
    """Errors with each QM mode paired to the MM mode of largest squared overlap.

    ``nu_mm`` (k,) and ``modes_mm`` (3N, k, mass-weighted) at the MM geometry
    ``x_mm`` (Å); the QM modes come from ``qm_hessian`` (kcal/(mol Å^2)) at the
    molecule's QM geometry. The MM modes are rotated into the QM frame by a
    mass-weighted Kabsch fit before the overlaps are taken."""
    from q2jax.reference import qm_modes

    n, k = mol.n_atoms, mol.n_vibrations
    masses = np.asarray(mol.masses)
    _, q_modes = qm_modes(np.asarray(qm_hessian), mol, k, n)
    rot = kabsch_rotation(np.asarray(x_mm), np.asarray(mol.coords), masses)
    v = np.einsum("ab,nbk->nak", rot, np.asarray(modes_mm).reshape(n, 3, k)).reshape(3 * n, k)
    perm = overlap_assignment(v, q_modes[: 3 * n, :k])
    overlap = (np.sum(q_modes[: 3 * n, :k] * v[:, perm], axis=0)) ** 2
    paired = np.asarray(nu_mm)[perm]
    rmsd, mae, mx = _errors(paired, np.asarray(qm_nu, float))
    return {
        "freq_rmsd_cm1": rmsd,
        "freq_mae_cm1": mae,
        "freq_max_abs_err_cm1": mx,
        "n_reordered": int(np.sum(np.abs(paired - np.asarray(nu_mm)) > REORDERED_CM1)),
        "min_overlap": float(np.min(overlap)),
        "frequencies_cm1": [float(x) for x in paired],
    }


def _evaluate_one(fp, coords, masses, mask, terms, order, form, settings, n_modes, opts):
    from q2jax.relax import _solve_stationary

    def e_fn(x):
        return energy(fp, x, terms, form, settings)

    def h_fn(x):
        return hessian(fp, x, terms, form, settings)

    def freqs(x):
        return eigenvalue_to_frequency(vibrational_eigenvalues(h_fn(x), x, masses, n_modes, mask))

    # no derivatives are needed here: the plain stationary-point search suffices
    x_rel, _ = _solve_stationary(e_fn, h_fn, coords, mask, order, opts)
    g_rel = jax.grad(e_fn)(x_rel)
    g_qm = jax.grad(e_fn)(coords)
    max_force = jnp.max(jnp.where(mask[:, None], jnp.abs(g_rel), 0.0))
    lam_rel, modes_rel = normal_modes(h_fn(x_rel), x_rel, masses, n_modes, mask)
    return {
        "nu_relaxed": eigenvalue_to_frequency(lam_rel),
        "modes_relaxed": modes_rel,
        "nu_qm_geometry": freqs(coords),
        "geom_rmsd": _kabsch_rmsd(x_rel, coords, mask),
        "max_force": max_force,
        "converged": max_force <= 10.0 * opts.gtol,
        "max_force_qm_geometry": jnp.max(jnp.where(mask[:, None], jnp.abs(g_qm), 0.0)),
        "coords": x_rel,
    }


@functools.partial(jax.jit, static_argnums=(6, 7, 8, 9))
def _evaluate_batch(fp, coords, masses, mask, terms, orders, form, settings, n_modes, opts):
    return jax.vmap(_evaluate_one, in_axes=(None, 0, 0, 0, 0, 0, None, None, None, None))(
        fp, coords, masses, mask, terms, orders, form, settings, n_modes, opts
    )


def summary_table(evals: Sequence[MoleculeEvaluation], title: str = "") -> str:
    """Plain-text per-molecule table of the honest figures."""
    lines = [title] if title else []
    matched = any(e.mode_matched for e in evals)
    extra = f" {'matched':>8s} {'reord.':>6s}" if matched else ""
    lines.append(
        f"{'molecule':<24s} {'freq RMSD':>10s} {'MAE':>8s} {'max':>8s} {'geom RMSD':>10s} "
        f"{'n_imag':>6s} {'|F|max':>9s} {'@QM geom':>9s}{extra}"
    )
    for e in evals:
        row = (
            f"{e.name[:24]:<24s} {e.freq_rmsd_cm1:10.1f} {e.freq_mae_cm1:8.1f} "
            f"{e.freq_max_abs_err_cm1:8.1f} {e.geom_rmsd_angstrom:10.4f} {e.n_imaginary:6d} "
            f"{e.max_force_kcal_mol_A:9.1e} {e.at_qm_geometry['freq_rmsd_cm1']:9.1f}"
        )
        if matched:
            mm = e.mode_matched
            row += (f" {mm['freq_rmsd_cm1']:8.1f} {mm['n_reordered']:6d}" if mm
                    else f" {'-':>8s} {'-':>6s}")
        lines.append(row)
    lines.append(
        "(frequencies cm^-1 at the MM-relaxed geometry, sorted order; geometry RMSD Å after "
        "superposition; @QM geom: RMSD at the QM geometry, for information"
        + ("; matched: RMSD with each QM mode paired to the MM mode of largest overlap, "
           "reord.: modes whose partner is not the sorted one" if matched else "")
        + ")"
    )
    return "\n".join(lines)


__all__ = [
    "MoleculeEvaluation",
    "evaluate",
    "summary_table",
    "KNOWN_FLOORS",
    "IMAGINARY_THRESHOLD_CM1",
    "mode_matched_figures",
]
