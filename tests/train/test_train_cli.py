from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from pointae.cli import app

runner = CliRunner()


def _sets(fast, *extra):
    out = []
    for s in [*fast, *extra]:
        out += ["--set", s]
    return out


@pytest.mark.parametrize("rep", ["map", "graph", "voxel"])
def test_train_each_repr_one_epoch(rep, tmp_path, small_file, fast):
    out = tmp_path / f"run-{rep}"
    extra = ["model.repr_options.grid=12"] if rep == "voxel" else []
    r = runner.invoke(
        app,
        ["train", "--repr", rep, "--task", "inpaint", "--data", str(small_file), "--out", str(out)]
        + _sets(fast, "train.max_epochs=1", *extra),
    )
    assert r.exit_code == 0, r.output
    assert "run:" in r.output and "linear_interp" in r.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["repr"] == rep and m["task"] == "inpaint"
    assert m["scored"] == "hidden pairs"
    assert m["model"]["n_pairs"] > 0 and m["model"]["n_pairs"] == m["baselines"]["linear_interp"]["n_pairs"]
    assert (out / "model.safetensors").stat().st_size > 0


def test_unknown_config_key_is_a_clean_error(tmp_path, small_file):
    r = runner.invoke(
        app, ["train", "--data", str(small_file), "--out", str(tmp_path / "x"), "--set", "train.foo=1"]
    )
    assert r.exit_code == 1
    assert "unknown config key 'train.foo'" in r.output and "Traceback" not in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  encodr: map\n")
    r = runner.invoke(app, ["train", "--data", str(small_file), "--config", str(bad)])
    assert r.exit_code == 1 and "model.encodr" in r.output and str(bad) in r.output
    r = runner.invoke(app, ["train", "--data", str(tmp_path / "missing.h5")])
    assert r.exit_code == 1 and "missing.h5" in r.output
    assert not (tmp_path / "x").exists()


def test_resume_via_cli(tmp_path, small_file, fast):
    out = tmp_path / "run"
    base = ["train", "--data", str(small_file), "--out", str(out)]
    r = runner.invoke(app, base + _sets(fast, "train.max_epochs=1"))
    assert r.exit_code == 0, r.output
    # train one more epoch on top of the saved checkpoint
    r = runner.invoke(app, ["train", "--out", str(out), "--resume", "--set", "train.max_epochs=2"])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["training"]["epochs"] == 2 and m["training"]["resumed"]
    r = runner.invoke(app, ["train", "--out", str(out), "--resume", "--repr", "graph"])
    assert r.exit_code == 1 and "model.repr=map" in r.output
    r = runner.invoke(app, ["train", "--out", str(tmp_path / "none"), "--resume"])
    assert r.exit_code == 1 and "nothing to resume" in r.output


@pytest.mark.skipif(shutil.which("pointae") is None, reason="pointae console script not installed")
def test_ddp_two_cpu_processes(tmp_path, small_file, fast):
    """Lightning's DDP strategy (gloo) with 2 CPU processes, launched from the CLI."""
    out = tmp_path / "ddp"
    cmd = [shutil.which("pointae"), "train", "--data", str(small_file), "--out", str(out)]
    cmd += _sets(
        [f for f in fast if not f.startswith("train.threads")],
        "train.max_epochs=1",
        "train.strategy=ddp",
        "train.devices=2",
        "train.accelerator=cpu",
        "train.threads=1",
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT"):
        env.pop(var, None)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["training"]["world_size"] == 2
    assert m["training"]["epochs"] == 1
    assert sys.executable  # the launcher re-ran the same interpreter


def test_train_cli_huge_learning_rate_is_one_line_exit_1(tmp_path, small_file, fast):
    out = tmp_path / "run"
    args = ["train", "--data", str(small_file), "--out", str(out)]
    r = runner.invoke(app, args + _sets(fast, "train.max_epochs=2", "train.lr=1e30"))
    assert r.exit_code == 1, r.output
    err = [x for x in r.output.splitlines() if x.startswith("error:")]
    assert len(err) == 1 and "non-finite" in err[0] and "train.lr" in err[0], r.output
    assert "Traceback" not in r.output and not (out / "model.safetensors").exists()


def test_train_cli_spot_at_3e38_is_treated_as_missing_and_gives_finite_weights(tmp_path, small_traces, fast):
    """Issue 11 item 3: one locus at 3e38 (finite in float32) used to give a NaN model with exit 0."""
    from safetensors.numpy import load_file

    data = tmp_path / "huge.csv"
    small_traces.save(data)  # long CSV: trace_id,locus,x,y,z
    lines = data.read_text().splitlines()
    tid = small_traces.trace_ids[3]
    row = next(i for i, x in enumerate(lines) if x.split(",")[:2] == [tid, "4"])
    f = lines[row].split(",")
    lines[row] = ",".join(f[:2] + ["3e38", "0", "0"] + f[5:])
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(out)]
    r = runner.invoke(app, args + _sets(fast, "train.max_epochs=1"))
    assert r.exit_code == 0, r.output
    assert "1 spot(s) treated as missing" in r.output and "3e+38" in r.output
    w = load_file(out / "model.safetensors")
    assert all(np.isfinite(v).all() for v in w.values())
    hist = (out / "history.csv").read_text().splitlines()
    assert len(hist) == 2 and ",," not in hist[1].split(",lr")[0]
