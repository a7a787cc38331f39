"""Tinker adapter: written xyz/key/prm inputs, output parsers, engine plumbing.

Without a Tinker binary the unit factors of the written files are checked by
``TinkerReference`` below: a small pure-Python evaluation of Tinker's energy
exactly as Tinker's parameter keywords define it (formulas of Tinker's
ebond/eangle/estrbnd/eopbend/etors/ebuck/elj/echarge, topology and parameter
lookup as kbond/kangle/kstrbnd/kopbend/ktors/kvdw do), reading nothing but the
written ``.prm`` and ``.xyz`` text. It shares no code with q2jax.

Parser samples: ``tests/data/tinker/sn2-ts-*`` are real Tinker 25.6 outputs
from the Q2MM repository (see tests/data/tinker/README.md). No real ``.hes``
file was available, so ``.hes`` text (and analyze output with ``digits 8``) is
constructed here with Tinker's documented Fortran formats (testhess.f,
analyze.f).
"""

from __future__ import annotations

import math
import os
import stat
import sys
from collections import deque
from pathlib import Path

import jax
import numpy as np
import pytest

from q2jax import ForceField, Molecule
from q2jax.adapters.tinker import (
    ENV_DIR,
    TinkerEngine,
    find_tinker,
    format_tinker_key,
    parse_analyze_output,
    parse_minimize_output,
    parse_testhess_hes,
    parse_tinker_xyz,
    parse_vibrate_output,
    read_tinker_xyz,
    tinker_available,
    write_tinker_inputs,
)
from q2jax.energy import energy, energy_components, gradient, hessian
from q2jax.errors import EngineError, ParseError
from q2jax.system import build_system
from q2jax.vibrations import frequencies

FAMILIES = ("bond", "angle", "torsion", "improper", "stretch_bend", "vdw", "charge")
SAMPLES = Path(__file__).resolve().parent.parent / "data" / "tinker"
NO_TINKER = "Tinker binaries not found on PATH (set Q2JAX_TINKER_DIR)"
needs_tinker = pytest.mark.skipif(not tinker_available(), reason=NO_TINKER)


# --- molecules and force fields ----------------------------------------------------------


def _ch3f(data_dir) -> Molecule:
    rows = (data_dir / "ch3f" / "ch3f-optimized.xyz").read_text().splitlines()[2:7]
    return Molecule.from_arrays([r.split()[0] for r in rows],
                                [[float(x) for x in r.split()[1:4]] for r in rows], name="ch3f")


def _ethane(data_dir) -> Molecule:
    text = (data_dir / "ethane-gs" / "GS.mol2").read_text()
    atoms = text.split("@<TRIPOS>ATOM")[1].split("@<TRIPOS>")[0].split("\n")
    rows = [r.split() for r in atoms if r.strip()]
    bonds = text.split("@<TRIPOS>BOND")[1].split("\n")
    pairs = [(int(b.split()[1]) - 1, int(b.split()[2]) - 1) for b in bonds if b.strip()]
    return Molecule.from_arrays([r[1] for r in rows], [[float(x) for x in r[2:5]] for r in rows],
                                atom_types=[r[5] for r in rows], bonds=pairs, name="ethane")


def _planar(center, nbrs, lengths=(1.3, 1.3, 1.3), skew=0.0) -> Molecule:
    xyz = [[0.0, 0.0, 0.0]]
    for k, r in enumerate(lengths):
        a = math.radians(120.0 * k + (skew if k == 2 else 0.0))
        xyz.append([r * math.cos(a), r * math.sin(a), 0.0])
    return Molecule.from_arrays((center,) + tuple(nbrs), xyz, bonds=[(0, 1), (0, 2), (0, 3)])


def _perturbed(ff: ForceField, seed: int) -> ForceField:
    rng = np.random.default_rng(seed)
    vals = ff.as_dict()
    draw = {"bond_k": (200, 600), "angle_k": (40, 120), "torsion_v1": (-2, 2),
            "torsion_v2": (-2, 2), "torsion_v3": (-2, 2), "improper_k": (5, 40),
            "stretch_bend_k": (-30, 30), "vdw_radius": (1.4, 2.2), "vdw_epsilon": (0.02, 0.2),
            "charge": (-0.4, 0.4)}
    new = {}
    for e in ff.entries:
        v = vals[e.label]
        if e.kind == "bond_eq":
            new[(e.kind, e.key)] = v * rng.uniform(0.97, 1.03)
        elif e.kind == "angle_eq":
            new[(e.kind, e.key)] = v + rng.uniform(-4, 4)
        else:
            new[(e.kind, e.key)] = rng.uniform(*draw[e.kind])
    return ff.with_values(new)


