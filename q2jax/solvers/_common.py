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



MAX_VMAP_CHUNK = 64
"""Batches larger than this run as a loop over vmapped chunks of this size
(per-problem cost is flat from about 16 problems up, so nothing is lost, and
the working set stays small). One vmap over 256 CH3F fits or 1,000 multi-start
runs once went idle on XLA's CPU runtime and never returned; the cause was the
batched LAPACK kernels (see :mod:`q2jax.linalg`, which q2jax now uses)."""


def chunked_vmap(f, xs, chunk: int = MAX_VMAP_CHUNK):
    """``jax.vmap(f)(xs)``, as a ``lax.map`` over vmapped chunks of ``chunk``
    when the leading axis is longer (same results, one compiled program).

    Chunks are strided: chunk ``c`` holds items ``c, c + k, c + 2k, ...`` (``k``
    chunks; a remainder of fewer than ``chunk`` items is one more vmap). A batch
    sharded over devices along its leading axis and run as one SPMD program
    thus keeps every chunk spread over all devices (with contiguous chunks each
    step of the loop would belong to one device). q2jax's own multi-device
    paths run each device's share separately instead (:func:`map_over_devices`,
    ``q2jax.batch.fit_batch``)."""
    n = jax.tree_util.tree_leaves(xs)[0].shape[0]
    if n <= chunk:
        return jax.vmap(f)(xs)
    k, main = n // chunk, (n // chunk) * chunk

    def strided(x):  # (main, ...) -> (k, chunk, ...): row c = items c, c + k, ...
        return jnp.swapaxes(x[:main].reshape(chunk, k, *x.shape[1:]), 0, 1)

    def unstrided(y):  # inverse of ``strided``
        return jnp.swapaxes(y, 0, 1).reshape(main, *y.shape[2:])

    out = jax.tree_util.tree_map(
        unstrided, jax.lax.map(jax.vmap(f), jax.tree_util.tree_map(strided, xs)))
    if main == n:
        return out
    rest = jax.vmap(f)(jax.tree_util.tree_map(lambda x: x[main:], xs))
    return jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), out, rest)


def map_over_devices(f, xs, consts, chunk: int = MAX_VMAP_CHUNK, *, mesh=None,
                     spread: bool = True):
    """``chunked_vmap(lambda x: f(x, consts), xs)``, with the items of ``xs``
    split over the devices of ``mesh`` (a one-axis ``jax.sharding.Mesh``; default:
    all devices, when there are several) by ``jax.shard_map``: each device runs
    its share as its own program, ``consts`` copied to every device; items are
    padded to a multiple of the device count and the padding dropped.
    ``spread=False``: one device, as ``chunked_vmap``.

    On a CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` makes N
    devices of N cores."""
    import equinox as eqx
    from jax.sharding import Mesh, PartitionSpec

    if mesh is None and spread and len(jax.devices()) > 1:
        mesh = Mesh(np.array(jax.devices()), ("items",))
    if mesh is None or not spread:
        return chunked_vmap(lambda x: f(x, consts), xs, chunk)
    n = jax.tree_util.tree_leaves(xs)[0].shape[0]
    pad = -n % mesh.size
    if pad:
        xs = jax.tree_util.tree_map(
            lambda x: jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)]), xs)
    dynamic, static = eqx.partition(consts, eqx.is_array)
    axis = PartitionSpec(mesh.axis_names[0])

    def local(x, d):
        c = eqx.combine(d, static)
        return chunked_vmap(lambda xi: f(xi, c), x, chunk)

    out = jax.shard_map(local, mesh=mesh, in_specs=(axis, PartitionSpec()), out_specs=axis,
                        check_vma=False)(xs, dynamic)
    return jax.tree_util.tree_map(lambda y: y[:n], out)


__all__ = [
    "MAX_VMAP_CHUNK",
    "as_bounds",
    "as_params",
    "chunked_vmap",
    "free_mask",
    "map_over_devices",
    "project",
    "projected_grad_norm",
]
