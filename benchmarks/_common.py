"""Shared helpers of the benchmark scripts (machine info, timing, reports, CH3F).

Every benchmark prints one JSON object on stdout (progress on stderr) and
writes the same object to ``benchmarks/results/<script>.json``, plus a
markdown table ``<script>.md`` where it has one (``CONTRACTS.md``);
``--quick`` runs write to ``benchmarks/results/quick/`` instead.

Timing conventions (this is a shared 2-core machine, absolute times are
noisy): a function is compiled first (``jax.jit(f).lower(...).compile()``,
whose duration is the reported compile time), called ``warmup`` times, then
timed in ``repeats`` blocks of ``number`` calls each; the reported time is the
median over blocks of (block time / number). Ratios are always formed from
numbers measured in the same run. Per-call speed benchmarks use XLA's default
optimisation level; whole-fit benchmarks dominated by compilation (the CH3F
matrix) may run with the CLI's fast-compile ``XLA_FLAGS`` (``run_all.py`` sets
them there); the flags in force are recorded in ``machine["xla_flags"]`` and a
note.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads it: q2jax/__init__.py

import jax  # noqa: E402
import jax.numpy as jnp
import numpy as np

import q2jax  # noqa: F401  (enables float64)

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results" / ("quick" if "--quick" in sys.argv[1:] else "")
"""``benchmarks/results`` (``benchmarks/results/quick`` for ``--quick`` runs, so small
runs never overwrite the full results)."""
FAST_COMPILE_MARKERS = ("xla_backend_optimization_level", "xla_llvm_disable_expensive_passes")


# --- output -------------------------------------------------------------------------------


def log(msg: str) -> None:
    """Progress line on stderr (stdout carries only the JSON report)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """The ``"machine"`` field: CPU model, cores, JAX backend and devices, XLA flags,
    and the 1-minute load average at start (the machine is shared)."""
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "jax_backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_average_1m_at_start": load,
    }


def header(name: str, **extra: Any) -> dict[str, Any]:
    """Common fields of every report (CONTRACTS.md): machine, date, jax_version."""
    flags = os.environ.get("XLA_FLAGS", "")
    notes = []
    if any(m in flags for m in FAST_COMPILE_MARKERS):
        notes.append(
            f"XLA_FLAGS={flags!r}: the q2jax CLI's fast-compile setting (compiles several "
            "times shorter; compiled code may run slower than at XLA's default level)"
        )
    out = {
        "benchmark": name,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "jax_version": jax.__version__,
        "q2jax_version": q2jax.__version__,
        "machine": machine_info(),
        "notes": notes,
    }
    out.update(extra)
    return out


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray | jax.Array):
        return _jsonable(np.asarray(x).tolist())
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating | float):
        v = float(x)
        return v if np.isfinite(v) else None
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def write_report(name: str, report: dict[str, Any], table: str | None = None) -> dict:
    """Write ``results/<name>.json`` (and ``<name>.md`` if ``table``) and print the
    JSON on stdout. Non-finite floats become ``null``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    data = _jsonable(report)
    text = json.dumps(data, indent=2)
    (RESULTS_DIR / f"{name}.json").write_text(text + "\n")
    if table is not None:
        (RESULTS_DIR / f"{name}.md").write_text(table.rstrip() + "\n")
    print(text, flush=True)
    return data


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; floats as given (format them before)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        lines.append("| " + " | ".join("" if v is None else str(v) for v in r) + " |")
    return "\n".join(lines)


def md_header(report: dict[str, Any], title: str) -> str:
    m = report["machine"]
    return (
        f"### {title}\n\n"
        f"{report['date']} · {m['cpu']} ({m['cores']} cores, JAX {report['jax_version']} "
        f"on {m['jax_backend']}; load average at start {m['load_average_1m_at_start']})\n"
    )


def fmt(x: Any, digits: int = 1) -> str:
    """Number for a table cell ('—' for None / NaN)."""
    if x is None:
        return "—"
    if isinstance(x, bool | np.bool_):
        return str(bool(x))
    if isinstance(x, int | np.integer):
        return str(int(x))
    v = float(x)
    if not np.isfinite(v):
        return "—"
    return f"{v:.{digits}f}"


# --- timing -------------------------------------------------------------------------------


def block(x: Any) -> Any:
    return jax.block_until_ready(x)


def compile_fn(fn: Callable, *args: Any) -> tuple[Callable, float]:
    """``(compiled, seconds)`` for ``jax.jit(fn).lower(*args).compile()``."""
    c = time.process_time()
    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    wall = time.perf_counter() - t
    LAST_CPU_S[0] = time.process_time() - c
    return compiled, wall


LAST_CPU_S = [0.0]
"""Process CPU seconds (all threads) of the last :func:`timed` call: on an
oversubscribed machine wall time stretches with other jobs' load, CPU time much less."""


