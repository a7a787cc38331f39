"""Physical constants and unit conversions: the only place unit factors live.

Internal units of q2jax: length Å, energy kcal/mol, mass amu (Da), angles in
radians inside energy terms (equilibrium angles are stored in degrees in the
force-field parameter vector, converted here). Values are CODATA 2018.

Energy convention for harmonic terms: ``E = k (x - x0)^2`` (no 1/2, as in
AMBER and Q2MM), so bond ``k`` is in kcal/(mol Å^2) and angle ``k`` in
kcal/(mol rad^2).
"""

from __future__ import annotations

import math

# --- CODATA 2018 base constants (SI) ---------------------------------------
AVOGADRO = 6.02214076e23  # 1/mol (exact)
SPEED_OF_LIGHT_M_S = 299_792_458.0  # m/s (exact)
HARTREE_J = 4.3597447222071e-18  # J
BOHR_M = 0.529177210903e-10  # m
AMU_KG = 1.66053906660e-27  # kg
KCAL_J = 4184.0  # J (thermochemical calorie, exact)
DEBYE_C_M = 3.33564095198152e-30  # C m
ELEMENTARY_CHARGE_C = 1.602176634e-19  # C (exact)
VACUUM_PERMITTIVITY = 8.8541878128e-12  # F/m

# --- length ----------------------------------------------------------------
ANGSTROM_M = 1e-10
BOHR_TO_ANGSTROM = BOHR_M / ANGSTROM_M  # 0.529177210903
ANGSTROM_TO_BOHR = 1.0 / BOHR_TO_ANGSTROM
NM_TO_ANGSTROM = 10.0
ANGSTROM_TO_NM = 0.1

# --- energy ----------------------------------------------------------------
HARTREE_TO_KCAL_MOL = HARTREE_J * AVOGADRO / KCAL_J  # 627.5094740631
KCAL_MOL_TO_HARTREE = 1.0 / HARTREE_TO_KCAL_MOL
KCAL_TO_KJ = KCAL_J / 1000.0  # 4.184
KJ_TO_KCAL = 1.0 / KCAL_TO_KJ
HARTREE_TO_KJ_MOL = HARTREE_TO_KCAL_MOL * KCAL_TO_KJ

# --- angles ----------------------------------------------------------------
DEG_TO_RAD = math.pi / 180.0
RAD_TO_DEG = 180.0 / math.pi

# --- force constants and Hessians ------------------------------------------
# Cartesian Hessian / bond force constant: Hartree/Bohr^2 -> kcal/(mol Å^2)
HARTREE_BOHR2_TO_KCAL_MOL_A2 = HARTREE_TO_KCAL_MOL / BOHR_TO_ANGSTROM**2  # ~2240.877
KCAL_MOL_A2_TO_HARTREE_BOHR2 = 1.0 / HARTREE_BOHR2_TO_KCAL_MOL_A2
# kJ/(mol nm^2) (OpenMM) -> kcal/(mol Å^2)
KJ_MOL_NM2_TO_KCAL_MOL_A2 = KJ_TO_KCAL * ANGSTROM_TO_NM**2
KJ_MOL_A2_TO_KCAL_MOL_A2 = KJ_TO_KCAL
# Gradient: Hartree/Bohr -> kcal/(mol Å)
HARTREE_BOHR_TO_KCAL_MOL_A = HARTREE_TO_KCAL_MOL / BOHR_TO_ANGSTROM
# mdyn/Å -> kcal/(mol Å^2) as a curvature d2E/dx2 (1 mdyn/Å = 100 N/m)
MDYN_A_TO_KCAL_MOL_A2 = 100.0 * ANGSTROM_M**2 * AVOGADRO / KCAL_J  # ~143.9325
# Hartree/rad^2 (an angle-bend curvature in atomic units) -> kcal/(mol rad^2)
HARTREE_RAD2_TO_KCAL_MOL_RAD2 = HARTREE_TO_KCAL_MOL
# mdyn Å/rad^2 -> kcal/(mol rad^2) as a curvature
MDYN_A_RAD2_TO_KCAL_MOL_RAD2 = MDYN_A_TO_KCAL_MOL_A2

