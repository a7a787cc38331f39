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
from jaxtyping import Array, Float

from q2jax.terms.coulomb import coulomb
from q2jax.terms.sites import vdw_taper
from q2jax.terms.vdw import lennard_jones, mm3_buckingham


def pair_coefficients(theta: Float[Array, " 8"]) -> Float[Array, "2 4"]:
    """C: rows d_site, d_real; columns x_i, x_pi, x_j, x_pj (f_i = theta[4], f_j = theta[5])."""
    fi, fj = theta[4], theta[5]
    return jnp.stack([
        jnp.stack([-fi, fi - 1.0, fj, 1.0 - fj]),
        jnp.array([-1.0, 0.0, 1.0, 0.0], dtype=theta.dtype),
    ])


def pair_energies(
    d_site: Float[Array, "... 3"],
    d_real: Float[Array, "... 3"],
    theta: Float[Array, "... 8"],
    mm3: bool,
    dielectric: float = 1.0,
) -> tuple[Array, Array]:
    """(van der Waals, electrostatic) energies, kcal/mol: vdW scale * taper(|d_real|) *
    vdW(|d_site|; r*, eps) (MM3 exp-6 or Lennard-Jones) and 332.06 qq / (eps_r |d_site|)."""
    vdw = mm3_buckingham if mm3 else lennard_jones
    rho = jnp.sqrt(jnp.sum(d_site * d_site, axis=-1))
    r = jnp.sqrt(jnp.sum(d_real * d_real, axis=-1))
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


__all__ = ["pair_coefficients", "pair_energies", "pair_local"]
