"""MacroModel MM3* energy of a Rh-enamide structure with every new family
(bend-bend, torsion-stretch, reduced hydrogen sites including the bridging
hydride's, the C3-H1 pair line, the van der Waals taper, MacroModel's Coulomb
constant): gradient, Hessian and mixed third derivatives against finite
differences, padding, the site map against its definition, and the assembled
gradient, Hessian and parameter derivative against autodiff of the energy."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from q2jax import energy as energy_module
from q2jax.energy import energy, families, gradient, hessian
from q2jax.rh_enamide import load_rh_enamide_set
from q2jax.system import pad_system
from q2jax.terms import (
    pair_derivatives,
    pair_energies_from,
    pair_hessian_blocks,
    site_coordinates,
    site_map_rows,
    site_map_transpose,
)

K = 1  # structure 2 (38 atoms): bend-bends, torsion-stretches and everything else


@functools.lru_cache
def case():
    s = load_rh_enamide_set("final")
    sys_, ff = s.mm3.systems[K], s.forcefield
    x0 = np.asarray(sys_.coords)
    rng = np.random.default_rng(3)
    x = x0 + rng.normal(scale=0.01, size=x0.shape)
    return ff, sys_, jnp.asarray(x)


@functools.lru_cache
def compiled():
    """Energies and gradients of a batch of geometries, and the Hessian, jitted."""
    ff, _, _ = case()
    form, settings = ff.form, ff.settings
    e = jax.jit(jax.vmap(lambda p, x, t: energy(p, x, t, form, settings), (None, 0, None)))
    g = jax.jit(jax.vmap(lambda p, x, t: gradient(p, x, t, form, settings), (None, 0, None)))
    h = jax.jit(lambda p, x, t: hessian(p, x, t, form, settings))
    return e, g, h


def test_the_structure_has_every_new_family():
    ff, s, x = case()
    t = s.terms
    assert t.bb_atoms.shape[0] == 45 and t.ts_atoms.shape[0] == 9  # as MacroModel's .mmo lists
    moved = np.asarray(t.atom_site_parent) != np.arange(x.shape[0])
    assert moved.sum() > 10 and moved[17] and int(t.atom_site_parent[17]) == 0  # H18 on Rh
    assert np.any(np.asarray(t.pair_vdw_params[:, 0]) != ff.zero_slot)  # C3-H1 pairs
    r = np.linalg.norm(np.asarray(x)[np.asarray(t.pair_atoms[:, 0])]
                       - np.asarray(x)[np.asarray(t.pair_atoms[:, 1])], axis=1)
    assert np.any((r > 6.0) & (r < 8.0))  # tapered pairs
    assert np.min(np.abs(r[:, None] - np.array([6.0, 8.0]))) > 1e-4  # no kink near FD steps


def test_gradient_and_hessian_match_finite_differences_on_a_padded_copy():
    """On the structure padded with 4 atoms and 7 extra terms per table: the same
    energy as unpadded, zero Hessian rows for padded atoms, and central
    differences (step 1e-5 A) for the gradient in every real coordinate and for
    the Hessian columns of the atoms the new families move most: Rh, the bridging
    hydride H18 and its C6, a methyl H (reduced site), and the atoms of a
    torsion-stretch and of a bend-bend term."""
    ff, s, x = case()
    e, g, h = compiled()
    p, n = ff.full_params(), x.shape[0]
    sizes = {grp: int(getattr(s.terms, f"{grp}_mask").shape[0]) + 7 for grp in
             ("bond", "angle", "torsion", "improper", "sb", "pair", "bb", "ts")}
    padded = pad_system(s, n + 4, sizes, ff.zero_slot)
    t = padded.terms
    xp = padded.coords.at[:n].set(x)
    assert np.array_equal(np.asarray(t.atom_site_parent[n:]), np.arange(n, n + 4))
    n3, step = 3 * n, 1e-5
    basis = jnp.eye(3 * (n + 4))[:n3]
    shifts = jnp.concatenate([jnp.zeros((1, basis.shape[1])), basis, -basis]) * step
    ev = np.asarray(e(p, (xp.ravel()[None, :] + shifts).reshape(-1, *xp.shape), t))
    assert ev[0] == pytest.approx(float(e(p, x[None], s.terms)[0]), rel=1e-13)
    fd_g = (ev[1 : n3 + 1] - ev[n3 + 1 :]) / (2 * step)
    atoms = sorted({0, 5, 17, 22, *np.asarray(s.terms.ts_atoms[0]).tolist(),
                    *np.asarray(s.terms.bb_atoms[0]).tolist()})
    cols = np.array([3 * a + c for a in atoms for c in range(3)])
    shifts = jnp.concatenate([jnp.zeros((1, basis.shape[1])), basis[cols], -basis[cols]]) * step
    gv = np.asarray(g(p, (xp.ravel()[None, :] + shifts).reshape(-1, *xp.shape), t))
    grad = gv[0]
    hes = np.asarray(h(p, xp, t))
    assert not np.any(grad[n:]) and not np.any(hes[3 * n:]) and not np.any(hes[:, 3 * n:])
    grad, hes = grad[:n].ravel(), hes[:n3, :n3]
    assert np.max(np.abs(grad - fd_g)) <= 1e-6 * max(1.0, np.max(np.abs(grad)))
    gv = gv[1:, :n].reshape(2 * len(cols), -1)
    fd_h = (gv[: len(cols)] - gv[len(cols):]).T / (2 * step)
    assert np.max(np.abs(hes[:, cols] - fd_h)) <= 2e-6 * np.max(np.abs(hes))
    np.testing.assert_allclose(hes, hes.T, atol=1e-9)


def test_pair_local_hessian_and_its_derivatives():
    """The Hessian is a linear assembly (scatter, then the linear site map) of
    per-term local Hessians, so its derivatives in coordinates and parameters
    (third derivatives: relaxed-geometry frequencies and their gradient) are those
    of the locals; every family's local Hessian is jax.hessian of its local energy
    except the nonbonded pairs' (four atoms: C^T H6 C, H6 in the site and real
    separations). On reduced-site, C3-H1 and tapered pairs of the structure: it
    equals jax.hessian of the local energy, and its forward-mode derivative along
    (dx, dtheta) equals central differences."""
    ff, s, x = case()
    fam = next(f for f in families(ff.full_params(), s.terms, ff.form, ff.settings)
               if f.name == "nonbonded")
    xa = np.asarray(x)
    pa = np.asarray(s.terms.pair_atoms)
    r = np.linalg.norm(xa[pa[:, 0]] - xa[pa[:, 1]], axis=1)
    moved = np.asarray(s.terms.atom_site_parent) != np.arange(xa.shape[0])
    special = np.asarray(s.terms.pair_vdw_params[:, 0]) != ff.zero_slot
    rows = np.concatenate([np.flatnonzero((r > 6.1) & (r < 7.9) & moved[pa].all(1))[:3],
                           np.flatnonzero(special & (r < 5.0))[:3]])
    xl, th = x[fam.atoms[rows]], fam.theta[rows]
    both = jax.jit(lambda a, b: (jax.vmap(fam.local_hessian)(a, b),
                                 jax.vmap(jax.hessian(fam.local))(a, b)))

    def local(a, b):
        return both(a, b)[0]

    got, ref = both(xl, th)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-10,
                               atol=1e-12 * float(jnp.max(jnp.abs(ref))))
    rng = np.random.default_rng(5)
    dx = jnp.asarray(rng.normal(scale=0.01, size=xl.shape))
    dth = jnp.asarray(rng.normal(scale=0.01, size=th.shape)) * jnp.abs(th)
    _, slope = jax.jit(lambda a, b: jax.jvp(jax.vmap(fam.local_hessian), (xl, th), (a, b)))(
        dx, dth)
    eps = 1e-5
    fd = (local(xl + eps * dx, th + eps * dth) - local(xl - eps * dx, th - eps * dth)) / (2 * eps)
    scale = float(jnp.max(jnp.abs(slope)))
    assert scale > 0.0
    np.testing.assert_allclose(np.asarray(slope), np.asarray(fd), atol=1e-6 * scale)


def test_site_map_is_the_transpose_of_the_site_coordinates():
    """A^T H A from site_map_transpose equals the dense map built from the
    definition s_i = x_p + f (x_i - x_p)."""
    rng = np.random.default_rng(0)
    n = 6
    parent = jnp.array([0, 0, 1, 3, 1, 5])
    scale = jnp.array([1.0, 0.923, 0.9, 1.0, 0.8, 1.0])
    x = jnp.asarray(rng.normal(size=(n, 3)))
    a = np.asarray(jax.jit(jax.jacobian(lambda y: site_coordinates(y, parent, scale)))(x))
    a = a.reshape(3 * n, 3 * n)
    m = rng.normal(size=(3 * n, 3 * n))
    got = jax.jit(site_map_transpose)(jnp.asarray(m).reshape(n, 3, n, 3), parent, scale)
    np.testing.assert_allclose(np.asarray(got).reshape(3 * n, 3 * n), a.T @ m @ a, atol=1e-12)


def test_dense_pair_hessian_equals_the_scattered_pair_terms():
    """The nonbonded Hessian assembled on dense (atoms x atoms) tables (site, mixed and real
    blocks, then the site map) equals the sum of the per-pair local Hessians (C^T H6 C of the
    four atoms i, p_i, j, p_j) scattered into the Cartesian Hessian."""
    ff, s, x = case()
    t = s.terms
    form, settings = ff.form, ff.settings
    n = x.shape[0]

    def scattered(p, x):
        fam = next(f for f in families(p, t, form, settings) if f.name == "nonbonded")
        return energy_module._scatter_family_hessian(jnp.zeros((n, 3, n, 3)), x, fam)

    def dense(p, x):
        fam = next(f for f in families(p, t, form, settings) if f.name == "nonbonded")
        sites = site_coordinates(x, t.atom_site_parent, t.atom_site_scale)
        table = energy_module._pair_table(sites, x, fam, form, settings)
        h_ss, h_sx, h_xx = pair_hessian_blocks(sites, x, table)
        mixed = site_map_rows(h_sx, t.atom_site_parent, t.atom_site_scale)
        return (site_map_transpose(h_ss, t.atom_site_parent, t.atom_site_scale) + mixed
                + jnp.transpose(mixed, (2, 3, 0, 1)) + h_xx)

    p = ff.full_params()
    want, got = jax.jit(lambda p, x: (scattered(p, x), dense(p, x)))(p, x)
    scale = float(jnp.max(jnp.abs(want)))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=0, atol=1e-12 * scale)


def test_closed_form_pair_derivatives_equal_autodiff():
    """pair_derivatives (closed form, MM3 exp-6 and Lennard-Jones) equals forward-mode
    derivatives of pair_energies_from in rho^2 and r^2 on the structure's pairs (plain,
    reduced-site, pair-specific and tapered), and d2/d(r^2)^2 vanishes (the taper is linear
    in r^2), as the dense pair Hessian assumes (it drops that term)."""
    ff, s, x = case()
    fam = next(f for f in families(ff.full_params(), s.terms, ff.form, ff.settings)
               if f.name == "nonbonded")
    sites = site_coordinates(x, s.terms.atom_site_parent, s.terms.atom_site_scale)
    i, j = fam.atoms[:, 0], fam.atoms[:, 2]
    rho2 = jnp.sum((sites[j] - sites[i]) ** 2, axis=-1)
    r2 = jnp.sum((x[j] - x[i]) ** 2, axis=-1)
    for mm3 in (True, False):
        def phi(q, th, mm3=mm3):
            e_vdw, e_ele = pair_energies_from(q[0], q[1], th, mm3, 1.5)
            return e_vdw + e_ele

        grad = jax.vmap(jax.grad(phi))(jnp.stack([rho2, r2], -1), fam.theta)
        hess = jax.vmap(jax.hessian(phi))(jnp.stack([rho2, r2], -1), fam.theta)
        want = jnp.stack([grad[:, 0], grad[:, 1], hess[:, 0, 0], hess[:, 0, 1]], -1)
        got = pair_derivatives(rho2, r2, fam.theta, mm3, 1.5)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-11,
                                   atol=1e-13 * float(jnp.max(jnp.abs(want))))
        # zero up to rounding in r = sqrt(r2), r * r
        assert float(jnp.max(jnp.abs(hess[:, 1, 1]))) <= 1e-15 * float(jnp.max(jnp.abs(want)))


def test_assembled_derivatives_equal_autodiff_of_the_energy():
    """gradient() and hessian() (per-term chain rule through the invariants, dense pair
    tables) equal jax.grad / jax.hessian of the energy, and the Hessian's derivative along a
    random parameter direction equals that of jax.hessian(energy): the parameter gradient of
    a Hessian-based objective is the same through either path."""
    ff, s, x = case()
    t, form, settings = s.terms, ff.form, ff.settings
    n3 = 3 * x.shape[0]

    def ours(p):
        return gradient(p, x, t, form, settings), hessian(p, x, t, form, settings)

    def autodiff(p):
        h = jax.hessian(energy, argnums=1)(p, x, t, form, settings).reshape(n3, n3)
        return jax.grad(energy, argnums=1)(p, x, t, form, settings), h

    p = ff.full_params()
    rng = np.random.default_rng(11)
    dp = jnp.asarray(rng.normal(size=p.shape)) * jnp.abs(p) * 1e-2
    (g1, h1), (dg1, dh1) = jax.jit(lambda p, dp: jax.jvp(ours, (p,), (dp,)))(p, dp)
    (g0, h0), (dg0, dh0) = jax.jit(lambda p, dp: jax.jvp(autodiff, (p,), (dp,)))(p, dp)
    for a, b in ((g1, g0), (h1, h0), (dg1, dg0), (dh1, dh0)):
        scale = float(jnp.max(jnp.abs(b)))
        assert scale > 0.0
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-10 * scale)
