"""Property tests of every registered encoder x decoder and every task model.

Parametrised over the registries, so a newly registered encoder/decoder is tested
automatically (with its ``tiny_hparams`` when it declares them).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pointae.data.reprs import build_repr
from pointae.errors import PointaeError
from pointae.models import (
    DECODERS,
    ENCODERS,
    TASK_MODELS,
    TASKS,
    AutoEncoder,
    build_decoder,
    build_encoder,
    build_model,
    param_count,
    register_encoder,
)
from pointae.testing import assert_valid_map, random_rigid

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(cls) -> dict:
    return dict(getattr(cls, "tiny_hparams", {}))


def walk(b: int, n: int, seed: int = 0, missing: float = 0.15) -> torch.Tensor:
    """Random-walk traces in scaled units (bond ~ 1) with missing loci; (B, L, 3)."""
    rng = np.random.default_rng(seed)
    c = np.cumsum(rng.normal(scale=1 / np.sqrt(3), size=(b, n, 3)), axis=1).astype(np.float32)
    drop = rng.random((b, n)) < missing
    drop[:, :2] = False
    c[drop] = np.nan
    return torch.from_numpy(c)


def tiny_model(enc: str, dec: str, n: int, d: int = 4) -> AutoEncoder:
    e = build_encoder(enc, n, d, **tiny(ENCODERS[enc]))
    return AutoEncoder(e, build_decoder(dec, n, d, **tiny(DECODERS[dec])))


def tiny_task_model(rep: str, task: str, n: int, d: int = 4):
    from pointae.models.builders import SKIP_TASKS

    cls = TASK_MODELS.get(rep) if task in SKIP_TASKS else None  # contrast/autoencode: autoencoders
    hp = tiny(cls) if cls is not None else {**tiny(ENCODERS[rep]), **_prefixed(tiny(DECODERS["map"]))}
    return build_model(rep, task, n, latent_dim=d, **hp)


def _prefixed(hp: dict) -> dict:
    return {f"decoder_{k}": v for k, v in hp.items()}


PAIRS = [(e, d) for e in sorted(ENCODERS) for d in sorted(DECODERS)]


@pytest.mark.parametrize("enc,dec", PAIRS)
def test_shapes_valid_maps_and_gradients(enc, dec):
    n, b, d = 16, 3, 5
    model = tiny_model(enc, dec, n, d)
    x = build_repr(ENCODERS[enc].repr)(walk(b, n), train=True, generator=torch.Generator().manual_seed(1))
    out = model(x)
    assert out.latent.shape == (b, d)
    assert out.recon.shape == (b, n, n)
    assert_valid_map(out.recon)
    loss = out.recon.mean() + out.latent.pow(2).mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


@pytest.mark.parametrize("rep", sorted(ENCODERS))
@pytest.mark.parametrize("task", TASKS)
def test_task_models_valid_and_trainable(rep, task):
    n, b, d = 16, 2, 6
    model = tiny_task_model(rep, task, n, d)
    x = build_repr(ENCODERS[rep].repr)(walk(b, n, missing=0.3))
    out = model(x)
    assert out.latent.shape == (b, d) and out.recon.shape == (b, n, n)
    assert_valid_map(out.recon)
    (out.recon.pow(2).mean() + out.latent.pow(2).mean()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("n", [64, 65, 83])
@pytest.mark.parametrize("rep", sorted(ENCODERS))
def test_any_number_of_loci(rep, n):
    x = build_repr(ENCODERS[rep].repr)(walk(2, n))
    for task in ("autoencode", "inpaint"):
        out = tiny_task_model(rep, task, n).eval()(x)
        assert out.recon.shape == (2, n, n)
        assert_valid_map(out.recon)
        assert torch.isfinite(out.latent).all()


def test_default_models_build_for_every_repr_and_task():
    for rep in sorted(ENCODERS):
        for task in TASKS:
            m = build_model(rep, task, 65, latent_dim=16, rep=build_repr(ENCODERS[rep].repr))
            assert param_count(m) > 10_000
            assert m.repr_name == ENCODERS[rep].repr


def _rigid(c: torch.Tensor, rng: np.random.Generator, reflect: bool) -> torch.Tensor:
    rot, shift = random_rigid(rng, reflect=reflect)
    moved = c.double().numpy() @ rot.T + shift / 100.0
    return torch.from_numpy(moved.astype(np.float32))


@pytest.mark.parametrize("rep", ["map", "graph"])
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), reflect=st.booleans())
def test_latent_invariant_to_rigid_motions(rep, seed, reflect):
    n = 16
    torch.manual_seed(0)
    enc = build_encoder(rep, n, 4, **tiny(ENCODERS[rep])).eval()
    r = build_repr(rep)
    c = walk(3, n, seed=seed % 1000)
    moved = _rigid(c, np.random.default_rng(seed), reflect)
    with torch.no_grad():
        a, b = enc(r(c)), enc(r(moved))
    scale = max(1.0, float(a.abs().max()))
    torch.testing.assert_close(a, b, rtol=0, atol=2e-3 * scale)


def _randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values, so zero-initialised residual heads stop returning the
    input map unchanged (an untrained task model is then not a trivial identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model


@pytest.mark.parametrize("rep", ["map", "graph"])
def test_task_model_recon_invariant(rep):
    n = 16
    model = _randomise(tiny_task_model(rep, "denoise", n)).eval()
    r = build_repr(rep)
    c = walk(2, n, seed=3)
    with torch.no_grad():
        a, b = model(r(c)).recon, model(r(_rigid(c, np.random.default_rng(3), True))).recon
        plain = tiny_task_model(rep, "denoise", n).eval()(r(c)).recon
    # the randomised model really transforms its input (otherwise invariance would be trivial)...
    assert float((a - plain).abs().max()) > 0.02 * float(plain.abs().max())
    assert_valid_map(a)
    # ...and still gives the same map for a rotated, translated, reflected copy
    torch.testing.assert_close(a, b, rtol=0, atol=2e-3 * max(1.0, float(a.max())))


@pytest.mark.parametrize("rep", sorted(ENCODERS))
def test_missing_loci(rep):
    n = 16
    c = walk(4, n, seed=2, missing=0.0)
    c[0, 3:11] = float("nan")  # a long gap
    c[1, ::2] = float("nan")  # every other locus
    c[2, 1:] = float("nan")  # a single observed locus
    c[3] = float("nan")  # nothing observed
    model = tiny_task_model(rep, "inpaint", n).eval()
    with torch.no_grad():
        out = model(build_repr(ENCODERS[rep].repr)(c))
    assert torch.isfinite(out.latent).all() and torch.isfinite(out.recon).all()
    assert_valid_map(out.recon)


def test_graph_latent_depends_on_which_loci_are_missing():
    n = 16
    enc = build_encoder("graph", n, 4, **tiny(ENCODERS["graph"])).eval()
    r = build_repr("graph")
    c = walk(1, n, seed=4, missing=0.0)
    hidden = c.clone()
    hidden[0, 6:9] = float("nan")
    with torch.no_grad():
        assert not torch.allclose(enc(r(c)), enc(r(hidden)))


def test_coord_decoder_is_euclidean():
    n = 12
    dec = build_decoder("coord", n, 3)
    z = torch.randn(4, 3)
    d = dec(z).detach().double()
    x = dec.coords(z).detach().double()
    torch.testing.assert_close(d, torch.cdist(x, x), atol=1e-4, rtol=1e-4)
    # triangle inequality d_ik <= d_ij + d_jk for all triples
    viol = d[:, :, None, :] - (d[:, :, :, None] + d[:, None, :, :].transpose(-1, -2))
    assert float(viol.max()) <= 1e-5


def test_map_decoder_valid_for_extreme_latents():
    dec = build_decoder("map", 20, 4, **tiny(DECODERS["map"]))
    out = dec(torch.randn(3, 4) * 1e3)
    assert_valid_map(out)
    assert torch.isfinite(out).all()


def test_repr_is_informative():
    m = build_model("map", "autoencode", 65, latent_dim=16)
    text = repr(m)
    assert "MapCNN" in text and "MapDecoder" in text and "n_loci=65" in text and "latent_dim=16" in text
    g = repr(build_model("graph", "inpaint", 65))
    assert "GraphPairNet" in g and "GraphGNN" in g and "layers=4" in g
    assert "VoxelCNN" in repr(build_model("voxel", "denoise", 65))
    assert "in_channels=10" in repr(build_repr("voxel")) and "k=8" in repr(build_repr("graph"))


def test_registry_errors_and_extension():
    with pytest.raises(PointaeError, match="unknown encoder"):
        build_encoder("nope", 10, 2)
    with pytest.raises(PointaeError, match="unknown hyperparameter"):
        build_model("map", "autoencode", 10, widht=3)
    with pytest.raises(PointaeError, match="unknown task"):
        build_model("map", "classify", 10)
    with pytest.raises(PointaeError, match="repr"):

        @register_encoder("bad")
        class Bad(torch.nn.Module):
            pass

    @register_encoder("test_mlp_on_maps")
    class MapMLP(torch.nn.Module):
        repr = "map"

        def __init__(self, n_loci, latent_dim, in_channels=4):
            super().__init__()
            self.latent_dim = latent_dim
            self.lin = torch.nn.Linear(in_channels * n_loci * n_loci, latent_dim)

        def forward(self, x):
            return self.lin(x.flatten(1))

    try:
        m = build_model(
            "test_mlp_on_maps", "autoencode", 10, latent_dim=3, **_prefixed(tiny(DECODERS["map"]))
        )
        out = m(build_repr("map")(walk(2, 10)))
        assert out.latent.shape == (2, 3)
        assert_valid_map(out.recon)
    finally:
        ENCODERS.pop("test_mlp_on_maps")


def test_map_autoencoder_overfits_a_batch():
    """A few optimiser steps on one batch lower the masked loss substantially."""
    from pointae.data.transforms import distance_maps_torch
    from pointae.losses import masked_mse

    n = 16
    torch.manual_seed(0)
    model = build_model(
        "map", "autoencode", n, latent_dim=8, widths=(8, 8, 16, 16), decoder_widths=(16, 8, 8)
    )
    c = walk(8, n, seed=5)
    x, target = build_repr("map")(c), distance_maps_torch(c)
    mask = ~torch.isnan(target)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = masked_mse(model(x).recon, target, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], losses[::10]


@pytest.mark.parametrize("task", ["inpaint", "denoise"])
@pytest.mark.parametrize("rep", sorted(TASK_MODELS))
def test_residual_task_models_start_at_the_interpolation_baseline(rep, task):
    """With the residual skip path an untrained model returns the input map, with hidden loci
    filled by linear interpolation along the chain (the inpainting baseline; for denoising the
    input map itself)."""
    from pointae.baselines import interpolate_missing
    from pointae.data.transforms import distance_maps_torch

    n = 16
    c = walk(2, n, seed=7, missing=0.25)
    model = tiny_task_model(rep, task, n).eval()
    with torch.no_grad():
        recon = model(build_repr(rep)(c)).recon
    base = distance_maps_torch(torch.from_numpy(interpolate_missing(c.numpy())))
    torch.testing.assert_close(recon, base, atol=2e-3, rtol=1e-4)


def test_voxel_task_model_reads_only_the_grid_in_its_encoder():
    """The latent of the voxel task model depends on the grid only, not on the skip-path side
    information."""
    n = 16
    torch.manual_seed(0)
    model = tiny_task_model("voxel", "inpaint", n).eval()
    assert type(model).__name__ == "VoxelSkipNet"
    x = build_repr("voxel")(walk(2, n, seed=9, missing=0.25))
    tampered = type(x)(grid=x.grid, skip_map=x.skip_map * 2.0, observed=~x.observed)
    with torch.no_grad():
        torch.testing.assert_close(model(x).latent, model(tampered).latent)
        assert not torch.allclose(
            model(x).latent, model(type(x)(x.grid * 2.0, x.skip_map, x.observed)).latent
        )
