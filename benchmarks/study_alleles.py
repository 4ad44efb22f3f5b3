"""Allele separation from structure alone on Huang et al. 2021 (Sox2, 129 vs CAST with inserted CTCF sites).

Usage::

    python benchmarks/study_alleles.py --data ../shared/data/Huang2021_mESC_Sox2_4CBS_traces.csv \
        --out runs/study_alleles [--objectives ae_log contrast] [--epochs 30] [--threads 1]

One allele of these mouse ESCs carries an insertion of CTCF binding sites between Sox2 and its
enhancer (Huang et al. 2021, Nat Genet 53: 1064); the allele (``129`` / ``CAST``) is the suffix of
the trace id. The question: how well does each representation tell the alleles apart from the
structure alone?

Steps (every number printed and written to ``OUT/alleles.json``):

1. Detection per locus and allele; loci whose detection differs by allele (two-proportion z-test,
   ``|z| > --z-max``, default 3) and the zero-length insertion-site probe are **excluded** from
   everything that follows, and traces with fewer than ``--min-observed`` (default 0.5) of the kept
   loci are dropped.
2. The **missingness-only** classifier: logistic regression on the kept loci's observed/missing
   pattern (plus the observed count), out-of-fold AUC over 5 stratified folds.
3. For each representation: PCA of distances and PCA of log distances (16 components, missing loci
   interpolated along the chain, fitted out-of-fold), and each self-supervised embedding
   (``--objectives``: map encoder, latent 16, trained on all kept traces; labels never used):
   15-NN accuracy (5-fold) and out-of-fold logistic-regression AUC of the features alone and of
   the features **plus the missingness pattern**; the gain over the missingness-only AUC is what
   structure adds beyond missingness (paired bootstrap over traces, 2,000 resamples, 95 %
   percentile intervals for every AUC, accuracy and gain). As a second check, the same AUCs on the
   well-observed traces only (``--well-observed``, default >= 70 % of the kept loci), where the
   missingness pattern varies little, next to the missingness-only classifier on that subset.
   Finished runs in ``OUT/runs/<objective>`` are reused.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from _machine import machine_info

OBJECTIVES = {
    "ae_log": ["task.name=autoencode", "task.loss=log_mse"],
    "contrast": ["task.name=contrast", "task.loss=log_mse"],
    "masked": ["task.name=inpaint", "task.loss=log_mse", "model.hparams.arch=autoencoder"],
    "ae_mse": ["task.name=autoencode", "task.loss=mse"],
}


def load_alleles(path: Path):
    """The traces with an ``allele`` meta column (the suffix of the trace id)."""
    from pointae.data.io import read_traces

    t = read_traces(path)
    if "allele" not in t.meta.columns:
        src = t.meta["trace_id"].astype(str)
        col = next((c for c in ("Trace_ID", "trace_name") if c in t.meta.columns), None)
        src = t.meta[col].astype(str) if col else src
        t.meta["allele"] = src.str.extract(r"(129|CAST)", expand=False)
    if t.meta["allele"].isna().any():
        raise SystemExit(f"{path}: could not find the allele (129/CAST) of every trace")
    return t


def oof_scores(x, y, folds: int = 5, seed: int = 0):
    """Out-of-fold logistic-regression probabilities (standardised features)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    p = np.zeros(len(y))
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        clf.fit(x[tr], y[tr])
        p[te] = clf.predict_proba(x[te])[:, 1]
    return p


def oof_knn(x, y, k: int = 15, folds: int = 5, seed: int = 0):
    """Out-of-fold 15-NN predictions (0/1)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier

    pred = np.zeros(len(y), dtype=int)
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        pred[te] = KNeighborsClassifier(k).fit(x[tr], y[tr]).predict(x[te])
    return pred


def boot_ci(fn, n: int, n_boot: int = 2000, seed: int = 0):
    """95 % percentile interval of ``fn(idx)`` over bootstrap resamples of ``n`` items."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vals = [fn(rng.integers(0, n, n)) for _ in range(n_boot)]
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return [float(lo), float(hi)]