def _distorted(mol: Molecule, seed: int, scale: float = 0.06) -> Molecule:
    rng = np.random.default_rng(seed)
    return mol.with_coords(np.asarray(mol.coords) + rng.normal(0.0, scale, (mol.n_atoms, 3)))


@pytest.fixture(scope="module")
def ch3f(data_dir):
    return _ch3f(data_dir)


@pytest.fixture(scope="module")
def ethane(data_dir):
    return _ethane(data_dir)


_components = jax.jit(energy_components, static_argnums=(3, 4))


def _q2jax_components(ff: ForceField, mol: Molecule) -> dict[str, float]:
    s = build_system(ff, mol)
    comps = _components(ff.full_params(), s.coords, s.terms, ff.form, ff.settings)
    return {k: float(v) for k, v in comps.items()}


# --- an independent Tinker energy, read from the written files -----------------------------


class TinkerReference:
    """Tinker's potential energy as its parameter-file keywords define it."""

    DEFAULTS = {  # Tinker initprm.f
        "bondunit": 1.0, "bond-cubic": 0.0, "bond-quartic": 0.0,
        "angleunit": (math.pi / 180) ** 2, "angle-cubic": 0.0, "angle-quartic": 0.0,
        "angle-pentic": 0.0, "angle-sextic": 0.0, "strbndunit": math.pi / 180,
        "opbendunit": (math.pi / 180) ** 2, "opbend-cubic": 0.0, "opbend-quartic": 0.0,
        "opbend-pentic": 0.0, "opbend-sextic": 0.0, "torsionunit": 1.0,
        "a-expterm": 0.0, "b-expterm": 0.0, "c-expterm": 0.0, "vdw-12-scale": 0.0,
        "vdw-13-scale": 0.0, "vdw-14-scale": 1.0, "chg-12-scale": 0.0, "chg-13-scale": 0.0,
        "chg-14-scale": 1.0, "electric": 332.0637133, "dielectric": 1.0,
    }
    WORDS = {"vdwtype": "LENNARD-JONES", "radiusrule": "ARITHMETIC", "radiustype": "R-MIN",
             "radiussize": "RADIUS", "epsilonrule": "GEOMETRIC", "opbendtype": "W-D-C"}

    def __init__(self, prm_text: str, xyz_text: str):
        self.h = dict(self.DEFAULTS)
        self.w = dict(self.WORDS)
        self.cls: dict[int, int] = {}
        self.p: dict[str, dict] = {k: {} for k in ("bond", "angle", "strbnd", "opbend",
                                                    "torsion", "vdw", "charge")}
        for ln in prm_text.splitlines():
            t = ln.split()
            if not t or t[0].startswith("#"):
                continue
            kw = t[0].lower()
            if kw in self.h:
                self.h[kw] = float(t[1])
            elif kw in self.w:
                self.w[kw] = t[1].upper()
            elif kw == "atom":
                self.cls[int(t[1])] = int(t[2])
            elif kw in self.p:
                n = {"bond": 2, "angle": 3, "strbnd": 3, "opbend": 4, "torsion": 4, "vdw": 1,
                     "charge": 1}[kw]
                self.p[kw][tuple(int(x) for x in t[1:1 + n])] = [float(x) for x in t[1 + n:]]
        for k in ("vdw-14-scale", "chg-14-scale"):  # prmkey.f: s > 1 means 1/s
            if self.h[k] > 1.0:
                self.h[k] = 1.0 / self.h[k]
        assert self.w["radiusrule"] == "ARITHMETIC" and self.w["epsilonrule"] == "GEOMETRIC"
        assert self.w["radiustype"] == "R-MIN" and self.w["radiussize"] == "RADIUS"
        assert self.w["opbendtype"] == "W-D-C"
        lines = xyz_text.splitlines()
        n = int(lines[0].split()[0])
        self.type = [int(ln.split()[5]) for ln in lines[1:1 + n]]
        self.nbr = [[int(x) - 1 for x in ln.split()[6:]] for ln in lines[1:1 + n]]
        self.n = n

    def c(self, i):
        return self.cls[self.type[i]]

    def _dist(self):
        d = np.full((self.n, self.n), 99, int)
        for s in range(self.n):
            d[s, s] = 0
            q = deque([s])
            while q:
                u = q.popleft()
                for v in self.nbr[u]:
                    if d[s, v] == 99:
                        d[s, v] = d[s, u] + 1
                        q.append(v)
        return d

    def energy(self, x: np.ndarray) -> dict[str, float]:
        h, p, c = self.h, self.p, self.c
        deg = 180.0 / math.pi
        out = dict.fromkeys(("stretch", "bend", "stretch_bend", "out_of_plane", "torsion",
                             "vdw", "electrostatic"), 0.0)

        def r(i, j):
            return float(np.linalg.norm(x[i] - x[j]))

        def ang(i, j, k):
            u, v = x[i] - x[j], x[k] - x[j]
            cs = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
            return math.acos(max(-1.0, min(1.0, cs))) * deg

        bonds = sorted({(min(i, j), max(i, j)) for i in range(self.n) for j in self.nbr[i]})
        b0 = {}
        for i, j in bonds:
            k, r0 = p["bond"][tuple(sorted((c(i), c(j))))]
            b0[(i, j)] = b0[(j, i)] = r0
            dr = r(i, j) - r0
            out["stretch"] += h["bondunit"] * k * dr * dr * (
                1 + h["bond-cubic"] * dr + h["bond-quartic"] * dr * dr)
        for j in range(self.n):
            nb = self.nbr[j]
            for a in range(len(nb)):
                for b in range(a + 1, len(nb)):
                    i, k = nb[a], nb[b]
                    key = (c(i), c(j), c(k)) if c(i) <= c(k) else (c(k), c(j), c(i))
                    force, t0 = p["angle"][key][:2]
                    dt = ang(i, j, k) - t0
                    out["bend"] += h["angleunit"] * force * dt * dt * (
                        1 + h["angle-cubic"] * dt + h["angle-quartic"] * dt**2
                        + h["angle-pentic"] * dt**3 + h["angle-sextic"] * dt**4)
                    if key in p["strbnd"]:
                        f1, f2 = p["strbnd"][key]
                        if c(i) > c(k):
                            f1, f2 = f2, f1
                        out["stretch_bend"] += h["strbndunit"] * (
                            f1 * (r(i, j) - b0[(i, j)]) + f2 * (r(k, j) - b0[(k, j)])) * dt
                    if len(nb) == 3:
                        d = next(m for m in nb if m not in (i, k))
                        lo, hi = sorted((c(i), c(k)))
                        for key4 in ((c(d), c(j), lo, hi), (c(d), c(j), 0, 0), (0, c(j), 0, 0)):
                            if key4 in p["opbend"]:
                                xab, xcb, xdb = x[i] - x[j], x[k] - x[j], x[d] - x[j]
                                cc = np.dot(xab, xab) * np.dot(xcb, xcb) - np.dot(xab, xcb) ** 2
                                ee = np.dot(xdb, np.cross(xab, xcb))
                                s = min(1.0, abs(ee) / math.sqrt(cc * np.dot(xdb, xdb)))
                                dt2 = (math.asin(s) * deg) ** 2
                                out["out_of_plane"] += h["opbendunit"] * p["opbend"][key4][0] * dt2
                                break
        for b, cc_ in bonds:
            for a in self.nbr[b]:
                for d in self.nbr[cc_]:
                    if a in (b, cc_) or d in (b, cc_) or a == d:
                        continue
                    ta, tb, tc, td = c(a), c(b), c(cc_), c(d)
                    key = ((ta, tb, tc, td) if tb < tc or (tb == tc and ta <= td)
                           else (td, tc, tb, ta))
                    vals = p["torsion"][key]
                    phi = self._dihedral(x[a], x[b], x[cc_], x[d])
                    for amp, phase, per in zip(vals[0::3], vals[1::3], vals[2::3], strict=True):
                        out["torsion"] += h["torsionunit"] * amp * (
                            1 + math.cos(per * phi - math.radians(phase)))
        dist = self._dist()
        for i in range(self.n):
            for j in range(i + 1, self.n):
                sep = dist[i, j]
                if sep < 3:
                    continue
                rij = r(i, j)
                if p["vdw"]:
                    ri, ei = p["vdw"][(c(i),)][:2]
                    rj, ej = p["vdw"][(c(j),)][:2]
                    rv, eps = ri + rj, math.sqrt(ei * ej)
                    eps *= h["vdw-14-scale"] if sep == 3 else 1.0
                    pp = rv / rij
                    if self.w["vdwtype"] == "BUCKINGHAM":
                        if pp * pp <= 4.0:
                            e = eps * (h["a-expterm"] * math.exp(-h["b-expterm"] / pp)
                                       - h["c-expterm"] * pp**6)
                        else:  # Tinker's short-range r^-12 wall (ebuck.f)
                            merge = (h["a-expterm"] * math.exp(-h["b-expterm"] / 2.0)
                                     - h["c-expterm"] * 2.0**6) / 2.0**12
                            e = merge * eps * pp**12
                    else:
                        assert self.w["vdwtype"] == "LENNARD-JONES"
                        e = eps * (pp**12 - 2.0 * pp**6)
                    out["vdw"] += e
                if p["charge"]:
                    qi = p["charge"][(self.type[i],)][0]
                    qj = p["charge"][(self.type[j],)][0]
                    scale = h["chg-14-scale"] if sep == 3 else 1.0
                    out["electrostatic"] += h["electric"] * qi * qj * scale / (
                        h["dielectric"] * rij)
        return out

    @staticmethod
    def _dihedral(a, b, c, d) -> float:
        b1, b2, b3 = b - a, c - b, d - c
        n1, n2 = np.cross(b1, b2), np.cross(b2, b3)
        m = np.cross(n1, b2 / np.linalg.norm(b2))
        return math.atan2(np.dot(m, n2), np.dot(n1, n2))


