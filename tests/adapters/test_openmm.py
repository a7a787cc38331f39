"""q2jax.adapters.openmm against q2jax's JAX energy.

OpenMM (Reference platform, double precision) evaluates the exported System
with its own code (standard and Lepton custom forces, virtual sites for
MM3*'s reduced hydrogens); every force field here has every family, MM3's
bend-bend, torsion-stretch and pair-specific vdW included, and the published
Rh-enamide MM3* adds the reduced sites and MacroModel's vdW taper. Every
figure is compared with ``q2jax.energy`` on the same force field and geometry:
energies and forces to 1e-6 relative, frequencies from OpenMM's
finite-difference Hessian to 0.1 cm^-1, and the serialised System XML read
back by plain OpenMM.
"""

from __future__ import annotations

import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import jax
import numpy as np
import pytest

import q2jax.energy as qe
from q2jax import ForceField, Molecule
from q2jax.adapters.openmm import (
    FAMILIES,
    OpenMMEngine,
    read_system_xml,
    to_openmm_system,
    write_system_xml,
)
from q2jax.errors import EngineError, InputError, Q2JaxError
from q2jax.params import canonical_key
from q2jax.system import build_system, pad_system
from q2jax.units import ANGSTROM_TO_NM, KJ_TO_KCAL
from q2jax.vibrations import frequencies

openmm = pytest.importorskip("openmm", reason="OpenMM is not installed")

ALL_FAMILIES = (
    "bond", "angle", "torsion", "improper", "stretch_bend", "vdw", "charge", "urey_bradley",
)
FORMS = ("harmonic", "mm3")
REL = 1e-6

# q2jax's JAX reference runs on systems padded to one common size (per form), so the
# whole file compiles its energy+gradient and its Hessian once per form.
# (atoms, parameters, term counts): one size for energies/gradients (up to Rh-enamide),
# a small one for Hessians (CH3F, ethane, propanal).
PAD = {
    "energy": (40, 1000, {"bond": 48, "angle": 120, "torsion": 200, "improper": 16, "sb": 120,
                          "pair": 780, "bb": 400, "ts": 200}),
    "hessian": (10, 200, {"bond": 10, "angle": 16, "torsion": 16, "improper": 2, "sb": 16,
                          "pair": 24, "bb": 48, "ts": 16}),
}


def _value_and_grad(fp, x, terms, form, settings):
    def total(y):
        comps = qe.energy_components(fp, y, terms, form, settings)
        return sum(comps.values()), comps

    (e, comps), g = jax.value_and_grad(total, has_aux=True)(x)
    return e, comps, g


# cheaper XLA compilation (the reference functions run a handful of times each)
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
_jax_value_and_grad = jax.jit(_value_and_grad, static_argnums=(3, 4),
                              compiler_options=_FAST_COMPILE)
_jax_hessian = jax.jit(qe.hessian, static_argnums=(3, 4), compiler_options=_FAST_COMPILE)
_jax_frequencies = jax.jit(frequencies, static_argnums=3)


# --- molecules -------------------------------------------------------------------------------


def _read_xyz(path):
    lines = path.read_text().splitlines()
    n = int(lines[0])
    rows = [line.split() for line in lines[2 : 2 + n]]
    return [r[0] for r in rows], np.array([[float(v) for v in r[1:4]] for r in rows])


def _read_mol2(path):
    """Symbols, coordinates, atom types and bonds from a Tripos mol2 file (minimal)."""
    text = path.read_text()
    atoms = text.split("@<TRIPOS>ATOM")[1].split("@<TRIPOS>")[0].split("\n")
    bonds = text.split("@<TRIPOS>BOND")[1].split("@<TRIPOS>")[0].split("\n")
    atoms = [a.split() for a in atoms if a.strip()]
    bonds = [b.split() for b in bonds if b.strip()]
    symbols = [a[1].rstrip("0123456789") for a in atoms]
    coords = np.array([[float(v) for v in a[2:5]] for a in atoms])
    return symbols, coords, [a[5] for a in atoms], [(int(b[1]) - 1, int(b[2]) - 1) for b in bonds]


