"""The Rh-enamide set: 182 parameters, Hessians in internal units, and q2jax's
MM3* checked against MacroModel's own printout (rh_enamide_training_set.mmo,
read by ``_rh_mmo``): the force-field line of every interaction, every
interaction's energy, every nonbonded pair's constants, distance and
energies, and the energy of every family of all nine structures under the
published start and final force fields."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _rh_mmo import FAMILIES, read_mmo, start_families

from q2jax.energy import energy, energy_components, hessian
from q2jax.errors import InputError, ParameterError, ParseError
from q2jax.io.jaguar import read_jaguar_out
from q2jax.io.macromodel import read_mae_all
from q2jax.io.mm3_assign import assign_parameters, build_mm3_forcefield
from q2jax.io.mm3_fld import read_fld
from q2jax.rh_enamide import (
    MACROMODEL_VDW_ALIASES,
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
    mm3_bend_bend,
    mm3_stretch,
    mm3_torsion_stretch,
    site_coordinates,
)
from q2jax.units import (
    COULOMB_KCAL_MOL_A,
    DEG_TO_RAD,
    KCAL_TO_KJ,
    MACROMODEL_DEBYE_PER_E_ANGSTROM,
)
from q2jax.vibrations import frequencies

SET = RH_ENAMIDE_DIR / "rh_enamide_training_set"
N_ATOMS = (36, 38, 38, 62, 62, 58, 58, 58, 58)


@pytest.fixture(scope="module")
def mmo():
    return read_mmo()


@pytest.fixture(scope="module")
def final():
    return load_rh_enamide_set("final")


@pytest.fixture(scope="module")
def start():
    return load_rh_enamide_set("start")


@pytest.fixture(scope="module")
def mae_coords():
    """MacroModel's coordinates (the .mae it read; Jaguar's differ by 5e-5 A)."""
    return [np.asarray(q.coords) for q in read_mae_all(SET / "rh_enamide_training_set.mae",
                                                         atom_typ=RH_ENAMIDE_DIR / "atom.typ")]


@pytest.fixture(scope="module")
def macromodel(final):
    """The nine structures under mm3.fld, the file MacroModel's .mmo was run with
    (its Rh sections hold the published values; line numbers are the .mmo's),
    assigned as MacroModel does (Rh on Z0's vdW row, charges mu / (4.803 r0))."""
    fld = read_fld(RH_ENAMIDE_DIR / "mm3.fld")
    orders = read_mae_bond_orders(SET / "rh_enamide_training_set.mae")
    mols = final.molecules
    assignments = [assign_parameters(fld, m, o, vdw_aliases=MACROMODEL_VDW_ALIASES,
                                     debye_per_e_angstrom=MACROMODEL_DEBYE_PER_E_ANGSTROM)
                   for m, o in zip(mols, orders, strict=True)]
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
        fixed = {e.kind for e in ff.entries[ff.n_params:]}
        assert {"bend_bend_k", "torsion_stretch_k", "vdw_pair_rstar", "charge"} <= fixed
    labels = start.forcefield.get_param_type_labels()
    assert "bond C2:5-HX:4 k" in labels and "angle O2:9a-RH:2a-PX:3a eq" in labels
    # values in q2jax units: start k = 0.5 mdyn/A -> 35.97 kcal/(mol A^2); final 21.9463
    assert start.forcefield.value("bond_k", ("HX:4", "C2:5")) == pytest.approx(0.5 * 71.94)
    assert final.forcefield.value("bond_k", ("HX:4", "C2:5")) == pytest.approx(21.9463 * 71.94)
    assert final.forcefield.value("bond_eq", ("HX:4", "C2:5")) == 1.7492
    assert final.forcefield.value("vdw_pair_rstar", ("C3", "H1")) == 3.56
    used = load_rh_enamide_set("seminario", parameters="used").forcefield
    assert used.n_params == 96  # the OPT values the nine structures actually use


def test_structures_and_hessians_in_internal_units():
    ff, molecules, qm = load_rh_enamide("final")
    assert ff.n_params == 182
    assert tuple(m.n_atoms for m in molecules) == N_ATOMS
    assert all(m.charge == 1 and m.atom_types[0] == "RH" for m in molecules)
    for m, q in zip(molecules, qm, strict=True):
        assert q.hessian.shape == (3 * m.n_atoms,) * 2
        assert np.allclose(q.hessian, q.hessian.T)
        assert q.source_units["hessian"] == "hartree/bohr2"
    # kcal/(mol A^2): every Hessian's frequencies are the ones Jaguar printed in its .out
    # (one vmapped eigensolve, the nine padded to the largest; padded atoms are masked)
    n = max(N_ATOMS)
    h = np.zeros((9, 3 * n, 3 * n))
    x, w, mask = np.zeros((9, n, 3)), np.ones((9, n)), np.zeros((9, n), bool)
    for i, (m, q) in enumerate(zip(molecules, qm, strict=True)):
        k = m.n_atoms
        h[i, : 3 * k, : 3 * k], x[i, :k], w[i, :k] = q.hessian, m.coords, m.masses
        mask[i, :k] = True
    n_vib = max(m.n_vibrations for m in molecules)
    nu = np.asarray(jax.jit(jax.vmap(lambda *a: frequencies(*a[:3], n_vib, a[3])))(
        *(jnp.asarray(a) for a in (h, x, w, mask))))
    outs = sorted((SET / "jaguar_spe_freq_in_out").glob("*.out.gz"))
    assert [p.name[0] for p in outs] == [str(i) for i in range(1, 10)]
    for i, (m, out) in enumerate(zip(molecules, outs, strict=True)):
        printed = np.sort(read_jaguar_out(out).frequencies)
        assert printed.shape == (m.n_vibrations,)
        assert np.max(np.abs(nu[i, : m.n_vibrations] - printed)) < 0.05, out.name
        if i == 0:
            assert printed[0] == pytest.approx(-705.89)  # a transition state


def test_assignment_is_macromodels(macromodel, mmo):
    """Every stretch, bend, torsion, improper, bend-bend pair and torsion-stretch of
    the nine structures is the one MacroModel used (with its .fld line where the
    .mmo names it), and the point charges from bond dipoles are MacroModel's."""
    fld = macromodel.fld
    for a, blk in zip(macromodel.model.assignments, mmo, strict=True):
        def line(rec):  # MacroModel names a continued line by its continuation line
            p = fld.record(rec.line)
            return p.continuation_line or p.line

        mine = {tuple(sorted(s.atoms)): line(s) for s in a.stretches}
        assert mine == {tuple(sorted(k)): v.line for k, v in blk.stretch.items()}
        assert {_bend_key(b.atoms): line(b) for b in a.bends} == {
            _bend_key(k): v.line for k, v in blk.bend.items()}
        nonzero = {min(t.atoms, t.atoms[::-1]): line(t) for t in a.torsions
                   if any(fld.record(t.line).values)}
        assert nonzero == {min(k, k[::-1]): v.line for k, v in blk.torsion.items()}
        assert {i.atoms: line(i) for i in a.impropers} == {k: v.line for k, v in
                                                            blk.improper.items()}
        kbb = {(x.atoms[1], frozenset((frozenset(x.atoms[::2]), frozenset(y.atoms[::2])))):
               fld.record(x.line).values[2] * fld.record(y.line).values[2]
               for x, y in a.bend_bends}
        assert kbb == pytest.approx({(q[0], frozenset((frozenset(q[1:3]), frozenset(q[3:5])))):
                                     v.k for q, v in blk.bend_bend.items()}, abs=1e-4)
        assert {min(t.atoms, t.atoms[::-1]) for t in a.torsion_stretches} == {
            min(k, k[::-1]) for k in blk.torsion_stretch}
        assert np.max(np.abs(a.charges - np.asarray(blk.charges))) < 6e-4
        assert a.charges.sum() == pytest.approx(1.0, abs=1e-9)


def test_pair_constants_distances_and_energies_are_macromodels(macromodel, mmo, mae_coords):
    """For every pair MacroModel lists (all nine structures): r* (r_i + r_j, or the
    C3-H1 line's 3.56 A), eps tapered by (8^2 - r^2)/(8^2 - 6^2) in the real
    distance r (its 4 printed digits), the distance between the reduced hydrogen
    sites (3 decimals), and the vdW and charge-charge energies (3 decimals; the
    latter allowing 1e-5 e on each charge: MacroModel's differ from mu / (4.803 r0)
    by up to about that, e.g. 9e-4 kJ/mol on the 9.741 of structure 1's C3-P14).
    The pairs MacroModel leaves out have neither van der Waals (r > 8 A) nor charge."""
    model = macromodel.model
    p = np.asarray(model.forcefield.full_params())
    for k, (s, blk, x) in enumerate(zip(model.systems, mmo, mae_coords, strict=True)):
        t = jax.tree_util.tree_map(np.asarray, s.terms)
        sites = np.asarray(site_coordinates(jnp.asarray(x), t.atom_site_parent,
                                            t.atom_site_scale))
        i, j = t.pair_atoms[:, 0], t.pair_atoms[:, 1]
        special = p[t.pair_vdw_params[:, 0]] > 0
        rstar = np.where(special, p[t.pair_vdw_params[:, 0]],
                         p[t.atom_vdw_params[i, 0]] + p[t.atom_vdw_params[j, 0]])
        eps = np.where(special, p[t.pair_vdw_params[:, 1]],
                       np.sqrt(p[t.atom_vdw_params[i, 1]] * p[t.atom_vdw_params[j, 1]]))
        r = np.linalg.norm(x[j] - x[i], axis=1)
        (r_on, r_off), = set(map(tuple, t.pair_taper))
        eps0, eps = eps, eps * np.clip((r_off**2 - r**2) / (r_off**2 - r_on**2), 0.0, 1.0)
        rho = np.linalg.norm(sites[j] - sites[i], axis=1)
        q = p[t.atom_charge_params]
        qq = q[i] * q[j] * t.pair_elec_scale
        e_vdw = eps * 1.84e5 * np.exp(-12.0 * rho / rstar) - eps * 2.25 * (rstar / rho) ** 6
        e_ele = COULOMB_KCAL_MOL_A * qq / rho  # the scale makes it 1389.5 kJ A/mol/e^2
        listed = np.zeros(len(i), bool)
        for n, (a, b) in enumerate(zip(i.tolist(), j.tolist(), strict=True)):
            row = blk.pairs.get((a, b))
            if row is None:
                continue
            listed[n] = True
            if row.eps > 0.0:
                assert rstar[n] == pytest.approx(row.rstar, abs=5e-4), (k, a, b)
            # 4 digits; near 8 A the taper is as steep as MacroModel's single-precision r
            assert eps[n] == pytest.approx(row.eps, rel=6e-4, abs=1e-6 * eps0[n]), (k, a, b)
            assert rho[n] == pytest.approx(row.distance, abs=6e-4), (k, a, b)
            assert KCAL_TO_KJ * e_vdw[n] == pytest.approx(row.vdw, abs=6e-4), (k, a, b)
            dq = abs(KCAL_TO_KJ * e_ele[n]) * 1e-5 * (1 / abs(q[a]) + 1 / abs(q[b])) if qq[n] else 0
            assert KCAL_TO_KJ * e_ele[n] == pytest.approx(row.elec, abs=6e-4 + dq), (k, a, b)
        assert listed.sum() == len(blk.pairs)
        assert np.all(eps[~listed] == 0.0) and np.all(qq[~listed] == 0.0)


def _term_energies(p, x, t):
    """Per-interaction energies (kJ/mol) of one system at its reduced sites: stretch,
    torsion (propers then impropers), bend, bend-bend, torsion-stretch."""
    s = site_coordinates(x, t.atom_site_parent, t.atom_site_scale)
    inv = 1.0 / t.atom_site_scale
    b = t.bond_atoms
    r = distances(s, b, t.bond_mask) * inv[b[:, 0]] * inv[b[:, 1]]
    es = mm3_stretch(r, p[t.bond_params[:, 0]], p[t.bond_params[:, 1]])
    tp = t.torsion_params
    et = fourier_torsion(dihedrals(s, t.torsion_atoms, t.torsion_mask), p[tp[:, 0]], p[tp[:, 1]],
                         p[tp[:, 2]])
    d, d2 = bend_deviation(s, t.angle_atoms, t.angle_mask, p[t.angle_params[:, 1]] * DEG_TO_RAD)
    eb = mm3_bend(d, d2, p[t.angle_params[:, 0]])
    bb, bp = t.bb_atoms, t.bb_params
    d1, _ = bend_deviation(s, bb[:, jnp.array([1, 0, 2])], t.bb_mask, p[bp[:, 2]] * DEG_TO_RAD)
    d2, _ = bend_deviation(s, bb[:, jnp.array([3, 0, 4])], t.bb_mask, p[bp[:, 3]] * DEG_TO_RAD)
    ebb = mm3_bend_bend(d1, d2, p[bp[:, 0]], p[bp[:, 1]])
    ts = t.ts_atoms
    rts = distances(s, ts[:, 1:3], t.ts_mask) * inv[ts[:, 1]] * inv[ts[:, 2]]
    ets = mm3_torsion_stretch(rts - p[t.ts_params[:, 1]], dihedrals(s, ts, t.ts_mask),
                              p[t.ts_params[:, 0]])
    return tuple(KCAL_TO_KJ * e for e in (es, et, eb, ebb, ets))


def test_every_interaction_energy_is_macromodels(macromodel, mmo, mae_coords):
    """q2jax's MM3* terms reproduce MacroModel's energy of every stretch (the
    bridging hydride's forming C...H bond included: its length is the distance to
    the hydride's reduced site / 0.923), bend (those of the hydride at its site),
    torsion, improper, bend-bend and torsion-stretch interaction of the nine
    structures at MacroModel's coordinates (printed to 1e-3 kJ/mol)."""
    model = macromodel.model
    batch = model.batch()
    xyz = np.asarray(batch.coords).copy()
    for k, c in enumerate(mae_coords):
        xyz[k, : len(c)] = c
    p = model.forcefield.full_params()
    es, et, eb, ebb, ets = (np.asarray(a) for a in jax.jit(jax.vmap(
        lambda x, t: _term_energies(p, x, t)))(jnp.asarray(xyz), batch.terms))
    tol = 1.5e-3
    for k, (s, a, blk) in enumerate(zip(model.systems, model.assignments, mmo, strict=True)):
        t = jax.tree_util.tree_map(np.asarray, s.terms)
        for n, (i, j) in enumerate(t.bond_atoms):
            row = blk.stretch.get((i, j)) or blk.stretch[(j, i)]
            assert es[k, n] == pytest.approx(row.energy, abs=tol), (k, i, j)
        proper = {min(q, q[::-1]): v.energy for q, v in blk.torsion.items()}
        improper = {q: v.energy for q, v in blk.improper.items()}
        for n, q in enumerate(map(tuple, t.torsion_atoms)):
            ref = proper.get(min(q, q[::-1]), 0.0) if n < len(a.torsions) else improper[q]
            assert et[k, n] == pytest.approx(ref, abs=tol), (k, q)
        bends = {_bend_key(b): v.energy for b, v in blk.bend.items()}
        for n, q in enumerate(map(tuple, t.angle_atoms)):
            assert eb[k, n] == pytest.approx(bends[_bend_key(q)], abs=tol), (k, q)
        bb = {(q[0], frozenset(q[1:3]), frozenset(q[3:5])): v.energy
              for q, v in blk.bend_bend.items()}
        for n, q in enumerate(map(tuple, t.bb_atoms)):
            key = (q[0], frozenset(q[1:3]), frozenset(q[3:5]))
            ref = bb.get(key, bb.get((key[0], key[2], key[1])))
            assert ebb[k, n] == pytest.approx(ref, abs=tol), (k, q)
        tsr = {min(q, q[::-1]): v.energy for q, v in blk.torsion_stretch.items()}
        for n, q in enumerate(map(tuple, t.ts_atoms)):
            assert ets[k, n] == pytest.approx(tsr[min(q, q[::-1])], abs=tol), (k, q)
        assert len(t.bb_atoms) == len(blk.bend_bend) and len(t.ts_atoms) == len(
            blk.torsion_stretch)


@pytest.fixture(scope="module")
def families_kj(start, final, mae_coords):
    """q2jax's family energies (kJ/mol) of the nine structures at MacroModel's
    coordinates, {"start" | "final": {family: (9,)}}, from one padded batch each."""
    comps = jax.jit(jax.vmap(energy_components, in_axes=(None, 0, 0, None, None)),
                    static_argnums=(3, 4))
    out = {}
    for name, s in (("start", start), ("final", final)):
        batch = s.mm3.batch()
        xyz = np.asarray(batch.coords).copy()
        for k, c in enumerate(mae_coords):
            xyz[k, : len(c)] = c
        ff = s.forcefield
        c = comps(ff.full_params(), jnp.asarray(xyz), batch.terms, ff.form, ff.settings)
        out[name] = {f: KCAL_TO_KJ * np.asarray(v) for f, v in c.items()}
    return out


def test_energy_families_match_macromodel(families_kj, mmo, start, final):
    """Every energy family q2jax has, all nine structures, published start and final
    force fields, against MacroModel's .mmo (printed to 1e-4 kJ/mol per family).

    Final (the .mmo's own run): agreement within 2e-3 kJ/mol per family (1e-5 of
    the family energies). Remaining differences, kJ/mol: stretch, torsion,
    stretch-bend, bend-bend, torsion-stretch, vdW <= 2e-4 (print precision);
    bend -0.8e-3 to -1.4e-3 (every bend -1e-5 relative on average: MacroModel's
    own bend constant, 601.99392 kJ per mdyn A/rad^2 in the .fld header, is
    1.5e-5 larger than MM3's 0.021914 (180/pi)^2 that q2jax uses);
    electrostatic <= 9e-4 (MacroModel keeps charges to about 5e-6 e).

    Start (no .mmo of its own: only the Rh sections' force constants differ, so
    MacroModel's start stretch and bend totals are the .mmo's with each such
    interaction re-evaluated, ``_rh_mmo.start_families``, within the bound it
    returns, <= 0.025 kJ/mol); the other families are the final's.
    """
    ran = read_fld(RH_ENAMIDE_DIR / "mm3.fld")
    start_fld = read_fld(RH_ENAMIDE_DIR / "rh_hyd_enamide_start.fld")
    tol = 2e-3
    for k, blk in enumerate(mmo):
        ref = {f: sum(blk.energy[n] for n in names) for f, names in FAMILIES.items()}
        for fam, value in ref.items():
            assert families_kj["final"][fam][k] == pytest.approx(value, abs=tol), (k, fam)
        assert sum(families_kj["final"][f][k] for f in FAMILIES) == pytest.approx(
            blk.energy["Force-field terms"], abs=5 * tol)
        derived, bound = start_families(blk, ran, start_fld)
        for fam, value in ref.items():
            want, err = derived.get(fam, value), bound.get(fam, 0.0)
            assert families_kj["start"][fam][k] == pytest.approx(want, abs=tol + err), (k, fam)
    # MacroModel's out-of-plane terms are torsions in q2jax; its Wilson-angle family is empty
    assert set(families_kj["final"]) == set(FAMILIES) | {"out_of_plane"}
    assert not np.any(families_kj["final"]["out_of_plane"])


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
        for name in ("bond_atoms", "angle_atoms", "torsion_atoms", "sb_atoms", "pair_atoms",
                     "bb_atoms", "ts_atoms", "atom_site_parent"):
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
    # a reduced hydrogen site needs a covalent bond to lie on (H18 keeps only its C...H)
    lone = [(a, b, 0 if {a, b} == {0, 17} else o) for a, b, o in orders]
    with pytest.raises(ParameterError, match=r"mm3.fld:\d+: .*H118 .*no covalent bond"):
        assign_parameters(read_fld(RH_ENAMIDE_DIR / "mm3.fld"), mol, lone, allow_missing=True)
    with pytest.raises(InputError, match="vdw_taper"):
        load_rh_enamide_set("final", vdw_taper=(8.0, 6.0))
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
