"""Many independent fits in one compiled call.

``stack_problems`` freezes M independent fitting problems (each its own
force field, molecules, references and weights) into ONE ObjectiveSpec
pytree with a leading problem axis: molecules padded to a common atom count,
term tables and reference blocks to common sizes, and parameter vectors to a
common length (padded parameters are referenced by no term, so they have
zero gradient and stay where they are). ``fit_batch`` then runs one solver
``vmap``-ped over the problems under one ``jit``: every problem gets its
own result (params, loss, status, evaluations) and a problem that fails is
reported in its own status without changing the others.

Everything is pure JAX (no host callbacks), so ``fit_batch`` can be called
inside user ``jax.jit`` code and sharded across devices
(:func:`shard_problems`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from q2jax.errors import InputError
from q2jax.forcefield import ForceField, ParamEntry
from q2jax.objective import ObjectiveSpec, loss, make_objective, residuals
from q2jax.reference import ReferenceArrays, ReferenceSet
from q2jax.solvers._common import MAX_VMAP_CHUNK, chunked_vmap, map_over_devices
from q2jax.system import System, Terms, pad_system


class BatchResult(eqx.Module):
    """Per-problem results of a batch fit (leading axis = problem)."""

    params: jax.Array  # (M, P) padded parameter vectors
    value: jax.Array  # (M,) final loss
    converged: jax.Array  # (M,)
    status: jax.Array  # (M,) q2jax.solvers.Status codes
    n_iter: jax.Array
    n_evals: jax.Array
    n_params: tuple[int, ...] = eqx.field(static=True, default=())

    def params_of(self, i: int) -> np.ndarray:
        """Problem i's own (unpadded) parameter vector."""
        return np.asarray(self.params[i])[: self.n_params[i]]


def _generic_forcefield(ff: ForceField, n_p: int, n_q: int) -> ForceField:
    """Same values padded to (n_p, n_q), with structure-free static metadata so
    that force fields of different molecules share one pytree structure."""
    entries = tuple(ParamEntry("bond_k", (f"p{i}",), -np.inf, np.inf) for i in range(n_p)) + tuple(
        ParamEntry("bond_k", (f"q{i}",), -np.inf, np.inf) for i in range(n_q)
    )
    params = jnp.zeros(n_p).at[: ff.n_params].set(ff.params)
    fixed = jnp.zeros(n_q).at[: ff.n_fixed].set(ff.fixed)
    return ForceField(params, fixed, entries, ff.form, ff.settings)


def _remap_terms(terms: Terms, n_p0: int, n_q0: int, n_p: int, n_q: int) -> Terms:
    """Parameter positions after padding params to n_p and fixed to n_q."""

    def remap(pos):
        pos = jnp.asarray(pos)
        zero_old = n_p0 + n_q0
        return jnp.where(pos < n_p0, pos, jnp.where(pos == zero_old, n_p + n_q, pos - n_p0 + n_p))

    fields = {}
    for name in Terms.__dataclass_fields__:
        val = getattr(terms, name)
        fields[name] = remap(val).astype(val.dtype) if name.endswith("_params") else val
    return Terms(**fields)


def _pad_axis(x, size: int, axis: int, fill=0):
    x = np.asarray(x)
    pad = size - x.shape[axis]
    if pad < 0:
        raise ValueError("cannot shrink")
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, pad)
    return np.pad(x, widths, constant_values=fill)


def _pad_refs(r: ReferenceArrays, n_atoms: int, n_modes: int, n_geom: int) -> ReferenceArrays:
    n3 = 3 * n_atoms
    rules = {
        "freq_values": [(1, n_modes, 0.0)],
        "freq_weights": [(1, n_modes, 0.0)],
        "freq_index": [(1, n_modes, 0)],
        "eig_modes": [(1, n3, 0.0), (2, n_modes, 0.0)],
        "eig_values": [(1, n_modes, 0.0)],
        "eig_weights": [(1, n_modes, 0.0)],
        "hess_values": [(1, n3, 0.0), (2, n3, 0.0)],
        "hess_weights": [(1, n3, 0.0), (2, n3, 0.0)],
        "geom_atoms": [(1, n_geom, 0)],
        "geom_kind": [(1, n_geom, 0)],
        "geom_values": [(1, n_geom, 0.0)],
        "geom_weights": [(1, n_geom, 0.0)],
        "cart_values": [(1, n_atoms, 0.0)],
    }
    out = {}
    for name in ReferenceArrays.__dataclass_fields__:
        val = getattr(r, name)
        if val is None:
            out[name] = None
            continue
        arr = np.asarray(val)
        for axis, size, fill in rules.get(name, []):
            arr = _pad_axis(arr, size, axis, fill)
        if name == "freq_index":  # padded modes compare with themselves (weight 0)
            arr = np.where(np.arange(arr.shape[1])[None, :] >= np.asarray(val).shape[1],
                           np.arange(arr.shape[1])[None, :], arr)
        out[name] = jnp.asarray(arr)
    return ReferenceArrays(**out)


