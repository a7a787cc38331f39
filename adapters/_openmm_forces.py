"""q2jax energy terms as OpenMM forces (private helper of ``q2jax.adapters.openmm``).

Each builder turns one family of q2jax's term tables (``q2jax.system.Terms``,
as NumPy arrays) into a :class:`Piece`: an OpenMM ``Force`` plus a vectorised
map from q2jax's parameter vector ``full_params`` to the force's per-term
parameters in OpenMM units. A Context built once can then follow new
parameter values in place (``setXParameters`` + ``updateParametersInContext``).

Units. q2jax: Å, kcal/mol, rad (equilibrium angles stored in degrees),
harmonic terms E = k (x - x0)^2. OpenMM: nm, kJ/mol, rad, and its standard
harmonic forces use E = 1/2 k' (x - x0)^2, so k' = 2 k (in OpenMM units).
Every factor comes from ``q2jax.units``.

Term-by-term equivalence (q2jax function -> OpenMM force):

- harmonic stretch k dr^2 -> HarmonicBondForce (k' = 2 k)
- MM3 stretch k dr^2 (1 - 2.55 dr + 7/12 2.55^2 dr^2) -> CustomBondForce
- harmonic bend k dθ^2 -> HarmonicAngleForce (k' = 2 k)
- MM3 bend k dθ^2 (1 - 0.014 d + 5.6e-5 d^2 - 7e-7 d^3 + 2.2e-8 d^4), d in degrees
  -> CustomAngleForce
- torsion V1/2 (1 + cos φ) + V2/2 (1 - cos 2φ) + V3/2 (1 + cos 3φ)
  -> PeriodicTorsionForce, three terms k (1 + cos(nφ - φ0)): (V1/2, 1, 0), (V2/2, 2, π),
  (V3/2, 3, 0)
- out-of-plane k χ^2, χ the mean of the three Wilson angles -> CustomCompoundBondForce
  written with particle coordinates
- stretch-bend k (dr1 + dr2) dθ -> CustomCompoundBondForce with distance() and angle()
- vdW (Lennard-Jones or MM3 exp-6) and Coulomb over q2jax's pair list: pairs with scale
  1 in a CustomNonbondedForce (NoCutoff; every other atom pair excluded), scaled (1-4)
  pairs in a CustomBondForce with the scale folded into per-pair parameters.
- bend-bend -k1 k2 dθ1 dθ2 and torsion-stretch -k (r - r0)(1 + cos 3φ) (MM3*)
  -> CustomCompoundBondForce written with particle coordinates (below).

Reduced sites (MM3* hydrogens, ``q2jax.terms.sites``): each atom whose site is
not the atom itself gets a massless OpenMM virtual site (TwoParticleAverageSite,
s = (1 - f) x_parent + f x) after the molecule's atoms, and every bonded term
acts on the sites, bond lengths times 1/(f_i f_j) (CustomBondForce). Nonbonded
pairs of such systems, or with MacroModel's van der Waals taper or
pair-specific constants, are one CustomCompoundBondForce per family over
(site_i, site_j, i, j): the site distance for the energy, the real distance for
the taper.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from q2jax.errors import EngineError
from q2jax.terms.bend import MM3_BEND_C3, MM3_BEND_C4, MM3_BEND_C5, MM3_BEND_C6
from q2jax.terms.stretch import MM3_CUBIC, MM3_QUARTIC
from q2jax.terms.vdw import MM3_VDW_A, MM3_VDW_B, MM3_VDW_C
from q2jax.units import (
    ANGSTROM_TO_NM,
    COULOMB_KCAL_MOL_A,
    DEG_TO_RAD,
    KCAL_TO_KJ,
    RAD_TO_DEG,
)

# q2jax -> OpenMM unit factors
_E = KCAL_TO_KJ  # kcal/mol -> kJ/mol
_L = ANGSTROM_TO_NM  # Å -> nm
_K_BOND = _E / _L**2  # kcal/(mol Å^2) -> kJ/(mol nm^2)
_K_SB = _E / _L  # kcal/(mol Å rad) -> kJ/(mol nm rad)
_COULOMB = COULOMB_KCAL_MOL_A * _E * _L  # kJ nm/(mol e^2)
_EPS_FLOOR = 1e-300  # q2jax: eps_ij = sqrt(eps_i eps_j + 1e-300), kcal/mol

FAMILIES = ("stretch", "bend", "torsion", "out_of_plane", "stretch_bend", "vdw", "electrostatic",
            "bend_bend", "torsion_stretch", "urey_bradley")
"""Energy families, as in ``q2jax.energy.energy_components``; family i is OpenMM force group i."""


def require_openmm():
    """The ``openmm`` module, or EngineError saying how to install it."""
    try:
        import openmm
        import openmm.app  # noqa: F401
    except ImportError as exc:
        raise EngineError(
            "OpenMM is not installed (needed by q2jax.adapters.openmm); install it with "
            "`pip install openmm` or `conda install -c conda-forge openmm`"
        ) from exc
    return openmm


def _num(x: float) -> str:
    """A float as an exact Lepton literal."""
    return repr(float(x))


@dataclass
class Piece:
    """One OpenMM force holding ``atoms.shape[0]`` terms of one q2jax family.

    ``values(full_params)`` gives the per-term OpenMM parameters, shape
    (terms, width); ``add``/``set`` write one row into the force.
    """

    family: str
    force: Any
    atoms: np.ndarray
    values: Callable[[np.ndarray], np.ndarray]
    add: Callable[[Any, list[int], list[float]], None]
    set: Callable[[Any, int, list[int], list[float]], None]

    def __post_init__(self):
        self._values: np.ndarray | None = None

    def fill(self, full_params: np.ndarray) -> None:
        """Add every term (on a fresh force)."""
        self._values = self.values(full_params)
        for a, v in zip(self.atoms.tolist(), self._values.tolist(), strict=True):
            self.add(self.force, a, v)

    def update(self, full_params: np.ndarray) -> bool:
        """Overwrite the parameters of the terms whose values changed; True if any did
        (the Context then needs ``force.updateParametersInContext``)."""
        new = self.values(full_params)
        changed = np.flatnonzero(np.any(new != self._values, axis=1))
        for n in changed.tolist():
            self.set(self.force, n, self.atoms[n].tolist(), new[n].tolist())
        self._values = new
        return changed.size > 0


# --- adders/setters per OpenMM force type ------------------------------------------------


def _custom_bond(force, a, v):
    force.addBond(a[0], a[1], v)


def _custom_bond_set(force, n, a, v):
    force.setBondParameters(n, a[0], a[1], v)


def _custom_angle(force, a, v):
    force.addAngle(a[0], a[1], a[2], v)


def _custom_angle_set(force, n, a, v):
    force.setAngleParameters(n, a[0], a[1], a[2], v)


def _compound(force, a, v):
    force.addBond(a, v)


def _compound_set(force, n, a, v):
    force.setBondParameters(n, a, v)


def _particle(force, a, v):
    force.addParticle(v)


def _particle_set(force, n, a, v):
    force.setParticleParameters(n, v)


def _new_custom(cls, expression: str, names: tuple[str, ...]):
    force = cls(expression)
    add = {
        "CustomNonbondedForce": "addPerParticleParameter",
        "CustomAngleForce": "addPerAngleParameter",
    }.get(cls.__name__, "addPerBondParameter")
    for name in names:
        getattr(force, add)(name)
    return force


# --- bonded families ---------------------------------------------------------------------


def stretch_piece(mm, atoms: np.ndarray, params: np.ndarray, form: str) -> Piece:
    """Bond stretching; params columns (k, r0) are positions in full_params."""
    if form == "mm3":
        expr = (
            f"k*dr^2*(1 + dr*({_num(-MM3_CUBIC / _L)} + {_num(MM3_QUARTIC / _L**2)}*dr)); "
            "dr = r - r0"
        )
        force = _new_custom(mm.CustomBondForce, expr, ("k", "r0"))

        def values(p):
            return np.stack([p[params[:, 0]] * _K_BOND, p[params[:, 1]] * _L], axis=1)

        return Piece("stretch", force, atoms, values, _custom_bond, _custom_bond_set)

    def values_h(p):
        return np.stack([p[params[:, 1]] * _L, 2.0 * p[params[:, 0]] * _K_BOND], axis=1)

    return Piece(
        "stretch", mm.HarmonicBondForce(), atoms, values_h,
        lambda f, a, v: f.addBond(a[0], a[1], v[0], v[1]),
        lambda f, n, a, v: f.setBondParameters(n, a[0], a[1], v[0], v[1]),
    )


def bend_piece(mm, atoms: np.ndarray, params: np.ndarray, form: str) -> Piece:
    """Angle bending; params columns (k, theta0 in degrees)."""
    if form == "mm3":
        poly = (
            f"({_num(MM3_BEND_C3)} + d*({_num(MM3_BEND_C4)} + d*({_num(MM3_BEND_C5)} "
            f"+ d*{_num(MM3_BEND_C6)})))"
        )
        expr = f"k*dt^2*(1 + d*{poly}); d = {_num(RAD_TO_DEG)}*dt; dt = theta - theta0"
        force = _new_custom(mm.CustomAngleForce, expr, ("k", "theta0"))

        def values(p):
            return np.stack([p[params[:, 0]] * _E, p[params[:, 1]] * DEG_TO_RAD], axis=1)

        return Piece("bend", force, atoms, values, _custom_angle, _custom_angle_set)

    def values_h(p):
        return np.stack([p[params[:, 1]] * DEG_TO_RAD, 2.0 * p[params[:, 0]] * _E], axis=1)

    return Piece(
        "bend", mm.HarmonicAngleForce(), atoms, values_h,
        lambda f, a, v: f.addAngle(a[0], a[1], a[2], v[0], v[1]),
        lambda f, n, a, v: f.setAngleParameters(n, a[0], a[1], a[2], v[0], v[1]),
    )


_TORSION_TERMS = ((1, 0.0), (2, np.pi), (3, 0.0))  # (periodicity, phase) for V1, V2, V3


def torsion_piece(mm, atoms: np.ndarray, params: np.ndarray) -> Piece:
    """Three PeriodicTorsionForce terms per q2jax torsion; params columns (V1, V2, V3)."""
    rep = np.repeat(atoms, 3, axis=0)
    per = np.tile([float(n) for n, _ in _TORSION_TERMS], atoms.shape[0])
    phase = np.tile([ph for _, ph in _TORSION_TERMS], atoms.shape[0])
    idx = params.reshape(-1)

    def values(p):
        return np.stack([per, phase, 0.5 * p[idx] * _E], axis=1)

    def add(f, a, v):
        f.addTorsion(a[0], a[1], a[2], a[3], int(v[0]), v[1], v[2])

    def set_(f, n, a, v):
        f.setTorsionParameters(n, a[0], a[1], a[2], a[3], int(v[0]), v[1], v[2])

    return Piece("torsion", mm.PeriodicTorsionForce(), rep, values, add, set_)


def _out_of_plane_expression() -> str:
    """k chi^2 with chi the mean Wilson angle at centre p1 with neighbours p2, p3, p4.

    With bonds a = x2 - x1, b = x3 - x1, c = x4 - x1 and V = a . (b x c), each
    neighbour's angle to the plane of the other two is asin(V / (|other cross| |bond|))
    (the triple product is cyclic), clipped to |sin| <= 1 - 1e-15 as in q2jax.
    """
    lim = _num(1.0 - 1e-15)

    def clip(s):
        return f"asin(min(max({s}, -{lim}), {lim}))"

    return "; ".join([
        "k*chi^2",
        f"chi = ({clip('v/(nbc*la)')} + {clip('v/(nca*lb)')} + {clip('v/(nab*lc)')})/3",
        "v = ax*(by*cz - bz*cy) + ay*(bz*cx - bx*cz) + az*(bx*cy - by*cx)",
        "nbc = sqrt((by*cz - bz*cy)^2 + (bz*cx - bx*cz)^2 + (bx*cy - by*cx)^2)",
        "nca = sqrt((cy*az - cz*ay)^2 + (cz*ax - cx*az)^2 + (cx*ay - cy*ax)^2)",
        "nab = sqrt((ay*bz - az*by)^2 + (az*bx - ax*bz)^2 + (ax*by - ay*bx)^2)",
        "la = sqrt(ax^2 + ay^2 + az^2)",
        "lb = sqrt(bx^2 + by^2 + bz^2)",
        "lc = sqrt(cx^2 + cy^2 + cz^2)",
        "ax = x2 - x1", "ay = y2 - y1", "az = z2 - z1",
        "bx = x3 - x1", "by = y3 - y1", "bz = z3 - z1",
        "cx = x4 - x1", "cy = y4 - y1", "cz = z4 - z1",
    ])


def out_of_plane_piece(mm, atoms: np.ndarray, params: np.ndarray) -> Piece:
    """Mean-Wilson-angle out-of-plane terms; atoms rows (centre, n1, n2, n3), params (k,)."""
    force = mm.CustomCompoundBondForce(4, _out_of_plane_expression())
    force.addPerBondParameter("k")

    def values(p):
        return (p[params[:, 0]] * _E)[:, None]

    return Piece("out_of_plane", force, atoms, values, _compound, _compound_set)


def stretch_bend_piece(mm, atoms: np.ndarray, params: np.ndarray,
                       scales: np.ndarray | None = None) -> Piece:
    """k (dr1 + dr2) dθ; params columns (k, r0_ij, r0_jk, theta0 in degrees); bond lengths
    times ``scales`` (columns sa, sb; 1/(f_i f_j) between reduced sites; default 1)."""
    expr = "k*(distance(p1,p2)*sa - r1 + distance(p2,p3)*sb - r2)*(angle(p1,p2,p3) - t0)"
    force = mm.CustomCompoundBondForce(3, expr)
    for name in ("k", "r1", "r2", "t0", "sa", "sb"):
        force.addPerBondParameter(name)
    sc = np.ones((atoms.shape[0], 2)) if scales is None else scales

    def values(p):
        return np.stack([
            p[params[:, 0]] * _K_SB, p[params[:, 1]] * _L, p[params[:, 2]] * _L,
            p[params[:, 3]] * DEG_TO_RAD, sc[:, 0], sc[:, 1],
        ], axis=1)

    return Piece("stretch_bend", force, atoms, values, _compound, _compound_set)


# --- nonbonded families ------------------------------------------------------------------


def _vdw_shape(form: str, rs: str, r: str = "r") -> str:
    """vdW energy per unit well depth as a Lepton expression of ``r`` and ``rs`` (nm)."""
    if form == "mm3":
        return (
            f"({_num(MM3_VDW_A)}*exp(-{_num(MM3_VDW_B)}*{r}/{rs}) "
            f"- {_num(MM3_VDW_C)}*({rs}/{r})^6)"
        )
    return f"(({rs}/{r})^12 - 2*({rs}/{r})^6)"


def _nonbonded(mm, expression: str, names: tuple[str, ...], n_atoms: int, pairs: np.ndarray):
    """CustomNonbondedForce (NoCutoff) acting on exactly ``pairs``: every other pair excluded."""
    force = _new_custom(mm.CustomNonbondedForce, expression, names)
    force.setNonbondedMethod(mm.CustomNonbondedForce.NoCutoff)
    keep = np.zeros((n_atoms, n_atoms), bool)
    keep[pairs[:, 0], pairs[:, 1]] = True
    keep |= keep.T
    iu, ju = np.triu_indices(n_atoms, k=1)
    exclude = ~keep[iu, ju]
    for i, j in zip(iu[exclude].tolist(), ju[exclude].tolist(), strict=True):
        force.addExclusion(i, j)
    return force


def vdw_pieces(mm, pairs, scale, atom_params, form: str, n_atoms: int) -> list[Piece]:
    """vdW over q2jax's pairs: r*_ij = r_i + r_j, eps_ij = sqrt(eps_i eps_j + 1e-300);
    pairs with r*_ij <= 0 have none (as in q2jax)."""
    out = []
    atoms = np.arange(n_atoms)[:, None]
    full = scale == 1.0
    if full.any():
        eps_floor = _num(_EPS_FLOOR * _E**2)
        expr = (
            f"select(step(-rs), 0, sqrt(eps1*eps2 + {eps_floor})*{_vdw_shape(form, 'rs')}); "
            "rs = rad1 + rad2"
        )
        force = _nonbonded(mm, expr, ("rad", "eps"), n_atoms, pairs[full])

        def values(p):
            return np.stack([p[atom_params[:, 0]] * _L, p[atom_params[:, 1]] * _E], axis=1)

        out.append(Piece("vdw", force, atoms, values, _particle, _particle_set))
    if (~full).any():
        sp, ss = pairs[~full], scale[~full]
        expr = f"s*eps*{_vdw_shape(form, 'rs')}"
        force = _new_custom(mm.CustomBondForce, expr, ("s", "rs", "eps"))

        def values_14(p):
            rs = p[atom_params[sp[:, 0], 0]] + p[atom_params[sp[:, 1], 0]]
            eps = np.sqrt(p[atom_params[sp[:, 0], 1]] * p[atom_params[sp[:, 1], 1]] + _EPS_FLOOR)
            on = rs > 0.0
            return np.stack([np.where(on, ss, 0.0), np.where(on, rs, 1.0) * _L, eps * _E], axis=1)

        out.append(Piece("vdw", force, sp, values_14, _custom_bond, _custom_bond_set))
    return out


def electrostatic_pieces(
    mm, pairs, scale, charge_params, dielectric: float, n_atoms: int
) -> list[Piece]:
    """Coulomb 332.06 q_i q_j / (eps_r r) over q2jax's pairs, each pair times its scale."""
    out = []
    kc = _COULOMB / dielectric
    full = scale == 1.0
    if full.any():
        force = _nonbonded(mm, f"{_num(kc)}*q1*q2/r", ("q",), n_atoms, pairs[full])

        def values(p):
            return p[charge_params][:, None]

        atoms = np.arange(n_atoms)[:, None]
        out.append(Piece("electrostatic", force, atoms, values, _particle, _particle_set))
    if (~full).any():
        sp, ss = pairs[~full], scale[~full]
        force = _new_custom(mm.CustomBondForce, "qq/r", ("qq",))

        def values_14(p):
            return (kc * ss * p[charge_params[sp[:, 0]]] * p[charge_params[sp[:, 1]]])[:, None]

        out.append(Piece("electrostatic", force, sp, values_14, _custom_bond, _custom_bond_set))
    return out