def _reference(ff, mol, tmp_path) -> tuple[TinkerReference, object]:
    files = write_tinker_inputs(ff, mol, tmp_path)
    return TinkerReference(files.prm.read_text(), files.xyz.read_text()), files


# --- units: Tinker's energy from the written files equals q2jax's ---------------------------


def _compare(which, form, ch3f, ethane, tmp_path):
    """(Tinker reference components, q2jax components) at a distorted geometry."""
    mol0 = {"ch3f": ch3f, "ethane": ethane}[which]
    ff = _perturbed(ForceField.from_molecules([mol0], form, families=FAMILIES), seed=1)
    mol = _distorted(mol0, seed=2)
    ref, files = _reference(ff, mol, tmp_path)
    return ref.energy(read_tinker_xyz(files.xyz).coords), _q2jax_components(ff, mol)


@pytest.mark.parametrize("form", ["mm3", "harmonic"])
@pytest.mark.parametrize("which", ["ch3f", "ethane"])
def test_written_files_reproduce_q2jax_energy(which, form, ch3f, ethane, tmp_path):
    """Every family but torsions (see the next test) agrees to 1e-8 relative."""
    tinker, q2 = _compare(which, form, ch3f, ethane, tmp_path)
    total = sum(v for k, v in q2.items() if k != "torsion")
    assert sum(v for k, v in tinker.items() if k != "torsion") == pytest.approx(total, rel=1e-8)
    for k, v in tinker.items():
        if k != "torsion":
            assert v == pytest.approx(q2[k], rel=1e-8, abs=1e-9 * abs(total)), k
    if which == "ch3f":  # no torsions: the whole q2jax.energy total
        mol0 = _distorted(ch3f, seed=2)
        ff = _perturbed(ForceField.from_molecules([ch3f], form, families=FAMILIES), seed=1)
        s = build_system(ff, mol0)
        e = float(energy(ff.full_params(), s.coords, s.terms, ff.form, ff.settings))
        assert sum(tinker.values()) == pytest.approx(e, rel=1e-8)
    # every family the molecule has is exercised: no vacuous comparison
    active = {k for k, v in tinker.items() if abs(v) > 1e-6}
    want = {"stretch", "bend", "stretch_bend"} | (
        {"torsion", "vdw", "electrostatic"} if which == "ethane" else set())
    assert want <= active


