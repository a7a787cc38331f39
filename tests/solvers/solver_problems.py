"""Test problems shared by the solver tests.

One objective family ``objective(x, p)`` covers the Rosenbrock function and
bounded least-squares quadratics, with the problem in the traced argument
``p``: one compiled solver serves every problem of a given size (this keeps
the suite fast) and ``jax.vmap`` over ``p`` is exercised for free.

Known minima (independent of q2jax): Rosenbrock ``x* = 1`` with ``f* = 0``;
the bounded quadratic ``‖L(x − c)‖²`` on ``[0, 1]^n`` is solved exactly by
SciPy's bounded-variable least squares (``lsq_linear``, method "bvls").
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array
from scipy.optimize import lsq_linear

MAXITER = 500


class Problem(eqx.Module):
    a: Array  # Rosenbrock weight
    lmat: Array  # quadratic factor (m, n)
    c: Array  # quadratic centre
    poison: Array  # 0.0, or NaN to make the objective NaN everywhere


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def objective(x, p: Problem):
    r = p.lmat @ (x - p.c)
    return p.a * rosenbrock(x) + r @ r + p.poison


def residuals(x, p: Problem):
    w = jnp.sqrt(p.a)
    rows = jnp.concatenate([w * 10.0 * (x[1:] - x[:-1] ** 2), w * (1.0 - x[:-1])])
    return jnp.concatenate([rows, p.lmat @ (x - p.c)]) + p.poison


def rosen_problem(n: int) -> Problem:
    return Problem(
        a=jnp.ones(()),
        lmat=jnp.zeros((n + 2, n)),
        c=jnp.zeros(n),
        poison=jnp.zeros(()),
    )


def rosen_start(n: int) -> Array:
    return jnp.where(jnp.arange(n) % 2 == 0, -1.2, 1.0)


def quad_problem(n: int, seed: int = 2) -> Problem:
    """``‖L(x − c)‖²`` with correlated L and a centre outside the unit box."""
    rng = np.random.default_rng(seed)
    lmat = rng.normal(size=(n + 2, n))
    c = np.array([2.0, -3.0, 0.5, 1.5, -0.5, 0.3, 2.5][:n])
    return Problem(
        a=jnp.zeros(()),
        lmat=jnp.asarray(lmat),
        c=jnp.asarray(c),
        poison=jnp.zeros(()),
    )


def quad_bounds(n: int) -> tuple[Array, Array]:
    return jnp.zeros(n), jnp.ones(n)


def quad_solution(p: Problem) -> np.ndarray:
    """Exact bounded minimiser on [0, 1]^n (SciPy BVLS), independent of q2jax."""
    lmat, c = np.asarray(p.lmat), np.asarray(p.c)
    sol = lsq_linear(lmat, lmat @ c, bounds=(0.0, 1.0), method="bvls", tol=1e-15)
    return sol.x


def quad_value(p: Problem, x) -> float:
    r = np.asarray(p.lmat) @ (np.asarray(x) - np.asarray(p.c))
    return float(r @ r)


# A batch of separable 5-D quadratics for the vmap tests
CENTRES = np.array(
    [
        [0.2, 0.5, 0.8, 0.1, 0.9],
        [1.5, -0.5, 0.3, 0.7, 2.0],  # partly outside the box
        [0.6, 0.6, 0.6, 0.6, 0.6],
        [-1.0, 0.4, 1.2, 0.5, 0.5],
    ]
)
WEIGHTS = np.array([1.0, 2.0, 0.5, 3.0, 1.5])


def batch(poison_index: int | None = 2) -> Problem:
    """Separable quadratics Σ w_i² (x_i − c_i)²: on [0, 1]^n the minimum is clip(c, 0, 1)."""
    k = CENTRES.shape[0]
    lmat = np.zeros((k, 7, 5))
    lmat[:, :5, :] = np.diag(WEIGHTS)
    poison = np.zeros(k)
    if poison_index is not None:
        poison[poison_index] = np.nan
    return Problem(
        a=jnp.zeros(k), lmat=jnp.asarray(lmat), c=jnp.asarray(CENTRES), poison=jnp.asarray(poison)
    )
