"""Honest evaluation of a force field against QM data.

Every quality figure q2jax reports comes from here: the geometry is first
relaxed with the force field to a tight stationary point of the same kind as
the QM structure (a minimum, or a first-order saddle for a transition
state), then MM frequencies there are compared with the QM ones (sorted
order), and the relaxed geometry with the QM geometry (RMSD after
superposition). The same figures at the QM geometry are given for
information only: there the MM model is generally not stationary.
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
from q2jax.molecule import Molecule
from q2jax.objective import _kabsch_rmsd
from q2jax.relax import RelaxOptions
from q2jax.system import build_batch
from q2jax.vibrations import eigenvalue_to_frequency, vibrational_eigenvalues

IMAGINARY_THRESHOLD_CM1 = 5.0
"""An MM mode counts as imaginary below -5 cm^-1 (numerical zero modes are far smaller)."""

TS_THRESHOLD_CM1 = 50.0
"""A QM structure with a frequency below -50 cm^-1 is treated as a transition state."""

KNOWN_FLOORS = {
    ("ch3f", "harmonic", "fixed_eq_4k"): (
        41.2,
        "harmonic CH3F with equilibrium values fixed at the QM geometry and four force "
        "constants (C-F, C-H, F-C-H, H-C-H): 41.2 cm^-1 RMSD in its physical basin",
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
) -> list[MoleculeEvaluation]:
    """Relax every molecule with the force field and compare with QM.

    ``transition_state`` defaults to "QM has a frequency below -50 cm^-1";
    such molecules are relaxed to a first-order saddle. Molecules in
    ``molecules`` are at their QM geometries. ``system`` optionally supplies the
    stacked term tables (e.g. ``Mm3ForceField.batch()``).
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
                relaxed_coords=figures["coords"][i][: mol.n_atoms],
            )
        )
    return out


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
    return {
        "nu_relaxed": freqs(x_rel),
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
    lines.append(
        f"{'molecule':<24s} {'freq RMSD':>10s} {'MAE':>8s} {'max':>8s} {'geom RMSD':>10s} "
        f"{'n_imag':>6s} {'|F|max':>9s} {'@QM geom':>9s}"
    )
    for e in evals:
        lines.append(
            f"{e.name[:24]:<24s} {e.freq_rmsd_cm1:10.1f} {e.freq_mae_cm1:8.1f} "
            f"{e.freq_max_abs_err_cm1:8.1f} {e.geom_rmsd_angstrom:10.4f} {e.n_imaginary:6d} "
            f"{e.max_force_kcal_mol_A:9.1e} {e.at_qm_geometry['freq_rmsd_cm1']:9.1f}"
        )
    lines.append(
        "(frequencies cm^-1 at the MM-relaxed geometry; geometry RMSD Å after "
        "superposition; last column: RMSD at the QM geometry, for information)"
    )
    return "\n".join(lines)


__all__ = [
    "MoleculeEvaluation",
    "evaluate",
    "summary_table",
    "KNOWN_FLOORS",
    "IMAGINARY_THRESHOLD_CM1",
]