# --- scaled stretches, bend-bend, torsion-stretch, pairs at reduced sites --------------------


def scaled_stretch_piece(mm, atoms: np.ndarray, params: np.ndarray, scale: np.ndarray,
                         form: str) -> Piece:
    """Stretches of bond length r * sc (sc = 1/(f_i f_j) between reduced sites, as
    q2jax.energy); params columns (k, r0)."""
    energy = (f"k*dr^2*(1 + dr*({_num(-MM3_CUBIC / _L)} + {_num(MM3_QUARTIC / _L**2)}*dr))"
              if form == "mm3" else "k*dr^2")
    force = _new_custom(mm.CustomBondForce, f"{energy}; dr = r*sc - r0", ("k", "r0", "sc"))

    def values(p):
        return np.stack([p[params[:, 0]] * _K_BOND, p[params[:, 1]] * _L, scale], axis=1)

    return Piece("stretch", force, atoms, values, _custom_bond, _custom_bond_set)


def bend_bend_piece(mm, atoms: np.ndarray, params: np.ndarray) -> Piece:
    """-k1 k2 (θ1 - t1)(θ2 - t2); atoms rows (centre, a1, b1, a2, b2), angles a1-c-b1 and
    a2-c-b2; params columns (k1, k2, theta0_1, theta0_2 in degrees)."""
    expr = "-k1*k2*(angle(p2, p1, p3) - t1)*(angle(p4, p1, p5) - t2)"
    force = mm.CustomCompoundBondForce(5, expr)
    for name in ("k1", "k2", "t1", "t2"):
        force.addPerBondParameter(name)
    root_e = float(np.sqrt(_E))

    def values(p):
        return np.stack([p[params[:, 0]] * root_e, p[params[:, 1]] * root_e,
                         p[params[:, 2]] * DEG_TO_RAD, p[params[:, 3]] * DEG_TO_RAD], axis=1)

    return Piece("bend_bend", force, atoms, values, _compound, _compound_set)