@pytest.mark.parametrize("form", ["mm3", "harmonic"])
def test_torsion_energy_matches_tinker(form, ch3f, ethane, tmp_path):
    tinker, q2 = _compare("ethane", form, ch3f, ethane, tmp_path)
    assert abs(tinker["torsion"]) > 1e-3
    assert tinker["torsion"] == pytest.approx(q2["torsion"], rel=1e-8)


def test_mm3_bend_far_from_equilibrium_uses_sextic_polynomial(ch3f, tmp_path):
    """A 25 degree bend makes the angle polynomial matter (its terms up to d^4)."""
    ff = _perturbed(ForceField.from_molecules([ch3f], "mm3", families=("bond", "angle")), 3)
    x = np.asarray(ch3f.coords).copy()
    x[1] += np.array([0.6, 0.0, 0.1])  # swing F off the C3 axis
    mol = ch3f.with_coords(x)
    ref, files = _reference(ff, mol, tmp_path)
    tinker = ref.energy(read_tinker_xyz(files.xyz).coords)
    assert tinker["bend"] == pytest.approx(_q2jax_components(ff, mol)["bend"], rel=1e-9)


def test_out_of_plane_exact_for_symmetric_umbrella(tmp_path):
    """k (mean chi)^2 == sum over neighbours of (k/3) chi_D^2 when all chi_D are equal."""
    bf3 = _planar("B", ("F", "F", "F")).with_atom_types(["B", "F", "F", "F"])
    for form in ("mm3", "harmonic"):
        ff = _perturbed(ForceField.from_molecules([bf3], form,
                                                  families=("bond", "angle", "improper")), 4)
        x = np.asarray(bf3.coords).copy()
        x[0, 2] += 0.12  # umbrella: boron out of the F3 plane
        mol = bf3.with_coords(x)
        ref, files = _reference(ff, mol, tmp_path / form)
        tinker = ref.energy(read_tinker_xyz(files.xyz).coords)
        q2 = _q2jax_components(ff, mol)
        assert q2["out_of_plane"] > 1e-3
        assert tinker["out_of_plane"] == pytest.approx(q2["out_of_plane"], rel=1e-10)
        assert sum(tinker.values()) == pytest.approx(sum(q2.values()), rel=1e-10)


