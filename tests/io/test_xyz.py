"""XYZ reader: the bundled CH3F/SN2 geometries with their Hessians reproduce the
reference frequencies; malformed files raise ParseError at the right line."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _io_paths import DATA, RH_NAMES, RH_SET, jaguar_in, text_of
from _where import assert_names, n_lines

from q2jax import units
from q2jax.elements import mass
from q2jax.errors import InputError, ParseError
from q2jax.io import read_jaguar_in, read_xyz, read_xyz_all
from q2jax.vibrations import frequencies

_freqs = jax.jit(frequencies, static_argnums=3)


@pytest.mark.parametrize("folder,stem,first", [("ch3f", "ch3f", 1040.581386),
                                               ("sn2-ts", "sn2-ts", -461.717568)])
def test_geometry_and_npy_hessian_reproduce_reference_frequencies(folder, stem, first):
    """The README says the .npy Hessian (Hartree/Bohr², atom order of the xyz)
    belongs to the xyz geometry: frequencies from both match the file."""
    qm = read_xyz(DATA / folder / f"{stem}-optimized.xyz")
    assert qm.source_units == {"coords": "angstrom"}
    h = np.load(DATA / folder / f"{stem}-hessian.npy") * units.HARTREE_BOHR2_TO_KCAL_MOL_A2
    ref = np.loadtxt(DATA / folder / f"{stem}-frequencies.txt")
    masses = jnp.asarray([mass(s) for s in qm.symbols])
    nu = np.asarray(_freqs(jnp.asarray(h), jnp.asarray(qm.coords), masses, 3 * qm.n_atoms - 6))
    np.testing.assert_allclose(nu, ref, atol=1e-3)
    assert nu[0] == pytest.approx(first, abs=1e-3)


def test_ch3f_atoms_and_values():
    qm = read_xyz(DATA / "ch3f" / "ch3f-optimized.xyz")
    assert qm.symbols == ("C", "F", "H", "H", "H")
    assert qm.coords[1, 1] == 0.648360592579
    assert qm.name == "ch3f-optimized"  # empty comment line -> file stem
    assert qm.hessian is None and qm.bonds is None


def test_raw_rh_xyz_matches_jaguar_atom_order():
    """raw_xyz/*.xyz hold exactly the Jaguar &zmat geometries, same atom order.
    Note: 8_bpe_s_conf_2.xyz is structure 8 (pro-S Conformation 1)."""
    raw = sorted((RH_SET / "raw_xyz").glob("*.xyz"))
    assert len(raw) == 9
    for path, stem in zip(raw, RH_NAMES, strict=True):
        a, b = read_xyz(path), read_jaguar_in(jaguar_in(stem), require_hessian=False)
        assert a.symbols == b.symbols
        np.testing.assert_array_equal(a.coords, b.coords)


def test_multi_frame_and_index(write):
    frame = "2\nfirst\nH 0 0 0\nH 0 0 0.74\n"
    p = write("two.xyz", frame + frame.replace("first", "second").replace("0.74", "0.75") + "\n\n")
    frames = read_xyz_all(p)
    assert [f.name for f in frames] == ["first", "second"]
    assert read_xyz(p, index=-1).coords[1, 2] == 0.75
    with pytest.raises(InputError, match="2 frames") as err:
        read_xyz(p)
    assert str(p) in str(err.value)


def test_gz_and_atomic_numbers_and_labels(write):
    p = write("m.xyz.gz", "3\n\n8 0 0 0\nH1 0.96 0 0\nh2 0 0.96 0\n")
    assert read_xyz(p).symbols == ("O", "H", "H")


@pytest.mark.parametrize("text,line,what", [
    ("3\n\nO 0 0 0\nH 1 0 0\n", 4, "file ends after 2 of 3"),
    ("2\n\nO 0 0 0\nH 1 0 0\nH 0 1 0\n", 5, "number of atoms"),
    ("2\n\nO 0 0 0\nH 1 x 0\n", 4, "coordinate"),
    ("2\n\nO 0 0 0\nXx 1 0 0\n", 4, "unknown element"),
    ("2\n\nO 0 0 0\nH 1 0\n", 4, "fields"),
    ("2\n\nO 0 0 0\nH 1 0 0 0.3\n", 4, "extra_columns"),
    ("two\n\nO 0 0 0\n", 1, "number of atoms"),
    ("2\n\nO 0 0 0\nH 1 nan 0\n", 4, "coordinate"),
])
def test_bad_xyz_raises_with_file_and_line(write, text, line, what):
    p = write("bad.xyz", text)
    with pytest.raises(ParseError, match=what) as err:
        read_xyz_all(p)
    assert err.value.line == line and err.value.path == str(p)


def test_extra_columns_on_request_but_consistent(write):
    p = write("e.xyz", "2\n\nO 0 0 0 -0.8\nH 1 0 0 0.4\n")
    assert read_xyz(p, extra_columns=True).n_atoms == 2
    q = write("f.xyz", "2\n\nO 0 0 0 -0.8\nH 1 0 0\n")
    with pytest.raises(ParseError, match="fields") as err:
        read_xyz(q, extra_columns=True)
    assert_names(err, q, 4)


def test_truncated_real_file_raises(write):
    text = text_of(DATA / "sn2-ts" / "sn2-ts-optimized.xyz")
    cut = text[: text.index("\n H", 60)]  # lose the last atoms
    p = write("cut.xyz", cut)
    with pytest.raises(ParseError, match="file ends after") as err:
        read_xyz(p)
    assert_names(err, p, n_lines(cut))
