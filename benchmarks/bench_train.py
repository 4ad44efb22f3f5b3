"""Training and inference throughput of every encoder at 64 loci, and the map model's FLOP/s.

Usage::

    python benchmarks/bench_train.py [--threads 2] [--batch 64] [--steps 20] [--width 32]

Prints, per representation x task: parameters, training samples/s (forward + backward + AdamW
step on prepared batches: the representation is built once, as the engine builds it per batch
on the device), inference samples/s (representation + forward), and for the map model the
achieved FLOP/s of a training step (counted by ``torch.utils.flop_counter``) next to the
machine's measured fp32 matmul FLOP/s. ``os.getloadavg()`` is printed beside the timings: the
numbers are only meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from _machine import machine_info  # benchmarks/ is on sys.path


def matmul_flops(n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t)


def step_flops(model, x, target) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        out = model(x)
        loss = ((out.recon - target) ** 2).mean()
        loss.backward()
    model.zero_grad(set_to_none=True)
    return float(fc.get_total_flops())


def bench(repr_name: str, task: str, coords: torch.Tensor, width: int, batch: int, steps: int) -> dict:
    from pointae.config import load_config
    from pointae.data.reprs import build_repr
    from pointae.data.transforms import distance_maps_torch
    from pointae.models import build_model, param_count
    from pointae.train import resolve_hparams

    cfg = load_config(overrides=[f"model.repr={repr_name}", f"task.name={task}", f"model.width={width}"])
    rep = build_repr(repr_name)
    torch.manual_seed(0)
    model = build_model(
        repr_name, task, coords.shape[1], cfg.model.latent_dim, rep=rep, **resolve_hparams(cfg)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    c = coords[:batch]
    x = rep(c, train=True, generator=torch.Generator().manual_seed(0))
    target = torch.nan_to_num(distance_maps_torch(c))
    model.train()
    for i in range(steps + 3):  # 3 warm-up steps
        if i == 3:
            t0 = time.perf_counter()
        out = model(x)
        loss = ((out.recon - target) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    train_s = time.perf_counter() - t0
    res = {
        "repr": repr_name,
        "task": task,
        "params": param_count(model),
        "train_samples_per_s": batch * steps / train_s,
    }
    model.eval()
    with torch.no_grad():
        model(rep(c))
        t0 = time.perf_counter()
        n = 0
        for _ in range(max(3, steps // 2)):
            model(rep(coords[: 4 * batch]))
            n += min(4 * batch, coords.shape[0])
        res["inference_samples_per_s"] = n / (time.perf_counter() - t0)
    if repr_name == "map":
        model.train()
        f = step_flops(model, x, target)
        res["train_step_gflop"] = f / 1e9
        res["train_gflops"] = f * steps / train_s / 1e9
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--n-loci", type=int, default=64)
    ap.add_argument("--tasks", nargs="+", default=["autoencode", "denoise"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    # random walks in median-bond units (the engine's scaled units)
    coords = torch.from_numpy(
        np.cumsum(rng.normal(size=(4 * args.batch, args.n_loci, 3)) / np.sqrt(3), 1)
    ).float()
    peak = matmul_flops()
    print(f"{machine_info(args.threads)}; matmul fp32: {peak / 1e9:.1f} GFLOP/s")
    hdr = f"{'repr':6} {'task':10} {'params':>9} {'train/s':>9} {'infer/s':>9} {'GFLOP/s':>8} {'% matmul':>8}"
    print(hdr)
    for task in args.tasks:
        for r in ("map", "graph", "voxel"):
            res = bench(r, task, coords, args.width, args.batch, args.steps)
            g = res.get("train_gflops")
            extra = f"{g:8.1f} {100 * g * 1e9 / peak:7.0f}%" if g else f"{'-':>8} {'-':>8}"
            print(
                f"{r:6} {task:10} {res['params']:9,d} {res['train_samples_per_s']:9.0f} "
                f"{res['inference_samples_per_s']:9.0f} {extra}",
                flush=True,
            )
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
