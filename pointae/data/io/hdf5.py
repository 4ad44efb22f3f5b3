"""Native HDF5 format: chunked, compressed, readable in slices without loading everything.

Layout (``format_version`` 1)::

    /                   attrs: format="pointae-traces", format_version, unit, n_traces, n_loci,
                               attrs (JSON), provenance (JSON), meta_columns (JSON),
                               layer_names (JSON)
    /coords             float32 (N, L, 3), chunks (c, L, 3), compressed, NaN = missing
    /meta/<column>      (N,) one dataset per column; text as UTF-8 strings
    /meta_na/<column>   (N,) bool, only for text columns that had missing values
    /loci/chrom|start|end   (L,) when the loci are known
    /layers/<name>      (N, L) chunks (c, L)
    /coords64           float64 (N, L, 3), only when the traces carry values more precise than
                        float32 (``Traces.coords64``: coordinates exactly as read from a text file)

``provenance`` records the source file, pointae version, creation time (UTC), the writer
parameters and the provenance of the traces that were written (their lineage).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from pointae.data.io._common import check_input_path, jsonable
from pointae.data.traces import UNITS, Traces
from pointae.errors import InputError, PointaeError, atomic_path

FORMAT_NAME = "pointae-traces"
FORMAT_VERSION = 1
MAGIC = b"\x89HDF\r\n\x1a\n"


def looks_like(head_bytes: bytes) -> bool:
    """True for the HDF5 signature (at offset 0; user blocks are not supported)."""
    return head_bytes.startswith(MAGIC)


def _h5():
    import h5py

    return h5py


_COMPRESSION = {
    "gzip": {"compression": "gzip", "compression_opts": 4, "shuffle": True},
    "lzf": {"compression": "lzf", "shuffle": True},
    "none": {},
}


class H5TraceWriter:
    """Write a pointae HDF5 file chunk by chunk (a streaming write; atomic on success).

    The first appended :class:`Traces` fixes the locus count, unit, loci, meta columns, layers and
    attrs; later chunks must match. Datasets are resizable, so any number of traces can be
    appended with only one chunk in memory.

    Parameters
    ----------
    path
        Output file; written to a temporary file renamed on a clean exit (removed on error).
    compression
        ``"gzip"`` (level 4, with byte shuffle), ``"lzf"`` (faster) or ``"none"``.
    chunk_traces
        Traces per HDF5 chunk along the first axis.
    parameters
        Recorded in the provenance (e.g. the command that produced the data).

    Examples
    --------
    >>> with H5TraceWriter("sim.h5") as w:  # doctest: +SKIP
    ...     for part in simulate_in_parts():
    ...         w.append(part)
    """

    def __init__(self, path, compression: str = "gzip", chunk_traces: int = 4096, parameters=None):
        if compression not in _COMPRESSION:
            raise PointaeError(f"unknown compression {compression!r} (gzip, lzf or none)")
        if chunk_traces < 1:
            raise PointaeError("chunk_traces must be >= 1")
        self.path = path
        self.compression = compression
        self.chunk_traces = int(chunk_traces)
        self.parameters = dict(parameters or {})
        self.n = 0
        self._f = None
        self._ctx = None
        self._spec = None

    def __enter__(self) -> H5TraceWriter:
        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        self._f = _h5().File(tmp, "w")
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None and self._spec is None:
                raise PointaeError("nothing was written: append at least one Traces")
            if exc_type is None:
                self._f.attrs["n_traces"] = self.n
        except BaseException as e:
            self._f.close()
            self._ctx.__exit__(type(e), e, e.__traceback__)
            raise
        self._f.close()
        return self._ctx.__exit__(exc_type, exc, tb)

    # ------------------------------------------------------------------ first chunk: layout
    def _create(self, t: Traces, chunk_traces: int) -> None:
        from pointae._version import __version__

        f, n_loci = self._f, t.n_loci
        if n_loci == 0:
            raise PointaeError("cannot write traces with no loci to HDF5")
        comp = _COMPRESSION[self.compression]
        c = max(1, chunk_traces)
        provenance = {
            "source": t.attrs.get("source"),
            "pointae_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "parameters": {"compression": self.compression, "chunk_traces": c, **self.parameters},
            "previous": t.attrs.get("provenance"),
        }
        attrs = {k: v for k, v in t.attrs.items() if k != "provenance"}
        str_dt = _h5().string_dtype("utf-8")
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["unit"] = t.unit
        f.attrs["n_traces"] = 0
        f.attrs["n_loci"] = n_loci
        f.attrs["attrs"] = json.dumps(jsonable(attrs), ensure_ascii=False)
        f.attrs["provenance"] = json.dumps(jsonable(provenance), ensure_ascii=False)
        f.attrs["meta_columns"] = json.dumps(list(map(str, t.meta.columns)))
        f.attrs["layer_names"] = json.dumps(list(t.layers))
        f.create_dataset(
            "coords",
            shape=(0, n_loci, 3),
            maxshape=(None, n_loci, 3),
            dtype=np.float32,
            chunks=(c, n_loci, 3),
            **comp,
        )
        if t.coords64 is not None:
            f.create_dataset(
                "coords64",
                shape=(0, n_loci, 3),
                maxshape=(None, n_loci, 3),
                dtype=np.float64,
                chunks=(c, n_loci, 3),
                **comp,
            )
        g, gna = f.create_group("meta"), f.create_group("meta_na")
        kinds = []
        for i, col in enumerate(t.meta.columns):
            key, s = f"{i:04d}", t.meta[col]
            kind, dtype = _column_kind(s)
            ds = g.create_dataset(
                key,
                shape=(0,),
                maxshape=(None,),
                dtype=str_dt if dtype is None else dtype,
                chunks=(c,),
                **comp,
            )
            ds.attrs["name"] = str(col)
            ds.attrs["kind"] = kind
            if kind in ("str", "category"):
                gna.create_dataset(key, shape=(0,), maxshape=(None,), dtype=bool, chunks=(c,), **comp)
            kinds.append(kind)
        if t.loci is not None:
            gl = f.create_group("loci")
            gl.create_dataset(
                "chrom", data=t.loci["chrom"].astype(str).to_numpy().astype(object), dtype=str_dt
            )
            gl.create_dataset("start", data=t.loci["start"].to_numpy(np.int64))
            gl.create_dataset("end", data=t.loci["end"].to_numpy(np.int64))
        gy = f.create_group("layers")
        for i, (k, v) in enumerate(t.layers.items()):
            v = np.asarray(v)
            text = v.dtype.kind in "USO"
            ds = gy.create_dataset(
                f"{i:04d}",
                shape=(0, n_loci),
                maxshape=(None, n_loci),
                dtype=str_dt if text else v.dtype,
                chunks=(c, n_loci),
                **comp,
            )
            ds.attrs["name"] = k
        self._spec = {
            "n_loci": n_loci,
            "unit": t.unit,
            "meta": list(t.meta.columns),
            "kinds": kinds,
            "layers": list(t.layers),
        }

    def append(self, traces: Traces) -> None:
        """Append a chunk of traces (same loci, unit, meta columns and layers as the first)."""
        if self._f is None:
            raise PointaeError("use H5TraceWriter as a context manager: with H5TraceWriter(path) as w: ...")
        t = traces
        if self._spec is None:
            self._create(t, self.chunk_traces)
        spec = self._spec
        if t.n_loci != spec["n_loci"] or t.unit != spec["unit"]:
            raise PointaeError(
                f"chunk has {t.n_loci} loci in {t.unit!r}, the file {spec['n_loci']} in {spec['unit']!r}"
            )
        if list(t.meta.columns) != spec["meta"] or list(t.layers) != spec["layers"]:
            raise PointaeError("chunk has other meta columns or layers than the first chunk")
        n0, n1 = self.n, self.n + len(t)
        if n1 == n0:
            return
        f = self._f
        f["coords"].resize(n1, axis=0)
        f["coords"][n0:n1] = t.coords
        if "coords64" in f:
            f["coords64"].resize(n1, axis=0)
            f["coords64"][n0:n1] = t.exact_coords()
        for i, (col, kind) in enumerate(zip(spec["meta"], spec["kinds"])):
            key, s = f"{i:04d}", t.meta[col]
            ds = f["meta"][key]
            ds.resize(n1, axis=0)
            if kind in ("str", "category"):
                na = s.isna().to_numpy()
                ds[n0:n1] = s.astype(object).where(~na, "").astype(str).to_numpy().astype(object)
                f["meta_na"][key].resize(n1, axis=0)
                f["meta_na"][key][n0:n1] = na
            else:
                v = s.to_numpy()
                if ds.dtype.kind in "iub" and s.isna().any():
                    raise PointaeError(f"meta column {col!r} has missing values in a later chunk")
                ds[n0:n1] = v
        for i, k in enumerate(spec["layers"]):
            ds = f["layers"][f"{i:04d}"]
            v = np.asarray(t.layers[k])
            ds.resize(n1, axis=0)
            ds[n0:n1] = v.astype(str).astype(object) if ds.dtype.kind == "O" else v
        self.n = n1


def _column_kind(s: pd.Series):
    """(kind, numpy dtype or None for text) used to store one meta column."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return "category", None
    if pd.api.types.is_bool_dtype(s) and not s.isna().any():
        return "bool", np.dtype(bool)
    if pd.api.types.is_numeric_dtype(s):
        if pd.api.types.is_integer_dtype(s) and not s.isna().any():
            return "numeric", np.dtype(np.int64)
        return "numeric", np.dtype(np.float64)
    return "str", None


