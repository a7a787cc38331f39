"""q2jax next to the original Q2MM on the same CH3F cases, in one run (issue 8).

The original Q2MM cannot be imported into q2jax's environment; it runs in a
subprocess with another interpreter (``$Q2MM_PYTHON``, default
``/tmp/q2mm-venv/bin/python``; how to create it: ``benchmarks/README.md``)
through ``benchmarks/_q2mm_driver.py``, which prints JSON. If that
interpreter or ``q2mm`` is missing, the report says ``"skipped": reason``
and the script exits 0.

Per functional form (``harmonic``; ``mm3`` where the installed Q2MM's JAX
engine has it):

- per-evaluation cost: Q2MM's ``ObjectiveFunction`` call (MM Hessian and
  frequencies at the fixed QM geometry, its default CH3F frequency
  reference) against q2jax's compiled loss on the same data at the same
  geometry (``frequencies_at="reference"``), each a median after warm-up,
  both measured in this run; q2jax's honest (relaxed) objective and its
  loss+gradient are reported too;
- honest figures: each force field Q2MM fits (its ScipyOptimizer methods)
  is converted to q2jax units and evaluated by q2jax's relaxed-geometry
  evaluator, next to q2jax's own fit (default objective, Levenberg–Marquardt).
  The conversion is checked by comparing the MM Hessian at the QM geometry
  from both codes for every converted force field.

Usage: ``python benchmarks/vs_q2mm.py [--quick]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from _common import (
    BENCH_DIR,
    RESULTS_DIR,
    compile_fn,
    default_spec,
    fmt,
    frequency_only_spec,
    header,
    honest,
    load_case,
    log,
    md_header,
    md_table,
    median_call_time,
    plot_parity,
    quick_flag,
    start_forcefield,
    timed,
    write_report,
)

from q2jax.datasets import DATA_DIR
from q2jax.energy import hessian
from q2jax.objective import loss, residuals
from q2jax.system import build_system
from q2jax.units import HARTREE_BOHR2_TO_KCAL_MOL_A2

DEFAULT_PYTHONS = ("/tmp/q2mm-venv/bin/python", "/tmp/q2mm-head-venv/bin/python")
Q2MM_WEIGHT = 0.001  # Q2MM's CH3F frequency weight (its benchmark's default)


def q2mm_pythons() -> tuple[list[str], list[str]]:
    """Interpreters that can import q2mm and jax, and the reasons the others cannot.

    ``$Q2MM_PYTHON`` (one path, or several separated by ``:``) overrides the
    defaults (the PyPI release venv and, if present, a source-tree venv).
    """
    env = os.environ.get("Q2MM_PYTHON")
    candidates = env.split(":") if env else list(DEFAULT_PYTHONS)
    ok, reasons = [], []
    for py in candidates:
        if not Path(py).exists():
            reasons.append(f"no Q2MM interpreter at {py}")
            continue
        try:
            r = subprocess.run([py, "-c", "import q2mm, jax"], capture_output=True, text=True,
                               timeout=300)
        except (OSError, subprocess.TimeoutExpired) as err:
            reasons.append(f"{py} failed to start: {err}")
            continue
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["?"])[-1]
            reasons.append(f"{py} cannot import q2mm and jax: {last}")
            continue
        ok.append(py)
    return ok, reasons


def run_driver(py: str, methods: list[str], maxiter: int, repeats: int, timeout: float) -> dict:
    cmd = [
        py, str(BENCH_DIR / "_q2mm_driver.py"), "--data-dir", str(DATA_DIR / "ch3f"),
        "--methods", ",".join(methods), "--maxiter", str(maxiter),
        "--eval-repeats", str(repeats),
    ]
    log("running Q2MM: " + " ".join(cmd))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    sys.stderr.write(r.stderr[-4000:])
    if r.returncode != 0:
        raise RuntimeError(f"Q2MM driver exited {r.returncode}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def to_q2jax_params(ff, layout: list[dict], values: list[float], k_to_kcal: dict) -> np.ndarray:
    """Q2MM parameter vector -> q2jax trainable vector (same element keys).

    Q2MM's stored force constants times its own factor ``k_to_kcal`` give
    kcal/mol/Å² (bonds) and kcal/mol/rad² (angles) with E = k Δ², q2jax's
    convention; equilibrium values are Å and degrees in both codes.
    """
    table = {}
    for item, v in zip(layout, values, strict=True):
        kind, el, fld = item["kind"], item["elements"], item["field"]
        if kind == "bond":
            key = ("bond", tuple(sorted(el)))
        elif kind == "angle":
            key = ("angle", (el[1], *sorted((el[0], el[2]))))
        else:
            continue
        scale = float(k_to_kcal.get(kind, 1.0)) if fld == "k" else 1.0
        table[(*key, fld)] = float(v) * scale
    out = []
    for e in ff.trainable_entries:
        family, fld = e.kind.split("_")
        if family == "bond":
            key = ("bond", tuple(sorted(e.key)), fld)
        else:
            key = ("angle", (e.key[1], *sorted((e.key[0], e.key[2]))), fld)
        if key not in table:
            raise KeyError(f"no Q2MM value for q2jax parameter {e.kind} {e.key}")
        out.append(table[key])
    return np.asarray(out, float)


def hessian_check(ff, case, params: np.ndarray, q2mm_hessian_au: list) -> dict:
    """Compare q2jax's MM Hessian at the QM geometry with Q2MM's (converted)."""
    f = ff.with_params(jnp.asarray(params))
    sysm = build_system(f, case.molecule)
    h = np.asarray(hessian(f.full_params(), case.molecule.coords, sysm.terms, f.form, f.settings))
    hq = np.asarray(q2mm_hessian_au, float) * HARTREE_BOHR2_TO_KCAL_MOL_A2
    scale = max(float(np.max(np.abs(hq))), 1e-12)
    return {"max_abs_diff_kcal_mol_A2": float(np.max(np.abs(h - hq))),
            "max_rel_diff": float(np.max(np.abs(h - hq)) / scale)}


def q2mm_vibrations(freqs: list[float]) -> np.ndarray:
    """Q2MM's sorted frequencies without the six smallest in magnitude (external modes)."""
    f = np.asarray(freqs, float)
    keep = np.sort(np.argsort(np.abs(f))[6:])
    return np.sort(f[keep])


