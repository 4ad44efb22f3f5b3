"""Encoder throughput and the map model's achieved FLOP/s next to the machine's matmul FLOP/s.

Run: ``python benchmarks/bench_models.py [--threads 2] [--batch 64] [--loci 64] [--steps 10]``

A second mode checks the denoise/inpaint task models against their baselines on the real
Bintu traces (a quick training loop of its own, not the training engine):
``python benchmarks/bench_models.py --quality map:inpaint [--epochs 5] [--threads 1]``
(1000 traces train, 277 test; hidden loci 25% / outliers 10%; MAE in nm on the hidden /
corrupted pairs next to linear interpolation / the neighbour-rule cleaner).

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
from _machine import machine_info  # benchmarks/ is on sys.path

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


BINTU = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "IMR90_chr21-18-20Mb.csv")


def quality(repr_name: str, task: str, epochs: int, path: str = BINTU, seed: int = 0) -> dict:
    """Train a task model on real traces and score it on corrupted/hidden pairs next to the baseline."""
    import numpy as np

    from pointae import read_traces
    from pointae.baselines import clean_neighbour_rule, interpolate_missing
    from pointae.data.corrupt import add_outliers, hide_loci
    from pointae.data.transforms import MapScaler, distance_maps_torch
    from pointae.losses import masked_mse

    t = read_traces(path)
    scale = MapScaler("dataset").fit(t).scale
    c = t.coords / scale
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(c))
    tr, te = perm[:1000], perm[1000:]
    rep = build_repr(repr_name)
    torch.manual_seed(seed)
    model = build_model(repr_name, task, c.shape[1], latent_dim=16, rep=rep)
    print(f"{repr_name} {task}: {type(model).__name__}, {param_count(model):,d} params", flush=True)

    def corrupt(x, r):
        k = hide_loci(x, 0.25, r) if task == "inpaint" else add_outliers(x, 0.1, r)
        return k.coords, torch.from_numpy(k.changed)

    def masks(clean, changed):
        known = torch.from_numpy(~np.isnan(clean[..., 0]))
        pm = known[:, :, None] & known[:, None, :]
        return pm & (changed[:, :, None] | changed[:, None, :]), pm

    bs = 64
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=epochs * (len(tr) // bs))
    gen = torch.Generator().manual_seed(seed)
    for ep in range(epochs):
        model.train()
        t0, losses = time.perf_counter(), []
        order = rng.permutation(tr)
        for s in range(0, len(order) - bs + 1, bs):
            clean = c[order[s : s + bs]]
            cc, changed = corrupt(clean, rng)
            target = distance_maps_torch(torch.from_numpy(clean))
            focus, pm = masks(clean, changed)
            out = model(rep(torch.from_numpy(cc), train=True, generator=gen))
            loss = masked_mse(out.recon, target, pm) + masked_mse(out.recon, target, focus)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
        print(
            f"  epoch {ep} loss {np.mean(losses):.4f} ({time.perf_counter() - t0:.0f} s, {load()})",
            flush=True,
        )
    model.eval()
    clean = c[te]
    cc, changed = corrupt(clean, np.random.default_rng(seed + 123))
    target = distance_maps_torch(torch.from_numpy(clean))
    focus, pm = masks(clean, changed)
    with torch.no_grad():
        pred = torch.cat(
            [model(rep(torch.from_numpy(cc[s : s + 128]))).recon for s in range(0, len(cc), 128)]
        )
    fixed = interpolate_missing(cc) if task == "inpaint" else clean_neighbour_rule(cc)[0]
    base = distance_maps_torch(torch.from_numpy(np.asarray(fixed, dtype=np.float32)))
    upper = torch.ones(pred.shape[-1], pred.shape[-1], dtype=torch.bool).triu(1)

    def mae(p, m):
        m = m & upper & ~torch.isnan(p)
        return float((p - target)[m].abs().mean() * scale)

    res = {
        "model": mae(pred, focus),
        "baseline": mae(base, focus),
        "model_all": mae(pred, pm),
        "baseline_all": mae(base, pm),
    }
    name = "linear interpolation" if task == "inpaint" else "neighbour-rule cleaner"
    print(
        f"RESULT {repr_name} {task}: MAE on {'hidden' if task == 'inpaint' else 'corrupted'} pairs: model "
        f"{res['model']:.1f} nm, {name} {res['baseline']:.1f} nm; all observed pairs: model "
        f"{res['model_all']:.1f} nm, baseline {res['baseline_all']:.1f} nm",
        flush=True,
    )
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--loci", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--quality", metavar="REPR:TASK", help="e.g. map:inpaint (see the module docstring)")
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quality:
        r, t = args.quality.split(":")
        quality(r, t, args.epochs)
        return
    torch.manual_seed(0)
    b, n = args.batch, args.loci
    print(f"{machine_info(args.threads)}; batch {b}, {n} loci")
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