def write_h5(
    traces: Traces,
    path,
    compression: str = "gzip",
    chunk_traces: int = 4096,
    parameters: dict | None = None,
) -> None:
    """Write traces to HDF5 (atomically); see :class:`H5TraceWriter` to write chunk by chunk.

    Parameters
    ----------
    compression
        ``"gzip"`` (level 4, with byte shuffle), ``"lzf"`` (faster) or ``"none"``.
    chunk_traces
        Traces per chunk along the first axis (capped at the number of traces).
    parameters
        Recorded in the provenance (e.g. the command that produced the data).
    """
    c = min(chunk_traces, max(1, len(traces)))
    with H5TraceWriter(path, compression=compression, chunk_traces=c, parameters=parameters) as w:
        w.append(traces)


def _open(path):
    """Open a pointae HDF5 file and validate its structure before anything is read."""
    h5py = _h5()
    p = check_input_path(path)
    check_global_heaps(p)
    try:
        f = h5py.File(p, "r")
    except Exception as e:  # h5py raises OSError, sometimes RuntimeError/ValueError on damage
        why = "truncated or damaged HDF5 file" if "truncated" in str(e) else "cannot open as HDF5"
        raise InputError(p, f"{why} ({str(e).split('(')[0].strip()})") from None
    try:
        _validate(p, f)
    except InputError:
        f.close()
        raise
    except MemoryError:
        f.close()
        raise
    except Exception as e:  # a damaged header that h5py cannot even describe
        f.close()
        raise InputError(p, f"damaged pointae HDF5 file ({type(e).__name__}: {e})") from None
    return p, f


