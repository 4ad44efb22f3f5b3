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
    assert default.meta["calibration"]["method"].startswith("median neighbour distance")
    assert len(default.train_fingerprints) > 100


def test_shipped_model_beats_linear_on_held_out_real_traces(default, imr90):
    """Quality floor on 200 IMR90 traces the shipped model never saw (skipped automatically)."""
    fp = np.array(trace_fingerprints(imr90.coords))
    unseen = np.flatnonzero(~np.isin(fp, list(default.train_fingerprints)))
    assert unseen.size >= 200
    res = evaluate_imputation(imr90[unseen[:200]], model=default, n_boot=100, place_baselines=False)
    run = res["runs"][0]
    assert res["protocol"]["excluded_training_traces"] == 0
    # measured (213 traces, seeds 0-2, the shipped single ReLU member): ratio 0.929-0.932
    # (coordinates) and 0.89 (raw predicted map); an untrained model is ~1.0
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


@pytest.mark.parametrize(
    ("src_name", "out_name", "want"),
    [
        ("in.fofct.csv", "out.h5", "h5"),  # a text input written to an .h5 name gets HDF5
        ("in.h5", "out.csv", "csv"),  # an HDF5 input written to a .csv name gets text
        ("in.bintu.csv", "out.csv", "bintu"),  # text to text keeps the input's own layout
    ],
)
def test_cli_impute_output_format_never_contradicts_the_suffix(tmp_path, src_name, out_name, want):
    from pointae.data.io import read_traces, write_traces

    t = tiny_traces(n=8, n_loci=20, seed=3, missing=0.2)
    src, out = tmp_path / src_name, tmp_path / out_name
    write_traces(t, src)
    r = runner.invoke(app, ["impute", str(src), "--out", str(out)])
    assert r.exit_code == 0, r.output
    is_hdf5 = out.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    assert is_hdf5 == (want == "h5")
    back = read_traces(out)
    assert back.attrs["format"] == want
    np.testing.assert_array_equal(back.coords[t.mask], t.coords[t.mask])


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


# ------------------------------------------------ inpainting autoencoder runs as imputers
_FAST_AE = [
    "model.width=4",
    "model.latent_dim=4",
    "train.batch_size=16",
    "train.progress=false",
    "train.threads=1",
    "train.warmup_steps=2",
    "train.max_epochs=2",
]


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    """A tiny inpainting map autoencoder trained by ``pointae train`` on 120 traces x 20 loci."""
    d = tmp_path_factory.mktemp("ae")
    src = d / "traces.h5"
    tiny_traces(n=120, n_loci=20, seed=11, missing=0.05).save(src)
    run = d / "run"
    args = ["train", "--task", "inpaint", "--repr", "map", "--data", str(src), "--out", str(run)]
    r = runner.invoke(app, args + [x for s in _FAST_AE for x in ("--set", s)])
    assert r.exit_code == 0, r.output
    assert json.loads((run / "model.json").read_text()).get("kind", "autoencoder") == "autoencoder"
    return src, run


def test_run_imputer_places_hidden_loci_from_a_perfect_map():
    """The adapter's placement (the imputer's stress updates against the run's map) with an oracle
    map recovers the hidden loci far better than linear interpolation, observed loci exact."""
    import torch

    from pointae.baselines import interpolate_missing
    from pointae.data.transforms import distance_maps
    from pointae.impute.adapter import RunImputer
    from pointae.models.autoencoder import AEOutput

    truth = tiny_traces(n=8, n_loci=24, seed=12, missing=0.0)
    scale = truth.median_neighbour_distance()
    hidden = np.zeros(truth.mask.shape, bool)
    hidden[:, [5, 6, 12, 17]] = True
    inp = truth.coords.copy()
    inp[hidden] = np.nan
    true_maps = torch.from_numpy(distance_maps(truth.coords) / scale)

    class Oracle(torch.nn.Module):
        def forward(self, x):
            return AEOutput(latent=torch.zeros(len(x), 1), recon=true_maps)

    model = RunImputer(Oracle(), lambda x, train=False: x, n_loci=24, source="oracle")
    with torch.no_grad():
        out = model(torch.from_numpy(inp), scale)
    xyz = out["coords"].numpy()
    assert xyz[~hidden].tobytes() == truth.coords[~hidden].tobytes()
    lin = interpolate_missing(inp)

    def err(pred):  # hidden-to-observed distance error
        d, t = distance_maps(pred), distance_maps(truth.coords)
        pairs = hidden[:, :, None] & ~hidden[:, None, :]
        return np.abs(d - t)[pairs].mean()

    assert err(xyz) < 0.25 * err(lin), (err(xyz), err(lin))
    assert (out["spread"].numpy()[hidden] > 0).all()
    with pytest.raises(PointaeError, match="trained on traces of 24 loci, the input has 23"):
        model(torch.from_numpy(inp[:, :23]), scale)


