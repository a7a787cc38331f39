"""The CH3F benchmark matrix with honest figures (issue 8).

Forms ``harmonic`` and ``mm3`` (8 parameters each: C–F and C–H stretch, F–C–H
and H–C–H bend, force constant and equilibrium value) × methods, every run
from the QFUERZA start, on the default objective
(``q2jax.fit.default_references``: QM frequencies plus the QM Cartesian
geometry, both fitted through the MM relaxation). Each row gives the honest
figures of the fitted force field (``q2jax.evaluate.evaluate``: geometry
relaxed with it, frequency RMSD vs QM, geometry RMSD, imaginary modes), the
number of objective evaluations, the wall time of the run after compilation
and the compile time (first call minus a second, timed call for the pure-JAX
solvers; the first objective call for the SciPy rows).

For contrast, rows labelled ``"objective": "fixed-geometry (Q2MM-style)"``
fit frequencies at the fixed QM geometry without stationarity (what the
original Q2MM does): they report their own score there
(``own_score_freq_rmsd_at_qm_geometry_cm1``) and the honest relaxed figures
of the same force field, which shows the failure mode described in
``q2jax/data/README.md``.

MM3 vs harmonic: at an unstrained minimum MM3's cubic/quartic stretch and
sextic bend terms do not change the Hessian, so MM3 should land near the
harmonic result. Each MM3 row carries a diagnostic (``strain``): the largest
deviation of bonds/angles from their equilibrium values at the relaxed
geometry, and the frequency RMSD between the MM3 Hessian and the harmonic
Hessian of the same parameters at that geometry; ``notes`` say why an MM3
row differs from its harmonic twin.

Usage: ``python benchmarks/ch3f_matrix.py [--quick] [--forms harmonic,mm3]
[--merge]`` (``--merge`` keeps rows of other forms from an earlier
``results/ch3f_matrix.json``, so the two forms can run as separate processes).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from _common import (
    LAST_CPU_S,
    RESULTS_DIR,
    _jsonable,
    default_spec,
    fmt,
    frequency_only_spec,
    header,
    honest,
    load_case,
    log,
    md_header,
    md_table,
    plot_curves,
    plot_parity,
    start_forcefield,
    timed,
    write_report,
)

from q2jax.objective import loss, residuals
from q2jax.solvers import minimize, optimization_loop

HONEST = "default (frequencies + geometry, relaxed)"
Q2MM_STYLE = "fixed-geometry (Q2MM-style)"


# --- runners ----------------------------------------------------------------------------------


CPU: dict[str, float] = {}
"""Process CPU seconds of the last run: ``{"wall": run, "compile": compile}``."""


def run_jax(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """``(result, wall_s, compile_s)``: first call compiles and runs, the second is timed."""
    _, first = timed(call)
    first_cpu = LAST_CPU_S[0]
    r, wall = timed(call)
    CPU.update(run=LAST_CPU_S[0], compile=max(first_cpu - LAST_CPU_S[0], 0.0))
    return r, wall, max(first - wall, 0.0)


def run_scipy(spec, p0, box, jac, maxiter: int) -> tuple[Any, float, float]:
    """SciPy L-BFGS-B on ``jax_objective(loss, spec)``; compile = first objective call(s)."""
    from q2jax.adapters.scipy import jax_objective, scipy_minimize

    obj = jax_objective(loss, spec)
    x0 = np.asarray(p0)
    _, c1 = timed(obj, x0)
    cpu = LAST_CPU_S[0]
    c2 = 0.0
    if jac is not None:
        _, c2 = timed(obj.value_and_grad, x0)
        cpu += LAST_CPU_S[0]
    r, wall = timed(scipy_minimize, obj, x0, method="L-BFGS-B", jac=jac, bounds=box,
                    maxiter=maxiter)
    CPU.update(run=LAST_CPU_S[0], compile=cpu)
    return r, wall, c1 + c2


N_BIG = 1000  # the large multi-start row; --n-big changes it (multistart.py runs 1,000)


def methods_table(ff, spec, quick: bool) -> list[tuple[str, Callable[[], Any] | None, dict]]:
    """(label, call, extra) per matrix method; SciPy rows have call None (run separately)."""
    p0 = ff.params
    box = ff.bounds()
    n_big = 50 if quick else N_BIG
    step = 0.1 * jnp.abs(p0)  # basin-hopping displacement: 10 % of each start value

    def m(method, **kw):
        def call():
            return minimize(loss, p0, spec, method=method, **kw)
        return call

    lm_kw = dict(residuals=residuals, bounds=box, maxiter=100)
    bh = dict(residuals=residuals, bounds=box, maxiter=50, niter=5 if quick else 20,
              stepsize=step, seed=0)
    rows = [
        ("SciPy L-BFGS-B (jac=None)", None, {"jac": None}),
        ("SciPy L-BFGS-B (jac='auto')", None, {"jac": "auto"}),
        ("jaxopt:lbfgs", m("jaxopt:lbfgs", maxiter=200), {}),
        ("jaxopt:lbfgsb", m("jaxopt:lbfgsb", bounds=box, maxiter=200), {}),
        ("optax:adam", m("optax:adam", bounds=box, maxiter=1000), {}),
        ("lm", m("lm", **lm_kw), {}),
        ("Nelder-Mead", m("Nelder-Mead", bounds=box, maxiter=2000), {}),
        ("multi:lm n=10", m("multi:lm", n_starts=10, perturbation_pct=20.0, seed=0, **lm_kw),
         {}),
        (f"multi:lm n={n_big}", m("multi:lm", n_starts=n_big, perturbation_pct=20.0, seed=0,
                                  **lm_kw), {}),
        # temperatures as arrays: both share one compilation
        ("basinhopping:lm T=0.5", m("basinhopping:lm", T=jnp.asarray(0.5), **bh), {}),
        ("basinhopping:lm T=1.0", m("basinhopping:lm", T=jnp.asarray(1.0), **bh), {}),
        ("grad-simp (jaxopt:lbfgsb + Nelder-Mead)", lambda: optimization_loop(
            loss, p0, spec, bounds=box, full_method="jaxopt:lbfgsb", max_params=3,
            max_cycles=5 if quick else 10, full_maxiter=100, simp_maxiter=200), {}),
        ("lm + L2 λ=0.01", None, {"lam": 0.01}),
    ]
    return rows


# --- diagnostics --------------------------------------------------------------------------------


def relaxed_coords(ff, case, params) -> np.ndarray:
    from q2jax.evaluate import _evaluate_batch
    from q2jax.relax import RelaxOptions
    from q2jax.system import build_batch

    f = ff.with_params(jnp.asarray(params))
    b = build_batch(f, [case.molecule])
    out = _evaluate_batch(f.full_params(), b.coords, b.masses, b.atom_mask, b.terms,
                          jnp.zeros((1,), jnp.int32), f.form, f.settings,
                          case.molecule.n_vibrations, RelaxOptions(max_steps=500, gtol=1e-8))
    return np.asarray(out["coords"][0])


def strain(ff, case, params) -> dict:
    """Largest |r - r0| (Å) and |θ - θ0| (deg) at the relaxed geometry, and the RMS
    difference between MM3 and harmonic frequencies of the same parameters there."""
    from q2jax.energy import hessian
    from q2jax.forcefield import ForceField
    from q2jax.system import build_system
    from q2jax.vibrations import frequencies

    x = relaxed_coords(ff, case, params)
    mol = case.molecule
    syms = mol.symbols
    values = dict(zip(ff.get_param_type_labels(), np.asarray(params), strict=True))
    dr, dth = [], []
    top = mol.topology()
    for i, j in top.bonds:
        a, b = sorted((syms[i], syms[j]))
        r0 = values.get(f"bond {a}-{b} eq")
        if r0 is not None:
            dr.append(abs(float(np.linalg.norm(x[i] - x[j])) - r0))
    for i, j, k in top.angles:
        a, c = sorted((syms[i], syms[k]))
        t0 = values.get(f"angle {a}-{syms[j]}-{c} eq")
        if t0 is None:
            continue
        u, v = x[i] - x[j], x[k] - x[j]
        th = np.degrees(np.arctan2(np.linalg.norm(np.cross(u, v)), np.dot(u, v)))
        dth.append(abs(float(th) - t0))
    out = {"max_bond_dev_angstrom": max(dr) if dr else 0.0,
           "max_angle_dev_deg": max(dth) if dth else 0.0}
    if ff.form == "mm3":
        harm = ForceField.from_molecules([mol], "harmonic").with_params(jnp.asarray(params))
        nus = []
        for f in (ff.with_params(jnp.asarray(params)), harm):
            s = build_system(f, mol)
            h = hessian(f.full_params(), jnp.asarray(x), s.terms, f.form, f.settings)
            nus.append(np.asarray(frequencies(h, jnp.asarray(x), mol.masses, mol.n_vibrations)))
        out["mm3_vs_harmonic_hessian_freq_rms_cm1"] = float(np.sqrt(np.mean(
            (nus[0] - nus[1]) ** 2)))
    return out


def history_of(r: Any) -> np.ndarray:
    if hasattr(r, "cycle_scores"):
        return np.asarray(r.cycle_scores)
    return np.asarray(r.history, float)


# --- rows -----------------------------------------------------------------------------------------


def make_row(form, method, objective, r, wall, compile_s, ff, case, extra=None) -> dict:
    params = np.asarray(r.params)
    h = honest(ff, case, params)
    row = {
        "form": form,
        "method": method,
        "objective": objective,
        "freq_rmsd_cm1": h["freq_rmsd_cm1"],
        "geom_rmsd_angstrom": h["geom_rmsd_angstrom"],
        "n_imaginary": h["n_imaginary"],
        "n_evaluations": int(np.sum(np.asarray(r.n_evals))),
        "wall_s": wall,
        "compile_s": compile_s,
        "wall_cpu_s": CPU.get("run"),
        "compile_cpu_s": CPU.get("compile"),
        "final_loss": float(np.asarray(r.value)),
        "relaxation_converged": h["converged"],
        "freq_rmsd_at_qm_geometry_cm1": h["at_qm_geometry_freq_rmsd_cm1"],
        "frequencies_cm1": h["frequencies_cm1"],
        "params": dict(zip(ff.get_param_type_labels(), params.tolist(), strict=True)),
    }
    status = getattr(r, "message", None)
    if status is not None:
        row["status"] = status if isinstance(status, str) else str(status)
    if extra:
        row.update(extra)
    if form == "mm3":
        row["strain"] = strain(ff, case, params)
    return row


def form_jobs(form, ff, case, quick) -> list[tuple[str, str, Callable[[], dict]]]:
    """(method label, objective label, thunk -> row) for every matrix row of one form."""
    spec = default_spec(case, ff)
    box = ff.bounds()
    scipy_iter = 100 if quick else 500
    jobs = []
    for label, call, extra in methods_table(ff, spec, quick):
        if "jac" in extra:
            def run(jac=extra["jac"]):
                return run_scipy(spec, ff.params, box, jac, maxiter=scipy_iter)
        elif "lam" in extra:
            def run(lam=extra["lam"]):
                spec_l2 = spec.with_lambda(lam)
                return run_jax(lambda: minimize(loss, ff.params, spec_l2, method="lm",
                                                residuals=residuals, bounds=box, maxiter=100))
        else:
            def run(call=call):
                return run_jax(call)
        lam = {"lam": extra["lam"]} if "lam" in extra else {}

        def job(label=label, run=run, lam=lam):
            r, wall, comp = run()
            return make_row(form, label, HONEST, r, wall, comp, ff, case, lam), history_of(r)

        jobs.append((label, HONEST, job))
    # fixed-geometry (Q2MM-style) contrast: frequencies at the QM geometry, no stationarity
    spec_q = frequency_only_spec(case, ff, frequencies_at="reference")
    n = len(case.frequencies)
    q_runs = [
        ("SciPy L-BFGS-B (jac='auto')",
         lambda: run_scipy(spec_q, ff.params, box, "auto", scipy_iter)),
        ("lm", lambda: run_jax(lambda: minimize(loss, ff.params, spec_q, method="lm",
                                                residuals=residuals, bounds=box,
                                                maxiter=100))),
    ]
    for label, run in q_runs:
        def job(label=label, run=run):
            r, wall, comp = run()
            own = float(np.sqrt(float(np.asarray(r.value)) / n))
            row = make_row(form, label, Q2MM_STYLE, r, wall, comp, ff, case,
                           {"own_score_freq_rmsd_at_qm_geometry_cm1": own})
            return row, history_of(r)

        jobs.append((label, Q2MM_STYLE, job))
    return jobs


def start_row(form, ff, case) -> dict:
    h0 = honest(ff, case)
    return {
        "form": form, "method": "QFUERZA start (no fit)", "objective": "—",
        "freq_rmsd_cm1": h0["freq_rmsd_cm1"], "geom_rmsd_angstrom": h0["geom_rmsd_angstrom"],
        "n_imaginary": h0["n_imaginary"], "n_evaluations": 0, "wall_s": 0.0, "compile_s": 0.0,
        "frequencies_cm1": h0["frequencies_cm1"],
        "params": dict(zip(ff.get_param_type_labels(), np.asarray(ff.params).tolist(),
                           strict=True)),
    }


def run_form(form: str, case, quick: bool, curves: dict, order: list[str],
             deadline: float, checkpoint: Callable[[list[dict]], None]) -> list[dict]:
    """All rows of one form; methods in ``order`` first (label prefixes), the rest after;
    once ``deadline`` (time.monotonic) has passed, remaining rows are marked skipped."""
    ff = start_forcefield(case, form)
    rows = [start_row(form, ff, case)]
    jobs = form_jobs(form, ff, case, quick)

    def rank(job):
        for k, prefix in enumerate(order):
            if job[0].startswith(prefix) or f"{job[0]} [{job[1]}]".startswith(prefix):
                return k
        return len(order)

    jobs.sort(key=rank)
    for label, objective, job in jobs:
        if time.monotonic() > deadline:
            rows.append({"form": form, "method": label, "objective": objective,
                         "skipped": "time budget of this run exhausted"})
            log(f"{form}: {label} [{objective}] skipped (time budget)")
            continue
        log(f"{form}: {label} [{objective}]")
        try:
            row, hist = job()
            curves[f"{form} {label}" + (" [Q2MM-style]" if objective == Q2MM_STYLE else "")] = hist
            msg = (f"  honest RMSD {row['freq_rmsd_cm1']:.1f} cm^-1, geom "
                   f"{row['geom_rmsd_angstrom']:.4f} Å, {row['n_evaluations']} evals, "
                   f"{row['wall_s']:.3f} s (+{row['compile_s']:.1f} s compile)")
            if "own_score_freq_rmsd_at_qm_geometry_cm1" in row:
                msg += f"; own score {row['own_score_freq_rmsd_at_qm_geometry_cm1']:.1f} cm^-1"
            log(msg)
        except Exception as err:  # noqa: BLE001  (one failing method must not end the matrix)
            row = {"form": form, "method": label, "objective": objective,
                   "error": f"{type(err).__name__}: {err}"}
            log(f"  FAILED: {row['error']}")
        rows.append(row)
        checkpoint(rows)
    return rows


def mm3_notes(rows: list[dict]) -> list[str]:
    """Explain MM3 rows that differ from their harmonic twins by more than 1 cm^-1."""
    harm = {(r["method"], r["objective"]): r for r in rows
            if r["form"] == "harmonic" and "freq_rmsd_cm1" in r}
    notes = []
    for r in rows:
        if r["form"] != "mm3" or "freq_rmsd_cm1" not in r:
            continue
        twin = harm.get((r["method"], r["objective"]))
        if twin is None:
            continue
        d = r["freq_rmsd_cm1"] - twin["freq_rmsd_cm1"]
        if abs(d) <= 1.0:
            continue
        s = r.get("strain", {})
        dh = s.get("mm3_vs_harmonic_hessian_freq_rms_cm1", float("nan"))
        why = ("strained minimum: the fitted equilibrium values cannot all be met at once "
               f"(max |θ−θ0| {s.get('max_angle_dev_deg', float('nan')):.2f}°, "
               f"|r−r0| {s.get('max_bond_dev_angstrom', float('nan')):.4f} Å), so MM3's "
               f"anharmonic terms change the Hessian ({dh:.1f} cm^-1 RMS vs the harmonic "
               "Hessian of the same parameters at that geometry)"
               if dh > 1.0 else
               "unstrained minimum (MM3 and harmonic Hessians of these parameters agree at "
               f"the relaxed geometry to {dh:.2f} cm^-1 RMS): the difference comes from the "
               "optimiser reaching another point, not from the MM3 terms")
        notes.append(f"mm3 {r['method']} [{r['objective']}]: {r['freq_rmsd_cm1']:.1f} vs "
                     f"harmonic {twin['freq_rmsd_cm1']:.1f} cm^-1: {why}")
    return notes


def table_md(report: dict) -> str:
    rows = report["rows"]
    out = md_header(report, "CH3F matrix, honest figures (benchmarks/ch3f_matrix.py)")
    out += "\n" + md_table(
        ["form", "method", "objective", "freq RMSD cm⁻¹", "geom RMSD Å", "imag",
         "evaluations", "wall s", "compile s", "own score @QM geom"],
        [[r["form"], r["method"], r.get("objective", ""), fmt(r.get("freq_rmsd_cm1")),
          fmt(r.get("geom_rmsd_angstrom"), 4), fmt(r.get("n_imaginary")),
          fmt(r.get("n_evaluations")), fmt(r.get("wall_s"), 3), fmt(r.get("compile_s")),
          fmt(r.get("own_score_freq_rmsd_at_qm_geometry_cm1"))]
         if "error" not in r and "skipped" not in r else
         [r["form"], r["method"], r.get("objective", ""),
          ("error: " + r["error"][:60]) if "error" in r else "skipped: " + r["skipped"],
          "", "", "", "", "", ""] for r in rows],
    )
    out += (
        "\n\nFrequency RMSD (vs the 9 QM frequencies) and geometry RMSD at the geometry relaxed "
        "with each fitted force field; 'own score' is the fixed-geometry objective's own "
        "frequency RMSD at the QM geometry (Q2MM-style rows only). QM frequencies: "
        "1040.6–3145.1 cm⁻¹.\n"
    )
    if report.get("notes"):
        out += "\nNotes:\n\n" + "\n".join(f"- {n}" for n in report["notes"]) + "\n"
    return out


def merged_rows(rows: list[dict], forms: list[str], files: list[Path]) -> tuple[list, dict]:
    """``rows`` plus the rows of other forms from earlier reports (later files win)."""
    by_form: dict[str, tuple[str, list]] = {}
    for path in files:
        if not path.exists():
            continue
        old = json.loads(path.read_text())
        for r in old.get("rows", []):
            r.setdefault("run_date", old.get("date"))
        for form in {r.get("form") for r in old.get("rows", [])} - set(forms):
            by_form[form] = (str(path), [r for r in old["rows"] if r.get("form") == form])
    for _, kept in by_form.values():
        rows = kept + rows
    return rows, {form: {"file": f, "date": kept[0].get("run_date")}
                  for form, (f, kept) in by_form.items()}


def finish(report: dict, rows: list[dict], forms: list[str], merge: list[str] | None,
           partial: bool) -> dict:
    """Merge, sort, add MM3 notes and write the report (``partial`` while running)."""
    rows = [dict(r) for r in rows]
    if merge is not None:
        files = [Path(f) for f in merge] or [RESULTS_DIR / "ch3f_matrix.json"]
        rows, report["merged_from"] = merged_rows(rows, forms, files)
    for r in rows:
        r.setdefault("run_date", report["date"])
    order = {"harmonic": 0, "mm3": 1}
    rows.sort(key=lambda r: order.get(r["form"], 2))
    out = dict(report, rows=rows, partial=partial)
    out["notes"] = list(dict.fromkeys(report["notes"] + mm3_notes(rows)))
    if partial:  # checkpoint: files only, stdout gets the final report
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / "ch3f_matrix.json").write_text(json.dumps(_jsonable(out), indent=2))
        (RESULTS_DIR / "ch3f_matrix.md").write_text(table_md(out))
        return out
    return write_report("ch3f_matrix", out, table_md(out))


def main() -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--forms", default="harmonic,mm3")
    ap.add_argument("--merge", nargs="*", default=None, metavar="JSON",
                    help="keep rows of the other forms from these reports (default: "
                         "results/ch3f_matrix.json); later files win")
    ap.add_argument("--order", default="", help="comma-separated method-label prefixes to "
                    "run first")
    ap.add_argument("--budget-s", type=float, default=float("inf"),
                    help="per form: methods not started within this many seconds are "
                         "reported as skipped")
    ap.add_argument("--n-big", type=int, default=1000,
                    help="starts of the large multi-start row (multistart.py times 1,000)")
    a = ap.parse_args()
    global N_BIG
    N_BIG = a.n_big
    forms = [f for f in a.forms.split(",") if f]
    order = [o for o in a.order.split(",") if o]
    report = header("ch3f_matrix", quick=a.quick, molecule="ch3f", start="QFUERZA",
                    objective=HONEST)
    report["settings"] = {
        "maxiter": {"SciPy": 100 if a.quick else 500, "jaxopt": 200, "optax:adam": 1000,
                    "lm": 100, "Nelder-Mead": 2000, "basin hopping local lm": 50},
        "multi-start": f"lm, ±20 % uniform perturbations, seed 0; large row n={a.n_big} "
                       "(1,000 starts: multistart.py)",
        "basin hopping": f"lm local, {5 if a.quick else 20} hops, step 10 % of each start "
                         "value, seed 0",
        "grad-simp": "full jaxopt:lbfgsb (100 it) + Nelder-Mead on the 3 most sensitive "
                     f"parameters (200 it), {5 if a.quick else 10} cycles max",
        "L2": "lm with λ=0.01 towards the QFUERZA start",
        "scipy_eps": "1e-3 (absolute finite-difference step, Q2MM's default)",
        "budget_s_per_form": a.budget_s,
    }
    case = load_case("ch3f")
    curves: dict = {}
    rows: list[dict] = []
    for form in forms:
        deadline = time.monotonic() + a.budget_s

        done = tuple(rows)

        def checkpoint(form_rows, done=done):
            finish(report, [*done, *form_rows], forms, a.merge, partial=True)

        rows += run_form(form, case, a.quick, curves, order, deadline, checkpoint)
        ok = [r for r in rows if r["form"] == form and "freq_rmsd_cm1" in r]
        tag = {Q2MM_STYLE: "Q2MM-style"}
        plot_parity(RESULTS_DIR / f"ch3f_matrix_parity_{form}.png", case.frequencies,
                    {f"{r['method']} [{tag.get(r['objective'], 'honest')}]":
                     r["frequencies_cm1"] for r in ok},
                    f"CH3F {form}: frequencies at the MM-relaxed geometry")
        plot_curves(RESULTS_DIR / f"ch3f_matrix_convergence_{form}.png",
                    {k: np.fmin.accumulate(v[np.isfinite(v)]) for k, v in curves.items()
                     if k.startswith(form) and np.isfinite(v).any()},
                    f"CH3F {form}: best objective so far",
                    "iteration / evaluation (SciPy) / cycle (grad-simp)", "loss")
    if any("skipped" in r for r in rows):
        report["notes"].append(
            f"rows marked 'skipped' were not started within the time budget of "
            f"{a.budget_s:.0f} s per form on this (shared, loaded) machine")
    return finish(report, rows, forms, a.merge, partial=False)


if __name__ == "__main__":
    main()
