"""MM energy: derivatives vs finite differences, invariances, padding."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from q2jax import Molecule
from q2jax.energy import batch_energy, batch_hessian, energy, energy_components, gradient, hessian
from q2jax.system import build_batch, build_system
from q2jax.vibrations import frequencies

from ._cases import ch3f, distorted, ethane, rich_forcefield

FORMS = ("harmonic", "mm3")


@functools.lru_cache
def setup(form):
    mols = [ch3f().molecule, ethane().molecule]
    ff = rich_forcefield(mols, form)
    return ff, mols


@functools.lru_cache
def jitted(form):
    ff, _ = setup(form)
    e = jax.jit(lambda x, t: energy(ff.full_params(), x, t, ff.form, ff.settings))
    g = jax.jit(lambda x, t: gradient(ff.full_params(), x, t, ff.form, ff.settings))
    h = jax.jit(lambda x, t: hessian(ff.full_params(), x, t, ff.form, ff.settings))
    return e, g, h


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("which", [0, 1])
def test_gradient_and_hessian_match_finite_differences(form, which):
    ff, mols = setup(form)
    mol = mols[which]
    s = build_system(ff, mol)
    x = jnp.asarray(distorted(mol.coords, 0.04, seed=which))
    e, g, h = jitted(form)
    comps = energy_components(ff.full_params(), x, s.terms, ff.form, ff.settings)
    active = [k for k, v in comps.items() if abs(float(v)) > 1e-8]
    # every family contributes somewhere in the two molecules (ethane has torsions/pairs)
    assert {"stretch", "bend"} <= set(active)
    grad = np.asarray(g(x, s.terms)).reshape(-1)
    hes = np.asarray(h(x, s.terms))
    step = 1e-5
    x0 = np.asarray(x).reshape(-1)
    shifts = np.concatenate([np.eye(x0.size), -np.eye(x0.size)]) * step
    pts = jnp.asarray((x0[None, :] + shifts).reshape(-1, mol.n_atoms, 3))
    ev = np.asarray(jax.vmap(e, in_axes=(0, None))(pts, s.terms))
    gv = np.asarray(jax.vmap(g, in_axes=(0, None))(pts, s.terms)).reshape(2 * x0.size, -1)
    fd_g = (ev[: x0.size] - ev[x0.size :]) / (2 * step)
    fd_h = ((gv[: x0.size] - gv[x0.size :]) / (2 * step)).T
    assert np.max(np.abs(grad - fd_g)) <= 1e-6 * max(1.0, np.max(np.abs(grad)))
    assert np.max(np.abs(hes - fd_h)) <= 1e-6 * max(1.0, np.max(np.abs(hes)))
    np.testing.assert_allclose(hes, hes.T, atol=1e-9)


def test_dihedral_convention():
    """IUPAC: cis 0, trans 180 degrees, sign positive for clockwise rotation."""
    from q2jax.terms.geometry import dihedrals

    x = jnp.array([[1.0, 0, 0], [0, 0, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1], [-1, 0, 1]])
    idx = jnp.array([[0, 1, 2, 3], [0, 1, 2, 4], [0, 1, 2, 5]])
    phi = np.degrees(np.asarray(dihedrals(x, idx, jnp.ones(3, bool))))
    np.testing.assert_allclose(np.abs(phi), [0.0, 90.0, 180.0], atol=1e-4)
    # mirror image flips the sign
    phi_m = np.degrees(
        np.asarray(dihedrals(x * jnp.array([1.0, -1.0, 1.0]), idx, jnp.ones(3, bool)))
    )
    assert phi[1] == pytest.approx(-phi_m[1], abs=1e-4)


def test_ethane_staggered_is_a_torsional_minimum_for_positive_v3():
    """MM3 convention V3/2 (1 + cos 3 phi): staggered (phi = 60, 180) is the minimum."""
    from q2jax.terms.torsion import fourier_torsion

    phi = jnp.radians(jnp.array([0.0, 60.0, 180.0]))
    e = np.asarray(fourier_torsion(phi, jnp.zeros(3), jnp.zeros(3), jnp.full(3, 2.0)))
    np.testing.assert_allclose(e, [2.0, 0.0, 0.0], atol=1e-12)


def test_ethane_exercises_every_family():
    ff, mols = setup("mm3")
    s = build_system(ff, mols[1])
    x = jnp.asarray(distorted(mols[1].coords, 0.04))
    comps = energy_components(ff.full_params(), x, s.terms, ff.form, ff.settings)
    for k in ("stretch", "bend", "torsion", "stretch_bend", "vdw", "electrostatic"):
        assert abs(float(comps[k])) > 1e-6, k


def _rotation(q):
    q = np.asarray(q, float)
    q = q / np.linalg.norm(q)
    a, b, c, d = q
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
        ]
    )


quats = st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda q: np.linalg.norm(q) > 0.1)
shifts = st.lists(st.floats(-50, 50), min_size=3, max_size=3)


@settings(max_examples=15, deadline=None)
@given(q=quats, t=shifts, form=st.sampled_from(FORMS))
def test_rigid_motion_invariance(q, t, form):
    ff, mols = setup(form)
    mol = mols[1]
    s = build_system(ff, mol)
    e, g, h = jitted(form)
    x = distorted(mol.coords, 0.04)
    rot = _rotation(q)
    y = x @ rot.T + np.asarray(t)
    ex, ey = float(e(jnp.asarray(x), s.terms)), float(e(jnp.asarray(y), s.terms))
    assert ey == pytest.approx(ex, rel=1e-9, abs=1e-9)
    gx, gy = np.asarray(g(jnp.asarray(x), s.terms)), np.asarray(g(jnp.asarray(y), s.terms))
    np.testing.assert_allclose(gy, gx @ rot.T, atol=1e-7)
    big = np.kron(np.eye(mol.n_atoms), rot)
    hx, hy = np.asarray(h(jnp.asarray(x), s.terms)), np.asarray(h(jnp.asarray(y), s.terms))
    np.testing.assert_allclose(hy, big @ hx @ big.T, atol=1e-6)


@settings(max_examples=12, deadline=None)
@given(data=st.data(), which=st.sampled_from([0, 1]), form=st.sampled_from(FORMS))
def test_atom_permutation_invariance(data, which, form):
    """Renumbering the atoms (CH3F or ethane, bonds renumbered with them) leaves the
    energy unchanged and permutes the gradient rows and the Hessian's 3x3 blocks."""
    ff, mols = setup(form)
    mol = mols[which]
    perm = np.asarray(data.draw(st.permutations(list(range(mol.n_atoms))), label="perm"))
    inv = np.argsort(perm)
    x = distorted(mol.coords, 0.04)
    permuted = Molecule.from_arrays(
        [mol.symbols[i] for i in perm],
        x[perm],
        bonds=[(int(inv[a]), int(inv[b])) for a, b in mol.bonds],
    )
    s0 = build_system(ff, mol)
    s1 = build_system(ff, permuted)
    e, g, h = jitted(form)
    e0, e1 = float(e(jnp.asarray(x), s0.terms)), float(e(permuted.coords, s1.terms))
    assert e1 == pytest.approx(e0, rel=1e-10, abs=1e-10)
    g0, g1 = np.asarray(g(jnp.asarray(x), s0.terms)), np.asarray(g(permuted.coords, s1.terms))
    np.testing.assert_allclose(g1, g0[perm], rtol=1e-10, atol=1e-10)
    h0, h1 = np.asarray(h(jnp.asarray(x), s0.terms)), np.asarray(h(permuted.coords, s1.terms))
    idx = (3 * perm[:, None] + np.arange(3)[None, :]).reshape(-1)
    np.testing.assert_allclose(h1, h0[np.ix_(idx, idx)], atol=1e-8)


