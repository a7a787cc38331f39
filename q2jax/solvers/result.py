"""What every q2jax solver returns: a :class:`SolverResult` pytree with a status code.

Failures are reported in the result (``status``), never raised, so that the
same compiled solver runs under :func:`jax.vmap` with some batch members
failing and the others unaffected.

Counting convention (as the Q2MM guide counts objective calls): ``n_evals``
is the number of objective evaluations, where one call that returns the value
and its gradient together counts once; ``n_grad_evals`` is how many of those
also produced a gradient (or, for Levenberg–Marquardt, a Jacobian).
"""

from __future__ import annotations

import enum

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from q2jax.solvers._types import BoolScalar, History, IntScalar, Scalar, Vector


class Status(enum.IntEnum):
    """Status codes in :attr:`SolverResult.status`.

    ``SUCCESS`` (0) means the method's convergence test passed; every other
    code is a reason for stopping without convergence.
    """

    SUCCESS = 0
    MAX_ITERATIONS = 1
    NONFINITE = 2
    LINESEARCH_FAILED = 3
    STAGNATION = 4


STATUS_MESSAGES: dict[int, str] = {
    Status.SUCCESS: "converged",
    Status.MAX_ITERATIONS: "maximum number of iterations reached",
    Status.NONFINITE: "objective or parameters became non-finite (NaN/inf); last finite "
    "iterate returned",
    Status.LINESEARCH_FAILED: "line search failed to find a sufficient decrease",
    Status.STAGNATION: "no further decrease possible (damping or step size exhausted)",
}


def status_message(status: int) -> str:
    """Human-readable text for a status code."""
    return STATUS_MESSAGES.get(int(status), f"unknown status {int(status)}")


class SolverResult(eqx.Module):
    """Outcome of one minimisation.

    Attributes:
        params: final parameters (the last finite iterate; for basin hopping,
            multi-start and cycling the best one found).
        value: objective at ``params``.
        n_iter: iterations performed.
        n_evals: objective evaluations (a value-and-gradient call counts once).
        n_grad_evals: evaluations that also computed a gradient or Jacobian.
        converged: ``status == 0``.
        status: a :class:`Status` code.
        grad_norm: gradient norm at ``params`` (projected gradient, infinity
            norm, when bounded; NaN for derivative-free methods, for which it
            is the simplex spread instead).
        history: objective after each iteration, ``history[0]`` the initial
            value; length ``maxiter + 1``, padded with NaN.
        method: the method name (static).
    """

    params: Vector
    value: Scalar
    n_iter: IntScalar
    n_evals: IntScalar
    n_grad_evals: IntScalar
    converged: BoolScalar
    status: IntScalar
    grad_norm: Scalar
    history: History
    method: str = eqx.field(static=True, default="")

    @property
    def message(self) -> str:
        """Status as text (host side, unbatched results only)."""
        return status_message(int(self.status))

    @property
    def initial_value(self) -> Array:
        return self.history[..., 0]

    def history_trimmed(self) -> np.ndarray:
        """History without the NaN padding (host side, unbatched)."""
        h = np.asarray(self.history)
        return h[: int(self.n_iter) + 1]

    def summary(self) -> str:
        """Multi-line human-readable summary (host side, unbatched results only)."""
        v0 = float(self.history[0])
        v1 = float(self.value)
        improvement = (v0 - v1) / v0 if v0 not in (0.0,) and np.isfinite(v0) else 0.0
        return (
            f"Method: {self.method}\n"
            f"Success: {bool(self.converged)} ({self.message})\n"
            f"Score: {v0:.6g} -> {v1:.6g} ({improvement:.1%} improvement)\n"
            f"Iterations: {int(self.n_iter)}, Evaluations: {int(self.n_evals)} "
            f"({int(self.n_grad_evals)} with gradient), |grad|: {float(self.grad_norm):.3g}"
        )


def empty_history(maxiter: int, value0: Scalar) -> History:
    """NaN-padded buffer of length ``maxiter + 1`` holding ``value0`` first."""
    h = jnp.full((maxiter + 1,), jnp.nan, dtype=jnp.result_type(value0, float))
    return h.at[0].set(value0)


__all__ = ["STATUS_MESSAGES", "SolverResult", "Status", "empty_history", "status_message"]
