"""Throughput and peak memory of ``pointae impute`` at experiment scale, next to linear interpolation.

For each size ``N`` an input file of ``N`` traces is made by repeating the traces of the IMR90
file (65 loci, ~6% missing, trace ids made unique) and written as pointae HDF5 (or, with
``--csv``, as a Bintu CSV like the issue's 25,540-trace test). Then, each in a fresh process:

- ``pointae``: :func:`pointae.impute.stream.impute_file` (what ``pointae impute IN --out OUT``
  runs: streamed in chunks, shipped model, default settings), output in the input's format;
- ``linear``: the same streamed read/write path with linear interpolation instead of the model.

Reported per run: wall seconds (the whole command: read, impute, write), traces/s, the number of
impute worker processes (``--workers``, default auto = the CPUs available), peak RSS of all
processes together (main, forkserver and workers, sampled every 0.1 s with psutil; it counts the
pages they share, e.g. torch's libraries, once per process) and their summed PSS (shared pages
split between the processes: the memory they really take), the main process's ``ru_maxrss``, CPU
seconds of all processes, and the machine and load average it ran under. One run each.
``--max-minutes`` skips a size whose estimated time (from the previous size's rate) exceeds it.

Example::

    python benchmarks/bench_impute_throughput.py --sizes 10000 100000 1000000 --json runs/throughput.json
    python benchmarks/bench_impute_throughput.py --sizes 25540 --csv
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine_info  # benchmarks/ is on sys.path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "IMR90_chr21-18-20Mb.csv"

_RUN = r"""
import json, os, resource, sys, threading, time
import torch
torch.set_num_threads({threads})

peak = [0, 0]  # RSS sum, PSS sum (shared pages split between the processes sharing them)
cpu_seen = {{}}  # pid -> last CPU seconds (workers are children of the forkserver: not in RUSAGE_CHILDREN)
def total_rss():  # this process and all its descendants (forkserver, impute workers) together
    import psutil
    me = psutil.Process()
    rss = pss = 0
    for p in [me] + me.children(recursive=True):
        try:
            with p.oneshot():
                m = p.memory_full_info()
                rss, pss = rss + m.rss, pss + getattr(m, "pss", m.rss)
                c = p.cpu_times()
                cpu_seen[p.pid] = c.user + c.system
        except psutil.Error:
            pass
    return rss, pss
def sample(stop):
    while not stop.wait(0.1):
        peak[:] = [max(a, b) for a, b in zip(peak, total_rss())]
stop = threading.Event()
try:
    import psutil
    threading.Thread(target=sample, args=(stop,), daemon=True).start()
except ImportError:
    pass

def main():
    t0 = time.time()
    method, src, out = sys.argv[1:4]
    workers = 1
    if method == "pointae":
        from pointae.impute.stream import impute_file
        info = impute_file(src, out, chunk_size={chunk}, precision="{precision}", workers="{workers}")
        n, workers = info["n_traces"], info["workers"]
    else:
        from pointae.baselines import interpolate_missing
        from pointae.data.io import iter_traces, write_traces
        from pointae.data.io.hdf5 import H5TraceWriter
        n = 0
        parts = iter_traces(src, chunk_size={chunk})
        if out.endswith(".h5"):
            with H5TraceWriter(out) as w:
                for p in parts:
                    w.append(p._replace(coords=interpolate_missing(p.coords)))
                    n += len(p)
        else:  # text: whole-file write (the format writers have no append mode)
            from pointae.data.traces import Traces
            done = [p._replace(coords=interpolate_missing(p.coords)) for p in parts]
            t = Traces.concat(done, unique_ids=False)
            write_traces(t, out)
            n = len(t)
    secs = time.time() - t0
    stop.set()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    me = os.times()
    cpu_seen[os.getpid()] = me.user + me.system
    print(json.dumps({{
        "n": n, "seconds": secs, "traces_per_s": n / secs, "workers": workers,
        "peak_rss_mb": rss,
        # all processes together, sampled every 0.1 s with psutil (None without psutil)
        "peak_total_rss_mb": peak[0] / 2**20 if peak[0] else None,
        "peak_total_pss_mb": peak[1] / 2**20 if peak[1] else None,
        "cpu_seconds": sum(cpu_seen.values()),
    }}))