#: largest HDF5 chunk pointae reads (bytes); a damaged header can declare absurd ones
MAX_CHUNK_BYTES = 256 * 2**20
_FILTERS = {None, "gzip", "lzf"}


_GCOL = b"GCOL\x01\x00\x00\x00"  # global heap collection signature, version 1, reserved bytes


def check_global_heaps(path) -> None:
    """Refuse a file whose global heap collections libhdf5 would loop on or read past.

    Variable-length strings (attributes, text columns) live in global heap collections. libhdf5
    (``H5HG__cache_heap_deserialize``) walks a collection's objects with ``p = begin + need``
    where ``need`` comes from the file: a damaged object whose index and size are 0 makes it loop
    forever on the same bytes, and a size beyond the collection makes later reads run off the
    buffer. Each collection (found by its signature) is walked here first with the same rule and
    bounds checks; one scan of the file, no timeout needed.
    """
    import mmap
    import struct

    p = Path(path)
    with open(p, "rb") as fh:
        size = fh.seek(0, 2)
        if size < len(_GCOL):
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
            off = m.find(_GCOL)
            while off >= 0:
                (csize,) = struct.unpack_from("<Q", m, off + 8) if off + 16 <= size else (0,)
                end = off + csize
                if end > size:
                    raise InputError(p, f"truncated or damaged HDF5 file (global heap at byte {off} runs past the end)")
                if csize < 4096:
                    raise InputError(p, f"damaged HDF5 global heap at byte {off} (collection size {csize})")
                q = off + 16
                while q < end:
                    if q + 16 > end:  # a tail too small for an object header: free space
                        break
                    idx = struct.unpack_from("<H", m, q)[0]
                    (osize,) = struct.unpack_from("<Q", m, q + 8)
                    need = 16 + ((osize + 7) & ~7) if idx > 0 else osize
                    if need < 16 or q + need > end:
                        raise InputError(
                            p, f"damaged HDF5 global heap at byte {q} (object {idx} of {osize} bytes)"
                        )
                    q += need
                off = m.find(_GCOL, off + 1)


