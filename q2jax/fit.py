"""The functional fit API: start values, objective, solver, honest figures.

``fit(forcefield, refs, method=...)`` minimises ``q2jax.objective.loss`` (or
its residuals, for "lm") with a pure-JAX solver from ``q2jax.solvers`` and
evaluates the force field before and after at MM-relaxed geometries
(``q2jax.evaluate``). ``default_fit`` is the workflow the command line runs:
QFUERZA start, frequencies and geometry fitted through the relaxation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from q2jax.errors import InputError
from q2jax.evaluate import MoleculeEvaluation, evaluate, summary_table
from q2jax.forcefield import ForceField
from q2jax.objective import ObjectiveSpec, loss, make_objective, residuals
from q2jax.reference import (
    CartesianData,
    EigenmatrixData,
    FrequencyData,
    HessianData,
    ReferenceSet,
)
from q2jax.relax import RelaxOptions

DEFAULT_METHOD = "lm"
DEFAULT_CARTESIAN_WEIGHT = 3000.0
"""Weight of the relaxed-vs-QM Cartesian RMSD (Å) residual in the default fit:
0.01 Å costs as much as 30 cm^-1 of frequency error. On CH3F (8 harmonic
parameters) the trade-off runs from 16.6 cm^-1 at 0.034 Å (weight 300) to
38.6 cm^-1 at 0.002 Å (weight 10000); 3000 gives ~21.5 cm^-1 at 0.013 Å."""


@dataclass
class FitResult:
    """Outcome of a fit: fitted and start force fields, the solver result,
    the objective, and the honest figures before and after."""

    forcefield: ForceField
    start: ForceField
    solver: object
    spec: ObjectiveSpec
    start_eval: list[MoleculeEvaluation]
    final_eval: list[MoleculeEvaluation]
    method: str
    wall_time_s: float
    compile_time_s: float = float("nan")
    notes: list[str] = field(default_factory=list)

    @property
    def n_evaluations(self) -> int:
        return int(np.asarray(self.solver.n_evals).sum())

    @property
    def history(self) -> np.ndarray:
        h = np.asarray(self.solver.history)
        return h[np.isfinite(h)] if h.ndim == 1 else h

    def summary(self) -> str:
        lines = [
            f"q2jax fit: {self.method}, {self.forcefield.n_params} parameters, "
            f"{self.n_evaluations} evaluations, {self.wall_time_s:.2f} s",
            summary_table(self.start_eval, "start (relaxed with the start force field):"),
            summary_table(self.final_eval, "final (relaxed with the fitted force field):"),
        ]
        lines += self.notes
        return "\n".join(lines)


def _solve(spec: ObjectiveSpec, params0, method: str, maxiter: int, bounds, progress, options):
    from q2jax.solvers import minimize

    kwargs = dict(method=method, bounds=bounds, maxiter=maxiter, **options)
    if method.split(":")[-1] == "lm":
        kwargs["residuals"] = residuals
    if progress:
        kwargs["progress"] = progress
    return minimize(loss, params0, spec, **kwargs)


def fit(
    forcefield: ForceField,
    refs: ReferenceSet,
    *,
    method: str = DEFAULT_METHOD,
    maxiter: int = 100,
    lam: float = 0.0,
    p_ref=None,
    frequencies_at: str = "relaxed",
    hessian_at: str = "reference",
    stationarity_weight: float = 0.0,
    transition_state: bool | Sequence[bool] = False,
    relax_options: RelaxOptions = RelaxOptions(),
    bounds: bool = True,
    qm_frequencies: Sequence[np.ndarray] | None = None,
    qm_hessians: Sequence[np.ndarray | None] | None = None,
    system=None,
    progress=None,
    evaluate_figures: bool = True,
    mode_matching: bool = False,
    matching_rounds: int = 4,
    **solver_options,
) -> FitResult:
    """Fit ``forcefield`` (its trainable parameters, from their current values)
    to ``refs``. Honest figures need QM frequencies: taken from the
    FrequencyData in ``refs`` unless ``qm_frequencies`` is given. QM Hessians
    (``qm_hessians``, else any Hessian or eigenmatrix data in ``refs``) add the
    mode-matched figures (each QM mode against the MM mode it overlaps most).

    ``mode_matching``: compare each QM mode with the MM mode of largest
    eigenvector overlap instead of sorted order; the assignment is refreshed
    between solver phases (up to ``matching_rounds``) until it stops changing.
    Needs the QM modes: include EigenmatrixData (weight 0 is fine).
    """
    t0 = time.perf_counter()
    spec = make_objective(
        forcefield, refs, lam=lam, p_ref=p_ref, frequencies_at=frequencies_at,
        hessian_at=hessian_at, stationarity_weight=stationarity_weight,
        transition_state=transition_state, relax_options=relax_options, system=system,
    )
    box = forcefield.bounds() if bounds else None
    notes: list[str] = []
    if mode_matching:
        from q2jax.modes import match_modes

        p = forcefield.params
        for rnd in range(matching_rounds):
            new = match_modes(p, spec)
            changed = not np.array_equal(np.asarray(new.refs.freq_index),
                                         np.asarray(spec.refs.freq_index))
            spec = new
            if rnd > 0 and not changed:
                break
            result = _solve(spec, p, method, maxiter, box, progress, solver_options)
            p = result.params if np.ndim(result.params) == 1 else result.best.params
        notes.append(f"mode matching by eigenvector overlap: {rnd + 1} assignment round(s)")
    else:
        result = _solve(spec, forcefield.params, method, maxiter, box, progress, solver_options)
    params = getattr(result, "params", None)
    if params is None:
        raise InputError(f"solver {method!r} returned no parameters")
    best = params if np.ndim(params) == 1 else result.best.params  # multi-start
    fitted = forcefield.with_params(jnp.asarray(best))
    wall = time.perf_counter() - t0
    start_eval: list[MoleculeEvaluation] = []
    final_eval: list[MoleculeEvaluation] = []
    if evaluate_figures:
        freqs = qm_frequencies if qm_frequencies is not None else _qm_frequencies(refs)
        if freqs is not None:
            ts = None if isinstance(transition_state, bool) and not transition_state else (
                [transition_state] * len(refs.molecules) if isinstance(transition_state, bool)
                else list(transition_state))
            hq = qm_hessians if qm_hessians is not None else _qm_hessians(refs)
            start_eval = evaluate(forcefield, refs.molecules, freqs, transition_state=ts,
                                  system=system, qm_hessians=hq)
            final_eval = evaluate(fitted, refs.molecules, freqs, transition_state=ts,
                                  system=system, qm_hessians=hq)
    return FitResult(fitted, forcefield, result, spec, start_eval, final_eval, method, wall,
                     notes=notes)


def _qm_frequencies(refs: ReferenceSet):
    out: list = [None] * len(refs.molecules)
    for d in refs.data:
        if isinstance(d, FrequencyData):
            out[d.molecule] = np.asarray(d.values)
    return None if any(f is None for f in out) else out


def _qm_hessians(refs: ReferenceSet) -> list | None:
    out: list = [None] * len(refs.molecules)
    for d in refs.data:
        if isinstance(d, HessianData | EigenmatrixData):
            out[d.molecule] = np.asarray(d.hessian)
    return out if any(h is not None for h in out) else None


def default_references(
    molecules, hessians, *, cartesian_weight: float = DEFAULT_CARTESIAN_WEIGHT,
    transition_state: Sequence[bool] | bool = False, qm_modes: bool = False,
) -> ReferenceSet:
    """Frequencies from each QM Hessian (weight 1 per cm^-1) and the QM
    geometry as a Cartesian reference (RMSD after superposition);
    ``qm_modes`` also stores the QM normal modes (a zero-weight eigenmatrix
    block) for mode matching."""
    refs = ReferenceSet.from_qm(molecules, hessians, transition_state=transition_state,
                                eigenmatrix_weight=0.0 if qm_modes else None)
    for i, m in enumerate(refs.molecules):
        if cartesian_weight:
            refs.add(CartesianData(i, np.asarray(m.coords), cartesian_weight))
    return refs


def qfuerza_start(forcefield: ForceField, molecules, hessians, **kwargs) -> ForceField:
    """QFUERZA estimates of bond and angle constants (``q2jax.seminario``)."""
    from q2jax.seminario import estimate_force_constants

    return estimate_force_constants(forcefield, list(molecules), list(hessians), **kwargs)


def default_fit(
    molecules,
    hessians,
    *,
    form: str = "harmonic",
    method: str = DEFAULT_METHOD,
    maxiter: int = 100,
    cartesian_weight: float = DEFAULT_CARTESIAN_WEIGHT,
    transition_state: Sequence[bool] | bool = False,
    progress=None,
    mode_matching: bool = False,
    **kwargs,
) -> FitResult:
    """The command line's workflow: parameters keyed by element, QFUERZA start,
    frequencies and QM geometry fitted through the MM relaxation (so every
    figure is honest), then the honest figures before and after. Transition
    states get a Method D force field (``q2jax.ts``): relaxed to a first-order
    saddle, their imaginary frequency fitted like the others.

    ``mode_matching``: compare each QM frequency with the MM mode of largest
    eigenvector overlap instead of sorted order (see :func:`fit`).

    If the solver ends worse than the start on the objective (it should not),
    the start is returned and a note says so: the default workflow never
    hands back a force field worse than its QFUERZA start.
    """
    molecules, hessians = list(molecules), list(hessians)
    ts_flags = ([transition_state] * len(molecules) if isinstance(transition_state, bool)
                else list(transition_state))
    if any(ts_flags):
        from q2jax.ts import ts_forcefield

        ff0 = ts_forcefield(molecules, hessians, form)  # Method D: saddle kept in the model
    else:
        ff0 = ForceField.from_molecules(molecules, form)
        ff0 = qfuerza_start(ff0, molecules, hessians)
    refs = default_references(molecules, hessians, cartesian_weight=cartesian_weight,
                              transition_state=transition_state, qm_modes=mode_matching)
    kwargs.setdefault("qm_hessians", hessians)
    res = fit(ff0, refs, method=method, maxiter=maxiter, progress=progress,
              transition_state=transition_state, mode_matching=mode_matching, **kwargs)
    # the solver's own objective values at the start and at the returned parameters
    # (compiled already; an eager `loss` call would trace the relaxation op by op)
    l0, l1 = float(res.solver.history[0]), float(res.solver.value)
    if not np.isfinite(l1) or l1 > l0:
        res.notes.append(f"solver ended worse than the start (loss {l1:.6g} > {l0:.6g}); "
                         "returning the QFUERZA start")
        res.forcefield = ff0
        res.final_eval = res.start_eval
    return res


def compile_time(fn, *args) -> float:
    """Seconds to lower and compile ``jax.jit(fn)`` for these arguments."""
    t = time.perf_counter()
    jax.jit(fn).lower(*args).compile()
    return time.perf_counter() - t


__all__ = ["FitResult", "fit", "default_fit", "default_references", "qfuerza_start",
           "DEFAULT_METHOD"]
