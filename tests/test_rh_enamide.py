"""The Rh-enamide set: 182 parameters, Hessians in internal units, and the MM3*
assignment and energies checked term by term against MacroModel's own
printout (rh_enamide_training_set.mmo: the force-field line, constants and
energy of every stretch, bend, torsion and improper MacroModel used, its
point charges and non-bonded constants)."""

from __future__ import annotations

import gzip
import re
import shutil
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from q2jax.energy import energy, hessian
from q2jax.errors import ParameterError, ParseError
from q2jax.io.jaguar import read_jaguar_out
from q2jax.io.macromodel import read_mae_all
from q2jax.io.mm3_assign import assign_parameters, build_mm3_forcefield
from q2jax.io.mm3_fld import read_fld
from q2jax.rh_enamide import (
    RH_ENAMIDE_DIR,
    load_rh_enamide,
    load_rh_enamide_set,
    read_mae_bond_orders,
)
from q2jax.terms import (
    bend_deviation,
    dihedrals,
    distances,
    fourier_torsion,
    mm3_bend,
    mm3_stretch,
    stretch_bend,
)
from q2jax.units import DEG_TO_RAD, KCAL_TO_KJ
from q2jax.vibrations import frequencies

SET = RH_ENAMIDE_DIR / "rh_enamide_training_set"
N_ATOMS = (36, 38, 38, 62, 62, 58, 58, 58, 58)


def _mmo_blocks():
    """Per structure: {'stretch'|'bend'|'torsion'|'improper': {atoms: (ff line, kJ/mol)},
    'charges': [...], 'pairs': {(i, j): (r*, eps)}, 'energy': {component: kJ/mol}}."""
    text = gzip.open(SET / "rh_enamide_training_set.mmo.gz", "rt").read().split("\n")
    blocks, cur, sec = [], None, None
    heads = {"BOND LENGTHS AND STRETCH": "stretch", "ANGLES, BEND AND STRETCH": "bend",
             "BEND-BEND ANGLES": None, "DIHEDRAL ANGLES AND TORSIONAL ENERGIES": "torsion",
             "Improper torsion interactions": "improper", "TORSIONAL CROSS-TERMS": None,
             "NONBONDED DISTANCES": "pairs", "Atomic Charges, Coordinates": "charges"}
    for line in text:
        hit = next((v for k, v in heads.items() if k in line), "none")
        if hit != "none":
            if hit == "stretch":
                cur = {"stretch": {}, "bend": {}, "torsion": {}, "improper": {}, "pairs": {},
                       "charges": [], "energy": {}}
                blocks.append(cur)
            sec = hit
            continue
        m = re.match(r"\s+([A-Za-z -]+):\s+(-?[\d.]+) kJ/mol", line)
        if cur is not None and m:
            cur["energy"][m.group(1).strip()] = float(m.group(2))
            continue
        t = line.split()
        if cur is None or sec is None or not t or not t[0].isdigit():
            if sec == "charges" and re.match(r"\s*\S\S? \(\s*\d+\)", line):
                cur["charges"].append(float(line.split(")")[1].split()[0]))
            continue
        n = {"stretch": 2, "bend": 3, "torsion": 4, "improper": 4}.get(sec)
        if n:
            energy_col = {"stretch": 5, "bend": 7, "torsion": 8, "improper": 8}[sec]
            cur[sec][tuple(int(x) - 1 for x in t[:n])] = (int(t[-1]), float(t[energy_col]))
        elif sec == "pairs" and len(t) == 8:
            cur["pairs"][(int(t[0]) - 1, int(t[1]) - 1)] = (float(t[2]), float(t[3]))
    return blocks


@pytest.fixture(scope="module")
def mmo():
    return _mmo_blocks()


@pytest.fixture(scope="module")
def final():
    return load_rh_enamide_set("final")


@pytest.fixture(scope="module")
def start():
    return load_rh_enamide_set("start")


@pytest.fixture(scope="module")
def macromodel(final):
    """The nine structures under mm3.fld, the file MacroModel's .mmo was run with
    (its Rh sections hold the published values; line numbers are the .mmo's)."""
    fld = read_fld(RH_ENAMIDE_DIR / "mm3.fld")
    orders = read_mae_bond_orders(SET / "rh_enamide_training_set.mae")
    mols = final.molecules
    assignments = [assign_parameters(fld, m, o) for m, o in zip(mols, orders, strict=True)]
    return SimpleNamespace(fld=fld, orders=orders, molecules=mols,
                           model=build_mm3_forcefield(fld, mols, assignments))


