"""Run every benchmark in sequence (``make bench``).

Each script runs in its own subprocess with a timeout (compilation caches and
memory do not leak from one into the next); its JSON report lands in
``benchmarks/results/``. Scripts that do not exist yet are listed as
missing. A summary (one JSON object) is printed on stdout and written to
``results/run_all.json``; the exit status is non-zero if any script failed
or timed out.

Usage: ``python benchmarks/run_all.py [--quick] [--only per_eval,multistart]
[--nice N] [--timeout-scale X] [--no-readme]``. ``--quick`` passes ``--quick``
to every script (small sizes); ``--nice`` lowers the priority on a shared
machine. After a full run the results section of ``benchmarks/README.md``
(between ``<!-- results:start -->`` and ``<!-- results:end -->``) is
rewritten from ``results/*.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The CLI's fast-compile XLA settings (q2jax.cli.FAST_COMPILE_FLAGS) for the
# whole-fit benchmarks whose wall time is mostly compilation of one-off solver
# programs (as a user's `q2jax fit` run is); per-call speed benchmarks keep
# XLA's defaults. Each report records the flags in force.
FAST = {"XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"}

# (name, script, extra arguments, timeout in seconds for a full run, environment)
PLAN: list[tuple[str, str, list[str], float, dict]] = [
    ("per_eval", "per_eval.py", [], 1200.0, {}),
    ("multistart", "multistart.py", [], 1800.0, {}),
    ("ch3f_matrix[harmonic]", "ch3f_matrix.py",
     ["--forms", "harmonic", "--budget-s", "1200"], 1800.0, FAST),
    ("ch3f_matrix[mm3]", "ch3f_matrix.py",
     ["--forms", "mm3", "--budget-s", "1200", "--merge"], 1800.0, FAST),
    ("vs_q2mm", "vs_q2mm.py", [], 1800.0, {}),
    ("rh_enamide", "rh_enamide.py", [], 2400.0, FAST),
    ("batch_fit", "batch_fit.py", [], 1800.0, {}),
]


def run_one(script: Path, args: list[str], timeout: float, niceness: int,
            env: dict | None = None) -> dict:
    cmd = [sys.executable, str(script), *args]
    if niceness:
        cmd = ["nice", "-n", str(niceness), *cmd]
    print(f"[run_all] {' '.join(cmd)} (timeout {timeout:.0f} s)", file=sys.stderr, flush=True)
    t = time.perf_counter()
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, timeout=timeout,
                           cwd=HERE.parent,
                           env={"OPENBLAS_NUM_THREADS": "1", **os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "wall_s": time.perf_counter() - t}
    out = {"status": "ok" if r.returncode == 0 else "failed", "returncode": r.returncode,
           "wall_s": time.perf_counter() - t}
    try:
        data = json.loads(r.stdout)
        if "skipped" in data:
            out["skipped"] = data["skipped"]
    except json.JSONDecodeError:
        out["status"] = "failed" if out["status"] == "ok" else out["status"]
        out["error"] = "stdout was not one JSON object"
    return out


README = HERE / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
TABLES = ("per_eval", "multistart", "ch3f_matrix", "vs_q2mm", "rh_enamide", "batch_fit")


def update_readme() -> bool:
    """Replace the README's results section by the current ``results/*.md`` tables."""
    text = README.read_text()
    if START not in text or END not in text:
        return False
    parts = []
    for name in TABLES:
        md = HERE / "results" / f"{name}.md"
        if md.exists():
            parts.append(md.read_text().strip())
    body = "\n\n".join(parts) if parts else "(no results yet: run `make bench`)"
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(f"{head}{START}\n{body}\n{END}{tail}")
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--only", default="", help="comma-separated names (see PLAN)")
    ap.add_argument("--nice", type=int, default=0, help="niceness of the subprocesses")
    ap.add_argument("--timeout-scale", type=float, default=1.0)
    ap.add_argument("--readme", action=argparse.BooleanOptionalAction, default=None,
                    help="rewrite README.md's results section from results/*.md "
                         "(default: on for full runs, off with --quick)")
    a = ap.parse_args()
    only = {s for s in a.only.split(",") if s}
    runs = []
    for name, script, args, timeout, env in PLAN:
        if only and name not in only and name.split("[")[0] not in only:
            continue
        path = HERE / script
        if not path.exists():
            runs.append({"name": name, "status": "missing"})
            continue
        extra = [*args, "--quick"] if a.quick else args
        res = run_one(path, extra, timeout * a.timeout_scale * (0.5 if a.quick else 1.0), a.nice,
                      env)
        runs.append({"name": name, **res})
        print(f"[run_all] {name}: {res['status']} in {res['wall_s']:.0f} s", file=sys.stderr,
              flush=True)
    summary = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": a.quick,
        "runs": runs,
    }
    if a.readme if a.readme is not None else not a.quick:
        summary["readme_updated"] = update_readme()
    out_dir = HERE / "results" / ("quick" if a.quick else "")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "run_all.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 1 if any(r["status"] in ("failed", "timeout") for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