def _zmatrix(rows):
    """Cartesians (Å) from (bond atom, r, angle atom, θ deg, dihedral atom, φ deg) rows."""
    xyz = [np.zeros(3)]
    for n, (a, r, b, theta, c, phi) in enumerate(rows, start=1):
        t, p = np.radians(theta or 0.0), np.radians(phi or 0.0)
        if n == 1:
            xyz.append(np.array([r, 0.0, 0.0]))
            continue
        ref = xyz[c] if n > 2 else xyz[b] + np.array([0.0, 1.0, 0.0])
        bc = xyz[a] - xyz[b]
        bc /= np.linalg.norm(bc)
        nrm = np.cross(xyz[b] - ref, bc)
        nrm /= np.linalg.norm(nrm)
        m = np.cross(nrm, bc)
        d = np.array([-r * np.cos(t), r * np.sin(t) * np.cos(p), r * np.sin(t) * np.sin(p)])
        xyz.append(xyz[a] + d[0] * bc + d[1] * m + d[2] * nrm)
    return np.array(xyz)


DATA = Path(__file__).resolve().parents[2] / "q2jax" / "data"


@lru_cache
def molecule(name: str) -> Molecule:
    if name == "ch3f":
        symbols, xyz = _read_xyz(DATA / "ch3f" / "ch3f-optimized.xyz")
        return Molecule.from_arrays(symbols, xyz, name="ch3f")
    if name == "ethane":
        symbols, xyz, types, bonds = _read_mol2(DATA / "ethane-gs" / "GS.mol2")
        return Molecule.from_arrays(symbols, xyz, bonds=bonds, atom_types=types, name="ethane")
    if name == "propanal":
        # sp2 carbonyl carbon (out-of-plane term) and 1-5 pairs (unscaled nonbonded)
        xyz = _zmatrix([
            (0, 1.21, None, None, None, None),  # 1 O on the carbonyl C (atom 0)
            (0, 1.51, 1, 124.0, None, None),  # 2 alpha C
            (0, 1.11, 1, 121.0, 2, 180.0),  # 3 aldehyde H
            (2, 1.53, 0, 112.0, 1, 10.0),  # 4 methyl C
            (2, 1.10, 0, 109.0, 4, 120.0),  # 5, 6 alpha H
            (2, 1.10, 0, 109.0, 4, -120.0),
            (4, 1.09, 2, 110.0, 0, 175.0),  # 7, 8, 9 methyl H
            (4, 1.09, 2, 110.0, 7, 120.0),
            (4, 1.09, 2, 110.0, 7, -120.0),
        ])
        symbols = ["C", "O", "C", "H", "C", "H", "H", "H", "H", "H"]
        types = ["C2", "O2", "C3", "H1", "C3", "HC", "HC", "HC", "HC", "HC"]
        return Molecule.from_arrays(symbols, xyz, atom_types=types, name="propanal")
    raise KeyError(name)


@lru_cache
def rh_enamide():
    """The Rh-enamide set with the published MM3* force field (Q2MM's final .fld)."""
    from q2jax.rh_enamide import load_rh_enamide_set

    return load_rh_enamide_set("final")


# --- force fields with every family switched on ---------------------------------------------

_RANGES = {
    "bond_k": (300.0, 700.0),
    "angle_k": (40.0, 100.0),
    "torsion_v1": (-2.0, 2.0),
    "torsion_v2": (-2.0, 2.0),
    "torsion_v3": (-2.0, 2.0),
    "improper_k": (10.0, 40.0),
    "stretch_bend_k": (-20.0, 20.0),
    "vdw_radius": (1.5, 2.0),
    "vdw_epsilon": (0.02, 0.1),
    "charge": (-0.4, 0.4),
    "ub_k": (5.0, 30.0),
}


