"""Tinker: write ``.xyz``/``.key``/``.prm`` inputs for a q2jax force field and
molecule, run ``analyze``, ``testhess``, ``vibrate``, ``minimize`` and
``optimize`` by subprocess, and parse their text outputs.

Formats (facts from Tinker's ``prtxyz.f``, ``readxyz.f``, ``analyze.f``,
``testhess.f``, ``vibrate.f``, ``minimize.f``):

- ``.xyz``: first line atom count and title; then per atom: number, name,
  x y z (Å), Tinker atom type, numbers of the bonded atoms (at most 8).
- ``analyze <xyz> E``: "Total Potential Energy :" then "Energy Component
  Breakdown :" with one line per term: label, kcal/mol, interaction count
  (f16.4 / f18.6 / f20.8 for ``digits`` 4 / 6 / 8; D exponents past 1e10).
- ``testhess <xyz> Y N`` writes ``<name>.hes``: "Diagonal Hessian Elements
  (3 per Atom)", then for each Cartesian row "Off-diagonal Hessian Elements for
  Atom i X" with the upper-triangle elements right of the diagonal, in
  kcal/(mol Å^2), fixed format 6f12.4 / 5f14.6 / 4f16.8.
- ``vibrate``: "Eigenvalues of the Hessian Matrix :" and "Vibrational
  Frequencies (cm-1) :", entries 5(i5,f10.3); all 3N modes, translations and
  rotations included (no projection), masses from the ``atom`` lines.
- ``minimize``/``optimize <xyz> <rms gradient>`` print "Final Function Value :"
  and write the minimum to ``<name>.xyz_2``.

The key file sets ``digits 8`` so printed energies and Hessians carry 8
decimals. Tinker types = classes = the numbering of
:func:`q2jax.io.tinker_prm.tinker_atom_types` (1, 2, ... in order of first use
in the force field); ``TinkerFiles.type_numbers`` gives the mapping.

Binaries are looked up in ``bin_dir`` if given, else in ``$Q2JAX_TINKER_DIR``
if set, else on ``PATH`` (names ``analyze``, ``analyze.x``, ``analyze.exe``).
Without them every run raises :class:`q2jax.errors.EngineError`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from q2jax.errors import EngineError, ParseError, TopologyError
from q2jax.forcefield import ForceField
from q2jax.io.tinker_prm import format_tinker_prm, tinker_atom_types
from q2jax.molecule import Molecule

ENV_DIR = "Q2JAX_TINKER_DIR"
PROGRAMS = ("analyze", "testhess", "vibrate", "minimize", "optimize")
MAX_NEIGHBOURS = 8  # Tinker's maxval
NAME = "mol"

# Tinker's analyze labels -> q2jax energy-component names (others: lower_snake_case)
COMPONENTS = {
    "Bond Stretching": "stretch",
    "Angle Bending": "bend",
    "Stretch-Bend": "stretch_bend",
    "Out-of-Plane Bend": "out_of_plane",
    "Torsional Angle": "torsion",
    "Van der Waals": "vdw",
    "Charge-Charge": "electrostatic",
}
_LABELS = tuple(COMPONENTS) + (
    "Urey-Bradley", "Angle-Angle", "Out-of-Plane Distance", "Improper Dihedral",
    "Improper Torsion", "Pi-Orbital Torsion", "Stretch-Torsion", "Angle-Torsion",
    "Torsion-Torsion", "Repulsion", "Dispersion", "Charge-Dipole", "Dipole-Dipole",
    "Atomic Multipoles", "Polarization", "Charge Transfer", "Reaction Field",
    "Implicit Solvation", "Metal Ligand Field", "Geometric Restraints", "Extra Energy Terms",
)
_FAMILY_TERM = {"bond": "bondterm", "angle": "angleterm", "stretch_bend": "strbndterm",
                "improper": "opbendterm", "torsion": "torsionterm", "vdw": "vdwterm",
                "charge": "chargeterm", "urey_bradley": "ureyterm"}
_FATAL = ("TINKER is Unable to Continue", "Tinker is Unable to Continue",
          "Some Required Potential Energy Parameters are Undefined")
_NUM = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eEdD][-+]?\d+)?"
_LABEL_RE = "|".join(re.escape(x) for x in _LABELS)
_COMPONENT_RE = re.compile(rf"^\s*({_LABEL_RE})\s+({_NUM})\s+(\d+)\s*$")
_TOTAL_RE = re.compile(rf"Total Potential Energy :\s+({_NUM}|\*+)\s+Kcal/mole")


class TinkerFiles(NamedTuple):
    """Paths of one written input set and the atom-type numbering used."""

    xyz: Path
    key: Path
    prm: Path
    type_numbers: dict[str, int]


class TinkerXYZ(NamedTuple):
    """A Tinker ``.xyz`` structure: names, coordinates (Å), types, 0-based bonds."""

    title: str
    names: tuple[str, ...]
    coords: np.ndarray
    types: tuple[int, ...]
    bonds: tuple[tuple[int, int], ...]


class TinkerEnergy(NamedTuple):
    """``analyze`` output: total and components in kcal/mol, interaction counts."""

    total: float
    components: dict[str, float]
    interactions: dict[str, int]


class TinkerVibrations(NamedTuple):
    """``vibrate`` output: Hessian eigenvalues (kcal/mol/Å^2) and frequencies (cm^-1)."""

    eigenvalues: np.ndarray
    frequencies_cm1: np.ndarray


class TinkerMinimum(NamedTuple):
    """``minimize``/``optimize`` result: the molecule at the minimum, final energy
    (kcal/mol) and RMS gradient (kcal/mol/Å per atom)."""

    molecule: Molecule
    energy: float
    rms_gradient: float


# --- writing inputs ---------------------------------------------------------------------


def format_tinker_xyz(
    molecule: Molecule, type_numbers: dict[str, int], *, title: str | None = None
) -> str:
    """Tinker ``.xyz`` text of ``molecule`` (coordinates with 10 decimals)."""
    missing = sorted({t for t in molecule.atom_types if t not in type_numbers})
    if missing:
        raise TopologyError(f"no Tinker type number for atom types {missing}")
    nbr: list[list[int]] = [[] for _ in range(molecule.n_atoms)]
    for a, b in molecule.bonds:
        nbr[a].append(b + 1)
        nbr[b].append(a + 1)
    crowded = [i + 1 for i, x in enumerate(nbr) if len(x) > MAX_NEIGHBOURS]
    if crowded:
        raise TopologyError(f"Tinker allows at most {MAX_NEIGHBOURS} bonds per atom; atoms "
                            f"{crowded} have more")
    xyz = np.asarray(molecule.coords, dtype=float)
    lines = [f"{molecule.n_atoms:6d}  {(title or molecule.name).strip()}"]
    for i, (sym, t) in enumerate(zip(molecule.symbols, molecule.atom_types, strict=True)):
        conn = "".join(f"{j:6d}" for j in sorted(nbr[i]))
        x, y, z = xyz[i]
        lines.append(
            f"{i + 1:6d}  {sym:<3s}{x:18.10f}{y:18.10f}{z:18.10f}{type_numbers[t]:6d}{conn}"
        )
    return "\n".join(lines) + "\n"


def format_tinker_key(prm_name: str, ff: ForceField, extra: Sequence[str] = ()) -> str:
    """Tinker ``.key`` text: the parameter file, 8-digit output, and ``<term>term
    none`` for every q2jax family the force field lacks (Tinker would otherwise
    stop on undefined parameters)."""
    fams = ff.families()
    lines = ["# Tinker keyword file written by q2jax", f"parameters  {prm_name}", "digits  8"]
    lines += [f"{word}  none" for fam, word in _FAMILY_TERM.items() if fam not in fams]
    lines += list(extra)
    return "\n".join(lines) + "\n"


def write_tinker_inputs(
    ff: ForceField,
    molecule: Molecule,
    directory: str | Path,
    name: str = NAME,
    *,
    key_extra: Sequence[str] = (),
) -> TinkerFiles:
    """Write ``name.xyz``, ``name.key`` and ``name.prm`` into ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    atoms = tinker_atom_types(ff, [molecule])
    numbers = {a.description: a.type for a in atoms}
    files = TinkerFiles(d / f"{name}.xyz", d / f"{name}.key", d / f"{name}.prm", numbers)
    files.prm.write_text(format_tinker_prm(ff, atoms, title=f"q2jax force field for {name}"))
    files.key.write_text(format_tinker_key(files.prm.name, ff, key_extra))
    files.xyz.write_text(format_tinker_xyz(molecule, numbers))
    return files