def _attr_kind(p, f, name, kind):
    """Check an attribute's stored type and shape before its value is read (no heap access)."""
    h5py = _h5()
    try:
        aid = f.attrs.get_id(name)
        dtype, shape = aid.dtype, aid.shape
    except Exception as e:
        raise InputError(p, f"damaged HDF5 attribute {name!r} ({type(e).__name__})") from None
    ok = h5py.check_string_dtype(dtype) is not None if kind == "text" else dtype.kind in "iu"
    if not ok or shape not in ((), (1,)):
        want = "a text value" if kind == "text" else "an integer"
        raise InputError(p, f"HDF5 attribute {name!r} should be {want}, got {dtype} of shape {shape}")


def _text_attr(p, f, name, default=None):
    if name not in f.attrs:
        if default is not None:
            return default
        raise InputError(p, f"HDF5 attribute {name!r} is missing")
    _attr_kind(p, f, name, "text")
    v = f.attrs[name]
    if isinstance(v, np.ndarray):
        v = v.reshape(-1)[0]
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if not isinstance(v, str):
        raise InputError(p, f"HDF5 attribute {name!r} should be text, got {type(v).__name__}")
    return v


def _json_attr(p, f, name, kind, default):
    text = _text_attr(p, f, name, default=json.dumps(default))
    try:
        v = json.loads(text)
    except json.JSONDecodeError:
        raise InputError(p, f"HDF5 attribute {name!r} is not valid JSON") from None
    if not isinstance(v, kind):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise InputError(p, f"HDF5 attribute {name!r} should be a JSON {want}, got {type(v).__name__}")
    return v


def _dataset(p, f, name, ndim, shape=None):
    h5py = _h5()
    if name not in f:
        raise InputError(p, f"HDF5 dataset {name!r} is missing")
    ds = f[name]
    if not isinstance(ds, h5py.Dataset):
        raise InputError(p, f"{name!r} is a {type(ds).__name__.lower()}, expected an HDF5 dataset")
    if ds.ndim != ndim or (shape is not None and any(w is not None and w != s for w, s in zip(shape, ds.shape))):
        want = "x".join("?" if w is None else str(w) for w in shape) if shape else f"{ndim}-D"
        raise InputError(p, f"HDF5 dataset {name!r} has shape {ds.shape}, expected {want}")
    if ds.chunks is not None:
        nbytes = int(np.prod(ds.chunks, dtype=np.float64)) * ds.dtype.itemsize
        if nbytes > MAX_CHUNK_BYTES:
            raise InputError(p, f"HDF5 dataset {name!r} declares chunks of {nbytes:,} bytes (damaged header?)")
    if ds.compression not in _FILTERS:
        raise InputError(p, f"HDF5 dataset {name!r} uses an unsupported filter {ds.compression!r}")
    _check_stored(p, ds, name)
    return ds