def q2jax_side(case, form: str, repeats: int, number: int) -> dict:
    """q2jax's per-evaluation times (same run) and its own honest fit."""
    from q2jax.solvers import minimize

    ff = start_forcefield(case, form)
    p = ff.params
    out: dict = {}
    spec_ref = frequency_only_spec(case, ff, frequencies_at="reference")
    loss_ref, c_ref = compile_fn(loss, p, spec_ref)
    out["eval_reference_s"] = median_call_time(
        lambda x: float(loss_ref(x, spec_ref)), p, number=number, repeats=repeats)
    out["eval_reference_compile_s"] = c_ref
    spec = default_spec(case, ff)
    loss_rel, c_rel = compile_fn(loss, p, spec)
    out["eval_relaxed_s"] = median_call_time(
        lambda x: float(loss_rel(x, spec)), p, number=max(number // 5, 5), repeats=repeats)
    out["eval_relaxed_compile_s"] = c_rel
    vg, c_vg = compile_fn(jax.value_and_grad(loss), p, spec)
    out["loss_and_grad_relaxed_s"] = median_call_time(vg, p, spec, number=max(number // 5, 5),
                                                      repeats=repeats)
    log(f"q2jax {form}: fit (lm, default objective)")
    box = ff.bounds()

    def fit(x0):
        return minimize(loss, x0, spec, method="lm", residuals=residuals, bounds=box,
                        maxiter=100)

    r, first = timed(fit, p)
    r, wall = timed(fit, p)
    out["fit"] = {"method": "lm", "objective": "default (frequencies + geometry, relaxed)",
                  "wall_s": wall, "first_call_s": first, "n_evaluations": int(r.n_evals),
                  "params": np.asarray(r.params)}
    out["forcefield"] = ff
    out["spec"] = spec
    out["fit_fn"] = fit
    return out


def compare_form(form_out: dict, case, qj: dict, ff, version: str, parity: dict) -> tuple:
    """Rows for one Q2MM run of one form, plus its start summary and conversion check."""
    form = form_out["form"]
    q2mm_eval_ms = form_out["eval_s"]["median"] * 1e3
    qj_eval_ms = qj["eval_reference_s"]["median"] * 1e3
    q2mm_cpu_ms = form_out["eval_s"].get("cpu_median", float("nan")) * 1e3
    qj_cpu_ms = qj["eval_reference_s"]["cpu_median"] * 1e3
    qj_honest = qj["honest"]
    start_q2mm = to_q2jax_params(ff, form_out["param_layout"], form_out["start_params"],
                                 form_out["k_to_kcal"])
    start_honest = honest(ff, case, start_q2mm)
    checks = [hessian_check(ff, case, start_q2mm, form_out["start_hessian_au"])]
    # the Seminario start is stationary at the QM geometry, so there both codes'
    # frequencies must agree (Q2MM does not project rotations; q2jax does)
    start_freq_diff = float(np.max(np.abs(
        q2mm_vibrations(form_out["start_frequencies_cm1"])
        - np.asarray(start_honest["at_qm_geometry_frequencies_cm1"]))))
    # q2jax's own fit from Q2MM's Seminario start (same compiled solver)
    r2, _ = timed(qj["fit_fn"], jnp.asarray(start_q2mm))
    qj_from_q2mm_start = honest(ff, case, np.asarray(r2.params))
    rows = []
    for fit in form_out["fits"]:
        if "error" in fit:
            rows.append({"form": form, "q2mm_version": version, "method": fit["method"],
                         "error": fit["error"]})
            continue
        p = to_q2jax_params(ff, form_out["param_layout"], fit["final_params"],
                            form_out["k_to_kcal"])
        chk = hessian_check(ff, case, p, fit["hessian_au"])
        checks.append(chk)
        h = honest(ff, case, p)
        nu_q2mm = q2mm_vibrations(fit["frequencies_cm1"])
        own = float(np.sqrt(fit["final_score"] / len(case.frequencies)) / Q2MM_WEIGHT)
        parity[f"Q2MM {version} {form} {fit['method']}"] = h["frequencies_cm1"]
        rows.append({
            "form": form,
            "q2mm_version": version,
            "method": fit["method"],
            "q2mm_eval_ms": q2mm_eval_ms,
            "q2jax_eval_ms": qj_eval_ms,
            "speedup": q2mm_eval_ms / qj_eval_ms,
            "q2mm_eval_cpu_ms": q2mm_cpu_ms,
            "q2jax_eval_cpu_ms": qj_cpu_ms,
            "speedup_cpu": q2mm_cpu_ms / qj_cpu_ms,
            "q2mm_freq_rmsd_cm1": h["freq_rmsd_cm1"],
            "q2jax_freq_rmsd_cm1": qj_honest["freq_rmsd_cm1"],
            "q2mm_geom_rmsd_angstrom": h["geom_rmsd_angstrom"],
            "q2jax_geom_rmsd_angstrom": qj_honest["geom_rmsd_angstrom"],
            "q2mm_n_imaginary": h["n_imaginary"],
            "q2jax_n_imaginary": qj_honest["n_imaginary"],
            "q2mm_own_score_freq_rmsd_at_qm_geometry_cm1": own,
            "q2mm_freq_rmsd_at_qm_geometry_by_q2jax_cm1": h["at_qm_geometry_freq_rmsd_cm1"],
            # differs where the force field is not stationary at the QM geometry:
            # Q2MM diagonalises the unprojected Hessian, q2jax projects out rotations
            "q2mm_unprojected_vs_q2jax_projected_freq_max_diff_at_qm_geometry_cm1":
                float(np.max(np.abs(nu_q2mm - np.asarray(
                    h["at_qm_geometry_frequencies_cm1"])))),
            "q2mm_n_evaluations": fit["n_evaluations"],
            "q2mm_fit_wall_s": fit["wall_s"],
            "q2mm_final_params_q2jax_units": p,
            "q2jax_method": "lm (default objective)",
            "q2jax_n_evaluations": qj["fit"]["n_evaluations"],
            "q2jax_fit_wall_s": qj["fit"]["wall_s"],
            "q2jax_fit_first_call_s": qj["fit"]["first_call_s"],
            "q2jax_eval_relaxed_ms": qj["eval_relaxed_s"]["median"] * 1e3,
            "q2jax_loss_and_grad_relaxed_ms": qj["loss_and_grad_relaxed_s"]["median"] * 1e3,
            "q2jax_eval_compile_s": qj["eval_reference_compile_s"],
            "hessian_check": chk,
        })
    start = {
        "q2mm_seminario_params_q2jax_units": start_q2mm,
        "q2mm_seminario_honest_freq_rmsd_cm1": start_honest["freq_rmsd_cm1"],
        "q2jax_qfuerza_params": np.asarray(ff.params),
        "q2jax_qfuerza_honest_freq_rmsd_cm1": honest(ff, case)["freq_rmsd_cm1"],
        "q2jax_lm_from_q2mm_start_freq_rmsd_cm1": qj_from_q2mm_start["freq_rmsd_cm1"],
        "q2jax_lm_from_q2mm_start_geom_rmsd_angstrom": qj_from_q2mm_start["geom_rmsd_angstrom"],
        "q2mm_eval_first_call_s": form_out["eval_first_call_s"],
    }
    # units: at the Seminario start (equilibrium values at the QM geometry) only the
    # quadratic terms contribute, so Hessians and frequencies must agree exactly
    fitted = max((c["max_rel_diff"] for c in checks[1:]), default=float("nan"))
    check = {"start_max_rel_hessian_diff": checks[0]["max_rel_diff"],
             "start_freq_max_diff_cm1": start_freq_diff,
             "units_ok": checks[0]["max_rel_diff"] < 1e-6 and start_freq_diff < 0.5,
             "fitted_max_rel_hessian_diff": fitted}
    if form == "mm3" and fitted > 1e-6:
        check["note"] = (
            "fitted MM3 force fields are strained at the QM geometry, where the two codes' "
            "MM3 bends differ: q2jax uses the sextic coefficient 2.2e-8 deg^-4 (Tinker's "
            "mm3.prm, MacroModel's MM3*), Q2MM the 9.0e-10 printed by Allinger 1989; the "
            "quadratic terms (units) agree, see start_max_rel_hessian_diff")
    return rows, start, check


def main() -> dict:
    quick = quick_flag()
    report = header("vs_q2mm", quick=quick)
    pythons, reasons = q2mm_pythons()
    if reasons:
        report["unavailable"] = reasons
    if not pythons:
        report["skipped"] = "; ".join(reasons) + " (see benchmarks/README.md)"
        report["cases"] = []
        log("skipped: " + report["skipped"])
        return write_report("vs_q2mm", report)
    methods = ["L-BFGS-B"] if quick else ["L-BFGS-B", "Nelder-Mead"]
    maxiter = 50 if quick else 500
    report["q2mm_objective"] = (
        "Q2MM's CH3F case: sorted MM frequencies above 50 cm^-1 at the fixed QM geometry, "
        f"weight {Q2MM_WEIGHT}, Seminario start, scipy methods {methods}, maxiter {maxiter}"
    )
    case = load_case("ch3f")
    cases: list[dict] = []
    parity: dict = {}
    q2jax_cache: dict = {}
    report["q2mm_runs"] = []
    for py in pythons:
        try:
            q2mm = run_driver(py, methods, maxiter, 10 if quick else 50, timeout=1500)
        except Exception as err:  # noqa: BLE001  (report, never crash)
            report["q2mm_runs"].append({"python": py, "error": f"{type(err).__name__}: {err}"})
            continue
        version = str(q2mm.get("q2mm_version"))
        report["q2mm_runs"].append({"python": py, "q2mm_version": version,
                                    "jax_version": q2mm.get("jax_version"),
                                    "error": q2mm.get("error")})
        for form_out in q2mm.get("forms", []):
            form = form_out["form"]
            if "skipped" in form_out:
                cases.append({"form": form, "q2mm_version": version,
                              "skipped": form_out["skipped"]})
                log(f"Q2MM {version} {form}: skipped ({form_out['skipped']})")
                continue
            if form not in q2jax_cache:
                log(f"{form}: q2jax timings and fit")
                qj = q2jax_side(case, form, repeats=7 if quick else 15,
                                number=20 if quick else 100)
                qj["honest"] = honest(qj["forcefield"], case, qj["fit"]["params"])
                parity[f"q2jax {form} lm"] = qj["honest"]["frequencies_cm1"]
                q2jax_cache[form] = qj
            qj = q2jax_cache[form]
            rows, start, check = compare_form(form_out, case, qj, qj["forcefield"], version,
                                              parity)
            cases += rows
            report.setdefault("starts", {})[f"{version} {form}"] = start
            report.setdefault("conversion_check", {})[f"{version} {form}"] = check
    report["cases"] = cases
    if not any("speedup" in c for c in cases):
        report["skipped"] = "no Q2MM run produced a comparable case"
    if parity:
        plot_parity(RESULTS_DIR / "vs_q2mm_parity.png", case.frequencies, parity,
                    "CH3F: Q2MM vs q2jax fits, frequencies at the MM-relaxed geometry")
    rows = [c for c in cases if "speedup" in c]
    table = md_header(report, "q2jax vs the original Q2MM, CH3F (benchmarks/vs_q2mm.py)")
    table += "\nQ2MM in scratch venvs (" + ", ".join(
        f"{r.get('q2mm_version')}" for r in report["q2mm_runs"]) + "), same run.\n\n"
    table += md_table(
        ["form", "Q2MM", "Q2MM method", "Q2MM eval ms (CPU)", "q2jax eval ms (CPU)",
         "speedup (CPU)",
         "Q2MM own score (RMSD @QM geom)", "Q2MM honest RMSD", "Q2MM geom RMSD Å",
         "q2jax honest RMSD (lm)", "q2jax geom RMSD Å"],
        [[c["form"], c["q2mm_version"], c["method"],
          f"{fmt(c['q2mm_eval_ms'], 3)} ({fmt(c['q2mm_eval_cpu_ms'], 3)})",
          f"{fmt(c['q2jax_eval_ms'], 3)} ({fmt(c['q2jax_eval_cpu_ms'], 3)})",
          f"{fmt(c['speedup'])} ({fmt(c['speedup_cpu'])})",
          fmt(c["q2mm_own_score_freq_rmsd_at_qm_geometry_cm1"]),
          fmt(c["q2mm_freq_rmsd_cm1"]), fmt(c["q2mm_geom_rmsd_angstrom"], 3),
          fmt(c["q2jax_freq_rmsd_cm1"]), fmt(c["q2jax_geom_rmsd_angstrom"], 3)] for c in rows]
        + [[c["form"], c["q2mm_version"], "—", "skipped: " + c["skipped"], "", "", "", "", "",
            "", ""] for c in cases if "skipped" in c],
    )
    table += (
        "\n\nRMSDs in cm^-1 at the geometry relaxed with each force field (q2jax's evaluator); "
        "'own score' is Q2MM's objective expressed as a frequency RMSD at the fixed QM "
        "geometry. Evaluation = one objective value at the QM geometry (Q2MM: its "
        "ObjectiveFunction call; q2jax: the compiled loss, host round trip included); "
        "medians of wall time and, in brackets, of process CPU time, which a loaded "
        "machine disturbs less.\n"
    )
    return write_report("vs_q2mm", report, table)


if __name__ == "__main__":
    main()