# --- parsing outputs ----------------------------------------------------------------------


def _float(text: str, source: str, line: int | None, what: str) -> float:
    if not re.fullmatch(_NUM, text):
        raise ParseError(f"expected a number for {what}, found {text!r}", source, line)
    return float(text.replace("D", "E").replace("d", "e"))


def parse_tinker_xyz(text: str, *, source: str = "<string>") -> TinkerXYZ:
    """Parse Tinker ``.xyz`` text (first structure; a periodic-box line is skipped)."""
    lines = text.splitlines()
    if not lines or not lines[0].split():
        raise ParseError("empty Tinker xyz file (expected the atom count)", source, 1)
    head = lines[0].split(maxsplit=1)
    if not re.fullmatch(r"\d+", head[0]) or int(head[0]) < 1:
        raise ParseError(f"expected a positive atom count, found {head[0]!r}", source, 1)
    n = int(head[0])
    start = 1
    if len(lines) > 1:
        toks = lines[1].split()
        if len(toks) == 6 and all(re.fullmatch(_NUM, t) for t in toks):
            start = 2  # periodic box lengths and angles
    names, coords, types, conn = [], [], [], []
    for i in range(n):
        no = start + i + 1
        if start + i >= len(lines):
            raise ParseError(f"file ends after {i} of {n} atoms", source, no - 1)
        toks = lines[start + i].split()
        if len(toks) < 6:
            raise ParseError("atom line needs number, name, x, y, z and type", source, no)
        if toks[0] != str(i + 1):
            raise ParseError(f"expected atom number {i + 1}, found {toks[0]!r}", source, no)
        names.append(toks[1])
        coords.append([_float(t, source, no, "a coordinate") for t in toks[2:5]])
        if not re.fullmatch(r"\d+", toks[5]):
            raise ParseError(f"expected an atom type number, found {toks[5]!r}", source, no)
        types.append(int(toks[5]))
        bonded = []
        for t in toks[6:]:
            if not re.fullmatch(r"\d+", t) or not 1 <= int(t) <= n or int(t) == i + 1:
                raise ParseError(f"bonded atom {t!r} is not an atom number 1..{n} other than "
                                 f"{i + 1}", source, no)
            bonded.append(int(t) - 1)
        conn.append(bonded)
    bonds = set()
    for i, bonded in enumerate(conn):
        for j in bonded:
            if i not in conn[j]:
                raise ParseError(f"atom {i + 1} lists atom {j + 1} as bonded but not vice versa",
                                 source, start + i + 1)
            bonds.add((min(i, j), max(i, j)))
    return TinkerXYZ(head[1].strip() if len(head) > 1 else "", tuple(names),
                     np.asarray(coords, dtype=float), tuple(types), tuple(sorted(bonds)))


