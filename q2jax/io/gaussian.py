"""Gaussian output: ``read_gaussian_log(path)`` (``.log``/``.out``) and
``read_fchk(path)`` (formatted checkpoint).

Written here, not with cclib: cclib 1.8.1 (numpy 2.4) returns no Hessian
for the bundled Gaussian 94 ethane log (it does not read the archive force
constants), gives its coordinates the shape (4, 8, 2) instead of (n_geoms,
8, 3), and stops with ``AttributeError: 'FChk' object has no attribute
'nmo'`` on the bundled ``.fchk``.

Units (converted once through :mod:`q2jax.units`): log coordinates Å, fchk
coordinates Bohr; Hessians Hartree/Bohr²; gradients Hartree/Bohr; energies
Hartree (``energy`` is the SCF energy, HF or DFT); frequencies cm⁻¹.

Orientation -- the Hessian and the coordinates returned always share one
frame and the file's atom order:

- ``.fchk``: coordinates, gradient and ``Cartesian Force Constants`` all come
  from the checkpoint and are in its frame (the standard orientation unless
  the job used NoSymm).
- ``.log``: Gaussian computes in the standard orientation but rotates
  forces and force constants back to the input orientation before printing
  them ("Axes restored to original set"; gaussian.com/force, and Gaussian
  support as quoted in RMG-Py issue 981). The archive entry at the end of
  each job step holds the input-orientation geometry (10 decimals), the
  lower triangle of the Cartesian force constants and the gradient in that
  same frame. The reader takes geometry, Hessian and gradient from the
  archive, checks the geometry against the last printed "Input orientation"
  block (1e-6 Å), and checks that the Hessian is rotation-invariant in that
  frame (``H·(ω×r) ≈ 0``) better than in the standard orientation when the
  two differ; a violation raises instead of returning a Hessian in a frame
  other than its coordinates. For the bundled ethane files (run with
  NoSymm) the fchk and log frames coincide: coordinates agree to 2e-7 Å and
  the Hessians to 5e-9 Hartree/Bohr².
- The fchk array named ``Cartesian Forces`` (Gaussian 94) holds the
  gradient dE/dx, not the force: it equals the archive gradient and is the
  negative of the log's "Forces (Hartrees/Bohr)" block.

Truncation: a ``.log`` must end with "Normal termination of Gaussian"
(``allow_incomplete=True`` relaxes this); an fchk array must hold exactly
its ``N=`` values in the fixed Gaussian layout (I: 6 per line, R: 5 per line
in E format), and an fchk of a ``Freq`` job must contain its force constants.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from q2jax import units
from q2jax.elements import ELEMENTS
from q2jax.io._build import (
    build,
    default_or_printed_masses,
    lower_triangle_to_matrix,
    n_vibrations,
    symbol_from_number,
)
from q2jax.io._fchk import expect_len, fchk_sections
from q2jax.io._text import TextFile, is_float, parse_float, parse_int, read_text
from q2jax.io.qmdata import QMData

__all__ = ["read_gaussian_log", "read_fchk", "rotational_residual", "is_gaussian_output"]


def read_gaussian_log(
    path: str | Path,
    *,
    link: int = -1,
    allow_incomplete: bool = False,
    require_hessian: bool = False,
) -> QMData:
    """Geometry, SCF energy, gradient, frequencies and Cartesian Hessian of one
    job step (``link``, default the last) of a Gaussian log, in q2jax units.

    The Hessian and gradient are in the frame of the returned coordinates
    (the input orientation, see the module docstring). Raises ParseError on a
    file that did not terminate normally (unless ``allow_incomplete``), on a
    frequency job whose force constants are missing, and with
    ``require_hessian`` on any step without force constants.
    """
    f = read_text(path)
    if not _names_gaussian(f):
        raise f.error("not a Gaussian output: 'Gaussian' does not appear in its first 100 lines", 1)
    segments = _links(f, allow_incomplete)
    try:
        start, end = segments[link]
    except IndexError:
        raise f.error(f"link index {link} out of range: the file has {len(segments)} job steps") \
            from None
    return _read_link(f, start, end, require_hessian)


def read_fchk(path: str | Path, *, require_hessian: bool = False) -> QMData:
    """Atoms, coordinates, SCF energy, gradient, Cartesian Hessian, masses and
    frequencies (when present) of a Gaussian formatted checkpoint file.

    All arrays are in the checkpoint's own frame and atom order.
    """
    f = read_text(path)
    if len(f.lines) < 3:
        raise f.error("too short for a formatted checkpoint file", len(f.lines))
    job = f.lines[1].split()[0] if f.lines[1].split() else ""
    arrays, scalars = fchk_sections(f)

    def get(name: str):
        return arrays.get(name, (None, None))

    n_atoms = scalars.get("Number of atoms")
    if n_atoms is None:
        raise f.missing("no 'Number of atoms' entry")
    n, n_line = int(n_atoms[0]), n_atoms[1]
    if n <= 0:
        raise f.error(f"number of atoms must be positive, found {n}", n_line)
    z, z_line = get("Atomic numbers")
    xyz, xyz_line = get("Current cartesian coordinates")
    if z is None or xyz is None:
        raise f.missing("missing 'Atomic numbers' or 'Current cartesian coordinates'")
    expect_len(f, z, n, "Atomic numbers", z_line)
    expect_len(f, xyz, 3 * n, "Current cartesian coordinates", xyz_line)
    # I arrays hold 6 values per line after their header
    symbols = [symbol_from_number(int(v), f, z_line + 1 + i // 6) for i, v in enumerate(z)]
    coords = np.asarray(xyz).reshape(n, 3) * units.BOHR_TO_ANGSTROM
    source_units = {"coords": "bohr", "energy": "hartree"}

    hessian = None
    fc, fc_line = get("Cartesian Force Constants")
    if fc is not None:
        n3 = 3 * n
        expect_len(f, fc, n3 * (n3 + 1) // 2, "Cartesian Force Constants", fc_line)
        hessian = lower_triangle_to_matrix(fc, n3) * units.HARTREE_BOHR2_TO_KCAL_MOL_A2
        source_units["hessian"] = "hartree/bohr2"
    elif require_hessian or "freq" in job.lower():
        raise f.error(f"no 'Cartesian Force Constants' in this {job or 'unknown'} job "
                      "(file truncated?)", len(f.lines))

    gradient = None
    for gname in ("Cartesian Gradient", "Cartesian Forces"):
        g, g_line = get(gname)
        if g is not None:
            expect_len(f, g, 3 * n, gname, g_line)
            gradient = np.asarray(g) * units.HARTREE_BOHR_TO_KCAL_MOL_A
            source_units["gradient"] = "hartree/bohr"
            break
    if gradient is None and job.lower() in ("freq", "force"):
        raise f.missing(f"no 'Cartesian Gradient' in this {job} job (file damaged?)")

    energy = None
    for ename in ("SCF Energy", "Total Energy"):
        if ename in scalars:
            energy = scalars[ename][0] * units.HARTREE_TO_KCAL_MOL
            break

    masses = None
    w, w_line = get("Real atomic weights")
    if w is not None:
        expect_len(f, w, n, "Real atomic weights", w_line)
        masses = np.asarray(w)

    frequencies = None
    e2, e2_line = get("Vib-E2")
    if e2 is not None:
        ndim = scalars.get("Number of Normal Modes") or scalars.get("Vib-NDim")
        if ndim is None:
            raise f.error("'Vib-E2' without the number of normal modes", e2_line)
        k = int(ndim[0])
        if not 0 < k <= len(e2) or k != n_vibrations(coords):
            raise f.error(f"{k} normal modes, expected {n_vibrations(coords)} for {n} atoms",
                          ndim[1])
        frequencies = np.asarray(e2[:k])
        source_units["frequencies"] = "cm-1"

    title = f.lines[0].strip()
    return build(f, symbols=symbols, coords=coords, hessian=hessian, energy=energy,
                 gradient=gradient, frequencies=frequencies, masses=masses,
                 name=title or None, program="gaussian-fchk", source_units=source_units,
                 line=n_line)


def is_gaussian_output(path: str | Path) -> bool:
    """True if 'Gaussian' appears in the first 100 lines (``read_qm`` uses it for ``.out``)."""
    return _names_gaussian(read_text(path))


def _names_gaussian(f: TextFile) -> bool:
    return any("Gaussian" in t for t in f.lines[:100])


def rotational_residual(hessian: np.ndarray, coords: np.ndarray) -> float:
    """max_k |H (e_k × (r - r̄))| / (|H|₂ |e_k × (r - r̄)|) over the three axes k.

    Zero for a Cartesian Hessian at a stationary point expressed in the frame
    of ``coords`` (energy is invariant under rigid rotation); of order one
    when Hessian and coordinates are in different frames. Units cancel.
    """
    xyz = np.asarray(coords, dtype=float)
    centred = xyz - xyz.mean(axis=0)
    h = np.asarray(hessian, dtype=float)
    norm = float(np.linalg.norm(h, 2)) or 1.0
    worst = 0.0
    for axis in np.eye(3):
        r = np.cross(axis, centred).reshape(-1)
        rn = float(np.linalg.norm(r))
        if rn > 1e-12:
            worst = max(worst, float(np.linalg.norm(h @ r)) / (norm * rn))
    return worst


# --------------------------------------------------------------------------- log


_FREQ_RE = re.compile(r"^ Frequencies --(?!-)")
_SCF_RE = re.compile(r"SCF Done:\s+E\((.+?)\)\s+=\s+(\S+)")
_MASS_RE = re.compile(r"^ Atom\s+(\d+) has atomic number\s+(\d+) and mass\s+(\S+)\s*$")


def _links(f: TextFile, allow_incomplete: bool) -> list[tuple[int, int]]:
    """(first, last) 1-based lines of each job step; a step ends at its
    'Normal termination' line."""
    ends: list[int] = []
    for ln, text in f.numbered():
        stripped = text.lstrip()
        if stripped.startswith("Normal termination of Gaussian"):
            ends.append(ln)
        elif stripped.startswith("Error termination") and not allow_incomplete:
            raise f.error("Gaussian reported an error termination", ln)
    last = f.last_nonblank()
    if last == 0:
        raise f.error("empty file")
    segments: list[tuple[int, int]] = []
    start = 1
    for e in ends:
        segments.append((start, e))
        start = e + 1
    if start <= last:
        if not allow_incomplete:
            raise f.error("file does not end with 'Normal termination of Gaussian' "
                          "(job unfinished or file truncated)", last)
        segments.append((start, last))
    return segments


def _read_link(f: TextFile, start: int, end: int, require_hessian: bool) -> QMData:
    marks: dict[str, list[int]] = {k: [] for k in (
        "input", "standard", "scf", "harmonic", "freq", "forces", "fc", "archive", "mass")}
    nosym = False
    for ln in range(start, end + 1):
        t = f.lines[ln - 1]
        s = t.strip()
        if s == "Input orientation:":
            marks["input"].append(ln)
        elif s == "Standard orientation:":
            marks["standard"].append(ln)
        elif "SCF Done:" in t:
            marks["scf"].append(ln)
        elif t.startswith(" Harmonic frequencies (cm**-1)"):
            marks["harmonic"].append(ln)
        elif _FREQ_RE.match(t):
            marks["freq"].append(ln)
        elif "Forces (Hartrees/Bohr)" in t:
            marks["forces"].append(ln)
        elif s.startswith("Force constants in Cartesian coordinates"):
            marks["fc"].append(ln)
        elif t.startswith(" 1\\1\\") or t.startswith(" 1|1|"):
            marks["archive"].append(ln)
        elif t.startswith(" Atom ") and " has atomic number " in t:
            marks["mass"].append(ln)
        elif s.startswith("Symmetry turned off"):
            nosym = True

    source_units = {"coords": "angstrom"}
    archive = _parse_archive(f, marks["archive"][-1]) if marks["archive"] else None
    if f.last_nonblank() <= end:  # the file's last step
        _check_no_missing_freq_step(f, archive)
    if archive is not None:
        symbols, coords, frame_line = archive["symbols"], archive["coords"], archive["line"]
        nosym = nosym or "nosym" in archive["route"].lower().replace(" ", "")
    else:
        block = _pick_geometry_block(f, marks, nosym)
        symbols, coords, frame_line = block
    n = len(symbols)
    if marks["input"] and archive is not None:
        syms_in, xyz_in = _orientation_block(f, marks["input"][-1])
        if syms_in != symbols or np.abs(xyz_in - coords).max() > 1e-6:
            raise f.error("archive geometry differs from the last 'Input orientation' block",
                          marks["input"][-1])

    n3 = 3 * n
    hessian = archive["fc"] if archive is not None else None
    fc_line = archive["line"] if archive is not None else None
    if marks["fc"]:
        printed = _fc_block(f, marks["fc"][-1], n3)
        if hessian is None:
            hessian, fc_line = printed, marks["fc"][-1]
        elif np.abs(printed - hessian).max() > 1e-5 * max(np.abs(hessian).max(), 1e-12):
            raise f.error("printed force constants differ from the archive entry", marks["fc"][-1])

    frequencies = _frequencies(f, marks, n_vibrations(coords))
    if hessian is None and (require_hessian or frequencies is not None):
        raise f.error("no Cartesian force constants (archive entry or 'Force constants in "
                      "Cartesian coordinates') in this job step", end)
    if hessian is not None:
        _check_frame(f, hessian, coords, marks, fc_line)
        source_units["hessian"] = "hartree/bohr2"
        hessian = hessian * units.HARTREE_BOHR2_TO_KCAL_MOL_A2

    gradient = archive["gradient"] if archive is not None else None
    if marks["forces"]:
        forces = _forces_block(f, marks["forces"][-1], symbols)
        if gradient is None:
            gradient = -forces
        elif np.abs(gradient + forces).max() > 2e-8:
            raise f.error("printed forces differ from the archive gradient", marks["forces"][-1])
    if gradient is not None:
        source_units["gradient"] = "hartree/bohr"
        gradient = gradient * units.HARTREE_BOHR_TO_KCAL_MOL_A

    energy = None
    if not marks["scf"] and archive is not None and archive["hf"] is not None:
        raise f.error("the archive entry reports HF= but this job step has no 'SCF Done' line",
                      archive["line"])
    if marks["scf"]:
        ln = marks["scf"][-1]
        m = _SCF_RE.search(f.lines[ln - 1])
        if m is None:
            raise f.error("malformed 'SCF Done' line", ln)
        e_h = parse_float(m.group(2), f, ln, "the SCF energy")
        if archive is not None and archive["hf"] is not None and abs(archive["hf"] - e_h) > 1e-6:
            raise f.error(f"SCF energy {e_h} differs from the archive HF={archive['hf']}", ln)
        energy = e_h * units.HARTREE_TO_KCAL_MOL
        source_units["energy"] = "hartree"
    if frequencies is not None:
        source_units["frequencies"] = "cm-1"

    masses = _masses(f, marks["mass"], symbols)
    name = archive["title"] if archive is not None else None
    return build(f, symbols=symbols, coords=coords, hessian=hessian, energy=energy,
                 gradient=gradient, frequencies=frequencies, masses=masses, name=name,
                 program="gaussian", source_units=source_units, line=frame_line)


def _check_no_missing_freq_step(f: TextFile, archive: dict | None) -> None:
    """An 'Opt Freq' route runs the frequency job as a second step: a file that
    ends after the optimization step has lost it."""
    if archive is None:
        return
    job = archive["job"].lower()
    if "opt" in job and re.search(r"\bfreq\b", archive["route"], re.IGNORECASE):
        raise f.error("the route asks for Opt and Freq but the file ends after the optimization "
                      "step (truncated?)", archive["line"])


def _pick_geometry_block(f: TextFile, marks, nosym: bool):
    if marks["input"]:
        ln = marks["input"][-1]
    elif marks["standard"] and nosym:
        ln = marks["standard"][-1]
    elif marks["standard"]:
        raise f.error("only 'Standard orientation' geometries and no archive entry: the frame "
                      "of forces and force constants (input orientation) is unknown; rerun with "
                      "NoSymm or read the .fchk", marks["standard"][-1])
    else:
        raise f.missing("no geometry found")
    syms, xyz = _orientation_block(f, ln)
    return syms, xyz, ln


def _orientation_block(f: TextFile, ln: int) -> tuple[list[str], np.ndarray]:
    """Rows of an 'Input/Standard orientation:' table (5 or 6 columns)."""
    if not f.line(ln + 1, "a dashed line").strip().startswith("---"):
        raise f.error("expected a dashed line under the orientation header", ln + 1)
    header = f.line(ln + 3, "the column header")
    ncol = 6 if "Type" in header else 5
    if not f.line(ln + 4, "a dashed line").strip().startswith("---"):
        raise f.error("expected a dashed line above the coordinates", ln + 4)
    syms: list[str] = []
    rows: list[list[float]] = []
    k = ln + 5
    while True:
        t = f.line(k, "an atom row or a dashed line")
        if t.strip().startswith("---"):
            break
        fields = t.split()
        if len(fields) != ncol:
            raise f.error(f"expected {ncol} columns in the orientation table, found {len(fields)}",
                          k)
        if parse_int(fields[0], f, k, "the centre number") != len(syms) + 1:
            raise f.error(f"centre numbers must run 1, 2, ...; expected {len(syms) + 1}", k)
        syms.append(symbol_from_number(parse_int(fields[1], f, k, "an atomic number"), f, k))
        rows.append([parse_float(v, f, k, "a coordinate") for v in fields[-3:]])
        k += 1
    if not syms:
        raise f.error("empty orientation table", ln)
    return syms, np.asarray(rows)


def _parse_archive(f: TextFile, ln: int) -> dict:
    """The archive entry starting at line ``ln`` (sections separated by a
    doubled separator, ``\\`` or ``|``)."""
    sep = f.lines[ln - 1][2]
    parts: list[str] = []
    k = ln
    while True:
        t = f.line(k, "the rest of the archive entry").rstrip()
        if not t.startswith(" "):
            raise f.error("archive lines must start with one space", k)
        parts.append(t[1:])
        if t.endswith(sep + "@"):
            break
        k += 1
        if k > len(f.lines):
            raise f.error("archive entry does not end with '@'", len(f.lines))
    text = "".join(parts)
    body = text[: -1].rstrip(sep)
    secs = body.split(sep * 2)
    if len(secs) < 5:
        raise f.error(f"archive entry has {len(secs)} sections, expected at least 5", ln)
    mol = secs[3].split(sep)
    if len(mol) < 2:
        raise f.error("archive entry has no atoms", ln)
    symbols: list[str] = []
    coords: list[list[float]] = []
    for entry in mol[1:]:
        fields = entry.split(",")
        if len(fields) not in (4, 5) or not all(is_float(v) for v in fields[-3:]):
            raise f.error(f"archive atom {entry!r} is not 'Symbol[,flag],x,y,z' (Z-matrix "
                          "archives are not supported: read the .fchk)", ln)
        base = re.sub(r"\(.*?\)", "", fields[0]).rstrip("0123456789")
        sym = base[:1].upper() + base[1:].lower()
        if not base.isalpha() or sym not in ELEMENTS:
            raise f.error(f"archive atom label {fields[0]!r} is not an element symbol", ln)
        if len(fields) == 5:
            parse_int(fields[1], f, ln, "an archive freeze flag")
        symbols.append(sym)
        coords.append([parse_float(v, f, ln, "an archive coordinate") for v in fields[-3:]])
    n = len(symbols)
    props = {}
    for item in secs[4].split(sep):
        key, _, val = item.partition("=")
        props[key.strip()] = val
    hf = None
    if "HF" in props:
        hf = parse_float(props["HF"].split(",")[-1], f, ln, "the archive HF energy")
    n3 = 3 * n
    fc = gradient = None
    for sec in secs[5:]:
        vals = sec.split(",")
        if len(vals) == n3 * (n3 + 1) // 2 and fc is None:
            fc = lower_triangle_to_matrix(
                [parse_float(v, f, ln, "an archive force constant") for v in vals], n3)
        elif len(vals) == n3 and gradient is None and fc is not None:
            gradient = np.asarray([parse_float(v, f, ln, "an archive gradient") for v in vals])
            gradient = gradient.reshape(n, 3)
    head = secs[0].split(sep)
    return {"symbols": symbols, "coords": np.asarray(coords), "fc": fc, "gradient": gradient,
            "hf": hf, "route": secs[1], "title": secs[2].strip(), "line": ln,
            "job": head[3] if len(head) > 3 else ""}


def _fc_block(f: TextFile, ln: int, n3: int) -> np.ndarray:
    """'Force constants in Cartesian coordinates' (lower triangle, 5 columns
    per block, D exponents) -> n3 x n3 matrix in Hartree/Bohr²."""
    h = np.zeros((n3, n3))
    filled = np.zeros((n3, n3), dtype=bool)
    k = ln + 1
    col0 = 0
    while col0 < n3:
        cols = [parse_int(c, f, k, "a column index") for c in f.line(k, "column indices").split()]
        width = min(5, n3 - col0)
        if cols != list(range(col0 + 1, col0 + width + 1)):
            raise f.error(f"expected column indices {col0 + 1}..{col0 + width}", k)
        k += 1
        for row in range(col0, n3):
            fields = f.line(k, f"force-constant row {row + 1}").split()
            nval = min(width, row - col0 + 1)
            if len(fields) != nval + 1 or parse_int(fields[0], f, k, "a row index") != row + 1:
                raise f.error(f"expected row {row + 1} with {nval} force constants", k)
            for j, v in enumerate(fields[1:]):
                h[row, col0 + j] = parse_float(v, f, k, "a force constant")
                filled[row, col0 + j] = True
            k += 1
        col0 += width
    if not filled[np.tril_indices(n3)].all():
        raise f.error("incomplete force-constant matrix", ln)
    return np.tril(h) + np.tril(h, -1).T


def _frequencies(f: TextFile, marks, n_vib: int) -> np.ndarray | None:
    """The last 'Harmonic frequencies' block: 3 values per 'Frequencies --'
    line (the last line may hold fewer), ``n_vib`` values in all."""
    freq_lines, headers = marks["freq"], marks["harmonic"]
    if not freq_lines and not headers:
        return None
    if not headers:
        raise f.error("'Frequencies --' lines without a 'Harmonic frequencies' header",
                      freq_lines[0])
    if freq_lines and freq_lines[0] < headers[0]:
        raise f.error("'Frequencies --' line before the 'Harmonic frequencies' header",
                      freq_lines[0])
    last = headers[-1]
    values: list[float] = []
    rows = [ln for ln in freq_lines if ln > last]
    for k, ln in enumerate(rows):
        fields = f.lines[ln - 1].split("--", 1)[1].split()
        if not 1 <= len(fields) <= 3 or (len(fields) != 3 and k != len(rows) - 1):
            raise f.error(f"expected 3 frequencies on this line, found {len(fields)}", ln)
        values += [parse_float(v, f, ln, "a frequency") for v in fields]
    if len(values) != n_vib:
        raise f.error(f"found {len(values)} frequencies, expected {n_vib} (3N-6, or 3N-5 for a "
                      "linear molecule)", last)
    return np.asarray(values)


def _forces_block(f: TextFile, ln: int, symbols: list[str]) -> np.ndarray:
    if not f.line(ln + 2, "a dashed line").strip().startswith("---"):
        raise f.error("expected a dashed line under the forces header", ln + 2)
    n = len(symbols)
    out = np.empty((n, 3))
    for i in range(n):
        k = ln + 3 + i
        fields = f.line(k, f"the force on atom {i + 1}").split()
        if len(fields) != 5 or parse_int(fields[0], f, k, "a centre number") != i + 1:
            raise f.error(f"expected 'centre Z fx fy fz' for atom {i + 1}", k)
        if symbol_from_number(parse_int(fields[1], f, k, "an atomic number"), f, k) != symbols[i]:
            raise f.error(f"atom {i + 1} of the forces block is not {symbols[i]}", k)
        out[i] = [parse_float(v, f, k, "a force") for v in fields[2:]]
    if not f.line(ln + 3 + n, "a dashed line").strip().startswith("---"):
        raise f.error(f"forces block does not end after {n} atoms", ln + 3 + n)
    return out


def _masses(f: TextFile, mass_lines: list[int], symbols: list[str]) -> np.ndarray | None:
    n = len(symbols)
    if not mass_lines:
        return None
    if len(mass_lines) < n:
        raise f.error(f"{len(mass_lines)} atomic masses for {n} atoms", mass_lines[-1])
    out = np.empty(n)
    for i, ln in enumerate(mass_lines[-n:]):
        m = _MASS_RE.match(f.lines[ln - 1])
        if m is None:
            raise f.error("malformed atomic-mass line", ln)
        if int(m.group(1)) != i + 1:
            raise f.error(f"expected the mass of atom {i + 1}", ln)
        if symbol_from_number(int(m.group(2)), f, ln) != symbols[i]:
            raise f.error(f"atom {i + 1} is not {symbols[i]} in the thermochemistry block", ln)
        if not re.fullmatch(r"\d+\.\d+", m.group(3)):
            raise f.error(f"expected a fixed-point mass, found {m.group(3)!r}", ln)
        printed = parse_float(m.group(3), f, ln, "a mass")
        decimals = len(m.group(3).partition(".")[2])
        out[i] = default_or_printed_masses([symbols[i]], [printed], decimals)[0]
    return out


def _check_frame(f: TextFile, hessian: np.ndarray, coords: np.ndarray, marks,
                 line: int | None) -> None:
    """Raise if the Hessian is far more rotation-invariant in the last
    standard orientation than in the returned (input-orientation) frame."""
    if not marks["standard"]:
        return
    _, std = _orientation_block(f, marks["standard"][-1])
    if std.shape != coords.shape or np.abs(std - coords).max() < 1e-4:
        return
    ours, alt = rotational_residual(hessian, coords), rotational_residual(hessian, std)
    if ours > 1e-3 and alt < 0.1 * ours:
        raise f.error(f"force constants are in the standard orientation, not in the frame of the "
                      f"archive geometry (rotational residual {ours:.2e} vs {alt:.2e})", line)
