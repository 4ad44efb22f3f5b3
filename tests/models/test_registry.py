"""pointae.registry: lazy entries, clear errors, and every old name list derived from it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pointae import registry
from pointae.errors import PointaeError
from pointae.registry import Registry, UnknownNameError


def test_lazy_entries_resolve_on_first_get_and_keep_order():
    reg = Registry("widget")
    reg.add("join", path="os.path:join", kind="fn")
    reg.add("sep", path="os.path:sep", kind="const")
    reg.add("answer", 42, kind="const")
    assert reg.names() == ("join", "sep", "answer")
    assert reg.names(kind="const") == ("sep", "answer")
    assert list(reg.where(kind="fn")) == ["join"] and "join" in reg.where(kind="fn")
    import os.path

    assert reg.get("join") is os.path.join and reg["sep"] == os.path.sep and reg["answer"] == 42
    assert reg.meta("answer") == {"kind": "const"}
    assert dict(reg) == {"join": os.path.join, "sep": os.path.sep, "answer": 42}


def test_item_paths_index_mappings():
    reg = Registry("preset")
    reg.add("wt", path="pointae.sim.presets:BUILTIN_PRESETS[no-cohesin]")
    assert reg["wt"] == {"lefs": False}


def test_unknown_names_are_one_line_errors_that_list_the_known_ones():
    reg = Registry("gadget")
    reg.add("a", 1)
    reg.add("b", 2)
    with pytest.raises(PointaeError, match=r"^unknown gadget 'c'; known: a, b$"):
        reg.get("c")
    with pytest.raises(KeyError):  # Mapping semantics: reg.get(name, default) works
        reg["c"]
    assert reg.get("c", None) is None
    assert str(UnknownNameError("x")) == "x"


def test_duplicates_are_refused_unless_the_same_object():
    reg = Registry("gadget")
    reg.add("a", len)
    reg.add("a", len)  # idempotent (a module imported twice)
    with pytest.raises(PointaeError, match="'a' is already registered"):
        reg.add("a", max)
    reg.add("b", path="json:dumps")
    import json

    reg.add("b", json.dumps)  # the object the lazy path names: a built-in registering itself
    with pytest.raises(PointaeError, match="already registered"):
        reg.add("b", path="json:loads")
    with pytest.raises(PointaeError, match="non-empty string"):
        reg.add(" ", 1)
    reg.remove("a")
    assert reg.pop("b") is json.dumps and reg.names() == ()


def test_builtin_names_need_no_torch():
    code = (
        "import sys; from pointae import registry as r; "
        "names = [r.encoders.names(), r.representations.names(), r.tasks.names(), r.losses.names(), "
        "r.formats.names(), r.presets.names(), r.layouts.names(), r.clusterings.names()]; "
        "assert r.encoders.meta('voxel')['repr'] == 'voxel'; "
        "from pointae.config import load_config; load_config(overrides=['model.repr=graph']); "
        "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_old_constants_are_views_of_the_registries():
    from pointae.cli._read import DUPLICATE_NAMES, READ_FORMAT_NAMES
    from pointae.config import REPR_NAMES, TASK_LOSSES, TASK_NAMES
    from pointae.data.io import READ_FORMATS, WRITE_FORMATS
    from pointae.data.reprs import REPRS
    from pointae.losses import PAIR_LOSSES, masked_log_mse
    from pointae.models import DECODERS, ENCODERS, TASK_MODELS, TASKS, MapUNet
    from pointae.models.builders import SKIP_TASKS
    from pointae.sim import PRESET_HELP, PRESETS

    assert tuple(REPR_NAMES) == tuple(REPRS) == ("map", "graph", "voxel")
    assert tuple(TASK_NAMES) == tuple(TASKS) == ("autoencode", "denoise", "inpaint", "contrast")
    assert tuple(SKIP_TASKS) == ("denoise", "inpaint")
    assert tuple(TASK_LOSSES) == tuple(PAIR_LOSSES) == ("mse", "l1", "log_mse", "log_l1")
    assert PAIR_LOSSES["log_mse"] == (masked_log_mse, True)
    assert tuple(READ_FORMATS) == tuple(READ_FORMAT_NAMES) == ("bintu", "fofct", "csv", "table", "h5")
    assert tuple(WRITE_FORMATS) == ("bintu", "fofct", "csv", "h5", "pdb")
    assert set(DUPLICATE_NAMES) == {"closest", "first", "mean", "error"}
    assert list(ENCODERS) == ["map", "graph", "voxel"] and list(DECODERS) == ["map", "coord"]
    assert TASK_MODELS["map"] is MapUNet
    assert PRESETS["tads"]["blocks"] is True and "CTCF" in PRESET_HELP["no-ctcf"]
    # a name registered later appears in every derived list
    registry.losses.add(
        "test_half_mse", lambda p, t, m: 0.5 * PAIR_LOSSES["mse"][0](p, t, m), takes_eps=False
    )
    try:
        assert "test_half_mse" in TASK_LOSSES and "test_half_mse" in PAIR_LOSSES
        from pointae.config import load_config

        assert load_config(overrides=["task.loss=test_half_mse"]).task.loss == "test_half_mse"
    finally:
        registry.losses.remove("test_half_mse")
    with pytest.raises(PointaeError, match="task.loss must be one of mse, l1, log_mse, log_l1"):
        load_config(overrides=["task.loss=test_half_mse"])


def test_a_registered_loss_trains_through_the_task():
    import torch

    from pointae.config import TaskConfig
    from pointae.tasks import build_task

    calls = []

    def doubled_l1(pred, target, mask):
        calls.append(1)
        return 2 * registry.losses["l1"](pred, target, mask)

    registry.losses.add("test_doubled_l1", doubled_l1)
    try:
        task = build_task(TaskConfig(loss="test_doubled_l1"))
        target = torch.rand(2, 5, 5)
        pair = torch.ones(2, 5, 5, dtype=torch.bool)
        got = task.loss(target + 1.0, target, pair, None).total
        assert calls and float(got) == pytest.approx(2.0)
    finally:
        registry.losses.remove("test_doubled_l1")


def test_encoder_and_representation_are_separate():
    from pointae.config import encoder_overrides, load_config

    cfg = load_config()
    assert cfg.model.encoder is None and cfg.model.encoder_name == "map"
    assert load_config(overrides=["model.repr=voxel"]).model.encoder_name == "voxel"
    assert encoder_overrides("graph") == ["model.repr=graph"]
    with pytest.raises(PointaeError, match="model.encoder 'graph' reads the 'graph' representation"):
        load_config(overrides=["model.repr=map", "model.encoder=graph"])
    with pytest.raises(PointaeError, match="model.encoder must be one of map, graph, voxel"):
        load_config(overrides=["model.repr=map", "model.encoder=gnn"])
    with pytest.raises(PointaeError, match="unknown representation or encoder 'gnn'"):
        encoder_overrides("gnn")
    # an encoder must name a registered representation
    import torch

    from pointae.models import register_encoder

    with pytest.raises(PointaeError, match="class attribute repr naming a representation"):

        @register_encoder("test_points")
        class Points(torch.nn.Module):
            repr = "points"

    assert "test_points" not in registry.encoders


def test_a_registered_format_reads_and_writes(tmp_path, tiny_traces):
    """A plugin format (any object with the named functions) goes through read/write_traces."""
    import types

    import numpy as np

    from pointae.data.io import READ_FORMATS, WRITE_FORMATS, read_traces, write_traces
    from pointae.data.traces import Traces

    def write_npz(traces, path):
        np.savez(path, coords=traces.coords)

    def read_npz(path, unit="nm"):
        with open(path, "rb") as f:
            return Traces(np.load(f)["coords"], unit=unit)

    plugin = types.SimpleNamespace(read_npz=read_npz, write_npz=write_npz)
    registry.formats.add(
        "test_npz", plugin, read=True, write=True, reader="read_npz", writer="write_npz", options=("unit",)
    )
    try:
        assert "test_npz" in READ_FORMATS and "test_npz" in WRITE_FORMATS
        path = tmp_path / "t.npz"
        write_traces(tiny_traces, path, format="test_npz")
        back = read_traces(path, format="test_npz", unit="micron")
        np.testing.assert_array_equal(back.coords, tiny_traces.coords)
        assert back.unit == "micron"
        with pytest.raises(PointaeError, match="does not apply to test_npz"):
            read_traces(path, format="test_npz", duplicates="mean")
    finally:
        registry.formats.remove("test_npz")
    with pytest.raises(PointaeError, match="unknown format 'test_npz'"):
        read_traces(path, format="test_npz")


@pytest.mark.parametrize(
    ("encoder", "task", "cls", "params"),
    [
        ("map", "autoencode", "AutoEncoder", 510_657),
        ("graph", "autoencode", "AutoEncoder", 399_745),
        ("voxel", "contrast", "AutoEncoder", 428_993),
        ("map", "inpaint", "MapUNet", 119_777),
        ("graph", "denoise", "GraphPairNet", 175_153),
        ("voxel", "inpaint", "VoxelSkipNet", 294_234),
    ],
)
def test_registry_builds_the_same_models_as_before(encoder, task, cls, params):
    """The names resolve to the same architectures (parameter counts of docs/models.md, L=64, d=16)."""
    from pointae.config import load_config
    from pointae.data.reprs import build_repr
    from pointae.models import build_model, param_count

    cfg = load_config(overrides=[f"model.repr={encoder}", f"task.name={task}"])
    m = build_model(cfg.model.encoder_name, task, 64, 16, cfg.model.decoder, rep=build_repr(cfg.model.repr))
    assert type(m).__name__ == cls and param_count(m) == params


def test_module_entries_follow_sys_modules(monkeypatch):
    """A format module replaced (a test fake, a reload) is the one used; nothing stale is cached."""
    import json
    import types

    reg = Registry("format")
    reg.add("j", path="json")
    assert reg.get("j") is json
    fake = types.ModuleType("json")
    monkeypatch.setitem(sys.modules, "json", fake)
    assert reg.get("j") is fake
    monkeypatch.undo()
    assert reg.get("j") is json