def test_inpainting_run_and_shipped_imputer_go_through_impute_and_evaluate(ae_run, tmp_path):
    from pointae.data.io import read_traces

    src, run = ae_run
    # impute --model accepts the autoencoder run: observed spots bit for bit, calibrated pointae_sd
    out = tmp_path / "imputed.h5"
    r = runner.invoke(app, ["impute", str(src), "--model", str(run), "--out", str(out)])
    assert r.exit_code == 0, r.output
    a, b = read_traces(src), read_traces(out)
    assert b.coords[a.mask].tobytes() == a.coords[a.mask].tobytes()
    imp = b.layers["pointae_status"] == "imputed"
    assert imp.sum() == (~a.mask).sum() and np.isfinite(b.coords).all()
    assert (b.layers["pointae_sd"][imp] > 0).all() and np.isfinite(b.layers["pointae_sd"][imp]).all()
    prov = b.attrs["pointae_impute"]
    assert prov["model"] == str(run) and len(prov["model_sha1"]) == 40
    # evaluate-imputation compares both on the same hidden spots of the traces neither saw
    js = tmp_path / "res.json"
    args = ["evaluate-imputation", str(src), "--model", "default", "--model", str(run), "--json", str(js)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    res = json.loads(js.read_text())
    split = json.loads((run / "split.json").read_text())
    assert res["protocol"]["excluded_training_traces"] == len(split["train"]) + len(split["val"])
    assert set(res["protocol"]["models"]) == {"shipped", "run"}
    one = res["runs"][0]
    for m in ("shipped", "run", "linear", "kriging", "knn"):
        assert np.isfinite(one[m]["mae"]), m
    assert res["calibration"]["run"]["n_spots"] == res["calibration"]["shipped"]["n_spots"] > 0
    assert "run's 12 validation traces" in r.output and "shipped" in r.output
    # the same draw as the shipped model alone on the traces the run never saw: same hidden spots
    # (linear interpolation scores exactly the same); the model's score differs only through the
    # length unit, calibrated on all traces of the file vs on the unseen ones only
    from pointae.impute.api import evaluate_imputation, load_imputer

    fp = np.array(trace_fingerprints(a.coords))
    unseen = np.flatnonzero(~np.isin(fp, list(load_imputer(run).train_fingerprints)))
    alone = evaluate_imputation(a[unseen], model=None, n_boot=50, calibrate=False)
    assert alone["runs"][0]["_info"]["n_hidden"] == one["_info"]["n_hidden"]
    assert alone["runs"][0]["linear"]["mae"] == one["linear"]["mae"]
    assert alone["runs"][0]["pointae"]["mae"] == pytest.approx(one["shipped"]["mae"], rel=2e-3)


def test_only_inpainting_runs_impute(ae_run, tmp_path):
    import shutil

    src, run = ae_run
    other = tmp_path / "denoise_run"
    shutil.copytree(run, other)
    info = json.loads((other / "model.json").read_text())
    (other / "model.json").write_text(json.dumps(dict(info, task="denoise")))
    r = runner.invoke(app, ["impute", str(src), "--model", str(other), "--out", str(tmp_path / "o.h5")])
    assert r.exit_code == 1 and "'denoise' run cannot impute" in r.output and "Traceback" not in r.output
    wide = tmp_path / "wide.h5"
    tiny_traces(n=10, n_loci=25, seed=13, missing=0.1).save(wide)
    r = runner.invoke(app, ["impute", str(wide), "--model", str(run), "--out", str(tmp_path / "o.h5")])
    assert r.exit_code == 1 and "20 loci, the input has 25" in r.output
    assert not (tmp_path / "o.h5").exists()


def test_train_task_inpaint_on_a_file_trains_the_registered_imputer(tmp_path):
    """``train --task inpaint --data FILE``, its alias ``train-imputer`` and ``train_imputer()``
    train the same model (bit for bit) into the shared run format, with the config machinery."""
    from safetensors.torch import load_file

    from pointae.impute.fit import FitConfig, ImputerRunConfig, load_imputer_config
    from pointae.impute.model import ImputerConfig
    from pointae.models.registry import MODELS, model_part

    assert (
        MODELS.meta("imputer")["tasks"] == ("inpaint",)
        and model_part("imputer", "config") is ImputerRunConfig
    )
    t = tiny_traces(n=60, n_loci=20, seed=14, missing=0.05)
    src = tmp_path / "t.h5"
    t.save(src)
    sets = ["train.epochs=1", "model.channels=8", "model.dilations=[1, 2]", "train.batch_size=16"]
    flags = [x for s in sets for x in ("--set", s)]
    r = runner.invoke(
        app, ["train", "--task", "inpaint", "--data", str(src), "--out", str(tmp_path / "a"), *flags]
    )
    assert r.exit_code == 0, r.output
    assert "held-out test traces" in r.output and "ratio" in r.output
    r = runner.invoke(
        app, ["train-imputer", str(src), "--out", str(tmp_path / "b"), "--epochs", "1", *flags[2:]]
    )
    assert r.exit_code == 0, r.output
    fc, mc = FitConfig(batch_size=16), ImputerConfig(channels=8, dilations=(1, 2))
    train_imputer(t, tmp_path / "c", epochs=1, fit_config=fc, model_config=mc, log=None)
    w = [load_file(str(tmp_path / x / "model.safetensors")) for x in "abc"]
    assert set(w[0]) == set(w[1]) == set(w[2])
    assert all(w[0][k].equal(w[1][k]) and w[0][k].equal(w[2][k]) for k in w[0])
    info = json.loads((tmp_path / "a" / "model.json").read_text())
    assert (info["format"], info["kind"], info["model"]["dilations"]) == (
        "pointae-model/2",
        "imputer",
        [1, 2],
    )
    cfg = load_imputer_config(tmp_path / "a" / "config.yaml")
    assert cfg.to_dict() == info["config"] and cfg.model.dilations == (1, 2) and cfg.train.epochs == 1
    # autoencoder keys are refused with a pointer to the autoencoder; --repr trains one
    r = runner.invoke(app, ["train", "--task", "inpaint", "--data", str(src), "--set", "train.max_epochs=1"])
    assert r.exit_code == 1 and "unknown config key 'train.max_epochs'" in r.output
    assert "--model autoencoder" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["train", "--model", "imputer", "--repr", "map", "--data", str(src)])
    assert r.exit_code == 1 and "drop --repr" in r.output
