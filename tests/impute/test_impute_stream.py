"""Streamed imputation in worker processes: same output as one process, clean errors, no leftovers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from pointae.cli import app
from pointae.errors import PointaeError
from pointae.impute.stream import impute_file, resolve_workers
from pointae.testing import tiny_traces

runner = CliRunner()


def _h5_content(path) -> dict:
    """Every dataset and attribute of an HDF5 file, the provenance's creation time left out."""
    import h5py

    out = {}
    with h5py.File(path) as f:

        def visit(name, obj):
            for k, v in obj.attrs.items():
                v = v.decode() if isinstance(v, bytes) else v
                if k == "provenance":
                    v = json.loads(v)
                    v.pop("created")
                out[f"{name}@{k}"] = str(v)
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]

        visit("/", f)
        f.visititems(visit)
    return out


@pytest.fixture(scope="module")
def excerpt(shared_data, tmp_path_factory):
    from pointae.data.io import read_traces

    return read_traces(shared_data / "IMR90_chr21-18-20Mb_first300.fofct.csv")[:40]


@pytest.mark.parametrize("suffix", ["h5", "csv"])
def test_workers_write_the_same_file_as_one_process(excerpt, tmp_path, suffix, monkeypatch):
    import pointae.impute.stream as stream
    from pointae.data.io import write_traces

    monkeypatch.setattr(stream, "IMPUTE_UNIT", 4)  # chunks of 9 go out as units of 4, 4 and 1
    src = tmp_path / f"in.{suffix}"
    write_traces(excerpt, src)
    one, two = tmp_path / f"one.{suffix}", tmp_path / f"two.{suffix}"
    a = impute_file(src, one, chunk_size=9, workers=1, samples=2)  # 5 chunks
    done = []
    b = impute_file(src, two, chunk_size=9, workers=2, samples=2, progress=lambda n, tot: done.append(n))
    assert a["workers"] == 1 and b["workers"] == 2
    assert done == [9, 18, 27, 36, 40]  # progress after every chunk, in input order
    for k in ("n_imputed", "n_corrected", "n_missing_left", "n_traces", "scale"):
        assert a[k] == b[k]
    assert a["n_imputed"] > 0
    # the merged units are the chunk imputed at once: same counts, statuses and (to float
    # rounding of other batch compositions) coordinates as impute_traces on the whole excerpt
    from pointae.data.io import read_traces
    from pointae.impute.api import impute_traces

    whole = impute_traces(read_traces(src), scale=a["scale"])
    back = read_traces(one)
    assert a["n_imputed"] == int((whole.layers["pointae_status"] == "imputed").sum())
    np.testing.assert_array_equal(back.layers["pointae_status"], whole.layers["pointae_status"])
    np.testing.assert_allclose(back.coords, whole.coords, atol=0.05)
    if suffix == "csv":
        assert one.read_bytes() == two.read_bytes()
        assert (tmp_path / "one.samples.csv").read_bytes() == (tmp_path / "two.samples.csv").read_bytes()
    else:
        ca, cb = _h5_content(one), _h5_content(two)
        assert ca.keys() == cb.keys()
        for k in ca:
            np.testing.assert_array_equal(ca[k], cb[k], err_msg=k)
        sa, sb = _h5_content(tmp_path / "one.samples.h5"), _h5_content(tmp_path / "two.samples.h5")
        for k in sa:
            np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    assert not list(tmp_path.glob(".*"))  # no scratch or temporary file left behind


def test_auto_workers_is_one_for_a_single_chunk_and_the_cpus_otherwise(tmp_path):
    import os

    assert resolve_workers("auto", single_chunk=True) == 1
    assert resolve_workers("auto") == len(os.sched_getaffinity(0))
    assert resolve_workers(3) == 3 and resolve_workers("2") == 2
    for bad in (0, "0", "-1", "two", "1.5"):
        with pytest.raises(PointaeError, match="--workers must be a positive integer or 'auto'"):
            resolve_workers(bad)
    src = tmp_path / "t.h5"
    tiny_traces(n=12, n_loci=20, seed=2, missing=0.1).save(src)
    assert impute_file(src, tmp_path / "o.h5")["workers"] == 1  # one chunk: no worker processes
    # an HDF5 input of two chunks never starts more than two workers
    assert resolve_workers("auto") < 2 or impute_file(src, tmp_path / "p.h5", chunk_size=6)["workers"] == 2


def test_cli_rejects_a_bad_workers_value_in_one_line(tmp_path):
    src = tmp_path / "t.h5"
    tiny_traces(n=5, n_loci=20, seed=2, missing=0.1).save(src)
    r = runner.invoke(app, ["impute", str(src), "--out", str(tmp_path / "o.h5"), "--workers", "zero"])
    assert r.exit_code == 1
    assert "--workers must be a positive integer or 'auto'" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o.h5").exists()


class FailsOnFarTraces(nn.Module):
    """The shipped imputer, but a batch with a coordinate beyond 1e6 raises (a bad chunk), or
    with ``die`` ends its process at once (a worker killed, e.g. out of memory)."""

    def __init__(self, inner: nn.Module, die: bool = False):
        super().__init__()
        self.inner = inner
        self.die = die

    @property
    def config(self):
        return self.inner.config

    def forward(self, coords: torch.Tensor, scale):
        if bool((coords.nan_to_num().abs() > 1e6).any()):
            if self.die:
                import os

                os._exit(3)
            raise PointaeError("bad chunk: a trace lies beyond 1e6")
        return self.inner(coords, scale)


