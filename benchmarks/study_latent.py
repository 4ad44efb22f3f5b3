"""Latent quality vs training-set size and vs objective, next to PCA of distances / log distances.

Usage::

    python benchmarks/study_latent.py --out runs/study_latent \
        [--sizes 1000 3000 10000] [--objectives ae_mse ae_log contrast] [--eval-n 3000] \
        [--samples 240000] [--max-epochs 20] [--threads 1]

Data: the demo's mixture (``pointae.analysis.demo.MIXTURE``: wt / no-cohesin / no-ctcf, 32 loci,
every trace from its own chain). One fixed evaluation set (``--eval-n`` traces, simulation seed 999)
is never trained on; for each training-set size N a fresh training set (seed N) is simulated, and
each objective trains the map encoder (latent 16, batch 32, the demo's small settings) on it:

- ``ae_mse``: the plain autoencoder (``task.loss=mse``);
- ``ae_log``: the autoencoder with the log-distance loss (``task.loss=log_mse``, the demo's);
- ``contrast``: the embedding objective (``task.name=contrast``: reconstruction with ``log_mse``
  plus NT-Xent between two views made of the inpaint and denoise corruptions);
- ``masked``: masked modelling (``task.name=inpaint`` as a bottleneck autoencoder,
  ``task.loss=log_mse``: reconstruct the whole map with 25 % of the loci hidden).

The epochs are ``min(max_epochs, samples / (0.9 N))`` (a fixed budget of training samples seen,
so larger sets get fewer, longer epochs), with early stopping as in the demo. The two PCA
baselines (16 components) are fitted on the same N training traces. Every representation is then
scored on the evaluation set by :func:`pointae.analysis.cluster.label_metrics` for ``condition``
and ``loop_state_wt`` (the ``wt`` traces' loop state): 5-fold cross-validated 15-NN accuracy with
its binomial standard error, ARI, NMI. Results are appended to ``OUT/study.json`` after each model
(a partial run is usable) and printed as one table at the end; the machine and load are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from _machine import machine_info  # benchmarks/ is on sys.path

OBJECTIVES = {
    "ae_mse": ["task.name=autoencode", "task.loss=mse"],
    "ae_log": ["task.name=autoencode", "task.loss=log_mse"],
    "contrast": ["task.name=contrast", "task.loss=log_mse"],
    "masked": ["task.name=inpaint", "task.loss=log_mse", "model.hparams.arch=autoencoder"],
}
LABELS = ("condition", "loop_state_wt")


def simulate(n: int, seed: int, n_loci: int, cache: Path):
    """The demo's mixture, one chain per trace; cached as HDF5."""
    from pointae.analysis.demo import MIXTURE, demo_labels
    from pointae.data.io import read_traces
    from pointae.sim import simulate_mixture

    path = cache / f"sim_n{n}_s{seed}_l{n_loci}.h5"
    if path.is_file():
        t = read_traces(path)
    else:
        t = simulate_mixture(MIXTURE, n=n, n_loci=n_loci, seed=seed, chains=max(1, n // len(MIXTURE)))
        t.save(path)
    demo_labels(t)
    return t


def se(acc: float, n: int) -> float:
    return float((acc * (1 - acc) / max(n, 1)) ** 0.5)


def scores(z, meta, seed: int = 0) -> dict:
    from pointae.analysis.cluster import label_metrics

    out = {}
    for lab in LABELS:
        m = label_metrics(z, meta[lab].to_numpy(), seed=seed)
        m["knn_se"] = se(m["knn_accuracy"], m["n_points"])
        out[lab] = {k: m[k] for k in ("knn_accuracy", "knn_se", "ari", "nmi", "chance_accuracy", "n_points")}
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    ap.add_argument(
        "--objectives", nargs="+", default=["ae_mse", "ae_log", "contrast"], choices=list(OBJECTIVES)
    )
    ap.add_argument("--eval-n", type=int, default=3000)
    ap.add_argument("--n-loci", type=int, default=32)
    ap.add_argument("--samples", type=int, default=90_000, help="training samples seen per model (budget)")
    ap.add_argument("--max-epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="extra section.key=value")
    a = ap.parse_args(argv)

    import numpy as np
    import torch

    from pointae.api import PointAE
    from pointae.baselines import DistancePCA
    from pointae.config import load_config
    from pointae.train import fit

    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine_info(a.threads)}", flush=True)
    result_path = a.out / "study.json"
    res = json.loads(result_path.read_text()) if result_path.is_file() else {"rows": []}
    res["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}

    def save():
        tmp = result_path.with_name(result_path.name + ".tmp")
        tmp.write_text(json.dumps(res, indent=1, default=float))
        os.replace(tmp, result_path)

    def record(row: dict, prefix: str) -> None:
        """Keep a result row (saved at once, so an interrupted study resumes) and print it."""
        res["rows"].append(row)
        save()
        print(
            f"{prefix}: " + ", ".join(f"{k} {v['knn_accuracy']:.3f}" for k, v in row.items() if k in LABELS),
            flush=True,
        )

    done = {(r["n_train"], r["name"]) for r in res["rows"]}
    ev = simulate(a.eval_n, 999, a.n_loci, a.out)
    print(
        f"evaluation set: {len(ev)} traces; "
        + ", ".join(f"{lab} {ev.meta[lab].notna().sum()}" for lab in LABELS)
    )
    for n in a.sizes:
        t0 = time.perf_counter()
        tr = simulate(n, n, a.n_loci, a.out)
        scale = tr.median_neighbour_distance()
        for name, log in (("pca_dist", False), ("pca_logdist", True)):
            if (n, name) in done:
                continue
            p = DistancePCA(n_components=16, scale=scale, log=log).fit(tr.coords)
            row = {"n_train": n, "name": name, "kind": "baseline", **scores(p.transform(ev.coords), ev.meta)}
            record(row, f"N={n} {name}")
        epochs = int(max(1, min(a.max_epochs, round(a.samples / (0.9 * n)))))
        for obj in a.objectives:
            if (n, obj) in done:
                continue
            run = a.out / "runs" / f"{obj}-n{n}"
            cfg = load_config(
                overrides=[
                    "model.repr=map",
                    "model.latent_dim=16",
                    f"train.max_epochs={epochs}",
                    "train.batch_size=32",
                    "train.patience=6",
                    "train.warmup_steps=20",
                    "train.progress=false",
                    f"train.threads={a.threads}",
                    "data.val_fraction=0.1",
                    "data.test_fraction=0.02",
                    *OBJECTIVES[obj],
                    *a.overrides,
                    f"out={run}",
                ]
            )
            cfg.overwrite = True
            t1 = time.perf_counter()
            fit(cfg, traces=tr)
            train_s = time.perf_counter() - t1
            cpu = time.process_time()
            model = PointAE.load(run)
            z = np.asarray(model.encode(ev, batch_size=256), np.float32)
            row = {
                "n_train": n,
                "name": obj,
                "kind": "model",
                "epochs_max": epochs,
                "train_seconds": round(train_s, 1),
                "process_cpu_s_total": round(cpu, 1),
                "load_average": os.getloadavg(),
                **scores(z, ev.meta),
            }
            record(row, f"N={n} {obj} ({epochs} epochs max, {train_s:.0f} s)")
        print(f"N={n} done in {time.perf_counter() - t0:.0f} s", flush=True)

    print("\nkNN accuracy (5-fold CV on the evaluation set) +- 1 SE")
    print(f"{'N':>7} {'representation':<12} " + " ".join(f"{lab:>22}" for lab in LABELS))
    for r in sorted(res["rows"], key=lambda r: (r["n_train"], r["kind"] != "baseline", r["name"])):
        cells = [f"{r[lab]['knn_accuracy']:.3f} +- {r[lab]['knn_se']:.3f}" for lab in LABELS]
        print(f"{r['n_train']:>7} {r['name']:<12} " + " ".join(f"{c:>22}" for c in cells))
    res["load_average_end"] = os.getloadavg()
    save()
    return res


if __name__ == "__main__":
    main()
