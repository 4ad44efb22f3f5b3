"""I/O and distance-map benchmark (a benchmark, not a timed test).

Run ``python benchmarks/bench_io.py`` from the repository root. It prints

1. seconds to read the 1,277-trace Bintu file and to compute all its distance maps (plus the
   FOF-CT sample and an HDF5 write/read of the Bintu traces);
2. distance maps for ``--n`` (default 10^5) synthetic traces x 65 loci, in traces/s, for
   pointae's ``distance_maps`` next to a ``scipy.spatial.distance.pdist`` loop (on a subsample,
   scaled) and a plain numpy broadcast, all in the same run, after checking they agree;
3. HDF5 streaming of those traces (write, then ``iter_traces`` in chunks).

Machine info (CPU count, torch threads, load average) is printed with the numbers: on a shared
machine the load average says how much to trust them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("POINTAE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def timed(fn, repeats: int = 3):
    """Median wall time of ``fn()`` over ``repeats`` runs, and its last result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def numpy_broadcast(coords: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Plain numpy: ``sqrt(((x[:, :, None] - x[:, None]) ** 2).sum(-1))`` in chunks."""
    n, n_loci = coords.shape[:2]
    out = np.empty((n, n_loci, n_loci), np.float32)
    for s in range(0, n, chunk):
        x = coords[s : s + chunk]
        diff = x[:, :, None, :] - x[:, None, :, :]  # (B, L, L, 3)
        out[s : s + chunk] = np.sqrt((diff * diff).sum(-1))
    return out


def pdist_loop(coords: np.ndarray) -> np.ndarray:
    """One ``squareform(pdist(trace))`` per trace (NaN propagates to missing pairs)."""
    from scipy.spatial.distance import pdist, squareform

    n, n_loci = coords.shape[:2]
    out = np.empty((n, n_loci, n_loci), np.float32)
    for i in range(n):
        out[i] = squareform(pdist(coords[i]))
    return out


def random_walks(n: int, n_loci: int, seed: int = 0, missing: float = 0.063) -> np.ndarray:
    """``(n, n_loci, 3)`` float32 random walks (~300 nm bonds) with a fraction of loci missing."""
    rng = np.random.default_rng(seed)
    c = np.cumsum(rng.normal(scale=170.0, size=(n, n_loci, 3)), axis=1).astype(np.float32)
    c += rng.uniform(-5e4, 5e4, size=(n, 1, 3)).astype(np.float32)
    c[rng.random((n, n_loci)) < missing] = np.nan
    return c


def machine_info() -> str:
    import torch

    return (
        f"python {platform.python_version()}, {platform.processor() or platform.machine()}, "
        f"cpu_count={os.cpu_count()}, torch {torch.__version__} threads={torch.get_num_threads()}, "
        f"loadavg={tuple(round(x, 2) for x in os.getloadavg())}"
    )


def bench_real(data: Path, repeats: int) -> None:
    from pointae.data.io import read_traces, write_traces
    from pointae.data.transforms import distance_maps

    bintu = data / "IMR90_chr21-18-20Mb.csv"
    fofct = data / "IMR90_chr21-18-20Mb_first300.fofct.csv"
    if not bintu.exists():
        print(f"[real data] skipped: {bintu} not found")
        return
    t_read, t = timed(lambda: read_traces(bintu), repeats)
    t_maps, maps = timed(lambda: distance_maps(t.coords), repeats)
    print(f"[real data] {bintu.name}: {len(t):,} traces x {t.n_loci} loci, missing {t.missing_fraction:.1%}")
    print(f"  read (detect + parse)           {t_read:8.3f} s")
    print(f"  all distance maps {maps.shape}  {t_maps:8.3f} s")
    print(f"  read + distance maps            {t_read + t_maps:8.3f} s")
    if fofct.exists():
        t_f, f = timed(lambda: read_traces(fofct), repeats)
        print(f"  read FOF-CT sample ({len(f)} traces) {t_f:8.3f} s")
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "b.h5"
        t_w, _ = timed(lambda: write_traces(t, p), repeats)
        t_r, _ = timed(lambda: read_traces(p), repeats)
        print(
            f"  HDF5 write / read (gzip)        {t_w:8.3f} s / {t_r:.3f} s ({p.stat().st_size / 1e6:.2f} MB)"
        )


def bench_maps(n: int, n_loci: int, n_pdist: int, chunk: int) -> None:
    from pointae.data.transforms import distance_maps

    coords = random_walks(n, n_loci)
    print(f"\n[distance maps] {n:,} traces x {n_loci} loci (float32, 6.3% missing), chunks of {chunk:,}")
    # agreement on a subsample (all three give NaN for pairs with a missing locus)
    sub = coords[:200]
    a, b, c = distance_maps(sub), numpy_broadcast(sub), pdist_loop(sub)
    err_np = float(np.nanmax(np.abs(a - b)))
    err_sp = float(np.nanmax(np.abs(a - c)))
    off = ~np.eye(n_loci, dtype=bool)  # squareform puts 0 on the diagonal even for a missing locus
    same_nan = np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(
        np.isnan(a)[:, off], np.isnan(c)[:, off]
    )
    print(
        f"  agreement: max |pointae - numpy| = {err_np:.2e}, max |pointae - pdist| = {err_sp:.2e}, "
        f"NaN pattern equal (off-diagonal for pdist): {same_nan}"
    )

    def run_chunks(fn):
        for s in range(0, n, chunk):
            fn(coords[s : s + chunk])

    distance_maps(coords[:chunk])  # warm-up (thread pools, allocator)
    rows = []
    t0 = time.perf_counter()
    run_chunks(distance_maps)
    rows.append(("pointae distance_maps", n / (time.perf_counter() - t0), n, os.getloadavg()[0]))
    t0 = time.perf_counter()
    run_chunks(numpy_broadcast)
    rows.append(("numpy broadcast", n / (time.perf_counter() - t0), n, os.getloadavg()[0]))
    m = min(n, n_pdist)
    t0 = time.perf_counter()
    pdist_loop(coords[:m])
    rows.append(
        (f"scipy pdist loop (on {m:,}, scaled)", m / (time.perf_counter() - t0), m, os.getloadavg()[0])
    )
    best = max(r[1] for r in rows)
    print(f"  {'method':38s} {'traces/s':>12s} {'s per 1e5':>10s} {'vs best':>8s} {'load1':>6s}")
    for name, rate, _, load in rows:
        print(f"  {name:38s} {rate:12,.0f} {1e5 / rate:10.2f} {rate / best:8.2f} {load:6.2f}")
    fastest = max(rows, key=lambda r: r[1])[0]
    print(f"  fastest: {fastest}")


def bench_h5(n: int, n_loci: int, chunk: int) -> None:
    from pointae.data.io import iter_traces, write_traces
    from pointae.data.traces import Traces

    t = Traces(random_walks(n, n_loci, seed=1))
    print(f"\n[HDF5 streaming] {n:,} traces x {n_loci} loci")
    with tempfile.TemporaryDirectory() as tmp:
        for comp in ("gzip", "lzf"):
            p = Path(tmp) / f"s_{comp}.h5"
            t0 = time.perf_counter()
            write_traces(t, p, compression=comp, chunk_traces=chunk)
            tw = time.perf_counter() - t0
            t0 = time.perf_counter()
            total = sum(len(part) for part in iter_traces(p, chunk_size=chunk))
            tr = time.perf_counter() - t0
            assert total == n
            print(
                f"  {comp:5s} write {tw:6.2f} s ({n / tw:10,.0f} traces/s), stream read {tr:6.2f} s "
                f"({n / tr:10,.0f} traces/s), {p.stat().st_size / 1e6:7.1f} MB, "
                f"load1={os.getloadavg()[0]:.2f}"
            )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="synthetic traces for the distance-map benchmark")
    ap.add_argument("--loci", type=int, default=65)
    ap.add_argument("--pdist-n", type=int, default=5_000, help="subsample for the pdist loop")
    ap.add_argument("--chunk", type=int, default=10_000, help="traces per call (bounds memory)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--skip-h5", action="store_true")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))
    print(machine_info())
    bench_real(args.data, args.repeats)
    bench_maps(args.n, args.loci, args.pdist_n, args.chunk)
    if not args.skip_h5:
        bench_h5(args.n, args.loci, min(args.chunk, 16384))
    print("\n" + machine_info())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