def _system_sizes(system: System) -> dict[str, int]:
    sizes = {}
    for name in Terms.__dataclass_fields__:
        if name.endswith("_mask"):
            sizes[name.split("_")[0]] = int(getattr(system.terms, name).shape[-1])
    return sizes


def _repad_system(system: System, n_atoms: int, sizes: dict, zero_slot: int) -> System:
    mols = [
        jax.tree_util.tree_map(lambda x, i=i: x[i], system) for i in range(system.coords.shape[0])
    ]
    padded = [pad_system(m, n_atoms, sizes, zero_slot) for m in mols]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *padded)


class Problem(NamedTuple):
    """One fitting problem: a force field (start values) and its references."""

    forcefield: ForceField
    refs: ReferenceSet


def stack_problems(problems: Sequence[Problem | tuple], **objective_options):
    """Freeze M problems into one batched ObjectiveSpec.

    Returns ``(spec, params0 (M, P), bounds (lower, upper) each (M, P), n_params)``.
    Every problem must have the same number of molecules and the same
    functional form and kinds of reference data; sizes may differ.
    ``objective_options`` go to :func:`q2jax.objective.make_objective`.
    """
    problems = [Problem(*p) for p in problems]
    if not problems:
        raise InputError("no problems to fit")
    forms = {p.forcefield.form for p in problems}
    if len(forms) != 1:
        raise InputError(f"all problems need one functional form, got {sorted(forms)}")
    counts = {len(p.refs.molecules) for p in problems}
    if len(counts) != 1:
        raise InputError("all problems need the same number of molecules (pad with copies)")
    n_atoms = max(m.n_atoms for p in problems for m in p.refs.molecules)
    specs = [make_objective(p.forcefield, p.refs, n_atoms=n_atoms, **objective_options)
             for p in problems]
    kinds = {tuple(f for f in ReferenceArrays.__dataclass_fields__
                   if getattr(s.refs, f) is not None) for s in specs}
    if len(kinds) != 1:
        raise InputError("all problems need the same kinds of reference data")
    n_p = max(p.forcefield.n_params for p in problems)
    n_q = max(p.forcefield.n_fixed for p in problems)
    n_modes = max(s.n_modes for s in specs)
    n_geom = max((s.refs.geom_values.shape[1] if s.refs.geom_values is not None else 0)
                 for s in specs)
    sizes: dict[str, int] = {}
    for s in specs:
        for g, n in _system_sizes(s.system).items():
            sizes[g] = max(sizes.get(g, 0), n)
    padded, p0, lo, hi = [], [], [], []
    for prob, s in zip(problems, specs, strict=True):
        ff = prob.forcefield
        system = _repad_system(s.system, n_atoms, sizes, ff.zero_slot)
        system = eqx.tree_at(lambda x: x.terms, system,
                             _remap_terms(system.terms, ff.n_params, ff.n_fixed, n_p, n_q))
        gff = _generic_forcefield(ff, n_p, n_q)
        lower, upper = ff.bounds()
        pad = n_p - ff.n_params
        lo.append(np.concatenate([lower, np.zeros(pad)]))
        hi.append(np.concatenate([upper, np.zeros(pad)]))
        p0.append(np.asarray(gff.params))
        new = dataclasses.replace(
            s,
            forcefield=gff,
            system=system,
            refs=_pad_refs(s.refs, n_atoms, n_modes, n_geom),
            p_ref=jnp.zeros(n_p).at[: ff.n_params].set(s.p_ref),
            reg_scale=jnp.ones(n_p).at[: ff.n_params].set(s.reg_scale),
            internal_basis=None if s.internal_basis is None else jnp.asarray(
                _pad_axis(s.internal_basis, n_modes, 2, 0.0)),
            n_modes=n_modes,
            names=tuple(f"molecule{i}" for i in range(len(s.names))),
        )
        padded.append(new)
    spec = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *padded)
    bounds = (jnp.asarray(np.stack(lo)), jnp.asarray(np.stack(hi)))
    return spec, jnp.asarray(np.stack(p0)), bounds, tuple(p.forcefield.n_params for p in problems)


