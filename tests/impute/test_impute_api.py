"""impute_traces / load_imputer / evaluate_imputation / train_imputer and the CLI commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from pointae.cli import app
from pointae.data.traces import Traces
from pointae.errors import PointaeError
from pointae.impute.api import (
    DEFAULT_MODEL_DIR,
    evaluate_denoising,
    evaluate_imputation,
    impute_traces,
    load_imputer,
    trace_fingerprints,
    train_imputer,
)
from pointae.testing import tiny_traces

runner = CliRunner()


@pytest.fixture(scope="module")
def default():
    return load_imputer(None)


@pytest.fixture(scope="module")
def imr90(shared_data):
    from pointae.data.io import read_traces

    return read_traces(shared_data / "IMR90_chr21-18-20Mb.csv")


def test_shipped_model_is_small_safetensors_and_loads_without_pickle(default):
    from safetensors.torch import load_file

    weights = DEFAULT_MODEL_DIR / "model.safetensors"
    assert weights.stat().st_size < 2_000_000
    state = load_file(str(weights))  # raises on anything but a safetensors file
    assert set(state) == set(default.model.state_dict())
    assert default.meta["calibration"]["method"] == "median neighbour distance"
    assert len(default.train_fingerprints) > 100


def test_shipped_model_beats_linear_on_held_out_real_traces(default, imr90):
    """Quality floor on 200 IMR90 traces the shipped model never saw (skipped automatically)."""
    fp = np.array(trace_fingerprints(imr90.coords))
    unseen = np.flatnonzero(~np.isin(fp, list(default.train_fingerprints)))
    assert unseen.size >= 200
    res = evaluate_imputation(imr90[unseen[:200]], model=default, n_boot=100, place_baselines=False)
    run = res["runs"][0]
    assert res["protocol"]["excluded_training_traces"] == 0
    # measured (213 traces, seeds 0-2): ratio 0.914-0.921 (coordinates) and 0.88 (raw predicted
    # map); an untrained model is ~1.0
    assert run["pointae"]["mae"] < 0.95 * run["linear"]["mae"], run
    assert run["pointae"]["ratio_hi"] < 1.0
    assert run["pointae_map"]["mae"] < 0.92 * run["linear"]["mae"], run
    # the network's placement is a better position estimate than interpolation (the refined
    # coordinates trade some position error for the distance error the protocol scores)
    assert run["pointae_direct"]["pos_err"] < run["linear"]["pos_err"]


def test_training_traces_are_excluded_from_evaluation(default, imr90):
    fp = np.array(trace_fingerprints(imr90.coords))
    seen = np.flatnonzero(np.isin(fp, list(default.train_fingerprints)))
    with pytest.raises(PointaeError, match="used to train"):
        evaluate_imputation(imr90[seen[:20]], model=default)


@pytest.mark.parametrize("n_loci", [65, 83])
def test_impute_keeps_every_observed_spot_bit_for_bit(default, n_loci):
    t = tiny_traces(n=6, n_loci=n_loci, seed=2, missing=0.15)
    t.coords[0] = np.nan  # a trace with nothing observed stays missing
    res = impute_traces(t, model=default)
    obs = t.mask
    assert res.coords[obs].tobytes() == t.coords[obs].tobytes()
    status = res.layers["pointae_status"]
    conf = res.layers["pointae_confidence"]
    assert (status[obs] == "observed").all() and (conf[obs] == 1).all()
    assert (status[1:][~obs[1:]] == "imputed").all()
    assert (status[0] == "missing").all() and np.isnan(res.coords[0]).all()
    assert np.isfinite(res.coords[1:]).all()
    imp = status == "imputed"
    assert ((conf[imp] > 0) & (conf[imp] <= 1)).all()
    info = res.attrs["pointae_impute"]
    assert info["n_imputed"] == int(imp.sum()) and info["model"] == "default"
    assert info["scale"] == pytest.approx(t.median_neighbour_distance())
    assert res.trace_ids.tolist() == t.trace_ids.tolist()


def test_impute_works_in_microns_like_in_nm(default):
    t = tiny_traces(n=4, n_loci=30, seed=3, missing=0.2)
    a = impute_traces(t, model=default, precision="fp32")
    b = impute_traces(t.to_unit("micron"), model=default, precision="fp32")
    np.testing.assert_allclose(a.coords / 1000, b.coords, atol=1e-3)
    # in bfloat16 (the default where the CPU has it) rounding differs by a few nm at most
    c = impute_traces(t, model=default)
    d = impute_traces(t.to_unit("micron"), model=default)
    np.testing.assert_allclose(c.coords / 1000, d.coords, atol=5e-3)


def test_denoise_corrects_a_planted_outlier(default):
    t = tiny_traces(n=6, n_loci=40, seed=4, missing=0.0)
    s = t.median_neighbour_distance()
    c = t.coords.copy()
    c[2, 20] += np.float32(8 * s)
    res = impute_traces(t.with_coords(c), model=default, denoise=True)
    status = res.layers["pointae_status"]
    assert status[2, 20] == "corrected"
    assert np.linalg.norm(res.coords[2, 20] - t.coords[2, 20]) < 3 * s
    assert (status == "corrected").sum() <= 6  # few false alarms
    untouched = status == "observed"
    assert res.coords[untouched].tobytes() == c[untouched].tobytes()


def test_evaluate_denoising_reports_all_methods(default):
    t = tiny_traces(n=20, n_loci=30, seed=5, missing=0.0)
    res = evaluate_denoising(t, model=default, fraction=0.1)
    assert set(res) >= {"pointae", "neighbour_rule", "none"}
    assert res["none"]["recall"] == 0 and res["pointae"]["recall"] > 0


def test_train_imputer_writes_a_loadable_run(tmp_path):
    t = tiny_traces(n=60, n_loci=20, seed=6, missing=0.05)
    from pointae.impute.fit import FitConfig
    from pointae.impute.model import ImputerConfig

    metrics = train_imputer(
        t,
        tmp_path / "run",
        epochs=1,
        ensemble=2,
        fit_config=FitConfig(batch_size=16),
        model_config=ImputerConfig(channels=8, dilations=(1, 2)),
        log=None,
    )
    for name in ("model.safetensors", "model.json", "history.csv", "metrics.json", "split.json"):
        assert (tmp_path / "run" / name).exists()
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    assert info["format"] == "pointae-model/2" and info["kind"] == "imputer" and info["task"] == "inpaint"
    assert not (tmp_path / "run" / "imputer.json").exists()
    assert "test" in metrics and metrics["test"]["protocol"]["excluded_training_traces"] == 0
    loaded = load_imputer(tmp_path / "run")
    assert loaded.meta["split"]["n_train"] == 48 and len(loaded.train_fingerprints) == 48
    assert loaded.meta["ensemble"] == 2 and len(loaded.model.members) == 2
    res = impute_traces(t, model=tmp_path / "run")
    assert np.isfinite(res.coords).all()


def test_load_imputer_errors_are_clean(tmp_path):
    with pytest.raises(PointaeError, match="no imputer weights"):
        load_imputer(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    (tmp_path / "imputer.json").write_text("{}")  # a legacy run: converted in memory, then read
    with pytest.raises(PointaeError, match="cannot load"):
        load_imputer(tmp_path)
    (tmp_path / "model.json").write_text('{"format": "pointae-model/9", "kind": "imputer"}')
    with pytest.raises(PointaeError, match="not a pointae imputer run.*pointae-model/9"):
        load_imputer(tmp_path)
    (tmp_path / "model.json").write_text("[1, 2")
    with pytest.raises(PointaeError, match="model.json: not valid JSON"):
        load_imputer(tmp_path)


def test_legacy_imputer_runs_load_and_convert_to_the_same_model(default, tmp_path):
    """An ``imputer.json`` run (the format before pointae-model/2) loads as is and converts losslessly."""
    import shutil

    from safetensors.torch import load_file

    from pointae.impute.api import convert_legacy_run

    legacy = tmp_path / "legacy"
    legacy.mkdir()
    meta = {k: v for k, v in default.meta.items() if k not in ("format", "kind", "task")}
    (legacy / "imputer.json").write_text(json.dumps(meta))
    shutil.copy(DEFAULT_MODEL_DIR / "model.safetensors", legacy / "model.safetensors")
    old = load_imputer(legacy)
    assert old.meta["kind"] == "imputer" and old.meta["converted_from"] == "imputer.json"
    copy_dir = convert_legacy_run(legacy, tmp_path / "converted")
    assert (legacy / "imputer.json").exists() and not (copy_dir / "imputer.json").exists()
    convert_legacy_run(legacy)  # in place
    assert not (legacy / "imputer.json").exists()
    info = json.loads((legacy / "model.json").read_text())
    assert info["format"] == "pointae-model/2" and info["kind"] == "imputer"
    a, b = (
        load_file(str(DEFAULT_MODEL_DIR / "model.safetensors")),
        load_file(str(legacy / "model.safetensors")),
    )
    assert set(a) == set(b) and all(a[k].equal(b[k]) for k in a)
    t = tiny_traces(n=6, n_loci=30, seed=9, missing=0.2)
    ref = impute_traces(t, model=default, precision="fp32")
    for run in (legacy, copy_dir):
        res = impute_traces(t, model=run, precision="fp32")
        assert res.coords.tobytes() == ref.coords.tobytes()


@pytest.mark.parametrize("suffix", ["fofct.csv", "bintu.csv", "h5"])
def test_cli_impute_roundtrip_same_format(shared_data, tmp_path, suffix):
    from pointae.data.io import read_traces, write_traces

    src = tmp_path / f"excerpt.{suffix}"  # a real excerpt (40 traces x 65 loci), small for speed
    write_traces(read_traces(shared_data / "IMR90_chr21-18-20Mb_first300.fofct.csv")[:40], src)
    out = tmp_path / "imputed.out"  # no telling suffix: the input's format is used
    r = runner.invoke(app, ["impute", str(src), "--out", str(out)])
    assert r.exit_code == 0, r.output
    a, b = read_traces(src), read_traces(out)
    assert b.attrs["format"] == a.attrs["format"]
    obs = a.mask
    np.testing.assert_array_equal(b.coords[obs], a.coords[obs])
    assert b.mask.sum() > a.mask.sum() and b.n_loci == 65
    assert (b.layers["pointae_status"][~obs] == "imputed").all()
    if suffix == "bintu.csv":
        assert "pointae" in out.read_text().splitlines()[0] and "imputed" in out.read_text().splitlines()[0]
    else:
        assert "pointae_impute" in b.attrs


def test_cli_impute_bad_input_is_one_clean_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("hello\n")
    r = runner.invoke(app, ["impute", str(bad), "--out", str(tmp_path / "o.csv")])
    assert r.exit_code == 1
    assert "Traceback" not in r.output and not (tmp_path / "o.csv").exists()


def test_cli_evaluate_imputation_json(tmp_path):
    t = tiny_traces(n=30, n_loci=25, seed=7, missing=0.04)
    src = tmp_path / "t.h5"
    t.save(src)
    js = tmp_path / "res.json"
    r = runner.invoke(app, ["evaluate-imputation", str(src), "--json", str(js), "--runs", "2"])
    assert r.exit_code == 0, r.output
    res = json.loads(js.read_text())
    assert res["protocol"]["seeds"] == [0, 1]
    for m in ("pointae", "linear", "knn", "population_median"):
        assert np.isfinite(res["runs"][0][m]["mae"])
    assert "linear" in r.output and "pointae" in r.output


def test_traces_container_roundtrip_of_layers(default, tmp_path):
    t = tiny_traces(n=5, n_loci=20, seed=8, missing=0.2)
    res = impute_traces(t, model=default)
    p = tmp_path / "x.h5"
    res.save(p)
    back = Traces.load(p)
    assert (back.layers["pointae_status"] == res.layers["pointae_status"]).all()