def test_out_of_plane_curvature_exact_only_at_symmetric_centres(tmp_path):
    """Near a planar centre every Wilson angle is proportional to the one out-of-plane
    coordinate, so both energies are rank-one quadratics in it: comparing them along
    one generic out-of-plane displacement compares the Hessians. They agree for a
    centre with equivalent neighbours and differ for an unsymmetric one (bond lengths
    1.22/1.10/1.10 Å, angles skewed by 10 degrees), as documented."""
    ratio = {}
    dz = np.array([0.3, -0.5, 0.15, 0.05])[:, None] * np.array([[0.0, 0.0, 1.0]])
    for name, mol in (("sym", _planar("B", ("F", "F", "F"))),
                      ("asym", _planar("C", ("O", "H", "H"), (1.22, 1.10, 1.10), 10.0))):
        ff = _perturbed(ForceField.from_molecules([mol], "harmonic",
                                                  families=("bond", "angle", "improper")), 5)
        moved = mol.with_coords(np.asarray(mol.coords) + 1e-3 * dz)
        ref, files = _reference(ff, moved, tmp_path / name)
        e_ref = ref.energy(read_tinker_xyz(files.xyz).coords)["out_of_plane"]
        e_q2 = _q2jax_components(ff, moved)["out_of_plane"]
        assert e_q2 > 1e-9
        ratio[name] = e_ref / e_q2
    assert ratio["sym"] == pytest.approx(1.0, abs=1e-5)
    assert abs(ratio["asym"] - 1.0) > 1e-3


# --- the written xyz and key files ------------------------------------------------------------


def test_xyz_file_has_tinker_layout_and_connectivity(ethane, tmp_path):
    ff = ForceField.from_molecules([ethane], "mm3", families=FAMILIES)
    files = write_tinker_inputs(ff, ethane, tmp_path, name="eth")
    lines = files.xyz.read_text().splitlines()
    assert lines[0].split()[0] == "8" and len(lines) == 9
    prm_types = {}
    for ln in files.prm.read_text().splitlines():
        if ln.startswith("atom "):
            t = ln.split()
            prm_types[int(t[1])] = t[3]
    bonds = set()
    for i, ln in enumerate(lines[1:]):
        t = ln.split()
        assert t[0] == str(i + 1) and t[1] == ethane.symbols[i]  # number, name
        assert np.allclose([float(v) for v in t[2:5]], np.asarray(ethane.coords)[i], atol=1e-10)
        assert int(t[5]) == files.type_numbers[ethane.atom_types[i]]  # Tinker type
        assert prm_types[int(t[5])] == ethane.symbols[i]
        for j in t[6:]:
            bonds.add(tuple(sorted((i, int(j) - 1))))
    assert bonds == set(ethane.bonds)
    back = read_tinker_xyz(files.xyz)
    assert back.bonds == ethane.bonds and back.names == ethane.symbols


def test_key_file_points_at_prm_and_disables_absent_families(ch3f, tmp_path):
    ff = ForceField.from_molecules([ch3f], "mm3", families=("bond", "angle"))
    files = write_tinker_inputs(ff, ch3f, tmp_path)
    words = [ln.split() for ln in files.key.read_text().splitlines() if not ln.startswith("#")]
    assert ["parameters", "mol.prm"] in words and ["digits", "8"] in words
    off = {w[0] for w in words if w[1:] == ["none"]}
    assert off == {"strbndterm", "opbendterm", "torsionterm", "vdwterm", "chargeterm", "ureyterm"}
    assert "vdwterm" not in format_tinker_key("x.prm", ForceField.from_molecules(
        [ch3f], families=("bond", "angle", "vdw")))


# --- parsers on real Tinker output (Q2MM sn2-test, Tinker 25.6) ------------------------------


def test_parse_real_analyze_output():
    e = parse_analyze_output((SAMPLES / "sn2-ts-analyze-energy.txt").read_text())
    assert e.total == 297.9599
    assert e.components == {"stretch": 124.5982, "bend": 158.4260, "stretch_bend": 12.2843,
                             "angle_angle": 2.6514}
    assert e.interactions == {"stretch": 5, "bend": 10, "stretch_bend": 7, "angle_angle": 21}


def test_parse_real_vibrate_output():
    v = parse_vibrate_output((SAMPLES / "sn2-ts-vibrate-output.txt").read_text())
    assert v.frequencies_cm1.shape == (18,) and v.eigenvalues.shape == (18,)
    listed = np.loadtxt(SAMPLES / "sn2-ts-mm-frequencies.txt")  # Q2MM's own transcription
    np.testing.assert_array_equal(v.frequencies_cm1, listed)
    assert v.eigenvalues[0] == -14069.149 and v.eigenvalues[-1] == 6910.217
    assert v.frequencies_cm1[2] == -491.232


