"""Molecule construction, topology perception and bad-input errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from q2jax import Molecule
from q2jax.errors import InputError, Q2JaxError, TopologyError
from q2jax.molecule import validate_hessian

from ._cases import ch3f, ethane


def test_ch3f_topology():
    m = ch3f().molecule
    assert m.bonds == ((0, 1), (0, 2), (0, 3), (0, 4))
    topo = m.topology()
    assert len(topo.angles) == 6 and len(topo.torsions) == 0 and len(topo.pairs) == 0
    assert m.n_vibrations == 9


def test_ethane_topology_counts():
    m = ethane().molecule
    topo = m.topology()
    # 7 bonds, 12 angles (6 H-C-H + 6 C-C-H), 9 H-C-C-H torsions, 9 1-4 H...H pairs
    assert len(topo.bonds) == 7
    assert len(topo.angles) == 12
    assert len(topo.torsions) == 9
    assert len(topo.pairs) == 9 and topo.pairs_14.all()


def test_explicit_connectivity_and_impropers():
    # formaldehyde: planar trivalent carbon gets one out-of-plane term
    sym = ["C", "O", "H", "H"]
    xyz = [[0, 0, 0], [0, 0, 1.21], [0, 0.94, -0.54], [0, -0.94, -0.54]]
    m = Molecule.from_arrays(sym, xyz, bonds=[(0, 1), (0, 2), (0, 3)])
    topo = m.topology()
    assert topo.impropers.tolist() == [[0, 1, 2, 3]]
    with pytest.raises(TopologyError):
        Molecule.from_arrays(sym, xyz, bonds=[(0, 7)])
    with pytest.raises(TopologyError):
        Molecule.from_arrays(sym, xyz, bonds=[(1, 1)])


def test_bad_molecules_raise_named_errors():
    with pytest.raises(InputError, match="no atoms"):
        Molecule.from_arrays([], np.zeros((0, 3)))
    with pytest.raises(InputError, match="unknown element"):
        Molecule.from_arrays(["Xq"], [[0, 0, 0]])
    with pytest.raises(InputError, match="shape"):
        Molecule.from_arrays(["H", "H"], [[0, 0, 0]])
    with pytest.raises(InputError, match="NaN"):
        Molecule.from_arrays(["H", "H"], [[0, 0, 0], [0, 0, np.nan]])
    with pytest.raises(InputError, match="positive"):
        Molecule.from_arrays(["H", "H"], [[0, 0, 0], [0, 0, 0.74]], masses=[1.0, -1.0])
    with pytest.raises(InputError, match="apart"):
        Molecule.from_arrays(["H", "H"], [[0, 0, 0], [0, 0, 0.01]])


def test_bad_hessians_raise_named_errors():
    h = np.eye(6)
    assert validate_hessian(h, 2).shape == (6, 6)
    with pytest.raises(InputError, match="shape"):
        validate_hessian(np.eye(9), 2)
    bad = h.copy()
    bad[0, 1] = 1.0
    with pytest.raises(InputError, match="symmetric"):
        validate_hessian(bad, 2)
    bad = h.copy()
    bad[2, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        validate_hessian(bad, 2)


@settings(max_examples=60, deadline=None)
@given(
    arr=hnp.arrays(
        dtype=np.float64,
        shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=7),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
    ),
    n_atoms=st.integers(1, 3),
)
def test_malformed_arrays_only_give_q2jax_errors(arr, n_atoms):
    """Geometry / Hessian inputs of any shape and content: either valid or a Q2JaxError."""
    symbols = ["C"] * n_atoms
    try:
        m = Molecule.from_arrays(symbols, arr)
        assert np.all(np.isfinite(np.asarray(m.coords))) and m.coords.shape == (n_atoms, 3)
    except Q2JaxError:
        pass
    try:
        h = validate_hessian(arr, n_atoms)
        assert h.shape == (3 * n_atoms, 3 * n_atoms) and np.all(np.isfinite(h))
        assert np.allclose(h, h.T)
    except Q2JaxError:
        pass
