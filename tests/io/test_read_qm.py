"""read_qm dispatches on the extension (and on content for .out)."""

from __future__ import annotations

import shutil

import pytest
from _io_paths import ATOM_TYP, DATA, ETHANE, RH_SET

from q2jax.errors import InputError
from q2jax.io import read_qm


@pytest.mark.parametrize("path,kw,program", [
    (DATA / "ch3f" / "ch3f-optimized.xyz", {}, "xyz"),
    (ETHANE / "GS.log", {}, "gaussian"),
    (ETHANE / "GS.fchk", {}, "gaussian-fchk"),
    (ETHANE / "GS.mol2", {}, "mol2"),
    (RH_SET / "mae" / "1_ZDMP_from_JCTC_SI.mae", {"atom_typ": ATOM_TYP}, "maestro"),
    (RH_SET / "rh_enamide_training_set.mmo.gz", {"atom_typ": ATOM_TYP, "index": 0},
     "macromodel"),
])
def test_dispatch(path, kw, program):
    assert read_qm(path, **kw).program == program


def test_gaussian_out_is_told_from_jaguar_out(tmp_path):
    p = tmp_path / "GS.out"
    shutil.copy(ETHANE / "GS.log", p)
    assert read_qm(p).program == "gaussian"


def test_foreign_out_and_in_files_are_refused(tmp_path):
    out = tmp_path / "orca.out"
    out.write_text("O   R   C   A\n* ORCA output *\n")
    with pytest.raises(InputError, match="neither Jaguar nor Gaussian") as err:
        read_qm(out)
    assert str(err.value).startswith(f"{out}: ")  # judged by the header: no single line
    inp = tmp_path / "qchem.in"
    inp.write_text("$molecule\n0 1\nH 0 0 0\n$end\n")
    with pytest.raises(InputError, match="Jaguar") as err:
        read_qm(inp)
    assert str(err.value).startswith(f"{inp}: ")


def test_unknown_extension(tmp_path):
    p = tmp_path / "x.pdb"
    p.write_text("ATOM\n")
    with pytest.raises(InputError, match="unknown file type") as err:
        read_qm(p)
    assert str(err.value).startswith(f"{p}: ")