def _bend_key(a):
    return (min(a[0], a[2]), a[1], max(a[0], a[2]))


def test_q2mm_parameter_count_is_182(start, final):
    for s in (start, final):
        ff = s.forcefield
        assert ff.n_params == 182
        kinds = {}
        for e in ff.trainable_entries:
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
        assert kinds == {"bond_k": 8, "bond_eq": 8, "angle_k": 23, "angle_eq": 23,
                         "torsion_v1": 16, "torsion_v2": 16, "torsion_v3": 16,
                         "vdw_radius": 36, "vdw_epsilon": 36}
        assert ff.form == "mm3"
    labels = start.forcefield.get_param_type_labels()
    assert "bond C2:5-HX:4 k" in labels and "angle O2:9a-RH:2a-PX:3a eq" in labels
    # values in q2jax units: start k = 0.5 mdyn/A -> 35.97 kcal/(mol A^2); final 21.9463
    assert start.forcefield.value("bond_k", ("HX:4", "C2:5")) == pytest.approx(0.5 * 71.94)
    assert final.forcefield.value("bond_k", ("HX:4", "C2:5")) == pytest.approx(21.9463 * 71.94)
    assert final.forcefield.value("bond_eq", ("HX:4", "C2:5")) == 1.7492
    used = load_rh_enamide_set("seminario", parameters="used").forcefield
    assert used.n_params == 96  # the OPT values the nine structures actually use


def test_structures_and_hessians_in_internal_units(final):
    ff, molecules, qm = load_rh_enamide("final")
    assert ff.n_params == 182
    assert tuple(m.n_atoms for m in molecules) == N_ATOMS
    assert all(m.charge == 1 and m.atom_types[0] == "RH" for m in molecules)
    for m, q in zip(molecules, qm, strict=True):
        assert q.hessian.shape == (3 * m.n_atoms,) * 2
        assert np.allclose(q.hessian, q.hessian.T)
        assert q.source_units["hessian"] == "hartree/bohr2"
    # kcal/(mol A^2): the Hessian's frequencies are the ones Jaguar printed
    m, q = molecules[0], qm[0]
    nu = np.asarray(frequencies(jnp.asarray(q.hessian), m.coords, m.masses, m.n_vibrations))
    printed = read_jaguar_out(SET / "jaguar_spe_freq_in_out" / "1ZDMPfromJCTCSI_loner1.out.gz")
    assert printed.frequencies[0] == pytest.approx(-705.89)  # a transition state
    assert np.max(np.abs(nu - np.sort(printed.frequencies))) < 0.05


def test_assignment_is_macromodels(macromodel, mmo):
    """Every stretch, bend, torsion and improper of the nine structures gets the
    .fld line MacroModel used (its .mmo names the line), and the point charges
    from bond dipoles are MacroModel's."""
    fld = macromodel.fld
    for a, blk in zip(macromodel.model.assignments, mmo, strict=True):
        def line(rec):  # MacroModel names a continued line by its continuation line
            p = fld.record(rec.line)
            return p.continuation_line or p.line

        mine = {tuple(sorted(s.atoms)): line(s) for s in a.stretches}
        assert mine == {tuple(sorted(k)): v[0] for k, v in blk["stretch"].items()}
        assert {_bend_key(b.atoms): line(b) for b in a.bends} == {
            _bend_key(k): v[0] for k, v in blk["bend"].items()}
        nonzero = {min(t.atoms, t.atoms[::-1]): line(t) for t in a.torsions
                   if any(fld.record(t.line).values)}
        assert nonzero == {min(k, k[::-1]): v[0] for k, v in blk["torsion"].items()}
        assert {i.atoms: line(i) for i in a.impropers} == {k: v[0] for k, v in
                                                            blk["improper"].items()}
        assert np.max(np.abs(a.charges - np.asarray(blk["charges"]))) < 6e-4
        assert a.charges.sum() == pytest.approx(1.0, abs=1e-9)


