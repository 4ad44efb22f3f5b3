"""One handle: PointAE.load reads any run (autoencoder or imputer; old formats converted or refused)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pointae.api import PointAE
from pointae.config import load_config
from pointae.errors import PointaeError
from pointae.train import fit


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory, small_traces, fast):
    """A 1-epoch map autoencoder run."""
    out = tmp_path_factory.mktemp("handle") / "ae"
    return fit(load_config(overrides=[*fast, f"out={out}", "train.max_epochs=1"]), small_traces)


def _copy_run(src, dst, **edit):
    dst.mkdir()
    info = json.loads((src / "model.json").read_text())
    for k, v in edit.items():
        if v is None:
            info.pop(k, None)
        else:
            info[k] = v
    (dst / "model.json").write_text(json.dumps(info))
    (dst / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes())
    return dst


def test_new_runs_are_pointae_model_2_autoencoders(ae_run, small_traces):
    info = json.loads((ae_run / "model.json").read_text())
    assert info["format"] == "pointae-model/2" and info["kind"] == "autoencoder"
    ae = PointAE.load(ae_run)
    assert ae.kind == "autoencoder" and ae.task == "autoencode" and ae.n_loci == 16
    assert ae.param_count == info["param_count"] > 0
    # decode: the latents of a bottleneck model give back maps close to its reconstruction
    t = small_traces[:5]
    np.testing.assert_allclose(ae.decode(ae.encode(t)), ae.reconstruct(t), rtol=1e-4, atol=1e-3)


def test_legacy_run_is_converted_in_memory_not_rewritten(ae_run, small_traces, tmp_path):
    old = _copy_run(ae_run, tmp_path / "old", format="pointae-model/1", kind=None)
    before = (old / "model.json").read_bytes()
    ae = PointAE.load(old)
    assert ae.kind == "autoencoder" and ae.info["converted_from"] == "pointae-model/1"
    t = small_traces[:6]
    np.testing.assert_array_equal(ae.encode(t), PointAE.load(ae_run).encode(t))
    assert (old / "model.json").read_bytes() == before


@pytest.mark.parametrize(
    "edit, match",
    [
        ({"scale": None}, "damaged model file: no 'scale'"),
        ({"format": "pointae-model/9"}, r"not a pointae model file \(format='pointae-model/9'"),
        ({"kind": "transformer"}, "unknown model kind 'transformer'"),
        ({"repr": "no-such-encoder"}, "model.json"),
    ],
)
def test_damaged_run_is_refused_with_one_line(ae_run, tmp_path, edit, match):
    bad = _copy_run(ae_run, tmp_path / "bad", **edit)
    with pytest.raises(PointaeError, match=match) as e:
        PointAE.load(bad)
    assert "\n" not in str(e.value) and str(bad) in str(e.value)


def test_damaged_run_through_the_cli_is_one_line_exit_1(ae_run, tmp_path, small_file):
    from typer.testing import CliRunner

    from pointae.cli import app

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.json").write_text('{"format": "pointae-model/2",\n "kind": ')
    r = CliRunner().invoke(
        app, ["embed", str(tmp_path / "bad"), str(small_file), "-o", str(tmp_path / "z.npy")]
    )
    assert r.exit_code == 1, r.output
    assert r.output.count("\n") == 1 and "bad/model.json:2: invalid JSON" in r.output
    assert not (tmp_path / "z.npy").exists()


def test_imputer_runs_load_through_the_same_handle(small_traces):
    from pointae.impute.api import DEFAULT_MODEL_DIR

    imp = PointAE.load(DEFAULT_MODEL_DIR)
    assert imp.kind == "imputer" and imp.task == "inpaint"
    t = small_traces[:4]
    out = imp.impute(t)
    assert out.mask.all() and np.isfinite(out.coords).all()
    np.testing.assert_array_equal(out.coords[t.mask], t.coords[t.mask])  # observed loci are kept
    with pytest.raises(PointaeError, match="imputer run has no"):
        imp.encode(t)


def test_impute_with_an_inpainting_autoencoder_run(tmp_path, small_traces, fast, ae_run):
    with pytest.raises(PointaeError, match="'autoencode' run cannot impute"):
        PointAE.load(ae_run).impute(small_traces[:2])

    run = fit(
        load_config(overrides=[*fast, f"out={tmp_path / 'inp'}", "train.max_epochs=1", "task.name=inpaint"]),
        small_traces,
    )
    ae = PointAE.load(run)
    t = small_traces  # pointae_sd is calibrated on the input's visible spots: enough of them
    out = ae.impute(t)
    assert out.mask.all() and np.isfinite(out.coords).all()
    np.testing.assert_array_equal(out.coords[t.mask], t.coords[t.mask])
