"""The ForceField pytree: a flat vector of trainable parameters, a vector of
frozen ones, and static metadata (kind, atom-type key, bounds) for each.

Every term of a molecule refers to its parameters by position in the
combined vector ``[params, fixed, 0]`` (the trailing zero is the slot of an
absent parameter), so the energy is a gather followed by vectorised term
functions. Parameters are stored in q2jax units (``q2jax.params.KINDS``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from q2jax.errors import InputError, ParameterError
from q2jax.params import FAMILY_KINDS, KINDS, canonical_key, label

FORMS = ("harmonic", "mm3")
JSON_FORMAT = "q2jax-forcefield"
JSON_VERSION = 1


class ParamEntry(NamedTuple):
    """Static description of one parameter."""

    kind: str
    key: tuple[str, ...]
    lower: float
    upper: float

    @property
    def family(self) -> str:
        return KINDS[self.kind].family

    @property
    def label(self) -> str:
        return label(self.kind, self.key)

    @property
    def unit(self) -> str:
        return KINDS[self.kind].unit


class Settings(NamedTuple):
    """Form-wide settings (static)."""

    vdw_14_scale: float = 1.0
    elec_14_scale: float = 1.0
    dielectric: float = 1.0


def default_settings(form: str) -> Settings:
    if form == "mm3":
        # MM3 (Tinker mm3.prm): 1-4 vdW and charges unscaled, dielectric 1.5
        return Settings(vdw_14_scale=1.0, elec_14_scale=1.0, dielectric=1.5)
    return Settings(vdw_14_scale=0.5, elec_14_scale=1.0 / 1.2, dielectric=1.0)


class ForceField(eqx.Module):
    """Trainable ``params`` (one flat leaf) plus frozen ``fixed`` values.

    ``entries`` describes ``params`` then ``fixed``, in that order. Build one
    with :meth:`from_entries`, :meth:`from_molecules` or a reader in
    ``q2jax.io``; change it with :meth:`with_params`, :meth:`freeze` and
    :meth:`unfreeze` (never in place).
    """

    params: Float[Array, " p"]
    fixed: Float[Array, " q"]
    entries: tuple[ParamEntry, ...] = eqx.field(static=True)
    form: str = eqx.field(static=True, default="harmonic")
    settings: Settings = eqx.field(static=True, default=Settings())

    # --- construction ---------------------------------------------------------------
    @classmethod
    def from_entries(
        cls,
        values: Sequence[tuple[str, Sequence[str], float]],
        *,
        form: str = "harmonic",
        trainable: Sequence[bool] | Callable[[str, tuple[str, ...]], bool] | None = None,
        bounds: dict[str, tuple[float, float]] | None = None,
        settings: Settings | None = None,
    ) -> ForceField:
        """Build from ``(kind, atom_types, value)`` triples.

        ``trainable`` is a flag per triple or a predicate ``(kind, key) -> bool``
        (default: all trainable). ``bounds`` overrides the default bounds per kind.
        """
        if form not in FORMS:
            raise InputError(f"unknown functional form {form!r}; expected one of {FORMS}")
        rows = []
        seen = set()
        for n, (kind, types, value) in enumerate(values):
            if kind not in KINDS:
                raise ParameterError(f"unknown parameter kind {kind!r}")
            key = canonical_key(KINDS[kind].family, types)
            if (kind, key) in seen:
                raise ParameterError(f"duplicate parameter {label(kind, key)!r}")
            seen.add((kind, key))
            lo, hi = (bounds or {}).get(kind, (KINDS[kind].lower, KINDS[kind].upper))
            v = float(value)
            if not np.isfinite(v):
                raise ParameterError(f"parameter {label(kind, key)!r} is not finite: {value!r}")
            if callable(trainable):
                flag = bool(trainable(kind, key))
            elif trainable is None:
                flag = True
            else:
                flag = bool(trainable[n])
            rows.append((ParamEntry(kind, key, float(lo), float(hi)), v, flag))
        train = [r for r in rows if r[2]]
        frozen = [r for r in rows if not r[2]]
        return cls(
            params=jnp.asarray([r[1] for r in train], dtype=jnp.float64),
            fixed=jnp.asarray([r[1] for r in frozen], dtype=jnp.float64),
            entries=tuple(r[0] for r in train) + tuple(r[0] for r in frozen),
            form=form,
            settings=settings if settings is not None else default_settings(form),
        )

    @classmethod
    def from_molecules(
        cls,
        molecules: Iterable,
        form: str = "harmonic",
        *,
        families: Sequence[str] | None = None,
        equilibrium_from_geometry: bool = True,
    ) -> ForceField:
        """The parameter set a molecule set needs, keyed by atom type.

        Families default to bond and angle, plus proper torsions and
        out-of-plane terms when the molecules have them (and stretch-bend for
        MM3 when asked). Equilibrium values start at the mean over the
        molecules' geometries; force constants at ``KINDS[...].default``
        (use ``q2jax.seminario.estimate_force_constants`` for QFUERZA values).
        """
        from q2jax.forcefield_build import parameters_from_molecules

        triples = parameters_from_molecules(
            list(molecules), families=families, equilibrium_from_geometry=equilibrium_from_geometry
        )
        return cls.from_entries(triples, form=form)

    # --- views -----------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        """Number of trainable parameters."""
        return int(self.params.shape[0])

    @property
    def n_fixed(self) -> int:
        return int(self.fixed.shape[0])

    @property
    def trainable_entries(self) -> tuple[ParamEntry, ...]:
        return self.entries[: self.n_params]

    def get_param_type_labels(self) -> list[str]:
        """Labels of the trainable parameters, e.g. ``'bond C-F k'``, in vector order."""
        return [e.label for e in self.trainable_entries]

    @property
    def labels(self) -> list[str]:
        return self.get_param_type_labels()

    @property
    def kinds(self) -> list[str]:
        """Kinds of the trainable parameters ('bond_k', 'angle_eq', ...)."""
        return [e.kind for e in self.trainable_entries]

    def get_param_indices_by_type(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for i, e in enumerate(self.trainable_entries):
            out.setdefault(e.kind, []).append(i)
        return out

    def get_step_sizes(self) -> np.ndarray:
        """Per-parameter finite-difference steps (Q2MM-like, by kind)."""
        return np.array([KINDS[e.kind].step for e in self.trainable_entries])

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) arrays for the trainable parameters."""
        ents = self.trainable_entries
        return np.array([e.lower for e in ents]), np.array([e.upper for e in ents])

    def full_params(self, params: Array | None = None) -> Float[Array, " p_all"]:
        """``[params, fixed, 0]``: the vector every term gathers from."""
        p = self.params if params is None else params
        return jnp.concatenate([p, self.fixed, jnp.zeros((1,), dtype=self.fixed.dtype)])

    def position_map(self) -> dict[tuple[str, tuple[str, ...]], int]:
        """(kind, key) -> position in :meth:`full_params` (host side)."""
        return {(e.kind, e.key): i for i, e in enumerate(self.entries)}

    @property
    def zero_slot(self) -> int:
        return len(self.entries)

    def has(self, kind: str, types: Sequence[str]) -> bool:
        key = canonical_key(KINDS[kind].family, types)
        return (kind, key) in self.position_map()

    def value(self, kind: str, types: Sequence[str]) -> float:
        key = canonical_key(KINDS[kind].family, types)
        pos = self.position_map().get((kind, key))
        if pos is None:
            raise ParameterError(f"no parameter {label(kind, key)!r} in this force field")
        return float(np.asarray(self.full_params())[pos])

    def families(self) -> set[str]:
        return {e.family for e in self.entries}

    def as_dict(self) -> dict[str, float]:
        """label -> value for every parameter (trainable and fixed)."""
        vals = np.asarray(self.full_params())
        return {e.label: float(vals[i]) for i, e in enumerate(self.entries)}

    # --- updates (all return a new force field) -------------------------------------------
    def with_params(self, params) -> ForceField:
        p = jnp.asarray(params, dtype=self.params.dtype)
        if p.shape != self.params.shape:
            raise InputError(f"expected {self.params.shape[0]} parameters, got shape {p.shape}")
        return eqx.tree_at(lambda f: f.params, self, p)

    def with_values(self, updates: dict[tuple[str, tuple[str, ...]], float]) -> ForceField:
        """Set parameters by (kind, atom types), trainable or fixed."""
        vals = np.asarray(self.full_params()).copy()
        pos = self.position_map()
        for (kind, types), v in updates.items():
            key = canonical_key(KINDS[kind].family, types)
            if (kind, key) not in pos:
                raise ParameterError(f"no parameter {label(kind, key)!r} in this force field")
            vals[pos[(kind, key)]] = float(v)
        n = self.n_params
        return ForceField(
            jnp.asarray(vals[:n]), jnp.asarray(vals[n:-1]), self.entries, self.form, self.settings
        )

    def with_form(self, form: str) -> ForceField:
        if form not in FORMS:
            raise InputError(f"unknown functional form {form!r}; expected one of {FORMS}")
        return ForceField(self.params, self.fixed, self.entries, form, default_settings(form))

    def select_trainable(self, predicate: Callable[[ParamEntry], bool]) -> ForceField:
        """A force field whose trainable set is exactly the entries where
        ``predicate`` holds (values unchanged, order kept within each part)."""
        vals = np.asarray(self.full_params())[:-1]
        train = [(e, v) for e, v in zip(self.entries, vals, strict=True) if predicate(e)]
        frozen = [(e, v) for e, v in zip(self.entries, vals, strict=True) if not predicate(e)]
        return ForceField(
            jnp.asarray([v for _, v in train], dtype=jnp.float64),
            jnp.asarray([v for _, v in frozen], dtype=jnp.float64),
            tuple(e for e, _ in train) + tuple(e for e, _ in frozen),
            self.form,
            self.settings,
        )

    def freeze(self, kinds: Iterable[str]) -> ForceField:
        """Make every parameter of the given kinds fixed."""
        ks = set(kinds)
        trainable = set(self.trainable_entries)
        return self.select_trainable(lambda e: e in trainable and e.kind not in ks)

    def unfreeze(self, kinds: Iterable[str]) -> ForceField:
        ks = set(kinds)
        trainable = set(self.trainable_entries)
        return self.select_trainable(lambda e: e in trainable or e.kind in ks)

    # --- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        vals = np.asarray(self.full_params())
        n = self.n_params
        return {
            "format": JSON_FORMAT,
            "version": JSON_VERSION,
            "form": self.form,
            "settings": self.settings._asdict(),
            "parameters": [
                {
                    "label": e.label,
                    "kind": e.kind,
                    "key": list(e.key),
                    "value": float(vals[i]),
                    "unit": e.unit,
                    "lower": e.lower,
                    "upper": e.upper,
                    "trainable": i < n,
                }
                for i, e in enumerate(self.entries)
            ],
        }

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "<dict>") -> ForceField:
        if not isinstance(data, dict) or data.get("format") != JSON_FORMAT:
            raise InputError(
                f"{source}: not a q2jax force-field file (missing format={JSON_FORMAT!r})"
            )
        try:
            rows = data["parameters"]
            triples = [(r["kind"], tuple(r["key"]), float(r["value"])) for r in rows]
            flags = [bool(r.get("trainable", True)) for r in rows]
            bounds_rows = [
                (float(r.get("lower", -np.inf)), float(r.get("upper", np.inf))) for r in rows
            ]
            form = data.get("form", "harmonic")
            settings = Settings(**data["settings"]) if "settings" in data else None
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: malformed force-field JSON ({exc})") from None
        ff = cls.from_entries(triples, form=form, trainable=flags, settings=settings)
        # per-entry bounds
        bmap = {
            (k, canonical_key(KINDS[k].family, key)): b
            for (k, key, _), b in zip(triples, bounds_rows, strict=True)
        }
        entries = tuple(
            e._replace(lower=bmap[(e.kind, e.key)][0], upper=bmap[(e.kind, e.key)][1])
            for e in ff.entries
        )
        return ForceField(ff.params, ff.fixed, entries, ff.form, ff.settings)

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> ForceField:
        """Read a force field written by :meth:`to_json` (a path or the JSON text)."""
        text = str(path_or_text)
        source = "<string>"
        if not text.lstrip().startswith("{"):
            path = Path(path_or_text)
            if not path.is_file():
                raise InputError(f"{path}: no such force-field file")
            text, source = path.read_text(), str(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        return cls.from_dict(data, source=source)

    def summary(self) -> str:
        """A table of every trainable parameter."""
        vals = np.asarray(self.params)
        lines = [f"ForceField(form={self.form!r}, {self.n_params} trainable, {self.n_fixed} fixed)"]
        for e, v in zip(self.trainable_entries, vals, strict=True):
            lines.append(f"  {e.label:<32s} {v:12.5f} {e.unit}")
        return "\n".join(lines)


def family_kinds(family: str) -> tuple[str, ...]:
    return FAMILY_KINDS[family]


__all__ = ["ForceField", "ParamEntry", "Settings", "FORMS", "default_settings"]
