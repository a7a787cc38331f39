"""The ``q2jax`` command line (see CONTRACTS.md for the output shapes).

    q2jax fit --xyz GEOM.xyz --hessian HESS.npy [--hessian-units hartree/bohr2]
              [--form harmonic|mm3] [--method NAME] [--out DIR]
    q2jax fit --qm FILE.fchk|FILE.log|JAGUAR.in [--form ...] [--out DIR]
    q2jax fit CONFIG.yaml [--out DIR]
    q2jax evaluate --forcefield DIR/forcefield.json (--xyz ... --hessian ... | --qm FILE) [--json]
    q2jax seminario (--xyz ... --hessian ... | --qm FILE) [--form ...] [--out FF.json]
    q2jax export --forcefield FF.json (--xyz GEOM.xyz | --qm FILE) --openmm X.xml | --tinker DIR
                 | --frcmod X.frcmod
    q2jax qm MOLECULE.xyz --method b3lyp --basis 6-31g* [--out DIR]     (needs the qm extra)

Bad input: one line on stderr naming the file and the problem, exit status
2; a traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

EXIT_BAD_INPUT = 2
FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
"""A one-off fit is dominated by XLA compilation; these flags halve it (the
compiled code runs slower, which a single fit does not notice). Set
Q2JAX_OPTIMIZE_CODE=1 (or XLA_FLAGS yourself) to keep XLA's defaults."""


def _configure_xla() -> None:
    if os.environ.get("Q2JAX_OPTIMIZE_CODE") or "XLA_FLAGS" in os.environ:
        return
    os.environ["XLA_FLAGS"] = FAST_COMPILE_FLAGS


def _enable_compilation_cache() -> None:
    """Persistent XLA cache: later runs skip most compile time."""
    if os.environ.get("Q2JAX_NO_COMPILATION_CACHE"):
        return
    import jax

    cache = os.environ.get("Q2JAX_CACHE_DIR", str(Path.home() / ".cache" / "q2jax" / "xla"))
    try:
        Path(cache).mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    except Exception:  # a read-only home must not stop the tool
        pass


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _Stage:
    """Prints 'stage... done (1.2 s)' on stderr."""

    def __init__(self, text: str, quiet: bool = False):
        self.text, self.quiet = text, quiet

    def __enter__(self):
        self.t = time.perf_counter()
        if not self.quiet:
            print(f"{self.text} ...", file=sys.stderr, flush=True)
        return self

    def __exit__(self, exc_type, *_):
        if not self.quiet:
            dt = time.perf_counter() - self.t
            word = "done" if exc_type is None else "failed"
            print(f"{self.text}: {word} ({dt:.1f} s)", file=sys.stderr, flush=True)


# --- inputs ---------------------------------------------------------------------------------


def _load_single(args):
    """(molecule, hessian kcal/mol/Å^2, qm frequencies) from --xyz/--hessian or --qm."""
    import jax.numpy as jnp
    import numpy as np

    from q2jax.errors import InputError
    from q2jax.io import read_qm
    from q2jax.molecule import validate_hessian
    from q2jax.units import hessian_factor
    from q2jax.vibrations import frequencies

    tol = {"bond_tolerance": args.bond_tolerance} if args.bond_tolerance else {}
    if args.qm and args.xyz:
        raise InputError("give either --qm FILE or --xyz GEOM --hessian HESS, not both")
    if args.qm:
        path = Path(args.qm)
        if not path.exists():
            raise InputError(f"{path}: no such file")
        qm = read_qm(path)
        hessian = None
        if args.hessian:
            hessian = _read_hessian(
                Path(args.hessian), qm.n_atoms, hessian_factor(args.hessian_units)
            )
        elif qm.hessian is not None:
            hessian = qm.checked_hessian()
        if hessian is None:
            hint = " (for Jaguar, pass the .in file with its &hess section)" if str(
                path).endswith((".out", ".out.gz")) else ""
            raise InputError(f"{path}: no Hessian in this file{hint}; add --hessian HESS.npy")
        name = args.name or path.name.split(".")[0]
        mol = qm.to_molecule(name=name, **tol)
    elif args.xyz:
        path = Path(args.xyz)
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if not args.hessian:
            raise InputError("--xyz needs --hessian HESS.npy (or use --qm FILE)")
        qm = read_qm(path)
        name = args.name or path.name.split(".")[0].replace("-optimized", "")
        mol = qm.to_molecule(name=name, **tol)
        hessian = _read_hessian(Path(args.hessian), mol.n_atoms, hessian_factor(args.hessian_units))
    else:
        raise InputError("give --xyz GEOM.xyz --hessian HESS.npy, --qm FILE, or a CONFIG.yaml")
    hessian = validate_hessian(hessian, mol.n_atoms, name=f"{args.hessian or args.qm} Hessian")
    nu = np.asarray(frequencies(jnp.asarray(hessian), mol.coords, mol.masses, mol.n_vibrations))
    return mol, hessian, nu


