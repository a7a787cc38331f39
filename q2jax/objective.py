"""The objective: a frozen ObjectiveSpec and pure, jittable
``residuals(params, spec)`` and ``loss(params, spec)``.

For each molecule (vmapped over a padded batch) the MM model is evaluated
at a geometry chosen by the spec's options:

- ``frequencies_at="relaxed"`` (default): frequencies, energies, geometry
  and Cartesian references at the geometry relaxed with the force field
  being fitted (``q2jax.relax``, implicit derivatives). This is the honest
  choice: a frequency means something only at a stationary point.
- ``frequencies_at="reference"``: at the QM geometry, as the original Q2MM
  does; add ``stationarity_weight`` > 0 to penalise the MM gradient there.
- ``hessian_at``: where Hessian-element and eigenmatrix references are
  evaluated ("reference" by default: the QM normal modes live in the QM frame).

The relaxation starts at the reference geometry, or at ``spec.relax_start``
(:meth:`ObjectiveSpec.with_relax_start`): host-side loops warm-start each
evaluation at the minima of the previous one (:func:`loss_and_coords` returns
them), so a few Newton steps suffice. Frequency references may leave out one
MM mode per molecule, the partner of a given QM mode (``FrequencyData.drop_mode``,
e.g. a TSFF's reaction coordinate).

``loss = sum(residuals**2)``; the residual vector includes the L2 rows
sqrt(λ) (p − p_ref) / scale, so least-squares solvers see the same objective.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from q2jax import linalg
from q2jax.energy import energy, gradient, hessian
from q2jax.errors import InputError
from q2jax.forcefield import ForceField
from q2jax.reference import ReferenceArrays, ReferenceSet, build_reference_arrays
from q2jax.relax import RelaxOptions, relax
from q2jax.system import System, build_batch
from q2jax.units import RAD_TO_DEG
from q2jax.vibrations import (
    _shifted_internal_matrix,
    eigenmatrix,
    eigenvalue_to_frequency_smooth,
    eigh_differentiable,
    eigvalsh,
    vibrational_eigenvalues,
)

PLACES = ("relaxed", "reference")


class ObjectiveOptions(NamedTuple):
    frequencies_at: str = "relaxed"
    hessian_at: str = "reference"
    stationarity: bool = False
    relax: RelaxOptions = RelaxOptions()


class ObjectiveSpec(eqx.Module):
    """Everything the loss needs, frozen: force-field template (fixed values,
    static metadata), the padded molecule batch, reference arrays, L2 strength
    and reference parameters, per-molecule stationarity weights and saddle
    orders (0 minimum, 1 transition state)."""

    forcefield: ForceField
    system: System
    refs: ReferenceArrays
    lam: Float[Array, ""]
    p_ref: Float[Array, " p"]
    reg_scale: Float[Array, " p"]
    stationarity_weights: Float[Array, " M"]
    saddle_order: Array
    internal_basis: Float[Array, "M N3 L"] | None
    relax_start: Float[Array, "M N 3"] | None
    n_modes: int = eqx.field(static=True)
    names: tuple[str, ...] = eqx.field(static=True)
    options: ObjectiveOptions = eqx.field(static=True, default=ObjectiveOptions())

    @property
    def n_molecules(self) -> int:
        return len(self.names)

    def with_lambda(self, lam) -> ObjectiveSpec:
        return eqx.tree_at(lambda s: s.lam, self, jnp.asarray(lam, jnp.float64))

    def with_p_ref(self, p_ref) -> ObjectiveSpec:
        return eqx.tree_at(lambda s: s.p_ref, self, jnp.asarray(p_ref, jnp.float64))

    def with_relax_start(self, coords) -> ObjectiveSpec:
        """The same objective with the MM relaxation starting at ``coords`` (M, N, 3) Å
        (a warm start, e.g. the minima of the previous parameters) instead of the
        reference geometry; references and the reference geometry are unchanged.
        The minimum reached is the same as long as it stays in the same basin."""
        c = jnp.asarray(coords, jnp.float64)
        if c.shape != self.system.coords.shape:
            raise InputError(
                f"relax_start has shape {c.shape}, expected {self.system.coords.shape}"
            )
        return eqx.tree_at(lambda s: s.relax_start, self, c, is_leaf=lambda x: x is None)


def make_objective(
    forcefield: ForceField,
    refs: ReferenceSet,
    *,
    lam: float = 0.0,
    p_ref=None,
    reg_scale=None,
    frequencies_at: str = "relaxed",
    hessian_at: str = "reference",
    stationarity_weight: float | Sequence[float] = 0.0,
    transition_state: bool | Sequence[bool] = False,
    relax_options: RelaxOptions = RelaxOptions(),
    n_atoms: int | None = None,
    system: System | None = None,
) -> ObjectiveSpec:
    """Freeze a force field and a reference set into an ObjectiveSpec.

    ``p_ref`` defaults to the force field's current (starting) parameters.
    ``transition_state`` marks molecules whose relaxation seeks a first-order
    saddle (TS force fields with natural eigenvalues, Method D/E). ``system``
    supplies ready-made stacked term tables (e.g. ``Mm3ForceField.batch()``, whose
    MM3* assignment depends on more than atom types); by default they are built
    from the force field's atom-type keys.
    """
    if frequencies_at not in PLACES or hessian_at not in PLACES:
        raise InputError(f"frequencies_at / hessian_at must be one of {PLACES}")
    refs.validate()
    mols = refs.molecules
    if system is None:
        batch = build_batch(forcefield, mols, n_atoms=n_atoms)
    else:
        batch = system
        if batch.coords.ndim != 3 or batch.coords.shape[0] != len(mols):
            raise InputError(f"system must be a stacked batch of {len(mols)} molecules")
    n_pad = batch.coords.shape[1]
    n_modes = max(m.n_vibrations for m in mols)
    arrays = build_reference_arrays(refs, n_pad, n_modes)
    m = len(mols)
    sw = np.broadcast_to(np.asarray(stationarity_weight, float), (m,))
    ts = np.broadcast_to(np.asarray(transition_state, bool), (m,))
    p0 = forcefield.params if p_ref is None else jnp.asarray(p_ref, jnp.float64)
    if p0.shape != forcefield.params.shape:
        raise InputError(f"p_ref has shape {p0.shape}, expected {forcefield.params.shape}")
    scale = jnp.ones_like(p0) if reg_scale is None else jnp.asarray(reg_scale, jnp.float64)
    basis = None
    if frequencies_at == "reference":
        basis = jnp.asarray(_internal_bases(batch, [m.n_vibrations for m in mols], n_modes))
    return ObjectiveSpec(
        forcefield=forcefield,
        system=batch,
        refs=arrays,
        lam=jnp.asarray(float(lam)),
        p_ref=p0,
        reg_scale=scale,
        stationarity_weights=jnp.asarray(sw),
        saddle_order=jnp.asarray(ts.astype(np.int32)),
        internal_basis=basis,
        relax_start=None,
        n_modes=n_modes,
        names=tuple(mm.name for mm in mols),
        options=ObjectiveOptions(frequencies_at, hessian_at, bool(np.any(sw > 0)), relax_options),
    )


def _internal_bases(batch: System, n_vib: list[int], n_modes: int) -> np.ndarray:
    """Orthonormal bases (3N, L) of the vibrational space of each molecule at its
    reference geometry (host side, once): with the geometry fixed, the Eckart
    projection is a constant, and the frequencies are the eigenvalues of the
    L x L matrix Bᵀ M^(-1/2) H M^(-1/2) B. Columns beyond a molecule's own
    mode count are zero (they are shifted out of the sorted spectrum)."""
    from q2jax.vibrations import internal_projector

    coords, masses, mask = (np.asarray(x) for x in (batch.coords, batch.masses, batch.atom_mask))
    out = np.zeros((coords.shape[0], coords.shape[1] * 3, n_modes))
    for i, k in enumerate(n_vib):
        p = np.asarray(
            internal_projector(jnp.asarray(coords[i]), jnp.asarray(masses[i]), jnp.asarray(mask[i]))
        )
        w, v = np.linalg.eigh(0.5 * (p + p.T))
        out[i, :, :k] = v[:, -k:]  # eigenvalue 1: the vibrational subspace
    return out


def _reference_matrix(h, masses, basis):
    """Bᵀ M^(-1/2) H M^(-1/2) B with dead columns shifted above the spectrum."""
    from q2jax.vibrations import mass_weight

    m = basis.T @ mass_weight(h, masses) @ basis
    m = 0.5 * (m + m.T)
    live = jnp.sum(basis * basis, axis=0) > 0.5
    bound = jax.lax.stop_gradient(jnp.max(jnp.sum(jnp.abs(m), axis=1)))
    return m + jnp.diag(jnp.where(live, 0.0, 10.0 * bound + 1.0))


def _reference_eigenvalues(h, masses, basis):
    """Vibrational eigenvalues at the fixed reference geometry (see _internal_bases)."""
    return eigvalsh(_reference_matrix(h, masses, basis))


def _without_drop_partner(lam, modes_mw, x, a: _MolArgs):
    """``lam`` (L, ascending) with the eigenvalue of the MM mode that overlaps the
    molecule's drop mode most removed (later entries shift down; the last repeats).
    ``modes_mw`` (3N, L): mass-weighted MM modes at ``x``, rotated into the reference
    frame (``a.coords``) before the overlap. The choice carries no gradient."""
    r = a.refs
    n, n_modes = x.shape[0], lam.shape[0]
    w = jnp.where(a.atom_mask, a.masses, 0.0)
    rot = _superposing_rotation(jax.lax.stop_gradient(x), a.coords, w)
    v = jnp.einsum("ab,nbk->nak", rot, modes_mw.reshape(n, 3, n_modes)).reshape(3 * n, n_modes)
    overlap = (r.freq_drop_modes @ jax.lax.stop_gradient(v)) ** 2
    order = jnp.arange(n_modes)
    j = jnp.argmax(jnp.where(order < r.freq_n_vib, overlap, -1.0))
    has = jnp.any(r.freq_drop_modes != 0.0)
    return lam[jnp.where(has & (order >= j), jnp.minimum(order + 1, n_modes - 1), order)]


# --- per-molecule evaluation ------------------------------------------------------------


def _horn_matrix(x: Array, y: Array, w: Array) -> tuple[Array, Array, Array]:
    """Horn's 4x4 quaternion matrix N of the weighted, centred point sets (its top
    eigenvector is the rotation taking x onto y), and the centred sets."""
    n = jnp.sum(w)
    xc = (x - jnp.sum(w[:, None] * x, 0) / n) * (w[:, None] > 0)
    yc = (y - jnp.sum(w[:, None] * y, 0) / n) * (w[:, None] > 0)
    r = (w[:, None] * xc).T @ yc
    sxx, sxy, sxz = r[0]
    syx, syy, syz = r[1]
    szx, szy, szz = r[2]
    k = jnp.array(
        [
            [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
            [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
            [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
            [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz],
        ]
    )
    return k, xc, yc


def _kabsch_rmsd(x: Array, y: Array, mask: Array) -> Array:
    """RMSD after optimal superposition (quaternion method: only the top
    eigenvalue of a 4x4 matrix is needed, so it differentiates cleanly)."""
    w = mask.astype(x.dtype)
    k, xc, yc = _horn_matrix(x, y, w)
    lam_max = eigvalsh(k)[-1]
    msd = (jnp.sum(xc * xc) + jnp.sum(yc * yc) - 2.0 * lam_max) / jnp.sum(w)
    return jnp.sqrt(jnp.maximum(msd, 1e-20))


def _superposing_rotation(x: Array, y: Array, w: Array) -> Array:
    """Proper rotation R minimising sum_i w_i |R (x_i - x_c) - (y_i - y_c)|^2
    (Horn's quaternion; differentiable while the best superposition is unique)."""
    k, _, _ = _horn_matrix(x, y, w)
    a, b, c, d = eigh_differentiable(k)[1][:, -1]
    return jnp.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (c * b + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
            [2 * (d * b - a * c), 2 * (d * c + a * b), a * a - b * b - c * c + d * d],
        ]
    )


