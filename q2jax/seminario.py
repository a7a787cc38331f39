"""Seminario, modified Seminario and QFUERZA initial force constants from QM
Cartesian Hessians.

Methods (``method=``):

- ``"seminario"``: Seminario, Int. J. Quantum Chem. 1996, 60, 1271 (the
  FUERZA projection) for bonds and angles.
- ``"modified"``: Seminario bonds; angles by the modified Seminario method of
  Allen, Payne, Cole, J. Chem. Theory Comput. 2018, 14, 274 (each side of an
  angle scaled by the other angles sharing that bond).
- ``"qfuerza"`` (default): Farrugia, Helquist, Norrby, Wiest, J. Chem.
  Theory Comput. 2026, 22, 469: Seminario bonds and angles, except bends with
  a hydrogen atom (which the projection overestimates about twofold), which
  get the Q2MM default 0.5 mdyn Å/rad^2, i.e. ``MM3_BEND_UNIT * 0.5`` =
  35.97 kcal/(mol rad^2) in E = k dθ^2. A parameter counts as a hydrogen
  bend when any of its occurrences has an H atom (by element, so MacroModel
  types such as H1/HX work).

The projections themselves live in :mod:`q2jax._seminario_core` (re-exported
here); see its docstring for the equations. Units: Hessians kcal/(mol Å^2)
unless ``hessian_units`` says otherwise; results in q2jax's convention
E = k (x - x0)^2, i.e. half the projected curvature: bond k in
kcal/(mol Å^2), angle k in kcal/(mol rad^2), r0 in Å, θ0 in degrees (means
over all occurrences of a parameter in every molecule). The same k serves
the harmonic and the MM3 form (both have curvature 2k at the minimum); in an
MM3 ``.fld`` it is written as k / 71.94 mdyn/Å (``MM3_STRETCH_UNIT``), which
is 0.036 % above the curvature in mdyn/Å because MM3's 71.94 = 143.88 / 2
is not exactly half of 143.93 (kcal/(mol Å^2) per mdyn/Å): MM3's energy then
has the QM curvature. Q2MM writes the curvature in mdyn/Å itself (and uses
15.569141 mdyn/Å per Hartree/Bohr^2, 1.35e-5 above CODATA's 15.568931).

DFT scaling. ``dft_scale`` is a vibrational-frequency scale factor (0.963
for B3LYP). Frequencies go as sqrt(k), so with the default
``scale_convention="frequency"`` force constants are multiplied by
``dft_scale**2`` (as Allen et al.'s ``vibrational_scaling_squared``). Q2MM
instead multiplies force constants by ``dft_scale`` itself (both its legacy
``seminario.py`` and ``q2mm.models.seminario``); ``scale_convention="hessian"``
does that, for parity with Q2MM's numbers. The QFUERZA hydrogen-bend value is
never scaled.

Transition states (``ts_method=``). A TS Hessian has one negative
eigenvalue, and the projection then gives negative constants for the bonds
along the reaction coordinate (each SN2 C-F bond: about -0.7 mdyn/Å).
``None``/``"D"`` project the Hessian as it is (Limé & Norrby's Method D:
natural curvature); ``"C"`` first replaces the most negative Cartesian
eigenvalue by ``ts_replacement`` (default 1 Hartree/Bohr^2, as Q2MM) and
zeroes any other negative one (Method C); ``"E"`` takes the Method-D value of
each force constant unless it is not positive, and the Method-C value then.
(Q2MM's published Rh-enamide Seminario force field, rh_hyd_enamide_seminario.fld,
is Method C: q2jax reproduces its 31 Rh force constants to the printed 1e-4.)
Non-positive or non-finite single estimates are left out of the averages
(``invalid="skip"``, default, as legacy Q2MM) or kept (``"keep"``); a
parameter with no usable estimate keeps its current value, with a warning.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from q2jax._seminario_core import (
    in_plane_perpendiculars,
    interatomic_blocks,
    projected_curvature,
    replace_ts_curvature,
    seminario_angle_curvature,
    seminario_angle_k,
    seminario_bond_curvature,
    seminario_bond_k,
)
from q2jax.errors import InputError, UnitError
from q2jax.forcefield import ForceField
from q2jax.molecule import Molecule, validate_hessian
from q2jax.units import HARTREE_BOHR2_TO_KCAL_MOL_A2, MM3_BEND_UNIT, hessian_factor

METHODS = ("qfuerza", "seminario", "modified")
TS_METHODS = (None, "C", "D", "E")
SCALE_CONVENTIONS = ("frequency", "hessian")
DEFAULT_DFT_SCALE = 0.963  # B3LYP frequency scale factor used by Q2MM
QFUERZA_H_BEND_MDYN = 0.5  # mdyn Å/rad^2, Q2MM's default bend constant
QFUERZA_H_BEND_K = MM3_BEND_UNIT * QFUERZA_H_BEND_MDYN  # 35.97 kcal/(mol rad^2), E = k dθ^2
TS_REPLACEMENT = HARTREE_BOHR2_TO_KCAL_MOL_A2  # 1 Hartree/Bohr^2 in kcal/(mol Å^2)
_TS_MIN_NEGATIVE = 1.0  # kcal/(mol Å^2): a TS Hessian's lowest eigenvalue must be below minus this
_HESSIAN_DIAG_RANGE = (10.0, 1.0e5)  # plausible max |H_ii| of a molecule, kcal/(mol Å^2)


class ParameterEstimate(NamedTuple):
    """The estimate of one parameter and the per-occurrence values behind it.

    ``value`` is None when no occurrence gave a usable estimate (the force
    field keeps its value). ``samples`` are every occurrence's estimate in q2jax
    units (force constants already scaled), ``n_used`` how many were averaged.
    ``rule``: "seminario", "modified", "qfuerza-H", "ts-C" or "geometry".
    """

    kind: str
    key: tuple[str, ...]
    value: float | None
    samples: np.ndarray
    n_used: int
    rule: str


def force_constant_scale(dft_scale: float, scale_convention: str = "frequency") -> float:
    """Factor applied to projected force constants: ``dft_scale**2`` for a
    frequency scale factor, ``dft_scale`` for Q2MM's convention ("hessian")."""
    if scale_convention not in SCALE_CONVENTIONS:
        raise InputError(
            f"scale_convention must be one of {SCALE_CONVENTIONS}, got {scale_convention!r}"
        )
    s = float(dft_scale)
    if not np.isfinite(s) or s <= 0.0:
        raise InputError(f"dft_scale must be a positive number, got {dft_scale!r}")
    return s * s if scale_convention == "frequency" else s


