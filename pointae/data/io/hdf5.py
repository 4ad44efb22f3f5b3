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

``provenance`` records the source file, pointae version, creation time (UTC), the writer
parameters and the provenance of the traces that were written (their lineage).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from pointae.data.io._common import check_input_path, jsonable
from pointae.data.traces import Traces
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


def write_h5(
    traces: Traces,
    path,
    compression: str = "gzip",
    chunk_traces: int = 4096,
    parameters: dict | None = None,
) -> None:
    """Write traces to HDF5 (atomically).

    Parameters
    ----------
    compression
        ``"gzip"`` (level 4, with byte shuffle), ``"lzf"`` (faster) or ``"none"``.
    chunk_traces
        Traces per chunk along the first axis.
    parameters
        Recorded in the provenance (e.g. the command that produced the data).
    """
    h5py = _h5()
    if compression not in ("gzip", "lzf", "none"):
        raise PointaeError(f"unknown compression {compression!r} (gzip, lzf or none)")
    t = traces
    n, n_loci = len(t), t.n_loci
    comp: dict = {}
    if compression == "gzip":
        comp = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    elif compression == "lzf":
        comp = {"compression": "lzf", "shuffle": True}
    c = max(1, min(chunk_traces, n))
    from pointae._version import __version__

    provenance = {
        "source": t.attrs.get("source"),
        "pointae_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parameters": {"compression": compression, "chunk_traces": chunk_traces, **(parameters or {})},
        "previous": t.attrs.get("provenance"),
    }
    attrs = {k: v for k, v in t.attrs.items() if k != "provenance"}
    str_dt = h5py.string_dtype("utf-8")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["unit"] = t.unit
            f.attrs["n_traces"] = n
            f.attrs["n_loci"] = n_loci
            f.attrs["attrs"] = json.dumps(jsonable(attrs), ensure_ascii=False)
            f.attrs["provenance"] = json.dumps(jsonable(provenance), ensure_ascii=False)
            f.attrs["meta_columns"] = json.dumps(list(map(str, t.meta.columns)))
            f.attrs["layer_names"] = json.dumps(list(t.layers))
            chunks = (c, n_loci, 3) if n and n_loci else None
            f.create_dataset("coords", data=t.coords, chunks=chunks, **(comp if chunks else {}))
            g = f.create_group("meta")
            gna = f.create_group("meta_na")
            for i, col in enumerate(t.meta.columns):
                _write_column(g, gna, f"{i:04d}", t.meta[col], (c,) if n else None, comp, str_dt)
                g[f"{i:04d}"].attrs["name"] = str(col)
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
                ch = (c, n_loci) if n and n_loci else None
                kw = comp if ch else {}
                if v.dtype.kind in "USO":
                    ds = gy.create_dataset(
                        f"{i:04d}", data=v.astype(str).astype(object), dtype=str_dt, chunks=ch, **kw
                    )
                else:
                    ds = gy.create_dataset(f"{i:04d}", data=v, chunks=ch, **kw)
                ds.attrs["name"] = k


def _write_column(g, gna, key, s: pd.Series, chunks, comp, str_dt) -> None:
    kw = comp if chunks else {}
    if pd.api.types.is_bool_dtype(s) and not s.isna().any():
        g.create_dataset(key, data=s.to_numpy(bool), chunks=chunks, **kw)
        g[key].attrs["kind"] = "bool"
    elif pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype):
        if s.isna().any() and pd.api.types.is_integer_dtype(s):
            s = s.astype(np.float64)
        g.create_dataset(key, data=s.to_numpy(), chunks=chunks, **kw)
        g[key].attrs["kind"] = "numeric"
    else:
        na = s.isna().to_numpy()
        vals = s.astype(object).where(~na, "").astype(str).to_numpy().astype(object)
        g.create_dataset(key, data=vals, dtype=str_dt, chunks=chunks, **kw)
        g[key].attrs["kind"] = "category" if isinstance(s.dtype, pd.CategoricalDtype) else "str"
        if na.any():
            gna.create_dataset(key, data=na, chunks=chunks, **kw)


def _open(path):
    h5py = _h5()
    p = check_input_path(path)
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        why = "truncated or damaged HDF5 file" if "truncated" in str(e) else "cannot open as HDF5"
        raise InputError(p, f"{why} ({str(e).split('(')[0].strip()})") from None
    if f.attrs.get("format") != FORMAT_NAME:
        f.close()
        raise InputError(p, "HDF5 file is not a pointae traces file (no format='pointae-traces' attribute)")
    if int(f.attrs.get("format_version", 0)) > FORMAT_VERSION:
        f.close()
        raise InputError(p, f"written by a newer pointae (format version {f.attrs['format_version']})")
    return p, f


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
        try:
            return _read_slice(p, f, start, stop)
        except (KeyError, OSError, ValueError, json.JSONDecodeError) as e:
            raise InputError(p, f"damaged pointae HDF5 file ({type(e).__name__}: {e})") from None


def _read_slice(p, f, start, stop) -> Traces:
    n = int(f["coords"].shape[0])
    sl = slice(*slice(start, stop).indices(n))
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
    attrs = json.loads(f.attrs["attrs"])
    attrs["provenance"] = json.loads(f.attrs["provenance"])
    attrs["source"] = str(p)
    attrs["format"] = "h5"
    return Traces(coords, unit=str(f.attrs["unit"]), meta=meta, loci=loci, attrs=attrs, layers=layers)


def iter_h5(path, chunk_size: int = 65536) -> Iterator[Traces]:
    """Yield consecutive :class:`Traces` of at most ``chunk_size`` traces, reading lazily."""
    if chunk_size < 1:
        raise PointaeError("chunk_size must be >= 1")
    p, f = _open(path)
    with f:
        n = int(f["coords"].shape[0])
        for s in range(0, n, chunk_size):
            yield _read_slice(p, f, s, min(n, s + chunk_size))


__all__ = ["read_h5", "write_h5", "iter_h5", "h5_length", "looks_like"]
