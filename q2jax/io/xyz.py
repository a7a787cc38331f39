"""XYZ files: ``read_xyz(path, index=None)`` and ``read_xyz_all(path)``.

Format (one frame; frames follow each other back to back)::

    <number of atoms N>
    <comment line: becomes QMData.name; empty -> file stem>
    <element> <x> <y> <z>                             (N lines, Å)

The element is a symbol (any case, optionally followed by a number: ``C1``,
``Cl12``) or an atomic number. Coordinates are Å (``source_units``
``{"coords": "angstrom"}``), so nothing is converted.

Written here rather than with cclib: cclib 1.8.1's ``ccread`` does not
recognise ``.xyz`` files, and its ``xyzreader.XYZ`` reads the good file but
fails with ``UnboundLocalError`` (no file or line) when the header announces
more atoms than follow. Strict: the atom count must match the lines that
follow, every coordinate must be a plain decimal number, and only blank
lines may follow the last frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from q2jax.elements import ELEMENTS
from q2jax.io._build import build, pick_one, symbol_from_number
from q2jax.io._text import TextFile, parse_float, parse_int, read_text
from q2jax.io.qmdata import QMData

__all__ = ["read_xyz", "read_xyz_all"]


def read_xyz(path: str | Path, *, index: int | None = None, extra_columns: bool = False) -> QMData:
    """One structure from an XYZ file (Å).

    ``index`` picks a frame of a multi-frame file (negative counts from the
    end); with ``index=None`` the file must hold exactly one frame. Atom
    lines must have exactly 4 fields unless ``extra_columns=True`` (then
    every atom line of a frame must have the same number of fields, at least
    4, and the extra ones are ignored).
    """
    frames = read_xyz_all(path, extra_columns=extra_columns)
    return pick_one(frames, index, str(path), "frame")


def read_xyz_all(path: str | Path, *, extra_columns: bool = False) -> list[QMData]:
    """Every frame of an XYZ file, in file order."""
    f = read_text(path)
    frames: list[QMData] = []
    lineno = 1
    end = f.last_nonblank()
    if end == 0:
        raise f.error("empty file")
    while lineno <= end:
        frame, lineno = _read_frame(f, lineno, extra_columns)
        frames.append(frame)
    return frames


def _read_frame(f: TextFile, start: int, extra_columns: bool) -> tuple[QMData, int]:
    head = f.line(start, "the number of atoms").split()
    if len(head) != 1:
        raise f.error(f"expected the number of atoms alone on the line, found {len(head)} fields",
                      start)
    n = parse_int(head[0], f, start, "the number of atoms")
    if n <= 0:
        raise f.error(f"number of atoms must be positive, found {n}", start)
    title = f.line(start + 1, "the comment line").strip()
    symbols: list[str] = []
    coords = np.empty((n, 3))
    width = None
    for k in range(n):
        ln = start + 2 + k
        if ln > len(f.lines):
            raise f.error(f"file ends after {k} of {n} atoms", len(f.lines))
        fields = f.lines[ln - 1].split()
        if len(fields) < 4 or (len(fields) > 4 and not extra_columns):
            raise f.error(f"expected '<element> <x> <y> <z>' for atom {k + 1} of {n}, "
                          f"found {len(fields)} fields (extra_columns=True allows more)", ln)
        if width is not None and len(fields) != width:
            raise f.error(f"atom line has {len(fields)} fields, the frame's first has {width}",
                          ln)
        width = len(fields)
        symbols.append(_element(fields[0], f, ln))
        coords[k] = [parse_float(t, f, ln, "a coordinate") for t in fields[1:4]]
    qm = build(f, symbols=symbols, coords=coords, program="xyz", name=title or None,
               source_units={"coords": "angstrom"}, line=start)
    return qm, start + 2 + n


def _element(token: str, f: TextFile, line: int) -> str:
    if token.isdigit():
        return symbol_from_number(int(token), f, line)
    letters = token.rstrip("0123456789")
    if letters.isalpha():
        sym = letters[:1].upper() + letters[1:].lower()
        if sym in ELEMENTS:
            return sym
    raise f.error(f"unknown element {token!r}", line)

