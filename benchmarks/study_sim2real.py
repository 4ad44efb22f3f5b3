"""Simulation to real: does a model trained only on simulated Sox2 alleles separate the real ones?

Usage::

    python benchmarks/study_sim2real.py --data ../shared/data/Huang2021_mESC_Sox2_4CBS_traces.csv \
        --out runs/study_sim2real [--n 1500] [--epochs 15] [--threads 1]

Huang et al. 2021 (Nat Genet 53: 1064) inserted CTCF binding sites (the file name: 4CBS) between
Sox2 and its enhancer on one allele of a 129 x CAST hybrid; the data's zero-length probe marks the
insertion (chr3:34,726,078, mm10). Without internet the site table is written from that description;
the assumptions (stated in docs/analysis.md) are:

- the region (chr3:34,601,078-34,806,078) has **no native barrier** in either condition (the native
  condition is the ``no-ctcf`` preset: LEFs, every barrier occupancy 0);
- the insertion is **4 sites** at the probe position, 20 bp apart, **two forward and two reverse**
  (orientation not known here; this blocks LEFs from both sides), each with ``fc`` 60 (occupancy
  ~0.94 with the simulator's logistic rule; 1 - (1 - p)^4 ~ 1 on the monomer);
- 41 loci of 5 kb (the file's bins; the zero-length probe is dropped from the real traces), one
  monomer per locus, the simulator's other defaults.

Steps (every number printed and written to ``OUT/sim2real.json``):

1. Write the two site tables (``OUT/sox2_native.tsv`` has no rows, kept for the record;
   ``OUT/sox2_4cbs.tsv`` the insertion) and simulate ``--n`` conformations of each condition.
2. Put the simulations into the real data's frame: scale each simulated set so that its median
   neighbour distance equals the real traces' one, and give every simulated trace the
   observed/missing pattern of a real trace drawn at random (from both alleles pooled, so
   missingness carries no label in the simulations).
3. Which real allele looks inserted: the insulation across the insertion site, the mean log
   distance of pairs that straddle it minus that of pairs at the same genomic separation on one
   side (within ``--window`` loci), per allele and in each simulated condition, with bootstrap
   intervals over traces.
4. Train an autoencoder (map encoder, latent 16, ``log_mse``) on the simulations only; a logistic
   regression on its latents with the simulated labels (insertion = 1), and the same on 16 PCA
   components of log distances fitted on the simulations. Apply both to the real traces (with at
   least ``--min-observed`` of the 41 loci observed) and report the AUC of "CAST = insertion" with
   a bootstrap 95 % interval (2,000 resamples over traces); AUC < 0.5 means the classifier
   assigns the insertion to 129. The in-simulation AUC on held-out simulations is the ceiling.
5. Control: the loci whose real detection differs by allele (two-proportion |z| > ``--z-max``) are
   masked in every real and simulated trace and both classifiers are refitted on the simulations
   (the autoencoder is reused) and reapplied, so the real alleles' different missingness there
   cannot drive the score.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info  # noqa: E402
from study_alleles import OBJECTIVES, boot_ci, load_alleles, train_embedding  # noqa: E402

REGION = ("chr3", 34_601_078, 34_806_078)
INSERTION = 34_726_078
HEADER = "chrom\tstart\tend\tfc\tsummitDist\n"


def write_tables(out: Path, fc: float = 60.0) -> tuple[Path, Path]:
    """The native (empty) and inserted (4 sites, two per orientation) CTCF site tables."""
    native, ins = out / "sox2_native.tsv", out / "sox2_4cbs.tsv"
    native.write_text(HEADER)
    rows = [
        f"{REGION[0]}\t{INSERTION + 20 * i}\t{INSERTION + 20 * i + 20}\t{fc}\t{1 if i < 2 else -1}\n"
        for i in range(4)
    ]
    ins.write_text(HEADER + "".join(rows))
    return native, ins


def insulation(coords, site: int, window: int):
    """Per-trace insulation across ``site`` (the boundary between loci site-1 and site).

    For each genomic separation s < 2 * window: the mean log distance of the pairs that straddle the
    site (both loci within ``window`` of it) minus that of the pairs at separation s that lie on one
    side (within 2 * window of the site); the mean of these differences over s. Observed pairs only;
    0 for a uniform chain, > 0 when the two sides are apart.
    """
    import numpy as np

    n_loci = coords.shape[1]
    d = np.linalg.norm(coords[:, :, None] - coords[:, None, :], axis=-1)
    ld = np.log(d + 1e-6)
    diffs = []
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a separation with no observed pair -> NaN
        for s in range(1, 2 * window):
            cross = [(i, i + s) for i in range(site - window, site) if site <= i + s < site + window]
            lo, hi = max(0, site - 2 * window), min(n_loci, site + 2 * window)
            same = [(a, a + s) for a in range(lo, hi - s) if a + s < site or a >= site]
            if not cross or not same:
                continue
            c = np.nanmean(np.stack([ld[:, a, b] for a, b in cross], 1), 1)
            o = np.nanmean(np.stack([ld[:, a, b] for a, b in same], 1), 1)
            diffs.append(c - o)
        return np.nanmean(np.stack(diffs, 1), 1)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=1500, help="simulated conformations per condition")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--min-observed", type=float, default=0.5)
    ap.add_argument(
        "--z-max", type=float, default=3.0, help="control: mask loci with allele-biased detection"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)

    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from pointae.baselines import DistancePCA
    from pointae.data.traces import Traces
    from pointae.sim import simulate

    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine_info(a.threads)}", flush=True)
    res: dict = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}}

    # real traces: drop the zero-length probe, keep the 41 bins
    t = load_alleles(a.data)
    bins = (t.loci["end"] - t.loci["start"]).to_numpy() > 0
    coords_r = t.coords[:, bins]
    obs_r = ~np.isnan(coords_r[..., 0])
    ok = obs_r.mean(1) >= a.min_observed
    y_r = (t.meta["allele"].astype(str).to_numpy() == "CAST").astype(int)
    real = Traces(coords_r[ok], unit=t.unit, meta=t.meta[ok].reset_index(drop=True))
    y_r, obs_r = y_r[ok], obs_r[ok]
    n_loci = int(bins.sum())
    site = int(np.searchsorted(t.loci["start"].to_numpy()[bins], INSERTION))  # first bin after the insertion
    res["real"] = {"n_traces": len(real), "n_cast": int(y_r.sum()), "n_loci": n_loci, "site_locus": site}
    print(f"real: {len(real)} traces ({y_r.sum()} CAST) x {n_loci} loci; insertion before locus {site}")

    # 1. site tables and simulations
    native_tsv, ins_tsv = write_tables(a.out)
    region = f"{REGION[0]}:{REGION[1]}-{REGION[2]}"
    t0 = time.perf_counter()
    sim_n = simulate("no-ctcf", n=a.n, n_loci=n_loci, seed=a.seed, region=region)
    sim_i = simulate("wt", n=a.n, n_loci=n_loci, seed=a.seed + 1, region=region, ctcf=str(ins_tsv))
    res["simulation"] = {
        "seconds": round(time.perf_counter() - t0, 1),
        "barrier_loci_forward": sim_i.attrs.get("barrier_loci_forward"),
        "barrier_loci_reverse": sim_i.attrs.get("barrier_loci_reverse"),
    }
    print(f"simulated 2 x {a.n}: {res['simulation']}", flush=True)

    # 2. the real frame: scale and missingness
    rng = np.random.default_rng(a.seed)
    scale_r = real.median_neighbour_distance()
    xs = np.concatenate([sim_n.coords, sim_i.coords]).astype(np.float64)
    ys = np.r_[np.zeros(a.n, int), np.ones(a.n, int)]
    xs *= scale_r / Traces(xs.astype(np.float32), unit="nm").median_neighbour_distance()
    full_sim = xs.copy()
    masks = obs_r[rng.integers(0, len(real), len(xs))]
    xs[~masks] = np.nan
    perm = rng.permutation(len(xs))
    xs, ys, full_sim = xs[perm], ys[perm], full_sim[perm]
    sim = Traces(xs.astype(np.float32), unit=real.unit)
    res["scale_nm"] = float(scale_r)

    # 3. insulation across the insertion site
    ins = {}

    def ins_row(name, v):
        v = v[~np.isnan(v)]
        ci = boot_ci(lambda i: float(v[i].mean()), len(v))
        ins[name] = {"mean": float(v.mean()), "ci95": ci, "n": len(v)}
        print(f"insulation {name:<18} {v.mean():+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]", flush=True)

    ins_row("real 129", insulation(real.coords[y_r == 0], site, a.window))
    ins_row("real CAST", insulation(real.coords[y_r == 1], site, a.window))
    ins_row("sim native", insulation(full_sim[ys == 0], site, a.window))
    ins_row("sim insertion", insulation(full_sim[ys == 1], site, a.window))
    res["insulation"] = ins

    # 4. classifiers trained on simulations only
    n_tr = int(0.8 * len(xs))
    tr, te = np.arange(n_tr), np.arange(n_tr, len(xs))
    rows = {}

    def score(name, f_sim, f_real, extra=None):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(f_sim[tr], ys[tr])
        p_te = clf.predict_proba(f_sim[te])[:, 1]
        p = clf.predict_proba(f_real)[:, 1]
        r = {
            "sim_heldout_auc": float(roc_auc_score(ys[te], p_te)),
            "real_auc_cast_is_insertion": float(roc_auc_score(y_r, p)),
            "real_auc_ci95": boot_ci(lambda i: roc_auc_score(y_r[i], p[i]), len(y_r)),
            "real_mean_p_insertion": {"129": float(p[y_r == 0].mean()), "CAST": float(p[y_r == 1].mean())},
            **(extra or {}),
        }
        r["assigned_insertion_to"] = "CAST" if r["real_auc_cast_is_insertion"] > 0.5 else "129"
        rows[name] = r
        print(
            f"{name:<31} held-out sim AUC {r['sim_heldout_auc']:.3f}; real AUC (CAST = insertion) "
            f"{r['real_auc_cast_is_insertion']:.3f} "
            f"[{r['real_auc_ci95'][0]:.3f}, {r['real_auc_ci95'][1]:.3f}]"
            f"; mean p(insertion) 129 {r['real_mean_p_insertion']['129']:.3f}, CAST "
            f"{r['real_mean_p_insertion']['CAST']:.3f}",
            flush=True,
        )

    pca = DistancePCA(n_components=16, scale=scale_r, log=True).fit(sim.coords[tr])
    score("pca_logdist", pca.transform(sim.coords), pca.transform(real.coords))

    run = a.out / "runs" / "ae_log"
    t0 = time.perf_counter()
    m = train_embedding(Traces(sim.coords[tr], unit=sim.unit), run, OBJECTIVES["ae_log"], a.epochs, a.threads)
    z_sim = np.asarray(m.encode(sim, batch_size=256), np.float64)
    z_real = np.asarray(m.encode(real, batch_size=256), np.float64)
    score("ae_log", z_sim, z_real, {"train_seconds": round(time.perf_counter() - t0, 1)})

    # control: the loci whose real detection differs by allele (|z| > --z-max) masked in every trace,
    # real and simulated, so that the real alleles no longer differ in where they are missing there
    p1, p2 = obs_r[y_r == 0].mean(0), obs_r[y_r == 1].mean(0)
    pp = obs_r.mean(0)
    zz = (p1 - p2) / np.sqrt(np.maximum(pp * (1 - pp) * (1 / (y_r == 0).sum() + 1 / (y_r == 1).sum()), 1e-12))
    biased = np.abs(zz) > a.z_max
    res["allele_biased_loci"] = np.flatnonzero(biased).tolist()
    print(f"control: loci {res['allele_biased_loci']} (detection differs by allele) masked everywhere")
    sim_b, real_b = sim.coords.copy(), real.coords.copy()
    sim_b[:, biased], real_b[:, biased] = np.nan, np.nan
    pca_b = DistancePCA(n_components=16, scale=scale_r, log=True).fit(sim_b[tr])
    score("pca_logdist_biased_loci_masked", pca_b.transform(sim_b), pca_b.transform(real_b))
    zb_sim = np.asarray(m.encode(Traces(sim_b, unit=sim.unit), batch_size=256), np.float64)
    zb_real = np.asarray(m.encode(Traces(real_b, unit=real.unit), batch_size=256), np.float64)
    score("ae_log_biased_loci_masked", zb_sim, zb_real)
    res["results"] = rows
    res["load_average_end"] = os.getloadavg()
    path = a.out / "sim2real.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(res, indent=1, default=float))
    os.replace(tmp, path)
    print(f"wrote {path}")
    return res


if __name__ == "__main__":
    main()
