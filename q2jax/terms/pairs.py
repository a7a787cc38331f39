"""Nonbonded pair terms over reduced sites (MacroModel MM3*) or plain atoms.

A pair term holds the atoms (i, p_i, j, p_j), p the site parents
(``q2jax.terms.sites``; p_i = i for a plain atom), and
theta = [r*, eps, vdW scale (0 when absent), q_i q_j * elec scale, f_i, f_j, r_on, r_off].
Its energy phi(d_site, d_real) depends on d_site = s_j - s_i (van der Waals and
charges act between the sites) and d_real = x_j - x_i (the van der Waals taper
acts on the real distance). Both are linear in the four positions, d = C x,
so the term's 12 x 12 Hessian is C^T (d2 phi / dd2) C from a 6 x 6 one.
Units: Å, kcal/mol, e.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from q2jax.terms.coulomb import coulomb, coulomb_in_r2
from q2jax.terms.sites import vdw_taper
from q2jax.terms.vdw import (
    lennard_jones,
    lennard_jones_in_r2,
    mm3_buckingham,
    mm3_buckingham_in_r2,
)


def pair_coefficients(theta: Float[Array, " 8"]) -> Float[Array, "2 4"]:
    """C: rows d_site, d_real; columns x_i, x_pi, x_j, x_pj (f_i = theta[4], f_j = theta[5])."""
    fi, fj = theta[4], theta[5]
    return jnp.stack([
        jnp.stack([-fi, fi - 1.0, fj, 1.0 - fj]),
        jnp.array([-1.0, 0.0, 1.0, 0.0], dtype=theta.dtype),
    ])


def pair_energies(
    d_site: Float[Array, "*batch 3"],
    d_real: Float[Array, "*batch 3"],
    theta: Float[Array, "*batch 8"],
    mm3: bool,
    dielectric: float = 1.0,
) -> tuple[Array, Array]:
    """(van der Waals, electrostatic) energies, kcal/mol: vdW scale * taper(|d_real|) *
    vdW(|d_site|; r*, eps) (MM3 exp-6 or Lennard-Jones) and 332.06 qq / (eps_r |d_site|)."""
    return pair_energies_from(jnp.sum(d_site * d_site, axis=-1), jnp.sum(d_real * d_real, axis=-1),
                              theta, mm3, dielectric)


def pair_energies_from(
    rho2: Float[Array, ...],
    r2: Float[Array, ...],
    theta: Float[Array, "*batch 8"],
    mm3: bool,
    dielectric: float = 1.0,
) -> tuple[Array, Array]:
    """:func:`pair_energies` from the squared site distance rho2 = |d_site|^2 and the
    squared real distance r2 = |d_real|^2 (Å^2)."""
    vdw = mm3_buckingham if mm3 else lennard_jones
    rho = jnp.sqrt(rho2)
    r = jnp.sqrt(r2)
    rstar = jnp.where(theta[..., 2] != 0.0, theta[..., 0], 1.0)
    taper = vdw_taper(r, theta[..., 6], theta[..., 7])
    e_vdw = theta[..., 2] * taper * vdw(rho, rstar, theta[..., 1])
    e_ele = coulomb(rho, theta[..., 3], 1.0, dielectric)
    return e_vdw, e_ele


def pair_local(mm3: bool, dielectric: float = 1.0):
    """(local energy, local Hessian) of one pair term: functions of x (4, 3) and theta."""

    def phi(d6, theta):
        e_vdw, e_ele = pair_energies(d6[:3], d6[3:], theta, mm3, dielectric)
        return e_vdw + e_ele

    def local(x, theta):
        return phi((pair_coefficients(theta) @ x).reshape(6), theta)

    def local_hessian(x, theta):
        c = pair_coefficients(theta)
        h6 = jax.hessian(phi)((c @ x).reshape(6), theta).reshape(2, 3, 2, 3)
        return jnp.einsum("ua,vb,uivj->aibj", c, c, h6)

    return local, local_hessian


def pair_derivatives(
    rho2: Float[Array, " n"],
    r2: Float[Array, " n"],
    theta: Float[Array, "n 8"],
    mm3: bool,
    dielectric: float = 1.0,
) -> Float[Array, "n 4"]:
    """First and second partials of each pair's energy phi(rho2, r2) (:func:`pair_energies_from`)
    in its squared site and real distances: [phi_1, phi_2, phi_11, phi_12].

    phi = s T(r2) eps u(rho2) + C(rho2) (s the vdW scale, T the taper, u the unit-depth
    van der Waals curve, C the Coulomb energy), differentiated in closed form (the nested
    forward-mode derivatives cost several times more in the parameter gradient). phi_22 = 0:
    only the taper depends on r2, and it is linear in r2 (:func:`vdw_taper`)."""
    vdw = mm3_buckingham_in_r2 if mm3 else lennard_jones_in_r2
    rstar = jnp.where(theta[..., 2] != 0.0, theta[..., 0], 1.0)
    u, u1, u2 = vdw(rho2, rstar)
    c, c1, c2 = coulomb_in_r2(rho2, theta[..., 3], dielectric)
    one = jnp.ones_like(r2)

    def taper(w):
        return vdw_taper(jnp.sqrt(w), theta[..., 6], theta[..., 7])

    t, t1 = jax.jvp(taper, (r2,), (one,))
    a = theta[..., 2] * theta[..., 1]
    return jnp.stack([a * t * u1 + c1, a * t1 * u, a * t * u2 + c2, a * t1 * u1], -1)


def dense_pair_table(
    pairs: Int[Array, "n 2"], derivatives: Float[Array, "n d"], n_atoms: int
) -> Float[Array, "d atoms atoms"]:
    """The pairs' :func:`pair_derivatives` on a dense symmetric (atoms x atoms) table
    (zero where there is no pair, or for pair rows of zeros)."""
    i, j = pairs[:, 0], pairs[:, 1]
    dense = jnp.zeros((n_atoms, n_atoms, derivatives.shape[1]), derivatives.dtype)
    dense = dense.at[i, j].add(derivatives)
    return jnp.moveaxis(dense.at[j, i].add(derivatives), -1, 0)


def pair_gradients(
    sites: Float[Array, "atoms 3"], coords: Float[Array, "atoms 3"], table: Float[Array, "4 n n"]
) -> tuple[Array, Array]:
    """Gradient of the pair energy in the sites and in the real positions, each (atoms, 3),
    from :func:`dense_pair_table`: dE/ds_i = -2 sum_j phi_1,ij (s_j - s_i), likewise in x."""
    d_s = sites[None, :, :] - sites[:, None, :]
    d_x = coords[None, :, :] - coords[:, None, :]
    return (-2.0 * jnp.einsum("ij,ija->ia", table[0], d_s),
            -2.0 * jnp.einsum("ij,ija->ia", table[1], d_x))


def pair_hessian_blocks(
    sites: Float[Array, "atoms 3"], coords: Float[Array, "atoms 3"], table: Float[Array, "4 n n"]
) -> tuple[Array, Array, Array]:
    """Hessian blocks (H_ss, H_sx, H_xx), each (atoms, 3, atoms, 3), of the pair energy
    sum phi(rho2_ij, r2_ij) in the sites s and the real positions x, from the pairs'
    :func:`pair_derivatives` on a :func:`dense_pair_table`.

    With d = s_j - s_i (or x_j - x_i), a pair's 3 x 3 blocks in its separations are
    K_ss = 4 phi_11 d_s d_sᵀ + 2 phi_1 I, K_sx = 4 phi_12 d_s d_xᵀ,
    K_xx = 2 phi_2 I (phi_22 = 0); block (i, j != i) of the Hessian is -K_ij and
    block (i, i) is sum_j K_ij (translation invariance). Nonbonded pairs cover most atom
    pairs, so the blocks are built on dense (atoms x atoms) tables: only the four
    derivatives per pair are scattered. The atom-space Hessian is
    Aᵀ H_ss A + Aᵀ H_sx + H_xs A + H_xx for the site map s = A x.
    """
    f1, f2, f11, f12 = table
    d_s = sites[None, :, :] - sites[:, None, :]
    d_x = coords[None, :, :] - coords[:, None, :]
    return _laplacian(f11, d_s, d_s, f1), _laplacian(f12, d_s, d_x), _isotropic_laplacian(f2)


def _laplacian(c, u, v, c0=None) -> Float[Array, "n 3 n 3"]:
    """Blocks -K_ij off the diagonal and sum_j K_ij on it, K_ij = 4 c_ij u_ij v_ijᵀ + 2 c0_ij I.

    Written as einsums and a diagonal-block update so that the parameter gradient (the
    transpose) is a few contractions and a gather; as broadcasts and masks, XLA's
    transpose reduces over strided 3 x 3 blocks, about 2.5 times slower."""
    n = c.shape[0]
    eye = jnp.eye(3, dtype=u.dtype)
    cu = 4.0 * c[:, :, None] * u
    k = jnp.einsum("ija,ijb->iajb", cu, v)
    diag = jnp.einsum("ija,ijb->iab", cu, v)
    if c0 is not None:
        k = k + jnp.einsum("ij,ab->iajb", 2.0 * c0, eye)
        diag = diag + 2.0 * jnp.sum(c0, axis=1)[:, None, None] * eye
    atom = jnp.arange(n)
    return (-k).at[atom, :, atom, :].add(diag)


def _isotropic_laplacian(c0) -> Float[Array, "n 3 n 3"]:
    """:func:`_laplacian` of K_ij = 2 c0_ij I: a scalar Laplacian times the 3 x 3 identity."""
    scalar = 2.0 * (jnp.diag(jnp.sum(c0, axis=1)) - c0)
    return jnp.einsum("ij,ab->iajb", scalar, jnp.eye(3, dtype=c0.dtype))


__all__ = [
    "pair_coefficients",
    "pair_energies",
    "pair_energies_from",
    "dense_pair_table",
    "pair_derivatives",
    "pair_gradients",
    "pair_hessian_blocks",
    "pair_local",
]
