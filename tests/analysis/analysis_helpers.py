"""Stand-ins used only by the analysis tests: labelled toy traces and a PCA "model"."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pointae.analysis.cluster import DistancePCA
from pointae.config import save_config
from pointae.data.traces import Traces


def labelled_traces(n: int = 120, n_loci: int = 16, seed: int = 0, missing: float = 0.05) -> Traces:
    """Random walks in nm with two conditions (compact / open) and a loop_state label.

    Condition ``compact`` has 100 nm steps, ``open`` 220 nm; a ``loop`` structure has loci 3 and
    ``L-4`` pulled together (the rest of the chain follows smoothly).
    """
    rng = np.random.default_rng(seed)
    cond = np.where(np.arange(n) % 2 == 0, "compact", "open")
    loop = rng.random(n) < 0.5
    step = np.where(cond == "compact", 100.0, 220.0)[:, None, None]
    c = np.cumsum(rng.normal(size=(n, n_loci, 3)) * step / np.sqrt(3), axis=1)
    a, b = 3, n_loci - 4
    for i in np.flatnonzero(loop):
        gap = c[i, b] - c[i, a]
        w = np.clip((np.arange(n_loci) - a) / (b - a), 0, 1)[:, None]
        c[i] -= w * gap  # loci a and b meet; linear ramp in between keeps the chain continuous
    c = c.astype(np.float32)
    drop = rng.random((n, n_loci)) < missing
    drop[:, :2] = False
    c[drop] = np.nan
    meta = pd.DataFrame(
        {
            "trace_id": [f"t{i}" for i in range(n)],
            "condition": cond,
            "loop_state": np.where(loop, f"{a}-{b}", "none"),
            "loops": [json.dumps([[a, b]]) if x else "" for x in loop],
        }
    )
    loci = pd.DataFrame(
        {"chrom": "chrT", "start": np.arange(n_loci) * 30_000, "end": (np.arange(n_loci) + 1) * 30_000}
    )
    return Traces(c, unit="nm", meta=meta, loci=loci, attrs={"source": "tests.analysis.labelled_traces"})


class PCAModel:
    """Stand-in for a trained run: PCA of distances as 'latents', its inverse as reconstruction."""

    def __init__(self, traces: Traces, d: int = 4, run_dir=None):
        self.scale = traces.median_neighbour_distance()
        self.pca = DistancePCA(d, scale=self.scale).fit(traces.coords)
        self.config = {"model": {"repr": "pca-standin", "latent_dim": d}, "note": None}
        self.run_dir = run_dir
        self.param_count = d * traces.n_loci
        self.calls: list[int] = []

    def encode(self, traces: Traces, batch_size: int = 256) -> np.ndarray:
        self.calls.append(len(traces))
        return self.pca.transform(traces.coords)

    def reconstruct(self, traces: Traces, batch_size: int = 256) -> np.ndarray:
        return self.pca.inverse_maps(self.pca.transform(traces.coords))

    def decode(self, z: np.ndarray) -> np.ndarray:
        return self.pca.inverse_maps(z)


def standin_trainer(cfg, traces: Traces) -> Path:
    """Write a run directory the way pointae.train.fit does (split ids, history), no real training."""
    run = Path(cfg.out)
    run.mkdir(parents=True, exist_ok=True)
    sp = traces.split(cfg.data.test_fraction, seed=cfg.data.split_seed, val_fraction=cfg.data.val_fraction)
    ids = traces.trace_ids
    (run / "split.json").write_text(json.dumps({k: [str(x) for x in ids[v]] for k, v in sp.items()}))
    epochs = cfg.train.max_epochs
    pd.DataFrame(
        {
            "epoch": range(epochs),
            "train_loss_epoch": np.linspace(1, 0.5, epochs),
            "val_loss": np.linspace(1.1, 0.6, epochs),
        }
    ).to_csv(run / "history.csv", index=False)
    (run / "model.json").write_text(json.dumps({"repr": cfg.model.repr, "task": cfg.task.name}))
    save_config(cfg, run / "config.yaml")
    return run


def standin_loader_for(traces: Traces, d: int = 4):
    def load(run_dir):
        return PCAModel(traces, d=d, run_dir=run_dir)

    return load