def read_tinker_xyz(path: str | Path) -> TinkerXYZ:
    p = Path(path)
    return parse_tinker_xyz(_read(p), source=str(p))


def parse_analyze_output(text: str, *, source: str = "<string>") -> TinkerEnergy:
    """Total energy and its components from ``analyze ... E`` output.

    The printed components must add up to the printed total within the printed
    precision; otherwise (a truncated or corrupted file) ParseError.
    """
    lines = text.splitlines()
    totals = [(no, m) for no, ln in enumerate(lines, 1) if (m := _TOTAL_RE.search(ln))]
    if not totals:
        raise ParseError("no 'Total Potential Energy' line (is this analyze output?)", source)
    if len(totals) > 1:
        raise ParseError(f"{len(totals)} structures in one output; expected one", source,
                         totals[1][0])
    no, m = totals[0]
    total = _float(m.group(1), source, no, "the total energy")
    decimals = len(m.group(1).split(".")[-1]) if "." in m.group(1) else 0
    head = next((k for k, ln in enumerate(lines) if "Energy Component Breakdown" in ln), None)
    if head is None:
        raise ParseError("no 'Energy Component Breakdown' section", source)
    comps: dict[str, float] = {}
    counts: dict[str, int] = {}
    for k in range(head + 1, len(lines)):
        ln = lines[k]
        if not ln.strip():
            if comps:
                break
            continue
        cm = _COMPONENT_RE.match(ln)
        if cm is None:
            if comps:
                break
            raise ParseError(f"unrecognised energy component line {ln.strip()!r}", source, k + 1)
        name = COMPONENTS.get(cm.group(1), cm.group(1).lower().replace("-", "_").replace(" ", "_"))
        comps[name] = _float(cm.group(2), source, k + 1, cm.group(1))
        counts[name] = int(cm.group(3))
    tol = (len(comps) + 1) * 0.5 * 10.0 ** (-decimals) + 1e-12 * abs(total)
    if abs(sum(comps.values()) - total) > tol:
        raise ParseError(f"energy components add up to {sum(comps.values())!r}, not the total "
                         f"{total!r} (truncated or corrupted output?)", source, no)
    return TinkerEnergy(total, comps, counts)


