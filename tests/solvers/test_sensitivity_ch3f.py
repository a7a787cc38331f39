"""Sensitivity on the real CH3F objective: finite differences (Q2MM) vs autodiff."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from q2jax import ForceField
from q2jax.datasets import load_case
from q2jax.objective import loss, make_objective
from q2jax.reference import ReferenceSet
from q2jax.seminario import estimate_force_constants
from q2jax.solvers import compute_sensitivity


@pytest.mark.slow
def test_ch3f_fd_sensitivity_agrees_with_autodiff():
    """QFUERZA start, frequencies at the QM geometry: the 2N + 1 central differences
    (steps = 1 % of Q2MM's per-kind steps) agree with exact gradient / Hessian diagonal."""
    case = load_case("ch3f")
    mol = case.molecule
    ff = estimate_force_constants(ForceField.from_molecules([mol]), [mol], [case.hessian])
    refs = ReferenceSet.from_qm([mol], [case.hessian], frequency_weight=1.0)
    spec = make_objective(ff, refs, frequencies_at="reference")
    steps = 0.01 * jnp.asarray(ff.get_step_sizes())
    fd = compute_sensitivity(loss, ff.params, spec, steps=steps, mode="fd")
    ad = compute_sensitivity(loss, ff.params, spec, mode="autodiff")
    n = ff.n_params
    assert int(fd.n_evals) == 2 * n + 1
    np.testing.assert_allclose(fd.d1, ad.d1, rtol=1e-5)
    np.testing.assert_allclose(fd.d2, ad.d2, rtol=1e-4)
    np.testing.assert_allclose(fd.simp_var, ad.simp_var, rtol=1e-4)
    np.testing.assert_array_equal(fd.ranking, ad.ranking)
    assert float(fd.value) == pytest.approx(float(ad.value), rel=1e-12)
