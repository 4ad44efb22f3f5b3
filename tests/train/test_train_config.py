from __future__ import annotations

from pathlib import Path

import pytest

from pointae.config import RunConfig, load_config, parse_override, save_config
from pointae.errors import PointaeError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_defaults_and_overrides():
    cfg = load_config(
        overrides=["train.max_epochs=5", "model.repr=graph", "train.lr=1e-3", "train.devices=2"]
    )
    assert cfg.train.max_epochs == 5 and cfg.model.repr == "graph"
    assert cfg.train.lr == pytest.approx(1e-3) and isinstance(cfg.train.lr, float)
    assert cfg.train.devices == 2
    assert cfg.task.name == "autoencode"  # untouched default


def test_int_accepted_for_float_and_dict_keys_merge():
    cfg = load_config(
        overrides=["train.lr=1", "model.hparams.widths=[4, 4, 4, 4]", "model.hparams.pool_to=2"]
    )
    assert cfg.train.lr == 1.0
    assert cfg.model.hparams == {"widths": [4, 4, 4, 4], "pool_to": 2}


@pytest.mark.parametrize(
    "override, needle",
    [
        ("train.foo=1", "unknown config key 'train.foo'"),
        ("nosection.x=1", "unknown config key 'nosection'"),
        ("train.lr=abc", "'train.lr'"),
        ("train.max_epochs=1.5", "'train.max_epochs'"),
        ("model.repr=pointcloud", "model.repr must be one of"),
        ("task.loss=log", "task.loss must be one of mse, l1, log_mse, log_l1, got 'log'"),
        ("task.log_eps=0", "task.log_eps must be a finite number > 0"),
        ("task.log_eps=-0.1", "task.log_eps must be a finite number > 0"),
        ("train.max_epochs", "section.key=value"),
    ],
)
def test_bad_overrides(override, needle):
    with pytest.raises(PointaeError, match=None) as e:
        load_config(overrides=[override])
    assert needle in str(e.value)


def test_unknown_key_in_yaml_names_the_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  max_epochs: 3\n  learning_rate: 0.1\n")
    with pytest.raises(PointaeError) as e:
        load_config(p)
    assert str(p) in str(e.value) and "train.learning_rate" in str(e.value)


def test_invalid_yaml_names_line(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("train:\n  max_epochs: [3\n")
    with pytest.raises(PointaeError, match="broken.yaml"):
        load_config(p)


def test_roundtrip_and_shipped_configs(tmp_path):
    cfg = load_config(overrides=["task.name=inpaint", "model.width=8"])
    save_config(cfg, tmp_path / "c.yaml")
    again = load_config(tmp_path / "c.yaml")
    assert again == cfg
    files = sorted(CONFIGS.rglob("*.yaml"))
    assert len(files) >= 7
    for f in files:
        load_config(f)
    assert load_config(CONFIGS / "default.yaml") == RunConfig()
    assert load_config([CONFIGS / "repr/voxel.yaml", CONFIGS / "task/inpaint.yaml"]).model.repr == "voxel"


def test_parse_override_nested():
    assert parse_override("a.b.c=[1, 2]") == {"a": {"b": {"c": [1, 2]}}}