def _decimals_of(token: str) -> int:
    return len(token.split(".")[1]) if "." in token else -1


def _fixed_numbers(line: str, decimals: int, source: str, no: int) -> list[float]:
    """Numbers of a Fortran fixed-format line with ``decimals`` digits after the point
    (fields may touch: '1.00000000-2.00000000')."""
    pat = rf"[-+]?\d*\.\d{{{decimals}}}"
    if not re.fullmatch(rf"(?:\s*{pat})*\s*", line):
        raise ParseError(f"expected numbers with {decimals} decimals, found {line.strip()!r}",
                         source, no)
    return [float(x) for x in re.findall(pat, line)]


def parse_testhess_hes(
    text: str, n_atoms: int | None = None, *, source: str = "<string>"
) -> np.ndarray:
    """The full Cartesian Hessian, kcal/(mol Å^2), shape (3N, 3N), from a ``.hes`` file."""
    lines = text.splitlines()
    k = next((i for i, ln in enumerate(lines) if "Diagonal Hessian Elements" in ln
              and "Off-diagonal" not in ln), None)
    if k is None:
        raise ParseError("no 'Diagonal Hessian Elements' section (is this a testhess .hes "
                         "file?)", source)
    sections: list[tuple[int, str, list[tuple[int, str]]]] = [(k + 1, "diagonal", [])]
    hdr = re.compile(r"^\s*Off-diagonal Hessian Elements for Atom\s+(\d+)\s+([XYZ])\s*$")
    for i in range(k + 1, len(lines)):
        m = hdr.match(lines[i])
        if m:
            sections.append((i + 1, f"{m.group(1)} {m.group(2)}", []))
        elif lines[i].strip():
            sections[-1][2].append((i + 1, lines[i]))
    first = sections[0][2]
    if not first:
        raise ParseError("the diagonal section is empty", source, k + 1)
    decimals = _decimals_of(first[0][1].split()[0])
    if decimals not in (4, 6, 8):
        raise ParseError(f"unexpected number format {first[0][1].split()[0]!r} (Tinker writes 4, "
                         "6 or 8 decimals)", source, first[0][0])
    values = [[v for no, ln in body for v in _fixed_numbers(ln, decimals, source, no)]
              for _, _, body in sections]
    diag = values[0]
    if len(diag) % 3:
        raise ParseError(f"{len(diag)} diagonal elements is not 3 per atom", source, k + 1)
    n3 = len(diag)
    if n_atoms is not None and n3 != 3 * n_atoms:
        raise ParseError(f"Hessian is for {n3 // 3} atoms, expected {n_atoms}", source, k + 1)
    h = np.diag(np.asarray(diag, dtype=float))
    expect = [f"{r // 3 + 1} {'XYZ'[r % 3]}" for r in range(n3 - 1)]
    got = [s[1] for s in sections[1:]]
    if got != expect:
        bad = next((i for i, (a, b) in enumerate(zip(got, expect, strict=False)) if a != b),
                   min(len(got), len(expect)))
        where = sections[1 + bad][0] if bad < len(got) else len(lines)
        want = expect[bad] if bad < len(expect) else "end of file"
        raise ParseError(f"expected off-diagonal section for atom {want} (testhess writes every "
                         "row when hesscut is 0)", source, where)
    for r, (sec, vals) in enumerate(zip(sections[1:], values[1:], strict=True)):
        if len(vals) != n3 - 1 - r:
            raise ParseError(f"row {sec[1]} has {len(vals)} elements, expected {n3 - 1 - r}",
                             source, sec[0])
        h[r, r + 1:] = vals
        h[r + 1:, r] = vals
    return h


