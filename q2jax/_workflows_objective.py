"""``ObjectiveFunction``: the Q2MM guide's callable objective over q2jax's functional core.

With the JAX engine (:class:`JaxEngine`, the default) every call is the
jitted ``q2jax.objective`` on the frozen ``ObjectiveSpec`` (``self.spec``):
value and gradient come from one compiled ``value_and_grad`` (a value-only
call discards the gradient, so one compilation serves both), and the
gradient is exact (``has_analytical_gradient = True``). With a non-JAX
engine (``OpenMMEngine()``) the same residuals are evaluated in NumPy
through the engine (:mod:`q2jax._workflows_engine`) and the gradient is a
forward finite difference (``has_analytical_gradient = False``).

Objective: ``f(p) = Σ r_i(p)^2``, with the L2 rows ``sqrt(λ)(p − p_ref)``
included (``regularization`` = λ; ``reference_params`` = p_ref, by default
the starting parameters).

q2jax force fields are immutable: ``self.forcefield`` is rebound (never
mutated) when an optimizer applies its result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from q2jax._workflows_engine import check_engine, engine_residual_blocks, engine_residuals
from q2jax._workflows_reference import as_reference_set
from q2jax.errors import InputError
from q2jax.forcefield import ForceField
from q2jax.objective import loss, make_objective, residual_blocks, residuals
from q2jax.reference import EigenmatrixData, FrequencyData, HessianData
from q2jax.relax import RelaxOptions

_value_and_grad = jax.jit(jax.value_and_grad(loss))
_residuals = jax.jit(residuals)
_jacobian = jax.jit(jax.jacfwd(residuals))
_residual_blocks = jax.jit(residual_blocks)


class JaxEngine:
    """q2jax's own differentiable JAX engine (the default): energies, Hessians,
    relaxation and frequencies all inside the jitted objective."""

    name = "jax"
    is_jax = True

    def __repr__(self) -> str:
        return "JaxEngine()"


def is_jax_engine(engine: Any) -> bool:
    return bool(getattr(engine, "is_jax", False))


class ObjectiveFunction:
    """``f(x) -> float``: weighted sum of squared residuals of the force field vs reference.

    Args:
        forcefield: the starting :class:`~q2jax.forcefield.ForceField`
            (its trainable ``params`` are ``x``).
        engine: :class:`JaxEngine` (default) or a non-JAX engine such as
            ``q2jax.adapters.openmm.OpenMMEngine()``.
        molecules: the molecules at their QM geometries (optional when
            ``reference`` is a ReferenceSet, which carries them).
        reference: :class:`~q2jax.workflows.ReferenceData` or a q2jax
            :class:`~q2jax.reference.ReferenceSet`.
        regularization: λ of the L2 term λ ‖(p − p_ref) / scale‖².
        reference_params: p_ref (default: the starting parameters).
        frequencies_at, hessian_at, stationarity_weight, transition_state,
            relax_options, system, reg_scale: as :func:`q2jax.objective.make_objective`
            (frequencies at the MM-relaxed geometry by default).
        fd_step: forward-difference step of ``gradient`` for non-JAX engines.
    """

    def __init__(
        self,
        forcefield: ForceField,
        engine: Any = None,
        molecules: Sequence | None = None,
        reference: Any = None,
        *,
        regularization: float = 0.0,
        reference_params: Any = None,
        frequencies_at: str = "relaxed",
        hessian_at: str = "reference",
        stationarity_weight: float | Sequence[float] = 0.0,
        transition_state: bool | Sequence[bool] = False,
        relax_options: RelaxOptions = RelaxOptions(),
        system: Any = None,
        reg_scale: Any = None,
        fd_step: float = 1e-4,
    ):
        if not isinstance(forcefield, ForceField):
            raise InputError(f"forcefield must be a q2jax ForceField; got {type(forcefield)}")
        if reference is None:
            raise InputError("ObjectiveFunction needs reference data (ReferenceData/ReferenceSet)")
        if not np.isfinite(regularization) or regularization < 0:
            raise InputError(f"regularization must be a finite λ >= 0; got {regularization!r}")
        refs = as_reference_set(reference, molecules)
        if isinstance(engine, type):  # OpenMMEngine rather than OpenMMEngine()
            engine = engine()
        self.engine = JaxEngine() if engine is None else engine
        self.reference = refs
        self.molecules = list(refs.molecules)
        self.regularization = float(regularization)
        ts = np.broadcast_to(np.asarray(transition_state, bool), (len(self.molecules),))
        self.transition_state = [bool(t) for t in ts]
        self.spec = make_objective(
            forcefield,
            refs,
            lam=regularization,
            p_ref=reference_params,
            reg_scale=reg_scale,
            frequencies_at=frequencies_at,
            hessian_at=hessian_at,
            stationarity_weight=stationarity_weight,
            transition_state=self.transition_state,
            relax_options=relax_options,
            system=system,
        )
        self.system = system
        self.is_jax = is_jax_engine(self.engine)
        if not self.is_jax:
            check_engine(self.engine, self.spec, system is not None)
            self.jacobian = None  # type: ignore[assignment]  # no analytical Jacobian
        self.forcefield = forcefield
        self.initial_forcefield = forcefield
        self.fd_step = float(fd_step)
        self.n_eval = 0
        self.history: list[float] = []

    # --- protocol used by the optimizers ----------------------------------------------------
    @property
    def has_analytical_gradient(self) -> bool:
        return self.is_jax

    @property
    def frequencies_at(self) -> str:
        return self.spec.options.frequencies_at

    @property
    def n_params(self) -> int:
        return self.forcefield.n_params

    def get_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) of the trainable parameters."""
        return self.forcefield.bounds()

    def _x(self, x: Any) -> np.ndarray:
        p = np.asarray(x, dtype=np.float64).reshape(-1)
        if p.shape != (self.forcefield.n_params,):
            raise InputError(f"expected {self.forcefield.n_params} parameters, got {p.shape}")
        return p

    def _record(self, f: float) -> float:
        self.n_eval += 1
        self.history.append(f)
        return f

    def __call__(self, x: Any) -> float:
        """Objective value at the trainable parameters ``x``."""
        return self._evaluate(x, need_grad=False)[0]

    def value_and_grad(self, x: Any) -> tuple[float, np.ndarray]:
        """(f, ∇f): exact for the JAX engine, forward differences (step ``fd_step``) else."""
        return self._evaluate(x, need_grad=True)

    def _evaluate(self, x: Any, need_grad: bool) -> tuple[float, np.ndarray]:
        p = self._x(x)
        if self.is_jax:
            f, g = _value_and_grad(jnp.asarray(p), self.spec)
            return self._record(float(f)), np.asarray(g, float)
        r = engine_residuals(self.engine, self.spec, self.molecules, p)
        f = self._record(float(r @ r))
        if not need_grad:
            return f, np.full(p.shape, np.nan)
        return f, self._fd_gradient(p, f)

    def _fd_gradient(self, p: np.ndarray, f0: float) -> np.ndarray:
        g = np.empty_like(p)
        for i in range(p.size):
            h = self.fd_step * max(abs(p[i]), 1.0)
            q = p.copy()
            q[i] += h
            r = engine_residuals(self.engine, self.spec, self.molecules, q)
            self.n_eval += 1
            g[i] = (float(r @ r) - f0) / h
        return g

    def gradient(self, x: Any) -> np.ndarray:
        return self.value_and_grad(x)[1]

    def residuals(self, x: Any) -> np.ndarray:
        """The weighted residual vector (L2 rows included; Σ r² = f)."""
        p = self._x(x)
        if self.is_jax:
            r = np.asarray(_residuals(jnp.asarray(p), self.spec), float)
        else:
            r = engine_residuals(self.engine, self.spec, self.molecules, p)
        self._record(float(r @ r))
        return r

    def jacobian(self, x: Any) -> np.ndarray:
        """∂r/∂p (JAX engine only; forward-mode autodiff)."""
        return np.asarray(_jacobian(jnp.asarray(self._x(x)), self.spec), float)

    def breakdown(self, x: Any = None) -> dict[str, float]:
        """Σ r² per residual block (frequency, geometry, regularization, ...)."""
        p = self._x(self.forcefield.params if x is None else x)
        if self.is_jax:
            blocks = _residual_blocks(jnp.asarray(p), self.spec)
        else:
            blocks = engine_residual_blocks(self.engine, self.spec, self.molecules, p)
        return {k: float(np.sum(np.square(np.asarray(v)))) for k, v in blocks.items()}

    def reset(self) -> None:
        """Zero the evaluation counter and clear the history."""
        self.n_eval = 0
        self.history = []

    def apply(self, params: Any) -> ForceField:
        """Rebind ``self.forcefield`` to one carrying ``params`` (the old one is unchanged)."""
        self.forcefield = self.forcefield.with_params(jnp.asarray(self._x(params)))
        return self.forcefield

    # --- honest figures ------------------------------------------------------------------------
    def qm_frequencies(self) -> list[np.ndarray] | None:
        """QM frequencies per molecule (cm^-1) from the reference data: the FrequencyData
        values, else computed from a QM Hessian in the data; None if a molecule has neither."""
        from q2jax.vibrations import frequencies

        out: list = [None] * len(self.molecules)
        for d in self.reference.data:
            if isinstance(d, FrequencyData):
                v = np.asarray(d.values, float)
                w = np.broadcast_to(np.asarray(d.weight, float), v.shape)
                # a complete list (ReferenceData fills modes never given with 0, weight 0)
                if v.size == self.molecules[d.molecule].n_vibrations and not np.any(
                    (w == 0) & (v == 0)
                ):
                    out[d.molecule] = v
        for d in self.reference.data:
            if isinstance(d, EigenmatrixData | HessianData) and out[d.molecule] is None:
                m = self.molecules[d.molecule]
                out[d.molecule] = np.asarray(
                    frequencies(jnp.asarray(d.hessian), m.coords, m.masses, m.n_vibrations)
                )
        return None if any(f is None for f in out) else out

    def honest_figures(self, params: Any = None) -> list | None:
        """:func:`q2jax.evaluate.evaluate` of the force field with ``params`` (default the
        current ones): each molecule relaxed with it, frequencies and geometry vs QM."""
        from q2jax.evaluate import evaluate

        qm = self.qm_frequencies()
        if qm is None:
            return None
        ff = (
            self.forcefield
            if params is None
            else self.forcefield.with_params(jnp.asarray(self._x(params)))
        )
        ts = self.transition_state if any(self.transition_state) else None
        return evaluate(ff, self.molecules, qm, transition_state=ts, system=self.system)

    def __repr__(self) -> str:
        kinds = ", ".join(sorted(self.reference.kinds()))
        return (
            f"ObjectiveFunction({self.forcefield.n_params} parameters, {len(self.molecules)} "
            f"molecule(s), data: {kinds}; engine {self.engine!r}; frequencies at the "
            f"{self.frequencies_at} geometry; λ = {self.regularization:g})"
        )


__all__ = ["JaxEngine", "ObjectiveFunction", "is_jax_engine"]