def test_parse_real_xyz():
    x = read_tinker_xyz(SAMPLES / "sn2-ts.xyz")
    assert x.names == ("C", "F", "F", "H", "H", "H") and x.types == (1, 11, 11, 5, 5, 5)
    assert x.bonds == ((0, 1), (0, 2), (0, 3), (0, 4), (0, 5))
    assert x.coords[1, 1] == 1.85 and x.title.startswith("SN2 TS")


# --- parsers on output constructed with Tinker's documented formats --------------------------


def _fortran_f(values, width, decimals, per_line):
    """Fortran 'nfW.D' records (fields right-aligned, no separator)."""
    out = []
    for k in range(0, len(values), per_line):
        out.append("".join(f"{v:{width}.{decimals}f}" for v in values[k:k + per_line]))
    return out


def hes_text(h: np.ndarray, digits: int = 8) -> str:
    """A testhess .hes file as testhess.f writes it (hesscut = 0)."""
    width, dec, per = {4: (12, 4, 6), 6: (14, 6, 5), 8: (16, 8, 4)}[digits]
    n3 = h.shape[0]
    lines = ["", " Diagonal Hessian Elements  (3 per Atom)", ""]
    lines += _fortran_f(np.diag(h), width, dec, per)
    for r in range(n3 - 1):
        lines += ["", f" Off-diagonal Hessian Elements for Atom{r // 3 + 1:6d} {'XYZ'[r % 3]}", ""]
        lines += _fortran_f(h[r, r + 1:], width, dec, per)
    return "\n".join(lines) + "\n"


def _symmetric(n3: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(0.0, 300.0, (n3, n3))
    return 0.5 * (a + a.T)


@pytest.mark.parametrize("digits", [4, 6, 8])
def test_parse_constructed_hes(digits):
    h = _symmetric(15, 6)
    got = parse_testhess_hes(hes_text(h, digits), n_atoms=5)
    np.testing.assert_allclose(got, h, rtol=0, atol=0.51 * 10.0**-digits)
    assert np.array_equal(got, got.T)


def test_hes_fields_that_touch_are_split():
    """f16.8 fields of -123456.5 or 9999999.0 fill all 16 columns and touch."""
    h = np.array([[1.0, 2.0, -123456.5], [2.0, 3.0, -0.25], [-123456.5, -0.25, 9999999.0]])
    text = hes_text(h)
    assert "2.00000000-123456.50000000" in text and "3.000000009999999.00000000" in text
    assert np.array_equal(parse_testhess_hes(text), h)


def _hes_lines() -> list[str]:
    return hes_text(_symmetric(15, 7)).splitlines()


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda ls: ls[: len(ls) - 6], "expected off-diagonal section for atom 5 Y"),
        (lambda ls: [ln.replace("-", "x", 1) if "-" in ln and "Atom" not in ln else ln
                     for ln in ls], "expected numbers with 8 decimals"),
        (lambda ls: ls[:3] + ls[4:], "off-diagonal section|not 3 per atom|elements, expected"),
        (lambda ls: [ln.replace("Atom     2 Y", "Atom     2 Z") for ln in ls],
         "expected off-diagonal section for atom 2 Y"),
        (lambda ls: ls[:-1], "row 5 Y has 0 elements, expected 1"),
        (lambda ls: ls[:-9] + [ls[-9][:-16]] + ls[-8:], "row 4 Z has 2 elements, expected 3"),
        (lambda ls: [ls[0], ls[1]], "diagonal section is empty"),
    ],
)
def test_bad_hes_raises_with_line(edit, match):
    lines = edit(_hes_lines())
    with pytest.raises(ParseError, match=match) as info:
        parse_testhess_hes("\n".join(lines) + "\n", n_atoms=None, source="x.hes")
    assert info.value.path == "x.hes"


def test_hes_atom_count_is_checked():
    with pytest.raises(ParseError, match="Hessian is for 5 atoms, expected 6"):
        parse_testhess_hes("\n".join(_hes_lines()), n_atoms=6)


def analyze_text(total: float, comps: dict[str, tuple[float, int]]) -> str:
    """analyze 'E' output with digits 8 (analyze.f: f20.8 total, 1x,f20.8,i17 terms)."""
    lines = ["", f" Total Potential Energy :    {total:20.8f} Kcal/mole", "",
             " Energy Component Breakdown :           Kcal/mole        Interactions", ""]
    pad = {"Bond Stretching": 12, "Angle Bending": 14, "Stretch-Bend": 15,
           "Out-of-Plane Bend": 10, "Torsional Angle": 12, "Van der Waals": 14,
           "Charge-Charge": 14}
    for label, (v, n) in comps.items():
        lines.append(f" {label}{' ' * pad[label]} {v:20.8f}{n:17d}")
    return "\n".join(lines) + "\n"


