"""Harmonic vibrational analysis: mass weighting, Eckart projection,
frequencies (cm^-1, imaginary as negative), normal modes and the Q2MM
eigenmatrix.

Hessians are in kcal/(mol Å^2), masses in amu; eigenvalues of the
mass-weighted Hessian in kcal/(mol Å^2 amu). Only eigenvalues are
differentiated (dλ_i = v_iᵀ dH v_i), so gradients stay finite when modes
are exactly degenerate. Padded atoms (``atom_mask`` False) are projected out
with the rigid-body motions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from q2jax import linalg
from q2jax.units import EIGENVALUE_TO_CM1

_FREQ_GRAD_FLOOR = 1e-6  # |λ| below which dν/dλ is capped (ν ≈ 0.1 cm^-1)


def mass_weight(
    hessian: Float[Array, "n3 n3"], masses: Float[Array, " n"]
) -> Float[Array, "n3 n3"]:
    """H_ij / sqrt(m_i m_j)."""
    inv_sqrt_m = jnp.repeat(1.0 / jnp.sqrt(masses), 3)
    return hessian * inv_sqrt_m[:, None] * inv_sqrt_m[None, :]


def rigid_body_vectors(
    coords: Float[Array, "n 3"],
    masses: Float[Array, " n"],
    atom_mask: Bool[Array, " n"] | None = None,
) -> tuple[Float[Array, "n3 3"], Float[Array, "n3 3"]]:
    """Mass-weighted translation (orthonormal) and rotation (orthogonal to the
    translations, not normalised) vectors of the real atoms."""
    n = coords.shape[0]
    m = masses if atom_mask is None else jnp.where(atom_mask, masses, 0.0)
    sqrt_m = jnp.sqrt(m)
    total = jnp.sum(m)
    com = jnp.sum(m[:, None] * coords, axis=0) / total
    r = coords - com
    eye = jnp.eye(3)
    trans = (sqrt_m[:, None, None] * eye[None, :, :]).reshape(3 * n, 3) / jnp.sqrt(total)
    # rotation about axis a moves atom i by e_a x r_i
    rot = jnp.cross(eye[None, :, :], r[:, None, :])  # (n, axis, xyz)
    rot = (sqrt_m[:, None, None] * jnp.swapaxes(rot, 1, 2)).reshape(3 * n, 3)
    return trans, rot


def internal_projector(
    coords: Float[Array, "n 3"],
    masses: Float[Array, " n"],
    atom_mask: Bool[Array, " n"] | None = None,
) -> Float[Array, "n3 n3"]:
    """Eckart projector onto vibrations of the real atoms (mass-weighted space):
    P = D - T Tᵀ - R (RᵀR + εI)⁻¹ Rᵀ, D the diagonal mask of real-atom
    coordinates. The ε regularisation makes it exact for linear molecules too
    (their zero rotation vector drops out)."""
    n = coords.shape[0]
    mask3 = jnp.ones(3 * n) if atom_mask is None else jnp.repeat(atom_mask.astype(coords.dtype), 3)
    trans, rot = rigid_body_vectors(coords, masses, atom_mask)
    gram = rot.T @ rot
    eps = 1e-12 * (jnp.trace(gram) + 1.0)
    proj_rot = rot @ linalg.solve(gram + eps * jnp.eye(3), rot.T)
    return jnp.diag(mask3) - trans @ trans.T - proj_rot


DEGENERACY_RTOL = 1e-5
"""Eigenvalues closer than this (relative) are treated as one degenerate level
when differentiating eigenvectors (second derivatives of frequencies)."""


@jax.custom_jvp
def eigh_differentiable(a):
    """(eigenvalues, eigenvectors) of a symmetric matrix, differentiable (see the JVP)."""
    return linalg.eigh(a)


@eigh_differentiable.defjvp
def _eigh_jvp(primals, tangents):
    """Eigen-decomposition derivative that stays finite at (near-)degeneracies:
    couplings between eigenvalues closer than DEGENERACY_RTOL are dropped, the
    degenerate-perturbation-theory limit for perturbations that keep the
    degeneracy (e.g. symmetric force-field changes)."""
    (a,), (da,) = primals, tangents
    w, v = linalg.eigh(a)
    da = 0.5 * (da + da.T)
    vdv = v.T @ da @ v
    gap = w[None, :] - w[:, None]  # gap[j, i] = w_i - w_j
    scale = 0.5 * (jnp.abs(w[None, :]) + jnp.abs(w[:, None]))
    far = jnp.abs(gap) > DEGENERACY_RTOL * scale + 1e-300
    f = jnp.where(far, 1.0 / jnp.where(far, gap, 1.0), 0.0)
    dv = v @ (f * vdv)
    return (w, v), (jnp.diagonal(vdv), dv)


@jax.custom_jvp
def eigvalsh(a: Float[Array, "n n"]) -> Float[Array, " n"]:
    """Eigenvalues (ascending) of a symmetric matrix, with the first-order
    perturbation derivative dλ_i = v_iᵀ dA v_i (finite at degeneracies; second
    derivatives drop couplings within (near-)degenerate levels)."""
    return linalg.eigh(a)[0]


@eigvalsh.defjvp
def _eigvalsh_jvp(primals, tangents):
    (a,), (da,) = primals, tangents
    w, v = eigh_differentiable(a)
    da = 0.5 * (da + da.T)
    dw = jnp.einsum("ji,jk,ki->i", v, da, v)
    return w, dw


def _shifted_internal_matrix(hessian, coords, masses, atom_mask):
    hmw = mass_weight(hessian, masses)
    proj = internal_projector(coords, masses, atom_mask)
    h_int = proj @ hmw @ proj
    h_int = 0.5 * (h_int + h_int.T)
    # external (and padded) directions get a value above every internal eigenvalue
    bound = jax.lax.stop_gradient(jnp.max(jnp.sum(jnp.abs(h_int), axis=1)))
    shift = 10.0 * bound + 1.0
    return h_int + shift * (jnp.eye(hmw.shape[0]) - proj)


def vibrational_eigenvalues(
    hessian: Float[Array, "n3 n3"],
    coords: Float[Array, "n 3"],
    masses: Float[Array, " n"],
    n_vib: int,
    atom_mask: Bool[Array, " n"] | None = None,
) -> Float[Array, " n_vib"]:
    """The ``n_vib`` internal eigenvalues (ascending) of the Eckart-projected,
    mass-weighted Hessian, kcal/(mol Å^2 amu). ``n_vib`` is static (3N-6 or
    3N-5 of the real atoms; in a padded batch, the largest; surplus entries
    of smaller molecules hold a large sentinel value and must be masked)."""
    return eigvalsh(_shifted_internal_matrix(hessian, coords, masses, atom_mask))[:n_vib]


@jax.custom_jvp
def eigenvalue_to_frequency(eigenvalue: Array) -> Array:
    """Signed frequency in cm^-1: sign(λ) sqrt(|λ|) * 108.59 (λ in kcal/(mol Å^2 amu))."""
    return jnp.sign(eigenvalue) * jnp.sqrt(jnp.abs(eigenvalue)) * EIGENVALUE_TO_CM1


@eigenvalue_to_frequency.defjvp
def _eig_to_freq_jvp(primals, tangents):
    (lam,), (dlam,) = primals, tangents
    nu = eigenvalue_to_frequency(lam)
    slope = 0.5 * EIGENVALUE_TO_CM1 / jnp.sqrt(jnp.maximum(jnp.abs(lam), _FREQ_GRAD_FLOOR))
    return nu, slope * dlam


SMOOTH_BELOW_CM1 = 50.0
"""Below this |frequency| the fitting map from eigenvalue to frequency is a
smooth odd cubic instead of sqrt (whose slope is infinite at zero)."""


def eigenvalue_to_frequency_smooth(eigenvalue: Array, below_cm1: float = SMOOTH_BELOW_CM1) -> Array:
    """Signed frequency (cm^-1) for fitting: exactly sign(λ) sqrt(|λ|) * 108.59 for
    |ν| >= ``below_cm1``, and the C¹ odd cubic g(λ) = (5/4) λ/√λc − λ³/(4 λc^(5/2))
    (in sqrt-eigenvalue units) below it, so that a mode near zero frequency (an
    unparametrised torsion at its start, a nearly flat mode) has a finite,
    moderate derivative instead of an infinite one. Reported frequencies always
    use :func:`eigenvalue_to_frequency`."""
    lam_c = (below_cm1 / EIGENVALUE_TO_CM1) ** 2
    a = jnp.abs(eigenvalue)
    big = a >= lam_c
    safe = jnp.where(big, a, lam_c)
    root = jnp.sqrt(safe)
    lam = eigenvalue
    cubic = 1.25 * lam / jnp.sqrt(lam_c) - 0.25 * lam**3 / lam_c**2.5  # odd: no sign() needed
    return jnp.where(big, jnp.sign(lam) * root, cubic) * EIGENVALUE_TO_CM1


def frequencies(
    hessian: Float[Array, "n3 n3"],
    coords: Float[Array, "n 3"],
    masses: Float[Array, " n"],
    n_vib: int,
    atom_mask: Bool[Array, " n"] | None = None,
) -> Float[Array, " n_vib"]:
    """Vibrational frequencies in cm^-1, ascending, imaginary ones negative."""
    lam = vibrational_eigenvalues(hessian, coords, masses, n_vib, atom_mask)
    return eigenvalue_to_frequency(lam)


def normal_modes(
    hessian: Float[Array, "n3 n3"],
    coords: Float[Array, "n 3"],
    masses: Float[Array, " n"],
    n_vib: int,
    atom_mask: Bool[Array, " n"] | None = None,
) -> tuple[Float[Array, " n_vib"], Float[Array, "n3 n_vib"]]:
    """(eigenvalues, mass-weighted orthonormal eigenvectors) of the internal
    modes. Not for differentiation (eigenvectors of degenerate modes are
    arbitrary within their subspace)."""
    w, v = linalg.eigh(_shifted_internal_matrix(hessian, coords, masses, atom_mask))
    return w[:n_vib], v[:, :n_vib]


def cartesian_displacements(modes_mw: Float[Array, "n3 k"], masses: Float[Array, " n"]) -> Array:
    """Cartesian normal-mode displacements M^(-1/2) v, each column normalised."""
    d = modes_mw / jnp.repeat(jnp.sqrt(masses), 3)[:, None]
    return d / jnp.linalg.norm(d, axis=0, keepdims=True)


def eigenmatrix(
    hessian_mm: Float[Array, "n3 n3"], modes_qm_mw: Float[Array, "n3 k"], masses: Float[Array, " n"]
) -> Float[Array, "k k"]:
    """Q2MM eigenmatrix Qᵀ M^(-1/2) H_MM M^(-1/2) Q, Q the QM mass-weighted
    normal modes (columns). Its diagonal is compared with the QM eigenvalues,
    its off-diagonal with zero."""
    hmw = mass_weight(hessian_mm, masses)
    return modes_qm_mw.T @ hmw @ modes_qm_mw


def eigenmatrix_diagonal(hessian_mm, modes_qm_mw, masses) -> Array:
    """diag(Qᵀ H_MM,mw Q) without forming the full matrix."""
    hmw = mass_weight(hessian_mm, masses)
    return jnp.einsum("ik,ij,jk->k", modes_qm_mw, hmw, modes_qm_mw)


def n_vibrations(n_atoms: int, linear: bool = False) -> int:
    return 3 * n_atoms - (5 if linear else 6)


__all__ = [
    "mass_weight",
    "rigid_body_vectors",
    "internal_projector",
    "eigh_differentiable",
    "eigvalsh",
    "vibrational_eigenvalues",
    "eigenvalue_to_frequency",
    "eigenvalue_to_frequency_smooth",
    "frequencies",
    "normal_modes",
    "cartesian_displacements",
    "eigenmatrix",
    "eigenmatrix_diagonal",
    "n_vibrations",
]