def _hessian_in_reference_frame(h: Array, x: Array, x_ref: Array, masses: Array,
                                mask: Array) -> Array:
    """The Cartesian Hessian at geometry ``x`` expressed in the frame of ``x_ref``:
    B H Bᵀ, B = blockdiag(R), R the mass-weighted superposition of x onto x_ref. The
    QM modes and Hessian live in the QM frame; a relaxed MM geometry is free to
    rotate (the relaxation's path decides by how much), so Hessian-element and
    eigenmatrix references at a relaxed geometry compare in the QM frame."""
    rot = _superposing_rotation(x, x_ref, masses * mask)
    n = x.shape[0]
    h4 = jnp.einsum("ac,icjd,bd->iajb", rot, h.reshape(n, 3, n, 3), rot)
    return h4.reshape(3 * n, 3 * n)


def _geometry_values(coords, atoms, kind, active):
    """Bond (Å), angle (deg) or torsion (deg) for each row of ``atoms`` (G, 4);
    rows that are not ``active`` (padding) give finite dummies."""
    from q2jax.terms.geometry import angles, dihedrals, distances

    r = distances(coords, atoms[:, :2], active & (kind == 0))
    ang = angles(coords, atoms[:, :3], active & (kind == 1)) * RAD_TO_DEG
    tor = dihedrals(coords, atoms, active & (kind == 2)) * RAD_TO_DEG
    return jnp.where(kind == 0, r, jnp.where(kind == 1, ang, tor))