def _read_hessian(path: Path, n_atoms: int, factor: float):
    import numpy as np

    from q2jax.errors import InputError
    from q2jax.molecule import validate_hessian

    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        if path.suffix == ".npy":
            raw = np.load(path, allow_pickle=False)
        else:
            raw = np.loadtxt(path)
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: cannot read a Hessian matrix ({exc})") from None
    raw = np.asarray(raw, dtype=float)
    if raw.ndim == 2 and raw.shape != (3 * n_atoms, 3 * n_atoms):
        raise InputError(f"{path}: Hessian is {raw.shape[0]}x{raw.shape[1]} but the geometry has "
                         f"{n_atoms} atoms (expected {3 * n_atoms}x{3 * n_atoms})")
    return validate_hessian(raw * factor, n_atoms, name=str(path))


# --- fit --------------------------------------------------------------------------------------


def _state(ev) -> dict:
    return ev.state()


def _molecule_report(mol, result, idx, qm_nu) -> dict:
    start, final = result.start_eval[idx], result.final_eval[idx]
    return {
        "molecule": mol.name,
        "n_atoms": mol.n_atoms,
        "qm_frequencies_cm1": [float(x) for x in qm_nu],
        "start": _state(start),
        "final": _state(final),
    }


def _write_outputs(out: Path, result, molecules, qm_freqs, args, settings: dict) -> dict:
    from q2jax.evaluate import KNOWN_FLOORS

    out.mkdir(parents=True, exist_ok=True)
    ff = result.forcefield
    ff.to_json(out / "forcefield.json")
    xml_written = []
    try:
        from q2jax.adapters.openmm import write_system_xml

        for mol in molecules:
            path = out / f"{mol.name}.system.xml"
            write_system_xml(ff, mol, path)
            xml_written.append(path.name)
    except Exception as exc:  # OpenMM is a dependency, but report rather than crash
        _say(f"warning: OpenMM System XML not written ({exc})")
    report = {
        "form": ff.form,
        "method": result.method,
        "n_params": ff.n_params,
        "param_labels": ff.get_param_type_labels(),
        "params_start": [float(x) for x in result.start.params],
        "params_final": [float(x) for x in ff.params],
        "wall_time_s": result.wall_time_s,
        "n_evaluations": result.n_evaluations,
        "solver_status": result.solver.message if hasattr(result.solver, "message") else "",
        "objective": {
            "start": float(result.solver.history[0]),
            "final": float(result.solver.value),
        },
        "figures_measured_at": "MM-relaxed geometry (tight stationary point); at_qm_geometry is "
        "for information only",
        "system_xml": xml_written,
        "notes": list(result.notes),
        "settings": settings,
    }
    per = [_molecule_report(m, result, i, qm_freqs[i]) for i, m in enumerate(molecules)]
    if len(molecules) == 1:
        report = {"molecule": molecules[0].name, **report, **{k: v for k, v in per[0].items()
                                                             if k != "molecule"}}
        floor = KNOWN_FLOORS.get((molecules[0].name, ff.form, "fixed_eq_4k"))
        if floor:
            report["known_floor"] = {"freq_rmsd_cm1": floor[0], "model": floor[1]}
    else:
        report["molecules"] = {p["molecule"]: p for p in per}
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    try:
        from q2jax.plotting import plot_convergence

        plot_convergence(result.history, out / "convergence.png",
                         title=f"{result.method}: objective per iteration")
    except Exception as exc:
        _say(f"warning: convergence plot not written ({exc})")
    return report


