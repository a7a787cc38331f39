"""LAPACK-backed linear algebra that stays safe under ``jax.vmap`` on CPU.

jaxlib 0.10's CPU LAPACK kernels split a large enough *batch* of matrices
over XLA's intra-op thread pool and then block the calling pool thread until
the pieces finish. When as many such calls run at once as the pool has
threads (two devices of a sharded batch fit on a 2-core machine, or two
independent batched calls in one program) every thread waits for work that
no thread is free to run, and the program stops making progress for good
(observed: a 256-problem CH3F batch fit sharded over two CPU devices, and
one vmap over 256 or 1,000 CH3F fits, idle at 0 % CPU; ``gdb`` shows both
pool threads in ``jax::ParallelBatchMap`` inside ``lapack_dsyevd_ffi``).

The functions here give the same results as their ``jax.numpy.linalg``
namesakes, but under ``vmap`` they loop over the batch
(:mod:`jax.custom_batching`), so each LAPACK call sees one matrix and never
splits. LAPACK loops over a batch one matrix at a time
anyway, so little is lost; what is lost is the kernel's own threading of big
batches, which q2jax gets back by sharding problems over devices.

``solve`` is differentiable in forward and reverse mode. ``eigh`` is
differentiable in forward mode only (``custom_vmap`` has no reverse rule);
q2jax uses it for primal values inside its own ``custom_jvp`` rules
(``q2jax.vibrations.eigh_differentiable``) or where no derivative is taken.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


@jax.custom_batching.sequential_vmap
def eigh(a: Float[Array, "n n"]) -> tuple[Float[Array, " n"], Float[Array, "n n"]]:
    """(ascending eigenvalues, orthonormal eigenvectors as columns) of the
    symmetric part of ``a``, as ``jnp.linalg.eigh``; one matrix per LAPACK call
    under ``vmap``."""
    w, v = jnp.linalg.eigh(a)
    return w, v


@jax.custom_batching.custom_vmap
def _lapack_solve(a: Float[Array, "n n"], b: Array) -> Array:
    return jnp.linalg.solve(a, b)


@_lapack_solve.def_vmap
def _lapack_solve_vmap(axis_size, in_batched, a, b):
    a_batched, b_batched = in_batched
    if not a_batched:  # one matrix, a batch of right-hand sides: one LAPACK call
        n = a.shape[0]
        cols = jnp.moveaxis(b, 0, -1)  # (n, B) or (n, k, B)
        x = _lapack_solve(a, cols.reshape(n, -1)).reshape(cols.shape)
        return jnp.moveaxis(x, -1, 0), True
    if not b_batched:
        b = jnp.broadcast_to(b, (axis_size, *b.shape))
    return jax.lax.map(lambda ab: _lapack_solve(*ab), (a, b)), True


def solve(a: Float[Array, "n n"], b: Array) -> Array:
    """``x`` with ``a @ x = b`` (``b`` of shape (n,) or (n, k)), as
    ``jnp.linalg.solve``: differentiable in ``a`` and ``b`` (forward and
    reverse mode, via :func:`jax.lax.custom_linear_solve`); under ``vmap`` one
    LAPACK factorisation per matrix (right-hand sides sharing a matrix are
    solved together)."""
    a_const = jax.lax.stop_gradient(a)
    return jax.lax.custom_linear_solve(
        lambda x: a @ x,
        b,
        solve=lambda _, y: _lapack_solve(a_const, y),
        transpose_solve=lambda _, y: _lapack_solve(a_const.T, y),
    )


__all__ = ["eigh", "solve"]