@functools.partial(jax.jit, static_argnames=("modified",))
def seminario_batch(hessians, coords, bonds, bond_mask, angles, angle_mask, *, modified: bool):
    """``seminario_bond_k`` and ``seminario_angle_k`` vmapped over a padded batch.

    Shapes: hessians (M, 3N, 3N), coords (M, N, 3), bonds (M, nb, 2),
    angles (M, na, 3), masks (M, nb) and (M, na). Returns
    ((bond k, r0), (angle k, θ0)), each (M, nb) or (M, na), masked rows 0.
    """
    bond = jax.vmap(seminario_bond_k)(hessians, coords, bonds, bond_mask)
    angle = jax.vmap(lambda h, x, a, m: seminario_angle_k(h, x, a, modified, m))(
        hessians, coords, angles, angle_mask
    )
    return bond, angle


def _as_list(molecules) -> list:
    from q2jax.io.qmdata import QMData

    if isinstance(molecules, (Molecule, QMData)):
        return [molecules]
    items = list(molecules)
    if not items:
        raise InputError("estimate_force_constants needs at least one molecule")
    return items


def _molecules_and_hessians(molecules, hessians, hessian_units, check_units):
    from q2jax.io.qmdata import QMData

    items = _as_list(molecules)
    if hessians is not None:
        hess_in = [hessians] if isinstance(hessians, (np.ndarray, jax.Array)) else list(hessians)
        if len(hess_in) != len(items):
            raise InputError(f"{len(items)} molecules but {len(hess_in)} Hessians")
        factor = hessian_factor(hessian_units)
    mols, hess = [], []
    for n, item in enumerate(items):
        if isinstance(item, QMData):
            mol = item.to_molecule()
            h = item.checked_hessian() if hessians is None else None
        elif isinstance(item, Molecule):
            mol, h = item, None
        else:
            raise InputError(f"item {n} is a {type(item).__name__}, expected a Molecule or QMData")
        if hessians is not None:
            h = validate_hessian(hess_in[n], mol.n_atoms, name=f"Hessian of {mol.name!r}") * factor
        elif h is None:
            raise InputError(f"molecule {mol.name!r} has no Hessian: pass hessians=[...]")
        diag = float(np.max(np.abs(np.diag(h))))
        lo, hi = _HESSIAN_DIAG_RANGE
        if check_units and mol.n_atoms > 1 and not lo <= diag <= hi:
            raise UnitError(
                f"Hessian of {mol.name!r}: largest |diagonal| is {diag:.4g} kcal/(mol Å^2) after "
                f"conversion from {hessian_units!r}, outside the plausible {lo:g}-{hi:g}; "
                "wrong hessian_units? (a Hessian in Hartree/Bohr^2 needs hessian_units='au')"
            )
        mols.append(mol)
        hess.append(np.asarray(h, dtype=float))
    return mols, hess


