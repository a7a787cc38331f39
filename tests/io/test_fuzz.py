"""Fuzz: truncations and single-byte damage of the real files never give a
silently wrong parse.

Property (see ``_fuzz_support``): reading a damaged copy either raises a
q2jax error (ParseError/InputError), or returns records that are internally
consistent (counts match, Hessian 3N x 3N finite and symmetric, frequencies
3N-6, bonds valid) and equal to the intact parse in every field except at
most one "footprint" -- what the one damaged token can carry: one number
(coordinate, Hessian pair, frequency, gradient component, energy), one
atom's identity, one bond, or the title. Field presence and atom counts
never change. For files with an end marker (Gaussian log, Jaguar .out/.in,
Maestro braces, .mmo structure records) a truncation must raise or leave the
parse identical.

Every error names the damaged file and a line (the line of the damage, or
the last line read when a section is missing); only an empty file has no
line to name.

Force-field files (MM3* ``.fld``, Tinker ``.prm``, AMBER ``frcmod``) are
fuzzed for that error property only: these formats have no end marker and
their readers skip unknown lines (as MacroModel, Tinker and AMBER do), so a
damaged file can be a valid, different file (a truncated frcmod is a shorter
frcmod) and "no silently wrong parse" cannot be promised for them.

Damage is drawn by hypothesis (derandomized, a bounded number of examples
per file so the suite stays fast): truncation, replacement, deletion or
insertion of one byte from an alphabet of digits, signs, separators,
newlines and letters, at an offset anywhere in the file or, more often,
inside the regions the reader uses.
"""

from __future__ import annotations

import atexit
import gzip
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from _fuzz_support import footprints, silently_wrong
from _io_paths import ATOM_TYP, DATA, ETHANE, RH, RH_NAMES, RH_SET, jaguar_in, jaguar_out
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from q2jax.errors import Q2JaxError
from q2jax.io import (
    format_tinker_prm,
    read_fchk,
    read_fld,
    read_frcmod,
    read_gaussian_log,
    read_jaguar_in,
    read_jaguar_out,
    read_mae,
    read_mmo_all,
    read_mol2,
    read_tinker_prm,
    read_xyz,
)

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "anchor-fixtures"

ALPHABET = list(b"0123456789.-+eEdD \n\t,\\&@#{}:=%\"abcXHN")
EXAMPLES = int(os.environ.get("Q2JAX_FUZZ_EXAMPLES", "30"))  # raise it for a deep run
DERANDOMIZE = os.environ.get("Q2JAX_FUZZ_RANDOM", "") == ""


def _bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.name.endswith(".gz") else raw


def _first_mmo_structure() -> bytes:
    """The real .mmo cut after its first structure record (a valid 1-structure file)."""
    data = _bytes(RH_SET / "rh_enamide_training_set.mmo.gz")
    end = data.index(b"Total Sol charge", data.index(b"Connection Table"))
    return data[: data.index(b"\n", end) + 1] + b"1\n"


def _fld_excerpt() -> bytes:
    """mm3.fld cut to its header, the start of the main parameters, the van der
    Waals block and the first substructures (every kind of block, 330 of 1913
    lines: the whole file takes half a second to parse)."""
    lines = _bytes(RH / "mm3.fld").split(b"\n")
    return b"\n".join(lines[:180] + lines[1030:1180]) + b"\n"


def _tinker_prm() -> bytes:
    """q2jax's own Tinker file for CH3F and ethane, MM3 form, every family (no
    Tinker parameter file is bundled)."""
    from q2jax import ForceField
    from q2jax.datasets import load_case

    mols = [load_case("ch3f").molecule, load_case("ethane").molecule]
    families = ("bond", "angle", "torsion", "stretch_bend", "vdw", "charge")
    ff = ForceField.from_molecules(mols, "mm3", families=families)
    return format_tinker_prm(ff, molecules=mols).encode()


