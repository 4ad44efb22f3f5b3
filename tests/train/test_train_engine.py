from __future__ import annotations

import json
import math
import os
import pickle

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from pointae.api import PointAE
from pointae.config import load_config
from pointae.errors import PointaeError
from pointae.train import evaluate, fit, load_model, resume_config, safe_load_checkpoint


@pytest.fixture
def make_cfg(tmp_path, fast):
    """Build a tiny run config writing to ``tmp_path / name``."""

    def make(*extra, name="run"):
        return load_config(overrides=[*fast, f"out={tmp_path / name}", *extra])

    return make


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, small_traces, fast):
    """One 2-epoch denoise run on the map encoder, shared by several tests."""
    out = tmp_path_factory.mktemp("smoke")
    ae = PointAE({"task": {"name": "denoise"}}, out=out / "run", overrides=[*fast, "train.max_epochs=2"])
    assert "untrained" in repr(ae)
    ae.fit(small_traces)
    assert ae.task == "denoise" and ae.latent_dim == 4 and ae.metrics["task"] == "denoise"
    return ae.run_dir


def test_run_directory_contents(smoke_run, small_traces):
    names = set(os.listdir(smoke_run))
    need = {
        "config.yaml",
        "split.json",
        "model.safetensors",
        "model.json",
        "history.csv",
        "metrics.json",
        "last.ckpt",
    }
    assert need <= names
    hist = pd.read_csv(smoke_run / "history.csv")
    assert list(hist["epoch"]) == [0, 1]
    assert np.isfinite(hist["train_loss_epoch"]).all() and np.isfinite(hist["val_loss"]).all()
    split = json.loads((smoke_run / "split.json").read_text())
    ids = split["train"] + split["val"] + split["test"]
    assert sorted(ids) == sorted(small_traces.trace_ids) and len(split["test"]) == 10
    m = json.loads((smoke_run / "metrics.json").read_text())
    assert m["schema"] == "pointae.evaluate/1"
    assert m["task"] == "denoise" and m["headline"] == "mae_changed" and m["n_traces"] == 10
    for block in [m["model"], *m["baselines"].values()]:
        assert block["n_pairs"] > 0 and block["n_pairs_changed"] > 0
        assert math.isfinite(block["mae_changed"]) and math.isfinite(block["mae"])
    assert set(m["baselines"]) == {"corrupted_input", "neighbour_rule"}
    # outliers are displaced by 2-5 median bonds: uncorrected, the pairs touching them are far off
    assert m["baselines"]["corrupted_input"]["mae_changed"] > m["baselines"]["neighbour_rule"]["mae_changed"]
    assert m["param_count"] > 0 and m["latent_dim"] == 4
    assert m["training"]["epochs"] == 2 and m["training"]["train_samples_per_s"] > 0
    assert 0 <= m["model_checks"]["triangle_violation_fraction"] <= 1
    # errors are in the data's unit (nm): a typical bond is ~ scale nm, errors of that order
    assert 0.01 * m["scale"] < m["model"]["mae"] < 100 * m["scale"]


def test_model_rebuilds_from_json_and_safetensors_only(smoke_run, small_traces, tmp_path):
    info = json.loads((smoke_run / "model.json").read_text())
    assert info["n_loci"] == 16 and info["scale"] > 0 and info["pointae_version"]
    # copy only the two model files elsewhere: no YAML, no checkpoint needed
    for f in ("model.json", "model.safetensors"):
        (tmp_path / f).write_bytes((smoke_run / f).read_bytes())
    model, _ = load_model(tmp_path)
    ae = PointAE.load(smoke_run)
    test = small_traces[:7]
    z = ae.encode(test, batch_size=3)
    assert z.shape == (7, 4) and z.dtype == np.float32 and np.isfinite(z).all()
    maps = ae.denoise(test)
    assert maps.shape == (7, 16, 16)
    from pointae.testing import assert_valid_map

    assert_valid_map(maps, atol=1e-3)
    # same weights -> same outputs from the copy
    ae2 = PointAE.load(tmp_path)
    np.testing.assert_allclose(ae2.reconstruct(test), maps, rtol=1e-5, atol=1e-4)
    # data units: maps are comparable to the input's distances (nm), not normalised
    true = small_traces[:7].distance_maps()
    assert 0.2 < np.nanmedian(maps[np.isfinite(true)]) / np.nanmedian(true) < 5
    with pytest.raises(PointaeError, match="trained for 'denoise'"):
        ae.inpaint(test)
    with pytest.raises(PointaeError, match="16 loci"):
        from pointae.testing import tiny_traces

        ae.encode(tiny_traces(n=2, n_loci=12))


