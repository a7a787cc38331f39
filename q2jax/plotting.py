"""Convergence plots for ``result.history`` and ``result.cycle_scores`` (PNG, Agg).

matplotlib is imported lazily and the figure is drawn on an Agg canvas
directly (no pyplot, no global backend switch), so it works without a
display and does not disturb an interactive session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from q2jax.errors import InputError


def _series(data: Any) -> tuple[np.ndarray, str]:
    """Objective values to plot and the x-axis label, from a result or an array."""
    if hasattr(data, "cycle_scores"):
        values = np.asarray(data.cycle_scores, float)
        label = "cycle"
    elif hasattr(data, "history"):
        values = np.asarray(data.history, float)
        label = "iteration" if not isinstance(data.history, list) else "evaluation"
    else:
        values = np.asarray(data, float)
        label = "step"
    if values.ndim != 1:
        raise InputError(f"expected a 1-D history; got shape {values.shape}")
    values = values[np.isfinite(values)] if np.any(np.isnan(values)) else values
    if values.size == 0:
        raise InputError("nothing to plot: the history holds no finite values")
    return values, label


def plot_convergence(
    history_or_cycle_scores: Any,
    path: str | Path,
    *,
    title: str = "Convergence",
    log: bool = True,
    best_so_far: bool = True,
    xlabel: str | None = None,
    ylabel: str = "objective",
) -> Path:
    """Write a PNG of the objective against iteration / cycle / evaluation.

    Args:
        history_or_cycle_scores: a 1-D sequence, or a result with ``history``
            (:class:`~q2jax.solvers.SolverResult`, a SciPy adapter result) or
            ``cycle_scores`` (grad-simp cycling). NaN padding is dropped.
        path: output file (parent folders are created).
        title, xlabel, ylabel: labels; ``xlabel`` defaults to the kind of step.
        log: logarithmic y axis (only used if all values are positive).
        best_so_far: also draw the running minimum (useful for per-evaluation
            histories, which jump around).

    Returns:
        the path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values, label = _series(history_or_cycle_scores)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    steps = np.arange(values.size)
    fig = Figure(figsize=(6.0, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    marker = "o" if values.size <= 50 else None
    ax.plot(steps, values, marker=marker, lw=1.2, label="objective")
    if best_so_far and values.size > 1 and np.any(np.diff(values) > 0):
        ax.plot(steps, np.minimum.accumulate(values), lw=1.0, ls="--", label="best so far")
        ax.legend()
    if log and np.all(values > 0):
        ax.set_yscale("log")
    ax.set_xlabel(xlabel or label)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


__all__ = ["plot_convergence"]
