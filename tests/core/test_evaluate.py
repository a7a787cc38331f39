"""Honest evaluation: mode-matched figures next to sorted order."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from q2jax import ForceField
from q2jax.evaluate import evaluate
from q2jax.fit import qfuerza_start

from ._cases import ch3f

# An 8-parameter CH3F force field whose relaxed spectrum puts the A1 C-H bend
# (QM 1495.3 cm^-1) above the E bends (QM 1512.3/1512.4): sorted order pairs
# modes of different symmetry there.
REORDERING = [424.68, 1.4222, 381.27, 1.0846, 66.83, 103.62, 37.73, 106.19]


def _evaluate(params=None):
    c = ch3f()
    ff = qfuerza_start(ForceField.from_molecules([c.molecule]), [c.molecule], [c.hessian])
    if params is not None:
        ff = ff.with_params(jnp.asarray(params))
    return evaluate(ff, [c.molecule], [c.frequencies], qm_hessians=[c.hessian])[0], c


def test_matched_rmsd_is_never_below_the_sorted_one():
    """Sorted-to-sorted pairing minimises the sum of squared differences over all
    pairings (rearrangement inequality), so any other pairing scores >= it."""
    for params in (None, REORDERING):
        e, _ = _evaluate(params)
        m = e.mode_matched
        assert m["freq_rmsd_cm1"] >= e.freq_rmsd_cm1 - 1e-9
        assert sorted(m["frequencies_cm1"]) == sorted(e.frequencies_cm1)  # a permutation


def test_matching_pairs_modes_of_the_same_symmetry_species():
    """C3v CH3F: every doubly degenerate QM pair (E) is paired with a degenerate MM
    pair, the non-degenerate QM modes (A1) with non-degenerate MM modes, whatever
    the sorted order says."""
    e, c = _evaluate(REORDERING)
    qm = np.asarray(c.frequencies)
    mm_all = np.asarray(e.frequencies_cm1)
    paired = np.asarray(e.mode_matched["frequencies_cm1"])

    def degenerate(values, i, tol):
        return np.sum(np.abs(values - values[i]) < tol) == 2

    for i in range(len(qm)):
        assert degenerate(qm, i, 0.5) == degenerate(mm_all, int(np.argmin(
            np.abs(mm_all - paired[i]))), 1e-3), f"QM mode {i} ({qm[i]:.1f})"
    # the sorted order pairs the A1 bend with an E bend: two QM modes get another partner
    assert e.mode_matched["n_reordered"] == 2
    a1 = int(np.argmin(np.abs(qm - 1495.3)))
    assert paired[a1] == max(mm_all[3:6])


def test_without_qm_hessians_no_matched_figures():
    c = ch3f()
    ff = ForceField.from_molecules([c.molecule])
    e = evaluate(ff, [c.molecule], [c.frequencies])[0]
    assert e.mode_matched == {} and "mode_matched" in e.state()
