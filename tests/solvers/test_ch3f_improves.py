"""Adam, Nelder–Mead, basin hopping (LM) and L-BFGS each improve CH3F from its
QFUERZA start.

The problem is examples/workflow_b_multistart.py's: MM3 form, the four force
constants fitted to the QM frequencies at the QM geometry, equilibrium values
frozen at it. With the geometry and equilibrium values fixed the MM Hessian is
linear in the force constants, H(k) = H(0) + sum_i k_i dH/dk_i (checked), so the
solvers run on that exact form of the objective: a 15 x 15 eigenproblem instead of
a Hessian of the MM3 energy inside every solver (this keeps the four compilations
cheap). It equals q2jax's own ``loss`` to 1e-10 relative at the start and at every
solver's result (checked); the honest figure is ``q2jax.evaluate``'s frequency RMSD
at the geometry relaxed with each fitted force field.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array

from q2jax import ForceField
from q2jax.datasets import load_case
from q2jax.energy import hessian
from q2jax.evaluate import evaluate
from q2jax.fit import qfuerza_start
from q2jax.objective import loss, make_objective
from q2jax.reference import ReferenceSet
from q2jax.solvers import minimize
from q2jax.system import build_system
from q2jax.vibrations import frequencies


class LinearHessianProblem(eqx.Module):
    """H(k) = h0 + dh @ k at the fixed QM geometry; targets and weights per mode."""

    h0: Array  # (3N, 3N), kcal/(mol Å^2)
    dh: Array  # (3N, 3N, P)
    coords: Array  # (N, 3), Å
    masses: Array  # (N,), amu
    targets: Array  # (n_vib,), cm^-1
    weights: Array  # (n_vib,)


def residuals(k, p: LinearHessianProblem):
    nu = frequencies(p.h0 + p.dh @ k, p.coords, p.masses, p.targets.shape[0])
    return p.weights * (nu - p.targets)


def objective(k, p: LinearHessianProblem):
    r = residuals(k, p)
    return r @ r


@functools.lru_cache
def setup():
    c = load_case("ch3f")
    m = c.molecule
    ff = qfuerza_start(ForceField.from_molecules([m], "mm3"), [m], [c.hessian])
    ff = ff.freeze(["bond_eq", "angle_eq"])  # the QM geometry stays the MM minimum
    spec = make_objective(ff, ReferenceSet.from_qm([m], [c.hessian]), frequencies_at="reference")
    s = build_system(ff, m)

    @jax.jit
    def mm_hessian(k):
        return hessian(ff.full_params(k), s.coords, s.terms, ff.form, ff.settings)

    k0 = ff.params
    h0 = mm_hessian(jnp.zeros_like(k0))
    dh = jax.jit(jax.jacfwd(mm_hessian))(k0)
    np.testing.assert_allclose(np.asarray(h0 + dh @ (2.0 * k0)), np.asarray(mm_hessian(2.0 * k0)),
                               rtol=1e-12, atol=1e-9)  # linear in k
    problem = LinearHessianProblem(h0, dh, s.coords, s.masses, spec.refs.freq_values[0],
                                   spec.refs.freq_weights[0])
    q2jax_loss = jax.jit(loss)
    start = evaluate(ff, [m], [c.frequencies])[0]
    return c, ff, spec, problem, q2jax_loss, start


SOLVERS = {
    "optax:adam": dict(maxiter=100, learning_rate=20.0),
    "Nelder-Mead": dict(maxiter=100),
    "basinhopping:lm": dict(maxiter=20, niter=3, stepsize=5.0, seed=0),
    "jaxopt:lbfgs": dict(maxiter=30),
}


@pytest.mark.parametrize("method", sorted(SOLVERS))
def test_solver_improves_ch3f_from_its_qfuerza_start(method):
    c, ff, spec, problem, q2jax_loss, start = setup()
    k0 = ff.params
    l0 = float(q2jax_loss(k0, spec))
    assert float(objective(k0, problem)) == pytest.approx(l0, rel=1e-10)
    options = dict(SOLVERS[method])
    if method != "jaxopt:lbfgs":  # unbounded by design
        options["bounds"] = ff.bounds()
    res = minimize(objective, k0, problem, method=method, residuals=residuals, **options)
    k = jnp.asarray(res.params)
    assert bool(jnp.all(jnp.isfinite(k)))
    l1 = float(q2jax_loss(k, spec))
    assert float(res.value) == pytest.approx(l1, rel=1e-10)  # the solver's value is q2jax's loss
    assert l1 < l0
    final = evaluate(ff.with_params(k), [c.molecule], [c.frequencies])[0]
    assert final.converged and final.n_imaginary == 0
    assert final.freq_rmsd_cm1 < start.freq_rmsd_cm1
