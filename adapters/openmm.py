"""q2jax force fields in OpenMM: System/Topology export, System XML, and an
OpenMM energy engine (energies, forces, finite-difference Hessians,
minimisation, frequencies) that needs no JAX differentiation.

The OpenMM System holds exactly q2jax's energy of one molecule: the same
term lists (``q2jax.system.build_terms``, or the MM3* tables of
``q2jax.io.mm3_assign``), the same functional forms (bend-bend,
torsion-stretch, reduced hydrogen sites and MacroModel's van der Waals
taper included), the same nonbonded pairs and 1-4 scale factors, no other
cut-offs; see ``q2jax.adapters._openmm_forces`` for the force-by-force
mapping. Atoms keep the molecule's order and masses.

Units at this boundary: q2jax Å, kcal/mol, amu; OpenMM nm, kJ/mol, Da. Every
value this module returns is in q2jax units (energy kcal/mol, gradient
kcal/(mol Å), Hessian kcal/(mol Å^2), coordinates Å, frequencies cm^-1).

Linear bends. OpenMM evaluates bend angles with its own angle() (and
HarmonicAngleForce); q2jax uses a deviation square that stays smooth at
180°. Energies and forces agree at every geometry, linear ones included.
With a reference angle of exactly 180° the finite-difference Hessian agrees
with q2jax's analytic one at an (almost) exactly linear geometry too (SN2
transition state: 1e-5 cm^-1 harmonic; 0.015 cm^-1 MM3, whose odd powers
|dθ|^3, |dθ|^5 are not twice differentiable at 180° and are averaged over
the step). With a reference a hair below 180° (e.g. 179.99996° averaged
from a geometry) the energy near linearity is a cusped "hat" about
r (π - θ0) ≈ 1e-6 Å wide: no finite-difference step resolves it, and the
analytic Hessian inside it describes only that tiny region. Use exactly
180° for linear references.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from q2jax.errors import EngineError, InputError
from q2jax.forcefield import FORMS, ForceField
from q2jax.molecule import Molecule
from q2jax.system import Terms, build_terms
from q2jax.units import ANGSTROM_TO_NM, KJ_TO_KCAL, NM_TO_ANGSTROM

from ._openmm_forces import (
    FAMILIES,
    Piece,
    bend_bend_piece,
    bend_piece,
    electrostatic_pieces,
    out_of_plane_piece,
    require_openmm,
    scaled_stretch_piece,
    site_pair_pieces,
    stretch_bend_piece,
    stretch_piece,
    torsion_piece,
    torsion_stretch_piece,
    vdw_pieces,
)

_FORCE_TO_Q2JAX = KJ_TO_KCAL * ANGSTROM_TO_NM  # kJ/(mol nm) -> kcal/(mol Å)


# --- building the System -------------------------------------------------------------------


def full_params(ff: ForceField, params=None) -> np.ndarray:
    """``[params, fixed, 0]`` as a NumPy float64 vector (``ForceField.full_params`` on host)."""
    p = np.asarray(ff.params if params is None else params, dtype=np.float64)
    if p.shape != tuple(ff.params.shape):
        raise InputError(f"expected {ff.n_params} parameters, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise InputError("parameter vector contains NaN or inf")
    return np.concatenate([p, np.asarray(ff.fixed, dtype=np.float64), np.zeros(1)])


def _rows(terms, group: str):
    mask = np.asarray(getattr(terms, f"{group}_mask"), bool)
    atoms = np.asarray(getattr(terms, f"{group}_atoms"), np.int64)[mask]
    params = np.asarray(getattr(terms, f"{group}_params"), np.int64)[mask]
    return atoms, params


@dataclass(frozen=True)
class _Sites:
    """The molecule's reduced sites: ``index[a]`` is the OpenMM particle of atom a's site
    (a itself, or a virtual particle after the n atoms), ``scale`` the factors f."""

    index: np.ndarray
    parent: np.ndarray
    scale: np.ndarray
    moved: np.ndarray  # atoms with a virtual site

    @classmethod
    def of(cls, terms: Terms, n: int) -> _Sites:
        parent = np.asarray(terms.atom_site_parent, np.int64)[:n]
        scale = np.asarray(terms.atom_site_scale, np.float64)[:n]
        moved = (parent != np.arange(n)) & (scale != 1.0)
        index = np.arange(n)
        index[moved] = n + np.arange(int(moved.sum()))
        return cls(index, parent, scale, moved)

    def length_scale(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return 1.0 / (self.scale[a] * self.scale[b])


def _pieces(mm, ff: ForceField, molecule: Molecule, terms: Terms | None
            ) -> tuple[list[Piece], _Sites]:
    """The OpenMM forces of ``molecule`` under ``ff``, family by family, and its sites."""
    if ff.form not in FORMS:
        raise EngineError(f"functional form {ff.form!r} has no OpenMM representation; "
                          f"expected one of {FORMS}")
    if terms is None:
        terms = build_terms(ff, molecule)
    elif np.asarray(terms.atom_charge_params).shape != (molecule.n_atoms,):
        raise InputError(f"term tables are for {np.asarray(terms.atom_charge_params).shape[0]} "
                         f"atoms, molecule {molecule.name!r} has {molecule.n_atoms}")
    n = molecule.n_atoms
    sites = _Sites.of(terms, n)
    at = sites.index  # bonded terms act on the sites
    out: list[Piece] = []
    atoms, params = _rows(terms, "bond")
    if len(atoms):
        sc = sites.length_scale(atoms[:, 0], atoms[:, 1])
        if np.all(sc == 1.0):
            out.append(stretch_piece(mm, at[atoms], params, ff.form))
        else:
            out.append(scaled_stretch_piece(mm, at[atoms], params, sc, ff.form))
    atoms, params = _rows(terms, "angle")
    if len(atoms):
        out.append(bend_piece(mm, at[atoms], params, ff.form))
    atoms, params = _rows(terms, "torsion")
    if len(atoms):
        out.append(torsion_piece(mm, at[atoms], params))
    atoms, params = _rows(terms, "improper")
    if len(atoms):
        out.append(out_of_plane_piece(mm, at[atoms], params))
    atoms, params = _rows(terms, "sb")
    if len(atoms):
        sc = np.stack([sites.length_scale(atoms[:, 0], atoms[:, 1]),
                       sites.length_scale(atoms[:, 1], atoms[:, 2])], axis=1)
        out.append(stretch_bend_piece(mm, at[atoms], params, sc))
    atoms, params = _rows(terms, "bb")
    if len(atoms):
        out.append(bend_bend_piece(mm, at[atoms], params))
    atoms, params = _rows(terms, "ts")
    if len(atoms):
        sc = sites.length_scale(atoms[:, 1], atoms[:, 2])
        out.append(torsion_stretch_piece(mm, at[atoms], params, sc))
    atoms, params = _rows(terms, "ub")
    if len(atoms):  # Urey-Bradley: a harmonic stretch between the angle's ends
        sc = sites.length_scale(atoms[:, 0], atoms[:, 1])
        piece = (stretch_piece(mm, at[atoms], params, "harmonic") if np.all(sc == 1.0)
                 else scaled_stretch_piece(mm, at[atoms], params, sc, "harmonic"))
        out.append(dataclasses.replace(piece, family="urey_bradley"))
    mask = np.asarray(terms.pair_mask, bool)
    pairs = np.asarray(terms.pair_atoms, np.int64)[mask]
    fams = ff.families()
    pair_vdw = np.asarray(terms.pair_vdw_params, np.int64)[mask]
    taper = np.asarray(terms.pair_taper, np.float64)[mask]
    elec_scale = np.asarray(terms.pair_elec_scale, np.float64)[mask]
    at_sites = len(pairs) and (sites.moved[pairs].any() or (taper[:, 1] > 0.0).any()
                               or (pair_vdw != ff.zero_slot).any())
    if at_sites:
        out += site_pair_pieces(
            mm, pairs, at, np.asarray(terms.pair_vdw_scale, np.float64)[mask], elec_scale,
            pair_vdw, taper, np.asarray(terms.atom_vdw_params, np.int64),
            np.asarray(terms.atom_charge_params, np.int64), ff.form,
            float(ff.settings.dielectric), fams)
        return out, sites
    if len(pairs) and "vdw" in fams:
        scale = np.asarray(terms.pair_vdw_scale, np.float64)[mask]
        out += vdw_pieces(mm, pairs, scale, np.asarray(terms.atom_vdw_params, np.int64),
                          ff.form, n)
    if len(pairs) and "charge" in fams:
        out += electrostatic_pieces(mm, pairs, elec_scale,
                                    np.asarray(terms.atom_charge_params, np.int64),
                                    float(ff.settings.dielectric), n)
    return out, sites


def _topology(mm, molecule: Molecule, sites: _Sites):
    """One chain, one residue, atoms in the molecule's order with their bonds, then
    one element-less atom ``S<i>`` per virtual site (of atom i, bonded to it)."""
    app = mm.app
    top = app.Topology()
    chain = top.addChain()
    res = top.addResidue("MOL", chain)
    atoms = []
    for i, sym in enumerate(molecule.symbols):
        try:
            element = app.Element.getBySymbol(sym)
        except KeyError:
            element = None
        atoms.append(top.addAtom(f"{sym}{i + 1}", element, res))
    for a, b in molecule.bonds:
        top.addBond(atoms[a], atoms[b])
    for i in np.flatnonzero(sites.moved).tolist():
        top.addBond(atoms[i], top.addAtom(f"S{i + 1}", None, res))
    return top


@dataclass
class _Model:
    system: Any
    topology: Any
    pieces: list[Piece]
    n_atoms: int
    n_particles: int  # atoms, then virtual sites


def _build(ff: ForceField, molecule: Molecule, params=None, terms: Terms | None = None) -> _Model:
    mm = require_openmm()
    pieces, sites = _pieces(mm, ff, molecule, terms)
    p = full_params(ff, params)
    system = mm.System()
    for m in np.asarray(molecule.masses, np.float64).tolist():
        system.addParticle(m)
    for i in np.flatnonzero(sites.moved).tolist():  # s = (1 - f) x_parent + f x
        f = float(sites.scale[i])
        system.addParticle(0.0)
        system.setVirtualSite(int(sites.index[i]),
                              mm.TwoParticleAverageSite(int(sites.parent[i]), i, 1.0 - f, f))
    for piece in pieces:
        piece.fill(p)
        piece.force.setForceGroup(FAMILIES.index(piece.family))
        system.addForce(piece.force)
    return _Model(system, _topology(mm, molecule, sites), pieces, molecule.n_atoms,
                  system.getNumParticles())


def to_openmm_system(ff: ForceField, molecule: Molecule, *, terms: Terms | None = None):
    """``(openmm.System, openmm.app.Topology)`` holding q2jax's energy of ``molecule``.

    The terms are ``build_terms(ff, molecule)`` unless ``terms`` gives other
    tables of the same molecule (e.g. the MM3* assignment of
    ``q2jax.io.mm3_assign``, ``Mm3ForceField.systems[i].terms``). Atoms in the
    molecule's order with its masses (amu), then one massless virtual site per
    reduced MM3* hydrogen (none for ``build_terms`` tables): give those any
    positions and call ``Context.computeVirtualSites()``. Force group i holds family
    ``FAMILIES[i]`` (stretch, bend, torsion, out_of_plane, stretch_bend, vdw,
    electrostatic, bend_bend, torsion_stretch). Positions must be given in nm.
    """
    model = _build(ff, molecule, terms=terms)
    return model.system, model.topology


def write_system_xml(
    ff: ForceField, molecule: Molecule, path: str | Path, *, terms: Terms | None = None
) -> Path:
    """Serialise the OpenMM System of ``molecule`` under ``ff`` (``openmm.XmlSerializer``).

    Plain OpenMM reproduces q2jax's energies from it: deserialise, build a
    Context, set the positions (nm; any values for virtual sites after the
    atoms), ``computeVirtualSites()``. Returns the path written.
    """
    mm = require_openmm()
    system, _ = to_openmm_system(ff, molecule, terms=terms)
    out = Path(path)
    try:
        out.write_text(mm.XmlSerializer.serialize(system))
    except OSError as exc:
        raise EngineError(f"{out}: cannot write the OpenMM System XML ({exc.strerror})") from None
    return out


def read_system_xml(path: str | Path):
    """The ``openmm.System`` stored in an XML file written by :func:`write_system_xml`."""
    mm = require_openmm()
    src = Path(path)
    if not src.is_file():
        raise InputError(f"{src}: no such OpenMM System XML file")
    text = src.read_text()
    try:
        system = mm.XmlSerializer.deserialize(text)
    except Exception as exc:  # OpenMM raises a bare Exception on malformed XML
        raise InputError(f"{src}: not an OpenMM System XML file ({exc})") from None
    if not isinstance(system, mm.System):
        raise InputError(f"{src}: holds a {type(system).__name__}, expected an OpenMM System")
    return system


# --- the engine ------------------------------------------------------------------------------


@dataclass
class _Entry:
    model: _Model
    context: Any
    params: np.ndarray


def _structure_key(ff: ForceField, molecule: Molecule, terms: Terms | None) -> tuple:
    tables = None if terms is None else tuple(
        np.asarray(getattr(terms, name)).tobytes() for name in Terms.__dataclass_fields__
    )
    return (
        ff.entries, ff.form, ff.settings, ff.n_params,
        molecule.symbols, molecule.atom_types, molecule.bonds,
        np.asarray(molecule.masses, np.float64).tobytes(),
        np.asarray(molecule.coords, np.float64).tobytes(),  # topology perception reads them
        tables,
    )


@lru_cache(maxsize=1)
def _frequencies_jit():
    """``q2jax.vibrations.frequencies`` compiled once per molecule size."""
    import jax

    from q2jax.vibrations import frequencies

    return jax.jit(frequencies, static_argnums=3)


def _rigid_projector(coords: np.ndarray) -> np.ndarray:
    """Projector onto Cartesian displacements orthogonal to rigid translations and rotations."""
    n = coords.shape[0]
    r = coords - coords.mean(axis=0)
    vecs = [np.tile(e, n) for e in np.eye(3)] + [np.cross(e, r).ravel() for e in np.eye(3)]
    q, s, _ = np.linalg.svd(np.stack(vecs, axis=1), full_matrices=False)
    q = q[:, s > 1e-8 * s[0]]
    return np.eye(3 * n) - q @ q.T


class OpenMMEngine:
    """Energies, forces and finite-difference Hessians of q2jax force fields, from OpenMM.

    One Context is kept per (force-field structure, molecule) (up to
    ``cache_size``, least recently used dropped). A force field with the same
    structure but new values updates that Context in place, so an optimizer's
    repeated calls cost one OpenMM evaluation each (plus a parameter update of
    the terms whose values changed).

    ``precision`` ("double", "mixed", "single") is set on platforms that have a
    ``Precision`` property (CUDA, OpenCL); the Reference platform always
    computes in double precision; the CPU platform has no setting, so it needs
    ``precision=None``. ``hessian_step`` is the finite-difference displacement
    in Å (1e-4 Å: Hessians agree with q2jax's analytic ones to ~1e-8 relative).
    """

    def __init__(
        self,
        platform: str = "Reference",
        precision: str | None = "double",
        properties: dict[str, str] | None = None,
        *,
        hessian_step: float = 1e-4,
        cache_size: int = 16,
    ):
        self.platform_name = platform
        self.precision = precision
        self.properties = dict(properties or {})
        self.hessian_step = float(hessian_step)
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[tuple, _Entry] = OrderedDict()
        self._last: tuple | None = None  # (ff, molecule, terms, entry) of the previous call
        self.n_evaluations = 0

    # --- contexts ------------------------------------------------------------------------
    def _platform(self, mm):
        try:
            platform = mm.Platform.getPlatformByName(self.platform_name)
        except Exception:
            count = mm.Platform.getNumPlatforms()
            names = [mm.Platform.getPlatform(i).getName() for i in range(count)]
            raise EngineError(
                f"OpenMM platform {self.platform_name!r} is not available; have {names}"
            ) from None
        props = dict(self.properties)
        settable = "Precision" in platform.getPropertyNames()
        if self.precision is not None and "Precision" not in props:
            if settable:
                props["Precision"] = self.precision
            elif not (self.platform_name == "Reference" and self.precision == "double"):
                raise EngineError(
                    f"OpenMM platform {self.platform_name!r} has no precision setting "
                    f"(asked for {self.precision!r}); pass precision=None to accept its own"
                )
        return platform, props

    def _entry(self, ff: ForceField, molecule: Molecule, params=None, terms=None) -> _Entry:
        p = full_params(ff, params)
        last = self._last
        if last is not None and last[0] is ff and last[1] is molecule and last[2] is terms:
            entry = last[3]  # the same objects as the previous call: skip the structure key
        else:
            key = _structure_key(ff, molecule, terms)
            entry = self._cache.get(key)
            if entry is None:
                entry = self._new_entry(ff, molecule, p, params, terms)
                self._cache[key] = entry
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
            self._last = (ff, molecule, terms, entry)
        if not np.array_equal(p, entry.params):
            for piece in entry.model.pieces:
                if piece.update(p):
                    piece.force.updateParametersInContext(entry.context)
            entry.params = p
        return entry

    def _new_entry(self, ff, molecule, p, params, terms) -> _Entry:
        mm = require_openmm()
        model = _build(ff, molecule, params, terms)
        platform, props = self._platform(mm)
        try:
            context = mm.Context(model.system, mm.VerletIntegrator(1e-3), platform, props)
        except Exception as exc:
            raise EngineError(f"OpenMM could not create a Context: {exc}") from None
        return _Entry(model, context, p)

    def context(self, ff: ForceField, molecule: Molecule, params=None, *, terms=None):
        """The cached ``openmm.Context`` of ``molecule`` under ``ff`` (parameters current)."""
        return self._entry(ff, molecule, params, terms).context

    @staticmethod
    def _coords(molecule: Molecule, coords) -> np.ndarray:
        x = np.asarray(molecule.coords if coords is None else coords, dtype=np.float64)
        if x.shape != (molecule.n_atoms, 3):
            raise InputError(f"coordinates have shape {x.shape}, expected ({molecule.n_atoms}, 3) "
                             f"for molecule {molecule.name!r}")
        if not np.all(np.isfinite(x)):
            raise InputError(f"coordinates of molecule {molecule.name!r} contain NaN or inf")
        return x

    @staticmethod
    def _set_positions(context, x: np.ndarray) -> None:
        """Atoms at ``x`` (Å); virtual sites (after the atoms) computed from them."""
        extra = context.getSystem().getNumParticles() - x.shape[0]
        if extra:
            context.setPositions(np.concatenate([x, np.zeros((extra, 3))]) * ANGSTROM_TO_NM)
            context.computeVirtualSites()
        else:
            context.setPositions(x * ANGSTROM_TO_NM)

    def _evaluate(self, context, x: np.ndarray, forces: bool = True, groups: int = -1):
        """(energy kcal/mol, gradient kcal/(mol Å) or None) at ``x`` (Å). The forces on
        virtual sites are already carried by their atoms; only the atoms' are returned."""
        self._set_positions(context, x)
        state = context.getState(getEnergy=True, getForces=forces, groups=groups)
        self.n_evaluations += 1
        e = state.getPotentialEnergy()._value * KJ_TO_KCAL  # OpenMM reports kJ/mol
        g = (-state.getForces(asNumpy=True)._value[: x.shape[0]] * _FORCE_TO_Q2JAX
             if forces else None)
        if not np.isfinite(e) or (g is not None and not np.all(np.isfinite(g))):
            raise EngineError("OpenMM returned a non-finite energy or force (atoms overlapping "
                              "or parameters out of range?)")
        return e, g

    # --- public evaluations ------------------------------------------------------------------
    # Every method takes the force field, the molecule, coordinates in Å (default: the
    # molecule's), an optional trainable vector ``params`` replacing ``ff.params``, and
    # optional term tables ``terms`` (default ``build_terms(ff, molecule)``).

    def energy(self, ff: ForceField, molecule: Molecule, coords=None, params=None, *,
               terms=None) -> float:
        """Total MM energy, kcal/mol."""
        entry = self._entry(ff, molecule, params, terms)
        return self._evaluate(entry.context, self._coords(molecule, coords), forces=False)[0]

    def energy_and_gradient(self, ff: ForceField, molecule: Molecule, coords=None, params=None,
                            *, terms=None) -> tuple[float, np.ndarray]:
        """(energy kcal/mol, dE/dx kcal/(mol Å) of shape (n, 3))."""
        entry = self._entry(ff, molecule, params, terms)
        return self._evaluate(entry.context, self._coords(molecule, coords))

    def gradient(self, ff: ForceField, molecule: Molecule, coords=None, params=None, *,
                 terms=None) -> np.ndarray:
        """dE/dx, kcal/(mol Å), shape (n, 3) (minus OpenMM's forces)."""
        return self.energy_and_gradient(ff, molecule, coords, params, terms=terms)[1]

    def energy_components(self, ff: ForceField, molecule: Molecule, coords=None, params=None,
                          *, terms=None) -> dict[str, float]:
        """Energy of each family present, kcal/mol (keys as ``q2jax.energy.energy_components``)."""
        entry = self._entry(ff, molecule, params, terms)
        x = self._coords(molecule, coords)
        fams = sorted({p.family for p in entry.model.pieces}, key=FAMILIES.index)
        return {f: self._evaluate(entry.context, x, False, 1 << FAMILIES.index(f))[0] for f in fams}

    def hessian(self, ff: ForceField, molecule: Molecule, coords=None, params=None, *,
                terms=None, step: float | None = None) -> np.ndarray:
        """Cartesian Hessian, kcal/(mol Å^2), shape (3n, 3n): central differences of
        OpenMM's forces with displacement ``step`` Å (default ``hessian_step``), symmetrised."""
        entry = self._entry(ff, molecule, params, terms)
        x = self._coords(molecule, coords)
        return self._fd_hessian(entry.context, x, self.hessian_step if step is None else step)

    def _fd_hessian(self, context, x: np.ndarray, h: float) -> np.ndarray:
        n3 = x.size
        hess = np.empty((n3, n3))
        flat = x.ravel()
        for a in range(n3):
            xp, xm = flat.copy(), flat.copy()
            xp[a] += h
            xm[a] -= h
            gp = self._evaluate(context, xp.reshape(x.shape))[1]
            gm = self._evaluate(context, xm.reshape(x.shape))[1]
            hess[:, a] = (gp - gm).ravel() / (2.0 * h)
        return 0.5 * (hess + hess.T)

    def minimize(
        self,
        ff: ForceField,
        molecule: Molecule,
        coords=None,
        params=None,
        *,
        terms=None,
        tolerance: float = 1e-4,
        max_iterations: int = 0,
        newton_steps: int = 10,
        max_step: float = 0.1,
    ) -> tuple[np.ndarray, float]:
        """Relax the geometry: OpenMM's LocalEnergyMinimizer (L-BFGS) to ``tolerance``
        kcal/(mol Å), then up to ``newton_steps`` Newton steps with the
        finite-difference Hessian (rigid-body motions projected out, negative or
        near-zero curvatures skipped, steps capped at ``max_step`` Å, backtracking
        on energy) until the largest gradient component is below ``tolerance``.

        Returns (coordinates Å, shape (n, 3); largest |dE/dx| component, kcal/(mol Å)).
        """
        mm = require_openmm()
        entry = self._entry(ff, molecule, params, terms)
        ctx = entry.context
        x = self._coords(molecule, coords)
        self._set_positions(ctx, x)
        tol_kj_nm = tolerance / _FORCE_TO_Q2JAX
        mm.LocalEnergyMinimizer.minimize(ctx, tol_kj_nm, int(max_iterations))
        x = ctx.getState(getPositions=True).getPositions(asNumpy=True)._value * NM_TO_ANGSTROM
        x = x[: molecule.n_atoms]
        e, g = self._evaluate(ctx, x)
        for _ in range(int(newton_steps)):
            if np.abs(g).max() < tolerance:
                break
            x, e, g = self._newton_step(ctx, x, e, g, max_step)
        return x, float(np.abs(g).max())

    def _newton_step(self, ctx, x, e, g, max_step):
        proj = _rigid_projector(x)
        hess = proj @ self._fd_hessian(ctx, x, self.hessian_step) @ proj
        w, v = np.linalg.eigh(0.5 * (hess + hess.T))
        keep = w > 1e-8 * max(np.abs(w).max(), 1e-12)
        gp = proj @ g.ravel()
        dx = -(v[:, keep] @ ((v[:, keep].T @ gp) / w[keep])).reshape(x.shape)
        norm = np.linalg.norm(dx)
        if norm > max_step:
            dx *= max_step / norm
        for _ in range(20):
            e_new, g_new = self._evaluate(ctx, x + dx)
            if e_new <= e + 1e-10 * max(1.0, abs(e)) or np.abs(g_new).max() < np.abs(g).max():
                return x + dx, e_new, g_new
            dx *= 0.5
        return x, e, g

    def frequencies(self, ff: ForceField, molecule: Molecule, coords=None, params=None, *,
                    terms=None, step: float | None = None) -> np.ndarray:
        """Vibrational frequencies, cm^-1 (imaginary negative), from the
        finite-difference Hessian at ``coords`` via ``q2jax.vibrations.frequencies``."""
        from q2jax.vibrations import n_vibrations

        x = self._coords(molecule, coords)
        hess = self.hessian(ff, molecule, x, params, terms=terms, step=step)
        n_vib = n_vibrations(molecule.n_atoms, molecule.with_coords(x).is_linear)
        return np.asarray(_frequencies_jit()(hess, x, np.asarray(molecule.masses), n_vib))

    def timings(self, ff, molecule, repeats: int = 50) -> dict[str, float]:
        """Wall time per energy, per energy+gradient and per Hessian, in ms (warm Context)."""
        self.energy(ff, molecule)
        out = {}
        for name, fun, reps in (
            ("energy_ms", self.energy, repeats),
            ("gradient_ms", self.energy_and_gradient, repeats),
            ("hessian_ms", self.hessian, max(1, repeats // 10)),
        ):
            t0 = time.perf_counter()
            for _ in range(reps):
                fun(ff, molecule)
            out[name] = 1e3 * (time.perf_counter() - t0) / reps
        return out


__all__ = [
    "FAMILIES",
    "OpenMMEngine",
    "full_params",
    "read_system_xml",
    "to_openmm_system",
    "write_system_xml",
]
