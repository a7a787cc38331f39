"""Mode matching: pair each QM normal mode with the MM mode it overlaps most.

Sorted order compares the k-th lowest MM frequency with the k-th lowest QM
one; when the force field reorders modes (a C-H bend below a C-F stretch,
or a transition-state force field whose reaction-coordinate mode is not the
lowest), that comparison measures the wrong thing. Here the assignment
maximises the total squared overlap |<q_i|m_j>|^2 of mass-weighted
eigenvectors (Hungarian algorithm), after superimposing the MM geometry on
the QM one. The assignment is computed on the host, outside the
differentiated path, and refreshed between solver phases
(:func:`match_modes` returns a new ObjectiveSpec).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from q2jax.energy import hessian
from q2jax.errors import InputError
from q2jax.relax import _solve_stationary
from q2jax.vibrations import normal_modes


def kabsch_rotation(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Rotation R minimising sum w |R (x - x_c) - (y - y_c)|^2 (proper, det +1)."""
    w = np.ones(len(x)) if weights is None else np.asarray(weights, float)
    xc = x - np.average(x, axis=0, weights=w)
    yc = y - np.average(y, axis=0, weights=w)
    h = (xc * w[:, None]).T @ yc
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def overlap_assignment(mm_modes: np.ndarray, qm_modes: np.ndarray) -> np.ndarray:
    """For each QM mode (column of ``qm_modes``) the index of its MM mode.

    Both are (3N, K) orthonormal mass-weighted modes in the same frame.
    Maximises the total squared overlap (a permutation: every MM mode used once).
    """
    ov = (qm_modes.T @ mm_modes) ** 2
    rows, cols = scipy.optimize.linear_sum_assignment(-ov)
    perm = np.empty(qm_modes.shape[1], dtype=np.int32)
    perm[rows] = cols
    return perm


def overlap_matrix(mm_modes: np.ndarray, qm_modes: np.ndarray) -> np.ndarray:
    """|<q_i|m_j>|^2 (rows QM modes, columns MM modes)."""
    return (qm_modes.T @ mm_modes) ** 2


def _mm_modes_batch(fp, coords, masses, mask, terms, orders, ff_static):
    form, settings, n_modes, opts, relaxed = ff_static

    def one(x0, m, msk, t, order):
        def e_fn(x):
            from q2jax.energy import energy

            return energy(fp, x, t, form, settings)

        def h_fn(x):
            return hessian(fp, x, t, form, settings)

        x = _solve_stationary(e_fn, h_fn, x0, msk, order, opts)[0] if relaxed else x0
        w, v = normal_modes(h_fn(x), x, m, n_modes, msk)
        return x, w, v

    return jax.vmap(one)(coords, masses, mask, terms, orders)


_mm_modes_jit = jax.jit(_mm_modes_batch, static_argnums=(6,))


def mm_modes(params, spec):
    """(geometries, eigenvalues, mass-weighted modes) of every molecule of a spec,
    at the geometry where its frequencies are evaluated."""
    ff = spec.forcefield
    relaxed = spec.options.frequencies_at == "relaxed"
    static = (ff.form, ff.settings, spec.n_modes, spec.options.relax, relaxed)
    s = spec.system
    return _mm_modes_jit(ff.full_params(params), s.coords, s.masses, s.atom_mask, s.terms,
              spec.saddle_order, static)


def match_modes(params, spec, qm_modes: np.ndarray | None = None):
    """A copy of ``spec`` whose frequency references are compared mode by mode
    with the MM modes of largest overlap (instead of sorted order).

    ``qm_modes`` (M, 3N, L) defaults to the spec's eigenmatrix modes; build
    the spec from a ReferenceSet with EigenmatrixData (weight 0 is fine) or
    pass them explicitly.
    """
    r = spec.refs
    if r.freq_values is None:
        raise InputError("mode matching needs frequency references")
    q = (
        qm_modes
        if qm_modes is not None
        else (None if r.eig_modes is None else np.asarray(r.eig_modes))
    )
    if q is None:
        raise InputError("mode matching needs the QM normal modes: add EigenmatrixData (weight 0 "
                         "is fine) or pass qm_modes")
    x, _, v = jax.tree_util.tree_map(np.asarray, mm_modes(params, spec))
    ref_x = np.asarray(spec.system.coords)
    masses = np.asarray(spec.system.masses)
    mask = np.asarray(spec.system.atom_mask)
    index = np.asarray(r.freq_index).copy()
    for i in range(x.shape[0]):
        n = int(mask[i].sum())
        rot = kabsch_rotation(x[i][:n], ref_x[i][:n], masses[i][:n])
        # rotate MM modes into the QM frame: each atom's 3-vector by rot
        k = v.shape[-1]
        vm = v[i].reshape(-1, 3, k)
        vm = np.einsum("ab,nbk->nak", rot, vm).reshape(-1, k)
        valid = np.abs(np.asarray(r.freq_weights[i])) > 0
        nvib = int(valid.sum()) if valid.any() else k
        nvib = max(nvib, int(np.count_nonzero(np.linalg.norm(q[i], axis=0) > 0.5)))
        perm = overlap_assignment(vm[:, :nvib], q[i][:, :nvib])
        index[i, :nvib] = perm
    return eqx.tree_at(lambda s: s.refs.freq_index, spec, jnp.asarray(index, jnp.int32))


__all__ = ["kabsch_rotation", "overlap_assignment", "overlap_matrix", "mm_modes", "match_modes"]