def _with_cross_terms(ff: ForceField, mol: Molecule, rng) -> ForceField:
    """``ff`` plus MM3's bend-bend (every angle type), torsion-stretch (every torsion
    type) and one pair-specific vdW line (the first nonbonded pair's types)."""
    topo = mol.topology()
    t = mol.atom_types
    rows = [(e.kind, e.key, v) for e, v in zip(ff.entries, np.asarray(ff.full_params()),
                                                 strict=False)]
    angles = {canonical_key("angle", tuple(t[i] for i in a)) for a in topo.angles}
    rows += [("bend_bend_k", key, rng.uniform(0.5, 3.0)) for key in sorted(angles)]
    tors = {canonical_key("torsion", tuple(t[i] for i in a)) for a in topo.torsions}
    rows += [("torsion_stretch_k", key, rng.uniform(0.2, 2.0)) for key in sorted(tors)]
    if len(topo.pairs):
        i, j = topo.pairs[0]
        rows += [("vdw_pair_rstar", (t[i], t[j]), rng.uniform(3.0, 4.0)),
                 ("vdw_pair_epsilon", (t[i], t[j]), rng.uniform(0.02, 0.05))]
    return ForceField.from_entries(rows, form=ff.form, settings=ff.settings)


def all_family_ff(mol: Molecule, form: str, seed: int = 0) -> ForceField:
    """Equilibrium values from the geometry, every other value random and nonzero;
    MM3's bend-bend, torsion-stretch and a pair-specific vdW line included."""
    ff = ForceField.from_molecules([mol], form, families=ALL_FAMILIES)
    rng = np.random.default_rng(seed)
    vals = np.asarray(ff.params).copy()
    for i, e in enumerate(ff.trainable_entries):
        if e.kind in _RANGES:
            vals[i] = rng.uniform(*_RANGES[e.kind])
        elif e.kind == "angle_eq":
            vals[i] = vals[i] - rng.uniform(1.0, 4.0)
        elif e.kind in ("bond_eq", "ub_eq"):
            vals[i] = vals[i] + rng.uniform(-0.03, 0.03)
    return _with_cross_terms(ff.with_params(vals), mol, rng)


