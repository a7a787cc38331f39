"""Small helpers shared by the solvers: bounds, projection, projected gradient."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from q2jax.errors import InputError
from q2jax.solvers._types import Scalar, Vector
from q2jax.solvers.driver import Bounds


def as_params(params0: Any) -> Vector:
    """Validate a start point: a 1-D floating vector (host or traced)."""
    p = jnp.asarray(params0)
    if p.ndim != 1:
        raise InputError(f"params0 must be a 1-D parameter vector; got shape {p.shape}")
    dtype = p.dtype if jnp.issubdtype(p.dtype, jnp.floating) else jnp.result_type(float)
    # a strong dtype: weakly-typed and strongly-typed starts then share one compilation
    return jax.lax.convert_element_type(p, dtype)


def as_bounds(bounds: Any, params0: Vector) -> Bounds:
    """Normalise bounds to a pair of arrays ``(lower, upper)`` shaped like ``params0``.

    Accepts ``None`` (unbounded); ``(lower, upper)`` where each side is an
    array of length n, a scalar, or ``None`` (open; ``±inf`` also means open);
    an object with ``lb`` / ``ub`` (``scipy.optimize.Bounds``); or a
    SciPy-style sequence of n ``(lo, hi)`` pairs. With n = 2 a 2×2 input is
    read as ``(lower, upper)``.
    """
    n = params0.shape[0]
    dtype = params0.dtype
    if bounds is None:
        return jnp.full((n,), -jnp.inf, dtype), jnp.full((n,), jnp.inf, dtype)
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        bounds = (bounds.lb, bounds.ub)
    if not isinstance(bounds, tuple | list):
        raise InputError("bounds must be None, (lower, upper) or a sequence of (lo, hi) pairs")
    if len(bounds) == 2 and all(_side_ok(b, n) for b in bounds):
        lo, hi = bounds
    elif len(bounds) == n and all(_pair_ok(b) for b in bounds):
        lo = np.asarray([-np.inf if b[0] is None else b[0] for b in bounds], float)
        hi = np.asarray([np.inf if b[1] is None else b[1] for b in bounds], float)
    else:
        raise InputError(
            f"bounds for {n} parameters must be (lower, upper) with arrays of length {n} "
            f"or scalars, or {n} (lo, hi) pairs"
        )
    lo = jnp.broadcast_to(jnp.asarray(-jnp.inf if lo is None else lo, dtype), (n,))
    hi = jnp.broadcast_to(jnp.asarray(jnp.inf if hi is None else hi, dtype), (n,))
    if _is_concrete(lo, hi) and np.any(np.asarray(lo) > np.asarray(hi)):
        raise InputError("bounds: some lower bound exceeds its upper bound")
    return lo, hi


def _side_ok(side: Any, n: int) -> bool:
    return side is None or np.ndim(side) == 0 or np.shape(side) == (n,)


def _pair_ok(pair: Any) -> bool:
    return isinstance(pair, tuple | list) and len(pair) == 2


def _is_concrete(*xs: Array) -> bool:
    try:
        for x in xs:
            np.asarray(x)
    except Exception:  # a tracer
        return False
    return True


def project(x: Vector, bounds: Bounds) -> Vector:
    """Euclidean projection onto the box, ``clip(x, lower, upper)``."""
    return jnp.clip(x, bounds[0], bounds[1])


def projected_grad_norm(x: Vector, g: Vector, bounds: Bounds) -> Scalar:
    """``‖P(x − g) − x‖_∞``: the gradient infinity norm with components that
    push against an active bound removed (SciPy's ``pgtol`` measure)."""
    return jnp.max(jnp.abs(project(x - g, bounds) - x), initial=0.0)


def free_mask(x: Vector, g: Vector, bounds: Bounds) -> Array:
    """True where a parameter may move: not at a bound that the gradient pushes against."""
    lo, hi = bounds
    at_lo = (x <= lo) & (g > 0)
    at_hi = (x >= hi) & (g < 0)
    return ~(at_lo | at_hi)


__all__ = ["as_bounds", "as_params", "free_mask", "project", "projected_grad_norm"]


MAX_VMAP_CHUNK = 64
"""Batches larger than this run as a loop over vmapped chunks of this size: on
XLA's CPU runtime one vmap over 256 CH3F fits (and over 1,000 multi-start LM
runs) went idle and never returned, while chunks of 64 always completed."""


def chunked_vmap(f, xs, chunk: int = MAX_VMAP_CHUNK):
    """``jax.vmap(f)(xs)``, as a ``lax.map`` over vmapped chunks of ``chunk``
    when the leading axis is longer (same results, one compiled program)."""
    n = jax.tree_util.tree_leaves(xs)[0].shape[0]
    if n <= chunk:
        return jax.vmap(f)(xs)
    return jax.lax.map(f, xs, batch_size=chunk)

