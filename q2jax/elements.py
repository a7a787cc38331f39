"""Element data from one table: atomic number, symbol, mass of the most
abundant isotope (amu, as QM codes use for frequencies) and single-bond
covalent radius (Å, Alvarez 2008, Dalton Trans. 2832).

The values were taken once from qcelemental 0.51.4 (NIST isotope masses,
Alvarez covalent radii) for Z = 1..86 and are stored here so that q2jax has
no run-time dependency for them.
"""

from __future__ import annotations

from typing import NamedTuple

from q2jax.errors import InputError


class Element(NamedTuple):
    number: int
    symbol: str
    mass_amu: float
    covalent_radius_angstrom: float


# (Z, symbol, most-abundant-isotope mass / amu, covalent radius / Å)
_TABLE: tuple[tuple[int, str, float, float], ...] = (
    (1, "H", 1.00782503223, 0.31),
    (2, "He", 4.00260325413, 0.28),
    (3, "Li", 7.0160034366, 1.28),
    (4, "Be", 9.012183065, 0.96),
    (5, "B", 11.00930536, 0.84),
    (6, "C", 12.0, 0.76),
    (7, "N", 14.00307400443, 0.71),
    (8, "O", 15.99491461957, 0.66),
    (9, "F", 18.99840316273, 0.57),
    (10, "Ne", 19.9924401762, 0.58),
    (11, "Na", 22.989769282, 1.66),
    (12, "Mg", 23.985041697, 1.41),
    (13, "Al", 26.98153853, 1.21),
    (14, "Si", 27.97692653465, 1.11),
    (15, "P", 30.97376199842, 1.07),
    (16, "S", 31.9720711744, 1.05),
    (17, "Cl", 34.968852682, 1.02),
    (18, "Ar", 39.9623831237, 1.06),
    (19, "K", 38.9637064864, 2.03),
    (20, "Ca", 39.962590863, 1.76),
    (21, "Sc", 44.95590828, 1.7),
    (22, "Ti", 47.94794198, 1.6),
    (23, "V", 50.94395704, 1.53),
    (24, "Cr", 51.94050623, 1.39),
    (25, "Mn", 54.93804391, 1.61),
    (26, "Fe", 55.93493633, 1.52),
    (27, "Co", 58.93319429, 1.5),
    (28, "Ni", 57.93534241, 1.24),
    (29, "Cu", 62.92959772, 1.32),
    (30, "Zn", 63.92914201, 1.22),
    (31, "Ga", 68.9255735, 1.22),
    (32, "Ge", 73.921177761, 1.2),
    (33, "As", 74.92159457, 1.19),
    (34, "Se", 79.9165218, 1.2),
    (35, "Br", 78.9183376, 1.2),
    (36, "Kr", 83.9114977282, 1.16),
    (37, "Rb", 84.9117897379, 2.2),
    (38, "Sr", 87.9056125, 1.95),
    (39, "Y", 88.9058403, 1.9),
    (40, "Zr", 89.9046977, 1.75),
    (41, "Nb", 92.906373, 1.64),
    (42, "Mo", 97.90540482, 1.54),
    (43, "Tc", 97.9072124, 1.47),
    (44, "Ru", 101.9043441, 1.46),
    (45, "Rh", 102.905498, 1.42),
    (46, "Pd", 105.9034804, 1.39),
    (47, "Ag", 106.9050916, 1.45),
    (48, "Cd", 113.90336509, 1.44),
    (49, "In", 114.903878776, 1.42),
    (50, "Sn", 119.90220163, 1.39),
    (51, "Sb", 120.903812, 1.39),
    (52, "Te", 129.906222748, 1.38),
    (53, "I", 126.9044719, 1.39),
    (54, "Xe", 131.9041550856, 1.4),
    (55, "Cs", 132.905451961, 2.44),
    (56, "Ba", 137.905247, 2.15),
    (57, "La", 138.9063563, 2.07),
    (58, "Ce", 139.9054431, 2.04),
    (59, "Pr", 140.9076576, 2.03),
    (60, "Nd", 141.907729, 2.01),
    (61, "Pm", 144.9127559, 1.99),
    (62, "Sm", 151.9197397, 1.98),
    (63, "Eu", 152.921238, 1.98),
    (64, "Gd", 157.9241123, 1.96),
    (65, "Tb", 158.9253547, 1.94),
    (66, "Dy", 163.9291819, 1.92),
    (67, "Ho", 164.9303288, 1.92),
    (68, "Er", 165.9302995, 1.89),
    (69, "Tm", 168.9342179, 1.9),
    (70, "Yb", 173.9388664, 1.87),
    (71, "Lu", 174.9407752, 1.87),
    (72, "Hf", 179.946557, 1.75),
    (73, "Ta", 180.9479958, 1.7),
    (74, "W", 183.95093092, 1.62),
    (75, "Re", 186.9557501, 1.51),
    (76, "Os", 191.961477, 1.44),
    (77, "Ir", 192.9629216, 1.41),
    (78, "Pt", 194.9647917, 1.36),
    (79, "Au", 196.96656879, 1.36),
    (80, "Hg", 201.9706434, 1.32),
    (81, "Tl", 204.9744278, 1.45),
    (82, "Pb", 207.9766525, 1.46),
    (83, "Bi", 208.9803991, 1.48),
    (84, "Po", 208.9824308, 1.4),
    (85, "At", 209.9871479, 1.5),
    (86, "Rn", 222.0175782, 1.5),
)

ELEMENTS: dict[str, Element] = {row[1]: Element(*row) for row in _TABLE}
_BY_NUMBER: dict[int, Element] = {row[0]: Element(*row) for row in _TABLE}


def normalize_symbol(symbol: str) -> str:
    """'CL', 'cl', ' Cl ' -> 'Cl'. Raises InputError for unknown elements."""
    s = str(symbol).strip()
    s = s[:1].upper() + s[1:].lower()
    if s not in ELEMENTS:
        raise InputError(f"unknown element symbol {symbol!r}")
    return s


def element(symbol_or_number: str | int) -> Element:
    """Look an element up by symbol (any case) or atomic number."""
    if isinstance(symbol_or_number, (int,)) and not isinstance(symbol_or_number, bool):
        try:
            return _BY_NUMBER[int(symbol_or_number)]
        except KeyError:
            raise InputError(f"unknown atomic number {symbol_or_number!r}") from None
    return ELEMENTS[normalize_symbol(str(symbol_or_number))]


def mass(symbol: str | int) -> float:
    """Mass of the most abundant isotope, amu."""
    return element(symbol).mass_amu


def covalent_radius(symbol: str | int) -> float:
    """Single-bond covalent radius, Å."""
    return element(symbol).covalent_radius_angstrom


def atomic_number(symbol: str | int) -> int:
    return element(symbol).number


def symbol(number_or_symbol: str | int) -> str:
    return element(number_or_symbol).symbol


__all__ = [
    "Element",
    "ELEMENTS",
    "element",
    "normalize_symbol",
    "mass",
    "covalent_radius",
    "atomic_number",
    "symbol",
]