def test_parse_constructed_analyze_maps_all_q2jax_components(ethane):
    ff = _perturbed(ForceField.from_molecules([ethane], "mm3", families=FAMILIES), 8)
    q2 = _q2jax_components(ff, _distorted(ethane, 9))
    names = {"stretch": "Bond Stretching", "bend": "Angle Bending",
             "stretch_bend": "Stretch-Bend", "out_of_plane": "Out-of-Plane Bend",
             "torsion": "Torsional Angle", "vdw": "Van der Waals",
             "electrostatic": "Charge-Charge"}
    comps = {names[k]: (round(v, 8), 3) for k, v in q2.items()}
    text = analyze_text(round(sum(q2.values()), 8), comps)
    got = parse_analyze_output(text)
    assert got.total == pytest.approx(sum(q2.values()), abs=1e-8)
    for k, v in q2.items():
        assert got.components[k] == pytest.approx(v, abs=1e-8)
    bad = text.replace(" Van der Waals", " Van der Waals", 1).splitlines()
    bad = [ln for ln in bad if "Van der Waals" not in ln]  # a lost line
    if abs(q2["vdw"]) > 1e-6:
        with pytest.raises(ParseError, match="add up to"):
            parse_analyze_output("\n".join(bad), source="a.out")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("no energies here\n", "no 'Total Potential Energy'"),
        (" Total Potential Energy :    ******************** Kcal/mole\n", "expected a number"),
        (" Total Potential Energy :        1.0 Kcal/mole\n", "no 'Energy Component Breakdown'"),
        (" Total Potential Energy :        1.0 Kcal/mole\n Energy Component Breakdown :\n"
         " Bond Stretching     1.0     x\n", "unrecognised energy component"),
    ],
)
def test_bad_analyze_output(text, match):
    with pytest.raises(ParseError, match=match):
        parse_analyze_output(text)


def test_bad_vibrate_output():
    text = (SAMPLES / "sn2-ts-vibrate-output.txt").read_text()
    with pytest.raises(ParseError, match="expected a number"):
        parse_vibrate_output(text.replace(" -3497.160", "**********"))
    with pytest.raises(ParseError, match="expected entry 2"):
        parse_vibrate_output(text.replace("    2-13097.123", "    7-13097.123"))
    with pytest.raises(ParseError, match="no 'Vibrational Frequencies"):
        parse_vibrate_output(text.split(" Vibrational Frequencies")[0])


def test_parse_minimize_output():
    text = ("\n Final Function Value :         -1.23456789\n"
            " Final RMS Gradient :         0.12345678D-04\n"
            " Final Gradient Norm :        0.30241000D-04\n")
    assert parse_minimize_output(text) == (-1.23456789, 0.12345678e-4)
    with pytest.raises(ParseError, match="Final RMS Gradient"):
        parse_minimize_output(text.splitlines()[1])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty Tinker xyz"),
        ("2 t\n 1 C 0 0 0 1 2\n", "file ends after 1 of 2 atoms"),
        ("2 t\n 1 C 0 0 0 1 2\n 2 H 1 0 0 5\n", "lists atom 2 as bonded but not vice versa"),
        ("2 t\n 1 C 0 0 0 1 3\n 2 H 1 0 0 5 1\n", "bonded atom '3'"),
        ("2 t\n 1 C 0 0 x 1 2\n 2 H 1 0 0 5 1\n", "expected a number"),
        ("x t\n", "positive atom count"),
    ],
)
def test_bad_xyz(text, match):
    with pytest.raises(ParseError, match=match):
        parse_tinker_xyz(text, source="bad.xyz")


# --- engine: absent binaries, and the subprocess plumbing with stand-in programs -----------