def _single_fit(params0, spec, lower, upper, solver, maxiter):
    from q2jax.solvers.driver import run

    fun = residuals if solver.method == "lm" else loss
    return run(solver, fun, params0, spec, (lower, upper), maxiter)


def fit_batch(spec: ObjectiveSpec, params0, bounds=None, *, method: str = "lm",
              maxiter: int = 100, n_params: Sequence[int] = (), mesh=None,
              **solver_options) -> BatchResult:
    """Fit every problem of a stacked spec (from :func:`stack_problems`) in one
    jitted, vmapped call. Pure: usable inside ``jax.jit`` (then pass concrete
    ``method``/``maxiter``).

    Several devices: when ``params0`` is spread over them along the problem
    axis (:func:`shard_problems`), or when a one-axis ``mesh``
    (``jax.sharding.Mesh``) is given (inside ``jax.jit``, where the placement
    of traced inputs is unknown), each device fits its own share of the
    problems as a separate program (``jax.shard_map``): no device waits for
    another's slowest problem at every iteration, and no data moves between
    devices. The problem count must be a multiple of the device count."""
    from q2jax.solvers import get_solver

    solver = get_solver(method, maxiter=maxiter, **solver_options)
    if bounds is None:
        big = jnp.full_like(params0, jnp.inf)
        bounds = (-big, big)
    mesh = mesh if mesh is not None else _problem_mesh(params0)
    if mesh is None:
        res = _batched(params0, spec, bounds[0], bounds[1], solver, maxiter)
    else:
        res = _batched_per_device(params0, spec, bounds[0], bounds[1], solver, maxiter, mesh)
    return BatchResult(res.params, res.value, res.converged, res.status, res.n_iter, res.n_evals,
                       tuple(int(n) for n in n_params))


def _problem_mesh(params0):
    """The device mesh ``params0`` is sharded over along its first axis, if it is
    a concrete array spread over more than one device; else None."""
    from jax.sharding import NamedSharding

    sharding = getattr(params0, "sharding", None)
    if isinstance(params0, jax.core.Tracer) or not isinstance(sharding, NamedSharding):
        return None
    if len(sharding.device_set) < 2 or not sharding.spec or sharding.spec[0] is None:
        return None
    return sharding.mesh


def _one_fit(args, solver, maxiter):
    return _single_fit(*args, solver, maxiter)


@eqx.filter_jit
def _batched(params0, spec, lower, upper, solver, maxiter):
    return chunked_vmap(lambda a: _one_fit(a, solver, maxiter), (params0, spec, lower, upper),
                        MAX_VMAP_CHUNK)


@eqx.filter_jit
def _batched_per_device(params0, spec, lower, upper, solver, maxiter, mesh):
    return map_over_devices(lambda a, _: _one_fit(a, solver, maxiter),
                            (params0, spec, lower, upper), (), MAX_VMAP_CHUNK, mesh=mesh)


def shard_problems(tree, mesh_axis: str = "problems"):
    """Place a batched pytree (leading axis = problem) across all devices.

    With several devices (GPUs, or CPU devices from
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N``, or hosts joined with
    ``jax.distributed.initialize``), the jitted batch fit then runs each
    device's share of problems where it lives. The problem count must be a
    multiple of the device count.
    """
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = np.array(jax.devices())
    mesh = Mesh(devices, (mesh_axis,))

    def place(x):
        if not isinstance(x, jax.Array) or x.ndim == 0:
            return x
        if x.shape[0] % len(devices):
            raise InputError(f"{x.shape[0]} problems do not split over {len(devices)} devices")
        spec = PartitionSpec(mesh_axis, *([None] * (x.ndim - 1)))
        return jax.device_put(x, NamedSharding(mesh, spec))

    return jax.tree_util.tree_map(place, tree)


__all__ = ["Problem", "BatchResult", "stack_problems", "fit_batch", "shard_problems"]
