"""Small shared builders for the core tests."""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from q2jax import ForceField
from q2jax.datasets import load_case

ALL_FAMILIES = ("bond", "angle", "torsion", "improper", "stretch_bend", "vdw", "charge")


@functools.lru_cache
def ch3f():
    return load_case("ch3f")


@functools.lru_cache
def ethane():
    return load_case("ethane")


def rich_forcefield(molecules, form: str, seed: int = 0) -> ForceField:
    """Every family switched on with nonzero, physically plausible values."""
    ff = ForceField.from_molecules(molecules, form, families=ALL_FAMILIES)
    rng = np.random.default_rng(seed)
    vals = []
    for e in ff.trainable_entries:
        v = float(ff.value(e.kind, e.key))
        if e.kind == "bond_k":
            v = rng.uniform(250, 450)
        elif e.kind == "angle_k":
            v = rng.uniform(30, 80)
        elif e.kind.startswith("torsion"):
            v = rng.uniform(-1.0, 1.0)
        elif e.kind == "improper_k":
            v = rng.uniform(5, 20)
        elif e.kind == "stretch_bend_k":
            v = rng.uniform(-10, 10)
        elif e.kind == "vdw_radius":
            v = rng.uniform(1.4, 2.0)
        elif e.kind == "vdw_epsilon":
            v = rng.uniform(0.02, 0.1)
        elif e.kind == "charge":
            v = rng.uniform(-0.3, 0.3)
        vals.append(v)
    return ff.with_params(jnp.asarray(vals))


def distorted(coords, scale=0.05, seed=1):
    rng = np.random.default_rng(seed)
    return np.asarray(coords) + scale * rng.standard_normal(np.shape(coords))


def numpy_normal_modes(h, x, masses):
    """Eigenvalues and mass-weighted modes of the Eckart-projected Hessian ``h`` at
    geometry ``x``, written in NumPy (independent of ``q2jax.vibrations``)."""
    x, masses = np.asarray(x, float), np.asarray(masses, float)
    sm = np.repeat(np.sqrt(masses), 3)
    c = x - (masses[:, None] * x).sum(0) / masses.sum()
    vecs = []
    for a in range(3):
        t = np.zeros_like(x)
        t[:, a] = 1.0
        vecs.append((t * np.sqrt(masses)[:, None]).ravel())
        vecs.append((np.cross(np.eye(3)[a], c) * np.sqrt(masses)[:, None]).ravel())
    q, _ = np.linalg.qr(np.array(vecs).T)
    p = np.eye(len(sm)) - q @ q.T
    w, v = np.linalg.eigh(p @ (h / np.outer(sm, sm)) @ p)
    keep = np.argsort(np.abs(w))[6:]
    keep = keep[np.argsort(w[keep])]
    return w[keep], v[:, keep]

