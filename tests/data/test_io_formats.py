"""Reading, writing and round trips of every trace file format."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from pointae.data.io import (
    convert_file,
    detect_format,
    format_from_suffix,
    iter_traces,
    read_traces,
    write_traces,
)
from pointae.data.io.hdf5 import H5TraceWriter
from pointae.data.traces import Traces
from pointae.errors import PointaeError
from pointae.testing import tiny_traces

FILES = Path(__file__).parent / "files"
BINTU_SMALL = FILES / "bintu_small.csv"
FOFCT_SMALL = FILES / "fofct_small.fofct.csv"


def assert_same_traces(a: Traces, b: Traces, attrs: bool = False) -> None:
    """Bit-identical coordinates, same ids, meta, loci, layers and unit."""
    assert a.unit == b.unit
    assert a.coords.shape == b.coords.shape
    np.testing.assert_array_equal(a.coords.view(np.uint32)[a.mask], b.coords.view(np.uint32)[b.mask])
    np.testing.assert_array_equal(a.mask, b.mask)
    pd.testing.assert_frame_equal(
        a.meta.astype(object).reset_index(drop=True), b.meta.astype(object).reset_index(drop=True)
    )
    if a.loci is None:
        assert b.loci is None
    else:
        pd.testing.assert_frame_equal(a.loci, b.loci)
    assert sorted(a.layers) == sorted(b.layers)
    for k in a.layers:
        x, y = np.asarray(a.layers[k]), np.asarray(b.layers[k])
        if x.dtype.kind in "fc":
            np.testing.assert_array_equal(x, y.astype(x.dtype))
        else:
            np.testing.assert_array_equal(x.astype(str), y.astype(str))
    if attrs:
        drop = {"source", "format", "provenance"}
        assert {k: v for k, v in a.attrs.items() if k not in drop} == {
            k: v for k, v in b.attrs.items() if k not in drop
        }


def rich_traces(n: int = 7, n_loci: int = 9, seed: int = 3, unit: str = "micron") -> Traces:
    """Non-integer coordinates, string ids, labels, cell ids and layers of several dtypes."""
    rng = np.random.default_rng(seed)
    coords = rng.normal(scale=2.0, size=(n, n_loci, 3)).astype(np.float32)
    coords[rng.random((n, n_loci)) < 0.2] = np.nan
    meta = pd.DataFrame(
        {
            "trace_id": [f"cell{i // 2}_chr{i % 2}" for i in range(n)],
            "cell_id": [f"cell{i // 2}" for i in range(n)],
            "condition": rng.choice(["ctrl", "auxin"], size=n),
            "replicate": rng.integers(1, 3, size=n),
        }
    )
    start = 1000 + np.arange(n_loci) * 5000
    loci = pd.DataFrame({"chrom": "chr2", "start": start, "end": start + 5000})
    mask = ~np.isnan(coords[..., 0])
    conf = np.where(mask, rng.uniform(size=(n, n_loci)), np.nan).astype(np.float32)
    status = np.where(mask, np.where(rng.random((n, n_loci)) < 0.5, "observed", "corrected"), "")
    return Traces(
        coords,
        unit=unit,
        meta=meta,
        loci=loci,
        attrs={"description": "rich test traces", "genome_assembly": "mm10"},
        layers={"confidence": conf, "pointae_status": status},
    )


# ---------------------------------------------------------------- detection
def test_detect_format(tmp_path, shared_data):
    assert detect_format(shared_data / "IMR90_chr21-18-20Mb.csv") == "bintu"
    assert detect_format(shared_data / "IMR90_chr21-18-20Mb_first300.fofct.csv") == "fofct"
    assert detect_format(BINTU_SMALL) == "bintu"
    assert detect_format(FOFCT_SMALL) == "fofct"
    t = rich_traces()
    for fmt, name in (("csv", "x.csv"), ("h5", "x.h5"), ("fofct", "x.fofct.csv"), ("bintu", "x.bintu.csv")):
        p = tmp_path / name
        write_traces(t.to_unit("nm") if fmt == "bintu" else t, p)
        assert detect_format(p) == fmt
        # the content decides, not the name
        q = tmp_path / f"renamed_{fmt}.dat"
        q.write_bytes(p.read_bytes())
        assert detect_format(q) == fmt


def test_format_from_suffix():
    assert format_from_suffix("a/b.h5") == "h5"
    assert format_from_suffix("b.HDF5") == "h5"
    assert format_from_suffix("b.fofct.csv") == "fofct"
    assert format_from_suffix("b.tsv") == "fofct"
    assert format_from_suffix("b.bintu.csv") == "bintu"
    assert format_from_suffix("b.csv") == "csv"
    assert format_from_suffix("b.pdb") == "pdb"
    with pytest.raises(PointaeError, match="cannot tell the output format"):
        format_from_suffix("b.xyz")


# ---------------------------------------------------------------- Bintu
def test_bintu_real_file(shared_data):
    t = read_traces(shared_data / "IMR90_chr21-18-20Mb.csv")
    assert (len(t), t.n_loci, t.unit) == (1277, 65, "nm")
    assert t.missing_fraction == pytest.approx(0.063, abs=0.001)
    assert t.attrs["description"].startswith("The center positions (in nm)")
    # first row of the file: 1,1,Z=1733,X=117803,Y=58446
    np.testing.assert_array_equal(t.coords[0, 0], [117803, 58446, 1733])
    assert t.trace_ids[:3].tolist() == ["1", "2", "3"]
    assert not t.mask[1, 42]  # line "2,43,nan,nan,nan"


def test_bintu_round_trip_is_byte_identical(tmp_path, shared_data):
    src = shared_data / "IMR90_chr21-18-20Mb.csv"
    out = tmp_path / "back.bintu.csv"
    write_traces(read_traces(src), out)
    assert out.read_bytes() == src.read_bytes()


def test_bintu_extra_columns(tmp_path):
    t = read_traces(BINTU_SMALL)
    assert (len(t), t.n_loci) == (6, 65)
    assert t.meta["Cell cycle"].tolist() == ["G1", "S", "G1", "G2", "G1", "S"]
    assert set(t.layers) == {"Intensity"} and t.layers["Intensity"].shape == (6, 65)
    out = tmp_path / "x.bintu.csv"
    write_traces(t, out)
    assert out.read_text() == BINTU_SMALL.read_text()


def test_bintu_writes_ids_loci_and_units(tmp_path):
    t = rich_traces(unit="micron")
    out = tmp_path / "r.bintu.csv"
    write_traces(t, out)
    back = read_traces(out)
    assert back.unit == "nm"
    np.testing.assert_allclose(back.coords, t.coords * 1000, rtol=1e-6, equal_nan=True)
    assert back.trace_ids.tolist() == t.trace_ids.tolist()
    pd.testing.assert_frame_equal(back.loci, t.loci)
    assert back.meta["condition"].tolist() == t.meta["condition"].tolist()
    with pytest.raises(PointaeError, match="bead"):
        write_traces(Traces(t.coords, unit="bead"), tmp_path / "b.bintu.csv")


# ---------------------------------------------------------------- FOF-CT
def test_fofct_sample_matches_bintu(shared_data):
    f = read_traces(shared_data / "IMR90_chr21-18-20Mb_first300.fofct.csv")
    b = read_traces(shared_data / "IMR90_chr21-18-20Mb.csv")
    assert (len(f), f.n_loci, f.unit) == (300, 65, "nm")
    np.testing.assert_array_equal(f.coords, b.coords[:300])
    assert f.loci["start"].iloc[0] == 18_627_714 and f.loci["chrom"].unique().tolist() == ["chr21"]
    assert f.attrs["genome_assembly"] == "GRCh38"


def test_fofct_to_h5_to_fofct_identical(tmp_path, shared_data):
    src = shared_data / "IMR90_chr21-18-20Mb_first300.fofct.csv"
    a = read_traces(src)
    write_traces(a, tmp_path / "a.h5")
    h = read_traces(tmp_path / "a.h5")
    write_traces(h, tmp_path / "b.fofct.csv")
    b = read_traces(tmp_path / "b.fofct.csv")
    assert_same_traces(a, h, attrs=True)
    assert_same_traces(a, b, attrs=True)
    # written as FOF-CT v1.0: the same bytes but the capitalised v1.0 header keys
    v10 = src.read_text()
    for old, new in (
        ("##FOF-CT_version=v0.1", "##FOF-CT_Version=v1.0"),
        ("##Table_namespace=", "##Table_Namespace="),
        ("##genome_assembly=", "##Genome_Assembly="),
        ("##XYZ_unit=", "##XYZ_Unit="),
        ("##columns=", "##Columns="),
    ):
        v10 = v10.replace(old, new)
    assert (tmp_path / "b.fofct.csv").read_text() == v10


def test_fofct_small_meta_layers_case_insensitive(tmp_path):
    t = read_traces(FOFCT_SMALL)
    assert (len(t), t.n_loci) == (6, 65)
    assert t.meta["cell_id"].tolist() == ["cell1", "cell1", "cell2", "cell2", "cell3", "cell3"]
    assert set(t.layers) == {"confidence"}
    assert np.isnan(t.layers["confidence"][~t.mask]).all()
    assert t.attrs["comments"][0] == "lab: example lab comment"
    out = tmp_path / "s.fofct.csv"
    write_traces(t, out)
    assert_same_traces(t, read_traces(out), attrs=True)


def test_fofct_alignment_on_union_of_loci(tmp_path):
    # rows out of order, spots absent, loci listed unsorted: traces align on the sorted union
    p = tmp_path / "u.csv"
    p.write_text(
        "##FOF-CT_version=v0.1\n##Table_namespace=4dn_FOF-CT_core\n##XYZ_unit=micron\n"
        "##columns=(Spot_ID, Trace_ID, X, Y, Z, Chrom, Chrom_Start, Chrom_End)\n"
        "1,b,1.5,2,3,chr1,300,400\n"
        "2,a,0.25,0,0,chr1,100,200\n"
        "3,b,7,8,9,chr1,100,200\n"
        "4,a,4,5,6,chr1,200,300\n"
    )
    t = read_traces(p)
    assert t.unit == "micron"
    assert t.trace_ids.tolist() == ["b", "a"]
    assert t.loci["start"].tolist() == [100, 200, 300]
    np.testing.assert_array_equal(t.mask, [[True, False, True], [True, True, False]])
    np.testing.assert_array_equal(t.coords[0, 2], [1.5, 2, 3])
    np.testing.assert_array_equal(t.coords[1, 0], [0.25, 0, 0])


def test_fofct_tab_separated(tmp_path):
    t = rich_traces()
    out = tmp_path / "t.tsv"
    write_traces(t, out)
    assert "\t" in out.read_text().split("\n")[-2]
    assert_same_traces(t, read_traces(out), attrs=True)


def test_fofct_without_loci_writes_placeholders(tmp_path):
    t = tiny_traces(n=3, n_loci=5)
    t = Traces(t.coords, meta=t.meta)
    out = tmp_path / "n.fofct.csv"
    write_traces(t, out)
    back = read_traces(out)
    np.testing.assert_array_equal(back.coords, t.coords)
    assert back.loci["chrom"].unique().tolist() == ["unknown"]


# ---------------------------------------------------------------- long CSV
def test_long_csv_round_trip(tmp_path):
    t = rich_traces(unit="micron")
    out = tmp_path / "r.csv"
    write_traces(t, out)
    back = read_traces(out)
    assert_same_traces(t, back, attrs=True)


def test_long_csv_minimal_and_absent_rows(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("Trace_ID,Locus,X,Y,Z,label\nt1,0,1,2,3,a\nt1,2,4,5,6,a\nt2,1,7,8,9,b\nt2,2,nan,nan,nan,b\n")
    t = read_traces(p, unit="nm")
    assert t.trace_ids.tolist() == ["t1", "t2"] and t.n_loci == 3
    np.testing.assert_array_equal(t.mask, [[True, False, True], [False, True, False]])
    assert t.meta["label"].tolist() == ["a", "b"]
    assert t.loci is None


# ---------------------------------------------------------------- HDF5
def test_h5_round_trip_everything(tmp_path):
    t = rich_traces()
    t.meta["score"] = np.linspace(0, 1, len(t))
    t.meta["flag"] = [True, False] * 3 + [True]
    t.meta["note"] = ["x", None, "y", None, "z", "w", None]
    t.meta["cat"] = pd.Categorical(["p", "q", "p", "q", "p", "q", "p"])
    out = tmp_path / "r.h5"
    write_traces(t, out, parameters={"seed": 7})
    back = read_traces(out)
    assert_same_traces(t, back, attrs=True)
    assert back.meta["note"].isna().tolist() == t.meta["note"].isna().tolist()
    assert isinstance(back.meta["cat"].dtype, pd.CategoricalDtype)
    assert back.meta["flag"].dtype == bool
    prov = back.attrs["provenance"]
    assert prov["parameters"]["seed"] == 7
    assert {"source", "pointae_version", "created"} <= set(prov)


@pytest.mark.parametrize("compression", ["gzip", "lzf"])
def test_h5_streams_in_chunks(tmp_path, compression):
    n = 3000
    t = tiny_traces(n=n, n_loci=65, seed=5)
    t.layers["q"] = np.arange(n * 65, dtype=np.int32).reshape(n, 65)
    p = tmp_path / "big.h5"
    write_traces(t, p, compression=compression, chunk_traces=256)
    with h5py.File(p) as f:
        assert f["coords"].chunks == (256, 65, 3)
        assert f["coords"].compression == compression
        assert f["layers"]["0000"].chunks == (256, 65)
    sizes, parts = [], []
    for chunk in iter_traces(p, chunk_size=700):
        sizes.append(len(chunk))
        parts.append(chunk)
    assert sizes == [700, 700, 700, 700, 200]
    assert_same_traces(t, Traces.concat(parts))
    mid = read_traces(p, start=1234, stop=1300)
    assert_same_traces(t[1234:1300], mid)
    assert read_traces(p, start=2990).trace_ids.tolist() == t.trace_ids[2990:].tolist()


def test_h5_slice_reads_only_what_it_needs(tmp_path, monkeypatch):
    t = tiny_traces(n=1000, n_loci=20)
    p = tmp_path / "s.h5"
    write_traces(t, p, chunk_traces=100)
    seen = []
    orig = h5py.Dataset.__getitem__

    def spy(self, key):
        out = orig(self, key)
        if self.name == "/coords":
            seen.append(out.shape[0])
        return out

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    read_traces(p, start=10, stop=30)
    assert seen == [20]


def _meta_rich(t: Traces) -> Traces:
    t.meta["note"] = [None if i % 3 == 0 else f"n{i}" for i in range(len(t))]
    t.meta["flag"] = np.arange(len(t)) % 2 == 0
    t.meta["k"] = np.arange(len(t))
    t.meta["cat"] = pd.Categorical(["u", "v"] * (len(t) // 2) + ["u"] * (len(t) % 2))
    t.layers["status"] = np.where(t.mask, "observed", "missing")
    return t


def test_h5_writer_appends_chunks(tmp_path):
    t = _meta_rich(tiny_traces(n=50, n_loci=12, seed=2))
    p = tmp_path / "w.h5"
    with H5TraceWriter(p, chunk_traces=8, parameters={"run": "x"}) as w:
        for s in range(0, 50, 16):
            w.append(t[s : s + 16])
        assert not p.exists()  # only renamed into place at the end
    back = read_traces(p)
    assert_same_traces(t, back, attrs=True)
    assert back.meta["note"].isna().tolist() == t.meta["note"].isna().tolist()
    assert back.attrs["provenance"]["parameters"]["run"] == "x"
    with h5py.File(p) as f:
        assert f["coords"].chunks == (8, 12, 3) and f.attrs["n_traces"] == 50


def test_h5_writer_rejects_mismatched_chunks_and_leaves_nothing(tmp_path):
    p = tmp_path / "w.h5"
    with pytest.raises(PointaeError, match="loci"):
        with H5TraceWriter(p) as w:
            w.append(tiny_traces(n=4, n_loci=6))
            w.append(tiny_traces(n=4, n_loci=7))
    with pytest.raises(PointaeError, match="nothing was written"):
        with H5TraceWriter(p):
            pass
    assert list(tmp_path.iterdir()) == []


def test_convert_h5_to_h5_streams(tmp_path):
    t = _meta_rich(tiny_traces(n=70_000 // 100, n_loci=9, seed=4))
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    write_traces(t, a)
    assert convert_file(a, b) == (len(t), 9)
    back = read_traces(b)
    assert_same_traces(t, back, attrs=True)
    assert back.attrs["provenance"]["parameters"]["command"] == "convert"
    assert back.attrs["provenance"]["previous"]["source"] == t.attrs["source"]


@pytest.mark.slow
def test_h5_million_traces_stream(tmp_path):
    """10^6 traces x 65 loci written and read chunk by chunk (never all in memory)."""
    p = tmp_path / "m.h5"
    n_chunk, n_parts = 50_000, 20
    rng = np.random.default_rng(0)
    with H5TraceWriter(p, compression="lzf", chunk_traces=8192) as w:
        for k in range(n_parts):
            c = rng.normal(size=(n_chunk, 65, 3)).astype(np.float32)
            c[:, 0] = k  # a marker per part
            meta = pd.DataFrame({"trace_id": [f"{k}_{i}" for i in range(n_chunk)]})
            w.append(Traces(c, meta=meta))
    total, last = 0, None
    for part in iter_traces(p, chunk_size=100_000):
        total += len(part)
        last = part
    assert total == n_chunk * n_parts == 1_000_000
    assert last.trace_ids[-1] == f"{n_parts - 1}_{n_chunk - 1}"
    tail = read_traces(p, start=999_990)
    assert len(tail) == 10 and np.all(tail.coords[:, 0] == n_parts - 1)


def test_text_formats_chunked_iteration():
    parts = list(iter_traces(BINTU_SMALL, chunk_size=4))
    assert [len(p) for p in parts] == [4, 2]
    assert_same_traces(read_traces(BINTU_SMALL), Traces.concat(parts))
    assert len(read_traces(BINTU_SMALL, start=1, stop=3)) == 2


# ---------------------------------------------------------------- dispatch and atomicity
def test_pdb_dispatch_is_lazy(tmp_path, monkeypatch):
    calls = []
    fake = types.ModuleType("pointae.data.io.pdb")
    fake.write_pdb = lambda traces, path: calls.append((len(traces), str(path)))
    monkeypatch.setitem(sys.modules, "pointae.data.io.pdb", fake)
    t = tiny_traces(n=2, n_loci=4)
    write_traces(t, tmp_path / "x.pdb")
    assert calls == [(2, str(tmp_path / "x.pdb"))]


def test_failed_write_leaves_nothing(tmp_path):
    t = rich_traces()
    t.layers["X"] = np.zeros((len(t), t.n_loci))  # collides with the FOF-CT X column
    with pytest.raises(PointaeError, match="collides"):
        write_traces(t, tmp_path / "bad.fofct.csv")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["bintu", "fofct", "csv"])
def test_column_collisions_are_errors(tmp_path, fmt):
    t = rich_traces(unit="nm")
    t.meta["Chrom"] = "x"  # would shadow the loci column
    with pytest.raises(PointaeError, match="collides"):
        write_traces(t, tmp_path / "o.txt", format=fmt)
    assert list(tmp_path.iterdir()) == []


def test_unknown_format_name(tmp_path):
    with pytest.raises(PointaeError, match="unknown format"):
        read_traces(BINTU_SMALL, format="xlsx")
    with pytest.raises(PointaeError, match="unknown format"):
        write_traces(rich_traces(), tmp_path / "a.csv", format="xlsx")


def test_format_override(tmp_path):
    # a long CSV whose name says .fofct.csv still reads as csv when told so
    t = rich_traces()
    p = tmp_path / "odd.fofct.csv"
    write_traces(t, p, format="csv")
    assert detect_format(p) == "csv"
    assert_same_traces(t, read_traces(p, format="csv"))


# ---------------------------------------------------------------- tolerated variations
def test_tolerated_variations(tmp_path):
    ref = read_traces(BINTU_SMALL)
    text = BINTU_SMALL.read_text()
    body = text.split("\n", 1)[1]
    variants = {
        "no_description.csv": body,
        "crlf.csv": text.replace("\n", "\r\n"),
        "bom.csv": "\ufeff" + text,
        "trailing_blank.csv": text + "\n\n",
    }
    for name, content in variants.items():
        p = tmp_path / name
        p.write_bytes(content.encode())
        assert detect_format(p) == "bintu", name
        t = read_traces(p)
        np.testing.assert_array_equal(t.coords, ref.coords)
        assert t.meta["Cell cycle"].tolist() == ref.meta["Cell cycle"].tolist()


def test_blank_line_keeps_line_numbers(tmp_path):
    p = tmp_path / "b.csv"
    p.write_text("trace_id,locus,x,y,z\nt,0,1,2,3\n\nt,1,1,2,3\nt,1,4,5,6\n")
    with pytest.raises(PointaeError, match=r"b\.csv:5 \(trace t\): duplicated"):
        read_traces(p, duplicates="error")


def test_fofct_repeated_header_row(tmp_path):
    p = tmp_path / "h.fofct.csv"
    p.write_text(
        "##FOF-CT_version=v0.1\n##Table_namespace=4dn_FOF-CT_core\n##XYZ_unit=um\n"
        "##columns=(Spot_ID, Trace_ID, X, Y, Z, Chrom, Chrom_Start, Chrom_End)\n"
        "Spot_ID,Trace_ID,X,Y,Z,Chrom,Chrom_Start,Chrom_End\n"
        "1,a,0.5,1,2,chr1,0,10\n2,a,1.5,1,2,chr1,10,20\n"
    )
    t = read_traces(p)
    assert t.unit == "micron" and t.n_loci == 2
    np.testing.assert_array_equal(t.coords[0, :, 0], [0.5, 1.5])
