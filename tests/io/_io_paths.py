"""Paths of the bundled files the I/O tests read (copies under q2jax/data)."""

from __future__ import annotations

import gzip
from pathlib import Path

import q2jax

DATA = Path(q2jax.__file__).parent / "data"
ETHANE = DATA / "ethane-gs"
RH = DATA / "rh-enamide"
RH_SET = RH / "rh_enamide_training_set"
JAGUAR = RH_SET / "jaguar_spe_freq_in_out"
ATOM_TYP = RH / "atom.typ"
RH_NAMES = sorted(p.name.split(".")[0] for p in JAGUAR.glob("*.out.gz"))


def jaguar_in(stem: str) -> Path:
    return JAGUAR / f"{stem}.01.in.gz"


def jaguar_out(stem: str) -> Path:
    return JAGUAR / f"{stem}.out.gz"


def text_of(path: Path) -> str:
    raw = path.read_bytes()
    return (gzip.decompress(raw) if path.name.endswith(".gz") else raw).decode()