def test_evaluate_is_reproducible(smoke_run, small_traces):
    a = evaluate(smoke_run, small_traces[:12], euclidean=False)
    b = evaluate(smoke_run, small_traces[:12], euclidean=False)
    assert a["model"] == b["model"] and a["baselines"] == b["baselines"]


def test_existing_run_is_not_overwritten(smoke_run, small_traces, fast):
    cfg = load_config(overrides=[*fast, f"out={smoke_run}"])
    with pytest.raises(PointaeError, match="already holds a run"):
        fit(cfg, small_traces)


@pytest.mark.parametrize("loss", ["mse", "log_mse"])
def test_overfit_one_batch_lowers_loss(small_traces, loss):
    """The engine's module + data module drive the loss far down on one fixed batch (also with the
    contact-sensitive log loss: finite gradients through the decoder's zero diagonal)."""
    from pointae.data.reprs import build_repr
    from pointae.models import build_model
    from pointae.tasks import build_task
    from pointae.train import PointAEModule, TracesDataModule

    cfg = load_config(
        overrides=[
            "model.width=8",
            "train.lr=1e-2",
            "train.warmup_steps=0",
            "train.scheduler=none",
            f"task.loss={loss}",
        ]
    )
    coords = small_traces.coords[:16] / np.float32(small_traces.median_neighbour_distance())
    task, rep = build_task(cfg.task), build_repr("map")
    torch.manual_seed(0)
    model = build_model(
        "map", "autoencode", 16, 8, rep=rep, widths=[8, 8, 16, 16], decoder_widths=[16, 16, 8, 8]
    )
    module = PointAEModule(model, task, cfg)
    dm = TracesDataModule({"train": coords, "val": coords}, task, rep, 16, 0, 0)
    losses = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    trainer = L.Trainer(
        max_epochs=40,
        callbacks=[Record()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        accelerator="cpu",
    )
    trainer.fit(module, datamodule=dm)
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    assert np.isfinite(losses).all()
    print(f"overfit: first {first:.4f} last {last:.4f}")
    assert last < 0.25 * first, (first, last)


class Boom(L.Callback):
    """Simulates a crash after ``at`` optimisation steps."""

    def __init__(self, at: int):
        self.at = at

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.at:
            raise RuntimeError("simulated crash")


def _last_state(run_dir):
    return safe_load_checkpoint(run_dir / "last.ckpt")["state_dict"]


def test_resume_after_crash_matches_uninterrupted_run(tmp_path, small_traces, make_cfg):
    # 33 train traces / batch 16 = 3 steps per epoch; crash in the middle of epoch 3 (step 7)
    ref = fit(make_cfg("train.max_epochs=3", "task.name=inpaint", name="ref"), small_traces)
    cfg = make_cfg("train.max_epochs=3", "task.name=inpaint", name="crash")
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(cfg, small_traces, callbacks=[Boom(7)])
    run = tmp_path / "crash"
    assert (run / "last.ckpt").is_file() and not (run / "metrics.json").exists()
    assert safe_load_checkpoint(run / "last.ckpt")["global_step"] == 6  # end of epoch 2
    out = fit(resume_config(run), small_traces, resume=True)
    a, b = _last_state(ref), _last_state(out)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    hist = pd.read_csv(out / "history.csv")
    assert list(hist["epoch"]) == [0, 1, 2]
    m = json.loads((out / "metrics.json").read_text())
    assert m["training"]["global_step"] == 9 and m["training"]["resumed"] is True


def test_malicious_pickle_checkpoint_is_refused(tmp_path, small_traces, make_cfg):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    run = tmp_path / "evil"
    run.mkdir()
    cfg = make_cfg("train.max_epochs=1", name="evil")
    from pointae.config import save_config

    save_config(cfg, run / "config.yaml")
    for payload in (pickle.dumps({"state_dict": Evil()}), b"not a checkpoint at all"):
        (run / "last.ckpt").write_bytes(payload)
        with pytest.raises(PointaeError, match="last.ckpt"):
            fit(resume_config(run), small_traces, resume=True)
        assert not marker.exists()
    # also refused through the plain loader, with torch's own zip format carrying code
    torch.save({"state_dict": {}, "x": Evil()}, run / "zip.ckpt", _use_new_zipfile_serialization=True)
    with pytest.raises(PointaeError, match="refusing"):
        safe_load_checkpoint(run / "zip.ckpt")
    assert not marker.exists()


def test_missing_resume_checkpoint(tmp_path, small_traces, make_cfg):
    with pytest.raises(PointaeError, match="no checkpoint"):
        fit(make_cfg(name="nothing"), small_traces, resume=True)


def test_default_data_is_simulated_once_and_cached(tmp_path, monkeypatch):
    import sys
    import types

    from pointae.testing import tiny_traces
    from pointae.train import load_traces

    calls = []

    def fake_mixture(mixture, n, n_loci, seed):
        calls.append((dict(mixture), n, n_loci, seed))
        return tiny_traces(n=n, n_loci=n_loci, seed=seed)

    # a stand-in simulator module (works whether or not pointae.sim is installed)
    monkeypatch.setitem(sys.modules, "pointae.sim", types.SimpleNamespace(simulate_mixture=fake_mixture))
    monkeypatch.setenv("POINTAE_CACHE", str(tmp_path / "cache"))
    cfg = load_config(overrides=["data.n_traces=12", "data.n_loci=10"])
    a = load_traces(cfg)
    b = load_traces(cfg)
    assert calls == [({"wt": 0.5, "no-cohesin": 0.5}, 12, 10, 0)]
    np.testing.assert_array_equal(a.coords, b.coords)
    assert list(a.trace_ids) == list(b.trace_ids)
    load_traces(load_config(overrides=["data.n_traces=12", "data.n_loci=10", "data.sim_seed=1"]))
    assert len(calls) == 2  # other settings, other cache entry


class PoisonGradient(L.Callback):
    """Makes one gradient NaN from optimisation step ``at`` on (a numerically broken run)."""

    def __init__(self, at: int):
        self.at = at

    def on_after_backward(self, trainer, pl_module):
        if trainer.global_step >= self.at:
            next(pl_module.parameters()).grad.fill_(float("nan"))


def test_non_finite_gradient_stops_training_keeps_last_finite_checkpoint(tmp_path, small_traces, make_cfg):
    # 3 steps per epoch: epoch 0 ends with last.ckpt at step 3; step 4 gets a NaN gradient
    cfg = make_cfg("train.max_epochs=3", name="nan")
    with pytest.raises(PointaeError) as ei:
        fit(cfg, small_traces, callbacks=[PoisonGradient(4)])
    msg = str(ei.value)
    assert "\n" not in msg and "non-finite" in msg and "likely cause" in msg
    assert "last finite checkpoint is kept" in msg and "epoch 1, step 4" in msg
    ckpt = safe_load_checkpoint(tmp_path / "nan" / "last.ckpt")
    assert ckpt["global_step"] == 3
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert not (tmp_path / "nan" / "model.safetensors").exists()


def test_non_finite_message_names_the_coordinate_range_when_a_spot_is_far_out(small_traces, make_cfg):
    c = small_traces.coords.copy()
    c[0, 3] = (5e8, 0.0, 0.0)  # inside the readers' limit (1e9), a million map scales away
    far = small_traces._replace(coords=c)
    cause = r"likely cause: the coordinate range: the largest \|coordinate\| is 5e\+08"
    with pytest.raises(PointaeError, match=cause):
        fit(make_cfg("train.max_epochs=1", name="far"), far, callbacks=[PoisonGradient(1)])


def test_train_names_are_the_functions_whatever_was_imported_first():
    """``pointae.train.evaluate`` / ``.fit`` are also submodules: importing those first used to
    leave ``from pointae.train import evaluate`` returning the module (order-dependent)."""
    import subprocess
    import sys

    code = (
        "import pointae.train.fit, pointae.train.evaluate\n"
        "from pointae.train import evaluate, fit\n"
        "assert callable(evaluate) and callable(fit), (evaluate, fit)\n"
        "import sys; assert sys.modules['pointae.train.evaluate'].__name__ == 'pointae.train.evaluate'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
