"""Multi-start: all starts in one vmapped call, identical to running each start alone."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from q2jax.solvers import MultiStartResult, Status, as_bounds, minimize, perturbed_starts

from .solver_problems import (
    MAXITER,
    objective,
    quad_bounds,
    quad_problem,
    quad_solution,
    rosen_problem,
    rosen_start,
)

N = 5


def test_perturbed_starts_stay_within_pct_and_bounds():
    x0 = jnp.array([1.0, -2.0, 0.0, 0.9, 5.0])
    lo, hi = jnp.full(N, -10.0), jnp.array([10.0, 10.0, 10.0, 0.95, 10.0])
    s = np.asarray(perturbed_starts(x0, 50, 20.0, 7, (lo, hi)))
    assert s.shape == (50, N)
    np.testing.assert_array_equal(s[0], x0)  # start 0 is x0 itself
    x = np.asarray(x0)
    rel = np.abs(s[1:] - x) <= 0.2 * np.where(x != 0, np.abs(x), 1.0) + 1e-15
    assert np.all(rel)
    assert np.all(s[:, 3] <= 0.95)  # clipped to the bound
    assert np.unique(s[1:, 0]).size == 49  # really random
    # same seed, same starts; another seed, other starts
    np.testing.assert_array_equal(s, perturbed_starts(x0, 50, 20.0, 7, (lo, hi)))
    assert not np.allclose(s, perturbed_starts(x0, 50, 20.0, 8, (lo, hi)))


def test_vmapped_multistart_equals_individual_runs():
    """Every start of the batched run gives the same result as that start run alone."""
    p = rosen_problem(N)
    x0 = rosen_start(N)
    ms = minimize(
        objective,
        x0,
        p,
        method="multi:jaxopt:lbfgsb",
        maxiter=MAXITER,
        tol=1e-9,
        n_starts=6,
        perturbation_pct=60.0,
        seed=4,
    )
    assert isinstance(ms, MultiStartResult)
    assert ms.all.params.shape == (6, N)
    for i in range(6):
        alone = minimize(
            objective, ms.starts[i], p, method="jaxopt:lbfgsb", maxiter=MAXITER, tol=1e-9
        )
        np.testing.assert_allclose(ms.all.params[i], alone.params, atol=1e-10, rtol=0)
        assert abs(int(ms.all.n_iter[i]) - int(alone.n_iter)) <= 0.05 * int(alone.n_iter) + 2
        assert int(ms.all.status[i]) == int(alone.status)
    # the best start is the global minimum of Rosenbrock-5
    np.testing.assert_allclose(ms.params, np.ones(N), atol=1e-7)
    assert int(ms.best_index) == int(np.argmin(np.asarray(ms.all.value)))
    assert int(ms.n_evals) == int(np.sum(ms.all.n_evals))
    assert "6 starts" in ms.summary()


def test_multistart_bounded_quadratic():
    p = quad_problem(N)
    ms = minimize(
        objective,
        jnp.full(N, 0.5),
        p,
        method="multi:jaxopt:lbfgsb",
        bounds=quad_bounds(N),
        maxiter=MAXITER,
        tol=1e-9,
        n_starts=6,
        perturbation_pct=60.0,
        seed=4,
    )
    x = np.asarray(ms.all.params)
    assert np.all(x >= 0.0) and np.all(x <= 1.0)
    starts = np.asarray(ms.starts)
    assert np.all(starts >= 0.0) and np.all(starts <= 1.0)
    # convex problem: every start reaches the same bounded minimum
    np.testing.assert_allclose(x, np.broadcast_to(quad_solution(p), x.shape), atol=1e-7)
    assert np.all(np.asarray(ms.all.status) == Status.SUCCESS)
    lo, hi = as_bounds(quad_bounds(N), jnp.zeros(N))
    assert np.all(np.asarray(lo) == 0.0) and np.all(np.asarray(hi) == 1.0)


def test_chunked_vmap_equals_one_vmap_with_a_remainder():
    """More items than the chunk (7 = 2 x 3 + 1): the loop over vmapped chunks gives
    every item's result, in order, as one vmap does (pytree in, pytree out)."""
    import jax

    from q2jax.solvers._common import chunked_vmap

    xs = {"a": jnp.arange(7.0), "b": jnp.arange(14.0).reshape(7, 2)}

    def f(x):
        return {"s": jnp.sin(x["a"]) + x["b"].sum(), "v": x["b"] * x["a"]}

    want = jax.vmap(f)(xs)
    for chunk in (3, 7, 64):
        got = chunked_vmap(f, xs, chunk)
        np.testing.assert_array_equal(np.asarray(got["s"]), np.asarray(want["s"]))
        np.testing.assert_array_equal(np.asarray(got["v"]), np.asarray(want["v"]))


def test_multistart_over_two_devices_equals_one_device():
    """With two (CPU) devices the starts are split between them (7 starts: one
    padded); every start ends where the one-device run ends it."""
    import json
    import os
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import json, jax, jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        from q2jax.solvers import minimize
        from tests.solvers.solver_problems import objective, residuals, rosen_problem, rosen_start
        assert jax.device_count() == DEVICES
        out = {}
        for method in ("lm", "optimistix:bfgs"):  # optimistix: kept on one device
            ms = minimize(objective, rosen_start(5), rosen_problem(5), method="multi:" + method,
                          residuals=residuals, maxiter=200, n_starts=7, perturbation_pct=40.0,
                          seed=3)
            jaxpr = jax.make_jaxpr(lambda p: minimize(
                objective, rosen_start(5), p, method="multi:" + method, residuals=residuals,
                maxiter=5, n_starts=7).all.params)(rosen_problem(5))
            out[method] = {"params": ms.all.params.tolist(), "best": int(ms.best_index),
                           "status": ms.all.status.tolist(),
                           "per_device": "shard_map" in str(jaxpr)}
        print(json.dumps(out))
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = {}
    for devices in (1, 2):
        env = dict(os.environ, PYTHONPATH=root)
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "")
                            + f" --xla_force_host_platform_device_count={devices}")
        proc = subprocess.run([sys.executable, "-c", script.replace("DEVICES", str(devices))],
                              capture_output=True, text=True, env=env, timeout=600, cwd=root)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[devices] = json.loads(proc.stdout.strip().splitlines()[-1])
    for method in ("lm", "optimistix:bfgs"):
        one, two = out[1][method], out[2][method]
        np.testing.assert_allclose(two["params"], one["params"], rtol=1e-10, atol=1e-12)
        assert two["best"] == one["best"] and two["status"] == one["status"]
        assert not one["per_device"]
    # the split happened (lm), and optimistix stayed on one device
    assert out[2]["lm"]["per_device"] and not out[2]["optimistix:bfgs"]["per_device"]