@pytest.mark.parametrize(("suffix", "die"), [("h5", False), ("csv", False), ("h5", True)])
def test_a_worker_error_is_one_line_with_no_output_left(tmp_path, monkeypatch, suffix, die):
    from pointae.api import PointAE
    from pointae.impute.api import LoadedImputer, load_imputer

    shipped = load_imputer(None)
    failing = LoadedImputer(FailsOnFarTraces(shipped.model, die), shipped.meta, "failing")
    t = tiny_traces(n=30, n_loci=20, seed=3, missing=0.15)
    coords = t.coords.copy()
    coords[25] += 5e6  # the fourth chunk of 8 traces is bad
    src = tmp_path / f"t.{suffix}"
    t._replace(coords=coords).save(src) if suffix == "h5" else __import__(
        "pointae.data.io", fromlist=["write_traces"]
    ).write_traces(t._replace(coords=coords), src)
    monkeypatch.setattr(PointAE, "as_imputer", lambda self: failing)
    out = tmp_path / f"o.{suffix}"
    r = runner.invoke(
        app, ["impute", str(src), "--out", str(out), "--chunk-size", "8", "--workers", "2", "--samples", "2"]
    )
    assert r.exit_code == 1, r.output
    want = f"{src}: an impute worker process died" if die else "bad chunk: a trace lies beyond 1e6"
    assert want in r.output.replace("\n", "") and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) <= 2  # one line (wrapped at 80 columns at most once)
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]  # no output, samples or scratch


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="glibc only")
def test_malloc_tuning_applies_on_glibc():
    from pointae.impute.stream import tune_malloc

    assert tune_malloc() is True


def test_workers_from_a_script_without_a_main_guard(tmp_path):
    """spawn/forkserver children normally re-run the caller's script: impute_file's do not."""
    import os
    import subprocess
    import sys

    src = tmp_path / "t.h5"
    tiny_traces(n=12, n_loci=20, seed=2, missing=0.1).save(src)
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import pathlib\n"
        "from pointae.impute.stream import impute_file\n"
        f"log = pathlib.Path({str(tmp_path / 'runs.log')!r})\n"
        "log.write_text(log.read_text() + 'x' if log.exists() else 'x')\n"
        f"info = impute_file({str(src)!r}, {str(tmp_path / 'o.h5')!r}, chunk_size=4, workers=2)\n"
        "print('workers', info['workers'])\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "workers 2" in p.stdout
    assert (tmp_path / "runs.log").read_text() == "x"  # the script ran once, not again in a worker


def test_a_model_that_cannot_be_pickled_runs_in_one_process(tmp_path):
    from pointae.impute.api import LoadedImputer, load_imputer

    shipped = load_imputer(None)
    local = LoadedImputer(shipped.model, {**shipped.meta, "hook": lambda: None}, "unpicklable")
    src = tmp_path / "t.h5"
    tiny_traces(n=12, n_loci=20, seed=2, missing=0.1).save(src)
    info = impute_file(src, tmp_path / "o.h5", model=local, chunk_size=4, workers=2)
    assert info["workers"] == 1 and info["n_traces"] == 12 and info["n_imputed"] > 0


def test_cli_self_calibrate_rescales_pointae_sd_and_keeps_observed_spots_in_the_file(tmp_path):
    from pointae.data.io import read_traces, write_traces

    t = tiny_traces(n=60, n_loci=20, seed=12, missing=0.05)
    src = tmp_path / "in.csv"
    write_traces(t, src)
    outs = {}
    for flag in ([], ["--self-calibrate"]):
        out = tmp_path / f"out{len(flag)}.csv"
        r = runner.invoke(app, ["impute", str(src), "--out", str(out), "--workers", "1", *flag])
        assert r.exit_code == 0, r.output
        outs[len(flag)] = out
    plain, own = (read_traces(outs[k]) for k in (0, 1))
    sc = own.attrs["pointae_impute"]["uncertainty"]["self_calibration"]
    assert "self_calibration" not in plain.attrs["pointae_impute"]["uncertainty"]
    assert 0.5 <= sc["factor"] <= 2.0 and sc["n_spots"] >= 50
    # the same positions; pointae_sd of every imputed spot scaled by the one factor
    np.testing.assert_array_equal(own.coords, plain.coords)
    obs = ~np.isnan(t.coords)
    np.testing.assert_array_equal(own.coords[obs], t.coords[obs])  # read back from the file's text
    sd0, sd1 = plain.layers["pointae_sd"], own.layers["pointae_sd"]
    imputed = sd0 > 0
    assert imputed.any()
    np.testing.assert_allclose(sd1[imputed] / sd0[imputed], sc["factor"], rtol=1e-3)


def test_cli_self_calibrate_on_too_few_spots_is_one_line_with_no_output(tmp_path):
    from pointae.data.io import write_traces

    src = tmp_path / "few.csv"
    write_traces(tiny_traces(n=3, n_loci=12, seed=2, missing=0.1), src)
    out = tmp_path / "out.csv"
    r = runner.invoke(app, ["impute", str(src), "--out", str(out), "--self-calibrate"])
    assert r.exit_code == 1
    assert f"{src}: self-calibration needs at least 50 held-out spots" in r.output
    assert "Traceback" not in r.output and not out.exists()
