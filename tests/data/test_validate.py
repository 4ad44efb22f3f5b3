"""Numeric policy, HDF5 structure checks and memory checks (issue 11 item 3, issue 12 robustness).

Every bad input gives one line naming the file and exit code 1, or a stated, counted policy.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from pointae.cli import app
from pointae.data.io import read_traces
from pointae.data.traces import Traces
from pointae.data.validate import COORD_LIMIT, clean_coords
from pointae.errors import PointaeError

ROOT = Path(__file__).resolve().parents[2]
BINTU = (ROOT / "tests" / "data" / "files" / "bintu_small.csv").read_text().splitlines()
runner = CliRunner()


def _one_error(res, *words):
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert res.exit_code == 1, res.output
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    for w in words:
        assert w in lines[0], res.output


def _bintu_with(tmp_path, value: str, name="v.csv") -> Path:
    lines = list(BINTU)
    f = lines[9].split(",")  # trace 1, locus 8: the Z column
    f[2] = value
    lines[9] = ",".join(f)
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize("value", ["inf", "-inf", "1e39", "1e308", "3e38", "-2e9"])
def test_out_of_range_coordinates_are_missing_counted_and_reported(tmp_path, value):
    p = _bintu_with(tmp_path, value)
    base = read_traces(ROOT / "tests" / "data" / "files" / "bintu_small.csv")
    with pytest.warns(UserWarning, match="1 spot"):
        t = read_traces(p)
    assert not t.mask[0, 7] and base.mask[0, 7]
    expected = base.mask.copy()
    expected[0, 7] = False
    assert (t.mask == expected).all()
    counts = t.attrs["pointae_invalid_spots"]
    assert counts["nonfinite"] + counts["out_of_range"] == 1 and counts["limit"] == COORD_LIMIT
    res = runner.invoke(app, ["info", str(p)])
    assert res.exit_code == 0, res.output
    assert (
        "warning: " in res.output and "1 spot(s) treated as missing" in res.output and "locus 8" in res.output
    )
    res = runner.invoke(app, ["info", str(p), "--json"])  # the same report inside the JSON
    assert res.exit_code == 0, res.output
    warned = json.loads(res.output)["warnings"]
    assert any("1 spot(s) treated as missing" in w and "locus 8" in w for w in warned)


def test_clean_coords_policy():
    raw = np.array(
        [[[1, 2, 3], [np.inf, 0, 0], [1e39, 0, 0], [np.nan, 0, 0], [0, 0, COORD_LIMIT]]], np.float64
    )
    c, rep = clean_coords(raw)
    assert c.dtype == np.float32
    assert np.isnan(c[0, 1:4]).all() and np.isfinite(c[0, [0, 4]]).all()
    assert rep["nonfinite"] == 1 and rep["out_of_range"] == 1 and rep["first"][:2] == (0, 1)
    # squared distances of accepted coordinates (and their squares) stay finite in float32
    d2 = np.float32((2 * COORD_LIMIT) ** 2 * 3)
    assert np.isfinite(d2) and np.isfinite(np.float32(d2) ** 2)


def test_impute_and_reconstruct_on_a_3e38_spot_exit_0_without_overflow(tmp_path):
    p = _bintu_with(tmp_path, "3e38")
    for args in (
        ["reconstruct", str(p), "--out", str(tmp_path / "r.npy")],
        ["impute", str(p), "-o", str(tmp_path / "i.csv")],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        assert "overflow" not in res.output and "RuntimeWarning" not in res.output
    rebuilt = np.load(tmp_path / "r.npy")
    assert np.isnan(rebuilt[0, 7]).all() and np.isfinite(rebuilt[0, :7]).all()  # the spot is missing
    out = read_traces(tmp_path / "i.csv")
    assert np.isfinite(out.coords[0]).all() and np.abs(out.coords[0]).max() < 1e7  # imputed, in range


def test_numpy_overflow_inside_a_command_is_an_error_not_exit_0():
    from pointae.cli._app import _overflow_as_error

    ctx = _overflow_as_error()
    try:
        with pytest.raises(RuntimeWarning, match="overflow"):
            np.float32(3e38) * np.float32(10)
    finally:
        ctx.__exit__(None, None, None)


def test_locus_index_of_1e18_is_one_line(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text("trace_id,locus,x,y,z\na,0,1,2,3\na,1000000000000000000,1,2,3\n")
    _one_error(runner.invoke(app, ["info", str(p)]), "l.csv", "locus index", "out of range")


# ------------------------------------------------------------------------------- HDF5 structure
@pytest.fixture
def h5file(tmp_path):
    rng = np.random.default_rng(0)
    import pandas as pd

    meta = pd.DataFrame({"trace_id": [f"t{i}" for i in range(6)], "label": list("ababab")})
    t = Traces(rng.normal(size=(6, 5, 3)).astype(np.float32) * 100, meta=meta)
    p = tmp_path / "t.h5"
    t.save(p)
    return p


def _coords_group(f):
    del f["coords"]
    f.create_group("coords")


def _coords_int(f):
    del f["coords"]
    f.create_dataset("coords", data=np.zeros((6, 5, 3), np.int32))


def _huge_declared(f):
    del f["coords"]
    f.create_dataset("coords", shape=(10**9, 65, 3), dtype=np.float32, chunks=(4096, 65, 3))
    f.attrs["n_traces"], f.attrs["n_loci"] = 10**9, 65
    for k in list(f["meta"]):
        del f["meta"][k]
    f.attrs["meta_columns"] = "[]"


def _zero(n, n_loci):
    def go(f):
        del f["coords"]
        f.create_dataset("coords", shape=(n, n_loci, 3), dtype=np.float32)
        f.attrs["n_traces"], f.attrs["n_loci"] = n, n_loci

    return go


def _vlen_ints(f):
    """A variable-length integer sequence where text is expected (h5py used to crash on this)."""
    dt = h5py.vlen_dtype(np.int64)
    v = np.empty((), dtype=dt)
    v[()] = np.array([1, 2])
    f.attrs.create("meta_columns", v, dtype=dt)


BAD_H5 = {
    "coords_group": (_coords_group, "is a group"),
    "coords_absent": (lambda f: f.__delitem__("coords"), "'coords' is missing"),
    "coords_int": (_coords_int, "should hold floats"),
    "version_text": (lambda f: f.attrs.__setitem__("format_version", "abc"), "format_version"),
    "version_99": (lambda f: f.attrs.__setitem__("format_version", 99), "newer pointae"),
    "version_0": (lambda f: f.attrs.__setitem__("format_version", 0), "invalid format version"),
    "unit_int": (lambda f: f.attrs.__setitem__("unit", 5), "'unit' should be a text value"),
    "unit_bad": (lambda f: f.attrs.__setitem__("unit", "parsec"), "unknown unit"),
    "attrs_list": (lambda f: f.attrs.__setitem__("attrs", "[1, 2]"), "JSON dict"),
    "attrs_not_json": (lambda f: f.attrs.__setitem__("attrs", "{"), "not valid JSON"),
    "meta_columns_dict": (lambda f: f.attrs.__setitem__("meta_columns", "{}"), "JSON list"),
    "meta_columns_too_many": (lambda f: f.attrs.__setitem__("meta_columns", '["a", "b", "c"]'), "meta/0002"),
    "n_traces_lies": (lambda f: f.attrs.__setitem__("n_traces", 7), "'n_traces' is 7"),
    "n_loci_text": (lambda f: f.attrs.__setitem__("n_loci", "5"), "'n_loci' should be an integer"),
    "attr_vlen_ints": (_vlen_ints, "'meta_columns' should be a text value"),
    "declared_1e9_traces": (_huge_declared, "declares shape (1000000000, 65, 3) but stores 0 of"),
    "zero_traces": (_zero(0, 5), "no traces"),
    "zero_loci": (_zero(6, 0), "no loci"),
    "layers_absent": (lambda f: f.__delitem__("layers"), "'layers' is missing"),
}


@pytest.mark.parametrize("case", sorted(BAD_H5))
def test_bad_hdf5_structure_is_one_line(h5file, case, monkeypatch):
    import pointae.data.validate as v

    monkeypatch.setattr(v, "available_memory", lambda: 8 * 2**30)
    change, needle = BAD_H5[case]
    with h5py.File(h5file, "r+") as f:
        change(f)
    for cmd in (["info", str(h5file)], ["convert", str(h5file), str(h5file.with_suffix(".csv"))]):
        _one_error(runner.invoke(app, cmd), "t.h5", needle)
    assert not h5file.with_suffix(".csv").exists()


def test_global_heap_that_libhdf5_would_loop_on_is_refused(h5file):
    """A zero-size object in a global heap collection made libhdf5 loop forever (5 of 1,034 mutants)."""
    b = bytearray(h5file.read_bytes())
    off = b.find(b"GCOL\x01\x00\x00\x00")
    assert off > 0
    first = off + 16  # the first object's header: index, refcount, reserved, size
    b[first : first + 16] = bytes(16)  # index 0 and size 0: libhdf5 re-reads it forever
    h5file.write_bytes(bytes(b))
    _one_error(runner.invoke(app, ["info", str(h5file)]), "t.h5", "damaged HDF5 global heap")


def test_distance_maps_too_large_for_memory_is_one_line(tmp_path, monkeypatch):
    import pointae.data.validate as v

    monkeypatch.setattr(v, "available_memory", lambda: 2**30)
    p = tmp_path / "long.h5"
    Traces(np.random.default_rng(0).normal(size=(1, 20_000, 3)).astype(np.float32)).save(p)
    _one_error(
        runner.invoke(app, ["reconstruct", str(p), "--out", str(tmp_path / "o.npy")]), "20,000 loci", "GiB"
    )
    assert not (tmp_path / "o.npy").exists()


def test_view_of_a_trace_with_every_locus_missing_is_one_line(tmp_path):
    p = tmp_path / "empty.h5"
    Traces(np.full((2, 6, 3), np.nan, np.float32)).save(p)
    _one_error(
        runner.invoke(app, ["view", str(p), "--trace", "0", "--png", str(tmp_path / "v.png")]), "no observed"
    )
    _one_error(runner.invoke(app, ["view", str(p), "--gallery", "2", "--png", str(tmp_path / "g.png")]))
    assert not list(tmp_path.glob("*.png"))


def _mutants(base: bytes, other: bytes, rng, n):
    for _ in range(n):
        b = bytearray(base)
        kind = rng.integers(4)
        if kind == 0:  # bit flips
            for _ in range(rng.integers(1, 9)):
                i = rng.integers(len(b))
                b[i] ^= 1 << int(rng.integers(8))
        elif kind == 1:  # splice from another HDF5 file
            i, j, k = rng.integers(len(b)), rng.integers(len(other)), rng.integers(1, 64)
            b[i : i + k] = other[j : j + k]
        elif kind == 2:  # truncation
            b = b[: rng.integers(8, len(b))]
        else:  # random bytes
            i = rng.integers(len(b))
            b[i : i + 8] = bytes(rng.integers(0, 256, 8, dtype=np.uint8).tolist())
        yield bytes(b)


def test_hdf5_mutation_fuzz_has_no_uncaught_exception(h5file, tmp_path):
    """Seeded bit-flip / splice / truncation mutants of a small file: a Traces or one PointaeError."""
    other = tmp_path / "o.h5"
    Traces(np.ones((3, 4, 3), np.float32)).save(other, compression="lzf")
    rng = np.random.default_rng(12)
    outcomes = {"ok": 0, "error": 0}
    p = tmp_path / "m.h5"
    for data in _mutants(h5file.read_bytes(), other.read_bytes(), rng, 250):
        p.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = read_traces(p)
            t.distance_maps()
            json.dumps(t.attrs, default=str)
            outcomes["ok"] += 1
        except PointaeError as e:
            assert "\n" not in str(e) and str(p) in str(e)
            outcomes["error"] += 1
    assert outcomes["ok"] > 20 and outcomes["error"] > 20, outcomes