def torsion_stretch_piece(mm, atoms: np.ndarray, params: np.ndarray, scale: np.ndarray
                          ) -> Piece:
    """-k (r sc - r0)(1 + cos 3φ), r the central bond (times sc = 1/(f_j f_k));
    params columns (k, r0)."""
    expr = "-k*(distance(p2, p3)*sc - r0)*(1 + cos(3*dihedral(p1, p2, p3, p4)))"
    force = mm.CustomCompoundBondForce(4, expr)
    for name in ("k", "r0", "sc"):
        force.addPerBondParameter(name)

    def values(p):
        return np.stack([p[params[:, 0]] * _K_SB, p[params[:, 1]] * _L, scale], axis=1)

    return Piece("torsion_stretch", force, atoms, values, _compound, _compound_set)


def site_pair_pieces(mm, pairs, sites, vdw_scale, elec_scale, pair_vdw, taper, atom_vdw,
                     charge_params, form: str, dielectric: float, families: set[str]
                     ) -> list[Piece]:
    """vdW and Coulomb over (site_i, site_j, i, j): energies at the site distance rho,
    the van der Waals taper (r_off^2 - r^2)/(r_off^2 - r_on^2) at the real distance r,
    pair-specific r*/eps where ``pair_vdw`` points at them (as q2jax.energy)."""
    rows = np.stack([sites[pairs[:, 0]], sites[pairs[:, 1]], pairs[:, 0], pairs[:, 1]], 1)
    out = []
    if "vdw" in families:
        expr = (f"on*eps*tp*{_vdw_shape(form, 'rs', 'rho')}; "
                "tp = select(roff, min(1, max(0, (roff^2 - r^2)/(roff^2 - ron^2 + step(-roff)))),"
                " 1); r = distance(p3, p4); rho = distance(p1, p2)")
        force = mm.CustomCompoundBondForce(4, expr)
        for name in ("on", "rs", "eps", "ron", "roff"):
            force.addPerBondParameter(name)

        def values(p):
            i, j = pairs[:, 0], pairs[:, 1]
            special = p[pair_vdw[:, 0]] > 0.0
            rs = np.where(special, p[pair_vdw[:, 0]], p[atom_vdw[i, 0]] + p[atom_vdw[j, 0]])
            eps = np.where(special, p[pair_vdw[:, 1]],
                           np.sqrt(p[atom_vdw[i, 1]] * p[atom_vdw[j, 1]] + _EPS_FLOOR))
            on = np.where(rs > 0.0, vdw_scale, 0.0)
            return np.stack([on, np.where(rs > 0.0, rs, 1.0) * _L, eps * _E, taper[:, 0] * _L,
                             taper[:, 1] * _L], axis=1)

        out.append(Piece("vdw", force, rows, values, _compound, _compound_set))
    if "charge" in families:
        force = mm.CustomCompoundBondForce(4, "qq/distance(p1, p2)")
        force.addPerBondParameter("qq")
        kc = _COULOMB / dielectric

        def values_q(p):
            qq = kc * elec_scale * p[charge_params[pairs[:, 0]]] * p[charge_params[pairs[:, 1]]]
            return qq[:, None]

        out.append(Piece("electrostatic", force, rows, values_q, _compound, _compound_set))
    return out


__all__ = [
    "FAMILIES",
    "Piece",
    "require_openmm",
    "stretch_piece",
    "bend_piece",
    "torsion_piece",
    "out_of_plane_piece",
    "stretch_bend_piece",
    "vdw_pieces",
    "electrostatic_pieces",
    "scaled_stretch_piece",
    "bend_bend_piece",
    "torsion_stretch_piece",
    "site_pair_pieces",
]