class _MolArgs(NamedTuple):
    coords: Array
    masses: Array
    atom_mask: Array
    terms: object
    refs: ReferenceArrays
    stat_w: Array
    saddle: Array
    basis: Array | None
    relax_start: Array | None


def _molecule_blocks(fp, a: _MolArgs, spec_static) -> tuple[dict, Array, Array]:
    """Residual blocks of one molecule, its MM energy at the evaluation geometry and
    the evaluation geometry (the relaxed one where the options ask for it)."""
    ff, n_modes, opts = spec_static
    r = a.refs

    def e_fn(x):
        return energy(fp, x, a.terms, ff.form, ff.settings)

    def hess(x):
        return hessian(fp, x, a.terms, ff.form, ff.settings)

    need_relaxed = (
        opts.frequencies_at == "relaxed"
        and (
            r.freq_values is not None
            or r.geom_values is not None
            or r.cart_values is not None
            or r.energy_values is not None
        )
        or (
            opts.hessian_at == "relaxed" and (r.eig_values is not None or r.hess_values is not None)
        )
    )
    if need_relaxed:
        x_start = a.coords if a.relax_start is None else a.relax_start
        x_rel = relax(
            fp, x_start, a.terms, a.atom_mask, ff.form, ff.settings, opts.relax, a.saddle
        ).coords
    else:
        x_rel = a.coords
    x_eval = x_rel if opts.frequencies_at == "relaxed" else a.coords
    x_hess = x_rel if opts.hessian_at == "relaxed" else a.coords

    blocks: dict[str, Array] = {}
    h_eval = None
    if r.freq_values is not None:
        h_eval = hess(x_eval)
        if r.freq_drop_modes is None:
            if a.basis is not None:  # fixed reference geometry: constant Eckart basis
                lam = _reference_eigenvalues(h_eval, a.masses, a.basis)
            else:
                lam = vibrational_eigenvalues(h_eval, x_eval, a.masses, n_modes, a.atom_mask)
        else:
            if a.basis is not None:
                m = _reference_matrix(h_eval, a.masses, a.basis)
                lam = eigvalsh(m)
                modes = a.basis @ linalg.eigh(jax.lax.stop_gradient(m))[1]
            else:
                m = _shifted_internal_matrix(h_eval, x_eval, a.masses, a.atom_mask)
                lam = eigvalsh(m)[:n_modes]
                modes = linalg.eigh(jax.lax.stop_gradient(m))[1][:, :n_modes]
            lam = _without_drop_partner(lam, modes, x_eval, a)
        nu = eigenvalue_to_frequency_smooth(lam)[r.freq_index]
        blocks["frequency"] = r.freq_weights * (nu - r.freq_values)
    if r.eig_values is not None or r.hess_values is not None:
        h = h_eval if (h_eval is not None and x_hess is x_eval) else hess(x_hess)
        if x_hess is not a.coords:  # relaxed geometry: compare in the QM frame
            h = _hessian_in_reference_frame(h, x_hess, a.coords, a.masses, a.atom_mask)
        if r.eig_values is not None:
            em = eigenmatrix(h, r.eig_modes, a.masses)
            blocks["eigenmatrix"] = r.eig_weights * (jnp.diagonal(em) - r.eig_values)
            off = em - jnp.diag(jnp.diagonal(em))
            wmask = r.eig_weights[:, None] * r.eig_weights[None, :] > 0
            iu = jnp.triu_indices(n_modes, 1)
            blocks["eigenmatrix_offdiagonal"] = (r.eig_offdiag_weight * jnp.where(wmask, off, 0.0))[
                iu
            ]
        if r.hess_values is not None:
            iu = jnp.triu_indices(h.shape[0])
            blocks["hessian"] = (r.hess_weights * (h - r.hess_values))[iu]
    if r.geom_values is not None:
        vals = _geometry_values(x_eval, r.geom_atoms, r.geom_kind, r.geom_weights != 0)
        diff = vals - r.geom_values
        diff = jnp.where(r.geom_kind == 2, (diff + 180.0) % 360.0 - 180.0, diff)
        blocks["geometry"] = r.geom_weights * diff
    if r.cart_values is not None:
        blocks["cartesian"] = (r.cart_weights * _kabsch_rmsd(x_eval, r.cart_values, a.atom_mask))[
            None
        ]
    if opts.stationarity:
        g = gradient(fp, a.coords, a.terms, ff.form, ff.settings)
        blocks["stationarity"] = (a.stat_w * jnp.where(a.atom_mask[:, None], g, 0.0)).reshape(-1)
    e_mm = e_fn(x_eval) if r.energy_values is not None else jnp.zeros(())
    return blocks, e_mm, x_eval