def distorted(mol: Molecule, seed: int, scale: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(100 + seed)
    return np.asarray(mol.coords) + rng.normal(scale=scale, size=(mol.n_atoms, 3))


def _padded(ff: ForceField, mol: Molecule, x, size: str, system=None):
    """(full params, coordinates, term tables) of q2jax's System (default
    ``build_system(ff, mol)``), padded to ``PAD[size]`` (extra parameters are
    zeros after the zero slot; padded atoms and terms are masked)."""
    n_atoms, n_params, sizes = PAD[size]
    system = build_system(ff, mol) if system is None else system
    system = pad_system(system, n_atoms, sizes, ff.zero_slot)
    xp = np.concatenate([np.asarray(x, np.float64), np.asarray(system.coords)[mol.n_atoms :]])
    fp = np.asarray(ff.full_params())
    fp = np.concatenate([fp, np.zeros(n_params - fp.size)])
    return fp, xp, system.terms


def jax_reference(ff: ForceField, mol: Molecule, x, system=None):
    """q2jax energy (kcal/mol), gradient (kcal/(mol Å)) and per-family energies at ``x``."""
    fp, xp, terms = _padded(ff, mol, x, "energy", system)
    e, comps, g = _jax_value_and_grad(fp, xp, terms, ff.form, ff.settings)
    return float(e), np.asarray(g)[: mol.n_atoms], {k: float(v) for k, v in comps.items()}


def jax_hessian(ff: ForceField, mol: Molecule, x) -> np.ndarray:
    """q2jax Cartesian Hessian, kcal/(mol Å^2), (3n, 3n)."""
    fp, xp, terms = _padded(ff, mol, x, "hessian")
    n3 = 3 * mol.n_atoms
    return np.asarray(_jax_hessian(fp, xp, terms, ff.form, ff.settings))[:n3, :n3]


@pytest.fixture(scope="module")
def engine() -> OpenMMEngine:
    return OpenMMEngine()


def _check_agreement(engine, ff, mol, x, system=None):
    e_ref, g_ref, comps_ref = jax_reference(ff, mol, x, system)
    terms = None if system is None else system.terms
    e, g = engine.energy_and_gradient(ff, mol, x, terms=terms)
    comps = engine.energy_components(ff, mol, x, terms=terms)
    scale = sum(abs(v) for v in comps_ref.values())
    for fam, value in comps.items():
        assert value == pytest.approx(comps_ref[fam], rel=REL, abs=REL * scale), fam
    assert e == pytest.approx(e_ref, rel=REL)
    assert np.abs(g - g_ref).max() <= REL * np.abs(g_ref).max()
    return comps


# --- energies and forces ---------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", ["ch3f", "ethane", "propanal"])
def test_energy_and_forces_match_jax(engine, name, form):
    mol = molecule(name)
    ff = all_family_ff(mol, form)
    seen = set()
    for seed in range(3):
        comps = _check_agreement(engine, ff, mol, distorted(mol, seed))
        seen |= {k for k, v in comps.items() if abs(v) > 1e-3}
    expected = {"stretch", "bend", "stretch_bend", "bend_bend"}
    if name != "ch3f":
        expected |= {"torsion", "vdw", "electrostatic", "torsion_stretch"}
    if name == "propanal":
        expected |= {"out_of_plane"}
    assert expected <= seen


@pytest.mark.parametrize("form", FORMS)
def test_rh_enamide_energy_and_forces_match_jax(engine, form):
    mol = rh_enamide().molecules[0]
    ff = all_family_ff(mol, form, seed=3)
    comps = _check_agreement(engine, ff, mol, distorted(mol, 7, scale=0.02))
    assert set(FAMILIES) <= {k for k, v in comps.items() if abs(v) > 1e-3}


@pytest.mark.parametrize("k", [0, 1])
def test_rh_enamide_published_mm3_force_field(engine, tmp_path, k):
    """The published MM3* force field with its own MacroModel term tables
    (q2jax.io.mm3_assign): every family, bend-bend and torsion-stretch included
    (structure 2), reduced hydrogen sites as OpenMM virtual sites (the bridging
    hydride's forming C...H bond and bends included), the C3-H1 pair line, the
    van der Waals taper; OpenMM engine and plain OpenMM on the System XML."""
    rh = rh_enamide()
    mol, system, ff = rh.molecules[k], rh.mm3.systems[k], rh.forcefield
    x = distorted(mol, 8, scale=0.01)
    for xx in (np.asarray(mol.coords), x):
        comps = _check_agreement(engine, ff, mol, xx, system)
    want = {"stretch", "bend", "torsion", "stretch_bend", "vdw", "electrostatic", "bend_bend"}
    assert want | ({"torsion_stretch"} if k else set()) <= {
        f for f, v in comps.items() if abs(v) > 1e-4}
    moved = np.asarray(system.terms.atom_site_parent) != np.arange(mol.n_atoms)
    path = write_system_xml(ff, mol, tmp_path / "rh.system.xml", terms=system.terms)
    plain = openmm.XmlSerializer.deserialize(path.read_text())
    assert plain.getNumParticles() == mol.n_atoms + moved.sum()
    assert _plain_openmm_energy(plain, x) == pytest.approx(jax_reference(ff, mol, x, system)[0],
                                                           rel=REL)


# --- Hessians, frequencies, minimisation -----------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", ["ch3f", "ethane", "propanal"])
def test_frequencies_match_jax(engine, name, form):
    mol = molecule(name)
    ff = all_family_ff(mol, form, seed=1)
    x, max_force = engine.minimize(ff, mol, distorted(mol, 5, scale=0.02), tolerance=1e-5)
    assert max_force < 1e-5
    assert np.abs(jax_reference(ff, mol, x)[1]).max() < 1e-5  # stationary for q2jax too
    h_jax = jax_hessian(ff, mol, x)
    h_omm = engine.hessian(ff, mol, x)
    assert np.abs(h_omm - h_jax).max() < 1e-5 * np.abs(h_jax).max()
    masses = np.asarray(mol.masses)
    nu_jax = np.asarray(_jax_frequencies(h_jax, x, masses, mol.n_vibrations))
    nu_omm = engine.frequencies(ff, mol, x)
    assert nu_omm.shape == (mol.n_vibrations,)
    assert np.all(nu_jax > 0.0)
    assert np.abs(nu_omm - nu_jax).max() < 0.1


def test_linear_sn2_transition_state_frequencies(engine):
    """F-C-F at 180° (SN2 TS, F-C-H at 90°): OpenMM's angle() and q2jax's smooth
    deviation square give the same Hessian, and the E' pair stays degenerate.

    (With a reference angle a hair below 180° the energy is a cusped "hat" on a
    1e-6 Å scale that no finite-difference step resolves; use exactly 180°.)
    """
    symbols, xyz = _read_xyz(DATA / "sn2-ts" / "sn2-ts-optimized.xyz")
    mol = Molecule.from_arrays(symbols, xyz, name="sn2-ts", bond_tolerance=1.5)
    for form in FORMS:
        ff = ForceField.from_molecules([mol], form)
        ff = ff.with_values({("angle_eq", ("F", "C", "F")): 180.0})
        h_jax = jax_hessian(ff, mol, xyz)
        masses = np.asarray(mol.masses)
        nu_jax = np.asarray(_jax_frequencies(h_jax, xyz, masses, mol.n_vibrations))
        nu_omm = engine.frequencies(ff, mol, xyz)
        assert np.abs(nu_omm - nu_jax).max() < 0.1, form
        assert nu_jax[1] - nu_jax[0] < 0.01  # degenerate bend pair


# --- System XML and Topology -----------------------------------------------------------------


def _plain_openmm_energy(system, x_angstrom) -> float:
    """Energy (kcal/mol) from plain OpenMM: atoms at ``x``, virtual sites computed."""
    platform = openmm.Platform.getPlatformByName("Reference")
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), platform)
    extra = system.getNumParticles() - x_angstrom.shape[0]
    x_nm = np.concatenate([x_angstrom, np.zeros((extra, 3))]) * ANGSTROM_TO_NM
    ctx.setPositions(openmm.unit.Quantity(x_nm, openmm.unit.nanometer))
    ctx.computeVirtualSites()
    e = ctx.getState(getEnergy=True).getPotentialEnergy()
    return e.value_in_unit(openmm.unit.kilojoule_per_mole) * KJ_TO_KCAL