def read_testhess_hes(path: str | Path, n_atoms: int | None = None) -> np.ndarray:
    p = Path(path)
    return parse_testhess_hes(_read(p), n_atoms, source=str(p))


def _indexed_block(lines: list[str], title: str, source: str) -> np.ndarray:
    k = next((i for i, ln in enumerate(lines) if title in ln), None)
    if k is None:
        raise ParseError(f"no '{title}' section (is this vibrate output?)", source)
    vals: list[float] = []
    started = False
    for i in range(k + 1, len(lines)):
        ln = lines[i].rstrip()
        if not ln:
            if started:
                break
            continue
        started = True
        if len(ln) % 15:
            raise ParseError("expected entries of 15 characters (i5, f10.3)", source, i + 1)
        for j in range(0, len(ln), 15):
            idx, val = ln[j:j + 5].strip(), ln[j + 5:j + 15].strip()
            if idx != str(len(vals) + 1):
                raise ParseError(f"expected entry {len(vals) + 1}, found {idx!r}", source, i + 1)
            vals.append(_float(val, source, i + 1, title.strip(" :")))
    if not vals:
        raise ParseError(f"'{title}' section is empty", source, k + 1)
    return np.asarray(vals)


def parse_vibrate_output(text: str, *, source: str = "<string>") -> TinkerVibrations:
    """Hessian eigenvalues and frequencies (all 3N, ascending as printed)."""
    lines = text.splitlines()
    eig = _indexed_block(lines, "Eigenvalues of the Hessian Matrix :", source)
    freq = _indexed_block(lines, "Vibrational Frequencies (cm-1) :", source)
    if eig.shape != freq.shape:
        raise ParseError(f"{eig.size} eigenvalues but {freq.size} frequencies", source)
    return TinkerVibrations(eig, freq)


def parse_minimize_output(text: str, *, source: str = "<string>") -> tuple[float, float]:
    """(final energy kcal/mol, final RMS gradient) from minimize/optimize output."""
    out = []
    for what in ("Final Function Value :", "Final RMS Gradient :"):
        hit = [(no, ln) for no, ln in enumerate(text.splitlines(), 1) if what in ln]
        if not hit:
            raise ParseError(f"no '{what}' line (did the minimization finish?)", source)
        no, ln = hit[-1]
        out.append(_float(ln.split(":", 1)[1].strip(), source, no, what.strip(" :")))
    return out[0], out[1]


