"""Frequencies from the QM Hessian, Eckart projection, degenerate-mode gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from q2jax import ForceField, units
from q2jax.energy import hessian
from q2jax.system import build_system
from q2jax.vibrations import (
    eigenmatrix,
    frequencies,
    internal_projector,
    mass_weight,
    normal_modes,
    rigid_body_vectors,
)

from ._cases import ch3f


def test_ch3f_qm_frequencies_reproduce_the_data_file():
    c = ch3f()
    m = c.molecule
    nu = np.asarray(frequencies(jnp.asarray(c.hessian), m.coords, m.masses, 9))
    ref = np.loadtxt(__import__("q2jax").datasets.DATA_DIR / "ch3f" / "ch3f-frequencies.txt")
    np.testing.assert_allclose(nu, ref, atol=0.1)
    # the data README's list, to its printed precision
    np.testing.assert_allclose(
        nu, [1040.6, 1191.7, 1191.8, 1495.3, 1512.3, 1512.4, 3058.0, 3145.1, 3145.1], atol=0.06
    )


def test_qm_hessian_external_modes_and_their_exact_removal_by_eckart_projection():
    """The CH3F QM Hessian itself, unprojected: its three translations are null vectors
    to numerical precision (measured 3e-5 cm^-1), its three rotations are not (measured
    -9.05, 3.93, 4.18 cm^-1). Rotational invariance of E gives H (e_a x r) = e_a x g, so
    |H R_a| per atom is bounded by a residual gradient g at the QM geometry (or by
    numerical noise in the Hessian; the data do not say which): here it is <= 4.3e-5
    Hartree/Bohr, inside Gaussian's default optimisation threshold (max force 4.5e-4).
    The Eckart projection removes all six exactly and moves no vibration by more than
    1e-4 cm^-1 (measured 5e-6)."""
    c = ch3f()
    m = c.molecule
    hmw = np.asarray(mass_weight(jnp.asarray(c.hessian), m.masses))
    t, r = (np.asarray(v) for v in rigid_body_vectors(m.coords, m.masses))
    rot = np.linalg.qr(r)[0]  # orthonormal rotations (orthogonal to the translations)

    def cm1(block):
        return units.eigenvalue_to_cm1(np.linalg.eigvalsh(block.T @ hmw @ block))

    nu_trans, nu_rot = cm1(t), cm1(rot)
    assert np.all(np.abs(nu_trans) < 1e-3)
    assert np.all(np.abs(nu_rot) < 10.0)
    assert np.max(np.abs(nu_rot)) > 1.0  # the QM Hessian is not rotation-free: projection needed
    # the rotational leakage as a force (unweighted H times the unweighted rotations)
    com = np.average(np.asarray(m.coords), axis=0, weights=np.asarray(m.masses))
    for axis in np.eye(3):
        lever = np.cross(axis, np.asarray(m.coords) - com).reshape(-1)
        per_atom = np.linalg.norm((np.asarray(c.hessian) @ lever).reshape(-1, 3), axis=1)
        assert np.max(per_atom) / units.HARTREE_BOHR_TO_KCAL_MOL_A < 4.5e-4
    # unprojected: the six external eigenvalues lie below 10 cm^-1, the first vibration far above
    nu_all = units.eigenvalue_to_cm1(np.linalg.eigvalsh(hmw))
    assert np.all(np.abs(nu_all[:6]) < 10.0) and nu_all[6] > 1000.0
    # projected: the external directions are exact null vectors ...
    p = np.asarray(internal_projector(m.coords, m.masses))
    h_int = p @ hmw @ p
    ext = np.hstack([t, rot])
    assert np.max(np.abs(h_int @ ext)) < 1e-12 * np.max(np.abs(hmw))
    # ... and the vibrations barely move
    nu = np.asarray(frequencies(jnp.asarray(c.hessian), m.coords, m.masses, 9))
    np.testing.assert_allclose(nu_all[6:], nu, atol=1e-4)
    # the projector is idempotent with rank 3N - 6, and removes rigid motions exactly
    np.testing.assert_allclose(p @ p, p, atol=1e-12)
    assert round(np.trace(p)) == 9
    assert np.max(np.abs(p @ t)) < 1e-10 and np.max(np.abs(p @ r)) < 1e-10


def test_linear_molecule_has_3n_minus_5_modes():
    from q2jax import Molecule

    co2 = Molecule.from_arrays(["O", "C", "O"], [[0, 0, -1.16], [0, 0, 0], [0, 0, 1.16]])
    assert co2.is_linear and co2.n_vibrations == 4
    ff = ForceField.from_entries(
        [
            ("bond_k", ("C", "O"), 800.0),
            ("bond_eq", ("C", "O"), 1.16),
            ("angle_k", ("O", "C", "O"), 40.0),
            ("angle_eq", ("O", "C", "O"), 180.0),
        ]
    )
    s = build_system(ff, co2)
    nu = np.asarray(jax.jit(
        lambda p: frequencies(hessian(p, s.coords, s.terms), co2.coords, co2.masses, 4)
    )(ff.full_params()))
    # Wilson GF analysis with F = 2k (E = k x^2): symmetric stretch 2k/m_O, antisymmetric
    # 2k (1/m_O + 2/m_C), bend (doubly degenerate) 2 k_b (2/r^2) (1/m_O + 2/m_C)
    m_o, m_c = float(co2.masses[0]), float(co2.masses[1])
    sym = units.eigenvalue_to_cm1(2 * 800.0 / m_o)
    asym = units.eigenvalue_to_cm1(2 * 800.0 * (1 / m_o + 2 / m_c))
    bend = units.eigenvalue_to_cm1(2 * 40.0 * (2 / 1.16**2) * (1 / m_o + 2 / m_c))
    np.testing.assert_allclose(nu[2:], [sym, asym], rtol=1e-8)
    assert nu[0] == pytest.approx(nu[1], rel=1e-8)
    assert nu[0] == pytest.approx(bend, rel=1e-8)


def _c3v_ch3f():
    """CH3F with exact C3v symmetry (C-F 1.3986 Å, C-H 1.0940 Å, F-C-H 108.44 deg)."""
    from q2jax import Molecule

    th = np.radians(108.44)
    h = [
        [1.094 * np.sin(th) * np.cos(a), 1.094 * np.sin(th) * np.sin(a), 1.094 * np.cos(th)]
        for a in np.radians([0.0, 120.0, 240.0])
    ]
    return Molecule.from_arrays(["C", "F", "H", "H", "H"], [[0, 0, 0], [0, 0, 1.3986], *h])


def test_frequency_gradient_finite_for_exactly_degenerate_modes():
    """CH3F's E modes are exactly degenerate for a C3v force field at a C3v geometry."""
    m = _c3v_ch3f()
    ff = ForceField.from_molecules([m])
    s = build_system(ff, m)

    def nu_of(p):
        return frequencies(hessian(ff.full_params(p), s.coords, s.terms), s.coords, s.masses, 9)

    @jax.jit
    def f(p):
        return jnp.sum((nu_of(p) - jnp.linspace(1000.0, 3000.0, 9)) ** 2)

    nu = np.asarray(jax.jit(nu_of)(ff.params))
    gaps = np.diff(nu)
    assert np.sum(gaps < 1e-8 * nu[1:]) >= 3  # three exactly degenerate E pairs
    g = np.asarray(jax.jit(jax.grad(f))(ff.params))
    assert np.all(np.isfinite(g))
    step = 1e-5
    eye = np.eye(ff.n_params) * step
    fd = np.array([(float(f(ff.params + e)) - float(f(ff.params - e))) / (2 * step) for e in eye])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6 * np.max(np.abs(fd)))


def test_eigenmatrix_diagonal_of_qm_hessian_is_its_eigenvalues():
    c = ch3f()
    m = c.molecule
    w, v = normal_modes(jnp.asarray(c.hessian), m.coords, m.masses, 9)
    em = np.asarray(eigenmatrix(jnp.asarray(c.hessian), v, m.masses))
    np.testing.assert_allclose(np.diag(em), np.asarray(w), rtol=1e-10)
    assert np.max(np.abs(em - np.diag(np.diag(em)))) < 1e-9 * np.max(np.abs(em))
