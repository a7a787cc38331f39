"""Workflow D: end-to-end JAX — jaxopt L-BFGS-B on a frozen ObjectiveSpec (CH3F, MM3 form).

``JaxOptOptimizer`` runs the whole fit as compiled JAX (``lax.while_loop``
in chunks, progress between chunks). The objective's ``spec`` is a frozen
pytree, so the loss is an ordinary pure function ``loss(params, spec)``:
below it is jitted, differentiated, and vmapped over a batch of parameter
vectors (a scan of the C-F force constant) in one call.

    python examples/workflow_d_jaxopt.py [--maxiter 200]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from q2jax import ForceField
from q2jax.datasets import load_case
from q2jax.objective import loss
from q2jax.workflows import (
    JaxEngine,
    JaxOptOptimizer,
    ObjectiveFunction,
    ReferenceData,
    estimate_force_constants,
)


def build_objective(**options) -> ObjectiveFunction:
    """MM3 CH3F force constants vs the QM frequencies (as Workflow B)."""
    case = load_case("ch3f")
    mol = case.molecule
    ff = ForceField.from_molecules([mol], "mm3")
    ff = estimate_force_constants(ff, [mol], [case.hessian])  # QFUERZA
    ff = ff.freeze(["bond_eq", "angle_eq"])  # keep the QM geometry as the MM minimum
    ref = ReferenceData().add_frequencies(case.frequencies, weight=1.0, molecule_idx=0)
    options.setdefault("frequencies_at", "reference")
    return ObjectiveFunction(ff, JaxEngine(), [mol], ref, **options)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maxiter", type=int, default=200)
    parser.add_argument("--scan", type=int, default=16, help="points in the vmapped scan")
    parser.add_argument("--plot", default=None, help="write the convergence PNG here")
    args = parser.parse_args(argv)

    objective = build_objective()
    spec = objective.spec  # frozen: molecules, references, weights, λ, p_ref

    result = JaxOptOptimizer(method="lbfgsb", maxiter=args.maxiter).optimize(objective)
    print(result.summary())

    # the same loss, used directly: jit, grad and vmap over parameter vectors
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    f, g = value_and_grad(objective.forcefield.params, spec)
    print(f"\nloss at the fit {float(f):.6g}, |grad|_inf {float(jnp.max(jnp.abs(g))):.3g}")
    fitted = objective.forcefield.params
    i = objective.forcefield.get_param_type_labels().index("bond C-F k")
    batch = jnp.tile(fitted, (args.scan, 1))
    batch = batch.at[:, i].set(jnp.linspace(0.9, 1.1, args.scan) * fitted[i])
    t = time.perf_counter()
    scores = jax.block_until_ready(jax.jit(jax.vmap(loss, in_axes=(0, None)))(batch, spec))
    print(
        f"vmapped scan of 'bond C-F k' ({args.scan} points, {time.perf_counter() - t:.2f} s "
        "incl. compile):"
    )
    for k, s in zip(batch[:, i], scores, strict=True):
        print(f"  k = {float(k):9.3f} kcal/mol/A^2   loss {float(s):12.6g}")
    if args.plot:
        result.plot(args.plot)
    return result


if __name__ == "__main__":
    main()