def test_vdw_rows_are_macromodels(macromodel, mmo):
    """With RH using the Z0 row (as MacroModel's atom.typ does), every pair
    constant r* = r_i + r_j, eps = sqrt(eps_i eps_j) is MacroModel's, except
    MM3's special C3-H1 pair (3.56 A, 0.023 kcal/mol) and long-range pairs
    (beyond ~6.5 A), whose eps MacroModel tapers to zero at its 8 A cut-off. q2jax models
    neither the special pair nor the cut-off."""
    fld = macromodel.fld
    for k in (0, 3, 5):
        molecule = macromodel.molecules[k]
        a = assign_parameters(fld, molecule, macromodel.orders[k], vdw_aliases={"RH": "Z0"})
        rows = [fld.record(line) for line in a.vdw_rows]
        x = np.asarray(molecule.coords)
        assert {tuple(p) for p in a.pairs} >= set(mmo[k]["pairs"])
        tapered = 0
        for (i, j), (rstar, eps) in mmo[k]["pairs"].items():
            r, e = rows[i].radius + rows[j].radius, np.sqrt(rows[i].epsilon * rows[j].epsilon)
            if {molecule.atom_types[i], molecule.atom_types[j]} == {"C3", "H1"}:
                r, e = 3.56, 0.023
            if abs(e - eps) > 2e-4:
                assert np.linalg.norm(x[i] - x[j]) > 6.0 and eps < e, (k, i, j)
                tapered += 1
                continue
            assert abs(r - rstar) < 1e-3, (k, i, j)
        assert tapered < 0.5 * len(mmo[k]["pairs"])


def _mae_coords():
    return [np.asarray(q.coords) for q in read_mae_all(SET / "rh_enamide_training_set.mae",
                                                         atom_typ=RH_ENAMIDE_DIR / "atom.typ")]


def _term_energies(p, x, t):
    """Per-term energies (kJ/mol) of one padded system: stretch, torsion
    (propers then impropers), bend, stretch-bend, and the bend deviation."""
    es = mm3_stretch(distances(x, t.bond_atoms, t.bond_mask), p[t.bond_params[:, 0]],
                     p[t.bond_params[:, 1]])
    tp = t.torsion_params
    et = fourier_torsion(dihedrals(x, t.torsion_atoms, t.torsion_mask), p[tp[:, 0]], p[tp[:, 1]],
                         p[tp[:, 2]])
    d, d2 = bend_deviation(x, t.angle_atoms, t.angle_mask, p[t.angle_params[:, 1]] * DEG_TO_RAD)
    eb = mm3_bend(d, d2, p[t.angle_params[:, 0]])
    sb, sp = t.sb_atoms, t.sb_params
    dth, _ = bend_deviation(x, sb, t.sb_mask, p[sp[:, 3]] * DEG_TO_RAD)
    esb = stretch_bend(distances(x, sb[:, :2], t.sb_mask) - p[sp[:, 1]],
                       distances(x, sb[:, 1:], t.sb_mask) - p[sp[:, 2]], dth, p[sp[:, 0]])
    esb = jnp.sum(jnp.where(t.sb_mask, esb, 0.0))
    return tuple(KCAL_TO_KJ * e for e in (es, et, eb, esb)) + (d,)


def test_term_energies_are_macromodels(macromodel, mmo):
    """q2jax's MM3 terms with the assigned parameters reproduce MacroModel's
    per-interaction energies (kJ/mol, printed to 1e-3) at MacroModel's
    coordinates, all nine structures: every stretch but the forming C...H
    bond, every torsion and improper, the stretch-bend total, and every bend
    within 10 degrees of its ideal value that does not involve the bridging
    hydride."""
    model = macromodel.model
    batch = model.batch()
    xyz = np.asarray(batch.coords).copy()
    for k, c in enumerate(_mae_coords()):
        xyz[k, : len(c)] = c
    p = model.forcefield.full_params()
    es, et, eb, esb, dev = (np.asarray(a) for a in jax.jit(jax.vmap(
        lambda x, t: _term_energies(p, x, t)))(jnp.asarray(xyz), batch.terms))
    for k, (s, a, blk) in enumerate(zip(model.systems, model.assignments, mmo, strict=True)):
        t = s.terms
        skipped = 0
        for n, (i, j) in enumerate(np.asarray(t.bond_atoms)):
            line, ref = blk["stretch"].get((i, j)) or blk["stretch"][(j, i)]
            if line == 1866:  # MacroModel's energies imply r0 = 1.608, not the file's 1.7492
                skipped += 1
                continue
            assert es[k, n] == pytest.approx(ref, abs=1.5e-3, rel=2e-4), (k, i, j)
        assert skipped == 1
        proper = {min(q, q[::-1]): v[1] for q, v in blk["torsion"].items()}
        improper = {q: v[1] for q, v in blk["improper"].items()}
        for n, q in enumerate(map(tuple, np.asarray(t.torsion_atoms))):
            ref = proper.get(min(q, q[::-1]), 0.0) if n < len(a.torsions) else improper[q]
            assert et[k, n] == pytest.approx(ref, abs=1.5e-3), (k, q)
        n_tors = t.torsion_atoms.shape[0]
        assert float(np.sum(et[k, :n_tors])) == pytest.approx(
            blk["energy"]["Proper torsion"] + blk["energy"]["Out-of-plane"], abs=0.05)
        bends = {_bend_key(b): v[1] for b, v in blk["bend"].items()}
        hydride = 17  # H18 bridges Rh and C (MacroModel bends it at its reduced position)
        checked = 0
        for n, q in enumerate(map(tuple, np.asarray(t.angle_atoms))):
            if hydride in q or abs(np.degrees(dev[k, n])) > 10.0:
                continue
            assert eb[k, n] == pytest.approx(bends[_bend_key(q)], abs=1.5e-3, rel=2e-3), (k, q)
            checked += 1
        assert checked > 0.75 * t.angle_atoms.shape[0]
        # stretch-bend: one constant for both bonds (MacroModel's S-B 1)
        assert esb[k] == pytest.approx(blk["energy"]["Stretch-bend"], abs=2e-3)


