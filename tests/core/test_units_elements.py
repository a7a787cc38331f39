"""Unit factors against CODATA-derived values quoted in the literature, and the element table."""

import math

import pytest

from q2jax import elements, units
from q2jax.errors import InputError, UnitError


def test_energy_and_length_factors():
    assert units.HARTREE_TO_KCAL_MOL == pytest.approx(627.509474, abs=1e-6)
    assert units.BOHR_TO_ANGSTROM == pytest.approx(0.529177210903, abs=1e-12)
    # 1 Hartree/Bohr^2 = 2240.877 kcal/(mol Å^2); 1 mdyn/Å = 143.93 kcal/(mol Å^2)
    assert units.HARTREE_BOHR2_TO_KCAL_MOL_A2 == pytest.approx(2240.877, abs=1e-3)
    assert units.MDYN_A_TO_KCAL_MOL_A2 == pytest.approx(143.9326, abs=1e-3)
    assert units.COULOMB_KCAL_MOL_A == pytest.approx(332.0637, abs=1e-3)


def test_frequency_factor_matches_textbook_constant():
    # sqrt(kcal/mol/Å^2/amu) -> cm^-1 is 108.591 (e.g. Wilson, Decius & Cross units)
    assert units.EIGENVALUE_TO_CM1 == pytest.approx(108.5913, abs=1e-3)
    assert units.eigenvalue_to_cm1(-4.0) == pytest.approx(-2 * units.EIGENVALUE_TO_CM1)
    assert units.cm1_to_eigenvalue(units.eigenvalue_to_cm1(3.7)) == pytest.approx(3.7)


def test_mm3_units_are_mm3s_own_constants():
    assert units.MM3_STRETCH_UNIT == 71.94
    # 0.021914 kcal/(mol deg^2) per mdyn Å/rad^2 is 71.94 per rad^2
    assert units.MM3_BEND_UNIT == pytest.approx(0.021914 * (180 / math.pi) ** 2)
    assert units.MM3_BEND_UNIT == pytest.approx(71.94, rel=1e-4)


def test_hessian_units_lookup():
    assert units.hessian_factor("Hartree/Bohr2") == units.HARTREE_BOHR2_TO_KCAL_MOL_A2
    assert units.hessian_factor("kcal/mol/A2") == 1.0
    with pytest.raises(UnitError, match="unknown Hessian units"):
        units.hessian_factor("furlongs")


def test_elements():
    assert elements.mass("H") == pytest.approx(1.00782503, abs=1e-8)
    assert elements.mass("F") == pytest.approx(18.99840316, abs=1e-8)
    assert elements.symbol(45) == "Rh"
    assert elements.normalize_symbol("CL") == "Cl"
    assert elements.covalent_radius("C") == pytest.approx(0.76)
    with pytest.raises(InputError):
        elements.element("Xx")
    with pytest.raises(InputError):
        elements.element(200)
