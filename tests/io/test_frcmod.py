"""AMBER frcmod: parse the Q2MM fixtures, round trip, conversion to q2jax
(harmonic E = K (x - x0)^2 in both), dihedral series, bad input."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from _where import assert_names

from q2jax.errors import ParameterError, ParseError
from q2jax.forcefield import ForceField
from q2jax.io.frcmod import (
    forcefield_to_frcmod,
    frcmod_to_forcefield,
    parse_frcmod,
    read_frcmod,
    write_frcmod,
)
from q2jax.terms import fourier_torsion

FIX = Path(__file__).resolve().parents[1] / "data" / "anchor-fixtures"


def _same(a, b):
    return [(t.section, t.types, t.values, t.comment) for t in a.terms] == [
        (t.section, t.types, t.values, t.comment) for t in b.terms]


@pytest.mark.parametrize("name", ["sample.frcmod", "upstream_q2mm.frcmod"])
def test_read_write_read_keeps_every_value_and_comment(name, tmp_path):
    frc = read_frcmod(FIX / name)
    out = tmp_path / "out.frcmod"
    write_frcmod(frc, out)
    again = read_frcmod(out)
    assert _same(frc, again) and again.title == frc.title and again.header == frc.header


def test_fixture_contents():
    frc = read_frcmod(FIX / "upstream_q2mm.frcmod")
    assert frc.header == ("# Q2MM", "# OPT")
    counts = {s: len(frc.section(s)) for s in ("MASS", "BOND", "ANGLE", "DIHE", "IMPROPER",
                                                "NONBON")}
    assert counts == {"MASS": 1, "BOND": 3, "ANGLE": 10, "DIHE": 10, "IMPROPER": 10, "NONBON": 1}
    b = frc.section("BOND")[0]
    assert (b.types, b.values, b.comment) == (("c", "c4"), (337.5987, 1.6002),
                                              "ATTN,        need    revision")
    d = frc.section("DIHE")[0]
    assert d.types == ("ca", "ca", "ce", "c") and d.values == (4.0, 2.8, 180.0, 2.0)
    assert frc.section("IMPROPER")[0].values == (10.5, 180.0, 2.0)


def test_conversion_units_and_dihedral_energy():
    frc = read_frcmod(FIX / "upstream_q2mm.frcmod")
    with pytest.raises(ParameterError, match="impropers") as err:
        frcmod_to_forcefield(frc)
    first = frc.section("IMPROPER")[0].line  # the first improper names file and line
    assert str(err.value).startswith(f"{FIX / 'upstream_q2mm.frcmod'}:{first}: ")
    ff = frcmod_to_forcefield(frc, impropers="skip")
    assert ff.form == "harmonic"
    # AMBER K is q2jax k: both E = K (x - x0)^2
    assert ff.value("bond_k", ("c", "c4")) == 337.5987
    assert ff.value("angle_eq", ("c4", "c", "o")) == 104.1557
    # (PK/IDIVF)(1 + cos(2 phi - 180)) equals q2jax's V2/2 (1 - cos 2 phi) with V2 = 2 PK/IDIVF
    v = [ff.value(f"torsion_v{n}", ("ca", "ca", "ce", "c")) for n in (1, 2, 3)]
    assert v == [0.0, pytest.approx(1.4), 0.0]
    phi = jnp.linspace(-np.pi, np.pi, 13)
    amber = 2.8 / 4.0 * (1.0 + np.cos(2.0 * np.asarray(phi) - np.pi))
    ours = fourier_torsion(phi, jnp.full(13, v[0]), jnp.full(13, v[1]), jnp.full(13, v[2]))
    assert np.allclose(np.asarray(ours), amber, atol=1e-12)
    assert ff.value("vdw_radius", ("c4",)) == 0.0


def test_forcefield_to_frcmod_round_trip():
    ff = ForceField.from_entries([
        ("bond_k", ("c3", "hc"), 337.3), ("bond_eq", ("c3", "hc"), 1.092),
        ("angle_k", ("hc", "c3", "hc"), 39.43), ("angle_eq", ("hc", "c3", "hc"), 108.35),
        ("torsion_v1", ("hc", "c3", "c3", "hc"), 0.0),
        ("torsion_v2", ("hc", "c3", "c3", "hc"), -0.3),
        ("torsion_v3", ("hc", "c3", "c3", "hc"), 0.3),
        ("vdw_radius", ("c3",), 1.908), ("vdw_epsilon", ("c3",), 0.1094),
    ])
    frc = forcefield_to_frcmod(ff, masses={"c3": 12.01, "hc": 1.008})
    back = frcmod_to_forcefield(parse_frcmod(write_frcmod(frc)))
    assert back.as_dict() == pytest.approx(ff.as_dict())
    # a negative V2 is written as the opposite phase, the sign convention checked by value
    d = [t for t in frc.section("DIHE")]
    assert [(t.values[2], t.values[3]) for t in d] == [(0.0, -2.0), (0.0, 3.0)]


@pytest.mark.parametrize("text,message,line", [
    ("t\nBOND\nc -c4    33x.5987    1.6002\n", "needs 2 numbers", 3),
    ("t\nBOND\nc -c4-c3    337.5987    1.6002\n", "needs 2 atom types", 3),
    ("t\nANGLE\nc -c4-ca    50.7932\n", "needs 2 numbers", 3),
    ("t\nDIHE\nc -c4-ca-ca   1    2.4403   180.000\n", "needs 4 numbers", 3),
    ("t\nBOND\nc -c4    1D999    1.6002\n", "out of range", 3),
    ("t\nc -c4  1.0 1.0\n", "section keyword", 2),
    ("", "empty", 1),
])
def test_bad_input_names_line(text, message, line):
    with pytest.raises(ParseError, match=message) as err:
        parse_frcmod(text, "x.frcmod")
    assert_names(err, "x.frcmod", line)


def test_unknown_sections_are_kept_but_not_converted():
    frc = parse_frcmod("t\nBOND\nc -c4  300.0  1.5\n\nHBON\nhw-ow  0.0  0.0\n\n", "x.frcmod")
    assert frc.other == (("HBON", ("HBON", "hw-ow  0.0  0.0")),)
    assert "HBON" in write_frcmod(frc)
    with pytest.raises(ParameterError, match="HBON"):
        frcmod_to_forcefield(frc)


def test_unrepresentable_dihedral_is_refused():
    frc = parse_frcmod("t\nDIHE\nc -c4-ca-ca   1    2.4403    90.000    2.000\n\n", "d.frcmod")
    with pytest.raises(ParameterError, match="^d.frcmod:3: dihedral phase"):
        frcmod_to_forcefield(frc)
    frc = parse_frcmod("t\nDIHE\nc -c4-ca-ca   1    2.4403     0.000    4.000\n\n", "d.frcmod")
    with pytest.raises(ParameterError, match="^d.frcmod:3: dihedral periodicity"):
        frcmod_to_forcefield(frc)