def test_published_force_fields_at_the_qm_geometry(start, final):
    """Energies and frequencies of all nine structures at the QM geometry
    under the published start and final force fields, as one padded batch:
    finite, right shapes. (The QM geometry is no MM minimum: imaginary MM
    modes are expected; the honest figure needs relaxation.)"""
    n_max = max(N_ATOMS)
    settings = start.forcefield.settings

    @jax.jit
    def evaluate(fp, batch):
        def one(x, t, m, mask):
            h = hessian(fp, x, t, "mm3", settings)
            return energy(fp, x, t, "mm3", settings), frequencies(h, x, m, 3 * n_max - 6, mask)

        return jax.vmap(one)(batch.coords, batch.terms, batch.masses, batch.atom_mask)

    for s in (start, final):
        ff = s.forcefield
        e, nu = (np.asarray(a) for a in evaluate(ff.full_params(), s.mm3.batch()))
        assert e.shape == (9,) and np.all(np.isfinite(e))
        for k, m in enumerate(s.molecules):
            real = nu[k, : m.n_vibrations]
            assert np.all(np.isfinite(real)) and real[-1] > 2500.0  # C-H stretches are there
    for a, b in zip(start.mm3.systems, final.mm3.systems, strict=True):  # same terms, new values
        for name in ("bond_atoms", "angle_atoms", "torsion_atoms", "sb_atoms", "pair_atoms"):
            assert np.array_equal(getattr(a.terms, name), getattr(b.terms, name))


def test_write_back_reproduces_the_files(start, final):
    """start + final's trainable values, written into start.fld, give final's
    Rh sections; unchanged values reproduce start.fld byte for byte."""
    assert start.mm3.to_fld().text() == start.fld.text()
    fvals = dict(zip(final.forcefield.get_param_type_labels(),
                     np.asarray(final.forcefield.params), strict=True))
    moved = start.forcefield.with_params(
        jnp.asarray([fvals[lab] for lab in start.forcefield.get_param_type_labels()]))
    out = start.mm3.to_fld(moved)
    for sub in (16, 17):
        for i in out.substructures[sub].params:
            got = out.params[i]
            want = next(p for p in final.fld.params if p.substructure == sub
                        and (p.kind, p.atoms, p.alt) == (got.kind, got.atoms, got.alt))
            assert got.values == want.values


def test_bad_input_names_file_line_or_parameter(final, tmp_path):
    mol = final.molecules[0]
    orders = read_mae_bond_orders(SET / "rh_enamide_training_set.mae")[0]
    types = list(mol.atom_types)
    types[20] = "C9"
    with pytest.raises(ParameterError, match=r"no parameters for .*C921") as err:
        assign_parameters(final.fld, mol.with_atom_types(types), orders)
    assert "rh_hyd_enamide_final.fld" in str(err.value)
    broken = tmp_path / "broken.fld"
    text = (RH_ENAMIDE_DIR / "mm3.fld").read_text().split("\n")
    text[1865] = text[1865].replace("21.9463", "21.94x3")
    broken.write_text("\n".join(text))
    with pytest.raises(ParseError, match="non-numeric") as perr:
        read_fld(broken)
    assert perr.value.line == 1866 and perr.value.path == str(broken)
    bad_set = tmp_path / "set"
    shutil.copytree(RH_ENAMIDE_DIR, bad_set)
    mae = bad_set / "rh_enamide_training_set" / "rh_enamide_training_set.mae"
    mae.write_text(mae.read_text().replace("  7 2 3 2\n", "  7 2 3 x\n", 1))
    with pytest.raises(ParseError, match="bond order") as merr:
        load_rh_enamide_set("final", data_dir=bad_set)
    assert merr.value.path == str(mae)
