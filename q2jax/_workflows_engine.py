"""The objective's residuals through a non-JAX MM engine (e.g. ``OpenMMEngine``).

Same definitions, layout and weights as :func:`q2jax.objective.residual_blocks`
(read from the frozen ``ObjectiveSpec``), evaluated in NumPy from the
engine's energies, gradients, finite-difference Hessians and minimiser:

- relaxed geometry: ``engine.minimize`` from the QM geometry, to the spec's
  ``relax.gtol`` (kcal/(mol Å));
- frequencies: ``engine.frequencies`` (finite-difference Hessian, Eckart
  projection by ``q2jax.vibrations``), ascending, compared mode by mode;
- eigenmatrix: Qᵀ M^(-1/2) H M^(-1/2) Q with the QM modes Q of the spec;
- Hessian elements, internal coordinates (Å, degrees), Cartesian RMSD after
  superposition, group-centred energies, stationarity (gradient at the QM
  geometry) and the L2 rows sqrt(λ) (p − p_ref) / scale.

The engine must offer ``energy``, ``gradient``, ``hessian``, ``minimize`` and
``frequencies`` with ``OpenMMEngine``'s signatures. It finds minima only, so
transition states that need relaxing are refused.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from q2jax.errors import EngineError, InputError

ENGINE_METHODS = ("energy", "gradient", "hessian", "minimize", "frequencies")
MAX_RELAXED_FORCE = 1e-4
"""kcal/(mol Å): an engine relaxation left with a larger force is an error (geometry off by
more than ~1e-6 Å in a stiff coordinate), never a silently wrong number."""


def needs_relaxation(spec: Any) -> bool:
    """Same test as the JAX objective: is any block evaluated at the relaxed geometry?"""
    r, opts = spec.refs, spec.options
    at_relaxed = opts.frequencies_at == "relaxed" and any(
        x is not None for x in (r.freq_values, r.geom_values, r.cart_values, r.energy_values)
    )
    hess_relaxed = opts.hessian_at == "relaxed" and (
        r.eig_values is not None or r.hess_values is not None
    )
    return at_relaxed or hess_relaxed


def check_engine(engine: Any, spec: Any, custom_system: bool) -> None:
    """InputError if ``engine`` cannot evaluate ``spec``."""
    missing = [m for m in ENGINE_METHODS if not callable(getattr(engine, m, None))]
    if missing:
        raise InputError(
            f"engine {type(engine).__name__} lacks {missing}; a non-JAX engine needs "
            f"{ENGINE_METHODS} (as q2jax.adapters.openmm.OpenMMEngine)"
        )
    if custom_system:
        raise InputError(
            "ObjectiveFunction(system=...) (custom term tables such as MM3* assignments) "
            "is only supported with the JAX engine"
        )
    if needs_relaxation(spec) and bool(np.any(np.asarray(spec.saddle_order) > 0)):
        raise InputError(
            f"engine {type(engine).__name__} finds minima only: transition-state molecules "
            "evaluated at the relaxed geometry need the JAX engine (JaxEngine())"
        )


def _numpy_refs(spec: Any) -> Any:
    return jax.tree_util.tree_map(np.asarray, spec.refs)


def _pad_rows(x: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n,) + x.shape[1:])
    out[: x.shape[0]] = x
    return out


def _relaxed(engine, ff, mol, params, gtol: float) -> np.ndarray:
    x, force = engine.minimize(ff, mol, np.asarray(mol.coords), params, tolerance=gtol)
    if not force <= max(MAX_RELAXED_FORCE, 10.0 * gtol):
        raise EngineError(
            f"{type(engine).__name__} relaxation of {mol.name!r} stopped with a residual "
            f"force of {force:.2e} kcal/(mol Å) (needed <= {max(MAX_RELAXED_FORCE, 10 * gtol):.0e})"
        )
    return np.asarray(x, float)


def _molecule_blocks(engine, spec, r, i: int, mol, params, relax: bool) -> tuple[dict, float]:
    from q2jax.objective import _geometry_values, _kabsch_rmsd

    ff, opts = spec.forcefield, spec.options
    n_pad = int(spec.system.coords.shape[1])
    masses = np.asarray(spec.system.masses[i], float)
    mask = np.asarray(spec.system.atom_mask[i], bool)
    x_qm = np.asarray(mol.coords, float)
    x_rel = _relaxed(engine, ff, mol, params, opts.relax.gtol) if relax else x_qm
    x_eval = x_rel if opts.frequencies_at == "relaxed" else x_qm
    x_hess = x_rel if opts.hessian_at == "relaxed" else x_qm
    blocks: dict[str, np.ndarray] = {}
    if r.freq_values is not None:
        nu = np.zeros(spec.n_modes)
        f = np.asarray(engine.frequencies(ff, mol, x_eval, params), float)
        nu[: f.size] = f
        blocks["frequency"] = r.freq_weights[i] * (nu[r.freq_index[i]] - r.freq_values[i])
    if r.eig_values is not None or r.hess_values is not None:
        h = np.zeros((3 * n_pad, 3 * n_pad))
        n3 = 3 * mol.n_atoms
        h[:n3, :n3] = engine.hessian(ff, mol, x_hess, params)
        if r.eig_values is not None:
            m3 = np.repeat(masses, 3)
            q = r.eig_modes[i]
            em = q.T @ (h / np.sqrt(np.outer(m3, m3))) @ q
            w = r.eig_weights[i]
            blocks["eigenmatrix"] = w * (np.diagonal(em) - r.eig_values[i])
            off = np.where(np.outer(w, w) > 0, em - np.diag(np.diagonal(em)), 0.0)
            iu = np.triu_indices(spec.n_modes, 1)
            blocks["eigenmatrix_offdiagonal"] = (r.eig_offdiag_weight[i] * off)[iu]
        if r.hess_values is not None:
            iu = np.triu_indices(3 * n_pad)
            blocks["hessian"] = (r.hess_weights[i] * (h - r.hess_values[i]))[iu]
    if r.geom_values is not None:
        active = r.geom_weights[i] != 0
        vals = np.asarray(_geometry_values(x_eval, r.geom_atoms[i], r.geom_kind[i], active))
        diff = vals - r.geom_values[i]
        diff = np.where(r.geom_kind[i] == 2, (diff + 180.0) % 360.0 - 180.0, diff)
        blocks["geometry"] = r.geom_weights[i] * diff
    if r.cart_values is not None:
        rmsd = float(_kabsch_rmsd(_pad_rows(x_eval, n_pad), r.cart_values[i], mask))
        blocks["cartesian"] = np.array([r.cart_weights[i] * rmsd])
    if spec.options.stationarity:
        g = _pad_rows(np.asarray(engine.gradient(ff, mol, x_qm, params), float), n_pad)
        blocks["stationarity"] = (float(spec.stationarity_weights[i]) * g).reshape(-1)
    e_mm = float(engine.energy(ff, mol, x_eval, params)) if r.energy_values is not None else 0.0
    return blocks, e_mm


def engine_residual_blocks(engine: Any, spec: Any, molecules, params) -> dict[str, np.ndarray]:
    """Weighted residual blocks (flattened over molecules), as ``residual_blocks``."""
    p = np.asarray(params, float)
    r = _numpy_refs(spec)
    relax = needs_relaxation(spec)
    per_mol = [
        _molecule_blocks(engine, spec, r, i, mol, p, relax) for i, mol in enumerate(molecules)
    ]
    keys = per_mol[0][0].keys()
    out = {k: np.stack([b[k] for b, _ in per_mol]).reshape(-1) for k in keys}
    if r.energy_values is not None:
        e_mm = np.array([e for _, e in per_mol])
        g = r.energy_groups * (r.energy_weights > 0)[:, None]
        counts = np.maximum(g.sum(0), 1.0)

        def centred(e):
            return e - g @ (g.T @ e / counts)

        out["energy"] = r.energy_weights * (centred(e_mm) - centred(r.energy_values))
    if spec.forcefield.n_params:
        lam = float(spec.lam)
        out["regularization"] = (
            np.sqrt(lam) * (p - np.asarray(spec.p_ref)) / np.asarray(spec.reg_scale)
        )
    return out


def engine_residuals(engine: Any, spec: Any, molecules, params) -> np.ndarray:
    """The residual vector (blocks in sorted order, as ``q2jax.objective.residuals``)."""
    blocks = engine_residual_blocks(engine, spec, molecules, params)
    return np.concatenate([blocks[k] for k in sorted(blocks)])


__all__ = [
    "ENGINE_METHODS",
    "check_engine",
    "engine_residual_blocks",
    "engine_residuals",
    "needs_relaxation",
]