def _print_fit_table(result, molecules, qm_freqs, report: dict) -> None:
    lines = []
    for i, mol in enumerate(molecules):
        s, f = result.start_eval[i], result.final_eval[i]
        lines.append(f"\n{mol.name}: {mol.n_atoms} atoms, form {result.forcefield.form}, "
                     f"{result.forcefield.n_params} parameters, method {result.method}")
        lines.append(f"  {'mode':>4s} {'QM':>9s} {'start':>9s} {'final':>9s}   (cm^-1, at the "
                     "MM-relaxed geometry)")
        for k, q in enumerate(qm_freqs[i]):
            lines.append(f"  {k + 1:4d} {q:9.1f} {s.frequencies_cm1[k]:9.1f} "
                         f"{f.frequencies_cm1[k]:9.1f}")
        lines.append(f"  {'':4s} {'RMSD':>9s} {s.freq_rmsd_cm1:9.1f} {f.freq_rmsd_cm1:9.1f}")
        lines.append(f"  {'':4s} {'MAE':>9s} {s.freq_mae_cm1:9.1f} {f.freq_mae_cm1:9.1f}")
        if s.mode_matched and f.mode_matched:
            sm, fm = s.mode_matched, f.mode_matched
            lines.append(f"  {'':4s} {'matched':>9s} {sm['freq_rmsd_cm1']:9.1f} "
                         f"{fm['freq_rmsd_cm1']:9.1f}   RMSD with each QM mode paired to the MM "
                         "mode it overlaps most")
            if fm["n_reordered"]:
                lines.append(f"  note: the fitted force field reorders {fm['n_reordered']} "
                             "mode(s) relative to QM (sorted order pairs modes of different "
                             "character; the matched RMSD is the stricter figure)")
        lines.append(f"  geometry RMSD vs QM (Å):    start {s.geom_rmsd_angstrom:.4f}   final "
                     f"{f.geom_rmsd_angstrom:.4f}")
        lines.append(f"  imaginary MM modes:         start {s.n_imaginary}   final {f.n_imaginary}")
        lines.append(f"  residual force (kcal/mol/Å): final {f.max_force_kcal_mol_A:.1e}")
        lines.append(f"  (at the QM geometry, for information: RMSD start "
                     f"{s.at_qm_geometry['freq_rmsd_cm1']:.1f}, final "
                     f"{f.at_qm_geometry['freq_rmsd_cm1']:.1f})")
    if "known_floor" in report:
        kf = report["known_floor"]
        lines.append(f"  known floor: {kf['freq_rmsd_cm1']} cm^-1 RMSD for the {kf['model']} "
                     "(a fit with free equilibrium values can go below it by straining "
                     "the minimum)")
    lines.append("\nparameters:")
    for lab, a, b, e in zip(result.forcefield.get_param_type_labels(), result.start.params,
                            result.forcefield.params, result.forcefield.trainable_entries,
                            strict=True):
        lines.append(f"  {lab:<28s} {float(a):11.4f} -> {float(b):11.4f} {e.unit}")
    for note in result.notes:
        lines.append(f"note: {note}")
    lines.append(f"\n{result.n_evaluations} evaluations, {result.wall_time_s:.1f} s "
                 f"(includes one-off compilation)")
    print("\n".join(lines))


def cmd_fit(args) -> int:
    from q2jax.errors import InputError
    from q2jax.fit import DEFAULT_CARTESIAN_WEIGHT, default_fit, fit, qfuerza_start

    progress = None if args.quiet else True
    if args.config:
        from q2jax.forcefield import ForceField
        from q2jax.io import read_reference_yaml

        with _Stage(f"reading {args.config}", args.quiet):
            rf = read_reference_yaml(args.config)
        settings = rf.settings
        form = args.form or settings.get("form", "harmonic")
        method = args.method or settings.get("method", "lm")
        maxiter = args.maxiter or int(settings.get("maxiter", 100))
        mols = rf.refs.molecules
        if any(h is None for h in rf.hessians):
            raise InputError(f"{args.config}: every molecule needs a QM Hessian for the "
                             "QFUERZA start and the honest figures")
        if any(f is None for f in rf.qm_frequencies):
            raise InputError(f"{args.config}: every molecule needs QM frequencies")
        ff0 = qfuerza_start(ForceField.from_molecules(mols, form), mols, rf.hessians)
        if args.match_modes and "eigenmatrix" not in rf.refs.kinds():
            from q2jax.reference import EigenmatrixData

            for i, h in enumerate(rf.hessians):  # QM modes for the matching, not fitted
                rf.refs.add(EigenmatrixData(i, h, 0.0))
        with _Stage("fitting (first run compiles; later runs use the cache)", args.quiet):
            result = fit(ff0, rf.refs, method=method, maxiter=maxiter,
                         mode_matching=args.match_modes,
                         transition_state=rf.transition_state, qm_frequencies=rf.qm_frequencies,
                         qm_hessians=rf.hessians, progress=progress)
        qm_freqs = rf.qm_frequencies
        name = Path(args.config).stem
    else:
        mol, hessian, nu = _load_single(args)
        mols, qm_freqs = [mol], [nu]
        form, method = args.form or "harmonic", args.method or "lm"
        maxiter = args.maxiter or 100
        ts = bool(args.transition_state)
        weight = (
            DEFAULT_CARTESIAN_WEIGHT if args.cartesian_weight is None else args.cartesian_weight
        )
        with _Stage("fitting (first run compiles; later runs use the cache)", args.quiet):
            result = default_fit(mols, [hessian], form=form, method=method, maxiter=maxiter,
                                 transition_state=ts, progress=progress, cartesian_weight=weight,
                                 mode_matching=args.match_modes)
        name = mol.name
    out = Path(args.out) if args.out else Path("out") / f"fit-{name}"
    settings = {"form": form, "method": method, "maxiter": maxiter,
                "cartesian_weight": args.cartesian_weight or DEFAULT_CARTESIAN_WEIGHT,
                "mode_matching": bool(args.match_modes)}
    report = _write_outputs(out, result, mols, qm_freqs, args, settings)
    _print_fit_table(result, mols, qm_freqs, report)
    print(f"\nwrote {out}/forcefield.json, {out}/report.json"
          + "".join(f", {out}/{x}" for x in report["system_xml"]))
    return 0