def _check_stored(p, ds, name) -> None:
    """The data a dataset declares must be stored: a header that claims 10^9 traces over a few
    stored chunks (unwritten chunks read as fill values) is refused before any work is done."""
    size = int(np.prod(ds.shape, dtype=np.float64))
    if size == 0:
        return
    if ds.chunks is None:
        stored = ds.id.get_storage_size()
        if stored < size * ds.dtype.itemsize and ds.dtype.kind != "O":
            raise InputError(p, f"HDF5 dataset {name!r} declares shape {ds.shape} but stores {stored:,} bytes")
        return
    need = int(np.prod([-(-s // c) for s, c in zip(ds.shape, ds.chunks)], dtype=np.float64))
    have = ds.id.get_num_chunks()
    if have < need:
        raise InputError(
            p, f"HDF5 dataset {name!r} declares shape {ds.shape} but stores {have:,} of its {need:,} chunks"
        )


def _validate(p, f) -> None:
    """Check the layout (module docstring) before reading: types, ranks, shapes, chunks, filters.

    Every problem is one :class:`InputError`; nothing large is read here.
    """
    if _text_attr(p, f, "format", default="-") != FORMAT_NAME:
        raise InputError(p, "HDF5 file is not a pointae traces file (no format='pointae-traces' attribute)")
    if "format_version" not in f.attrs:
        raise InputError(p, "HDF5 attribute 'format_version' is missing")
    _attr_kind(p, f, "format_version", "int")
    version = f.attrs.get("format_version", None)
    if isinstance(version, np.ndarray) and version.size == 1:
        version = version.reshape(()).item()
    if not isinstance(version, (int, np.integer)) or isinstance(version, (bool, np.bool_)):
        raise InputError(p, f"HDF5 attribute 'format_version' should be an integer, got {version!r}")
    if int(version) > FORMAT_VERSION:
        raise InputError(p, f"written by a newer pointae (format version {int(version)})")
    if int(version) < 1:
        raise InputError(p, f"invalid format version {int(version)}")
    coords = _dataset(p, f, "coords", 3, (None, None, 3))
    if coords.dtype.kind != "f":
        raise InputError(p, f"HDF5 dataset 'coords' should hold floats, got {coords.dtype}")
    n, n_loci = (int(s) for s in coords.shape[:2])
    if n_loci == 0:
        raise InputError(p, "the file has traces with no loci")
    if n == 0:
        raise InputError(p, "the file holds no traces")
    for name, actual in (("n_traces", n), ("n_loci", n_loci)):
        if name in f.attrs:
            _attr_kind(p, f, name, "int")
        declared = f.attrs.get(name, actual)
        if isinstance(declared, np.ndarray) and declared.size == 1:
            declared = declared.reshape(()).item()
        if not isinstance(declared, (int, np.integer)) or int(declared) != actual:
            shown = int(declared) if isinstance(declared, (int, np.integer)) else repr(declared)
            raise InputError(p, f"HDF5 attribute {name!r} is {shown} but 'coords' has {actual}")
    unit = _text_attr(p, f, "unit")
    if unit not in UNITS:
        raise InputError(p, f"unknown unit {unit!r}; expected one of {', '.join(UNITS)}")
    _json_attr(p, f, "attrs", dict, {})
    _json_attr(p, f, "provenance", (dict, type(None)), None)
    cols = _json_attr(p, f, "meta_columns", list, [])
    if not all(isinstance(c, str) for c in cols):
        raise InputError(p, "HDF5 attribute 'meta_columns' should be a list of names")
    for i, _col in enumerate(cols):
        ds = _dataset(p, f, f"meta/{i:04d}", 1, (n,))
        kind = _text_attr(p, ds, "kind", default="numeric")
        _check_dtype(p, ds, text=kind in ("str", "category"))
        if kind in ("str", "category") and f"meta_na/{i:04d}" in f:
            _check_dtype(p, _dataset(p, f, f"meta_na/{i:04d}", 1, (n,)), text=False)
    if "loci" in f:
        for k in ("chrom", "start", "end"):
            _check_dtype(p, _dataset(p, f, f"loci/{k}", 1, (n_loci,)), text=k == "chrom")
    if "layers" not in f:
        raise InputError(p, "HDF5 group 'layers' is missing")
    for key in f["layers"]:
        ds = _dataset(p, f, f"layers/{key}", 2, (n, n_loci))
        _text_attr(p, ds, "name")
        _check_dtype(p, ds, text=None)


def _check_dtype(p, ds, text: bool | None) -> None:
    """Text datasets must be strings, others numbers/bools (``text=None``: either)."""
    is_text = _h5().check_string_dtype(ds.dtype) is not None
    is_num = ds.dtype.kind in "iufb"
    if (text is True and not is_text) or (text is False and not is_num) or not (is_text or is_num):
        raise InputError(p, f"HDF5 dataset {ds.name!r} has an unexpected type {ds.dtype}")


def h5_length(path) -> int:
    """Number of traces in a pointae HDF5 file (reads only the header)."""
    p, f = _open(path)
    with f:
        return int(f["coords"].shape[0])


def read_h5(path, start: int | None = None, stop: int | None = None) -> Traces:
    """Read traces ``[start, stop)`` (all by default) without loading the rest of the file.

    Returns
    -------
    Traces
        ``coords (stop-start, L, 3)`` with meta, loci, layers, attrs; ``attrs["provenance"]``
        holds the file's provenance.
    """
    p, f = _open(path)
    with f:
        return _read_checked(p, f, start, stop)


def _read_checked(p, f, start, stop) -> Traces:
    """:func:`_read_slice` with every failure reported as one located :class:`InputError`."""
    try:
        return _read_slice(p, f, start, stop)
    except InputError:
        raise
    except PointaeError as e:
        raise InputError(p, str(e)) from None
    except MemoryError:
        raise
    except Exception as e:  # h5py/libhdf5 on a damaged file: OSError, ValueError, TypeError, ...
        raise InputError(p, f"damaged pointae HDF5 file ({type(e).__name__}: {e})") from None


def _read_slice(p, f, start, stop) -> Traces:
    from pointae.data.validate import check_memory

    n, n_loci = (int(s) for s in f["coords"].shape[:2])
    sl = slice(*slice(start, stop).indices(n))
    k = len(range(*sl.indices(n)))
    check_memory(
        k * n_loci * 3 * 4 * 2,  # the coordinates, read and validated
        f"{k:,} traces x {n_loci:,} loci",
        f"{p}: ",
        "read it in parts (pointae.iter_traces / start=, stop=)",
    )
    coords = f["coords"][sl]
    cols = json.loads(f.attrs["meta_columns"])
    meta = {}
    for i, name in enumerate(cols):
        ds = f["meta"][f"{i:04d}"]
        kind = ds.attrs.get("kind", "numeric")
        if kind in ("str", "category"):
            vals = pd.Series(ds.asstr()[sl], dtype=object)
            if f"{i:04d}" in f["meta_na"]:
                na = f["meta_na"][f"{i:04d}"][sl]
                vals = vals.where(~na, None)
            meta[name] = vals.astype("category") if kind == "category" else vals
        else:
            meta[name] = ds[sl]
    meta = pd.DataFrame(meta, columns=cols) if cols else None
    loci = None
    if "loci" in f:
        gl = f["loci"]
        loci = pd.DataFrame({"chrom": gl["chrom"].asstr()[:], "start": gl["start"][:], "end": gl["end"][:]})
    layers = {}
    for key in sorted(f["layers"]):
        ds = f["layers"][key]
        name = ds.attrs["name"]
        layers[name] = ds.asstr()[sl].astype(str) if ds.dtype.kind == "O" else ds[sl]
    coords64 = f["coords64"][sl] if "coords64" in f else None
    attrs = json.loads(f.attrs["attrs"])
    attrs["provenance"] = json.loads(f.attrs["provenance"])
    attrs["source"] = str(p)
    attrs["format"] = "h5"
    return Traces(
        coords, unit=str(f.attrs["unit"]), meta=meta, loci=loci, attrs=attrs, layers=layers, coords64=coords64
    )


def iter_h5(path, chunk_size: int = 65536) -> Iterator[Traces]:
    """Yield consecutive :class:`Traces` of at most ``chunk_size`` traces, reading lazily."""
    if chunk_size < 1:
        raise PointaeError("chunk_size must be >= 1")
    p, f = _open(path)
    with f:
        n = int(f["coords"].shape[0])
        for s in range(0, n, chunk_size):
            yield _read_checked(p, f, s, min(n, s + chunk_size))


__all__ = ["H5TraceWriter", "read_h5", "write_h5", "iter_h5", "h5_length", "looks_like"]
