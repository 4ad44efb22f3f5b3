"""Streaming imputation of a trace file: read in chunks, impute, write chunk by chunk.

:func:`impute_file` is what ``pointae impute`` runs. Memory is bounded by the chunk size, not the
file size: chunks come from :func:`pointae.data.io.iter_traces`; HDF5 output is appended with
:class:`~pointae.data.io.hdf5.H5TraceWriter`; text output (long CSV, Bintu CSV, FOF-CT) is written
chunk by chunk by the format's own writer into a scratch file whose data lines are appended to
the output (the header once; FOF-CT ``Spot_ID`` numbers continue across chunks). Everything is
written to a temporary file renamed on success, so a failure leaves no partial output.

``--samples K`` writes ``K`` joint samples of every trace's imputed spots to a second file
(:func:`write_samples`: HDF5 with a sample axis, or a long CSV with a ``sample`` column).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pointae.data.traces import Traces
from pointae.errors import PointaeError, atomic_path

DEFAULT_CHUNK = 4096
# traces per imputation call: a chunk is imputed in units of this many traces (each unit one task
# for a worker), whatever the number of workers, so the output does not depend on it and a file of
# a few chunks still keeps every worker busy
IMPUTE_UNIT = 1024
_COUNTS = ("n_imputed", "n_corrected", "n_missing_left", "n_traces_too_few_spots")
SCALE_TRACES = 4096  # traces the length unit is calibrated on (the whole input when smaller)


class _TextAppender:
    """Append chunks written by a text writer into one file (header once, numbering continued)."""

    def __init__(self, fh, fmt: str, scratch: Path, kw: dict):
        self.fh, self.fmt, self.scratch, self.kw = fh, fmt, scratch, kw
        self.header: list[str] | None = None
        self.spots = 0

    def append(self, t: Traces) -> None:
        from pointae.data.io import write_traces

        write_traces(t, self.scratch, format=self.fmt, **self.kw)
        lines = self.scratch.read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        n_rows = int(t.mask.sum()) if self.fmt == "fofct" else len(t) * t.n_loci
        n_head = len(lines) - n_rows
        head, body = lines[:n_head], lines[n_head:]
        if self.header is None:
            self.header = head
            self.fh.write("\n".join(head) + "\n")
        elif head != self.header:
            raise PointaeError(
                f"cannot stream {self.fmt} output: chunks got different headers; "
                "write .h5 or pass a larger --chunk-size"
            )
        if self.fmt == "fofct" and self.spots:  # Spot_ID (first column) continues across chunks
            sep = "\t" if str(self.kw.get("sep", ",")) == "\t" else ","
            body = [_renumber(line, sep, self.spots) for line in body]
        self.spots += len(body)
        if body:
            self.fh.write("\n".join(body) + "\n")


def _renumber(line: str, sep: str, offset: int) -> str:
    first, _, rest = line.partition(sep)
    return f"{int(first) + offset}{sep}{rest}"


def impute_file(
    src,
    out,
    model=None,
    denoise: bool = False,
    threshold: float | None = None,
    format: str | None = None,
    to: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    samples: int = 0,
    samples_out=None,
    seed: int = 0,
    precision: str = "auto",
    progress: Callable[[int, int | None], None] | None = None,
    description: Callable[[dict], str] | None = None,
    read_options: dict | None = None,
    workers: int | str = "auto",
    self_calibrate: bool = False,
) -> dict:
    """Impute every trace of ``src`` into ``out`` (same format unless ``to``), chunk by chunk.

    Parameters
    ----------
    src, out
        Input trace file and output file (written atomically).
    model, denoise, threshold, precision
        As for :func:`pointae.impute.api.impute_traces`.
    format, to
        Input format (detected when None) and output format (default: the input's; FOF-CT for
        read-only layouts such as mapped tables).
    read_options
        Reader options (:meth:`pointae.data.io.ReadOptions.kwargs`: ``format``, ``unit``,
        ``columns``, ``pixel_size``, ``duplicates``); its ``format`` wins over ``format``.
    chunk_size
        Traces per chunk (memory is proportional to it).
    samples, samples_out, seed
        Write ``samples`` joint samples per trace to ``samples_out`` (default ``out`` with
        ``.samples.h5`` for HDF5 output, else ``.samples.csv``), drawn with ``seed``.
    progress
        Called as ``progress(traces_done, total_or_None)`` after every chunk.
    description
        Builds the Bintu description line from the run summary (Bintu output only).
    workers
        Processes that impute chunks (:func:`resolve_workers`): ``"auto"`` = the CPUs this process
        may run on, but 1 when the input has a single chunk. Each worker runs one torch thread and
        loads the model once; the main process reads, keeps at most two chunks per worker in
        flight and writes the results in input order, so the output is byte-identical whatever
        the number of workers (the length unit and calibration come from the first traces, in
        the main process).
    self_calibrate
        Rescale the model's stored ``pointae_sd`` calibration on the first traces' own visible
        spots (:func:`pointae.impute.uncertainty.self_calibrate`: 5% of their observed loci hidden,
        six maskings, one factor on ``pointae_sd``), for a file unlike the model's validation data;
        the factor and the coverage before/after go to the provenance.

    Returns
    -------
    dict
        Run summary: counts, traces, loci, scale, unit, seconds, output format, samples file,
        workers used.
    """
    from pointae.data.io import _normalise, detect_format, iter_traces
    from pointae.data.io.hdf5 import H5TraceWriter, h5_length
    from pointae.impute.api import DENOISE_THRESHOLD, _scale, impute_traces, input_calibration, load_imputer

    t0 = time.time()
    from pointae.data.io import READ_FORMATS, WRITE_FORMATS

    kw = dict(read_options or {})
    format = kw.pop("format", None) or format
    if kw.get("columns") is not None and format is None:
        format = "table"
    fmt_in = _normalise(format, READ_FORMATS) or detect_format(src)
    fmt = _normalise(to, WRITE_FORMATS) or _output_format(fmt_in, out, WRITE_FORMATS)
    from pointae.outputs import check_outputs

    check_outputs([out], inputs=[src], overwrite=True)  # never the input, never a folder
    if samples < 0:
        raise PointaeError("--samples must be >= 0")
    resolve_workers(workers)  # a bad value fails before any work
    tune_malloc()
    threshold = DENOISE_THRESHOLD if threshold is None else float(threshold)
    total = h5_length(src) if fmt_in == "h5" else None
    loaded = load_imputer(model)
    chunks = iter_traces(src, chunk_size=chunk_size, format=fmt_in, **kw)
    # the length unit (median neighbour distance), a missing calibration and the samples' chain
    # model come from the first SCALE_TRACES traces, whatever the chunk size
    head: list[Traces] = []
    while sum(map(len, head)) < SCALE_TRACES:
        part = next(chunks, None)
        if part is None:
            break
        head.append(part)
    if not head or sum(map(len, head)) == 0:
        raise PointaeError(f"{src}: no traces to impute")
    if len(head) == 1:  # one chunk read: is it the only one? (then no worker processes)
        more = next(chunks, None)
        if more is not None:
            head.append(more)
    n_workers = resolve_workers(workers, single_chunk=len(head) == 1)
    if total is not None:  # no more workers than units of work
        n_workers = max(1, min(n_workers, -(-total // max(1, min(chunk_size, IMPUTE_UNIT)))))
    lead = head[0] if len(head) == 1 else Traces.concat(head, unique_ids=False)
    lead = lead[:SCALE_TRACES]
    first = head[0]
    scale = _scale(lead)
    try:  # the stored calibration (rescaled with self_calibrate), or one fitted on these traces
        cal = input_calibration(
            loaded,
            lead.coords,
            scale,
            precision=precision,
            self_calibrate=self_calibrate,
            fit_traces=SCALE_TRACES,
        )
    except PointaeError as e:
        raise PointaeError(f"{src}: {e}") from None
    prior = None
    if samples:
        from pointae.baselines import fit_chain_variogram
        from pointae.impute.uncertainty import chain_correlation

        prior = chain_correlation(fit_chain_variogram(lead.coords), lead.n_loci)
        samples_out = Path(samples_out or samples_path(out, fmt))
    del lead
    rng = np.random.default_rng(seed)
    counts = {"n_imputed": 0, "n_corrected": 0, "n_missing_left": 0, "n_traces_too_few_spots": 0}
    n_done = 0
    settings = None

    impute_kw = {
        "denoise": denoise,
        "threshold": threshold,
        "scale": scale,
        "precision": precision,
        "calibration": cal,
    }

    def run_chunk(res: Traces) -> Traces:
        """Bookkeeping of one imputed chunk, in input order (main process)."""
        nonlocal n_done, settings
        info = res.attrs["pointae_impute"]
        for k in counts:
            counts[k] += info[k]
        settings = {k: v for k, v in info.items() if k not in counts and k != "seconds"}
        settings.update(
            input=str(src),
            chunk_size=int(chunk_size),
            scale_method=f"median neighbour distance of the first {SCALE_TRACES} traces",
        )
        res.attrs["pointae_impute"] = settings  # identical in every chunk (counts: see the run summary)
        n_done += len(res)
        if progress is not None:
            progress(n_done, total)
        return res

    def draw(part: Traces, res: Traces) -> np.ndarray:
        from pointae.impute.uncertainty import sample_imputations

        status = res.layers["pointae_status"]
        free = (status == "imputed") | (status == "corrected")
        return sample_imputations(
            part.coords,
            res.coords,
            res.layers["pointae_sd"],
            free,
            samples,
            rng,
            prior,
            cal.mixture,
            cal.anisotropy,
        )

    def parts():
        while head:
            yield head.pop(0)
        yield from chunks

    def results():
        """``(input chunk, imputed chunk)`` pairs in input order, imputed here or by the workers."""
        nonlocal n_workers
        if n_workers > 1 and not _picklable((loaded, impute_kw)):
            n_workers = 1  # a model that cannot be sent to another process is run here
        if n_workers == 1:
            for part in parts():
                units = [impute_traces(u, model=loaded, **impute_kw) for u in _units(part)]
                yield part, run_chunk(_merge(part, units))
            return
        for part, res in _imputed_by_workers(parts(), n_workers, loaded, impute_kw, src):
            yield part, run_chunk(res)

    sw = _SamplesWriter(samples_out, samples) if samples else None
    try:
        if sw is not None:
            sw.__enter__()
        if fmt == "h5":
            with H5TraceWriter(out, parameters={"command": "impute", "input": str(src)}) as w:
                for part, res in results():
                    w.append(res)
                    if sw is not None:
                        sw.append(res, draw(part, res))
        elif fmt == "pdb":  # write-only export of the whole result (PDB files are per-structure anyway)
            from pointae.data.io import write_traces

            done = []
            for part, res in results():
                done.append(res)
                if sw is not None:
                    sw.append(res, draw(part, res))
            write_traces(Traces.concat(done), out, format="pdb")
        else:
            kw = {}
            fd, scratch = tempfile.mkstemp(
                prefix=f".{Path(out).name}.", suffix=".chunk", dir=Path(out).resolve().parent
            )
            os.close(fd)
            scratch = Path(scratch)
            try:
                with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                    app = _TextAppender(fh, fmt, scratch, kw)
                    for part, res in results():
                        if fmt == "bintu":
                            kw["description"] = _bintu_line(res, settings, description)
                        if fmt == "fofct" and str(out).lower().endswith(".tsv"):
                            kw["sep"] = "\t"
                        app.append(res)
                        if sw is not None:
                            sw.append(res, draw(part, res))
            finally:
                scratch.unlink(missing_ok=True)
        if sw is not None:
            sw.__exit__(None, None, None)
    except BaseException as e:
        if sw is not None:
            sw.__exit__(type(e), e, e.__traceback__)
        raise
    secs = time.time() - t0
    return {
        **counts,
        "n_traces": n_done,
        "n_loci": first.n_loci,
        "scale": scale,
        "unit": first.unit,
        "format": fmt,
        "seconds": secs,
        "traces_per_s": n_done / max(secs, 1e-9),
        "samples": str(samples_out) if samples else None,
        "settings": settings,
        "workers": n_workers,
    }


# glibc malloc: blocks up to this size come from the heap and freed memory up to TRIM_BYTES stays
# with the process, instead of every activation tensor (2-9 MB per batch) being a fresh mmap whose
# pages fault in again on every forward pass
MMAP_THRESHOLD_BYTES = 32 * 2**20
TRIM_BYTES = 256 * 2**20


def tune_malloc() -> bool:
    """Make glibc's malloc reuse large freed blocks (no-op elsewhere); True when applied.

    Inference allocates and frees the same few MB-sized tensors for every batch; by default glibc
    serves each with ``mmap`` and returns it with ``munmap``, so their pages fault in again each
    time (a third of the minor page faults of a run, measured). ``mallopt(M_MMAP_THRESHOLD)`` and
    ``mallopt(M_TRIM_THRESHOLD)`` keep them in the heap; peak RSS is unchanged (docs/impute.md).
    Applied to the process running :func:`impute_file` and to its workers.
    """
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(m_trim_threshold, TRIM_BYTES)
    )


def resolve_workers(workers: int | str = "auto", single_chunk: bool = False) -> int:
    """The number of worker processes for ``workers`` (an int >= 1 or ``"auto"``).

    ``"auto"`` is the number of CPUs this process may run on (``os.sched_getaffinity``), but 1
    when the input has a single chunk (a small file does not pay the workers' start-up).
    """
    if isinstance(workers, str) and workers.strip().lower() == "auto":
        if single_chunk:
            return 1
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
            return max(1, os.cpu_count() or 1)
    try:
        n = int(workers)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or str(workers).strip() != str(n):
        raise PointaeError(f"--workers must be a positive integer or 'auto', got {workers!r}")
    return n


# ----------------------------------------------------------------------------- worker processes
# Each worker holds the model (sent once, at start-up) and the imputation settings; the main
# process sends it chunks and receives imputed chunks. forkserver: workers are forked from a
# clean server process that has imported torch once (never from the main process, whose torch
# threads and state are not fork-safe), so starting one costs a fork and unpickling the model.
START_METHOD = "forkserver"
IN_FLIGHT_PER_WORKER = 2
_WORKER: dict = {}


def _picklable(obj) -> bool:
    import pickle

    try:
        pickle.dumps(obj)
    except Exception:  # noqa: BLE001 - any reason it cannot be sent to a worker
        return False
    return True


def _init_worker(loaded, impute_kw: dict) -> None:
    import signal

    import torch

    # Ctrl-C reaches the whole process group: the main process stops the run and shuts the pool
    # down (no traceback from every worker)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    tune_malloc()
    _WORKER["loaded"], _WORKER["kw"] = loaded, impute_kw


def _impute_chunk(part: Traces) -> Traces:
    from pointae.impute.api import impute_traces

    try:
        return impute_traces(part, model=_WORKER["loaded"], **_WORKER["kw"])
    except PointaeError as e:  # a plain PointaeError always pickles back (subclasses may not)
        raise PointaeError(str(e)) from None


def _pool(n_workers: int, loaded, impute_kw: dict):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    methods = mp.get_all_start_methods()
    method = START_METHOD if START_METHOD in methods else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["pointae.impute.api"])  # torch imported once, in the server
    ex = ProcessPoolExecutor(
        n_workers, mp_context=ctx, initializer=_init_worker, initargs=(loaded, impute_kw)
    )
    with _main_not_reimported():
        for _ in range(n_workers):  # start every worker now (one no-op task each)
            ex.submit(int)
    return ex


@contextlib.contextmanager
def _main_not_reimported():
    """Start worker processes without re-running the caller's ``__main__`` script in them.

    spawn/forkserver children normally import the parent's main script (to unpickle objects
    defined there), which runs an unguarded script again and fails; the workers need nothing
    from it (they run :func:`_impute_chunk` on pointae objects), so while they start the main
    module's ``__file__``/``__spec__`` are hidden from :mod:`multiprocessing`.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def _units(part: Traces) -> list[Traces]:
    """``part`` in consecutive units of :data:`IMPUTE_UNIT` traces."""
    n = len(part)
    return [part] if n <= IMPUTE_UNIT else [part[s : s + IMPUTE_UNIT] for s in range(0, n, IMPUTE_UNIT)]


