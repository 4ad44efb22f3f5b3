"""The per-structure ``loop_state`` label: which barrier pairs a LEF bridges at that moment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from pointae.sim.barriers import BarrierMap
from pointae.sim.run import _loops_and_states


class _LEFs:
    """Stand-in for :class:`pointae.sim.extrusion.LEFSystem`: only leg positions are read."""

    def __init__(self, legs: list[list[tuple[int, int]]]):
        n = max(len(c) for c in legs)
        self.left = torch.full((len(legs), n), -1, dtype=torch.long)
        self.right = torch.full((len(legs), n), -1, dtype=torch.long)
        for i, chain in enumerate(legs):
            for j, (a, b) in enumerate(chain):
                self.left[i, j], self.right[i, j] = a, b


def _geo(n_loci=32, ext=2, mpl=1, barrier_loci=(4, 12, 19, 27), active=True):
    m = n_loci * mpl + 2 * ext
    stall = np.zeros(m)
    if active:
        for b in barrier_loci:
            stall[ext + b * mpl] = 0.9
    loci = pd.DataFrame({"chrom": "sim", "start": np.arange(n_loci), "end": np.arange(n_loci) + 1})
    return {"mpl": mpl, "ext": ext, "loci": loci, "barriers": BarrierMap(stall, stall.copy(), pd.DataFrame())}


def test_loop_state_is_the_set_of_bridged_barrier_pairs():
    geo, e = _geo(), 2  # monomer = locus + ext
    legs = [
        [(4 + e, 12 + e)],  # exactly on two barriers
        [(5 + e, 11 + e), (13 + e, 19 + e)],  # each leg within one locus: two adjacent loops
        [(4 + e, 9 + e), (20 + e, 27 + e)],  # one leg too far (9 vs 12); second pair bridged
        [(6 + e, 10 + e)],  # inside a domain: a loop, but no barrier pair
        [(4 + e, 19 + e), (5 + e, 12 + e)],  # nested: both pairs, sorted
        [(-1, -1)],  # unbound
        [(0, 3)],  # legs in the flank outside the region: not a loop of the region
    ]
    loops, counts, states = _loops_and_states(_LEFs(legs), geo, np.arange(len(legs)))
    assert states == ["4-12", "4-12+12-19", "19-27", "none", "4-12+4-19", "none", "none"]
    assert loops[1] == "5-11;13-19" and counts[1] == 2
    assert counts[5] == 0 and counts[6] == 0 and loops[6] == ""
    # tolerance 0: only legs on the barrier loci themselves count
    _, _, exact = _loops_and_states(_LEFs(legs), geo, np.arange(len(legs)), tol=0)
    assert exact == ["4-12", "none", "none", "none", "4-19", "none", "none"]


def test_loop_state_without_active_barriers_or_lefs_is_none():
    geo = _geo(active=False)
    _, counts, states = _loops_and_states(_LEFs([[(6, 14)], [(7, 13)]]), geo, np.arange(2))
    assert states == ["none", "none"] and counts == [1, 1]
    loops, counts, states = _loops_and_states(None, _geo(), np.arange(3))
    assert states == ["none"] * 3 and counts == [0] * 3 and loops == [""] * 3


def test_loop_state_with_several_monomers_per_locus():
    geo = _geo(n_loci=10, ext=4, mpl=3, barrier_loci=(2, 7))
    # locus k holds monomers 4 + 3k .. 6 + 3k; barriers at loci 2 and 7
    legs = [[(4 + 3 * 2 + 2, 4 + 3 * 7)], [(4 + 3 * 1, 4 + 3 * 8 + 2)], [(4 + 3 * 0, 4 + 3 * 7)]]
    _, _, states = _loops_and_states(_LEFs(legs), geo, np.arange(3))
    assert states == ["2-7", "2-7", "none"]
