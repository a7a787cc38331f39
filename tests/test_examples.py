"""Every script in examples/ runs (small budgets) and prints its result's summary.

The scripts run in this process (runpy, as ``__main__``) with small solver
budgets (those of tests/test_workflows.py).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# JAX solver budgets equal to tests/test_workflows.py (JAX_MAXITER, N_STARTS, PCT)
RUNS = {
    "workflow_a_lbfgsb": ["--maxiter", "25"],
    "workflow_b_multistart": ["--maxiter", "10", "--n-starts", "4", "--pct", "20"],
    "workflow_c_grad_simp": ["--maxiter", "10", "--max-cycles", "1"],
    "workflow_d_jaxopt": ["--maxiter", "10", "--scan", "4"],
}
HEADERS = {
    "workflow_a_lbfgsb": "ScipyOptimizer: L-BFGS-B, jac=analytical",
    "workflow_b_multistart": "MultiStartOptimizer: multi:jaxopt:lbfgsb",
    "workflow_c_grad_simp": "OptimizationLoop: grad-simp(L-BFGS-B+Nelder-Mead",
    "workflow_d_jaxopt": "JaxOptOptimizer: jaxopt:lbfgsb",
}


# examples that are not workflow recipes: each has its own test below
OWN_TESTS = {
    "batch_fits": "test_batch_fits_example_fits_every_molecule",
    "differentiable_fit": "test_differentiable_fit_example_lowers_the_holdout_error",
}


def test_every_example_is_tested():
    """Every examples/*.py is run by a test of this file (the workflow recipes by the
    parametrised test, the others by the test named in OWN_TESTS, which runs that
    script) and documented in examples/README.md."""
    import inspect

    scripts = {p.stem for p in EXAMPLES.glob("*.py")}
    assert scripts == set(RUNS) | set(OWN_TESTS)
    for name, test in OWN_TESTS.items():
        assert f'_run("{name}"' in inspect.getsource(globals()[test]), (name, test)
    readme = (EXAMPLES / "README.md").read_text()
    assert all(f"python examples/{name}.py" in readme for name in scripts)


def _run(name: str, args: list[str], monkeypatch, capsys) -> str:
    """Run ``examples/<name>.py args`` as ``__main__`` in this process; its stdout."""
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *args])
    monkeypatch.syspath_prepend(str(EXAMPLES))
    runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    return capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(RUNS))
def test_example_runs_and_prints_summary(name, monkeypatch, capsys, tmp_path):
    png = tmp_path / f"{name}.png"
    out = _run(name, [*RUNS[name], "--plot", str(png)], monkeypatch, capsys)
    assert HEADERS[name] in out
    assert "Honest figures" in out and "fitted force field:" in out
    # the fitted force field's honest frequency RMSD (cm^-1) beats the QFUERZA start (209.2)
    rows = [line.split() for line in out.splitlines() if line.startswith("ch3f ")]
    start, final = float(rows[0][1]), float(rows[1][1])
    assert start == pytest.approx(209.2, abs=0.1) and final < start
    assert png.read_bytes()[:4] == b"\x89PNG"



def test_batch_fits_example_fits_every_molecule(monkeypatch, capsys):
    """Both bundled ground states in one compiled call; each row's honest RMSD
    (at its own relaxed geometry) improves on its own QFUERZA start."""
    out = _run("batch_fits", ["--maxiter", "15"], monkeypatch, capsys)
    assert "2 problems fitted in one compiled call" in out
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines()
            if ln.split() and ln.split()[0] in ("ch3f", "ethane")}
    assert set(rows) == {"ch3f", "ethane"}
    for r in rows.values():
        start, final, n_imag = float(r[2]), float(r[3]), int(r[5])
        assert final < start and n_imag == 0


def test_differentiable_fit_example_lowers_the_holdout_error(monkeypatch, capsys):
    """The outer gradient steps on log10(λ) lower the hold-out error computed
    through the implicitly differentiated inner fit."""
    out = _run("differentiable_fit", ["--steps", "3"], monkeypatch, capsys)
    steps = [ln.split() for ln in out.splitlines() if ln.split() and ln.split()[0].isdigit()]
    assert len(steps) == 4
    errs = [float(s[2]) for s in steps]
    assert errs[-1] < errs[0] and all(np.isfinite(float(s[3])) for s in steps)
    assert "d(fitted k)/d(weight of each training mode)" in out