@pytest.mark.parametrize(("name", "form"), [("ethane", "harmonic"), ("propanal", "mm3")])
def test_system_xml_in_plain_openmm(tmp_path, name, form):
    mol = molecule(name)
    ff = all_family_ff(mol, form, seed=2)
    path = write_system_xml(ff, mol, tmp_path / f"{name}.system.xml")
    system = openmm.XmlSerializer.deserialize(path.read_text())
    assert system.getNumParticles() == mol.n_atoms
    masses = [system.getParticleMass(i).value_in_unit(openmm.unit.dalton)
              for i in range(mol.n_atoms)]
    np.testing.assert_allclose(masses, np.asarray(mol.masses), rtol=1e-12)
    for x in (np.asarray(mol.coords), distorted(mol, 11)):
        e_ref = jax_reference(ff, mol, x)[0]
        assert _plain_openmm_energy(system, x) == pytest.approx(e_ref, rel=REL)
    assert read_system_xml(path).getNumForces() == system.getNumForces()


def test_topology_keeps_atom_order_and_bonds():
    mol = molecule("propanal")
    system, top = to_openmm_system(all_family_ff(mol, "harmonic"), mol)
    assert [a.element.symbol for a in top.atoms()] == list(mol.symbols)
    bonds = {tuple(sorted((b[0].index, b[1].index))) for b in top.bonds()}
    assert bonds == set(mol.bonds)
    groups = {f.getForceGroup() for f in system.getForces()}
    assert groups == set(range(len(FAMILIES)))


