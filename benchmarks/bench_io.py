"""I/O and distance-map benchmark (a benchmark, not a timed test).

Run ``python benchmarks/bench_io.py`` from the repository root. It prints

1. seconds to read the 1,277-trace Bintu file and to compute all its distance maps (plus the
   FOF-CT sample and an HDF5 write/read of the Bintu traces);
2. distance maps for ``--n`` (default 10^5) synthetic traces x 65 loci, in traces/s, for
   pointae's ``distance_maps`` next to a ``scipy.spatial.distance.pdist`` loop (on a subsample,
   scaled) and a plain numpy broadcast, all in the same run, after checking they agree;
3. HDF5 streaming of those traces (write, then ``iter_traces`` in chunks);
4. with ``--long-table N``: a Huang-style long CSV of N traces (default 10^6; trace key
   FOV_ID + Trace_ID, genomic loci, absent rows for missing spots) is written, then read with
   ``iter_traces`` at two chunk sizes and converted to HDF5, each in a child process whose peak
   RSS (``wait4``) and wall time are printed: memory is bounded by the chunk size, not the file.

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


def write_long_table(path: Path, n: int, n_loci: int, seed: int = 0, missing: float = 0.3) -> tuple[int, int]:
    """A Huang-style CSV (``,z-nm,x-nm,y-nm,Trace_ID,chr,start,stop,FOV_ID``) of ``n`` traces.

    Missing spots are absent rows. Returns the rows written and the traces in the file (a trace
    with every spot missing has no row, so it is not in the file).
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows, traces, block = 0, 0, 50_000
    with open(path, "w") as fh:
        fh.write(",z-nm,x-nm,y-nm,Trace_ID,chr,start,stop,FOV_ID\n")
        for s0 in range(0, n, block):
            b = min(block, n - s0)
            c = random_walks(b, n_loci, seed=seed + s0, missing=0.0).reshape(-1, 3).astype(np.float64)
            keep = rng.random(b * n_loci) >= missing
            tr = np.repeat(np.arange(s0, s0 + b), n_loci)[keep]
            loc = np.tile(np.arange(n_loci), b)[keep]
            df = pd.DataFrame(
                {
                    "i": np.arange(rows, rows + keep.sum()),
                    "z-nm": c[keep, 2],
                    "x-nm": c[keep, 0],
                    "y-nm": c[keep, 1],
                    "Trace_ID": [f"{t % 1000}_{'129' if t % 2 else 'CAST'}" for t in tr],
                    "chr": "chr3",
                    "start": 34_601_078 + 5000 * loc,
                    "stop": 34_606_078 + 5000 * loc,
                    "FOV_ID": tr // 1000,
                }
            )
            df.to_csv(fh, header=False, index=False)
            rows += int(keep.sum())
            traces += len(np.unique(tr))
    return rows, traces


_CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from pointae.data.io import convert_file, iter_traces
t0 = time.perf_counter()
if {mode!r} == "read":
    n = sum(len(p) for p in iter_traces({path!r}, chunk_size={chunk}))
else:
    n, _ = convert_file({path!r}, {out!r})
print(n, time.perf_counter() - t0)
"""


def _child(code: str) -> tuple[str, float]:
    """Run ``code`` in a child Python; its stdout and peak RSS in MB (from ``wait4``)."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child failed ({proc.returncode})")
    return out.strip(), usage.ru_maxrss / 1024


def bench_long_table(n: int, n_loci: int, chunks: list[int]) -> None:
    print(f"\n[long table streaming] {n:,} traces x {n_loci} loci, Huang-style CSV, 30% absent rows")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.csv"
        t0 = time.perf_counter()
        rows, n = write_long_table(path, n, n_loci)
        print(
            f"  wrote {rows:,} rows of {n:,} traces (the others had no spot), "
            f"{path.stat().st_size / 1e6:,.0f} MB in {time.perf_counter() - t0:.1f} s"
        )
        for chunk in chunks:
            code = _CHILD.format(root=str(ROOT), mode="read", path=str(path), chunk=chunk, out="")
            out, rss = _child(code)
            k, secs = out.split()
            assert int(k) == n, (k, n)
            print(
                f"  iter_traces chunk_size={chunk:>7,}: {float(secs):7.1f} s "
                f"({n / float(secs):9,.0f} traces/s), peak RSS {rss:7,.0f} MB, load1={os.getloadavg()[0]:.2f}"
            )
        h5 = Path(tmp) / "long.h5"
        out, rss = _child(_CHILD.format(root=str(ROOT), mode="convert", path=str(path), chunk=0, out=str(h5)))
        k, secs = out.split()
        assert int(k) == n
        print(
            f"  convert to HDF5 (chunks of 65,536): {float(secs):7.1f} s, peak RSS {rss:7,.0f} MB, "
            f"{h5.stat().st_size / 1e6:,.0f} MB, load1={os.getloadavg()[0]:.2f}"
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
    ap.add_argument(
        "--long-table", type=int, default=0, metavar="N", help="traces of the long-table benchmark"
    )
    ap.add_argument("--long-loci", type=int, default=10)
    ap.add_argument("--long-chunks", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--only-long-table", action="store_true", help="run only the long-table benchmark")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))
    print(machine_info())
    if args.only_long_table:
        bench_long_table(args.long_table or 1_000_000, args.long_loci, args.long_chunks)
        print("\n" + machine_info())
        return 0
    bench_real(args.data, args.repeats)
    bench_maps(args.n, args.loci, args.pdist_n, args.chunk)
    if not args.skip_h5:
        bench_h5(args.n, args.loci, min(args.chunk, 16384))
    if args.long_table:
        bench_long_table(args.long_table, args.long_loci, args.long_chunks)
    print("\n" + machine_info())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
