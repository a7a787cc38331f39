"""Run the original Q2MM on CH3F and print one JSON object (for ``vs_q2mm.py``).

Runs in a separate interpreter that has ``q2mm`` installed (a scratch venv,
see ``benchmarks/README.md``); it never imports q2jax. For each functional
form the installed Q2MM's JAX engine supports, it builds Q2MM's own CH3F
case as its benchmark does (molecule from the XYZ with bond tolerance 1.5,
QM Hessian in Hartree/Bohr², Seminario/QFUERZA start, frequency references
on the sorted MM frequencies above 50 cm^-1 at the fixed QM geometry), times
one objective evaluation (median after warm-up), runs its ScipyOptimizer
with each requested method, and reports the start and fitted parameter
vectors with enough metadata (element keys, Q2MM's k unit factors, its MM
Hessian and frequencies at the QM geometry) for q2jax to convert and check
them.

Usage: ``python _q2mm_driver.py --data-dir DIR [--methods L-BFGS-B,Nelder-Mead]
[--maxiter N] [--eval-repeats N] [--forms harmonic,mm3]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np


def _log(msg: str) -> None:
    print(f"[q2mm-driver] {msg}", file=sys.stderr, flush=True)


def _param_layout(ff) -> list[dict]:
    """One entry per element of ``ff.get_param_vector()`` (bonds: k, r0; angles: k, theta0)."""
    out = []
    for b in ff.bonds:
        out.append({"kind": "bond", "elements": list(b.elements), "field": "k"})
        out.append({"kind": "bond", "elements": list(b.elements), "field": "eq"})
    for a in ff.angles:
        out.append({"kind": "angle", "elements": list(a.elements), "field": "k"})
        out.append({"kind": "angle", "elements": list(a.elements), "field": "eq"})
    for t in getattr(ff, "torsions", []):
        out.append({"kind": "torsion", "elements": list(t.elements), "field": "k"})
    for v in getattr(ff, "vdws", []):
        out.append({"kind": "vdw", "elements": [v.atom_type], "field": "radius"})
        out.append({"kind": "vdw", "elements": [v.atom_type], "field": "epsilon"})
    return out


def _k_factors() -> dict:
    """Q2MM's own factors from its stored k to kcal/mol/Å² (rad²), E = k Δ²,
    read from the installed engine module (1.0 where it stores kcal units)."""
    try:
        from q2mm.backends.mm import jax_engine as je

        return {
            "bond": float(getattr(je, "_BOND_K_CONV", 1.0)),
            "angle": float(getattr(je, "_ANGLE_K_CONV", 1.0)),
        }
    except Exception:  # noqa: BLE001
        return {"bond": 1.0, "angle": 1.0}


def _set_form(ff, form: str) -> bool:
    """Select ``form`` on a Q2MM force field; False if this Q2MM cannot."""
    if form == "harmonic":
        try:
            from q2mm.models.forcefield import FunctionalForm

            ff.functional_form = FunctionalForm("harmonic")
        except Exception:  # noqa: BLE001  (old Q2MM: harmonic is the only JAX form)
            pass
        return True
    try:
        from q2mm.models.forcefield import FunctionalForm

        ff.functional_form = FunctionalForm(form)
        return True
    except Exception:  # noqa: BLE001
        return False


def _median_eval_s(objective, x: np.ndarray, repeats: int) -> dict:
    """Wall and process-CPU seconds per objective call (medians after 3 warm-up calls)."""
    for _ in range(3):
        objective(x)
    times, cpu = [], []
    for _ in range(repeats):
        c = time.process_time()
        t = time.perf_counter()
        objective(x)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "cpu_median": statistics.median(cpu), "repeats": repeats}


def run_form(form: str, data_dir: Path, methods: list[str], maxiter: int, repeats: int) -> dict:
    from q2mm.backends.mm.jax_engine import JaxEngine
    from q2mm.models.molecule import Q2MMMolecule
    from q2mm.models.seminario import estimate_force_constants
    from q2mm.optimizers.objective import ObjectiveFunction, ReferenceData
    from q2mm.optimizers.scipy_opt import ScipyOptimizer

    mol = Q2MMMolecule.from_xyz(data_dir / "ch3f-optimized.xyz", bond_tolerance=1.5)
    hess_au = np.load(data_dir / "ch3f-hessian.npy")
    qm_all = np.loadtxt(data_dir / "ch3f-frequencies.txt")
    ff0 = estimate_force_constants(mol.with_hessian(hess_au))
    if not _set_form(ff0, form):
        return {"form": form, "skipped": f"this Q2MM ({_version()}) has no {form!r} JAX form"}
    engine = JaxEngine()
    mm_all = np.asarray(engine.frequencies(mol, ff0))
    qm_real = sorted(f for f in qm_all if f > 50.0)
    mm_idx = sorted(i for i, f in enumerate(mm_all) if f > 50.0)
    n = min(len(qm_real), len(mm_idx))

    def reference() -> ReferenceData:
        ref = ReferenceData()
        for k in range(n):
            ref.add_frequency(float(qm_real[k]), data_idx=int(mm_idx[k]), weight=0.001,
                              molecule_idx=0)
        return ref

    x0 = ff0.get_param_vector().copy()
    objective = ObjectiveFunction(ff0.copy(), engine, [mol], reference())
    t0 = time.perf_counter()
    score0 = objective(x0)
    first_call_s = time.perf_counter() - t0
    timing = _median_eval_s(objective, x0, repeats)
    out = {
        "form": form,
        "engine": engine.name,
        "param_layout": _param_layout(ff0),
        "k_to_kcal": _k_factors(),
        "start_params": x0.tolist(),
        "start_score": float(score0),
        "eval_first_call_s": first_call_s,
        "eval_s": timing,
        "start_hessian_au": np.asarray(engine.hessian(mol, ff0)).tolist(),
        "start_frequencies_cm1": np.asarray(engine.frequencies(mol, ff0)).tolist(),
        "reference_data_idx": [int(i) for i in mm_idx[:n]],
        "fits": [],
    }
    for method in methods:
        ff = ff0.copy()
        obj = ObjectiveFunction(ff, engine, [mol], reference())
        opt = ScipyOptimizer(method=method, maxiter=maxiter, verbose=False)
        _log(f"{form}: {method}")
        t = time.perf_counter()
        try:
            res = opt.optimize(obj)
        except Exception as err:  # noqa: BLE001
            out["fits"].append({"method": method, "error": f"{type(err).__name__}: {err}"})
            continue
        wall = time.perf_counter() - t
        ff.set_param_vector(res.final_params)
        out["fits"].append({
            "method": method,
            "final_params": np.asarray(res.final_params, float).tolist(),
            "initial_score": float(res.initial_score),
            "final_score": float(res.final_score),
            "n_evaluations": int(res.n_evaluations),
            "n_iterations": int(res.n_iterations),
            "success": bool(res.success),
            "message": str(res.message),
            "wall_s": wall,
            "hessian_au": np.asarray(engine.hessian(mol, ff)).tolist(),
            "frequencies_cm1": np.asarray(engine.frequencies(mol, ff)).tolist(),
        })
    return out


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("q2mm")
    except Exception:  # noqa: BLE001
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--methods", default="L-BFGS-B,Nelder-Mead")
    ap.add_argument("--forms", default="harmonic,mm3")
    ap.add_argument("--maxiter", type=int, default=500)
    ap.add_argument("--eval-repeats", type=int, default=30)
    a = ap.parse_args()
    report: dict = {"q2mm_version": _version(), "python": sys.version.split()[0], "forms": []}
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        report["jax_version"] = jax.__version__
        for form in a.forms.split(","):
            try:
                report["forms"].append(
                    run_form(form, a.data_dir, a.methods.split(","), a.maxiter, a.eval_repeats)
                )
            except Exception as err:  # noqa: BLE001
                report["forms"].append({"form": form, "skipped": f"{type(err).__name__}: {err}",
                                        "traceback": traceback.format_exc()})
    except Exception as err:  # noqa: BLE001
        report["error"] = f"{type(err).__name__}: {err}"
        report["traceback"] = traceback.format_exc()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
