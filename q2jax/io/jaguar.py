"""Schrödinger Jaguar files: ``read_jaguar_in(path)`` (input / restart
``.in``, geometry and the ``&hess`` Hessian) and ``read_jaguar_out(path)``
(output ``.out``: geometry, SCF energy, frequencies).

Written here, not with cclib: cclib 1.8.1 stops on the bundled Jaguar 10.6
outputs (``ValueError: could not convert string to float: '#'`` in its
frequency section) and has no reader for Jaguar ``.in`` files, where the
Hessian lives.

Facts established from the bundled Rh-enamide data (9 structures, Jaguar
10.6, B3LYP/LACVP**):

- ``&zmat`` holds Cartesian coordinates in Å (``iunit`` unset; the Jaguar
  manual: "by default, these units are angstroms"). Other ``iunit`` values
  and Z-matrix (internal-coordinate) input raise ParseError.
- ``&hess`` holds the lower triangle of the Cartesian Hessian in
  **Hartree/Bohr²**, in blocks of 5 columns: a line with the first column
  index c, then rows r = c..3N as ``r h(r,c) ... h(r,min(c+4,r))``. Evidence:
  frequencies from this Hessian (× HARTREE_BOHR2_TO_KCAL_MOL_A2), the
  ``&zmat`` geometry and most-abundant-isotope masses reproduce every
  frequency printed in the matching ``.out`` to within 0.005 cm⁻¹, the
  print rounding. Reading it as kJ/(mol Å²) (Q2MM's former factor 9375.8
  = 2240.877 × 4.184 ≈ the "9,376-fold" inflation) would give frequencies
  ~97× too low.
- ``.in``, ``.out`` and the Maestro ``.mae``/MacroModel ``.mmo`` list the
  atoms in the same order (see tests/io/test_jaguar.py).

Atom labels follow Jaguar's documented rule: the label starts with the one-
or two-letter element symbol and a two-letter symbol wins (``HE5`` is
helium, ``CA`` calcium, ``Rh1`` rhodium, ``H17`` hydrogen). Dummy atoms
(``X``, ``Du``) raise ParseError.

Truncation: an ``.out`` must end with Jaguar's "Job ... completed" line; a
``&hess`` section must be complete (every block and row) and closed by
``&``; ``read_jaguar_in`` requires a Hessian unless ``require_hessian=False``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from q2jax import units
from q2jax.io._build import build, element_from_label, n_vibrations
from q2jax.io._text import TextFile, parse_float, parse_int, read_text
from q2jax.io.qmdata import QMData

__all__ = ["read_jaguar_in", "read_jaguar_out", "is_jaguar_output", "is_jaguar_input"]


def read_jaguar_in(path: str | Path, *, require_hessian: bool = True) -> QMData:
    """Geometry (Å) and Cartesian Hessian of a Jaguar input/restart file, in
    q2jax units (Hessian kcal/(mol Å²), converted from Hartree/Bohr²).

    Raises ParseError if the file has no ``&hess`` section (unless
    ``require_hessian=False``), if ``&hess`` is incomplete, or if the geometry
    is not Cartesian Å.
    """
    f = read_text(path)
    sections = _sections(f)
    if "zmat" not in sections:
        raise f.missing("no &zmat section (geometry)")
    gen = _gen_keywords(f, sections.get("gen"))
    if "iunit" in gen and gen["iunit"][0] != "1":
        raise f.error(f"geometry units iunit={gen['iunit'][0]} are not supported (only Å, "
                      "iunit=1 or unset)", gen["iunit"][1])
    z_start, z_end = sections["zmat"]
    symbols, coords = _zmat(f, z_start, z_end)
    source_units = {"coords": "angstrom"}
    hessian = None
    if "hess" in sections:
        h_start, h_end = sections["hess"]
        hessian = _hess(f, h_start, h_end, 3 * len(symbols))
        hessian = hessian * units.HARTREE_BOHR2_TO_KCAL_MOL_A2
        source_units["hessian"] = "hartree/bohr2"
    elif require_hessian:
        found = ", ".join(sorted(sections)) or "none"
        raise f.missing(f"no &hess section (Hessian) in this file; sections found: {found}")
    return build(f, symbols=symbols, coords=coords, hessian=hessian, program="jaguar",
                 source_units=source_units, line=z_start)


def read_jaguar_out(path: str | Path, *, allow_incomplete: bool = False) -> QMData:
    """Last geometry (Å), last SCF energy and the frequencies (cm⁻¹) of a
    Jaguar output file. Jaguar prints no Cartesian Hessian in ``.out``: read
    it from the matching ``.in`` with :func:`read_jaguar_in`.
    """
    f = read_text(path)
    last = f.last_nonblank()
    if last == 0:
        raise f.error("empty file")
    if not allow_incomplete and not _JOB_DONE_RE.match(f.lines[last - 1]):
        raise f.error("file does not end with Jaguar's 'Job ... completed' line (job unfinished "
                      "or file truncated)", last)
    geoms, scfe, nfreq, freq_rows, scf_runs = [], [], [], [], []
    for ln, t in f.numbered():
        s = t.strip()
        if _GEOM_RE.match(s):
            geoms.append(ln)
        elif s.startswith("SCFE:"):
            scfe.append(ln)
        elif s == "end of program scf":
            scf_runs.append(ln)
        elif s.startswith("Number of frequencies:"):
            nfreq.append(ln)
        elif s.startswith("frequencies ") or s == "frequencies":
            freq_rows.append(ln)
    if not geoms:
        raise f.missing("no geometry block ('Input geometry:', 'new geometry:' or 'final "
                        "geometry:')")
    symbols, coords, unit = _out_geometry(f, geoms[-1])
    source_units = {"coords": unit}
    if unit == "bohr":
        coords = coords * units.BOHR_TO_ANGSTROM
    energy = None
    if scf_runs and (not scfe or scfe[-1] < scf_runs[-1] - 200):
        raise f.error("the SCF program ran but its 'SCFE: SCF energy' line is missing",
                      scf_runs[-1])
    if scfe:
        ln = scfe[-1]
        m = re.search(r"SCF energy:.*?(\S+)\s+hartrees", f.lines[ln - 1])
        if m is None:
            raise f.error("malformed 'SCFE: SCF energy' line", ln)
        energy = parse_float(m.group(1), f, ln, "the SCF energy") * units.HARTREE_TO_KCAL_MOL
        source_units["energy"] = "hartree"
    frequencies = _out_frequencies(f, nfreq, freq_rows, n_vibrations(coords))
    if frequencies is not None:
        source_units["frequencies"] = "cm-1"
    return build(f, symbols=symbols, coords=coords, energy=energy, frequencies=frequencies,
                 program="jaguar", source_units=source_units, line=geoms[-1])


def is_jaguar_output(path: str | Path) -> bool:
    """True if the first 40 lines name Jaguar (used by ``read_qm`` for ``.out``)."""
    f = read_text(path)
    return any("Jaguar" in t for t in f.lines[:40])


def is_jaguar_input(path: str | Path) -> bool:
    """True if the file has a Jaguar ``&zmat``/``&gen`` section."""
    f = read_text(path)
    return any(t.strip().lower() in ("&zmat", "$zmat", "&gen", "$gen") or
               t.strip().lower().startswith(("&gen ", "$gen ")) for t in f.lines[:200])


# ------------------------------------------------------------------------- .in

_SECTION_RE = re.compile(r"^\s*[&$]([A-Za-z][A-Za-z0-9_]*)(.*)$")
_END_RE = re.compile(r"^\s*[&$]\s*$")


def _sections(f: TextFile) -> dict[str, tuple[int, int]]:
    """{name: (first content line, closing line)} of every ``&name ... &``
    section; content on the opening line (``&gen a=1``) starts at that line."""
    out: dict[str, tuple[int, int]] = {}
    k = 1
    n = len(f.lines)
    while k <= n:
        t = f.lines[k - 1]
        m = _SECTION_RE.match(t)
        if m is None:
            if _END_RE.match(t):
                raise f.error("section end '&' without an open section", k)
            k += 1
            continue
        name = m.group(1).lower()
        rest = m.group(2)
        if rest.rstrip().endswith(("&", "$")) and rest.strip() not in ("", "&", "$"):
            # one-line section: &gen a=1 b=2 &
            end = k
        elif rest.strip() in ("&", "$"):
            end = k
        else:
            end = k + 1
            while end <= n and not _END_RE.match(f.lines[end - 1]):
                if _SECTION_RE.match(f.lines[end - 1]):
                    raise f.error(f"section &{name} (line {k}) is not closed before a new "
                                  "section starts", end)
                end += 1
            if end > n:
                raise f.error(f"section &{name} is not closed by '&' (file truncated?)", n)
        if name in out:
            raise f.error(f"section &{name} appears twice", k)
        out[name] = (k, end)
        k = end + 1
    return out


def _gen_keywords(f: TextFile, span: tuple[int, int] | None) -> dict[str, tuple[str, int]]:
    """&gen keywords {key: (value, line)}; '=', ',' and blanks separate, '!' comments."""
    if span is None:
        return {}
    out: dict[str, tuple[str, int]] = {}
    start, end = span
    for ln in range(start, end + 1):
        t = f.lines[ln - 1].split("!", 1)[0]
        if ln == start:
            t = _SECTION_RE.match(t).group(2) if _SECTION_RE.match(t) else t
        if ln == end:
            t = t.rstrip().rstrip("&$")
        toks = re.split(r"[\s=,]+", t.strip())
        toks = [x for x in toks if x]
        if len(toks) % 2:
            raise f.error("&gen keywords must come in 'key=value' pairs", ln)
        for key, val in zip(toks[::2], toks[1::2], strict=True):
            out[key.lower()] = (val, ln)
    return out


def _zmat(f: TextFile, start: int, end: int) -> tuple[list[str], np.ndarray]:
    symbols: list[str] = []
    rows: list[list[float]] = []
    for ln in range(start + 1, end):
        fields = f.lines[ln - 1].split()
        if not fields:
            continue
        if len(fields) != 4:
            raise f.error("expected a Cartesian atom 'label x y z' (Z-matrix and variable input "
                          f"are not supported), found {len(fields)} fields", ln)
        label = fields[0]
        if label[:1].upper() == "X" or label[:2].lower() == "du":
            raise f.error(f"dummy atom {label!r} is not supported", ln)
        symbols.append(element_from_label(label, f, ln, greedy=True))
        rows.append([parse_float(v.rstrip("#"), f, ln, "a coordinate") for v in fields[1:]])
    if not symbols:
        raise f.error("empty &zmat section", start)
    return symbols, np.asarray(rows)


def _hess(f: TextFile, start: int, end: int, n3: int) -> np.ndarray:
    """The &hess lower triangle (blocks of 5 columns) -> n3 x n3, Hartree/Bohr²."""
    h = np.zeros((n3, n3))
    k = start + 1
    col0 = 0
    while col0 < n3:
        if k >= end:
            raise f.error(f"&hess ends before column {col0 + 1} of {n3}", end)
        head = f.lines[k - 1].split()
        if len(head) != 1 or parse_int(head[0], f, k, "a block column index") != col0 + 1:
            raise f.error(f"expected the &hess block header '{col0 + 1}'", k)
        width = min(5, n3 - col0)
        k += 1
        for row in range(col0, n3):
            if k >= end:
                raise f.error(f"&hess ends inside the block of column {col0 + 1}", end)
            fields = f.lines[k - 1].split()
            nval = min(width, row - col0 + 1)
            if len(fields) != nval + 1 or parse_int(fields[0], f, k, "a row index") != row + 1:
                raise f.error(f"expected &hess row {row + 1} with {nval} values", k)
            h[row, col0:col0 + nval] = [parse_float(v, f, k, "a Hessian element")
                                        for v in fields[1:]]
            k += 1
        col0 += width
    if k != end:
        raise f.error(f"unexpected content after the {n3} x {n3} Hessian in &hess", k)
    return np.tril(h) + np.tril(h, -1).T


# ------------------------------------------------------------------------ .out

_JOB_DONE_RE = re.compile(r"^Job \S+ completed")
_GEOM_RE = re.compile(r"^(Input|new|final) geometry:$")


def _out_geometry(f: TextFile, ln: int) -> tuple[list[str], np.ndarray, str]:
    unit = f.line(ln + 1, "the geometry units").strip()
    if unit not in ("angstroms", "bohrs", "bohr"):
        raise f.error(f"unknown geometry units {unit!r}", ln + 1)
    head = f.line(ln + 2, "the column header").split()
    if head != ["atom", "x", "y", "z"]:
        raise f.error("expected the column header 'atom x y z'", ln + 2)
    symbols: list[str] = []
    rows: list[list[float]] = []
    k = ln + 3
    while True:
        t = f.line(k, "an atom or a blank line")
        fields = t.split()
        if not fields:
            break
        if len(fields) != 4:
            raise f.error(f"expected 'label x y z', found {len(fields)} fields", k)
        symbols.append(element_from_label(fields[0], f, k, greedy=True))
        rows.append([parse_float(v, f, k, "a coordinate") for v in fields[1:]])
        k += 1
    if not symbols:
        raise f.error("empty geometry block", ln)
    return symbols, np.asarray(rows), "angstrom" if unit == "angstroms" else "bohr"


def _out_frequencies(f: TextFile, nfreq: list[int], rows: list[int],
                     n_vib: int) -> np.ndarray | None:
    """The last frequency table: 'Number of frequencies: k' (k must be 3N-6,
    3N-5 if linear), then 'frequencies' rows of 6 values (last may hold fewer)."""
    if not nfreq:
        if rows:
            raise f.error("'frequencies' rows without a 'Number of frequencies' header", rows[0])
        return None
    head = nfreq[-1]
    m = re.match(r"\s*Number of frequencies:\s*(\S+)\s*$", f.lines[head - 1])
    if m is None:
        raise f.error("malformed 'Number of frequencies' line", head)
    count = parse_int(m.group(1), f, head, "the number of frequencies")
    if count != n_vib:
        raise f.error(f"{count} frequencies announced, expected {n_vib} (3N-6, or 3N-5 for a "
                      "linear molecule)", head)
    values: list[float] = []
    mine = [ln for ln in rows if ln > head]
    for k, ln in enumerate(mine):
        fields = f.lines[ln - 1].split()[1:]
        if not 1 <= len(fields) <= 6 or (len(fields) != 6 and k != len(mine) - 1):
            raise f.error(f"expected 6 frequencies on this row, found {len(fields)}", ln)
        values += [parse_float(v, f, ln, "a frequency") for v in fields]
    if len(values) != count:
        raise f.error(f"found {len(values)} frequencies, the header announced {count}", head)
    return np.asarray(values)