def timed(fn: Callable, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``(result, wall seconds)`` of one call, waiting for asynchronous results;
    the process CPU time of the call is left in ``LAST_CPU_S[0]``."""
    c = time.process_time()
    t = time.perf_counter()
    out = block(fn(*args, **kwargs))
    wall = time.perf_counter() - t
    LAST_CPU_S[0] = time.process_time() - c
    return out, wall


def median_call_time(
    fn: Callable,
    *args: Any,
    number: int = 50,
    repeats: int = 15,
    warmup: int = 3,
) -> dict[str, float]:
    """Seconds per call of ``fn(*args)``: median (and min, max) over ``repeats``
    blocks of ``number`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        block(fn(*args))
    per_call, cpu = [], []
    for _ in range(repeats):
        c = time.process_time()
        t = time.perf_counter()
        out = None
        for _ in range(number):
            out = fn(*args)
        block(out)
        per_call.append((time.perf_counter() - t) / number)
        cpu.append((time.process_time() - c) / number)
    return {
        "median": statistics.median(per_call),
        "min": min(per_call),
        "max": max(per_call),
        "cpu_median": statistics.median(cpu),
        "calls": number * repeats,
    }


def median_run_time(fn: Callable, *args: Any, repeats: int = 5, **kwargs: Any) -> tuple[Any, dict]:
    """``(last result, {median, min, max, repeats})`` of whole runs (e.g. a fit),
    each waited for; call once before to exclude compilation."""
    times, cpu, out = [], [], None
    for _ in range(repeats):
        out, dt = timed(fn, *args, **kwargs)
        times.append(dt)
        cpu.append(LAST_CPU_S[0])
    return out, {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "cpu_median": statistics.median(cpu),
        "repeats": repeats,
    }


# --- CH3F and friends -----------------------------------------------------------------------


def load_case(name: str = "ch3f"):
    """A bundled QM case (``q2jax.datasets.load_case``)."""
    from q2jax.datasets import load_case as _load

    return _load(name)


def start_forcefield(case, form: str = "harmonic"):
    """Element-keyed force field of ``form`` with QFUERZA force constants
    (``q2jax.fit.qfuerza_start``); equilibrium values at the QM geometry."""
    from q2jax.fit import qfuerza_start
    from q2jax.forcefield import ForceField

    ff = ForceField.from_molecules([case.molecule], form)
    return qfuerza_start(ff, [case.molecule], [case.hessian])


def default_spec(case, ff, *, frequencies_at: str = "relaxed", lam: float = 0.0):
    """The default objective (``q2jax.fit.default_references``: frequencies plus
    Cartesian geometry), evaluated at the relaxed (default) or QM geometry."""
    from q2jax.fit import default_references
    from q2jax.objective import make_objective

    refs = default_references([case.molecule], [case.hessian])
    return make_objective(ff, refs, frequencies_at=frequencies_at, lam=lam)


def frequency_only_spec(case, ff, *, frequencies_at: str = "reference"):
    """Frequencies only (weight 1 per cm^-1), as the original Q2MM fits CH3F."""
    from q2jax.objective import make_objective
    from q2jax.reference import ReferenceSet

    refs = ReferenceSet.from_qm([case.molecule], [case.hessian])
    return make_objective(ff, refs, frequencies_at=frequencies_at)


def honest(ff, case, params=None) -> dict[str, Any]:
    """Honest figures of one force field (``q2jax.evaluate.evaluate``: geometry
    relaxed with the force field, then frequencies and geometry RMSD)."""
    from q2jax.evaluate import evaluate

    f = ff if params is None else ff.with_params(jnp.asarray(params))
    e = evaluate(f, [case.molecule], [case.frequencies])[0]
    return {
        "freq_rmsd_cm1": e.freq_rmsd_cm1,
        "geom_rmsd_angstrom": e.geom_rmsd_angstrom,
        "n_imaginary": e.n_imaginary,
        "converged": e.converged,
        "max_force_kcal_mol_A": e.max_force_kcal_mol_A,
        "frequencies_cm1": e.frequencies_cm1,
        "at_qm_geometry_freq_rmsd_cm1": e.at_qm_geometry["freq_rmsd_cm1"],
        "at_qm_geometry_frequencies_cm1": e.at_qm_geometry["frequencies_cm1"],
    }


def honest_batch(ff, case, params: np.ndarray, chunk: int = 250) -> dict[str, np.ndarray]:
    """Honest figures for many parameter vectors of one force field (rows of
    ``params``), vmapping ``q2jax.evaluate._evaluate_batch`` in chunks.

    Returns arrays ``freq_rmsd_cm1``, ``geom_rmsd_angstrom``, ``n_imaginary``,
    ``converged`` (one entry per row) and ``frequencies_cm1`` (rows × modes).
    """
    from q2jax.evaluate import IMAGINARY_THRESHOLD_CM1, _evaluate_batch
    from q2jax.relax import RelaxOptions
    from q2jax.system import build_batch

    mol = case.molecule
    batch = build_batch(ff, [mol])
    k = mol.n_vibrations
    opts = RelaxOptions(max_steps=500, gtol=1e-8)
    orders = jnp.asarray([1 if case.transition_state else 0], jnp.int32)

    def one(p):
        return _evaluate_batch(
            ff.full_params(p), batch.coords, batch.masses, batch.atom_mask, batch.terms, orders,
            ff.form, ff.settings, k, opts,
        )

    fn = jax.jit(jax.vmap(one))
    params = np.asarray(params, float)
    nus, geoms, conv = [], [], []
    for i in range(0, params.shape[0], chunk):
        part = params[i : i + chunk]
        n_real = part.shape[0]
        if n_real < chunk and params.shape[0] > chunk:  # keep one compiled shape
            part = np.concatenate([part, np.repeat(part[-1:], chunk - n_real, 0)])
        out = jax.tree_util.tree_map(np.asarray, fn(jnp.asarray(part)))
        nus.append(out["nu_relaxed"][:n_real, 0, :k])
        geoms.append(out["geom_rmsd"][:n_real, 0])
        conv.append(out["converged"][:n_real, 0])
    nu = np.concatenate(nus)
    qm = np.asarray(case.frequencies, float)
    rmsd = np.sqrt(np.mean((nu - qm) ** 2, axis=1))
    return {
        "freq_rmsd_cm1": rmsd,
        "geom_rmsd_angstrom": np.concatenate(geoms),
        "n_imaginary": np.sum(nu < -IMAGINARY_THRESHOLD_CM1, axis=1),
        "converged": np.concatenate(conv),
        "frequencies_cm1": nu,
    }


def stats(x: np.ndarray) -> dict[str, float]:
    """min / median / max of the finite entries (NaN if none)."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"min": float("nan"), "median": float("nan"), "max": float("nan")}
    return {"min": float(np.min(x)), "median": float(np.median(x)), "max": float(np.max(x))}


# --- plots ----------------------------------------------------------------------------------


def _figure(width: float = 6.0, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, ax, path: Path, title: str, legend: bool = False) -> Path:
    """Title, grid (and legend), then write ``path`` as PNG."""
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_parity(path: Path, qm: np.ndarray, series: dict[str, np.ndarray], title: str) -> Path:
    """QM-vs-MM frequency parity plot (cm^-1), one marker set per series."""
    fig = _figure(5.5, 5.0)
    ax = fig.add_subplot()
    qm = np.asarray(qm, float)
    lo, hi = float(np.min(qm)), float(np.max(qm))
    for label, mm in series.items():
        mm = np.asarray(mm, float)
        ax.plot(qm, mm, "o", ms=5, alpha=0.75, label=label)
        lo, hi = min(lo, float(np.min(mm))), max(hi, float(np.max(mm)))
    pad = 0.05 * (hi - lo)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k-", lw=0.8)
    ax.set_xlabel("QM frequency (cm$^{-1}$)")
    ax.set_ylabel("MM frequency at the MM-relaxed geometry (cm$^{-1}$)")
    return _save(fig, ax, path, title, legend=True)


def plot_curves(
    path: Path, curves: dict[str, np.ndarray], title: str, xlabel: str, ylabel: str,
    log: bool = True,
) -> Path:
    """Several 1-D series on one axis (NaN padding dropped), e.g. convergence."""
    fig = _figure(6.5, 4.2)
    ax = fig.add_subplot()
    positive = True
    for label, y in curves.items():
        y = np.asarray(y, float)
        y = y[np.isfinite(y)]
        if y.size == 0:
            continue
        positive &= bool(np.all(y > 0))
        ax.plot(np.arange(y.size), y, lw=1.2, label=label)
    if log and positive:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _save(fig, ax, path, title, legend=True)


def plot_hist(path: Path, values: np.ndarray, title: str, xlabel: str, bins: int = 40) -> Path:
    fig = _figure()
    ax = fig.add_subplot()
    v = np.asarray(values, float)
    ax.hist(v[np.isfinite(v)], bins=bins)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    return _save(fig, ax, path, title)


def quick_flag(argv: Sequence[str] | None = None) -> bool:
    """True if ``--quick`` is on the command line (small sizes)."""
    return "--quick" in (sys.argv[1:] if argv is None else argv)


__all__ = [
    "LAST_CPU_S",
    "RESULTS_DIR",
    "block",
    "compile_fn",
    "default_spec",
    "fmt",
    "frequency_only_spec",
    "header",
    "honest",
    "honest_batch",
    "load_case",
    "log",
    "machine_info",
    "md_header",
    "md_table",
    "median_call_time",
    "median_run_time",
    "plot_curves",
    "plot_hist",
    "plot_parity",
    "quick_flag",
    "start_forcefield",
    "stats",
    "timed",
    "write_report",
]