@pytest.mark.parametrize("form", FORMS)
def test_padded_batch_equals_each_molecule_alone(form):
    ff, mols = setup(form)
    mols = [m.with_coords(distorted(m.coords, 0.03, seed=5)) for m in mols]
    batch = build_batch(ff, mols, n_atoms=10)  # extra padding beyond the largest molecule
    eb = np.asarray(jax.jit(batch_energy)(ff, batch))
    hb = np.asarray(jax.jit(batch_hessian)(ff, batch))
    e, _, h = jitted(form)
    for i, m in enumerate(mols):
        s = build_system(ff, m)
        e1 = float(e(s.coords, s.terms))
        h1 = np.asarray(h(s.coords, s.terms))
        assert eb[i] == pytest.approx(e1, rel=1e-12, abs=1e-12)
        n3 = 3 * m.n_atoms
        np.testing.assert_allclose(hb[i][:n3, :n3], h1, atol=1e-10)
        assert np.all(hb[i][n3:, :] == 0)
        # frequencies of the padded copy equal the unpadded ones
        f_pad = frequencies(
            jnp.asarray(hb[i]), batch.coords[i], batch.masses[i], m.n_vibrations, batch.atom_mask[i]
        )
        f_one = frequencies(jnp.asarray(h1), m.coords, m.masses, m.n_vibrations)
        np.testing.assert_allclose(np.asarray(f_pad), np.asarray(f_one), atol=1e-6)


@pytest.mark.parametrize("form", FORMS)
def test_assembled_derivatives_equal_autodiff_of_the_energy(form):
    """gradient() and hessian() are assembled from per-term derivatives (chain rule
    through bond-vector invariants, dense pair tables, autodiff for out-of-plane terms);
    they, and their derivatives along a parameter direction, equal jax.grad / jax.hessian
    of the energy on distorted CH3F and ethane (every family, Lennard-Jones and MM3 vdW)."""
    ff, mols = setup(form)
    rng = np.random.default_rng(7)
    for k, mol in enumerate(mols):
        s = build_system(ff, mol)
        x = jnp.asarray(distorted(mol.coords, 0.04, seed=k))
        n3 = 3 * mol.n_atoms

        def ours(p, s=s, x=x):
            return (gradient(p, x, s.terms, ff.form, ff.settings),
                    hessian(p, x, s.terms, ff.form, ff.settings))

        def autodiff(p, s=s, x=x, n3=n3):
            args = (p, x, s.terms, ff.form, ff.settings)
            return (jax.grad(energy, argnums=1)(*args),
                    jax.hessian(energy, argnums=1)(*args).reshape(n3, n3))

        p = ff.full_params()
        dp = jnp.asarray(rng.normal(size=p.shape)) * (jnp.abs(p) + 0.1)
        got = jax.jit(lambda p, dp, f=ours: jax.jvp(f, (p,), (dp,)))(p, dp)
        want = jax.jit(lambda p, dp, f=autodiff: jax.jvp(f, (p,), (dp,)))(p, dp)
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want),
                        strict=True):
            scale = float(jnp.max(jnp.abs(b)))
            assert scale > 0.0
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-10 * scale)
