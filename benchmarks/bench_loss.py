"""Clustering with one training loss: an autoencoder's latents vs PCA on the demo's labels.

Usage::

    python benchmarks/bench_loss.py --data runs/demo/data.h5 --out runs/bench_loss/log_mse \
        --loss log_mse [--epochs 20] [--reprs map] [--threads 1] [--set train.seed=1 ...]

Trains the autoencoder of each representation with the demo's small settings (batch 32, latent 16,
patience 6, warm-up 20) and ``task.loss=LOSS`` on ``--data`` (a demo ``data.h5``: the traces with
their ``condition`` and ``loop_state``), then runs :func:`pointae.analysis.compare` (no sweeps, PCA
layout) and prints kNN accuracy / ARI / NMI per label for the latents, PCA of distances and PCA of
log distances, all on the same split. The full report is in ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _machine import machine_info  # benchmarks/ is on sys.path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--loss", default="log_mse", help="task.loss: mse, l1, log_mse, log_l1")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--reprs", nargs="+", default=["map"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="extra section.key=value")
    a = ap.parse_args()
    print(machine_info(), flush=True)

    import torch

    from pointae.analysis.compare import compare
    from pointae.analysis.demo import SIZES, demo_labels
    from pointae.data.io import read_traces

    torch.set_num_threads(a.threads)
    traces = read_traces(a.data)
    spec = SIZES["small"]
    ov = [
        f"train.max_epochs={a.epochs}",
        f"train.batch_size={spec.batch_size}",
        "train.progress=false",
        *spec.overrides,
        f"train.threads={a.threads}",
        f"task.loss={a.loss}",
        *a.overrides,
    ]
    t0 = time.perf_counter()
    res = compare(
        traces,
        reprs=a.reprs,
        tasks=["autoencode"],
        out=a.out,
        overrides=ov,
        latent_dim=spec.latent_dim,
        labels=demo_labels(traces),
        sweeps=False,
        layout="pca",
        log=print,
    )
    print(f"wall {time.perf_counter() - t0:.1f} s; settings: {' '.join(ov)}")
    for r in a.reprs:
        print(f"{r} autoencode MAE {res.metrics['tasks']['autoencode']['models'][r]['mae']:.2f}")
    for lab, row in res.metrics["clustering"]["autoencode"].items():
        for name, v in row.items():
            print(
                f"{lab:15s} {name:12s} knn={v['knn_accuracy']:.3f} ari={v['ari']:.3f} "
                f"nmi={v['nmi']:.3f} n={v['n_points']}"
            )
    for text in res.metrics["verdict"].values():
        print(f"verdict {text}")


if __name__ == "__main__":
    main()
