"""Batched 1D loop-extrusion dynamics (Fudenberg et al. 2016), ``C`` chains at once, in torch.

Each chain carries ``n_lef`` loop-extruding factors (LEFs), each with a left and a right leg on the
monomer lattice. Per LEF step:

1. every bound LEF unloads with probability ``1 / lifetime`` (its legs leave the lattice);
2. every unbound LEF tries to load at a uniformly random pair of free neighbouring monomers
   ``(p, p + 1)`` (it retries on the next step when the pair is occupied, or when a lower-numbered
   LEF of the same chain tries an overlapping pair in the same step);
3. a leg sitting on a barrier that faces it (left legs: forward sites, right legs: reverse sites) is
   captured with the barrier's occupancy probability; a captured leg stays until its LEF unloads (or
   with probability ``release`` per step);
4. legs step outwards by one monomer unless captured, at the chain end, or blocked by any other leg
   (LEFs do not pass each other). Left legs and right legs move in two sub-steps in a random order
   each step, so no two legs ever land on the same monomer.

The 3D coupling is a harmonic bond between the two legs of every bound LEF
(see :class:`pointae.sim.polymer.ChainBatch`).
"""

from __future__ import annotations

import numpy as np
import torch


class LEFSystem:
    """State of the LEFs of ``C`` chains.

    Parameters
    ----------
    n_chains, n_monomers, n_lef
        Chains ``C``, lattice length ``M`` and LEFs per chain.
    lifetime
        Mean residence time in LEF steps.
    stall_left, stall_right
        Capture probabilities per monomer ``(M,)`` for left- and right-moving legs.
    release
        Probability per step that a captured leg is released (0: held until unloading).
    generator, device
        Randomness and placement.

    Attributes
    ----------
    left, right : (C, n_lef) long tensors
        Leg positions, ``-1`` when unbound.
    cap_left, cap_right : (C, n_lef) bool tensors
        Whether each leg is held by a barrier.
    """

    def __init__(
        self,
        n_chains: int,
        n_monomers: int,
        n_lef: int,
        lifetime: float,
        stall_left=None,
        stall_right=None,
        release: float = 0.0,
        generator: torch.Generator | None = None,
        device: str | torch.device = "cpu",
    ):
        self.C, self.M, self.n = int(n_chains), int(n_monomers), int(n_lef)
        self.device = torch.device(device)
        self.gen = generator
        self.p_unload = 1.0 / float(lifetime)
        self.release = float(release)
        z = np.zeros(self.M)
        sl = z if stall_left is None else np.asarray(stall_left, dtype=np.float64)
        sr = z if stall_right is None else np.asarray(stall_right, dtype=np.float64)
        self.stall_left = torch.as_tensor(sl, dtype=torch.float32, device=self.device)
        self.stall_right = torch.as_tensor(sr, dtype=torch.float32, device=self.device)
        shape = (self.C, self.n)
        self.left = torch.full(shape, -1, dtype=torch.long, device=self.device)
        self.right = torch.full(shape, -1, dtype=torch.long, device=self.device)
        self.cap_left = torch.zeros(shape, dtype=torch.bool, device=self.device)
        self.cap_right = torch.zeros(shape, dtype=torch.bool, device=self.device)
        self.occ = torch.zeros(self.C, self.M + 2, dtype=torch.bool, device=self.device)  # padded by 1
        self.occ[:, 0] = True
        self.occ[:, -1] = True  # chain ends act as walls
        self.n_steps = 0

    def _rand(self, *shape) -> torch.Tensor:
        return torch.rand(shape, generator=self.gen, device=self.device)

    @property
    def bound(self) -> torch.Tensor:
        """bool ``(C, n_lef)``: LEF is on the chain."""
        return self.left >= 0

    def _set_occ(self, pos: torch.Tensor, mask: torch.Tensor, value: bool) -> None:
        rows = torch.arange(self.C, device=self.device)[:, None].expand_as(pos)
        self.occ[rows[mask], pos[mask] + 1] = value

    def step(self, n: int = 1) -> None:
        """Advance ``n`` LEF steps."""
        for _ in range(n):
            self._step()

    def _step(self) -> None:
        C, n = self.C, self.n
        rows = torch.arange(C, device=self.device)[:, None].expand(C, n)
        # 1. unloading
        off = self.bound & (self._rand(C, n) < self.p_unload)
        if bool(off.any()):
            self._set_occ(self.left, off, False)
            self._set_occ(self.right, off, False)
            self.left[off] = -1
            self.right[off] = -1
            self.cap_left[off] = False
            self.cap_right[off] = False
        # 2. loading: every unbound LEF tries one random neighbouring pair; it loads when both monomers
        # are free and no lower-numbered LEF of the chain tries an overlapping pair this step
        free = ~self.bound
        if bool(free.any()):
            pos = torch.floor(self._rand(C, n) * (self.M - 1)).long()  # left leg position 0..M-2
            occ = self.occ
            ok = free & ~occ.gather(1, pos + 1) & ~occ.gather(1, pos + 2)
            if bool(ok.any()):
                big = n + 1
                lef_id = torch.arange(n, device=self.device).expand(C, n)
                cand = torch.where(ok, lef_id, torch.full_like(lef_id, big))
                owner = torch.full((C, self.M + 2), big, dtype=torch.long, device=self.device)
                owner.scatter_reduce_(1, pos + 1, cand, reduce="amin")
                owner.scatter_reduce_(1, pos + 2, cand, reduce="amin")
                win = ok & (owner.gather(1, pos + 1) == lef_id) & (owner.gather(1, pos + 2) == lef_id)
                self.left[win] = pos[win]
                self.right[win] = pos[win] + 1
                self._set_occ(self.left, win, True)
                self._set_occ(self.right, win, True)
        bound = self.bound
        # 3. capture / release
        u = self._rand(2, C, n)
        li = self.left.clamp(min=0)
        ri = self.right.clamp(min=0)
        self.cap_left |= bound & (u[0] < self.stall_left[li])
        self.cap_right |= bound & (u[1] < self.stall_right[ri])
        if self.release > 0:
            v = self._rand(2, C, n)
            self.cap_left &= ~(v[0] < self.release)
            self.cap_right &= ~(v[1] < self.release)
        # 4. outward moves, left legs then right legs or the reverse
        order = ("left", "right") if bool(self._rand(1)[0] < 0.5) else ("right", "left")
        for side in order:
            if side == "left":
                tgt = self.left - 1
                can = bound & ~self.cap_left
            else:
                tgt = self.right + 1
                can = bound & ~self.cap_right
            can &= ~self.occ[rows, (tgt + 1).clamp(0, self.M + 1)]
            if not bool(can.any()):
                continue
            old = self.left if side == "left" else self.right
            self.occ[rows[can], old[can] + 1] = False
            self.occ[rows[can], tgt[can] + 1] = True
            old[can] = tgt[can]
        self.n_steps += 1

    def loop_sizes(self) -> torch.Tensor:
        """``(C, n_lef)`` loop extents ``right - left`` in monomers (0 when unbound)."""
        return torch.where(self.bound, self.right - self.left, torch.zeros_like(self.left))

    def check(self) -> None:
        """Assert the lattice invariants (used by tests)."""
        occ = torch.zeros_like(self.occ)
        rows = torch.arange(self.C, device=self.device)[:, None].expand(self.C, self.n)
        b = self.bound
        assert bool((self.right[b] > self.left[b]).all()), "right leg not right of left leg"
        assert bool((self.left[b] >= 0).all()) and bool((self.right[b] < self.M).all()), "leg off chain"
        legs = torch.cat([self.left[b], self.right[b]])
        chains = torch.cat([rows[b], rows[b]])
        key = chains * (self.M + 2) + legs
        assert key.unique().numel() == key.numel(), "two legs on one monomer"
        occ[chains, legs + 1] = True
        occ[:, 0] = True
        occ[:, -1] = True
        assert bool((occ == self.occ).all()), "occupancy out of sync"
