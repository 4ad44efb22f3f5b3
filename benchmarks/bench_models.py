"""Encoder throughput and the map model's achieved FLOP/s next to the machine's matmul FLOP/s.

Run: ``python benchmarks/bench_models.py [--threads 2] [--batch 64] [--loci 64] [--steps 10]``

For each registered encoder (autoencode model with the map decoder, default widths, latent 16)
it reports training samples/s (forward + backward + AdamW step on a prepared representation
batch), inference samples/s (eval, no_grad), the representation's own cost (samples/s of
``rep(coords)``) and the parameter count. For the map encoder and the map autoencoder it
counts the FLOPs of one training step (``torch.utils.flop_counter``) and divides by the
measured step time, next to the fp32 matmul FLOP/s measured in the same run. CPU time is
shared on this machine, so the load average is printed before and after each measurement.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from pointae.data.reprs import build_repr
from pointae.models import ENCODERS, build_model, param_count


def load() -> str:
    return "load avg " + "/".join(f"{v:.2f}" for v in os.getloadavg())


def best_time(fn, steps: int, warmup: int = 2) -> float:
    """Median seconds per call of ``fn`` over ``steps`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2]


def matmul_flops(n: int = 1024, steps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / best_time(lambda: a @ b, steps)


def train_step_fn(model, x, target):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step():
        out = model(x)
        loss = (out.recon - target).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


def encoder_only_step(enc, x):
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-3)

    def step():
        z = enc(x)
        opt.zero_grad(set_to_none=True)
        z.pow(2).mean().backward()
        opt.step()

    return step


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--loci", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    b, n = args.batch, args.loci
    print(f"torch {torch.__version__}, {args.threads} threads, batch {b}, {n} loci; {load()}")
    mm = matmul_flops()
    print(f"fp32 matmul 1024^3: {mm / 1e9:.1f} GFLOP/s  ({load()})")

    coords = torch.randn(b, n, 3).cumsum(1)  # random walk, bond ~ sqrt(3)
    coords[:, 5:9] = float("nan")
    target = torch.nan_to_num(torch.cdist(coords, coords), nan=0.0)
    rows = []
    for name in sorted(ENCODERS):
        rep = build_repr(ENCODERS[name].repr)
        t_rep = best_time(lambda rep=rep: rep(coords, train=True), max(3, args.steps // 2))
        x = rep(coords)
        model = build_model(name, "autoencode", n, latent_dim=16, rep=rep)
        model.train()
        t_train = best_time(train_step_fn(model, x, target), args.steps)
        model.eval()
        with torch.no_grad():
            t_inf = best_time(lambda model=model, x=x: model(x), args.steps)
        rows.append((name, param_count(model), b / t_train, b / t_inf, b / t_rep))
        print(
            f"{name:6s} params {param_count(model):>8,d}  train {b / t_train:8.1f} samples/s  "
            f"inference {b / t_inf:8.1f} samples/s  repr {b / t_rep:8.1f} samples/s  ({load()})"
        )

    # achieved FLOP/s of the map model's training step
    rep = build_repr("map")
    x = rep(coords)
    model = build_model("map", "autoencode", n, latent_dim=16, rep=rep).train()
    step = train_step_fn(model, x, target)
    flops = count_flops(step)
    t = best_time(step, args.steps)
    enc = model.encoder
    estep = encoder_only_step(enc, x)
    eflops = count_flops(estep)
    te = best_time(estep, args.steps)
    mm2 = matmul_flops()
    mm_ref = max(mm, mm2)
    print(f"fp32 matmul (re-measured): {mm2 / 1e9:.1f} GFLOP/s  ({load()})")
    print(
        f"map encoder training step: {eflops / b / 1e6:.1f} MFLOP/sample, {eflops / te / 1e9:.1f} GFLOP/s = "
        f"{100 * eflops / te / mm_ref:.0f}% of matmul"
    )
    print(
        f"map autoencoder training step: {flops / b / 1e6:.1f} MFLOP/sample, {flops / t / 1e9:.1f} GFLOP/s = "
        f"{100 * flops / t / mm_ref:.0f}% of matmul  ({load()})"
    )


if __name__ == "__main__":
    main()
