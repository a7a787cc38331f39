"""The Q2MM Optimization Guide's object API, as thin wrappers over q2jax's functional core.

The guide's recipes run with only their imports changed::

    from q2jax.workflows import (
        ObjectiveFunction, ReferenceData, JaxEngine, ScipyOptimizer,
        MultiStartOptimizer, JaxOptOptimizer, OptimizationLoop,
        compute_sensitivity, estimate_force_constants,
    )

- :class:`ObjectiveFunction` — ``f(x)``, ``gradient``, ``value_and_grad``,
  ``residuals`` over the frozen ``ObjectiveSpec`` (``.spec``);
  :class:`JaxEngine` (default; jitted, exact gradients) or a non-JAX engine
  such as ``q2jax.adapters.openmm.OpenMMEngine`` (NumPy, finite differences).
- :class:`ReferenceData` — Q2MM-style builder of a q2jax ReferenceSet.
- :class:`ScipyOptimizer` (Workflow A), :class:`MultiStartOptimizer`
  (Workflow B; all starts in one vmapped call for JAX objectives),
  :class:`OptimizationLoop` and :func:`compute_sensitivity` (Workflow C),
  :class:`JaxOptOptimizer` (Workflow D).

Differences from Q2MM, on purpose: frequencies are scored at the MM-relaxed
geometry by default (``frequencies_at="relaxed"``), and every result's
``summary()`` prints the honest figures (frequency and geometry errors at the
geometry relaxed with the force field) next to the objective score. Force
fields are immutable: optimizers rebind ``objective.forcefield``.
"""

from __future__ import annotations

from typing import Any

from q2jax._workflows_cycling import OptimizationLoop, compute_sensitivity
from q2jax._workflows_multistart import MultiStartOptimizer
from q2jax._workflows_objective import JaxEngine, ObjectiveFunction
from q2jax._workflows_optimizers import JaxOptOptimizer, ScipyOptimizer
from q2jax._workflows_reference import ReferenceData
from q2jax._workflows_results import (
    LoopResult,
    MultiStartResult,
    OptimizationResult,
    SensitivityResult,
)
from q2jax.seminario import estimate_force_constants


def __getattr__(name: str) -> Any:
    # ``q2jax.workflows.OpenMMEngine``: OpenMM is slow to import, so load it only when asked for
    if name == "OpenMMEngine":
        from q2jax.adapters.openmm import OpenMMEngine

        return OpenMMEngine
    raise AttributeError(f"module 'q2jax.workflows' has no attribute {name!r}")


__all__ = [
    "JaxEngine",
    "JaxOptOptimizer",
    "LoopResult",
    "MultiStartOptimizer",
    "MultiStartResult",
    "ObjectiveFunction",
    "OptimizationLoop",
    "OptimizationResult",
    "ReferenceData",
    "ScipyOptimizer",
    "SensitivityResult",
    "compute_sensitivity",
    "estimate_force_constants",
]
