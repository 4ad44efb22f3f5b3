"""QC summary (``pointae info``) and ``pointae convert``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pointae.cli import app
from pointae.data.corrupt import add_outliers
from pointae.data.io import read_traces, write_traces
from pointae.data.qc import summarize, summarize_file
from pointae.data.traces import Traces
from pointae.testing import tiny_traces

FILES = Path(__file__).parent / "files"
runner = CliRunner()


def test_summarize_bintu(shared_data):
    s = summarize(read_traces(shared_data / "IMR90_chr21-18-20Mb.csv"))
    assert s["n_traces"] == 1277 and s["n_loci"] == 65 and s["unit"] == "nm"
    assert s["missing_fraction"] == pytest.approx(0.063, abs=0.001)
    assert s["traces_over_half_missing"] == 0
    assert 200 < s["median_neighbour_distance"] < 400
    rg = s["radius_of_gyration"]
    assert rg["min"] <= rg["q05"] <= rg["q50"] <= rg["q95"] <= rg["max"]
    assert 0 <= s["outlier_fraction"] < 0.05
    json.dumps(s)


def test_summarize_counts_by_hand():
    coords = np.zeros((4, 4, 3), np.float32)
    coords[:, :, 0] = np.arange(4) * 100.0  # straight chains with 100 nm bonds
    coords[0, :3] = np.nan  # 75% missing
    coords[1, 3] = np.nan  # 25% missing
    coords[2, :] = np.nan  # empty
    meta = pd.DataFrame({"trace_id": list("abcd"), "cycle": ["G1", "S", "G1", "G1"], "cell_id": list("wxyz")})
    loci = pd.DataFrame({"chrom": "chr1", "start": [0, 10, 20, 30], "end": [10, 20, 30, 40]})
    s = summarize(Traces(coords, meta=meta, loci=loci))
    assert s["missing_fraction"] == pytest.approx(8 / 16)
    assert s["traces_over_half_missing"] == 2 and s["empty_traces"] == 1
    assert s["median_neighbour_distance"] == pytest.approx(100.0)
    assert s["missing_per_trace"]["max"] == 1.0 and s["missing_per_trace"]["min"] == 0.0
    assert s["genomic_span"] == {"chrom": "chr1", "start": 0, "end": 40, "bp": 40, "median_locus_size": 10.0}
    assert s["labels"] == {"cycle": {"G1": 3, "S": 1}}  # cell_id: all distinct, not a label
    assert s["outlier_fraction"] == 0.0


def test_outlier_estimate_tracks_injected_outliers(rng):
    t = tiny_traces(n=200, n_loci=40, seed=1, missing=0.0)
    clean = summarize(t)["outlier_fraction"]
    bad = add_outliers(t.coords, 0.05, rng, magnitude=(6.0, 8.0))
    s = summarize(t.with_coords(bad.coords))
    assert clean < 0.01
    # most of the injected 5% are caught by the neighbour rule
    assert 0.03 < s["outlier_fraction"] < 0.07
    assert s["outlier_traces"] > 100


def test_streamed_summary_equals_in_memory(tmp_path, rng):
    t = tiny_traces(n=3000, n_loci=30, seed=3, missing=0.15)
    t = t.with_coords(add_outliers(t.coords, 0.02, rng, magnitude=(5.0, 8.0)).coords)
    t.meta["cycle"] = rng.choice(["G1", "S", "G2"], size=len(t))
    t.meta["cell_id"] = [f"c{i}" for i in range(len(t))]
    p = tmp_path / "q.h5"
    write_traces(t, p, chunk_traces=256)
    whole = summarize(read_traces(p))
    streamed = summarize_file(p, chunk_size=700)
    assert streamed == whole
    assert set(streamed["labels"]) == {"cycle", "condition"}
    assert streamed["outlier_fraction"] > 0.01


def test_cli_info_json_and_table(shared_data):
    path = shared_data / "IMR90_chr21-18-20Mb.csv"
    r = runner.invoke(app, ["info", str(path), "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert (s["n_traces"], s["n_loci"]) == (1277, 65)
    assert s["missing_fraction"] == pytest.approx(0.063, abs=0.001)
    r = runner.invoke(app, ["info", str(path)])
    assert r.exit_code == 0
    assert "1,277" in r.stdout and "6.27%" in r.stdout


def test_cli_info_labels_and_format_option():
    r = runner.invoke(app, ["info", str(FILES / "bintu_small.csv"), "--format", "bintu", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["labels"]["Cell cycle"] == {"G1": 3, "S": 2, "G2": 1}
    assert s["layers"] == ["Intensity"]
    r = runner.invoke(app, ["info", str(FILES / "bintu_small.csv"), "--format", "fofct"])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1


def test_cli_convert_fofct_h5_fofct(tmp_path, shared_data):
    src = shared_data / "IMR90_chr21-18-20Mb_first300.fofct.csv"
    h5 = tmp_path / "a.h5"
    back = tmp_path / "b.fofct.csv"
    assert runner.invoke(app, ["convert", str(src), str(h5)]).exit_code == 0
    assert runner.invoke(app, ["convert", str(h5), str(back), "--to", "fofct"]).exit_code == 0
    a, b = read_traces(src), read_traces(back)
    np.testing.assert_array_equal(a.coords, b.coords)
    a_text, b_text = src.read_text(), back.read_text()  # the data rows are the same bytes (v1.0 header)
    assert b_text[b_text.index("\n1,1,") :] == a_text[a_text.index("\n1,1,") :]
    assert back.read_text().startswith("##FOF-CT_Version=v1.0\n##Table_Namespace=4dn_FOF-CT_core\n")
    prov = read_traces(h5).attrs["provenance"]
    assert prov["parameters"]["command"] == "convert" and prov["source"] == str(src)


def test_cli_convert_real_bintu_h5_bintu(tmp_path, shared_data):
    src = shared_data / "IMR90_chr21-18-20Mb.csv"
    h5, out = tmp_path / "b.h5", tmp_path / "b.bintu.csv"
    assert runner.invoke(app, ["convert", str(src), str(h5)]).exit_code == 0
    assert runner.invoke(app, ["convert", str(h5), str(out)]).exit_code == 0
    assert out.read_bytes() == src.read_bytes()


def test_cli_convert_bintu_h5_bintu(tmp_path):
    src = FILES / "bintu_small.csv"
    h5 = tmp_path / "x.h5"
    out = tmp_path / "x.txt"
    assert runner.invoke(app, ["convert", str(src), str(h5)]).exit_code == 0
    r = runner.invoke(app, ["convert", str(h5), str(out), "--to", "bintu"])
    assert r.exit_code == 0, r.output
    assert out.read_text() == src.read_text()
    t = read_traces(h5)
    assert t.meta["Cell cycle"].tolist()[:2] == ["G1", "S"] and "Intensity" in t.layers


def test_cli_convert_keeps_ids_labels_layers_across_formats(tmp_path):
    t = read_traces(FILES / "fofct_small.fofct.csv")
    t.meta["condition"] = ["a", "b", "a", "b", "a", "b"]
    t.meta["trace_id"] = [f"T{i}" for i in range(len(t))]
    t = Traces(t.coords, unit=t.unit, meta=t.meta, loci=t.loci, attrs=t.attrs, layers=t.layers)
    src = tmp_path / "src.h5"
    write_traces(t, src)
    chain = [("c.csv", None), ("d.bintu.csv", None), ("e.fofct.csv", None), ("f.h5", None)]
    prev = src
    for name, to in chain:
        out = tmp_path / name
        args = ["convert", str(prev), str(out)] + (["--to", to] if to else [])
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
        prev = out
    end = read_traces(prev)
    assert end.trace_ids.tolist() == t.trace_ids.tolist()
    assert end.meta["condition"].tolist() == t.meta["condition"].tolist()
    assert end.meta["cell_id"].astype(str).tolist() == t.meta["cell_id"].tolist()
    np.testing.assert_array_equal(end.coords, t.coords)
    np.testing.assert_array_equal(end.layers["confidence"], t.layers["confidence"])
    pd.testing.assert_frame_equal(end.loci, t.loci)


def test_cli_convert_refuses_to_overwrite_input(tmp_path):
    p = tmp_path / "a.csv"
    write_traces(tiny_traces(n=2, n_loci=3), p)
    before = p.read_bytes()
    r = runner.invoke(app, ["convert", str(p), str(p)])
    assert r.exit_code == 1 and "overwrite" in r.stderr
    assert p.read_bytes() == before


def test_cli_convert_unknown_suffix(tmp_path):
    r = runner.invoke(app, ["convert", str(FILES / "bintu_small.csv"), str(tmp_path / "o.xyz")])
    assert r.exit_code == 1 and "--to" in r.stderr
    assert list(tmp_path.iterdir()) == []
