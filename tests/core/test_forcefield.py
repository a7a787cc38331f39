"""ForceField pytree: typed keys, labels, freezing, JSON round trip."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from q2jax import ForceField
from q2jax.errors import InputError, ParameterError, TopologyError
from q2jax.system import build_terms

from ._cases import ch3f, rich_forcefield


def test_ch3f_parameter_set_shares_keys():
    m = ch3f().molecule
    ff = ForceField.from_molecules([m])
    assert ff.get_param_type_labels() == [
        "bond C-F k",
        "bond C-F eq",
        "bond C-H k",
        "bond C-H eq",
        "angle F-C-H k",
        "angle F-C-H eq",
        "angle H-C-H k",
        "angle H-C-H eq",
    ]
    # equilibrium values from the QM geometry (C-F 1.3986 Å in the data README)
    assert ff.value("bond_eq", ("F", "C")) == pytest.approx(1.3986, abs=1e-3)
    terms = build_terms(ff, m)
    # all three C-H bonds point at the same parameter positions
    assert len({tuple(r) for r in np.asarray(terms.bond_params)[1:]}) == 1


def test_is_a_pytree_with_one_trainable_leaf():
    ff = ForceField.from_molecules([ch3f().molecule]).freeze(["bond_eq", "angle_eq"])
    leaves = jax.tree_util.tree_leaves(ff)
    assert len(leaves) == 2  # params and fixed
    assert ff.n_params == 4 and ff.n_fixed == 4
    doubled = jax.tree_util.tree_map(lambda x: 2 * x, ff)
    assert float(doubled.params[0]) == 2 * float(ff.params[0])
    ff2 = ff.unfreeze(["bond_eq"])
    assert ff2.n_params == 6


def test_json_round_trip(tmp_path):
    ff = rich_forcefield([ch3f().molecule], "mm3").freeze(["vdw_radius"])
    path = tmp_path / "ff.json"
    ff.to_json(path)
    back = ForceField.from_json(path)
    assert back.form == "mm3" and back.entries == ff.entries and back.settings == ff.settings
    np.testing.assert_array_equal(np.asarray(back.full_params()), np.asarray(ff.full_params()))


def test_errors():
    ff = ForceField.from_molecules([ch3f().molecule])
    with pytest.raises(InputError):
        ff.with_params(jnp.zeros(3))
    with pytest.raises(ParameterError):
        ff.value("bond_k", ("C", "O"))
    with pytest.raises(InputError):
        ForceField.from_entries([("bond_k", ("C", "H"), 1.0)], form="amoeba")
    with pytest.raises(ParameterError):
        ForceField.from_entries([("bond_k", ("C", "H"), 1.0), ("bond_k", ("H", "C"), 2.0)])
    with pytest.raises(InputError):
        ForceField.from_json('{"format": "something-else"}')
    # a force field with bonds but no C-F bond cannot describe CH3F
    partial = ForceField.from_entries(
        [("bond_k", ("C", "H"), 300.0), ("bond_eq", ("C", "H"), 1.09)]
    )
    with pytest.raises(TopologyError, match="bond C-F"):
        build_terms(partial, ch3f().molecule)
