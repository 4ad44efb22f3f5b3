"""Tests of the loop-extrusion polymer simulator (physics, labels, determinism, CLI)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pointae.errors import PointaeError
from pointae.sim import PRESETS, simulate, simulate_mixture
from pointae.sim.barriers import (
    barriers_to_monomers,
    occupancy_from_strength,
    parse_region,
    read_ctcf_table,
)
from pointae.sim.extrusion import LEFSystem
from pointae.sim.polymer import ChainBatch, ForceField
from pointae.sim.run import autocorrelation, decorrelation_time

REGION = "chr21:29372390-31322258"
FAST = dict(burn_in=40, interval=10, chains=16)


pytestmark = pytest.mark.usefixtures("one_thread")


def scaling_exponent(coords: np.ndarray, lo: int, hi: int) -> float:
    """Slope of log sqrt(<|x_i - x_{i+s}|^2>) against log s for lo <= s <= hi."""
    s = np.arange(lo, hi + 1)
    r2 = np.array([((coords[:, k:] - coords[:, :-k]) ** 2).sum(-1).mean() for k in s])
    return float(np.polyfit(np.log(s), np.log(r2), 1)[0] / 2)


# ---------------------------------------------------------------------------------------- barriers
def test_parse_region():
    r = parse_region("chr21:29,372,390-31,322,258")
    assert (r.chrom, r.start, r.end, r.length) == ("chr21", 29372390, 31322258, 1949868)
    for bad in ("chr21", "chr21:5-3", "chr21:a-b"):
        with pytest.raises(PointaeError):
            parse_region(bad)


def test_occupancy_logistic():
    p = occupancy_from_strength([3.0, 23.0, -17.0])
    np.testing.assert_allclose(p, [0.5, 1 / (1 + np.exp(-1)), 1 / (1 + np.exp(1))])


def test_read_ctcf_table_drops_unknown_orientation(shared_data):
    sites = read_ctcf_table(shared_data / "K562_chr21_ctcf_sites_hg19.tsv")
    assert sites.attrs["n_dropped"] == 12  # the NA summitDist rows
    assert len(sites) == 51 - 12
    assert set(sites["direction"]) == {1, -1}
    assert ((sites["occupancy"] > 0.5) & (sites["occupancy"] < 1)).all()


def test_bad_ctcf_table(tmp_path):
    p = tmp_path / "bad.tsv"
    p.write_text("chrom\tstart\tend\tfc\nchr1\t10\tx\t5\n")
    with pytest.raises(PointaeError, match=r"bad.tsv:2.*'end'"):
        read_ctcf_table(p)
    p.write_text("chrom\tpos\nchr1\t10\n")
    with pytest.raises(PointaeError, match="missing column"):
        read_ctcf_table(p)


def test_barriers_to_monomers_combines_sites():
    import pandas as pd

    sites = pd.DataFrame(
        {
            "chrom": ["c", "c", "c", "d"],
            "pos": [150, 160, 450, 150],
            "direction": [1, 1, -1, 1],
            "occupancy": [0.5, 0.5, 0.8, 1.0],
        }
    )
    bm = barriers_to_monomers(sites, parse_region("c:100-600"), monomer_bp=100, n_monomers=7, offset=1)
    np.testing.assert_allclose(bm.stall_left, [0, 0.75, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(bm.stall_right, [0, 0, 0, 0, 0.8, 0, 0])


# ---------------------------------------------------------------------------------------- 1D LEFs
def test_lef_invariants_and_blocking():
    g = torch.Generator().manual_seed(0)
    m = 60
    sl = np.zeros(m)
    sr = np.zeros(m)
    sl[20] = 1.0  # forward site: stops left legs
    sr[40] = 1.0  # reverse site: stops right legs
    lef = LEFSystem(256, m, 1, lifetime=200, stall_left=sl, stall_right=sr, generator=g)
    for _ in range(300):
        lef.step()
        lef.check()
    b = lef.bound
    assert b.float().mean() > 0.9
    left, right = lef.left[b], lef.right[b]
    # a LEF loaded inside the domain (~1/3 of them) ends up anchored at the convergent pair (20, 40)
    anchored = (left == 20) & (right == 40)
    assert anchored.float().mean() > 0.2
    # legs are only ever held at the barrier facing them (directional: site 40 lets left legs pass)
    assert bool((lef.left[lef.cap_left] == 20).all()) and bool((lef.right[lef.cap_right] == 40).all())
    assert bool(((left < 40) & (right > 40) & (left > 20)).any())  # a LEF from outside passed site 40
    assert bool(lef.cap_left[lef.bound].any()) and bool(lef.cap_right[lef.bound].any())


def test_lef_without_barriers_reach_ends():
    g = torch.Generator().manual_seed(1)
    lef = LEFSystem(16, 30, 1, lifetime=1e9, generator=g)
    lef.step(60)
    lef.check()
    assert bool((lef.left == 0).all()) and bool((lef.right == 29).all())


# ---------------------------------------------------------------------------------------- forces
@pytest.mark.parametrize("potential", ["quadratic", "polychrom", "quadratic-fast"])
def test_forces_are_minus_energy_gradient(potential):
    fast = potential.endswith("-fast")  # no attraction: forces take the 3-pass soft-core kernel
    ff = ForceField(
        24,
        ev_strength=3.0,
        ev_potential=potential.removesuffix("-fast"),
        angle_k=1.5,
        confine_density=0.3,
        blocks=None if fast else np.repeat([0, 1, 2], 8),
        attract_strength=0.0 if fast else 0.5,
    )
    b = ChainBatch(ff, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    b.init_ideal()
    b.set_lefs(torch.tensor([[3, 10]] * 2), torch.tensor([[9, 20]] * 2))
    x = b.positions().clone() * 0.6
    f = b.forces(x)
    bb = x[:, :, 1:] - x[:, :, :-1]
    f[:, :, 1:] -= 3.0 * bb
    f[:, :, :-1] += 3.0 * bb
    grad = torch.zeros_like(x)
    h = 1e-6
    for d in range(3):
        for i in range(24):
            xp, xm = x.clone(), x.clone()
            xp[:, d, i] += h
            xm[:, d, i] -= h
            grad[:, d, i] = (b.energy(xp) - b.energy(xm)) / (2 * h)
    assert float((f + grad).abs().max()) < 1e-5 * max(1.0, float(f.abs().max()))


def _gaussian_chain_covariance(m: int, loops: list[tuple[int, int]], lef_k: float = 12.0) -> np.ndarray:
    """Exact positional covariance (one dimension, centred) of a Gaussian chain with extra LEF bonds."""
    k = np.zeros((m, m))
    for i in range(m - 1):
        k[[i, i + 1], [i, i + 1]] += 3.0
        k[[i, i + 1], [i + 1, i]] -= 3.0
    for a, b in loops:
        k[[a, b], [a, b]] += lef_k
        k[[a, b], [b, a]] -= lef_k
    p = np.eye(m) - 1.0 / m
    return p @ np.linalg.pinv(k) @ p


@pytest.mark.parametrize("integrator", ["lm", "euler"])
def test_exact_lef_operator_and_gaussian_sampling(integrator):
    """The Woodbury K^-1 equals the dense inverse; bonds + LEF bonds are sampled exactly at large dt."""
    m, c = 12, 1500
    ff = ForceField(m, ev_strength=0.0)
    b = ChainBatch(
        ff, c, dt=1.0, lambda_c=0.05, dtype=torch.float64, generator=torch.Generator().manual_seed(0),
        metropolis=False, integrator=integrator,
    )  # fmt: skip
    b.init_ideal()
    left = torch.tensor([[2, -1, 8]] * c)
    right = torch.tensor([[7, -1, 9]] * c)  # one unbound LEF, one on neighbours
    b.set_lefs(left, right)
    kmat = np.linalg.pinv(_gaussian_chain_covariance(m, [(2, 7), (8, 9)])) + b.eps * np.eye(m)
    np.testing.assert_allclose(b.kinv[0].numpy(), np.linalg.inv(kmat), atol=1e-10)
    b.step(100)
    acc = np.zeros((m, m))
    for _ in range(60):
        b.step(3)
        x = b.positions().numpy()
        x = x - x.mean(-1, keepdims=True)
        acc += np.einsum("cdi,cdj->ij", x, x) / (3 * c)
    cov = acc / 60
    want = _gaussian_chain_covariance(m, [(2, 7), (8, 9)])

    def d2(a, i, j):
        return a[i, i] + a[j, j] - 2 * a[i, j]

    for i, j in ((0, m - 1), (2, 7), (0, 5), (3, 4)):
        assert abs(d2(cov, i, j) / d2(want, i, j) - 1) < 0.05, (i, j, d2(cov, i, j), d2(want, i, j))


def test_unstable_dt_is_an_error():
    with pytest.raises(PointaeError, match="unstable"):
        simulate("wt", n=8, n_loci=16, seed=0, chains=8, burn_in=60, interval=5, dt=3.0)


def test_metropolis_acceptance_goes_to_one_as_dt_shrinks():
    acc = []
    for dt in (1e-2, 1e-4):
        b = ChainBatch(
            ForceField(16, ev_strength=3.0), 128, dt=dt, lambda_c=4.0, dtype=torch.float64,
            generator=torch.Generator().manual_seed(0),
        )  # fmt: skip
        b.init_ideal()
        b.step(4)
        acc.append(b.acceptance)
    assert acc[1] > 0.99 and acc[1] >= acc[0]


# ---------------------------------------------------------------------------------------- physics
def test_ideal_chain_end_to_end_and_exponent():
    m = 48
    t = simulate("ideal", n=1024, n_loci=m, seed=0, monomers_per_locus=1, extension_loci=0, chains=1024)
    c = t.coords / t.attrs["params"]["nm_per_bead"]  # back to bond lengths b
    ree2 = float(((c[:, -1] - c[:, 0]) ** 2).sum(-1).mean())
    # <R^2> = N b^2 with N = m - 1 bonds; the sample mean has ~2.5% relative error here
    assert abs(ree2 / (m - 1) - 1.0) < 0.1
    assert abs(scaling_exponent(c, 2, m // 2) - 0.5) < 0.03
    assert t.attrs["decorrelation_time_steps"] is not None


@pytest.mark.slow
def test_self_avoiding_exponent():
    m = 64
    t = simulate("swollen", n=512, n_loci=m, seed=1, monomers_per_locus=1, extension_loci=0, chains=256)
    c = t.coords / t.attrs["params"]["nm_per_bead"]
    nu = scaling_exponent(c, 4, m // 2)
    assert 0.55 < nu < 0.64, nu


@pytest.mark.slow
def test_confined_globule_exponent():
    m = 128
    t = simulate("globule", n=256, n_loci=m, seed=2, monomers_per_locus=1, extension_loci=0, chains=128)
    c = t.coords / t.attrs["params"]["nm_per_bead"]
    nu_large = scaling_exponent(c, 8, 40)
    assert nu_large < 0.42, nu_large  # compact: well below ideal (0.5) and self-avoiding (0.588)


def _insulation(dmap: np.ndarray, w: int = 3) -> np.ndarray:
    """Mean distance across each locus boundary within a window (high = insulated)."""
    n = dmap.shape[0]
    out = np.full(n, np.nan)
    for i in range(w, n - w):
        out[i] = np.nanmean(dmap[i - w : i, i : i + w])
    return out


@pytest.mark.slow
def test_wt_insulates_at_barriers_and_no_cohesin_does_not():
    kw = dict(n=768, n_loci=32, seed=3, chains=256)
    wt = simulate("wt", **kw)
    nc = simulate("no-cohesin", **kw)
    from pointae.sim.figures import mean_distance_map

    bnd = wt.attrs["barrier_loci_forward"]
    ratio = {}
    for name, t in (("wt", wt), ("nc", nc)):
        ins = _insulation(mean_distance_map(t.coords))
        ins = ins / np.nanmedian(ins)
        at = np.nanmean([ins[b] for b in bnd if np.isfinite(ins[b])])
        ratio[name] = at
    assert ratio["wt"] > 1.05 > ratio["nc"] - 0.03
    # loops anchored at convergent barriers exist in wt only
    assert (wt.meta["loop_state"] != "none").mean() > 0.2
    assert (nc.meta["loop_state"] == "none").all()


def test_wt_loop_anchors_enriched_at_barriers():
    t = simulate("wt", n=96, n_loci=32, seed=4, **FAST)
    fwd, rev = set(t.attrs["barrier_loci_forward"]), set(t.attrs["barrier_loci_reverse"])
    pairs = [p for s in t.meta["loop_state"] if s not in ("none", "other") for p in s.split("+")]
    assert len(pairs) > 10
    # physics, not bookkeeping: a bridged barrier pair is held together by the LEF, so its two loci
    # are closer in the traces where the pair is bridged than in the others
    counts = pd.Series(pairs).value_counts()
    tested = 0
    for pair in counts.index:
        a, b = (int(v) for v in pair.split("-"))
        bridged = np.array([pair in s.split("+") for s in t.meta["loop_state"]])
        if bridged.sum() < 10 or (~bridged).sum() < 10:
            continue
        d = np.linalg.norm(t.coords[:, a] - t.coords[:, b], axis=-1)
        assert np.median(d[bridged]) < 0.8 * np.median(d[~bridged]), pair
        tested += 1
    assert tested >= 2
    # all LEF legs: far more of them sit on barrier loci than the barrier loci's share of the region
    legs = [int(v) for s in t.meta["loops"] for loop in filter(None, s.split(";")) for v in loop.split("-")]
    on = np.mean([v in fwd | rev for v in legs])
    assert on > 2 * len(fwd | rev) / 32
    nc = simulate("no-ctcf", n=32, n_loci=32, seed=4, **FAST)
    assert (nc.meta["loop_state"] == "none").all() and nc.meta["n_loops"].sum() > 0


# ---------------------------------------------------------------------------------------- api
def test_outputs_meta_attrs_and_determinism():
    a = simulate("wt", n=20, n_loci=16, seed=7, **FAST)
    b = simulate("wt", n=20, n_loci=16, seed=7, **FAST)
    c = simulate("wt", n=20, n_loci=16, seed=8, **FAST)
    assert a.coords.shape == (20, 16, 3) and a.unit == "nm" and a.coords.dtype == np.float32
    np.testing.assert_array_equal(a.coords, b.coords)
    assert a.meta.equals(b.meta)
    assert not np.array_equal(a.coords, c.coords)
    for col in ("trace_id", "condition", "loop_state", "loops", "n_loops"):
        assert col in a.meta.columns
    assert a.meta["trace_id"].is_unique and (a.meta["condition"] == "wt").all()
    assert a.loci is not None and len(a.loci) == 16 and (a.loci["chrom"] == "sim").all()
    for key in ("params", "seed", "burn_in_steps", "sampling_interval_steps", "pointae_version"):
        assert key in a.attrs
    import json

    json.dumps(a.attrs)
    np.testing.assert_allclose(a.coords.mean(1), 0, atol=1e-2)  # centred per trace
    n_loops = [len(list(filter(None, s.split(";")))) for s in a.meta["loops"]]
    assert n_loops == a.meta["n_loops"].tolist()


def test_random_rotation_keeps_internal_structure():
    """Rotating frames (default) leaves every pairwise distance as without it, but turns the frames."""
    kw = dict(n=16, n_loci=16, seed=5, **FAST)
    rot = simulate("wt", **kw)
    plain = simulate("wt", rotate=False, **kw)

    def dists(c):
        return np.linalg.norm(c[:, :, None] - c[:, None], axis=-1)

    np.testing.assert_allclose(dists(rot.coords), dists(plain.coords), atol=1e-3)
    assert not np.allclose(rot.coords, plain.coords, atol=1.0)
    cols = ["trace_id", "loop_state", "loops", "n_loops", "chain", "step"]
    assert rot.meta[cols].equals(plain.meta[cols])  # same dynamics, same loops
    np.testing.assert_allclose(rot.meta["rg_nm"], plain.meta["rg_nm"], rtol=1e-5)
    assert "rotation-invariant" in rot.attrs["decorrelation_criterion"]
    assert "vector" in plain.attrs["decorrelation_criterion"]


def test_random_rotations_are_uniform():
    from pointae.data.chain import random_rotations

    r = random_rotations(4000, torch.Generator().manual_seed(0), torch.float64)
    eye = np.broadcast_to(np.eye(3), (4000, 3, 3))
    np.testing.assert_allclose((r @ r.transpose(1, 2)).numpy(), eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(4000, dtype=torch.float64))
    axis = r[:, :, 2].numpy()  # image of z: uniform on the sphere
    assert np.abs(axis.mean(0)).max() < 0.05 and abs((axis**2).mean(0) - 1 / 3).max() < 0.03


def test_region_with_ctcf_file(shared_data):
    t = simulate(
        "wt",
        n=8,
        n_loci=65,
        seed=0,
        ctcf=shared_data / "K562_chr21_ctcf_sites_hg19.tsv",
        region=REGION,
        **FAST,
    )
    assert t.loci["chrom"].iloc[0] == "chr21" and t.loci["start"].iloc[0] == 29372390
    assert t.loci["end"].iloc[-1] == 31322258
    assert t.attrs["ctcf_sites_dropped_no_orientation"] == 12
    assert 0 < t.attrs["n_barrier_sites"] < 39


def test_errors():
    with pytest.raises(PointaeError, match="unknown preset"):
        simulate("nope", n=2)
    with pytest.raises(PointaeError, match="unknown simulation parameter"):
        simulate("wt", n=2, not_a_param=1)
    with pytest.raises(PointaeError, match="needs a region"):
        simulate("wt", n=2, ctcf="x.tsv")
    assert set(PRESETS) == {"wt", "no-cohesin", "no-ctcf", "tads", "ideal", "swollen", "globule"}


def test_mixture_counts_and_labels():
    t = simulate_mixture({"wt": 0.5, "no-cohesin": 0.25, "tads": 0.25}, n=10, n_loci=12, seed=0, **FAST)
    assert len(t) == 10
    assert t.meta["condition"].value_counts().to_dict() == {"wt": 5, "no-cohesin": 3, "tads": 2}
    assert t.meta["trace_id"].is_unique
    assert set(t.attrs["conditions"]) == {"wt", "no-cohesin", "tads"}


def test_autocorrelation_of_ar1():
    rng = np.random.default_rng(0)
    a = np.exp(-1 / 5.0)
    x = np.zeros((4000, 16))
    for t in range(1, 4000):
        x[t] = a * x[t - 1] + np.sqrt(1 - a * a) * rng.normal(size=16)
    tau = decorrelation_time(autocorrelation(x, 40))
    assert 4.0 < tau < 6.0


# ---------------------------------------------------------------------------------------- cli
def test_cli_simulate_writes_file(tmp_path):
    from typer.testing import CliRunner

    from pointae.cli import app
    from pointae.data.traces import Traces

    out = tmp_path / "sim.h5"
    args = ["simulate", "--n", "12", "--loci", "10", "--seed", "1", "--out", str(out), "-q"]
    sets = ["--set", "burn_in=20", "--set", "interval=5", "--set", "chains=8"]
    r = CliRunner().invoke(app, args + ["--mix", "wt:0.5,no-cohesin:0.5"] + sets)
    assert r.exit_code == 0, r.output
    t = Traces.load(out)
    assert len(t) == 12 and t.n_loci == 10
    assert set(t.meta["condition"]) == {"wt", "no-cohesin"}
    r = CliRunner().invoke(app, args + ["--overwrite", "--set", "bogus=1"])
    assert r.exit_code == 1 and "unknown simulation parameter" in r.output
    r = CliRunner().invoke(app, args + ["--ctcf", str(tmp_path / "none.tsv")])
    assert r.exit_code == 1


def _block_contrast(t, s: int = 3) -> float:
    """Mean distance at separation s across domain boundaries over that within domains."""
    from pointae.sim.figures import mean_distance_map

    m = mean_distance_map(t.coords)
    block = np.zeros(m.shape[0], dtype=int)
    for b in t.attrs["barrier_loci_forward"]:
        block[b:] += 1
    within = [m[i, i + s] for i in range(len(block) - s) if block[i] == block[i + s]]
    across = [m[i, i + s] for i in range(len(block) - s) if block[i] != block[i + s]]
    return float(np.mean(across) / np.mean(within))


def test_tads_preset_makes_domains():
    kw = dict(n=128, n_loci=32, seed=0, chains=64)
    tads = _block_contrast(simulate("tads", **kw))
    plain = _block_contrast(simulate("no-cohesin", **kw))
    assert tads > plain + 0.03, (tads, plain)