def _merge(part: Traces, results: list[Traces]) -> Traces:
    """The imputed units of ``part`` as one chunk (counts summed; layers in their order)."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    info = dict(first.attrs["pointae_impute"])
    for k in _COUNTS:
        info[k] = sum(int(r.attrs["pointae_impute"][k]) for r in results)
    c64 = None
    if first.coords64 is not None:
        c64 = np.concatenate([r.coords64 for r in results])
    return first._replace(
        coords=np.concatenate([r.coords for r in results]),
        meta=part.meta,
        attrs={**first.attrs, "pointae_impute": info},
        layers={k: np.concatenate([r.layers[k] for r in results]) for k in first.layers},
        coords64=c64,
    )


def _imputed_by_workers(parts, n_workers: int, loaded, impute_kw: dict, src):
    """Impute ``parts`` in ``n_workers`` processes; yield ``(part, result)`` in input order.

    Each chunk goes out as units of :data:`IMPUTE_UNIT` traces (the same units as in one
    process); at most :data:`IN_FLIGHT_PER_WORKER` chunks per worker are in flight ahead of the
    one being written, so memory stays bounded by the chunk size whatever the file size.
    """
    from collections import deque
    from concurrent.futures.process import BrokenProcessPool

    ex = _pool(n_workers, loaded, impute_kw)
    pending: deque = deque()

    def done(part, futs):
        return part, _merge(part, [f.result() for f in futs])

    try:
        for part in parts:
            pending.append((part, [ex.submit(_impute_chunk, u) for u in _units(part)]))
            while len(pending) >= IN_FLIGHT_PER_WORKER * n_workers:
                yield done(*pending.popleft())
        while pending:
            yield done(*pending.popleft())
    except BrokenProcessPool:
        raise PointaeError(
            f"{src}: an impute worker process died (out of memory?); try --workers 1 or a smaller "
            "--chunk-size"
        ) from None
    finally:
        for _, futs in pending:
            for fut in futs:
                fut.cancel()
        ex.shutdown(wait=True, cancel_futures=True)


def _bintu_line(res: Traces, settings: dict, description) -> str:
    base = str(res.attrs.get("description") or "").strip()
    if description is not None:
        return description(settings)
    return (
        f"{base} [pointae {settings['pointae_version']} impute: model {settings['model']}, "
        f"scale {settings['scale']:.4g} {settings['scale_unit']}; imputed and corrected spots are marked "
        "in column pointae_status; see also pointae_confidence, pointae_sd]"
    ).strip()


def samples_path(out, fmt: str | None = None) -> Path:
    """Default samples file beside ``out``: its stem + ``.samples.h5`` (HDF5 output) or ``.samples.csv``."""
    p = Path(out)
    name = p.name
    h5 = fmt == "h5" or name.lower().endswith((".h5", ".hdf5"))
    for suf in (".fofct.csv", ".bintu.csv", ".csv", ".h5", ".hdf5", ".tsv", ".pdb"):
        if name.lower().endswith(suf):
            name = name[: -len(suf)]
            break
    return p.with_name(name + (".samples.h5" if h5 else ".samples.csv"))


class _SamplesWriter:
    """Joint samples, chunk by chunk: HDF5 ``samples`` ``(N, K, L, 3)`` or a long CSV with ``sample``."""

    def __init__(self, path, k: int):
        self.path, self.k = Path(path), int(k)
        self.h5 = self.path.suffix.lower() in (".h5", ".hdf5")
        self._ctx = None
        self._f = None
        self.n = 0

    def __enter__(self):
        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        if self.h5:
            import h5py

            self._f = h5py.File(tmp, "w")
        else:
            self._f = open(tmp, "w", encoding="utf-8", newline="\n")
        return self

    def append(self, res: Traces, draws: np.ndarray) -> None:
        n, k, n_loci, _ = draws.shape
        ids = res.meta["trace_id"].astype(str).to_numpy()
        status = np.asarray(res.layers["pointae_status"]).astype(str)
        if self.h5:
            import h5py

            f = self._f
            if "samples" not in f:
                f.attrs["format"] = "pointae-imputation-samples"
                f.attrs["unit"] = res.unit
                f.attrs["description"] = (
                    "samples[i, k] is joint sample k of trace i (N, K, L, 3); observed spots copied, "
                    "imputed/corrected spots drawn from pointae's calibrated predictive distribution"
                )
                f.create_dataset(
                    "samples",
                    (0, k, n_loci, 3),
                    maxshape=(None, k, n_loci, 3),
                    dtype=np.float32,
                    chunks=(max(1, min(256, n)), k, n_loci, 3),
                    compression="gzip",
                )
                f.create_dataset("trace_id", (0,), maxshape=(None,), dtype=h5py.string_dtype("utf-8"))
                f.create_dataset(
                    "pointae_status", (0, n_loci), maxshape=(None, n_loci), dtype=h5py.string_dtype("utf-8")
                )
            n0, n1 = self.n, self.n + n
            for key, v in (
                ("samples", draws),
                ("trace_id", ids.astype(object)),
                ("pointae_status", status.astype(object)),
            ):
                f[key].resize(n1, axis=0)
                f[key][n0:n1] = v
        else:
            import pandas as pd

            from pointae.data.io._common import format_coords

            flat = draws.reshape(-1, 3)
            df = pd.DataFrame(
                {
                    "trace_id": np.repeat(ids, k * n_loci),
                    "sample": np.tile(np.repeat(np.arange(k), n_loci), n),
                    "locus": np.tile(np.arange(n_loci), n * k),
                    "x": format_coords(flat[:, 0]),
                    "y": format_coords(flat[:, 1]),
                    "z": format_coords(flat[:, 2]),
                    "pointae_status": np.repeat(status[:, None, :], k, axis=1).reshape(-1),
                }
            )
            if self.n == 0:
                self._f.write(
                    f"#unit={res.unit}\n"
                    "#pointae joint imputation samples, one row per (trace, sample, locus)\n"
                )
            df.to_csv(self._f, index=False, header=self.n == 0, na_rep="", lineterminator="\n")
        self.n += n

    def __exit__(self, exc_type, exc, tb):
        if self._f is not None:
            self._f.close()
        return self._ctx.__exit__(exc_type, exc, tb)


def _output_format(fmt_in: str, out, writable) -> str:
    """The output format when none is given: the input's (an unwritable one: FOF-CT), so a text
    file comes back in its own layout; but a binary/text mismatch with the output's suffix follows
    the suffix (an ``.h5`` name gets HDF5, an HDF5 input written to ``.csv`` gets text), so a file
    never holds another format than its name says."""
    from pointae.data.io import format_from_suffix

    same = fmt_in if fmt_in in writable else "fofct"
    try:
        by_suffix = format_from_suffix(out)
    except PointaeError:
        return same
    binary = ("h5", "pdb")
    if by_suffix != same and (by_suffix in binary or same in binary):
        return by_suffix
    return same
