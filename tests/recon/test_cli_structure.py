"""CLI: pointae reconstruct and export-pdb on the shared Bintu file and on an 83-locus file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from pointae.cli import app
from pointae.data.io.pdb import read_pdb
from pointae.testing import tiny_traces

runner = CliRunner()
BINTU = "IMR90_chr21-18-20Mb.csv"


@pytest.fixture(scope="module")
def synthetic83(tmp_path_factory):
    """A small FOF-CT file: 12 traces x 83 loci with ~10% missing."""
    path = tmp_path_factory.mktemp("syn") / "syn83.fofct.csv"
    tiny_traces(n=12, n_loci=83, seed=7).save(path)
    return path


def _ok(res):
    assert res.exit_code == 0, res.output
    return res.output


def test_reconstruct_bintu_file(shared_data, tmp_path):
    out = tmp_path / "rec.h5"
    text = _ok(
        runner.invoke(
            app,
            [
                "reconstruct",
                str(shared_data / "IMR90_chr21-18-20Mb.csv"),
                "--out",
                str(out),
                "--method",
                "mds",
            ],
        )
    )
    assert "1277 traces x 65 loci" in text and "RMSD" in text
    from pointae import read_traces

    src = read_traces(shared_data / "IMR90_chr21-18-20Mb.csv")
    rec = read_traces(out)
    assert np.array_equal(rec.mask, src.mask)
    # exact maps rebuild the traces up to float32 rounding (mirror images allowed)
    err = np.sqrt(np.nanmean(np.sum((rec.coords - src.coords) ** 2, -1), axis=1))
    assert np.nanmax(err) < 0.05, np.nanmax(err)  # nm


@pytest.mark.parametrize("method", ["mds", "smacof"])
def test_reconstruct_synthetic83_json(synthetic83, tmp_path, method):
    out = tmp_path / "rec.npy"
    res = runner.invoke(app, ["reconstruct", str(synthetic83), "-o", str(out), "--method", method, "--json"])
    rep = json.loads(_ok(res))
    assert rep["n_loci"] == 83 and rep["n_traces"] == 12 and rep["method"] == method
    assert rep["median_rmsd"] < 1e-2 and rep["median_pearson"] > 0.9999
    assert np.load(out).shape == (12, 83, 3)


def test_reconstruct_from_npy_maps_with_missing_pairs(tmp_path, rng):
    t = tiny_traces(n=5, n_loci=83, seed=1, missing=0.0)
    maps = t.distance_maps().astype(np.float64)
    hide = np.triu(rng.random(maps.shape) < 0.2, 1)
    maps[hide | np.swapaxes(hide, 1, 2)] = np.nan
    src = tmp_path / "maps.npy"
    np.save(src, maps)
    out = tmp_path / "rec.csv"
    rep = json.loads(_ok(runner.invoke(app, ["reconstruct", str(src), "--out", str(out), "--json"])))
    assert rep["median_relative"] < 1e-3
    from pointae import read_traces

    rec = read_traces(out)
    assert rec.coords.shape == (5, 83, 3)
    # the hidden pairs are recovered too
    d = rec.distance_maps()
    full = t.distance_maps()
    both = hide | np.swapaxes(hide, 1, 2)
    assert np.abs(d[both] - full[both]).mean() < 1.0  # nm, typical distances ~1000 nm


def test_reconstruct_bad_inputs(tmp_path):
    bad = tmp_path / "maps.npy"
    np.save(bad, np.zeros((3, 4, 5)))
    res = runner.invoke(app, ["reconstruct", str(bad), "--out", str(tmp_path / "o.npy")])
    assert res.exit_code == 1 and "maps.npy" in res.output and "(N, L, L)" in res.output
    assert not (tmp_path / "o.npy").exists()
    res = runner.invoke(app, ["reconstruct", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o.npy")])
    assert res.exit_code == 1 and "none.csv" in res.output


def test_export_pdb_cli(shared_data, synthetic83, tmp_path):
    out = tmp_path / "one.pdb"
    text = _ok(
        runner.invoke(app, ["export-pdb", str(shared_data / "IMR90_chr21-18-20Mb.csv"), str(out), "-t", "7"])
    )
    assert "wrote" in text
    t = read_pdb(out)
    assert len(t) == 1 and t.trace_ids[0] == "7" and t.n_loci == 65
    _ok(runner.invoke(app, ["export-pdb", str(synthetic83), str(tmp_path / "s.pdb"), "--per-trace"]))
    assert len(list(tmp_path.glob("s_*.pdb"))) == 12
    res = runner.invoke(app, ["export-pdb", str(synthetic83), str(tmp_path / "x.pdb"), "-t", "nope"])
    assert res.exit_code == 1 and "nope" in res.output and "syn83" in res.output


@pytest.mark.slow
def test_reconstruct_bintu_file_smacof(shared_data, tmp_path):
    out = tmp_path / "rec.npy"
    res = runner.invoke(app, ["reconstruct", str(shared_data / BINTU), "-o", str(out), "--json"])
    rep = json.loads(_ok(res))
    assert rep["n_traces"] == 1277 and rep["median_rmsd"] < 0.01 and rep["median_pearson"] > 0.99999


def test_export_pdb_fofct_keeps_loci(shared_data, tmp_path):
    fof = shared_data / "IMR90_chr21-18-20Mb_first300.fofct.csv"
    if not fof.exists():
        pytest.skip("FOF-CT excerpt not found")
    out = tmp_path / "t7.pdb"
    _ok(runner.invoke(app, ["export-pdb", str(fof), str(out), "--trace", "7"]))
    from pointae import read_traces

    src = read_traces(fof)
    back = read_pdb(out)
    assert back.loci.equals(src.loci)
    k = list(src.trace_ids).index("7")
    np.testing.assert_allclose(back.coords[0], src.coords[k], atol=0.02, equal_nan=True)
