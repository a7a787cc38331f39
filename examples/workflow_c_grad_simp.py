"""Workflow C: grad-simp cycling with L2 regularization (CH3F, QFUERZA start).

``OptimizationLoop`` alternates an L-BFGS-B pass on all parameters (exact
gradients, ``full_jac="analytical"``) with a Nelder-Mead simplex on the
``max_params`` parameters ranked best by the sensitivity ``simp_var = d2/d1^2``,
until a cycle improves the score by less than ``convergence``. The L2 term
``regularization * ||p - p_start||^2`` keeps the parameters near the QFUERZA
start (the guide's advice for large systems). Same references as Workflow A:
QM frequencies at the MM-relaxed geometry plus the QM bond lengths and angles.

    python examples/workflow_c_grad_simp.py [--maxiter 200] [--max-cycles 5] [--lam 0.1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from q2jax.workflows import OptimizationLoop, compute_sensitivity

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workflow_a_lbfgsb import build_objective  # noqa: E402  (same objective as Workflow A)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maxiter", type=int, default=200, help="full and simplex budgets")
    parser.add_argument("--max-cycles", type=int, default=5)
    parser.add_argument("--lam", type=float, default=0.1, help="L2 strength λ")
    parser.add_argument("--plot", default=None, help="write the cycle-score PNG here")
    args = parser.parse_args(argv)

    objective = build_objective(regularization=args.lam)

    # standalone sensitivity: which parameters would the simplex get?
    print(compute_sensitivity(objective, metric="simp_var").summary())

    loop = OptimizationLoop(
        objective,
        max_params=3,
        max_cycles=args.max_cycles,
        convergence=0.01,
        full_method="L-BFGS-B",
        simp_method="Nelder-Mead",
        full_maxiter=args.maxiter,
        simp_maxiter=args.maxiter,
        full_jac="analytical",
        verbose=True,
    )
    result = loop.run()
    print(result.summary())
    labels = objective.forcefield.get_param_type_labels()
    for i, indices in enumerate(result.selected_indices):
        print(f"Cycle {i + 1}: {[labels[j] for j in indices]}")
    if args.plot:
        result.plot(args.plot)
    return result


if __name__ == "__main__":
    main()
