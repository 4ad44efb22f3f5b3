"""Probe: does global context help the imputer? The default CNN plus two axial-attention blocks.

The shipped :class:`~pointae.impute.model.Imputer` sees the distance map through dilated 3x3
convolutions (receptive field 37 loci). This probe inserts a residual axial-attention block (each
map entry attends over its whole row and, symmetrically, its whole column; 2 heads; output
projection initialised at zero, so training starts from the plain CNN) after the 3rd and the 6th
convolution block, trains one model on the same 1,022 IMR90 training traces as the default
(split seed 0, 24 epochs, ``refine_steps = 10``) and scores it on the 213 eligible held-out traces
(10% hidden, hiding seeds 0-2). Not part of the package: it answers one question (see
docs/impute.md, "Is the ratio limited by training data ...?").

Example::

    python benchmarks/probe_impute_axial.py --epochs 24
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _machine import machine_info  # benchmarks/ is on sys.path
from bench_impute_curve import held_out_ratios, shipped_split  # benchmarks/ is on sys.path
from torch import nn

from pointae.baselines import interpolate_missing
from pointae.impute.fit import FitConfig, fit_imputer
from pointae.impute.model import Imputer, ImputerConfig
from pointae.impute.protocol import make_held_out, score

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "IMR90_chr21-18-20Mb.csv"


class Axial(nn.Module):
    """Residual attention along rows and (the same weights) along columns of a pair map."""

    def __init__(self, channels: int, heads: int = 2):
        super().__init__()
        self.norm = nn.GroupNorm(4, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.heads = heads

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        b, c, n, _ = x.shape
        d = c // self.heads

        def split(t):  # (B, C, L, L) -> (B, heads, L rows, L tokens, d)
            return t.reshape(b, self.heads, d, n, n).permute(0, 1, 3, 4, 2)

        q, k, v = (split(t) for t in self.qkv(self.norm(x)).chunk(3, 1))
        att = torch.softmax(q @ k.transpose(-1, -2) / d**0.5, -1)
        return self.proj((att @ v).permute(0, 1, 4, 2, 3).reshape(b, c, n, n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.5 * (self._rows(x) + self._rows(x.transpose(2, 3)).transpose(2, 3))


class AxialImputer(Imputer):
    def __init__(self, config: ImputerConfig | None = None, after: tuple[int, ...] = (2, 5)):
        super().__init__(config)
        self.after = after
        self.axial = nn.ModuleList([Axial(self.config.channels) for _ in after])

    def weights(self, feats):
        h = self.stem(feats["x"])
        for i, blk in enumerate(self.blocks):
            h = blk(h)
            if i in self.after:
                h = self.axial[self.after.index(i)](h)
        out = self.head(h)
        log_factor = 0.5 * (out[:, 2] + out[:, 2].transpose(1, 2))
        col = feats["mask"][:, None, :]
        logits = out[:, 0] + torch.log(feats["w_lin"] + self.config.prior_eps)
        soft = torch.softmax(logits.masked_fill(~col, float("-inf")), dim=-1)
        return torch.nan_to_num(soft, nan=0.0), log_factor


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(machine_info(1))
    train, test, scale = shipped_split(args.data)
    model = AxialImputer(ImputerConfig(refine_steps=10))
    print(f"{model.n_parameters()} parameters (plain CNN: {Imputer(ImputerConfig()).n_parameters()})")
    t0 = time.time()
    fc = FitConfig(epochs=args.epochs, max_minutes=120, seed=args.seed)
    model, _ = fit_imputer(train.coords, scale, fc, model=model, log=None)
    helds = [make_held_out(test, hide=0.1, seed=s) for s in range(3)]
    lin = [score(h, interpolate_missing(h.coords)).summary()["mae"] for h in helds]
    ratios, maps = held_out_ratios(model, helds, lin, scale)
    print(
        f"axial-attention imputer on {len(test)} held-out traces: ratio to linear {np.mean(ratios):.3f} "
        f"(per seed {', '.join(f'{x:.3f}' for x in ratios)}), raw map {np.mean(maps):.3f}; "
        f"{(time.time() - t0) / 60:.1f} min"
    )
    return {"ratio": ratios, "map_ratio": maps}


if __name__ == "__main__":
    main()