def residual_blocks_and_coords(
    params: Float[Array, " p"], spec: ObjectiveSpec
) -> tuple[dict[str, Array], Float[Array, "M N 3"]]:
    """(:func:`residual_blocks`, the geometries the frequencies were evaluated at):
    the MM minima for ``frequencies_at="relaxed"`` (warm starts for the next
    evaluation, see :meth:`ObjectiveSpec.with_relax_start`), else the reference ones."""
    ff = spec.forcefield
    fp = ff.full_params(params)
    s = spec.system
    args = _MolArgs(
        s.coords,
        s.masses,
        s.atom_mask,
        s.terms,
        spec.refs,
        spec.stationarity_weights,
        spec.saddle_order,
        spec.internal_basis,
        spec.relax_start,
    )
    static = (ff, spec.n_modes, spec.options)
    blocks, e_mm, x_eval = jax.vmap(lambda a: _molecule_blocks(fp, a, static))(args)
    out = {k: v.reshape(-1) for k, v in blocks.items()}
    r = spec.refs
    if r.energy_values is not None:
        g = r.energy_groups * (r.energy_weights > 0)[:, None]
        counts = jnp.maximum(jnp.sum(g, 0), 1.0)

        def centred(e):
            return e - g @ (g.T @ e / counts)

        out["energy"] = r.energy_weights * (centred(e_mm) - centred(r.energy_values))
    if spec.forcefield.n_params:
        # sqrt(λ) rows for least-squares solvers; the derivative at λ = 0 is taken as 0
        # (loss() adds λ||.||² directly, so its λ-derivative is exact everywhere)
        pos = spec.lam > 0
        root = jnp.where(pos, jnp.sqrt(jnp.where(pos, spec.lam, 1.0)), 0.0)
        out["regularization"] = root * (params - spec.p_ref) / spec.reg_scale
    return out, jax.lax.stop_gradient(x_eval)