def _read(p: Path) -> str:
    try:
        return p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ParseError(f"cannot read file ({exc})", str(p)) from None


# --- running Tinker -----------------------------------------------------------------------


def find_tinker(program: str, bin_dir: str | Path | None = None) -> Path | None:
    """Path of a Tinker program: in ``bin_dir`` if given, else in ``$Q2JAX_TINKER_DIR``
    if set, else on PATH; None if absent."""
    names = (program, f"{program}.x", f"{program}.exe")
    where = bin_dir if bin_dir is not None else os.environ.get(ENV_DIR) or None
    for nm in names:
        found = shutil.which(nm, path=str(where)) if where is not None else shutil.which(nm)
        if found:
            return Path(found)
    return None


def tinker_available(bin_dir: str | Path | None = None,
                     programs: Sequence[str] = ("analyze", "testhess", "vibrate")) -> bool:
    """True if every program in ``programs`` is found (see :func:`find_tinker`)."""
    return all(find_tinker(p, bin_dir) is not None for p in programs)


class TinkerEngine:
    """Runs Tinker programs on a q2jax force field and molecule.

    ``bin_dir``: directory of the Tinker executables (default: ``$Q2JAX_TINKER_DIR``,
    then PATH). ``workdir``: keep each run's inputs and outputs in a new
    subdirectory of it instead of a temporary directory that is removed.
    ``timeout`` in seconds per program run.
    """

    def __init__(self, bin_dir: str | Path | None = None, *, workdir: str | Path | None = None,
                 timeout: float = 600.0):
        self.bin_dir = None if bin_dir is None else Path(bin_dir)
        self.workdir = None if workdir is None else Path(workdir)
        self.timeout = float(timeout)

    def executable(self, program: str) -> Path:
        """Path of ``program``; EngineError with what to do when it is absent."""
        path = find_tinker(program, self.bin_dir)
        if path is None:
            where = (f"bin_dir={self.bin_dir}" if self.bin_dir is not None else
                     f"${ENV_DIR}={os.environ[ENV_DIR]}" if os.environ.get(ENV_DIR) else "PATH")
            raise EngineError(
                f"Tinker program {program!r} not found ({where}); install Tinker and put its "
                f"bin directory on PATH, set {ENV_DIR}, or pass TinkerEngine(bin_dir=...)")
        return path

    def run(self, program: str, ff: ForceField, molecule: Molecule, args: Sequence[str],
            collect: Callable[[str, Path], object]):
        """Write inputs, run ``program <name>.xyz -k <name>.key *args`` and return
        ``collect(stdout, directory)`` (called before a temporary directory is removed)."""
        exe = self.executable(program)
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            d = Path(tempfile.mkdtemp(prefix=f"{program}-", dir=self.workdir))
            return self._run_in(d, exe, program, ff, molecule, args, collect)
        with tempfile.TemporaryDirectory(prefix="q2jax-tinker-") as tmp:
            return self._run_in(Path(tmp), exe, program, ff, molecule, args, collect)

    def _run_in(self, d, exe, program, ff, molecule, args, collect):
        files = write_tinker_inputs(ff, molecule, d)
        cmd = [str(exe), files.xyz.name, "-k", files.key.name, *args]
        try:
            proc = subprocess.run(cmd, cwd=d, input="\n" * 8, capture_output=True, text=True,
                                  timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise EngineError(f"Tinker {program} did not finish within {self.timeout:g} s "
                              f"(command: {' '.join(cmd)})") from None
        except OSError as exc:
            raise EngineError(f"cannot run Tinker {program} ({exe}): {exc}") from None
        out = proc.stdout
        if proc.returncode != 0 or any(f in out for f in _FATAL):
            tail = "\n".join((out + proc.stderr).strip().splitlines()[-12:])
            raise EngineError(f"Tinker {program} failed (exit code {proc.returncode}) in {d}:\n"
                              f"{tail}")
        (d / f"{NAME}.{program}.out").write_text(out)
        return collect(out, d)

    def energy_components(self, ff: ForceField, molecule: Molecule) -> TinkerEnergy:
        """``analyze E``: total and per-term energies, kcal/mol."""
        return self.run("analyze", ff, molecule, ["E"],
                        lambda out, d: parse_analyze_output(out, source=f"{d}/analyze output"))

    def energy(self, ff: ForceField, molecule: Molecule) -> float:
        """Total MM energy from ``analyze``, kcal/mol."""
        return self.energy_components(ff, molecule).total

    def hessian(self, ff: ForceField, molecule: Molecule) -> np.ndarray:
        """Analytic Cartesian Hessian from ``testhess``, kcal/(mol Å^2), (3N, 3N)."""
        n = molecule.n_atoms
        return self.run("testhess", ff, molecule, ["Y", "N"],
                        lambda out, d: read_testhess_hes(d / f"{NAME}.hes", n))

    def vibrations(self, ff: ForceField, molecule: Molecule) -> TinkerVibrations:
        """All 3N eigenvalues and frequencies printed by ``vibrate``."""
        return self.run("vibrate", ff, molecule, [],
                        lambda out, d: parse_vibrate_output(out, source=f"{d}/vibrate output"))

    def frequencies(self, ff: ForceField, molecule: Molecule, *,
                    drop_external: bool = True) -> np.ndarray:
        """Frequencies (cm^-1, ascending, imaginary negative) from ``vibrate``; with
        ``drop_external`` the 6 (5 if linear) of smallest magnitude are removed, since
        Tinker does not project out translations and rotations."""
        freq = np.sort(self.vibrations(ff, molecule).frequencies_cm1)
        if not drop_external:
            return freq
        n_ext = 3 * molecule.n_atoms - molecule.n_vibrations
        keep = np.sort(np.argsort(np.abs(freq))[n_ext:])
        return freq[keep]

    def minimize(self, ff: ForceField, molecule: Molecule, rms_gradient: float = 1e-4, *,
                 program: str = "minimize") -> TinkerMinimum:
        """Minimize with Tinker's ``minimize`` (or ``optimize``) to the RMS gradient
        criterion (kcal/mol/Å per atom); returns the molecule at the minimum."""

        def collect(out: str, d: Path) -> TinkerMinimum:
            e, g = parse_minimize_output(out, source=f"{d}/{program} output")
            xyz = read_tinker_xyz(d / f"{NAME}.xyz_2")
            if len(xyz.names) != molecule.n_atoms or set(xyz.bonds) != set(molecule.bonds):
                raise EngineError(f"Tinker {program} returned a different molecule")
            return TinkerMinimum(molecule.with_coords(xyz.coords), e, g)

        return self.run(program, ff, molecule, [repr(float(rms_gradient))], collect)

    def optimize(self, ff: ForceField, molecule: Molecule,
                 rms_gradient: float = 1e-4) -> TinkerMinimum:
        """As :meth:`minimize`, with Tinker's ``optimize`` (variable-metric)."""
        return self.minimize(ff, molecule, rms_gradient, program="optimize")


__all__ = [
    "COMPONENTS",
    "ENV_DIR",
    "PROGRAMS",
    "TinkerEngine",
    "TinkerEnergy",
    "TinkerFiles",
    "TinkerMinimum",
    "TinkerVibrations",
    "TinkerXYZ",
    "find_tinker",
    "format_tinker_key",
    "format_tinker_xyz",
    "parse_analyze_output",
    "parse_minimize_output",
    "parse_testhess_hes",
    "parse_tinker_xyz",
    "parse_vibrate_output",
    "read_testhess_hes",
    "read_tinker_xyz",
    "tinker_available",
    "write_tinker_inputs",
]
