"""MacroModel's printout of the Rh-enamide set (rh_enamide_training_set.mmo), read
for the tests: per structure every stretch, bend, torsion, improper, bend-bend,
torsion-stretch and nonbonded pair MacroModel evaluated (its constants,
geometry, energy in kJ/mol and force-field line), its point charges and the
energy of each family. Also MacroModel's family energies under the *start*
force field, which differs from the one the .mmo ran with (mm3.fld = the
published final values) only in the Rh sections' force constants."""

from __future__ import annotations

import gzip
import re
from types import SimpleNamespace

from q2jax.io.mm3_fld import Fld
from q2jax.rh_enamide import RH_ENAMIDE_DIR

SET = RH_ENAMIDE_DIR / "rh_enamide_training_set"
MMO = SET / "rh_enamide_training_set.mmo.gz"

# q2jax family -> the .mmo energy lines it sums (q2jax stores MacroModel's cosine
# out-of-plane terms as torsions)
FAMILIES = {
    "stretch": ("Stretch",),
    "bend": ("Bend",),
    "torsion": ("Proper torsion", "Out-of-plane"),
    "stretch_bend": ("Stretch-bend",),
    "bend_bend": ("Bend-bend",),
    "torsion_stretch": ("Torsion-stretch",),
    "vdw": ("Van der Waals",),
    "electrostatic": ("Electrostatic",),
}

_HEADS = {"BOND LENGTHS AND STRETCH": "stretch", "ANGLES, BEND AND STRETCH": "bend",
          "BEND-BEND ANGLES": "bend_bend", "DIHEDRAL ANGLES AND TORSIONAL ENERGIES": "torsion",
          "Improper torsion interactions": "improper", "TORSIONAL CROSS-TERMS": "torsion_stretch",
          "NONBONDED DISTANCES": "pairs", "Atomic Charges, Coordinates": "charges"}


def _row(sec: str, t: list[str]):
    """One table row: atoms 0-based, then the numbers MacroModel prints."""
    ints = {"stretch": 2, "bend": 3, "torsion": 4, "improper": 4, "bend_bend": 5,
            "torsion_stretch": 4, "pairs": 2}[sec]
    atoms = tuple(int(x) - 1 for x in t[:ints])
    if sec == "stretch":  # k, ideal, actual, energy ... line
        return atoms, SimpleNamespace(k=float(t[2]), ideal=float(t[3]), actual=float(t[4]),
                                      energy=float(t[5]), line=int(t[-1]))
    if sec == "bend":  # kb, ksb, ideal, actual, eb, esb ... line
        return atoms, SimpleNamespace(k=float(t[3]), ideal=float(t[5]), actual=float(t[6]),
                                      energy=float(t[7]), line=int(t[-1]))
    if sec in ("torsion", "improper"):
        return atoms, SimpleNamespace(energy=float(t[8]), line=int(t[-1]))
    if sec == "bend_bend":  # centre, a1 b1, a2 b2: k, ideal1, actual1, ideal2, actual2, energy
        return atoms, SimpleNamespace(k=float(t[5]), energy=float(t[10]))
    if sec == "torsion_stretch":
        return atoms, SimpleNamespace(k=float(t[4]), energy=float(t[8]))
    return atoms, SimpleNamespace(rstar=float(t[2]), eps=float(t[3]), qq=float(t[4]),
                                  distance=float(t[5]), vdw=float(t[6]), elec=float(t[7]))


def read_mmo() -> list[SimpleNamespace]:
    """The nine structures' blocks (see the module docstring)."""
    blocks: list[SimpleNamespace] = []
    cur, sec = None, None
    for line in gzip.open(MMO, "rt").read().split("\n"):
        hit = next((v for k, v in _HEADS.items() if k in line), None)
        if hit is not None:
            if hit == "stretch":
                cur = SimpleNamespace(**{k: {} for k in _HEADS.values()}, energy={})
                cur.charges = []
                blocks.append(cur)
            sec = hit
            continue
        if cur is None:
            continue
        m = re.match(r"\s+([A-Za-z -]+):\s+(-?[\d.]+) kJ/mol", line)
        if m:
            cur.energy[m.group(1).strip()] = float(m.group(2))
            continue
        if sec == "charges":
            if re.match(r"\s*\S\S? \(\s*\d+\)", line):
                cur.charges.append(float(line.split(")")[1].split()[0]))
            continue
        t = line.split()
        if sec is None or not t or not t[0].isdigit():
            continue
        if sec == "pairs" and len(t) != 8:
            continue
        atoms, row = _row(sec, t)
        getattr(cur, sec)[atoms] = row
    return blocks


def by_macromodel_line(fld: Fld) -> dict:
    """MacroModel names a continued ``.fld`` line by its continuation line."""
    return {(p.continuation_line or p.line): p for p in fld.params}


def mm3_stretch_kj(k_mdyn: float, dr: float) -> float:
    """MM3 stretch, kJ/mol: 143.88/2 k dr^2 (1 - 2.55 dr + 7/12 2.55^2 dr^2), k mdyn/A."""
    return 143.88 / 2 * k_mdyn * dr * dr * (1 - 2.55 * dr + 7 / 12 * 2.55**2 * dr * dr) * 4.184


def mm3_bend_kj(k_mdyn: float, d: float) -> float:
    """MM3 bend, kJ/mol: 0.021914 k d^2 (1 - 0.014 d + 5.6e-5 d^2 - 7e-7 d^3 + 2.2e-8 d^4)."""
    return 0.021914 * k_mdyn * d * d * (1 - 0.014 * d + 5.6e-5 * d**2 - 7e-7 * d**3
                                        + 2.2e-8 * d**4) * 4.184


def start_families(block, ran: Fld, start: Fld) -> tuple[dict, dict]:
    """MacroModel's stretch and bend totals (kJ/mol) under ``start`` and a bound on
    their error, from the .mmo (run with ``ran``): each interaction whose force
    constant differs is re-evaluated with the start constant. MM3 energies are
    linear in k, so a printed energy scales by k_start / k_ran when that is <= 1
    (error: the printed 5e-4 twice); otherwise (k_ran < k_start, e.g. k_ran = 0)
    it is recomputed from the printed ideal and actual values (error: their print
    step, 5e-5 A or 5e-4 deg, times the slope, plus the removed 5e-4)."""
    ran_lines, start_lines = by_macromodel_line(ran), by_macromodel_line(start)
    out = {"stretch": block.energy["Stretch"], "bend": block.energy["Bend"]}
    bound = {"stretch": 0.0, "bend": 0.0}
    for fam, table, step in (("stretch", block.stretch, 5e-5), ("bend", block.bend, 5e-4)):
        f = mm3_stretch_kj if fam == "stretch" else mm3_bend_kj
        for row in table.values():
            ks, kr = start_lines[row.line].values[1], ran_lines[row.line].values[1]
            if ks == kr:
                continue
            d = row.actual - row.ideal
            if kr >= ks:
                e, err = row.energy * ks / kr, 5e-4 * (1 + ks / kr)
            else:
                slope = abs(f(ks, d + 1e-6) - f(ks, d - 1e-6)) / 2e-6
                e, err = f(ks, d), 5e-4 + slope * step
            out[fam] += e - row.energy
            bound[fam] += err
    return out, bound