# name -> (file bytes, file name, reader, has end marker, hot markers (text, width))
TARGETS = {
    "gaussian-log": (lambda: _bytes(ETHANE / "GS.log"), "GS.log", read_gaussian_log, True,
                     [(b" Input orientation:", 1200), (b"Harmonic frequencies", 900),
                      (b"Forces (Hartrees/Bohr)", 900), (b" 1\\1\\GINC", 5000),
                      (b"Atom  1 has atomic", 500), (b"SCF Done", 80),
                      (b"Normal termination", 40)]),
    "fchk": (lambda: _bytes(ETHANE / "GS.fchk"), "GS.fchk", read_fchk, False,
             [(b"Number of atoms", 300), (b"Atomic numbers", 300),
              (b"Current cartesian", 800), (b"Cartesian Forces", 600),
              (b"Cartesian Force Constants", 5200)]),
    "jaguar-in": (lambda: _bytes(jaguar_in(RH_NAMES[0])), "j.01.in", read_jaguar_in, True,
                  [(b"&gen", 200), (b"&zmat", 2500), (b"&hess", 8000), (b"&rwr_svd", 120)]),
    "jaguar-out": (lambda: _bytes(jaguar_out(RH_NAMES[0])), "j.out", read_jaguar_out, True,
                   [(b"Input geometry:", 2700), (b"SCFE:", 100), (b"Number of frequencies", 1500),
                    (b"Job 1ZDMP", 200)]),
    "mae": (lambda: _bytes(RH_SET / "mae" / "1_ZDMP_from_JCTC_SI.mae"), "s.mae",
            lambda p: read_mae(p, atom_typ=ATOM_TYP), True, [(b"m_atom", 3600)]),
    "mmo": (_first_mmo_structure, "s.mmo", lambda p: read_mmo_all(p, atom_typ=ATOM_TYP), True,
            [(b"BOND LENGTHS", 4500), (b"Total energy", 100), (b"Connection Table", 5000)]),
    "mol2": (lambda: _bytes(RH_SET / "mol2" / "1_ZDMP_from_JCTC_SI.mol2"), "s.mol2", read_mol2,
             False, [(b"@<TRIPOS>MOLECULE", 4000)]),
    "xyz": (lambda: _bytes(DATA / "ch3f" / "ch3f-optimized.xyz"), "ch3f.xyz", read_xyz, False,
            [(b"5", 300)]),
}
# force-field files: checked for error quality only (module docstring)
FF_TARGETS = {
    "mm3-fld": (_fld_excerpt, "mm3.fld", read_fld, False,
                [(b"\n-1", 600), (b"\n-2", 3000), (b"\n-6", 2500), (b"\n-3", 3000)]),
    "tinker-prm": (_tinker_prm, "x.prm", read_tinker_prm, False,
                   [(b"bondunit", 900), (b"atom ", 300), (b"bond ", 1000)]),
    "frcmod": (lambda: _bytes(FIXTURES / "upstream_q2mm.frcmod"), "x.frcmod", read_frcmod, False,
               [(b"BOND", 300), (b"DIHE", 900), (b"IMPROPER", 900)]),
}
TARGETS.update(FF_TARGETS)

_CACHE: dict[str, tuple] = {}


def _target(name: str):
    if name not in _CACHE:
        load, fname, reader, end_marker, hot = TARGETS[name]
        data = load()
        tmp = Path(tempfile.mkdtemp(prefix=f"q2jax-fuzz-{name}-"))
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        (tmp / fname).write_bytes(data)
        original = reader(tmp / fname)
        windows = []
        for marker, width in hot:
            at = data.find(marker)
            assert at >= 0, (name, marker)
            windows.append((at, min(len(data), at + width)))
        _CACHE[name] = (data, tmp / fname, reader, end_marker, windows, original)
    return _CACHE[name]


@st.composite
def damage(draw, size: int, windows: list[tuple[int, int]]):
    kind = draw(st.sampled_from(["truncate", "replace", "replace", "delete", "insert"]))
    if windows and draw(st.integers(0, 4)) > 0:
        lo, hi = draw(st.sampled_from(windows))
    else:
        lo, hi = 0, size
    offset = draw(st.integers(lo, hi - 1))
    byte = draw(st.sampled_from(ALPHABET))
    return kind, offset, byte


def _apply(data: bytes, kind: str, offset: int, byte: int) -> bytes:
    if kind == "truncate":
        return data[:offset]
    if kind == "replace":
        return data[:offset] + bytes([byte]) + data[offset + 1:]
    if kind == "delete":
        return data[:offset] + data[offset + 1:]
    return data[:offset] + bytes([byte]) + data[offset:]


def _check(name: str, kind: str, offset: int, byte: int) -> None:
    data, path, reader, end_marker, _, original = _target(name)
    damaged = _apply(data, kind, offset, byte)
    if damaged == data:
        return
    bad = path.parent / "damaged" / path.name  # same name: an empty title falls back to it
    bad.parent.mkdir(exist_ok=True)
    bad.write_bytes(damaged)
    try:
        result = reader(bad)
    except Q2JaxError as err:  # it must say where
        assert getattr(err, "path", None) == str(bad), f"{name}: {kind} at {offset}: {err}"
        assert err.line is not None or not damaged.strip(), f"{name}: no line: {err}"
        assert 1 <= (err.line or 1) <= max(1, damaged.count(b"\n") + 1), f"{name}: {err}"
        return
    if name in FF_TARGETS:
        return
    before = original if isinstance(original, list) else [original]
    after = result if isinstance(result, list) else [result]
    where = f"{name}: {kind} at byte {offset} ({bytes([byte])!r})"
    assert len(after) == len(before), f"{where}: structure count changed"
    for a, b in zip(before, after, strict=True):
        why = silently_wrong(a, b)
        assert why is None, f"{where}: {why}"
        if kind == "truncate" and end_marker:
            assert not footprints(a, b), f"{where}: truncation changed the parse silently"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_damaged_files_never_parse_silently_wrong(name):
    data, _, _, _, windows, _ = _target(name)

    @settings(max_examples=EXAMPLES, derandomize=DERANDOMIZE, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(damage(len(data), windows))
    def run(d):
        _check(name, *d)

    run()


@pytest.mark.parametrize("name", ["gaussian-log", "jaguar-out", "mae", "mmo"])
def test_truncation_at_line_ends_always_raises(name):
    """Cutting these files at any of 25 evenly spaced line ends is detected, and the
    error names the cut file and one of its lines."""
    data, path, reader, _, _, _ = _target(name)
    ends = [k for k in range(len(data)) if data[k] == 10]
    bad = path.with_name("cut-" + path.name)
    for k in ends[: -2: max(1, len(ends) // 25)]:
        cut = data[: k + 1]
        bad.write_bytes(cut)
        with pytest.raises(Q2JaxError) as err:
            reader(bad)
        assert err.value.path == str(bad), err.value
        assert 1 <= err.value.line <= cut.count(b"\n"), err.value
