"""Helpers of the fuzz test: the 'no silently wrong parse' property.

A parse of a damaged file is acceptable if and only if

1. it raises a :class:`q2jax.errors.Q2JaxError` (ParseError/InputError), or
2. it returns a record that is internally consistent (``consistent``) and
   differs from the parse of the intact file in at most ONE "footprint":
   one coordinate, one Hessian element pair (i, j)/(j, i), one frequency,
   one gradient component, the energy, one atom's identity (symbol, type,
   mass and charge of that atom together), one bond (a bond replaced by
   another), or the title -- i.e. at most what the single damaged token of
   the file can carry. Which fields are present (not None), the atom count
   and every other value must be exactly equal.

A damaged digit inside a number is indistinguishable from a different
valid number, so (2) is the strongest property a reader can promise; every
structural damage (counts, missing or merged tokens, lost sections,
truncated files) must end in (1).
"""

from __future__ import annotations

import numpy as np

from q2jax.io.qmdata import QMData

FIELDS = ("hessian", "energy", "gradient", "frequencies", "atom_types", "bonds", "charges",
          "masses")


def consistent(q: QMData) -> list[str]:
    """Problems of one record (empty list: consistent)."""
    bad = []
    n = len(q.symbols)
    if n == 0:
        bad.append("no atoms")
    if np.shape(q.coords) != (n, 3) or not np.all(np.isfinite(q.coords)):
        bad.append("coords")
    if q.hessian is not None:
        h = np.asarray(q.hessian)
        if h.shape != (3 * n, 3 * n) or not np.all(np.isfinite(h)) or not np.array_equal(h, h.T):
            bad.append("hessian")
    if q.gradient is not None and (np.shape(q.gradient) != (n, 3)
                                   or not np.all(np.isfinite(q.gradient))):
        bad.append("gradient")
    if q.frequencies is not None:
        fr = np.asarray(q.frequencies)
        if fr.ndim != 1 or len(fr) not in (3 * n - 6, 3 * n - 5) or not np.all(np.isfinite(fr)):
            bad.append("frequencies")
    for name in ("atom_types", "charges", "masses"):
        v = getattr(q, name)
        if v is not None and len(v) != n:
            bad.append(name)
    if q.bonds is not None:
        pairs = list(q.bonds)
        if len(set(pairs)) != len(pairs) or any(not (0 <= a < b < n) for a, b in pairs):
            bad.append("bonds")
    return bad


def footprints(a: QMData, b: QMData) -> set[tuple]:
    """The set of footprints in which ``b`` differs from ``a`` (same atom count
    and field presence assumed; checked by the caller)."""
    out: set[tuple] = set()
    n = len(a.symbols)
    for i in range(n):
        same = a.symbols[i] == b.symbols[i]
        for name in ("atom_types", "charges", "masses"):
            va, vb = getattr(a, name), getattr(b, name)
            if va is not None and va[i] != vb[i]:
                same = False
        if not same:
            out.add(("atom", i))
    for i, k in zip(*np.nonzero(np.asarray(a.coords) != np.asarray(b.coords)), strict=True):
        out.add(("coord", int(i), int(k)))
    if a.hessian is not None:
        for i, j in zip(*np.nonzero(np.asarray(a.hessian) != np.asarray(b.hessian)), strict=True):
            out.add(("hess", int(min(i, j)), int(max(i, j))))
    if a.gradient is not None:
        for i, k in zip(*np.nonzero(np.asarray(a.gradient) != np.asarray(b.gradient)),
                        strict=True):
            out.add(("grad", int(i), int(k)))
    if a.frequencies is not None:
        fa, fb = np.asarray(a.frequencies), np.asarray(b.frequencies)
        if fa.shape != fb.shape:
            out.add(("freq-count",))
            out.add(("freq-count2",))
        else:
            for k in np.nonzero(fa != fb)[0]:
                out.add(("freq", int(k)))
    if a.energy != b.energy:
        out.add(("energy",))
    if a.bonds is not None:
        diff = set(a.bonds) ^ set(b.bonds)
        if diff:
            out.add(("bond",))
            if len(set(a.bonds) - set(b.bonds)) > 1 or len(set(b.bonds) - set(a.bonds)) > 1:
                out.add(("bond-many",))
    if a.name != b.name:
        out.add(("name",))
    return out


def silently_wrong(original: QMData, damaged: QMData) -> str | None:
    """None if ``damaged`` is an acceptable parse of a damaged file, else why not."""
    bad = consistent(damaged)
    if bad:
        return f"inconsistent record: {bad}"
    if len(damaged.symbols) != len(original.symbols):
        return f"atom count changed {len(original.symbols)} -> {len(damaged.symbols)}"
    for name in FIELDS:
        if (getattr(original, name) is None) != (getattr(damaged, name) is None):
            return f"field {name} appeared or disappeared"
    fp = footprints(original, damaged)
    if len(fp) > 1:
        return f"{len(fp)} footprints differ: {sorted(fp)[:6]}"
    return None
