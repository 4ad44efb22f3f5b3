"""The imputation network: linear prior, equivariance, scale handling, any number of loci, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointae.baselines import interpolate_missing
from pointae.impute.fit import FitConfig, fit_imputer, hidden_pair_loss
from pointae.impute.model import Imputer, ImputerConfig, linear_weights, pair_features, refine_to_map
from pointae.testing import assert_valid_map, random_rigid, tiny_traces

SMALL = ImputerConfig(channels=8, dilations=(1, 2, 4))


def _coords(n=6, n_loci=24, seed=0, missing=0.2):
    return tiny_traces(n=n, n_loci=n_loci, seed=seed, missing=missing).coords


def test_linear_weights_match_interpolation():
    c = _coords(n=10, n_loci=30, missing=0.3)
    c[0, -3:] = np.nan  # a missing end: constant extrapolation
    mask = torch.from_numpy(~np.isnan(c[..., 0]))
    w = linear_weights(mask)
    torch.testing.assert_close(w.sum(-1), torch.ones(10, 30))
    lin = (w @ torch.nan_to_num(torch.from_numpy(c))).numpy()
    np.testing.assert_allclose(lin, interpolate_missing(c), atol=1e-2)


@pytest.fixture(scope="module")
def trained_like():
    torch.manual_seed(0)
    m = Imputer(SMALL)
    with torch.no_grad():  # non-zero head so the test exercises learned weights
        m.head[-1].weight.normal_(0, 0.5)
        m.head[-1].bias.normal_(0, 0.5)
    return m.eval()


@pytest.mark.parametrize("n_loci", [16, 65, 83])
def test_any_number_of_loci_keeps_observed_exactly(trained_like, n_loci):
    c = _coords(n=3, n_loci=n_loci)
    out = trained_like(torch.from_numpy(c), 150.0)
    obs = ~np.isnan(c[..., 0])
    res = out["coords"].detach().numpy()
    np.testing.assert_array_equal(res[obs], c[obs])  # bit for bit
    assert np.isfinite(res).all()
    w = out["weights"].detach()
    torch.testing.assert_close(w.sum(-1), torch.ones(3, n_loci), atol=1e-5, rtol=0)
    assert (w[~torch.from_numpy(obs)[:, None, :].expand_as(w)] == 0).all()  # only observed loci used
    pred_map = out["map"].detach().numpy()
    assert_valid_map(pred_map)  # symmetric, zero diagonal, non-negative by construction
    known = obs[:, :, None] & obs[:, None, :]
    true = np.linalg.norm(c[:, :, None] - c[:, None, :], axis=-1)
    np.testing.assert_allclose(pred_map[known], true[known], rtol=1e-4, atol=1e-2)


def test_placement_is_equivariant_to_rigid_motions(trained_like, rng):
    c = _coords(n=4, n_loci=20)
    rot, shift = random_rigid(rng, reflect=True)
    moved = (c.astype(np.float64) @ rot.T + shift).astype(np.float32)
    a = trained_like(torch.from_numpy(c), 150.0)["coords"].detach().numpy().astype(np.float64)
    b = trained_like(torch.from_numpy(moved), 150.0)["coords"].detach().numpy()
    np.testing.assert_allclose(a @ rot.T + shift, b, atol=0.05)


def test_units_are_calibrated_by_scale(trained_like):
    c = _coords(n=3, n_loci=20)
    a = trained_like(torch.from_numpy(c), 150.0)["coords"].detach().numpy()
    b = trained_like(torch.from_numpy(c / 1000), 0.150)["coords"].detach().numpy()
    np.testing.assert_allclose(a / 1000, b, rtol=0, atol=1e-4)


def test_features_shapes():
    f = pair_features(torch.from_numpy(_coords(n=2, n_loci=12)), 150.0)
    assert f["x"].shape == (2, 8, 12, 12)
    assert torch.isfinite(f["x"]).all()


def test_untrained_model_starts_near_linear_interpolation():
    c = _coords(n=5, n_loci=30)
    out = Imputer(SMALL)(torch.from_numpy(c), 150.0)["coords"].detach().numpy()
    err = np.linalg.norm(out - interpolate_missing(c), axis=-1)
    assert np.median(err[np.isnan(c[..., 0])]) < 0.1 * 150


def test_training_lowers_the_loss_and_loss_is_zero_for_truth():
    c = _coords(n=48, n_loci=20, missing=0.05)
    model, hist = fit_imputer(
        c, 150.0, FitConfig(epochs=4, batch_size=16, lr=1e-2, val_fraction=0.0), SMALL, log=None
    )
    assert np.isfinite([h["loss"] for h in hist]).all()
    assert len(hist) == 4 and not model.training
    hidden = torch.zeros(2, 20, dtype=torch.bool)
    hidden[:, 5] = True
    truth = torch.from_numpy(np.nan_to_num(c[:2]))
    out = {"coords": truth, "mask": ~hidden}
    assert float(hidden_pair_loss(out, truth, hidden, 150.0)) == pytest.approx(0.0, abs=1e-4)


def test_refine_to_map_moves_only_missing_loci_towards_the_target():
    c = _coords(n=4, n_loci=24, missing=0.0)
    truth = torch.from_numpy(c)
    mask = torch.ones(4, 24, dtype=torch.bool)
    mask[:, [5, 12, 13]] = False
    start = truth.clone()
    start[~mask] += 200.0  # missing loci start far off
    target = torch.cdist(truth, truth)
    out = refine_to_map(start, target, mask, steps=30)
    assert torch.equal(out[mask], truth[mask])  # observed loci never move
    before = (start - truth).norm(dim=-1)[~mask].mean()
    after = (out - truth).norm(dim=-1)[~mask].mean()
    assert after < 0.2 * before
    # a structure is a fixed point of the refinement towards its own distances
    still = refine_to_map(truth, target, mask, steps=5)
    torch.testing.assert_close(still, truth, atol=1e-2, rtol=0)


def test_refined_model_keeps_observed_loci_and_equivariance(rng):
    torch.manual_seed(1)
    m = Imputer(ImputerConfig(channels=8, dilations=(1, 2), refine_steps=5)).eval()
    with torch.no_grad():
        m.head[-1].weight.normal_(0, 0.5)
    c = _coords(n=3, n_loci=20)
    rot, shift = random_rigid(rng, reflect=True)
    moved = (c.astype(np.float64) @ rot.T + shift).astype(np.float32)
    out = m(torch.from_numpy(c), 150.0)
    a = out["coords"].detach().numpy()
    obs = ~np.isnan(c[..., 0])
    np.testing.assert_array_equal(a[obs], c[obs])
    assert not np.allclose(a[~obs], out["direct"].detach().numpy()[~obs])  # the refinement acted
    b = m(torch.from_numpy(moved), 150.0)["coords"].detach().numpy()
    np.testing.assert_allclose(a.astype(np.float64) @ rot.T + shift, b, atol=0.05)


def _refine_all_rows(x, target, mask, steps):
    """Reference: the Jacobi stress update computed on every row (the pre-issue-14 code)."""
    n_loci = x.shape[1]
    off = (~torch.eye(n_loci, dtype=torch.bool)).to(x.dtype)
    for _ in range(steps):
        diff = x[:, :, None, :] - x[:, None, :, :]
        dist = torch.sqrt((diff**2).sum(-1) + 1e-8)
        prop = x[:, None, :, :] + (target / dist)[..., None] * diff
        upd = (prop * off[None, :, :, None]).sum(2) / (n_loci - 1)
        x = torch.where(mask[..., None], x, upd)
    return x


def test_refine_to_map_on_missing_rows_only_matches_the_full_update():
    c = _coords(n=5, n_loci=22, missing=0.0)
    truth = torch.from_numpy(c)
    mask = torch.ones(5, 22, dtype=torch.bool)
    mask[0, [3]] = False
    mask[1, [0, 1, 2, 20, 21]] = False  # traces with different numbers of missing loci
    mask[3, 10:14] = False  # trace 2 and 4: nothing missing (padding only)
    start = (
        truth + torch.randn(truth.shape, generator=torch.Generator().manual_seed(0)) * 50 * (~mask)[..., None]
    )
    target = torch.cdist(truth, truth) * 1.1
    fast = refine_to_map(start, target, mask, steps=7)
    ref = _refine_all_rows(start, target, mask, steps=7)
    torch.testing.assert_close(fast, ref, atol=1e-3, rtol=1e-5)
    # gradients flow through the gathered rows (the network is trained through this refinement)
    s = start.clone().requires_grad_(True)
    refine_to_map(s, target, mask, steps=3).sum().backward()
    assert s.grad is not None and s.grad[~mask].abs().sum() > 0


def _refine_direct(x, target, mask, steps):
    """Reference: the direct missing-rows update with a ``(B, K, L, 3)`` proposal tensor (the code
    before the Gram-matrix form): x_i <- mean_{j != i} (x_j + D_ij (x_i - x_j) / |x_i - x_j|)."""
    b, n_loci = mask.shape
    k = int((~mask).sum(1).max())
    order = torch.argsort(mask.to(torch.int8), dim=1, stable=True)[:, :k]
    valid = torch.gather(~mask, 1, order)[..., None]
    idx3 = order[..., None].expand(b, k, 3)
    tgt = torch.gather(target, 1, order[..., None].expand(b, k, n_loci))
    other = (order[..., None] != torch.arange(n_loci)).to(x.dtype)
    for _ in range(steps):
        xi = torch.gather(x, 1, idx3)
        diff = xi[:, :, None, :] - x[:, None, :, :]
        dist = torch.sqrt((diff**2).sum(-1) + 1e-8)
        prop = x[:, None, :, :] + (tgt / dist)[..., None] * diff
        upd = (prop * other[..., None]).sum(2) / (n_loci - 1)
        x = x.scatter(1, idx3, torch.where(valid, upd, xi))
    return x


@pytest.mark.parametrize("offset", [0.0, 1.5e5])
def test_refine_to_map_gram_form_matches_the_direct_update_and_its_gradients(offset):
    g = torch.Generator().manual_seed(3)
    b, n_loci = 6, 40
    walk = torch.cumsum(torch.randn(b, n_loci, 3, generator=g), 1)  # scaled units, neighbours ~1.7 apart
    mask = torch.rand(b, n_loci, generator=g) > 0.15
    mask[2] = True  # a trace with nothing to move
    mask[4, :5] = False  # a missing end
    target = torch.cdist(walk, walk) * (1 + 0.2 * torch.rand(b, n_loci, n_loci, generator=g))
    target = 0.5 * (target + target.transpose(1, 2))
    start = walk + torch.randn(walk.shape, generator=g) * (~mask)[..., None] + offset
    fast = refine_to_map(start, target, mask, steps=20)
    ref = _refine_direct(start.double(), target.double(), mask, steps=20)
    assert torch.equal(fast[mask], start[mask])  # observed loci bit for bit
    moved = (fast.double() - start.double())[~mask].abs().max()
    assert moved > 0.1  # the refinement acted
    # float32 against the float64 direct update: ~1e-6 of the coordinates' spread near the origin;
    # 1.5e5 units away (raw nm coordinates) no worse than float32's own resolution there (half an
    # ulp of 1.5e5 is 0.0078) and than the direct float32 form (the Gram form works centred)
    err = float((fast.double() - ref)[~mask].abs().max())
    direct32 = float((_refine_direct(start, target, mask, steps=20).double() - ref)[~mask].abs().max())
    if offset == 0:
        assert err < 1e-6 * float(walk.abs().max()), err
        torch.testing.assert_close(fast, _refine_direct(start, target, mask, steps=20), atol=1e-5, rtol=0)
    else:
        assert err <= max(direct32, float(np.spacing(np.float32(offset))) / 2), (err, direct32)
    # gradients (the network trains through this refinement): same as the direct form's
    xs, ts = start.double().requires_grad_(True), target.double().requires_grad_(True)
    w = torch.randn(b, n_loci, 3, generator=g, dtype=torch.float64)
    (refine_to_map(xs, ts, mask, steps=4) * w).sum().backward()
    xr, tr = start.double().requires_grad_(True), target.double().requires_grad_(True)
    (_refine_direct(xr, tr, mask, steps=4) * w).sum().backward()
    torch.testing.assert_close(xs.grad, xr.grad, atol=1e-7 * (1 + offset), rtol=1e-6)
    torch.testing.assert_close(ts.grad, tr.grad, atol=1e-8 * (1 + offset), rtol=1e-6)
    assert xs.grad[~mask].abs().sum() > 0 and ts.grad.abs().sum() > 0


def test_predict_skips_complete_traces_and_does_not_depend_on_batching(trained_like):
    from pointae.impute.fit import predict

    c = _coords(n=12, n_loci=24, missing=0.15)
    c[[2, 7]] = _coords(n=2, n_loci=24, seed=5, missing=0.0)  # complete traces
    calls = []
    hook = trained_like.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        a = predict(trained_like, c, 150.0, batch_size=4, place_steps=20)
    finally:
        hook.remove()
    assert sum(calls) == 10  # the two complete traces never reach the network
    np.testing.assert_array_equal(a["coords"][[2, 7]], c[[2, 7]])
    np.testing.assert_allclose(a["map"][2], np.linalg.norm(c[2][:, None] - c[2][None], axis=-1), rtol=1e-5)
    b = predict(trained_like, c[::-1].copy(), 150.0, batch_size=64, place_steps=20)
    np.testing.assert_allclose(a["coords"], b["coords"][::-1], atol=1e-2)
    assert not np.isnan(a["coords"]).any()


@pytest.mark.skipif(
    not __import__("pointae.impute.model", fromlist=["bf16_supported"]).bf16_supported(),
    reason="CPU without native bfloat16",
)
def test_bf16_trunk_stays_close_to_fp32(trained_like):
    from pointae.impute.fit import predict

    c = _coords(n=8, n_loci=30, missing=0.2)
    a = predict(trained_like, c, 150.0, precision="fp32")
    b = predict(trained_like, c, 150.0, precision="bf16")
    miss = np.isnan(c[..., 0])
    err = np.linalg.norm(a["coords"] - b["coords"], axis=-1)[miss]
    # bfloat16 keeps ~3 significant digits of the CNN's logits: placements move by far less than
    # the ~150 nm neighbour distance (measured on IMR90: protocol ratio within 0.0002 of fp32)
    assert err.max() < 5.0
    assert not trained_like.bf16  # the context restores fp32


def test_activation_option_builds_relu_nets_and_old_configs_load_as_gelu(rng):
    relu = Imputer(ImputerConfig(channels=8, dilations=(1, 2), activation="relu")).eval()
    acts = {type(m) for m in relu.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.GELU))}
    assert acts == {torch.nn.ReLU}
    c = _coords(n=4, n_loci=20)
    out = relu(torch.from_numpy(c), 1.0)["coords"].detach().numpy()
    obs = ~np.isnan(c)
    np.testing.assert_array_equal(out[obs], c[obs])
    assert np.isfinite(out).all()
    # a model.json written before the option existed has no "activation": it is a GELU net
    old = ImputerConfig.from_dict({"channels": 8, "dilations": [1, 2], "refine_steps": 3})
    assert old.activation == "gelu"
    with pytest.raises(ValueError, match="unknown imputer activation 'tanh'"):
        Imputer(ImputerConfig(activation="tanh"))


def test_run_config_refuses_an_unknown_activation():
    from pointae.errors import PointaeError
    from pointae.impute.fit import ImputerRunConfig

    cfg = ImputerRunConfig()
    cfg.model.activation = "swish"
    with pytest.raises(PointaeError, match="model.activation must be one of gelu, relu, got 'swish'"):
        cfg.validate()