def test_engine_without_tinker_raises_engine_error(ch3f, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(ENV_DIR, raising=False)
    ff = ForceField.from_molecules([ch3f], "mm3")
    assert find_tinker("analyze") is None and not tinker_available()
    with pytest.raises(EngineError, match="Q2JAX_TINKER_DIR"):
        TinkerEngine().energy(ff, ch3f)
    with pytest.raises(EngineError, match="bin_dir="):
        TinkerEngine(bin_dir=tmp_path / "nowhere").hessian(ff, ch3f)


def _fake_program(bin_dir: Path, name: str, body: str) -> None:
    """A stand-in Tinker program (Python) that checks its command line and inputs."""
    path = bin_dir / name
    path.write_text(f"#!{sys.executable}\nimport sys, pathlib\n"
                    "args = sys.argv[1:]\n"
                    "assert args[:3] == ['mol.xyz', '-k', 'mol.key'], args\n"
                    "key = pathlib.Path('mol.key').read_text()\n"
                    "assert 'parameters  mol.prm' in key and pathlib.Path('mol.prm').exists()\n"
                    "assert pathlib.Path('mol.xyz').read_text().split()[0].isdigit()\n"
                    + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.mark.skipif(os.name != "posix", reason="stand-in programs are POSIX scripts")
def test_engine_runs_programs_and_parses_their_output(ch3f, tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_DIR, raising=False)
    ff = ForceField.from_molecules([ch3f], "mm3", families=FAMILIES)
    h = _symmetric(15, 8)
    (tmp_path / "h.hes").write_text(hes_text(h))
    analyze = analyze_text(3.0, {"Bond Stretching": (1.0, 4), "Angle Bending": (2.0, 6)})
    (tmp_path / "a.out").write_text(analyze)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_program(bin_dir, "analyze", f"assert args[3:] == ['E']\n"
                  f"print(pathlib.Path({str(tmp_path / 'a.out')!r}).read_text())\n")
    _fake_program(bin_dir, "testhess", "assert args[3:] == ['Y', 'N']\n"
                  f"pathlib.Path('mol.hes').write_text(pathlib.Path("
                  f"{str(tmp_path / 'h.hes')!r}).read_text())\n")
    _fake_program(bin_dir, "vibrate", "print(' TINKER is Unable to Continue; Terminating')\n")
    eng = TinkerEngine(bin_dir=bin_dir, workdir=tmp_path / "runs")
    e = eng.energy_components(ff, ch3f)
    assert e.total == 3.0 and e.components == {"stretch": 1.0, "bend": 2.0}
    np.testing.assert_allclose(eng.hessian(ff, ch3f), h, atol=1e-8)
    with pytest.raises(EngineError, match="Tinker vibrate failed"):
        eng.frequencies(ff, ch3f)
    monkeypatch.setenv(ENV_DIR, str(bin_dir))
    assert TinkerEngine().energy(ff, ch3f) == 3.0  # found through Q2JAX_TINKER_DIR


# --- execution against a real Tinker (skipped when absent) ------------------------------------


@pytest.fixture(scope="module")
def ch3f_case(ch3f):
    ff = _perturbed(ForceField.from_molecules([ch3f], "mm3", families=FAMILIES), 10)
    return ff, ch3f


@needs_tinker
@pytest.mark.parametrize("form", ["mm3", "harmonic"])
def test_tinker_analyze_energy_matches_q2jax(ch3f, form):
    ff = _perturbed(ForceField.from_molecules([ch3f], form, families=FAMILIES), 11)
    mol = _distorted(ch3f, 12)
    got = TinkerEngine().energy_components(ff, mol)
    q2 = _q2jax_components(ff, mol)
    assert got.total == pytest.approx(sum(q2.values()), abs=1e-6)
    for k, v in got.components.items():
        assert v == pytest.approx(q2[k], abs=1e-6), k


@needs_tinker
def test_tinker_testhess_matches_q2jax(ch3f_case):
    ff, mol = ch3f_case
    mol = _distorted(mol, 13, 0.02)
    s = build_system(ff, mol)
    h = np.asarray(hessian(ff.full_params(), s.coords, s.terms, ff.form, ff.settings))
    np.testing.assert_allclose(TinkerEngine().hessian(ff, mol), h, atol=2e-6)


@needs_tinker
def test_tinker_vibrate_matches_q2jax(ch3f):
    """At the geometry the equilibrium values came from (a stationary point of the
    bonded terms) Tinker's unprojected frequencies equal q2jax's projected ones."""
    ff = ForceField.from_molecules([ch3f], "mm3", families=("bond", "angle"))
    s = build_system(ff, ch3f)
    h = hessian(ff.full_params(), s.coords, s.terms, ff.form, ff.settings)
    want = np.sort(np.asarray(frequencies(h, s.coords, s.masses, ch3f.n_vibrations)))
    np.testing.assert_allclose(TinkerEngine().frequencies(ff, ch3f), want, atol=0.01)


@needs_tinker
def test_tinker_minimize_reaches_a_q2jax_minimum(ch3f_case):
    ff, mol = ch3f_case
    res = TinkerEngine().minimize(ff, _distorted(mol, 14, 0.03), rms_gradient=1e-5)
    s = build_system(ff, res.molecule)
    e = float(energy(ff.full_params(), s.coords, s.terms, ff.form, ff.settings))
    assert e == pytest.approx(res.energy, abs=1e-6)
    g = np.asarray(gradient(ff.full_params(), s.coords, s.terms, ff.form, ff.settings))
    assert np.sqrt(np.mean(g**2) * 3) < 1e-3