def cmd_evaluate(args) -> int:
    from q2jax.evaluate import evaluate, summary_table
    from q2jax.forcefield import ForceField

    ff = ForceField.from_json(args.forcefield)
    mol, hessian, nu = _load_single(args)
    evs = evaluate(ff, [mol], [nu], qm_hessians=[hessian])
    if args.json:
        out = {"molecule": mol.name, "form": ff.form, "n_params": ff.n_params,
               "qm_frequencies_cm1": [float(x) for x in nu], "state": evs[0].state()}
        print(json.dumps(out, indent=1))
    else:
        print(summary_table(evs, f"{args.forcefield} on {mol.name}:"))
    return 0


def cmd_seminario(args) -> int:
    from q2jax.forcefield import ForceField
    from q2jax.seminario import estimate_force_constants

    mol, hessian, _ = _load_single(args)
    ff = ForceField.from_molecules([mol], args.form or "harmonic")
    ff = estimate_force_constants(ff, [mol], [hessian], method=args.estimate)
    print(ff.summary())
    if args.out:
        ff.to_json(args.out)
        print(f"wrote {args.out}")
    return 0


def cmd_export(args) -> int:
    from q2jax.errors import InputError
    from q2jax.forcefield import ForceField

    ff = ForceField.from_json(args.forcefield)
    targets = [x for x in (args.openmm, args.tinker, args.frcmod, args.fld) if x]
    if len(targets) != 1:
        raise InputError(
            "give exactly one of --openmm OUT.xml, --tinker DIR, --frcmod OUT, --fld OUT"
        )
    if args.frcmod:
        from q2jax.io import forcefield_to_frcmod, write_frcmod

        write_frcmod(forcefield_to_frcmod(ff), args.frcmod)
        print(f"wrote {args.frcmod}")
        return 0
    if args.fld:
        raise InputError("--fld export needs the .fld the force field came from; use the Python "
                         "API (q2jax.io.Mm3ForceField.to_fld) for .fld-based force fields")
    mol, _, _ = _load_single_geometry(args)
    if args.openmm:
        from q2jax.adapters.openmm import write_system_xml

        write_system_xml(ff, mol, args.openmm)
        print(f"wrote {args.openmm}")
    else:
        from q2jax.adapters.tinker import write_tinker_inputs

        files = write_tinker_inputs(ff, mol, args.tinker, name=mol.name)
        print("wrote " + ", ".join(str(p) for p in (files.xyz, files.key, files.prm)))
    return 0


def _load_single_geometry(args):
    from q2jax.errors import InputError
    from q2jax.io import read_qm

    src = args.qm or args.xyz
    if not src:
        raise InputError("export needs the molecule: --xyz GEOM.xyz or --qm FILE")
    if not Path(src).exists():
        raise InputError(f"{src}: no such file")
    qm = read_qm(src)
    name = args.name or Path(src).name.split(".")[0]
    return qm.to_molecule(name=name), None, None


def cmd_qm(args) -> int:
    from q2jax.errors import EngineError

    try:
        from q2jax.adapters.pyscf import make_reference
    except ImportError as exc:
        raise EngineError(f"the qm command needs PySCF: pip install 'q2jax[qm]' ({exc})") from None
    out = Path(args.out) if args.out else Path("out") / f"qm-{Path(args.molecule).stem}"
    path = make_reference(args.molecule, out, method=args.method, basis=args.basis,
                          optimize=not args.no_optimize, charge=args.charge, spin=args.spin)
    print(f"wrote {path}; fit it with: q2jax fit {path}")
    return 0


