"""Mutation fuzz of the HDF5 reader, with a watchdog (a robustness check, not a timed test).

Run ``python benchmarks/fuzz_hdf5.py --seed 0 --n 1000`` from the root of the source tree to test
(the worker imports ``pointae`` from the current directory). A 12-trace file with text meta, loci
and a layer is mutated (bit flips, splices from another HDF5 file, truncation, random bytes); a
worker process reads each mutant with ``read_traces`` and computes its distance maps. Outcomes per mutant:

- ``ok``: read; ``error``: one :class:`~pointae.errors.PointaeError` line;
- ``crash``: any other exception (a traceback for the user);
- ``hang``: no answer within ``--watchdog`` seconds (the worker is killed and restarted);
- ``died``: the worker died (a segfault inside libhdf5/h5py).

Prints the counts, the first few non-ok/error mutants, and the machine and load it ran on.
"""

from __future__ import annotations

import argparse
import collections
import select
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _machine import machine_info  # benchmarks/ is on sys.path

WORKER = """
import sys, traceback, warnings
warnings.simplefilter("ignore")
from pointae.data.io import read_traces
from pointae.errors import PointaeError
for line in sys.stdin:
    try:
        read_traces(line.strip()).distance_maps()
        r = "ok"
    except PointaeError:
        r = "error"
    except BaseException as e:
        r = "crash " + type(e).__name__ + ": " + str(e).replace("\\n", " ")[:160]
    print(r, flush=True)
"""


def mutate(base: bytes, other: bytes, rng) -> bytes:
    """One mutant: bit flips, a splice from ``other``, a truncation or 8 random bytes."""
    b = bytearray(base)
    kind = rng.integers(4)
    if kind == 0:
        for _ in range(rng.integers(1, 9)):
            i = rng.integers(len(b))
            b[i] ^= 1 << int(rng.integers(8))
    elif kind == 1:
        i, j, k = rng.integers(len(b)), rng.integers(len(other)), rng.integers(1, 64)
        b[i : i + k] = other[j : j + k]
    elif kind == 2:
        b = b[: rng.integers(8, len(b))]
    else:
        i = rng.integers(len(b))
        b[i : i + 8] = bytes(rng.integers(0, 256, 8, dtype=np.uint8).tolist())
    return bytes(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=1000, help="number of mutants")
    ap.add_argument("--watchdog", type=float, default=20.0, help="seconds before a mutant counts as a hang")
    args = ap.parse_args()

    import pandas as pd

    from pointae.data.traces import Traces

    rng = np.random.default_rng(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="pointae-fuzz-"))
    c = rng.normal(size=(12, 8, 3)).astype(np.float32) * 100
    c[0, 2] = np.nan
    ids = [f"t{i}" for i in range(12)]
    meta = pd.DataFrame({"trace_id": ids, "label": ["a", "b"] * 6, "x": np.arange(12)})
    start = np.arange(8) * 1000
    loci = pd.DataFrame({"chrom": ["chr1"] * 8, "start": start, "end": start + 999})
    Traces(c, meta=meta, loci=loci, layers={"conf": np.ones((12, 8), np.float32)}).save(tmp / "base.h5")
    Traces(c[:5, :6]).save(tmp / "other.h5", compression="lzf")
    base, other = (tmp / "base.h5").read_bytes(), (tmp / "other.h5").read_bytes()

    def start_worker():
        pipe = subprocess.PIPE
        return subprocess.Popen([sys.executable, "-c", WORKER], stdin=pipe, stdout=pipe, text=True, bufsize=1)

    print(f"{machine_info()}; seed {args.seed}, {args.n} mutants")
    worker, counts, bad = start_worker(), collections.Counter(), []
    for k in range(args.n):
        p = tmp / "mutant.h5"
        p.write_bytes(mutate(base, other, rng))
        worker.stdin.write(f"{p}\n")
        worker.stdin.flush()
        ready, _, _ = select.select([worker.stdout], [], [], args.watchdog)
        if not ready:
            outcome = "hang"
            worker.kill()
            worker.wait()
            worker = start_worker()
        else:
            line = worker.stdout.readline().strip()
            outcome = line or "died"
            if not line:
                worker.wait()
                worker = start_worker()
        kind = outcome.split()[0]
        counts[kind] += 1
        if kind not in ("ok", "error"):
            keep = tmp / f"mutant{k}.h5"
            p.rename(keep)
            bad.append(f"{kind}: {keep} {outcome[len(kind) :].strip()}")
    worker.stdin.close()
    worker.wait()
    print({k: counts[k] for k in ("ok", "error", "crash", "hang", "died")})
    for line in bad[:20]:
        print(line)
    print(f"mutants that were not ok/error are kept in {tmp}" if bad else f"(scratch folder {tmp})")


if __name__ == "__main__":
    main()