def _apply_ts(hess: list[np.ndarray], mols: list[Molecule], replacement: float) -> list[np.ndarray]:
    out = []
    for h, mol in zip(hess, mols, strict=True):
        low = float(np.linalg.eigvalsh(h)[0])
        if low > -_TS_MIN_NEGATIVE:
            raise InputError(
                f"ts_method 'C' needs a transition-state Hessian, but the lowest eigenvalue of "
                f"{mol.name!r} is {low:.4g} kcal/(mol Å^2) (no negative curvature)"
            )
        out.append(np.asarray(replace_ts_curvature(jnp.asarray(h), replacement)))
    return out


def _bucket(n: int, step: int) -> int:
    """``n`` rounded up to a multiple of ``step`` (fewer distinct shapes to compile)."""
    return max(step, -(-n // step) * step)


def _padded(rows: list[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    size = _bucket(max(len(r) for r in rows), 16)
    idx = np.zeros((len(rows), size, width), np.int32)
    mask = np.zeros((len(rows), size), bool)
    for m, r in enumerate(rows):
        idx[m, : len(r)] = r
        mask[m, : len(r)] = True
    return idx, mask


def _unwrap(forcefield, terms):
    """(ForceField, per-molecule term tables or None); accepts a
    ``q2jax.io.mm3_assign.Mm3ForceField`` (its ``forcefield`` and ``systems``)."""
    if not isinstance(forcefield, ForceField):
        inner, systems = (
            getattr(forcefield, "forcefield", None),
            getattr(forcefield, "systems", None),
        )
        if not isinstance(inner, ForceField) or systems is None:
            raise InputError(f"expected a ForceField, got a {type(forcefield).__name__}")
        forcefield, terms = inner, (list(systems) if terms is None else terms)
    if terms is not None:
        terms = [getattr(t, "terms", t) for t in terms]  # a System or its Terms
    return forcefield, terms


def _project(ff, mols, hess, modified, terms=None):
    """Per-molecule Seminario values, with the parameter positions of each row."""
    from q2jax.system import build_terms

    if terms is None:
        terms = [build_terms(ff, m, allow_missing=True) for m in mols]
    elif len(terms) != len(mols):
        raise InputError(f"{len(mols)} molecules but {len(terms)} term tables")
    for m, t in zip(mols, terms, strict=True):
        top = max(int(np.max(t.bond_atoms, initial=-1)), int(np.max(t.angle_atoms, initial=-1)))
        if top >= m.n_atoms:
            raise InputError(
                f"term tables refer to atom {top}, but {m.name!r} has {m.n_atoms} atoms"
            )
    n_max = _bucket(max(m.n_atoms for m in mols), 8)
    h_pad = np.zeros((len(mols), 3 * n_max, 3 * n_max))
    x_pad = np.zeros((len(mols), n_max, 3))
    for i, (m, h) in enumerate(zip(mols, hess, strict=True)):
        h_pad[i, : 3 * m.n_atoms, : 3 * m.n_atoms] = h
        x_pad[i, : m.n_atoms] = np.asarray(m.coords)
    b_rows = [np.asarray(t.bond_atoms) for t in terms]
    a_rows = [np.asarray(t.angle_atoms) for t in terms]
    bonds, b_mask = _padded(b_rows, 2)
    angles, a_mask = _padded(a_rows, 3)
    (bk, r0), (ak, th) = seminario_batch(
        jnp.asarray(h_pad),
        jnp.asarray(x_pad),
        jnp.asarray(bonds),
        jnp.asarray(b_mask),
        jnp.asarray(angles),
        jnp.asarray(a_mask),
        modified=modified,
    )
    bk, r0, ak, th = (np.asarray(v) for v in (bk, r0, ak, th))
    rows = []  # (kind, position, value, is_h_bend)
    for i, (m, t) in enumerate(zip(mols, terms, strict=True)):
        bp, ap = np.asarray(t.bond_params), np.asarray(t.angle_params)
        for j in range(len(b_rows[i])):
            rows += [
                ("bond_k", int(bp[j, 0]), bk[i, j], False),
                ("bond_eq", int(bp[j, 1]), r0[i, j], False),
            ]
        for j, atoms in enumerate(a_rows[i]):
            has_h = any(m.symbols[int(a)] == "H" for a in atoms)
            rows += [
                ("angle_k", int(ap[j, 0]), ak[i, j], has_h),
                ("angle_eq", int(ap[j, 1]), th[i, j], has_h),
            ]
    return rows


def _aggregate(ff, rows, *, method, scale, invalid, rule_k):
    """Mean per parameter position (see the module docstring for the rules)."""
    zero = ff.zero_slot
    groups: dict[tuple[str, int], list] = {}
    for kind, pos, value, has_h in rows:
        if pos != zero:
            groups.setdefault((kind, pos), []).append((float(value), has_h))
    out = {}
    for (kind, pos), items in groups.items():
        entry = ff.entries[pos]
        vals = np.array([v for v, _ in items])
        if kind.endswith("_eq"):
            out[pos] = ParameterEstimate(
                kind, entry.key, float(np.mean(vals)), vals, len(vals), "geometry"
            )
            continue
        if method == "qfuerza" and kind == "angle_k" and any(h for _, h in items):
            n = len(vals)
            out[pos] = ParameterEstimate(
                kind, entry.key, QFUERZA_H_BEND_K, vals * scale, n, "qfuerza-H"
            )
            continue
        vals = vals * scale
        ok = np.isfinite(vals) & ((vals > 0.0) if invalid == "skip" else True)
        value = float(np.mean(vals[ok])) if ok.any() else None
        out[pos] = ParameterEstimate(kind, entry.key, value, vals, int(ok.sum()), rule_k)
    return out


def seminario_estimates(
    forcefield: ForceField,
    molecules,
    hessians=None,
    *,
    method: str = "qfuerza",
    dft_scale: float = DEFAULT_DFT_SCALE,
    scale_convention: str = "frequency",
    ts_method: str | None = None,
    ts_replacement: float = TS_REPLACEMENT,
    invalid: str = "skip",
    hessian_units: str = "kcal/mol/A2",
    check_units: bool = True,
    terms: Sequence | None = None,
) -> dict[int, ParameterEstimate]:
    """Estimates of every bond/angle k and equilibrium value the molecules
    inform, keyed by position in ``forcefield.full_params()``.

    Occurrences are matched to parameters exactly as the energy matches them:
    by the term tables (``terms``, one ``System`` or ``Terms`` per molecule;
    default ``q2jax.system.build_terms``), so any atom typing works.
    Arguments as :func:`estimate_force_constants`.
    """
    forcefield, terms = _unwrap(forcefield, terms)
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    if ts_method not in TS_METHODS:
        raise InputError(f"ts_method must be one of {TS_METHODS}, got {ts_method!r}")
    if invalid not in ("skip", "keep"):
        raise InputError(f"invalid must be 'skip' or 'keep', got {invalid!r}")
    scale = force_constant_scale(dft_scale, scale_convention)
    mols, hess = _molecules_and_hessians(molecules, hessians, hessian_units, check_units)
    modified = method == "modified"
    rule = "modified" if modified else "seminario"
    if ts_method == "C":
        hess = _apply_ts(hess, mols, ts_replacement)
        rule = "ts-C"
    ff = forcefield
    est = _aggregate(
        ff,
        _project(ff, mols, hess, modified, terms),
        method=method,
        scale=scale,
        invalid=invalid,
        rule_k=rule,
    )
    if ts_method == "E":
        est_c = _aggregate(
            ff,
            _project(ff, mols, _apply_ts(hess, mols, ts_replacement), modified, terms),
            method=method,
            scale=scale,
            invalid=invalid,
            rule_k="ts-C",
        )
        for pos, e in est.items():
            if (
                e.kind.endswith("_k")
                and e.rule != "qfuerza-H"
                and (e.value is None or e.value <= 0)
            ):
                est[pos] = est_c[pos]
    return est


def estimate_force_constants(
    forcefield: ForceField,
    molecules,
    hessians: Sequence | None = None,
    *,
    method: str = "qfuerza",
    dft_scale: float = DEFAULT_DFT_SCALE,
    scale_convention: str = "frequency",
    ts_method: str | None = None,
    ts_replacement: float = TS_REPLACEMENT,
    invalid: str = "skip",
    only_trainable: bool = True,
    average: bool = True,
    hessian_units: str = "kcal/mol/A2",
    check_units: bool = True,
    terms: Sequence | None = None,
) -> ForceField | list[ForceField]:
    """A new force field with bond/angle force constants and equilibrium
    values estimated from QM Hessians (QFUERZA by default).

    ``molecules``: Molecule(s) with ``hessians`` (one (3N, 3N) array each, in
    ``hessian_units``, default kcal/(mol Å^2); "au" for Hartree/Bohr^2), or
    ``q2jax.io.qmdata.QMData`` records carrying their own Hessians. Each
    parameter gets the mean over all its occurrences in all molecules;
    only parameters the force field has are set, and only trainable ones
    unless ``only_trainable=False``. ``average=False`` returns one force
    field per molecule instead. ``forcefield`` may also be an
    ``Mm3ForceField`` (``q2jax.io.mm3_assign``): its term tables then say
    which ``.fld`` line each bond and angle uses (``terms`` does the same for
    any force field: one ``System`` or ``Terms`` per molecule). See the
    module docstring for ``method``,
    ``dft_scale``/``scale_convention``, ``ts_method`` and ``invalid``.
    Raises InputError/UnitError on malformed input (wrong Hessian shape,
    implausible Hessian magnitude for the stated units, ...).
    """
    kwargs = dict(
        method=method,
        dft_scale=dft_scale,
        scale_convention=scale_convention,
        ts_method=ts_method,
        ts_replacement=ts_replacement,
        invalid=invalid,
        hessian_units=hessian_units,
        check_units=check_units,
    )
    forcefield, terms = _unwrap(forcefield, terms)
    if not average:
        items = _as_list(molecules)
        hs = [None] * len(items) if hessians is None else list(hessians)
        ts = [None] * len(items) if terms is None else list(terms)
        if not len(hs) == len(ts) == len(items):
            raise InputError(
                f"{len(items)} molecules but {len(hs)} Hessians, {len(ts)} term tables"
            )
        return [
            estimate_force_constants(
                forcefield,
                [m],
                None if h is None else [h],
                only_trainable=only_trainable,
                terms=None if t is None else [t],
                **kwargs,
            )
            for m, h, t in zip(items, hs, ts, strict=True)
        ]
    est = seminario_estimates(forcefield, molecules, hessians, terms=terms, **kwargs)
    vals = np.asarray(forcefield.full_params()).copy()
    n = forcefield.n_params
    missing = []
    for pos, e in est.items():
        if only_trainable and pos >= n:
            continue
        if e.value is None:
            missing.append(forcefield.entries[pos].label)
            continue
        vals[pos] = e.value
    if missing:
        warnings.warn(
            f"no positive Seminario estimate for {', '.join(sorted(missing))}; kept their current "
            "values (a transition state? see ts_method)",
            stacklevel=2,
        )
    return ForceField(
        jnp.asarray(vals[:n]),
        jnp.asarray(vals[n:-1]),
        forcefield.entries,
        forcefield.form,
        forcefield.settings,
    )


__all__ = [
    "METHODS",
    "TS_METHODS",
    "DEFAULT_DFT_SCALE",
    "QFUERZA_H_BEND_K",
    "QFUERZA_H_BEND_MDYN",
    "TS_REPLACEMENT",
    "ParameterEstimate",
    "estimate_force_constants",
    "seminario_estimates",
    "seminario_batch",
    "force_constant_scale",
    "seminario_bond_k",
    "seminario_angle_k",
    "seminario_bond_curvature",
    "seminario_angle_curvature",
    "projected_curvature",
    "interatomic_blocks",
    "in_plane_perpendiculars",
    "replace_ts_curvature",
]