# --- parser -----------------------------------------------------------------------------------


def _add_inputs(p, *, hessian=True):
    p.add_argument("--xyz", help="geometry (.xyz, Å)")
    if hessian:
        p.add_argument("--hessian", help="Cartesian Hessian (.npy or text), atom order of the xyz")
        p.add_argument("--hessian-units", default="hartree/bohr2",
                       help="units of --hessian: hartree/bohr2 (default), kcal/mol/A2, "
                            "kj/mol/nm2, kj/mol/a2, mdyn/a")
    p.add_argument("--qm", help="QM output with geometry and Hessian: Gaussian .fchk/.log, "
                                "Jaguar .in (&hess)")
    p.add_argument("--name", help="molecule name (default: from the file name)")
    p.add_argument("--bond-tolerance", type=float, default=None,
                   help="bond if d < tol * (r_cov,i + r_cov,j); default 1.3, ~1.45 for TSs")


def build_parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="q2jax", description="Fit molecular-mechanics force fields to QM data (Q2MM in JAX).")
    top.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fit", help="fit a force field (QFUERZA start, honest relaxed figures)",
                       description="Fit a force field to a QM Hessian: parameters keyed by "
                       "element, QFUERZA start, frequencies and geometry fitted through the MM "
                       "relaxation. Writes forcefield.json, <name>.system.xml, report.json.")
    p.add_argument("config", nargs="?", help="CONFIG.yaml with several molecules")
    _add_inputs(p)
    p.add_argument("--form", choices=("harmonic", "mm3"), default=None)
    p.add_argument("--method", default=None,
                   help="lm (default), jaxopt:lbfgsb, jaxopt:lbfgs, optimistix:bfgs, optax:adam, "
                        "Nelder-Mead, multi:<method>, basinhopping:<method>")
    p.add_argument("--maxiter", type=int, default=None)
    p.add_argument("--cartesian-weight", type=float, default=None,
                   help="weight of the relaxed-geometry RMSD (Å) residual (default 3000: "
                        "0.01 Å costs as much as 30 cm^-1)")
    p.add_argument("--transition-state", action="store_true",
                   help="the structure is a transition state (relax to a first-order saddle)")
    p.add_argument("--match-modes", action="store_true",
                   help="fit each QM frequency against the MM mode of largest eigenvector "
                        "overlap (refreshed between solver rounds) instead of sorted order")
    p.add_argument("--out", help="output directory (default out/fit-<name>)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("evaluate", help="honest figures of a force field (relaxed geometry)")
    p.add_argument("--forcefield", required=True, help="forcefield.json")
    _add_inputs(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("seminario", help="Seminario / QFUERZA force constants from a Hessian")
    _add_inputs(p)
    p.add_argument("--form", choices=("harmonic", "mm3"), default="harmonic")
    p.add_argument("--estimate", choices=("qfuerza", "seminario", "modified"), default="qfuerza")
    p.add_argument("--out", help="write the force field as JSON")
    p.set_defaults(func=cmd_seminario)

    p = sub.add_parser("export", help="write a force field for OpenMM, Tinker or AMBER")
    p.add_argument("--forcefield", required=True, help="forcefield.json")
    _add_inputs(p, hessian=False)
    p.add_argument("--openmm", help="OpenMM System XML path")
    p.add_argument("--tinker", help="directory for Tinker .xyz/.key/.prm")
    p.add_argument("--frcmod", help="AMBER frcmod path (harmonic form)")
    p.add_argument("--fld", help="MacroModel .fld (only for force fields read from a .fld)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("qm", help="make a QM reference set with PySCF (pip install 'q2jax[qm]')")
    p.add_argument("molecule", help="starting geometry (.xyz)")
    p.add_argument("--method", default="b3lyp")
    p.add_argument("--basis", default="6-31g*")
    p.add_argument("--charge", type=int, default=0)
    p.add_argument("--spin", type=int, default=0, help="2S (number of unpaired electrons)")
    p.add_argument("--no-optimize", action="store_true", help="use the geometry as given")
    p.add_argument("--out", help="output directory (default out/qm-<name>)")
    p.set_defaults(func=cmd_qm)
    return top


def main(argv: list[str] | None = None) -> int:
    _configure_xla()  # before the first JAX computation initialises the backend
    parser = build_parser()
    args = parser.parse_args(argv)
    from q2jax.errors import Q2JaxError

    try:
        _enable_compilation_cache()
        return int(args.func(args) or 0)
    except (Q2JaxError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        if args.debug:
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"q2jax {args.command}: error: {msg}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