# --- parameter updates in place, timings -----------------------------------------------------


def test_new_values_update_the_cached_context():
    mol = molecule("ethane")
    eng = OpenMMEngine()
    ff1 = all_family_ff(mol, "mm3", seed=4)
    ff2 = all_family_ff(mol, "mm3", seed=5)
    x = distorted(mol, 3)
    ctx = eng.context(ff1, mol)
    e1 = eng.energy(ff1, mol, x)
    e2 = eng.energy(ff2, mol, x)
    assert eng.context(ff2, mol) is ctx  # same structure: no rebuild
    assert e1 == pytest.approx(jax_reference(ff1, mol, x)[0], rel=REL)
    assert e2 == pytest.approx(jax_reference(ff2, mol, x)[0], rel=REL)
    assert abs(e2 - e1) > 1e-3
    # trainable vector passed directly (the SciPy path)
    assert eng.energy(ff1, mol, x, params=ff2.params) == pytest.approx(e2, rel=1e-12)
    # another structure gets its own Context
    assert eng.context(ff1.with_form("harmonic"), mol) is not ctx


def test_timings_report_every_evaluation_kind():
    """The timing helper reports energy, gradient and Hessian wall times (ms, warm
    Context). How fast they are is a benchmark's business, not a test's: a hard
    limit here fails on a loaded machine and proves nothing about correctness."""
    mol = molecule("ch3f")
    t = OpenMMEngine().timings(all_family_ff(mol, "harmonic"), mol, repeats=3)
    assert set(t) == {"energy_ms", "gradient_ms", "hessian_ms"}
    assert all(np.isfinite(v) and v > 0 for v in t.values())


# --- errors ----------------------------------------------------------------------------------


def test_importing_the_adapter_loads_no_engine():
    code = ("import sys, q2jax.adapters, q2jax.adapters.openmm; "
            "print('openmm' in sys.modules, 'scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_missing_openmm_is_an_engine_error(monkeypatch):
    mol = molecule("ch3f")
    monkeypatch.setitem(sys.modules, "openmm", None)
    with pytest.raises(EngineError, match="OpenMM is not installed"):
        to_openmm_system(all_family_ff(mol, "harmonic"), mol)


def test_bad_input_raises_q2jax_errors(engine, tmp_path):
    mol = molecule("ch3f")
    ff = all_family_ff(mol, "harmonic")
    with pytest.raises(InputError, match="expected \\(5, 3\\)"):
        engine.energy(ff, mol, np.zeros((4, 3)))
    with pytest.raises(InputError, match="NaN"):
        engine.energy(ff, mol, np.full((5, 3), np.nan))
    with pytest.raises(InputError, match="parameters"):
        engine.energy(ff, mol, params=np.zeros(3))
    with pytest.raises(EngineError, match="platform"):
        OpenMMEngine(platform="NoSuchPlatform").energy(ff, mol)
    bad = tmp_path / "bad.xml"
    bad.write_text("<System nonsense")
    with pytest.raises(InputError, match="bad.xml"):
        read_system_xml(bad)
    with pytest.raises(InputError, match="no such"):
        read_system_xml(tmp_path / "absent.xml")
    other_form = ForceField(ff.params, ff.fixed, ff.entries, "amoeba", ff.settings)
    with pytest.raises(EngineError, match="amoeba"):
        to_openmm_system(other_form, mol)
    ethane = molecule("ethane")
    with pytest.raises(InputError, match="term tables are for 5 atoms"):
        to_openmm_system(ff, ethane, terms=build_system(ff, mol).terms)
    with pytest.raises(Q2JaxError, match="no parameters"):
        to_openmm_system(ff, ethane)
    # overlapping atoms under an attractive term: a non-finite number is an error, not a result
    lj = all_family_ff(ethane, "harmonic")
    x = np.asarray(ethane.coords).copy()
    x[0] = x[6]
    with pytest.raises(EngineError, match="non-finite"):
        engine.energy(lj, ethane, x)
