"""q2jax.fit.default_fit's guarantee: it never hands back a force field worse than
its QFUERZA start. The solver is replaced (monkeypatch) by one that ends worse than
it started, so the guard, which a working solver never triggers, is exercised."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import q2jax.fit as fit_module
from q2jax import ForceField
from q2jax.datasets import load_case
from q2jax.evaluate import evaluate
from q2jax.fit import default_fit, qfuerza_start
from q2jax.objective import loss
from q2jax.solvers import SolverResult, Status

WORSE = jnp.array([1.6, 1.05, 0.6, 0.97, 1.8, 1.04, 0.5, 0.96])  # per-parameter factors


@functools.lru_cache
def jitted_loss():
    return jax.jit(loss)


def _solve_that_ends_worse(report_nan: bool):
    """A stand-in for q2jax.fit._solve: one 'iteration' to the start values times
    WORSE; the reported final value is the true (higher) loss there, or NaN."""

    def solve(spec, params0, method, maxiter, bounds, progress, options):
        worse = params0 * WORSE
        l0, l1 = (float(jitted_loss()(p, spec)) for p in (params0, worse))
        assert l1 > l0  # it really is worse on the objective
        history = jnp.full(maxiter + 1, jnp.nan).at[0].set(l0).at[1].set(l1)
        return SolverResult(params=worse, value=jnp.asarray(np.nan if report_nan else l1),
                            n_iter=jnp.asarray(1), n_evals=jnp.asarray(2),
                            n_grad_evals=jnp.asarray(0), converged=jnp.asarray(False),
                            status=jnp.asarray(int(Status.MAX_ITERATIONS)),
                            grad_norm=jnp.asarray(np.nan), history=history, method=method)

    return solve


@pytest.mark.parametrize("report_nan", [False, True], ids=["worse", "non-finite"])
def test_default_fit_returns_the_qfuerza_start_when_the_solver_ends_worse(monkeypatch,
                                                                          report_nan):
    c = load_case("ch3f")
    monkeypatch.setattr(fit_module, "_solve", _solve_that_ends_worse(report_nan))
    res = default_fit([c.molecule], [c.hessian], maxiter=5)
    start = qfuerza_start(ForceField.from_molecules([c.molecule]), [c.molecule], [c.hessian])
    # the start force field comes back, with the note saying why
    np.testing.assert_array_equal(np.asarray(res.forcefield.params), np.asarray(start.params))
    assert res.forcefield.as_dict() == start.as_dict()
    assert any("ended worse than the start" in n and "QFUERZA start" in n for n in res.notes)
    # ... and the start's own honest figures, re-evaluated independently here
    assert res.final_eval is res.start_eval
    qm = [np.asarray(res.start_eval[0].qm_frequencies_cm1)]
    again = evaluate(start, [c.molecule], qm)[0]
    assert res.final_eval[0].freq_rmsd_cm1 == pytest.approx(again.freq_rmsd_cm1, rel=1e-12)
    assert res.final_eval[0].geom_rmsd_angstrom == pytest.approx(again.geom_rmsd_angstrom,
                                                                 rel=1e-9, abs=1e-12)
    # the solver's force field was worse on the honest figure too (what the guard withheld)
    worse = evaluate(start.with_params(start.params * WORSE), [c.molecule], qm)[0]
    assert worse.freq_rmsd_cm1 > again.freq_rmsd_cm1
