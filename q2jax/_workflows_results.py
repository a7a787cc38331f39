"""Result objects of the workflows API, with the guide's field names.

Every ``summary()`` prints the objective score *and* the honest figures:
the geometry relaxed with the start and with the fitted force field, then
frequency RMSD / MAE / max error, geometry RMSD and imaginary modes vs QM
(:func:`q2jax.evaluate.summary_table`). When the score itself was taken at
the QM geometry (``frequencies_at="reference"``) the summary says so.
``plot(path)`` writes the convergence PNG (:func:`q2jax.plotting.plot_convergence`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from q2jax.evaluate import KNOWN_FLOORS, summary_table

EQ_KINDS = ("bond_eq", "angle_eq")


def score_note(frequencies_at: str, honest: bool = True) -> str:
    if frequencies_at == "reference":
        tail = "; honest figures below" if honest else ""
        return "score measured at the QM geometry" + tail
    return "score measured at the MM-relaxed geometry (frequencies_at='relaxed')"


def floor_note(kinds: list[str], names: list[str], form: str) -> str | None:
    """The known floor of the four-constant CH3F model, when it applies."""
    if names != ["ch3f"] or any(k in EQ_KINDS for k in kinds):
        return None
    if not set(kinds) <= {"bond_k", "angle_k"}:
        return None
    value, text = KNOWN_FLOORS[("ch3f", "harmonic", "fixed_eq_4k")]
    extra = "" if form == "harmonic" else " (MM3's anharmonic terms vanish at the minimum)"
    return f"known floor: {text}{extra}; no fit of these parameters can go below ~{value} cm^-1"


def honest_block(start: list | None, final: list | None, notes: list[str]) -> list[str]:
    lines = ["Honest figures (each force field relaxes the geometry first; q2jax.evaluate):"]
    if start is None or final is None:
        lines.append("  unavailable: the reference data hold no QM frequencies or Hessian")
    else:
        lines.append(summary_table(start, "start force field:"))
        lines.append(summary_table(final, "fitted force field:"))
    return lines + notes


def parameter_lines(labels: list[str], p0: np.ndarray, p1: np.ndarray) -> list[str]:
    lines = [f"  {'parameter':<28s} {'start':>12s} {'final':>12s}"]
    for lab, a, b in zip(labels, np.asarray(p0), np.asarray(p1), strict=True):
        lines.append(f"  {lab:<28s} {a:12.5f} {b:12.5f}")
    return lines


def _improvement(v0: float, v1: float) -> float:
    return 0.0 if v0 == 0 or not np.isfinite(v0) else (v0 - v1) / v0


def _plot(data: Any, path: str | Path, title: str, **kwargs: Any) -> Path:
    from q2jax.plotting import plot_convergence

    return plot_convergence(data, path, title=title, **kwargs)


@dataclass
class OptimizationResult:
    """One optimisation (Q2MM's ``OptimizationResult`` fields, plus honest figures).

    ``history``: objective values in the order computed (every evaluation
    for SciPy; one per iteration for the pure-JAX solvers).
    """

    success: bool
    message: str
    initial_score: float
    final_score: float
    n_iterations: int
    n_evaluations: int
    initial_params: np.ndarray
    final_params: np.ndarray
    history: list[float]
    method: str
    jac: str = ""
    wall_time: float = float("nan")
    labels: list[str] = field(default_factory=list)
    frequencies_at: str = "relaxed"
    start_figures: list | None = None
    final_figures: list | None = None
    notes: list[str] = field(default_factory=list)
    title: str = "Optimization"

    @property
    def improvement(self) -> float:
        """Fractional decrease of the score, (initial − final) / initial."""
        return _improvement(self.initial_score, self.final_score)

    def _note(self) -> str:
        return score_note(self.frequencies_at, self.final_figures is not None)

    def _head(self) -> list[str]:
        jac = f", jac={self.jac}" if self.jac else ""
        state = "converged" if self.success else "not converged"
        why = "" if self.message == state else f" ({self.message})"
        return [
            f"{self.title}: {self.method}{jac} — {state}{why}",
            f"  Score:       {self.initial_score:.6g} -> {self.final_score:.6g} "
            f"({self.improvement:.1%} improvement); {self._note()}",
            f"  Iterations:  {self.n_iterations}   Evaluations: {self.n_evaluations}   "
            f"Wall time: {self.wall_time:.2f} s (incl. any JIT compilation)",
        ]

    def summary(self) -> str:
        lines = self._head()
        if self.labels:
            lines += parameter_lines(self.labels, self.initial_params, self.final_params)
        lines += honest_block(self.start_figures, self.final_figures, self.notes)
        return "\n".join(lines)

    def plot(self, path: str | Path, **kwargs: Any) -> Path:
        """Convergence PNG of ``history``."""
        return _plot(self, path, kwargs.pop("title", f"{self.title}: {self.method}"), **kwargs)


@dataclass
class MultiStartResult(OptimizationResult):
    """Best of ``n_starts`` runs, with every start's scores.

    ``start_params`` (n_starts, n), ``start_scores`` / ``final_scores`` /
    ``start_iterations`` per start, ``best_index``; ``vmapped`` is True when
    all starts ran in one compiled ``jax.vmap`` call.
    """

    n_starts: int = 0
    start_params: np.ndarray | None = None
    start_scores: np.ndarray | None = None
    final_scores: np.ndarray | None = None
    start_iterations: np.ndarray | None = None
    start_success: np.ndarray | None = None
    best_index: int = 0
    vmapped: bool = False
    all_final_params: np.ndarray | None = None

    def summary(self, max_rows: int = 20) -> str:
        lines = self._head()
        how = "one vmapped compiled call" if self.vmapped else "sequential runs"
        fs = np.asarray(self.final_scores, float)
        lines.append(
            f"  Starts:      {self.n_starts} ({how}); {int(np.sum(self.start_success))} "
            f"converged; final scores min {np.nanmin(fs):.6g} / median "
            f"{np.nanmedian(fs):.6g} / max {np.nanmax(fs):.6g}; best start {self.best_index}"
        )
        lines.append(f"  {'start':>5s} {'initial score':>14s} {'final score':>14s} {'iter':>6s}")
        for i in range(min(self.n_starts, max_rows)):
            mark = "*" if i == self.best_index else " "
            lines.append(
                f"  {i:>4d}{mark} {self.start_scores[i]:14.6g} {fs[i]:14.6g} "
                f"{int(self.start_iterations[i]):6d}"
            )
        if self.n_starts > max_rows:
            lines.append(f"  ... {self.n_starts - max_rows} more starts")
        if self.labels:
            lines += parameter_lines(self.labels, self.initial_params, self.final_params)
        lines += honest_block(self.start_figures, self.final_figures, self.notes)
        return "\n".join(lines)


@dataclass
class SensitivityResult:
    """Sensitivity of the objective to each parameter (Q2MM's selection step).

    ``d1`` / ``d2``: first and second derivatives in objective units per
    parameter unit (Q2MM prints them unnormalised, h·d1 and h²·d2; the ratio
    ``simp_var = d2 / d1²`` and the rankings are the same). ``ranking``: most
    suitable for the simplex first.
    """

    d1: np.ndarray
    d2: np.ndarray
    simp_var: np.ndarray
    ranking: np.ndarray
    metric: str
    n_evals: int
    mode: str = "fd"
    value: float = float("nan")
    labels: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"Sensitivity ({self.metric}, {self.mode}, {self.n_evals} evaluations):"]
        for rank, i in enumerate(np.asarray(self.ranking)):
            lab = self.labels[i] if self.labels else f"p{i}"
            lines.append(
                f"  {rank + 1:>2d}. {lab:<28s} d1={self.d1[i]:+.4e}  d2={self.d2[i]:.4e}  "
                f"simp_var={self.simp_var[i]:.4e}"
            )
        return "\n".join(lines)


@dataclass
class LoopResult:
    """Grad-simp cycling (Q2MM's ``LoopResult`` fields, plus honest figures)."""

    success: bool
    initial_score: float
    final_score: float
    n_cycles: int
    n_eval: int = 0
    cycle_scores: list[float] = field(default_factory=list)
    selected_indices: list[list[int]] = field(default_factory=list)
    sensitivity_results: list[SensitivityResult] = field(default_factory=list)
    message: str = ""
    history: list[float] = field(default_factory=list)
    initial_params: np.ndarray | None = None
    final_params: np.ndarray | None = None
    method: str = ""
    wall_time: float = float("nan")
    labels: list[str] = field(default_factory=list)
    frequencies_at: str = "relaxed"
    start_figures: list | None = None
    final_figures: list | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def improvement(self) -> float:
        return _improvement(self.initial_score, self.final_score)

    def _note(self) -> str:
        return score_note(self.frequencies_at, self.final_figures is not None)

    @property
    def n_evaluations(self) -> int:
        return self.n_eval

    def summary(self) -> str:
        lines = [
            f"OptimizationLoop: {self.method} — {self.message}",
            f"  Cycles:      {self.n_cycles}   Evaluations: {self.n_eval}   "
            f"Wall time: {self.wall_time:.2f} s (incl. any JIT compilation)",
            f"  Score:       {self.initial_score:.6g} -> {self.final_score:.6g} "
            f"({self.improvement:.1%} improvement); {self._note()}",
        ]
        for c, (score, idx) in enumerate(
            zip(self.cycle_scores[1:], self.selected_indices, strict=False)
        ):
            names = [self.labels[i] if self.labels else f"p{i}" for i in idx]
            lines.append(f"  cycle {c + 1}: score {score:.6g}; simplex on {names}")
        if self.labels and self.initial_params is not None:
            lines += parameter_lines(self.labels, self.initial_params, self.final_params)
        lines += honest_block(self.start_figures, self.final_figures, self.notes)
        return "\n".join(lines)

    def plot(self, path: str | Path, **kwargs: Any) -> Path:
        """Convergence PNG of ``cycle_scores``."""
        return _plot(self, path, kwargs.pop("title", f"OptimizationLoop: {self.method}"), **kwargs)


__all__ = [
    "LoopResult",
    "MultiStartResult",
    "OptimizationResult",
    "SensitivityResult",
    "floor_note",
    "honest_block",
    "score_note",
]
