"""Shape-annotated array aliases used by the solvers (jaxtyping).

Kept in one place because ruff reads jaxtyping shape strings as forward
references (F722); each alias carries the one ``noqa``.
"""

from __future__ import annotations

from jaxtyping import Array, Bool, Float, Int

Scalar = Float[Array, ""]  # noqa: F722
IntScalar = Int[Array, ""]  # noqa: F722
BoolScalar = Bool[Array, ""]  # noqa: F722
Vector = Float[Array, " n"]  # noqa: F722
"""A flat parameter vector (or any 1-D float array)."""
BoolVector = Bool[Array, " n"]  # noqa: F722
IntVector = Int[Array, " k"]  # noqa: F722
Matrix = Float[Array, " rows cols"]  # noqa: F722
History = Float[Array, " maxiter_plus_1"]  # noqa: F722
"""Fixed-size loss history, NaN-padded."""

__all__ = [
    "BoolScalar",
    "BoolVector",
    "History",
    "IntScalar",
    "IntVector",
    "Matrix",
    "Scalar",
    "Vector",
]