if __name__ == "__main__":
    main()
"""


def make_input(n: int, path: Path, csv: bool) -> None:
    import numpy as np

    from pointae.data.io import read_traces, write_traces
    from pointae.data.io.hdf5 import H5TraceWriter
    from pointae.data.traces import Traces

    base = read_traces(DATA)
    reps = -(-n // len(base))
    if csv:
        parts = []
        for r in range(reps):
            p = base._replace(meta=base.meta.assign(trace_id=base.meta["trace_id"].astype(int) + r * 10**5))
            parts.append(p)
        t = Traces.concat(parts, unique_ids=False)[:n]
        write_traces(t, path, format="bintu", description=base.attrs.get("description"))
        return
    with H5TraceWriter(path, compression="lzf") as w:
        done = 0
        for _ in range(reps):
            take = min(len(base), n - done)
            if take <= 0:
                break
            p = base[:take]
            ids = (np.arange(take) + done).astype(str)
            w.append(p._replace(meta=p.meta.assign(trace_id=ids)))
            done += take


def run(method: str, src: Path, out: Path, threads: int, chunk: int, precision: str, workers: str) -> dict:
    code = _RUN.format(threads=threads, chunk=chunk, precision=precision, workers=workers)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    load0 = os.getloadavg()
    p = subprocess.run(
        [sys.executable, "-c", code, method, str(src), str(out)], capture_output=True, text=True, env=env
    )
    if p.returncode != 0:
        raise SystemExit(f"{method} failed:\n{p.stderr[-3000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res.update(method=method, load_before=load0, load_after=os.getloadavg())
    return res


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--csv", action="store_true", help="Bintu CSV input/output instead of HDF5.")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process.")
    ap.add_argument(
        "--workers",
        default="auto",
        help="pointae impute --workers: processes imputing chunks (auto: the CPUs available).",
    )
    ap.add_argument("--chunk", type=int, default=4096)
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    ap.add_argument("--max-minutes", type=float, default=30.0, help="Skip a size estimated to take longer.")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    info = {"machine": machine_info(args.threads), "threads": args.threads, "chunk": args.chunk}
    info["precision"] = args.precision
    info["workers"] = args.workers
    print(f"machine: {info['machine']}; pointae workers={args.workers} (auto = {_cpus()} CPUs available)")
    rows, rate = [], None
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for n in args.sizes:
            if rate is not None and n / rate / 60 > args.max_minutes:
                est = n / rate / 60
                print(
                    f"N={n:,}: skipped (estimated {est:.0f} min at {rate:.0f} traces/s > {args.max_minutes})"
                )
                rows.append({"n": n, "skipped": f"estimated {n / rate / 60:.0f} min"})
                continue
            suffix = ".bintu.csv" if args.csv else ".h5"
            src = Path(tmp) / f"in_{n}{suffix}"
            t0 = time.time()
            make_input(n, src, args.csv)
            mb = src.stat().st_size / 2**20
            print(f"N={n:,}: input {src.name} ({mb:.0f} MB) made in {time.time() - t0:.0f} s")
            for method in ("linear", "pointae"):
                out = Path(tmp) / f"out_{method}_{n}{suffix}"
                r = run(method, src, out, args.threads, args.chunk, args.precision, args.workers)
                r["n_requested"], r["input_mb"] = n, mb
                rows.append(r)
                print(
                    f"  {method:<8} {r['seconds']:8.1f} s  {r['traces_per_s']:9,.0f} traces/s  "
                    f"workers {r['workers']}  peak RSS {r['peak_total_rss_mb'] or float('nan'):7,.0f} MB all "
                    f"processes (PSS {r['peak_total_pss_mb'] or float('nan'):,.0f}, "
                    f"main {r['peak_rss_mb']:,.0f})  CPU {r['cpu_seconds']:,.0f} s  "
                    f"load {r['load_before'][0]:.1f} -> "
                    f"{r['load_after'][0]:.1f}",
                    flush=True,
                )
                out.unlink(missing_ok=True)
                if method == "pointae":
                    rate = r["traces_per_s"]
            src.unlink()
    info["runs"] = rows
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
