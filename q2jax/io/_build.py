"""Shared final step of every reader: check what was parsed and build the
:class:`~q2jax.io.qmdata.QMData` record, converting units exactly once.

Each reader hands over raw values in the file's own units together with the
unit factors from :mod:`q2jax.units`; this module multiplies, checks shapes,
finiteness and counts, and raises :class:`~q2jax.errors.ParseError` (file and
line) on anything inconsistent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from q2jax.elements import ELEMENTS, element
from q2jax.errors import InputError
from q2jax.io._text import TextFile
from q2jax.io.qmdata import QMData


def element_from_label(label: str, f: TextFile, line: int, *, greedy: bool = True) -> str:
    """Element symbol at the start of an atom label (``Rh1`` -> Rh, ``H17`` -> H).

    With ``greedy`` (Jaguar's documented rule, also used for archive labels)
    a two-letter element wins over a one-letter one: ``HE5`` is helium, ``CA``
    calcium. Raises ParseError if the label does not start with an element.
    """
    letters = ""
    for ch in label:
        if not ch.isalpha():
            break
        letters += ch
    candidates = [letters[:2], letters[:1]] if greedy else [letters[:1], letters[:2]]
    for cand in candidates:
        if cand and cand[:1].upper() + cand[1:].lower() in ELEMENTS:
            return cand[:1].upper() + cand[1:].lower()
    raise f.error(f"atom label {label!r} does not start with an element symbol", line)


def symbol_from_number(z: int, f: TextFile, line: int) -> str:
    """Element symbol of atomic number ``z`` (ParseError for dummies/ghosts/unknown)."""
    try:
        return element(int(z)).symbol
    except InputError:
        raise f.error(f"atomic number {z} is not a real element (dummy, ghost or unknown atoms "
                      "are not supported)", line) from None


def lower_triangle_to_matrix(values: Sequence[float], n: int) -> np.ndarray:
    """Symmetric n x n matrix from its lower triangle stored row by row
    (H11, H21, H22, H31, ...), the Gaussian archive / fchk order."""
    h = np.zeros((n, n))
    rows, cols = np.tril_indices(n)
    h[rows, cols] = np.asarray(values, dtype=float)
    h[cols, rows] = h[rows, cols]
    return h


def n_vibrations(coords: np.ndarray) -> int:
    """3N - 6, or 3N - 5 for a linear geometry (second singular value of the
    centred coordinates below 1e-3 of the first), 0 for one atom."""
    xyz = np.asarray(coords, dtype=float)
    n = len(xyz)
    if n < 2:
        return 0
    s = np.linalg.svd(xyz - xyz.mean(axis=0), compute_uv=False)
    return 3 * n - (5 if s[1] < 1e-3 * max(s[0], 1e-12) else 6)


def default_or_printed_masses(symbols: Sequence[str], printed: Sequence[float],
                              decimals: int) -> np.ndarray:
    """Masses (amu): a printed mass that equals the most-abundant-isotope mass
    to the printed precision is replaced by the full-precision table value;
    any other printed value (an isotope the job asked for) is kept."""
    out = np.empty(len(symbols))
    half_ulp = 0.5 * 10.0**-decimals + 1e-12
    for i, (s, m) in enumerate(zip(symbols, printed, strict=True)):
        ref = element(s).mass_amu
        out[i] = ref if abs(ref - m) <= half_ulp else m
    return out


def build(
    f: TextFile,
    *,
    symbols: Sequence[str],
    coords: np.ndarray,
    program: str,
    source_units: dict[str, str],
    name: str | None = None,
    hessian: np.ndarray | None = None,
    energy: float | None = None,
    gradient: np.ndarray | None = None,
    frequencies: np.ndarray | None = None,
    atom_types: Sequence[str] | None = None,
    bonds: Sequence[tuple[int, int]] | None = None,
    charges: np.ndarray | None = None,
    masses: np.ndarray | None = None,
    line: int | None = None,
) -> QMData:
    """Check counts, shapes and finiteness; return the QMData (already in q2jax units).

    ``line`` is where the structure starts (for messages about the whole record).
    Bonds are 0-based pairs; they are returned sorted as (i < j), and a
    duplicate or self bond is an error.
    """
    n = len(symbols)
    if n == 0:
        raise f.error("no atoms found", line)
    xyz = np.asarray(coords, dtype=float)
    if xyz.shape != (n, 3):
        raise f.error(f"coordinates have shape {xyz.shape}, expected ({n}, 3)", line)
    _finite(f, xyz, "coordinates", line)
    if hessian is not None:
        hessian = np.asarray(hessian, dtype=float)
        if hessian.shape != (3 * n, 3 * n):
            raise f.error(f"Hessian has shape {hessian.shape}, expected ({3 * n}, {3 * n}) for "
                          f"{n} atoms", line)
        _finite(f, hessian, "Hessian", line)
        scale = max(float(np.abs(hessian).max()), 1e-300)
        if float(np.abs(hessian - hessian.T).max()) > 1e-8 * scale:
            raise f.error("Hessian is not symmetric", line)
    if gradient is not None:
        gradient = np.asarray(gradient, dtype=float).reshape(-1)
        if gradient.shape != (3 * n,):
            raise f.error(f"gradient has {gradient.size} values, expected {3 * n}", line)
        gradient = gradient.reshape(n, 3)
        _finite(f, gradient, "gradient", line)
    if frequencies is not None:
        frequencies = np.asarray(frequencies, dtype=float)
        _finite(f, frequencies, "frequencies", line)
    if energy is not None and not np.isfinite(energy):
        raise f.error("energy is not finite", line)
    if atom_types is not None:
        atom_types = tuple(str(t) for t in atom_types)
        if len(atom_types) != n:
            raise f.error(f"{len(atom_types)} atom types for {n} atoms", line)
        if any(not t or any(c.isspace() for c in t) for t in atom_types):
            raise f.error("empty or malformed atom type", line)
    if bonds is not None:
        bonds = _check_bonds(f, bonds, n, line)
    if charges is not None:
        charges = np.asarray(charges, dtype=float)
        if charges.shape != (n,):
            raise f.error(f"{charges.size} charges for {n} atoms", line)
        _finite(f, charges, "charges", line)
    if masses is not None:
        masses = np.asarray(masses, dtype=float)
        if masses.shape != (n,) or not np.all(np.isfinite(masses)) or np.any(masses <= 0):
            raise f.error("masses must be one finite positive value per atom", line)
    return QMData(
        symbols=tuple(symbols),
        coords=xyz,
        hessian=hessian,
        energy=None if energy is None else float(energy),
        gradient=gradient,
        frequencies=frequencies,
        atom_types=atom_types,
        bonds=bonds,
        charges=charges,
        masses=masses,
        name=name or _stem(f.path),
        source=f.path,
        program=program,
        source_units=dict(source_units),
    )


def pick_one(items: list[QMData], index: int | None, path: str, what: str) -> QMData:
    """``items[index]``; with ``index=None`` there must be exactly one item."""
    if index is None:
        if len(items) != 1:
            raise InputError(f"{path}: holds {len(items)} {what}s; pass index=... or use the "
                             "matching read_..._all reader")
        return items[0]
    try:
        return items[index]
    except IndexError:
        raise InputError(f"{path}: {what} index {index} out of range ({len(items)} "
                         f"{what}s)") from None


def _check_bonds(f: TextFile, bonds, n: int, line: int | None) -> tuple[tuple[int, int], ...]:
    seen: set[tuple[int, int]] = set()
    for a, b in bonds:
        if not (0 <= a < n and 0 <= b < n):
            raise f.error(f"bond {a + 1}-{b + 1} refers to an atom outside 1..{n}", line)
        if a == b:
            raise f.error(f"bond of atom {a + 1} to itself", line)
        key = (min(a, b), max(a, b))
        if key in seen:
            raise f.error(f"bond {key[0] + 1}-{key[1] + 1} listed twice", line)
        seen.add(key)
    return tuple(sorted(seen))


def _finite(f: TextFile, arr: np.ndarray, what: str, line: int | None) -> None:
    if not np.all(np.isfinite(arr)):
        raise f.error(f"{what} contain NaN or inf", line)


def _stem(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    if name.endswith(".gz"):
        name = name[:-3]
    return name.rsplit(".", 1)[0] if "." in name else name


__all__ = [
    "build",
    "pick_one",
    "element_from_label",
    "symbol_from_number",
    "lower_triangle_to_matrix",
    "n_vibrations",
    "default_or_printed_masses",
]