# --- MM3 / MacroModel conventions -------------------------------------------
# MM3 writes E_str = 71.94 k_s dr^2 (...) with k_s in mdyn/Å, and
# E_bend = 0.021914 k_b dtheta_deg^2 (...) with k_b in mdyn Å/rad^2.
# 71.94 = 143.88 / 2 is MM3's own (historical) value of the mdyn/Å
# conversion; it is part of MM3's functional form and is kept exactly, so
# MM3 k in mdyn/Å maps to the q2jax convention E = k dr^2 by this factor.
MM3_STRETCH_UNIT = 71.94  # kcal/(mol Å^2) per mdyn/Å, in E = k dr^2
MM3_BEND_UNIT_DEG = 0.021914  # kcal/(mol deg^2) per mdyn Å/rad^2
MM3_BEND_UNIT = MM3_BEND_UNIT_DEG * RAD_TO_DEG**2  # kcal/(mol rad^2) per mdyn Å/rad^2
MM3_STRETCH_BEND_UNIT = 2.51118  # kcal/(mol Å deg) per mdyn/rad, E = c k (dr1+dr2) dtheta_deg
MM3_COULOMB_CONSTANT = 332.0716  # kcal Å/(mol e^2) as used by MM3/Tinker
# MacroModel MM3* (.fld header factors in kJ/mol: STR/BND/S-B 601.99392 = 143.88 kcal, IMP
# 60.19939 = 14.388 kcal): stretch-bend per radian, and the improper torsion
# E = 14.388 k (1 - cos 2w) (k in mdyn Å/rad^2) written as q2jax's V2/2 (1 - cos 2w).
MM3_STRETCH_BEND_UNIT_RAD = MM3_STRETCH_BEND_UNIT * RAD_TO_DEG  # kcal/(mol Å rad) per mdyn/rad
MM3_IMPROPER_UNIT = 2.0 * MM3_STRETCH_UNIT / 10.0  # 14.388 kcal/mol per mdyn Å/rad^2
MM3_IMPROPER_V2_UNIT = 2.0 * MM3_IMPROPER_UNIT  # torsion V2 (kcal/mol) per improper k
MACROMODEL_KJ_TO_KCAL = KJ_TO_KCAL  # .fld header factors and .mmo energies are kJ/mol
DEBYE_PER_E_ANGSTROM = ELEMENTARY_CHARGE_C * ANGSTROM_M / DEBYE_C_M  # 4.80320 D per e Å
# MacroModel MM3* (fitted to its .mmo printout of the Rh-enamide set, checked to print
# precision): bond-dipole charges q = mu / (4.803 r0); bend-bend E = -0.021914 kbb_i kbb_j
# d_i d_j (degrees) = -(c kbb_i)(c kbb_j) d_i d_j (radians) with c = sqrt(MM3_BEND_UNIT);
# torsion-stretch E = -(11.995 / 2) K dr (1 + cos 3w), K as in the .fld.
MACROMODEL_DEBYE_PER_E_ANGSTROM = 4.803  # D per e Å (MacroModel's rounded value)
MM3_BEND_BEND_UNIT = math.sqrt(MM3_BEND_UNIT)  # per-angle factor per .fld kbb
MM3_TORSION_STRETCH_UNIT = 11.995 / 2.0  # kcal/(mol Å) per .fld K_ts
AMBER_FRCMOD_K_UNIT = 1.0  # frcmod K (kcal/mol/Å^2, /rad^2) already in E = K (x - x0)^2
# Coulomb constant from CODATA: e^2/(4 pi eps0) in kcal Å/mol
COULOMB_KCAL_MOL_A = (
    ELEMENTARY_CHARGE_C**2 / (4.0 * math.pi * VACUUM_PERMITTIVITY) / ANGSTROM_M * AVOGADRO / KCAL_J
)

# --- vibrational frequencies -------------------------------------------------
# An eigenvalue of the mass-weighted Hessian in kcal/(mol Å^2 amu) -> cm^-1:
#   nu = sqrt(lambda_SI) / (2 pi c) / 100
_LAMBDA_TO_SI = KCAL_J / AVOGADRO / ANGSTROM_M**2 / AMU_KG  # s^-2
EIGENVALUE_TO_CM1 = math.sqrt(_LAMBDA_TO_SI) / (2.0 * math.pi * SPEED_OF_LIGHT_M_S * 100.0)
# ~108.5913: nu_cm1 = EIGENVALUE_TO_CM1 * sqrt(lambda_kcal_mol_A2_amu)
# Hartree/(Bohr^2 amu) -> kcal/(mol Å^2 amu) (eigenmatrix values in Q2MM's units)
HARTREE_BOHR2_AMU_TO_KCAL_MOL_A2_AMU = HARTREE_BOHR2_TO_KCAL_MOL_A2

# --- Hessian unit names accepted at the I/O boundary --------------------------
HESSIAN_UNITS_TO_KCAL_MOL_A2: dict[str, float] = {
    "hartree/bohr2": HARTREE_BOHR2_TO_KCAL_MOL_A2,
    "hartree/bohr^2": HARTREE_BOHR2_TO_KCAL_MOL_A2,
    "au": HARTREE_BOHR2_TO_KCAL_MOL_A2,
    "kcal/mol/a2": 1.0,
    "kcal/mol/angstrom2": 1.0,
    "kcal/mol/a^2": 1.0,
    "kj/mol/a2": KJ_MOL_A2_TO_KCAL_MOL_A2,
    "kj/mol/nm2": KJ_MOL_NM2_TO_KCAL_MOL_A2,
    "mdyn/a": MDYN_A_TO_KCAL_MOL_A2,
    "hartree/a2": HARTREE_TO_KCAL_MOL,
}


def hessian_factor(units: str) -> float:
    """Factor converting a Cartesian Hessian in ``units`` to kcal/(mol Å^2).

    Raises :class:`q2jax.errors.UnitError` for an unknown unit name.
    """
    from q2jax.errors import UnitError

    key = units.strip().lower().replace(" ", "").replace("·", "/").replace("å", "a")
    try:
        return HESSIAN_UNITS_TO_KCAL_MOL_A2[key]
    except KeyError:
        known = ", ".join(sorted(HESSIAN_UNITS_TO_KCAL_MOL_A2))
        raise UnitError(f"unknown Hessian units {units!r}; expected one of: {known}") from None


def eigenvalue_to_cm1(eigenvalue):
    """Signed frequency (cm^-1) from a mass-weighted Hessian eigenvalue in
    kcal/(mol Å^2 amu); negative eigenvalues give negative (imaginary) frequencies."""
    import numpy as np

    ev = np.asarray(eigenvalue, dtype=float)
    return np.sign(ev) * np.sqrt(np.abs(ev)) * EIGENVALUE_TO_CM1


def cm1_to_eigenvalue(frequency_cm1):
    """Inverse of :func:`eigenvalue_to_cm1` (sign kept)."""
    import numpy as np

    nu = np.asarray(frequency_cm1, dtype=float)
    return np.sign(nu) * (nu / EIGENVALUE_TO_CM1) ** 2
