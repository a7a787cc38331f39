"""Batch fits (issue 10): M = 1, 16, 256 CH3F-sized problems in one compiled call each.

Each problem is the bundled CH3F with its geometry (0.01 Å noise) and QM
Hessian (5 % symmetric noise) perturbed, fixed seed; the default honest
objective (frequencies and geometry fitted through the relaxation), QFUERZA
start, Levenberg–Marquardt. Wall time per call and per problem, after
compilation (compile time reported separately); the ratio of per-problem
costs is measured in the same run.

    python benchmarks/batch_fit.py [--sizes 1 16 256] [--maxiter 50]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

import q2jax
from q2jax import ForceField, Molecule
from q2jax.batch import fit_batch, stack_problems
from q2jax.datasets import load_case
from q2jax.fit import default_references, qfuerza_start

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import platform

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return {"cpu": cpu, "cores": os.cpu_count(), "jax_backend": jax.default_backend(),
            "python": platform.python_version()}


def problems(m: int, seed: int = 0):
    base = load_case("ch3f")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(m):
        xyz = np.asarray(base.molecule.coords) + 0.01 * rng.standard_normal((5, 3))
        mol = Molecule.from_arrays(base.molecule.symbols, xyz, bonds=base.molecule.bonds,
                                   name="ch3f")
        noise = rng.standard_normal(base.hessian.shape)
        h = base.hessian * (1.0 + 0.05 * 0.5 * (noise + noise.T))
        ff = qfuerza_start(ForceField.from_molecules([mol]), [mol], [h])
        out.append((ff, default_references([mol], [h])))
    return out


def run(m: int, maxiter: int, repeats: int) -> dict:
    spec, p0, bounds, n_params = stack_problems(problems(m))
    t = time.perf_counter()
    res = fit_batch(spec, p0, bounds, method="lm", maxiter=maxiter, n_params=n_params)
    res.params.block_until_ready()
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        res = fit_batch(spec, p0, bounds, method="lm", maxiter=maxiter, n_params=n_params)
        res.params.block_until_ready()
        times.append(time.perf_counter() - t)
    wall = float(np.median(times))
    return {"m": m, "wall_s": wall, "per_problem_s": wall / m,
            "n_converged": int(np.sum(np.asarray(res.status) == 0)),
            "n_max_iterations": int(np.sum(np.asarray(res.status) == 1)),
            "first_call_s": first, "compile_s_estimate": max(first - wall, 0.0),
            "median_final_loss": float(np.median(np.asarray(res.value)))}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 256])
    ap.add_argument("--maxiter", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    rows = []
    for m in args.sizes:
        print(f"M = {m} ...", file=sys.stderr, flush=True)
        rows.append(run(m, args.maxiter, args.repeats if m < 256 else 1))
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    by_m = {r["m"]: r for r in rows}
    out = {
        "benchmark": "batch_fit",
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "jax_version": jax.__version__,
        "q2jax_version": q2jax.__version__,
        "method": "lm",
        "maxiter": args.maxiter,
        "objective": "frequencies + Cartesian geometry through the MM relaxation (default)",
        "rows": rows,
    }
    if 1 in by_m and 256 in by_m:
        out["per_problem_ratio_256_vs_1"] = by_m[256]["per_problem_s"] / by_m[1]["per_problem_s"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "batch_fit.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