def train_embedding(traces, run: Path, objective: list[str], epochs: int, threads: int):
    """Train (or reuse, when ``run`` holds a finished model) a latent-16 map embedding; its handle.

    The settings every study here uses; ``objective`` is one of :data:`OBJECTIVES`' override lists.
    """
    from pointae.api import PointAE
    from pointae.config import load_config
    from pointae.train import fit

    cfg = load_config(
        overrides=[
            "model.repr=map",
            "model.latent_dim=16",
            f"train.max_epochs={epochs}",
            "train.batch_size=32",
            "train.patience=6",
            "train.warmup_steps=20",
            "train.progress=false",
            f"train.threads={threads}",
            "data.test_fraction=0.02",
            *objective,
            f"out={run}",
        ]
    )
    cfg.overwrite = True
    if not (run / "model.safetensors").is_file():  # a finished run is reused (delete it to retrain)
        fit(cfg, traces=traces)
    return PointAE.load(run)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--objectives", nargs="+", default=["ae_log", "contrast"], choices=list(OBJECTIVES))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--z-max", type=float, default=3.0)
    ap.add_argument("--min-observed", type=float, default=0.5)
    ap.add_argument("--well-observed", type=float, default=0.7, help="subset: kept loci observed >= this")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)

    import numpy as np
    import torch
    from sklearn.metrics import roc_auc_score

    from pointae.baselines import DistancePCA
    from pointae.data.traces import Traces

    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine_info(a.threads)}", flush=True)
    t = load_alleles(a.data)
    allele = t.meta["allele"].astype(str).to_numpy()
    y_all = (allele == "CAST").astype(int)
    res: dict = {"data": str(a.data), "n_traces": len(t), "n_loci": t.n_loci}
    res["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}

    # 1. detection per locus and allele; exclude loci whose detection differs, and zero-length probes
    m = t.mask
    p1, p2 = m[y_all == 0].mean(0), m[y_all == 1].mean(0)
    n1, n2 = (y_all == 0).sum(), (y_all == 1).sum()
    pp = m.mean(0)
    z = (p1 - p2) / np.sqrt(np.maximum(pp * (1 - pp) * (1 / n1 + 1 / n2), 1e-12))
    zero_len = np.zeros(t.n_loci, bool)
    if t.loci is not None:
        zero_len = (t.loci["end"] - t.loci["start"]).to_numpy() <= 0
    keep = (np.abs(z) <= a.z_max) & ~zero_len
    res["detection"] = {
        "129": p1.round(3).tolist(),
        "CAST": p2.round(3).tolist(),
        "z": z.round(2).tolist(),
        "zero_length": np.flatnonzero(zero_len).tolist(),
        "excluded": np.flatnonzero(~keep).tolist(),
    }
    print(
        f"{len(t)} traces ({n1} 129, {n2} CAST) x {t.n_loci} loci; "
        f"excluded loci {np.flatnonzero(~keep).tolist()} "
        f"(|z| > {a.z_max}: {np.flatnonzero(np.abs(z) > a.z_max).tolist()}, zero-length: "
        f"{np.flatnonzero(zero_len).tolist()})",
        flush=True,
    )
    coords = t.coords[:, keep]
    obs = ~np.isnan(coords[..., 0])
    ok = obs.mean(1) >= a.min_observed
    loci = None if t.loci is None else t.loci[keep].reset_index(drop=True)
    tk = Traces(coords[ok], unit=t.unit, meta=t.meta[ok].reset_index(drop=True), loci=loci)
    y = y_all[ok]
    obs = obs[ok]
    res["kept"] = {"n_traces": int(ok.sum()), "n_loci": int(keep.sum()), "n_129": int((y == 0).sum())}
    print(f"kept {ok.sum()} traces ({(y == 0).sum()} 129) x {keep.sum()} loci", flush=True)
    miss_x = np.column_stack([obs.astype(float), obs.sum(1)])
    well = obs.mean(1) >= a.well_observed  # a subset where missingness varies little
    res["kept"]["n_well_observed"] = int(well.sum())

    rows = {}

    def score(name, feats, extra=None):
        p_miss = oof_scores(miss_x, y)
        p_feat = oof_scores(feats, y)
        p_both = oof_scores(np.column_stack([feats, miss_x]), y)
        knn = oof_knn(feats, y)
        n = len(y)

        def auc(p, idx):
            return roc_auc_score(y[idx], p[idx])

        full = np.arange(n)
        r = {
            "knn_accuracy": float((knn == y).mean()),
            "knn_ci95": boot_ci(lambda i: float((knn[i] == y[i]).mean()), n),
            "auc": float(auc(p_feat, full)),
            "auc_ci95": boot_ci(lambda i: auc(p_feat, i), n),
            "auc_with_missingness": float(auc(p_both, full)),
            "auc_with_missingness_ci95": boot_ci(lambda i: auc(p_both, i), n),
            "gain_over_missingness": float(auc(p_both, full) - auc(p_miss, full)),
            "gain_ci95": boot_ci(lambda i: auc(p_both, i) - auc(p_miss, i), n),
            **(extra or {}),
        }
        # the well-observed subset: structure features vs the missingness-only classifier there
        sub = well
        ps_feat, ps_miss = oof_scores(feats[sub], y[sub]), oof_scores(miss_x[sub], y[sub])
        ys, ns = y[sub], int(sub.sum())
        r["well_observed"] = {
            "n": ns,
            "auc": float(roc_auc_score(ys, ps_feat)),
            "auc_ci95": boot_ci(lambda i: roc_auc_score(ys[i], ps_feat[i]), ns),
            "missingness_only_auc": float(roc_auc_score(ys, ps_miss)),
            "missingness_only_auc_ci95": boot_ci(lambda i: roc_auc_score(ys[i], ps_miss[i]), ns),
        }
        rows[name] = r
        print(
            f"{name:<22} kNN {r['knn_accuracy']:.3f} [{r['knn_ci95'][0]:.3f}, {r['knn_ci95'][1]:.3f}]  "
            f"AUC {r['auc']:.3f} [{r['auc_ci95'][0]:.3f}, {r['auc_ci95'][1]:.3f}]  "
            f"with missingness {r['auc_with_missingness']:.3f}, gain over missingness "
            f"{r['gain_over_missingness']:+.3f} [{r['gain_ci95'][0]:+.3f}, {r['gain_ci95'][1]:+.3f}]; "
            f"well observed ({ns}): AUC {r['well_observed']['auc']:.3f} "
            f"[{r['well_observed']['auc_ci95'][0]:.3f}, {r['well_observed']['auc_ci95'][1]:.3f}] vs "
            f"missingness only {r['well_observed']['missingness_only_auc']:.3f}",
            flush=True,
        )

    # 2. missingness only
    p_miss = oof_scores(miss_x, y)
    knn_miss = oof_knn(miss_x, y)
    n = len(y)
    rows["missingness_only"] = {
        "knn_accuracy": float((knn_miss == y).mean()),
        "knn_ci95": boot_ci(lambda i: float((knn_miss[i] == y[i]).mean()), n),
        "auc": float(roc_auc_score(y, p_miss)),
        "auc_ci95": boot_ci(lambda i: roc_auc_score(y[i], p_miss[i]), n),
    }
    r = rows["missingness_only"]
    print(
        f"{'missingness only':<22} kNN {r['knn_accuracy']:.3f} "
        f"[{r['knn_ci95'][0]:.3f}, {r['knn_ci95'][1]:.3f}]  "
        f"AUC {r['auc']:.3f} [{r['auc_ci95'][0]:.3f}, {r['auc_ci95'][1]:.3f}]",
        flush=True,
    )

    # 3. PCA baselines (fitted out of fold) and the embeddings
    scale = tk.median_neighbour_distance()
    from sklearn.model_selection import StratifiedKFold

    for name, log in (("pca_dist", False), ("pca_logdist", True)):
        feats = np.zeros((len(y), 16))
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=1).split(feats, y):
            p = DistancePCA(n_components=16, scale=scale, log=log).fit(tk.coords[tr])
            feats[te] = p.transform(tk.coords[te])
        score(name, feats)
    for obj in a.objectives:
        run = a.out / "runs" / obj
        t0 = time.perf_counter()
        m = train_embedding(tk, run, OBJECTIVES[obj], a.epochs, a.threads)
        zz = np.asarray(m.encode(tk, batch_size=256), np.float64)
        score(obj, zz, {"train_seconds": round(time.perf_counter() - t0, 1)})
    res["results"] = rows
    res["load_average_end"] = os.getloadavg()
    path = a.out / "alleles.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(res, indent=1, default=float))
    os.replace(tmp, path)
    print(f"wrote {path}")
    return res


if __name__ == "__main__":
    main()
