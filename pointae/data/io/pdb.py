"""PDB export of chromatin traces (open them in ChimeraX, PyMOL, VMD) and a reader for round trips.

Layout of a file written by :func:`write_pdb`:

- one ``MODEL`` per trace (or one file per trace with ``per_trace=True``), one chain ``A``;
- one pseudo-atom ``CA`` (element C) per *observed or filled* locus; missing loci are omitted;
- residue number = 1-based locus index (so locus ``i`` of every model has residue ``i + 1`` and
  atom serial ``i + 1``); residue name tells the spot's status: ``OBS`` observed, ``IMP`` imputed,
  ``COR`` corrected (from ``traces.layers["pointae_status"]``; all ``OBS`` when absent), so
  ``select resn IMP`` works in PyMOL and ``:IMP`` in ChimeraX;
- occupancy 1.00 for observed spots, 0.50 for corrected, 0.00 for imputed ones;
- B-factor: 100 x ``layers["pointae_confidence"]`` when present (observed spots without a
  confidence get 100), otherwise the status code (observed 0, corrected 50, imputed 100); colour
  by B-factor to see them;
- ``CONECT`` records join consecutive loci ``i, i+1`` (not across missing loci, so gaps show);
- coordinates are centred per trace and multiplied by ``scale`` to fit PDB's fixed ``%8.3f``
  columns: by default 1 PDB unit ("angstrom") = 10 nm (nm x 0.1, micron x 100, bead x 1).
  ``REMARK 900`` lines record the scale, the unit, the loci (chrom, start, end) and each trace's
  id and centre, which :func:`read_pdb` uses to restore the original traces.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from pointae.data.traces import Traces
from pointae.errors import InputError, PointaeError, atomic_path
from pointae.outputs import check_outputs, trace_file_names

__all__ = ["write_pdb", "read_pdb", "export_pdb", "DEFAULT_SCALE", "pdb_lines"]

DEFAULT_SCALE = {"nm": 0.1, "micron": 100.0, "bead": 1.0}
STATUS_RESNAME = {"observed": "OBS", "imputed": "IMP", "corrected": "COR"}
RESNAME_STATUS = {v: k for k, v in STATUS_RESNAME.items()}
STATUS_OCCUPANCY = {"observed": 1.0, "imputed": 0.0, "corrected": 0.5}
STATUS_BFACTOR = {"observed": 0.0, "imputed": 100.0, "corrected": 50.0}
_MAX_XYZ, _MIN_XYZ = 9999.999, -999.999


def _status(traces: Traces) -> np.ndarray:
    """``(N, L)`` status strings; ``observed`` where no status layer exists."""
    st = traces.layers.get("pointae_status")
    if st is None:
        return np.full((len(traces), traces.n_loci), "observed", dtype=object)
    st = np.asarray(st).astype(str)
    bad = set(np.unique(st)) - set(STATUS_RESNAME) - {"missing", ""}
    if bad:
        raise PointaeError(f"layer pointae_status has unknown value(s) {sorted(bad)}")
    return st


def _bfactors(traces: Traces, status: np.ndarray, bfactor: str) -> tuple[np.ndarray, str]:
    conf = traces.layers.get("pointae_confidence")
    if bfactor == "auto":
        bfactor = "confidence" if conf is not None else "status"
    if bfactor == "status":
        b = np.vectorize(lambda s: STATUS_BFACTOR.get(s, 0.0), otypes=[float])(status)
    elif bfactor == "confidence":
        if conf is None:
            raise PointaeError("B-factor 'confidence' needs a pointae_confidence layer")
        b = 100.0 * np.asarray(conf, dtype=np.float64)
        b = np.where(np.isfinite(b), b, 100.0)  # observed spots: full confidence
    elif bfactor in traces.layers:
        b = np.nan_to_num(np.asarray(traces.layers[bfactor], dtype=np.float64))
    else:
        raise PointaeError(f"unknown B-factor source {bfactor!r}: use auto, status, confidence or a layer")
    return np.clip(b, -99.99, 999.99), bfactor


def pdb_lines(
    traces: Traces,
    scale: float | None = None,
    center: bool = True,
    bfactor: str = "auto",
    source: str | None = None,
) -> list[str]:
    """The PDB records (without newlines) for all traces; see the module docstring.

    Parameters
    ----------
    traces
        ``N`` traces of ``L`` loci (``L`` <= 9999).
    scale
        PDB units per data unit; default :data:`DEFAULT_SCALE` for the traces' unit.
    center
        Subtract each trace's centroid (over present loci) before scaling.
    bfactor
        ``"auto"``, ``"status"``, ``"confidence"`` or the name of a numeric layer.
    source
        Free text for a REMARK (e.g. the input file).
    """
    n, n_loci = len(traces), traces.n_loci
    if n_loci > 9999:
        raise PointaeError(f"PDB residue numbers have 4 digits: cannot write {n_loci} loci")
    if scale is None:
        scale = DEFAULT_SCALE[traces.unit]
    if not np.isfinite(scale) or scale <= 0:
        raise PointaeError(f"PDB scale must be positive, got {scale}")
    status = _status(traces)
    bf, bsource = _bfactors(traces, status, bfactor)
    coords = traces.coords.astype(np.float64)
    present = traces.mask
    with np.errstate(invalid="ignore"):
        centre = np.nanmean(coords, axis=1) if center else np.zeros((n, 3))
    centre = np.nan_to_num(centre)
    xyz = (coords - centre[:, None, :]) * scale
    if present.any():
        lo, hi = np.nanmin(xyz[present]), np.nanmax(xyz[present])
        if lo < _MIN_XYZ or hi > _MAX_XYZ:
            worst = np.argmax(np.nanmax(np.abs(np.where(present[..., None], xyz, 0)), axis=(1, 2)))
            raise PointaeError(
                f"trace {traces.trace_ids[worst]}: coordinates span {lo:.1f}..{hi:.1f} after scaling by "
                f"{scale:g}, beyond PDB's fixed columns ({_MIN_XYZ}..{_MAX_XYZ}); pass a smaller scale"
            )
    from pointae._version import __version__

    out = [
        f"HEADER    CHROMATIN TRACES (POINTAE {__version__})".ljust(80)[:80],
        "REMARK 900 POINTAE PSEUDO-ATOM CA PER LOCUS, RESSEQ = LOCUS INDEX + 1",
        f"REMARK 900 POINTAE SCALE {scale:.9g} UNIT {traces.unit} PER-PDB-UNIT {1 / scale:.9g}",
        f"REMARK 900 POINTAE LOCI {n_loci} TRACES {n} BFACTOR {bsource}",
    ]
    if source:
        out.append(f"REMARK 900 POINTAE SOURCE {source}"[:80])
    if traces.loci is not None:
        lc = traces.loci
        region = f"{lc['chrom'].iloc[0]}:{int(lc['start'].iloc[0])}-{int(lc['end'].iloc[-1])}"
        out.append(f"REMARK 900 POINTAE REGION {region}")
        for i, (c, b0, b1) in enumerate(zip(lc["chrom"], lc["start"], lc["end"])):
            out.append(f"REMARK 900 POINTAE LOCUS {i + 1} {c} {int(b0)} {int(b1)}")
    for k in range(n):
        cx, cy, cz = centre[k]
        out.append(
            f"REMARK 900 POINTAE MODEL {k + 1} CENTRE {cx:.9g} {cy:.9g} {cz:.9g} TRACE {traces.trace_ids[k]}"
        )
    multi = n > 1
    bonds: set[int] = set()
    for k in range(n):
        if multi:
            out.append(f"MODEL     {k + 1:4d}")
        for i in np.flatnonzero(present[k]):
            s = str(status[k, i]) if status[k, i] in STATUS_RESNAME else "observed"
            x, y, z = xyz[k, i]
            out.append(
                f"ATOM  {i + 1:5d}  CA  {STATUS_RESNAME[s]} A{i + 1:4d}    "
                f"{x:8.3f}{y:8.3f}{z:8.3f}{STATUS_OCCUPANCY[s]:6.2f}{bf[k, i]:6.2f}          "
                " C  "
            )
        last = np.flatnonzero(present[k])
        if last.size:
            i = last[-1]
            rn = STATUS_RESNAME.get(str(status[k, i]), "OBS")
            out.append(f"TER   {i + 2:5d}      {rn} A{i + 1:4d}".ljust(80))
        bonds.update(np.flatnonzero(present[k, :-1] & present[k, 1:]).tolist())
        if multi:
            out.append("ENDMDL")
    for i in sorted(bonds):
        out.append(f"CONECT{i + 1:5d}{i + 2:5d}")
    out.append("END")
    return out


def write_pdb(
    traces: Traces,
    path,
    per_trace: bool = False,
    scale: float | None = None,
    center: bool = True,
    bfactor: str = "auto",
    source: str | None = None,
    overwrite: bool = True,
    inputs: tuple = (),
) -> list[Path]:
    """Write traces as PDB: one ``MODEL`` per trace, or one file per trace.

    Parameters
    ----------
    traces
        The traces (``coords`` ``(N, L, 3)``; ``layers`` ``pointae_status`` /
        ``pointae_confidence`` are used when present).
    path
        Output file. With ``per_trace`` the files are ``<stem>_<trace_id>.pdb`` beside ``path``
        (or inside ``path`` when it is an existing directory).
    per_trace
        One file per trace instead of one multi-model file. Trace ids are percent-escaped into
        distinct names (:func:`pointae.outputs.trace_file_names`); every name is checked before
        the first file is written.
    overwrite, inputs
        Replace existing files; files that must not be written (see
        :func:`pointae.outputs.check_outputs`).
    scale, center, bfactor, source
        See :func:`pdb_lines`.

    Returns
    -------
    list of Path
        The files written (atomically).
    """
    if len(traces) == 0:
        raise PointaeError("no traces to write")
    path = Path(path)
    jobs: list[tuple[Path, Traces]] = []
    if per_trace:
        folder, stem = (path, "trace") if path.is_dir() else (path.parent, path.stem)
        names = trace_file_names(stem, traces.trace_ids, ".pdb")
        jobs = [(folder / name, traces[k]) for k, name in enumerate(names)]
    else:
        jobs.append((path, traces))
    check_outputs([p for p, _ in jobs], inputs=inputs, overwrite=overwrite)
    written = []
    for p, t in jobs:
        text = "\n".join(pdb_lines(t, scale=scale, center=center, bfactor=bfactor, source=source)) + "\n"
        with atomic_path(p) as tmp:
            tmp.write_text(text)
        written.append(p)
    return written


_REMARK = re.compile(r"^REMARK 900 POINTAE (\w+) ?(.*)$")


def read_pdb(path) -> Traces:
    """Read a PDB file (pointae's or any file with one atom per residue) into :class:`Traces`.

    Each ``MODEL`` becomes a trace, residue number ``r`` becomes locus ``r - 1``; with pointae's
    ``REMARK 900`` lines the scale, unit, centres, trace ids and statuses are restored. Other
    files are read in PDB units (``unit="nm"`` assumed, 1 unit = 0.1 nm is *not* applied) with one
    atom per residue (the ``CA`` when there are several).

    Returns
    -------
    Traces
        ``coords`` ``(N, L, 3)``; ``layers["pointae_status"]`` from the residue names and
        ``layers["pdb_bfactor"]``; ``attrs["pdb"]`` holds what the remarks said.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file")
    scale, unit, n_loci, bsource = 1.0, "nm", None, None
    centres: dict[int, np.ndarray] = {}
    loci_rows: dict[int, tuple[str, int, int]] = {}
    ids: dict[int, str] = {}
    models: list[dict[int, tuple]] = []
    current: dict[int, tuple] | None = None
    with open(p, encoding="utf-8", errors="replace") as fh:
        for ln, line in enumerate(fh, 1):
            rec = line[:6]
            if rec.startswith("REMARK"):
                m = _REMARK.match(line.rstrip("\n"))
                if not m:
                    continue
                key, rest = m.group(1), m.group(2).split()
                try:
                    if key == "SCALE":
                        scale, unit = float(rest[0]), rest[2]
                    elif key == "LOCI":
                        n_loci, bsource = int(rest[0]), rest[4] if len(rest) > 4 else None
                    elif key == "LOCUS":
                        loci_rows[int(rest[0])] = (rest[1], int(rest[2]), int(rest[3]))
                    elif key == "MODEL":
                        k = int(rest[0])
                        centres[k] = np.array([float(v) for v in rest[2:5]])
                        ids[k] = m.group(2).split(" TRACE ", 1)[1] if " TRACE " in m.group(2) else str(k)
                except (IndexError, ValueError):
                    raise InputError(p, f"malformed pointae remark {line.strip()!r}", line=ln) from None
            elif rec == "MODEL ":
                current = {}
                models.append(current)
            elif rec in ("ATOM  ", "HETATM"):
                if current is None:
                    current = {}
                    models.append(current)
                try:
                    name = line[12:16].strip()
                    res = int(line[22:26])
                    x, y, z = float(line[30:38]), float(line[38:46]), float(line[46:54])
                    occ = float(line[54:60]) if line[54:60].strip() else 1.0
                    b = float(line[60:66]) if line[60:66].strip() else 0.0
                except ValueError:
                    raise InputError(p, "malformed ATOM record (fixed columns)", line=ln) from None
                if res in current and name != "CA":
                    continue
                current[res] = (x, y, z, line[17:20].strip(), occ, b)
            elif rec == "ENDMDL":
                current = None
    models = [m for m in models if m]
    if not models:
        raise InputError(p, "no ATOM/HETATM records")
    res_min = 1 if n_loci is not None else min(min(m) for m in models)
    if n_loci is None:
        n_loci = max(max(m) for m in models) - res_min + 1
    n = len(models)
    coords = np.full((n, n_loci, 3), np.nan)
    status = np.full((n, n_loci), "missing", dtype=object)
    bfac = np.full((n, n_loci), np.nan)
    for k, m in enumerate(models):
        for res, (x, y, z, rn, _occ, b) in m.items():
            i = res - res_min
            if not 0 <= i < n_loci:
                raise InputError(p, f"residue number {res} outside 1..{n_loci}", trace=ids.get(k + 1))
            coords[k, i] = (x, y, z)
            status[k, i] = RESNAME_STATUS.get(rn, "observed")
            bfac[k, i] = b
        coords[k] = coords[k] / scale + centres.get(k + 1, np.zeros(3))
    meta = pd.DataFrame({"trace_id": [ids.get(k + 1, str(k + 1)) for k in range(n)]})
    layers = {"pointae_status": status.astype(str), "pdb_bfactor": bfac.astype(np.float32)}
    if bsource == "confidence":
        conf = np.where(status == "missing", np.nan, bfac / 100.0)
        layers["pointae_confidence"] = conf.astype(np.float32)
    loci = None
    if len(loci_rows) == n_loci and set(loci_rows) == set(range(1, n_loci + 1)):
        rows = [loci_rows[i + 1] for i in range(n_loci)]
        loci = pd.DataFrame(rows, columns=["chrom", "start", "end"])
    return Traces(
        coords.astype(np.float32),
        unit=unit if unit in DEFAULT_SCALE else "nm",
        meta=meta,
        loci=loci,
        attrs={"source": str(p), "format": "pdb", "pdb": {"scale": scale, "bfactor": bsource}},
        layers=layers,
    )


def export_pdb(
    input,
    output,
    trace: str | None = None,
    per_trace: bool = False,
    scale: float | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """What ``pointae export-pdb`` runs: read any trace file and write PDB.

    Parameters
    ----------
    input
        A trace file (Bintu CSV, FOF-CT, long CSV, HDF5) or an ``.npy`` of coordinates.
    output
        The ``.pdb`` file (with ``per_trace``: the stem of the per-trace files, or a folder).
    trace
        Export only this trace id.
    per_trace, scale
        See :func:`write_pdb`.
    overwrite
        Replace existing PDB files (never the input).

    Returns
    -------
    list of Path
        The files written.
    """
    from pointae.recon import read_structures

    t = read_structures(input)
    if trace is not None:
        ids = [str(i) for i in t.trace_ids]
        if str(trace) not in ids:
            raise PointaeError(f"{input}: trace {trace!r} not found ({len(ids)} traces, first {ids[0]!r})")
        t = t[ids.index(str(trace))]
    return write_pdb(
        t, output, per_trace=per_trace, scale=scale, source=str(input), overwrite=overwrite, inputs=(input,)
    )
