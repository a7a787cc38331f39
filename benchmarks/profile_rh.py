"""Profile the Rh-enamide loss+grad and its pieces (process CPU and wall ms, median after compile).

Usage: python benchmarks/profile_rh.py [--pieces] [--repeats N]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import jax
import jax.numpy as jnp
import numpy as np

import q2jax
from q2jax.energy import energy, hessian
from q2jax.objective import loss
from q2jax.vibrations import eigenmatrix


def timeit(f, *args, repeats=7, number=2):
    t0 = time.perf_counter()
    c = jax.jit(f).lower(*args).compile()
    comp = time.perf_counter() - t0
    jax.block_until_ready(c(*args))
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(number):
            jax.block_until_ready(c(*args))
        walls.append((time.perf_counter() - w0) / number)
        cpus.append((time.process_time() - c0) / number)
    return {"wall_ms": 1e3 * statistics.median(walls), "cpu_ms": 1e3 * statistics.median(cpus),
            "min_ms": 1e3 * min(walls), "compile_s": comp}, c(*args)


def show(name, r):
    print(f"{name:40s} wall {r['wall_ms']:8.2f} ms  cpu {r['cpu_ms']:8.2f} ms  "
          f"min {r['min_ms']:8.2f}  compile {r['compile_s']:6.1f} s", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pieces", action="store_true")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--save", default=None, help="save loss, grad, hessians to this .npz")
    args = ap.parse_args()
    print("q2jax:", q2jax.__file__, "load", os.getloadavg()[0], flush=True)
    from rh_enamide import load_sets, make_spec
    rset = load_sets()["start"]
    spec = make_spec(rset, "reference")
    p = rset.forcefield.params
    ff = spec.forcefield
    s = spec.system
    t = s.terms
    sizes = {k: getattr(t, f"{k}_atoms").shape[-2] for k in
             ("pair", "bond", "angle", "torsion", "ts", "bb", "sb", "improper")}
    print("molecules x atoms", s.coords.shape[:2], "terms", sizes, "modes",
          spec.refs.eig_modes.shape[1:], flush=True)
    r, out = timeit(jax.value_and_grad(loss), p, spec, repeats=args.repeats)
    show("value_and_grad(loss)", r)
    if args.save:
        fp = ff.full_params(p)
        H = jax.jit(jax.vmap(lambda x, t: hessian(fp, x, t, ff.form, ff.settings)))(
            s.coords, s.terms)
        np.savez(args.save, loss=np.asarray(out[0]), grad=np.asarray(out[1]), hess=np.asarray(H))
    if not args.pieces:
        return
    r, _ = timeit(loss, p, spec, repeats=args.repeats)
    show("loss", r)

    def hess_all(p, spec):
        fp = spec.forcefield.full_params(p)
        return jax.vmap(lambda x, t: hessian(fp, x, t, ff.form, ff.settings))(s.coords, s.terms)

    r, H = timeit(hess_all, p, spec, repeats=args.repeats)
    show("hessians (9)", r)
    ct = jnp.asarray(np.random.default_rng(0).normal(size=H.shape))

    def hess_vjp(p, spec):
        return jax.vjp(lambda q: hess_all(q, spec), p)[1](ct)[0]

    r, _ = timeit(hess_vjp, p, spec, repeats=args.repeats)
    show("hessians value+VJP", r)

    def eig_all(H, spec):
        return jax.vmap(eigenmatrix)(H, spec.refs.eig_modes, s.masses)

    r, _ = timeit(eig_all, H, spec, repeats=args.repeats)
    show("eigenmatrix (9)", r)

    def eig_vjp(H, spec):
        return jax.vjp(lambda h: jnp.sum(eig_all(h, spec) ** 2), H)[1](1.0)[0]

    r, _ = timeit(eig_vjp, H, spec, repeats=args.repeats)
    show("eigenmatrix value+VJP", r)

    def stat(p, spec):
        fp = spec.forcefield.full_params(p)
        g = jax.vmap(lambda x, t: jax.grad(energy, argnums=1)(fp, x, t, ff.form, ff.settings))(
            s.coords, s.terms)
        return jnp.sum(g * g)

    r, _ = timeit(stat, p, spec, repeats=args.repeats)
    show("stationarity sum g^2", r)
    r, _ = timeit(jax.value_and_grad(stat), p, spec, repeats=args.repeats)
    show("stationarity value_and_grad", r)

    # per-family hessian (bonded: scatter of local Hessians; nonbonded: dense blocks)
    from q2jax import energy as E
    from q2jax.terms import pair_hessian_blocks
    n = s.coords.shape[1]
    ones = jnp.ones((s.coords.shape[0], n, 3, n, 3))
    for name in ["stretch", "bend", "torsion", "out_of_plane", "stretch_bend", "bend_bend",
                 "torsion_stretch", "nonbonded"]:
        def fam_h(p, spec, name=name):
            fp = spec.forcefield.full_params(p)

            def one(x, t):
                h = jnp.zeros((n, 3, n, 3))
                sites = E._sites(x, t)
                for fam in E.families(fp, t, ff.form, ff.settings):
                    if fam.name != name:
                        continue
                    if fam.space == "site":
                        h = E._scatter_family_hessian(h, sites, fam)
                    else:
                        hs = pair_hessian_blocks(sites, x, fam.atoms[:, ::2], E._pair_derivatives(
                            sites, x, fam, ff.form, ff.settings))
                        h = h + hs[0] + hs[1] + hs[2]
                return h
            return jax.vmap(one)(s.coords, s.terms)
        r, _ = timeit(fam_h, p, spec, repeats=args.repeats)
        show(f"hessian family {name}", r)
        r, _ = timeit(lambda p, spec: jax.vjp(lambda q: fam_h(q, spec), p)[1](ones)[0], p, spec,
                      repeats=args.repeats)
        show(f"  value+VJP {name}", r)


if __name__ == "__main__":
    main()
