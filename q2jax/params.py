"""Parameter kinds, their units and bounds, and the canonical keys that make
e.g. every C-F bond share one force constant. One table, used by the force
field, the readers and writers, and the solvers' default step sizes."""

from __future__ import annotations

from typing import NamedTuple


class Kind(NamedTuple):
    family: str
    unit: str
    lower: float
    upper: float
    default: float  # start value when nothing better is known
    suffix: str  # label suffix
    step: float  # finite-difference / sensitivity step, as Q2MM's defaults (same units)


KINDS: dict[str, Kind] = {
    "bond_k": Kind("bond", "kcal/mol/A^2", 0.0, 5000.0, 300.0, "k", 7.2),
    "bond_eq": Kind("bond", "A", 0.3, 5.0, 1.5, "eq", 0.02),
    "angle_k": Kind("angle", "kcal/mol/rad^2", 0.0, 2000.0, 50.0, "k", 7.2),
    "angle_eq": Kind("angle", "deg", 0.0, 180.0, 109.5, "eq", 1.0),
    "torsion_v1": Kind("torsion", "kcal/mol", -100.0, 100.0, 0.0, "V1", 0.1),
    "torsion_v2": Kind("torsion", "kcal/mol", -100.0, 100.0, 0.0, "V2", 0.1),
    "torsion_v3": Kind("torsion", "kcal/mol", -100.0, 100.0, 0.0, "V3", 0.1),
    "improper_k": Kind("improper", "kcal/mol/rad^2", 0.0, 2000.0, 20.0, "k", 0.2),
    "stretch_bend_k": Kind("stretch_bend", "kcal/mol/A/rad", -500.0, 500.0, 0.0, "k", 0.2),
    "vdw_radius": Kind("vdw", "A", 0.3, 5.0, 1.8, "r", 0.1),
    # lower bound > 0: d sqrt(eps_i eps_j)/d eps_i diverges as eps_i -> 0 and stalls fits
    "vdw_epsilon": Kind("vdw", "kcal/mol", 1e-3, 5.0, 0.05, "eps", 0.02),
    "charge": Kind("charge", "e", -5.0, 5.0, 0.0, "q", 0.1),
    # MM3 cross terms and pair-specific van der Waals (MacroModel MM3* .fld lines 2, 8, 6):
    # bend-bend E = -k_i k_j dtheta_i dtheta_j (one factor per angle type, radians);
    # torsion-stretch E = -k (r - r0) (1 + cos 3 phi) about the central bond;
    # a vdW pair line replaces the combined r* and eps of one pair of atom types.
    "bend_bend_k": Kind("bend_bend", "(kcal/mol)^0.5/rad", -50.0, 50.0, 0.0, "kbb", 0.1),
    "torsion_stretch_k": Kind("torsion_stretch", "kcal/mol/A", -50.0, 50.0, 0.0, "kts", 0.1),
    "vdw_pair_rstar": Kind("vdw_pair", "A", 0.6, 10.0, 3.6, "r", 0.1),
    # Urey-Bradley 1-3 stretch E = k (r_ik - r0)^2 for angle i-j-k (e.g. a
    # transition state's F...F distance across a linear F-C-F)
    "ub_k": Kind("urey_bradley", "kcal/mol/A^2", -2000.0, 2000.0, 0.0, "k", 1.0),
    "ub_eq": Kind("urey_bradley", "A", 0.5, 8.0, 2.5, "eq", 0.02),
    "vdw_pair_epsilon": Kind("vdw_pair", "kcal/mol", 0.0, 5.0, 0.05, "eps", 0.02),
}

FAMILY_KINDS: dict[str, tuple[str, ...]] = {
    "bond": ("bond_k", "bond_eq"),
    "angle": ("angle_k", "angle_eq"),
    "torsion": ("torsion_v1", "torsion_v2", "torsion_v3"),
    "improper": ("improper_k",),
    "stretch_bend": ("stretch_bend_k",),
    "vdw": ("vdw_radius", "vdw_epsilon"),
    "charge": ("charge",),
    "bend_bend": ("bend_bend_k",),
    "torsion_stretch": ("torsion_stretch_k",),
    "vdw_pair": ("vdw_pair_rstar", "vdw_pair_epsilon"),
    "urey_bradley": ("ub_k", "ub_eq"),
}

FAMILY_ARITY: dict[str, int] = {
    "bond": 2,
    "angle": 3,
    "torsion": 4,
    "improper": 4,
    "stretch_bend": 3,
    "vdw": 1,
    "charge": 1,
    "bend_bend": 3,
    "torsion_stretch": 4,
    "vdw_pair": 2,
    "urey_bradley": 3,
}


def canonical_key(family: str, types) -> tuple[str, ...]:
    """The one ordering of atom types under which a parameter is stored.

    Bonds, angles, stretch-bends, bend-bends (keyed by the angle), torsions,
    torsion-stretches and vdW pairs read the same backwards; an out-of-plane key
    is the centre followed by its three neighbours sorted.
    """
    t = tuple(str(x) for x in types)
    if len(t) != FAMILY_ARITY[family]:
        raise ValueError(f"{family} key needs {FAMILY_ARITY[family]} atom types, got {t}")
    if family in ("bond", "angle", "torsion", "stretch_bend", "bend_bend", "torsion_stretch",
                  "urey_bradley",
                  "vdw_pair"):
        return min(t, t[::-1])
    if family == "improper":
        return (t[0],) + tuple(sorted(t[1:]))
    return t


def label(kind: str, key: tuple[str, ...]) -> str:
    """Human label, e.g. 'bond C-F k', 'angle F-C-H eq', 'torsion H-C-C-H V3'."""
    info = KINDS[kind]
    return f"{info.family} {'-'.join(key)} {info.suffix}"


__all__ = ["Kind", "KINDS", "FAMILY_KINDS", "FAMILY_ARITY", "canonical_key", "label"]