def residual_blocks(params: Float[Array, " p"], spec: ObjectiveSpec) -> dict[str, Array]:
    """Weighted residuals by reference kind (each block flattened over molecules)."""
    return residual_blocks_and_coords(params, spec)[0]


def residuals(params: Float[Array, " p"], spec: ObjectiveSpec) -> Float[Array, " r"]:
    """The weighted residual vector (all blocks, L2 rows last)."""
    blocks = residual_blocks(params, spec)
    return jnp.concatenate([blocks[k] for k in sorted(blocks)])


def loss(params: Float[Array, " p"], spec: ObjectiveSpec) -> Float[Array, ""]:
    """sum(residuals^2) = data misfit + λ ||(p - p_ref)/scale||^2."""
    return loss_and_coords(params, spec)[0]


def loss_and_coords(
    params: Float[Array, " p"], spec: ObjectiveSpec
) -> tuple[Float[Array, ""], Float[Array, "M N 3"]]:
    """(:func:`loss`, evaluation geometries) -- for ``jax.value_and_grad(...,
    has_aux=True)`` in host-side loops that warm-start the next relaxation."""
    blocks, coords = residual_blocks_and_coords(params, spec)
    data = sum(jnp.sum(v * v) for k, v in blocks.items() if k != "regularization")
    if "regularization" not in blocks:
        return data, coords
    d = (params - spec.p_ref) / spec.reg_scale
    return data + spec.lam * jnp.sum(d * d), coords


def loss_breakdown(params, spec: ObjectiveSpec) -> dict[str, float]:
    """Sum of squared residuals per block (host side, for reports)."""
    blocks = residual_blocks(jnp.asarray(params), spec)
    return {k: float(jnp.sum(v * v)) for k, v in blocks.items()}


__all__ = [
    "ObjectiveOptions",
    "ObjectiveSpec",
    "make_objective",
    "residual_blocks",
    "residual_blocks_and_coords",
    "residuals",
    "loss",
    "loss_and_coords",
    "loss_breakdown",
]
