"""``pointae compare``: one model per representation x task, evaluated side by side with baselines.

Every model is trained by :func:`pointae.train.fit` with the *same* split (``data.split_seed``),
latent size, decoder, training budget and task corruption settings; only ``model.repr`` and
``task.name`` differ. Every model is then scored on the test split by the one evaluator,
:func:`pointae.train.evaluate` (the same function that writes each run's own ``metrics.json``, so
the report and the runs give identical numbers): the task's corruption with ``eval_seed``, errors
on the task's pairs, and the task's baselines of :data:`pointae.train.evaluate.BASELINES`
(``pca_dist`` for autoencode, ``neighbour_rule`` and ``corrupted_input`` for denoise,
``linear_interp`` for inpaint) on the same corrupted inputs. This module aggregates those scores
and adds:

- Clustering of every model's latents (all traces; labels are never seen in training) against each
  label column with ARI / NMI / cross-validated kNN accuracy / silhouette, next to the PCA baseline.
- Sweeps: error as a function of the hidden fraction (inpaint models) and of the outlier rate
  (denoise models), each next to its baseline.

Errors are reported in the data's unit (``mae``, ``rmse``) plus Pearson correlation of distances.
The keys of ``metrics.json`` are documented in :data:`METRIC_KEYS` (and copied into the file).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pointae import registry
from pointae.errors import PointaeError

__all__ = ["compare", "CompareResult", "METRIC_KEYS", "evaluate_maps", "summary_text"]

REPRS = registry.representations.where()
TASKS = registry.tasks.where(compare=True)

#: the two regimes every comparison runs. *bottleneck*: every model is encoder -> latent -> decoder,
#: so whatever it outputs passed through the latent (where representations can differ);
#: *skip*: the best model for the task (denoise/inpaint task models with skip paths that carry the
#: input past the latent). The autoencoders belong to the bottleneck regime only (with a skip path
#: reconstruction is the identity).
REGIMES = registry.regimes.where()

#: extra config overrides of each regime's runs, per task
REGIME_OVERRIDES: dict[str, dict[str, tuple[str, ...]]] = {
    "bottleneck": {t: ("model.hparams.arch=autoencoder",) for t in ("denoise", "inpaint")},
    "skip": {},
}


def model_slots(
    reprs: Sequence[str],
    tasks: Sequence[str],
    regimes: Sequence[str] = REGIMES,
    skip_reprs: Sequence[str] | None = None,
) -> list[tuple[str, str, str]]:
    """The ``(regime, repr, task)`` models a comparison trains, autoencoders first.

    ``autoencode`` models are listed once, under ``bottleneck`` (whatever ``regimes`` says);
    ``denoise``/``inpaint`` models once per regime; ``skip_reprs`` (default: all of ``reprs``)
    limits the skip regime to some representations.
    """
    bad = [g for g in regimes if g not in REGIMES]
    if bad or not regimes:
        raise PointaeError(f"unknown regime {(bad or [''])[0]!r}; expected any of {', '.join(REGIMES)}")
    skip = list(reprs) if skip_reprs is None else [r for r in reprs if r in skip_reprs]
    from pointae.models.builders import SKIP_TASKS

    # autoencoders (and other bottleneck-only objectives such as contrast) first
    out = [
        ("bottleneck", r, t)
        for t in sorted(tasks, key=lambda t: t != "autoencode")
        if t not in SKIP_TASKS
        for r in reprs
    ]
    for t in tasks:
        if t not in SKIP_TASKS:
            continue
        for g in REGIMES:
            if g in regimes:
                out += [(g, r, t) for r in (reprs if g == "bottleneck" else skip)]
    if not out:
        raise PointaeError("nothing to compare: the skip regime needs denoise or inpaint (or --skip-reprs)")
    return out


def run_name(regime: str, repr: str, task: str) -> str:
    """Run folder name: ``<repr>-<task>`` (skip models, autoencoders, contrast), else
    ``<repr>-<task>-bottleneck`` (denoise/inpaint as autoencoders)."""
    if regime == "bottleneck" and task in ("denoise", "inpaint"):
        return f"{repr}-{task}-bottleneck"
    return f"{repr}-{task}"


def model_label(regime: str, repr: str) -> str:
    """How a model is named in the report, the sweeps and the examples: ``map (bottleneck)``."""
    return f"{repr} ({regime})"


METRIC_KEYS = {
    "schema": "format name and version of this file: 'pointae.compare/2' (2: regimes)",
    "created": "UTC time the report was written (ISO 8601)",
    "version": "pointae version",
    "data": "dataset summary: source, n_traces, n_loci, unit, missing_fraction, label columns, split sizes",
    "settings": "what every run shares: latent_dim, decoder, overrides, split_seed, eval_seed, corruption; "
    "task_overrides: extra overrides of one task's runs (e.g. the loss); regimes: the runs of each regime; "
    "regime_overrides: what a regime adds per task; clustering_regime/clustering_task: the models whose "
    "latents the layouts and verdict_detail show",
    "regimes": "bottleneck: every model is encoder -> latent -> decoder (autoencoders; denoise/inpaint "
    "trained as such with model.hparams.arch=autoencoder, run folders <repr>-<task>-bottleneck); skip: the "
    "best model for the task (denoise/inpaint task models whose skip paths carry the input past the "
    "latent, run folders <repr>-<task>); autoencode models are bottleneck models only",
    "runs.<regime>.<repr>.<task>": "one trained model: run_dir, param_count, epochs, train_seconds, "
    "train_samples_per_s, infer_samples_per_s, reused (bool)",
    "tasks.<task>.models.<regime>.<repr>": "test-split errors of that model, see 'error metrics'",
    "tasks.<task>.baselines.<name>": "the same errors for a baseline (pca_dist, linear_interp, "
    "neighbour_rule, corrupted_input)",
    "error metrics": "mae / rmse (data unit) and pearson of distances on the scored pairs; for denoise "
    "also mae_changed / rmse_changed on pairs touching a displaced locus; n_pairs",
    "clustering.<regime>.<task>.<label>.<repr, pca_dist or pca_logdist>": "ari, nmi (k-means with k = "
    "number of classes vs the label), knn_accuracy (5-fold cross-validated, k=15), silhouette, "
    "chance_accuracy, n_classes, n_points (traces with a label; a missing label puts a trace outside "
    "that label's scope); "
    "pca_dist = PCA of the distance vector (the baseline of the verdict), pca_logdist = PCA of log "
    "distances (a scale-relative linear baseline), both with latent_dim components fitted on the train split",
    "sweeps.hide_fraction.<name>": "[[fraction, mae], ...] for inpaint models ('<repr> (<regime>)') and "
    "linear interpolation",
    "sweeps.outlier_rate.<name>": "[[rate, mae], ...] for denoise models ('<repr> (<regime>)'), neighbour "
    "rule, corrupted input",
    "verdict": "one sentence per label: the best latents of all models (representation, regime, task), by "
    "how much they beat PCA of log distances and PCA of distances (kNN accuracy, 2 SE), and the best of the "
    "other regime",
    "verdict_detail": "per label, the longer verdict on the clustering models' latents (settings."
    "clustering_regime / clustering_task): every representation vs PCA, ARI, NMI",
    "summary": "the summary table: columns (key, label, better) and rows (name, kind, regime, values); a "
    "model row's clustering columns are those of its regime's first model (latents_of)",
    "demo": "only in a `pointae demo` report: size, seed, threads (null = all cores) and wall_seconds "
    "(simulation + training + evaluation)",
}


# ------------------------------------------------------------------------------------ evaluation
def evaluate_maps(pred: np.ndarray, truth: np.ndarray, pairs: np.ndarray | None = None) -> dict:
    """Errors of predicted maps against true maps: :func:`pointae.train.evaluate.score_maps`."""
    from pointae.train.evaluate import score_maps

    return score_maps(pred, truth, pairs)


# ------------------------------------------------------------------------------------ helpers
def _read_history(run_dir: Path) -> pd.DataFrame | None:
    p = Path(run_dir) / "history.csv"
    if not p.is_file():
        return None
    try:
        return pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return None


def _param_count(model) -> int | None:
    for name in ("param_count", "n_params"):
        v = getattr(model, name, None)
        if callable(v):
            v = v()
        if isinstance(v, (int, np.integer)):
            return int(v)
    net = getattr(model, "model", None) or getattr(model, "module", None)
    if net is not None and hasattr(net, "parameters"):
        return int(sum(p.numel() for p in net.parameters()))
    return None


def _split(run_dir: Path, traces) -> dict[str, np.ndarray]:
    """Positions in ``traces`` of the run's train/val/test trace ids (``split.json``)."""
    p = Path(run_dir) / "split.json"
    if not p.is_file():
        raise PointaeError(f"{p}: no such file (is {run_dir} a finished pointae run?)")
    d = json.loads(p.read_text())
    pos = {tid: i for i, tid in enumerate(traces.trace_ids)}
    out = {}
    for k in ("train", "val", "test"):
        ids = [str(t) for t in d.get(k, [])]
        bad = [t for t in ids if t not in pos]
        if bad:
            raise PointaeError(f"{p}: trace {bad[0]!r} of the {k} split is not in the data (different data?)")
        out[k] = np.array(sorted(pos[t] for t in ids), dtype=np.int64)
    return out


def _run_training_info(run_dir: Path) -> dict:
    p = Path(run_dir) / "metrics.json"
    try:
        return dict(json.loads(p.read_text()).get("training", {}))
    except (OSError, ValueError, AttributeError):
        return {}


#: settings a reused run must share with the comparison: everything that defines the model and the
#: task (latent size, decoder, loss, corruption...) and the split; training-budget keys may differ
_REUSE_KEYS = {"model": None, "task": None, "data": ("val_fraction", "test_fraction", "split_seed")}


def _check_reused_config(run_dir: Path, cfg) -> None:
    """Refuse to reuse a run whose model, task or split settings differ from the comparison's.

    A changed default (e.g. the demo's autoencoders moving to ``log_mse``) or another
    ``latent_dim`` must not mix silently with freshly trained runs. Keys the saved config lacks
    (runs from older versions) count as the defaults of that version's dataclass fields.
    """
    import yaml

    p = Path(run_dir) / "config.yaml"
    if not p.is_file():
        return
    try:
        saved_all = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise PointaeError(f"{p}: not a readable run config ({exc.__class__.__name__})") from None
    for section, keys in _REUSE_KEYS.items():
        ours = dataclasses.asdict(getattr(cfg, section))
        defaults = dataclasses.asdict(type(getattr(cfg, section))())
        saved = saved_all.get(section) or {}
        for key in keys or ours:
            old = json.loads(json.dumps(saved.get(key, defaults[key]), default=str))
            new = json.loads(json.dumps(ours[key], default=str))
            if old != new:
                raise PointaeError(
                    f"{run_dir} was trained with {section}.{key}={old}, this comparison asks for {new}: "
                    "delete that run directory (it is retrained) or use another --runs folder"
                )


def _default_trainer(cfg, traces) -> Path:
    from pointae.train import fit

    return Path(fit(cfg, traces=traces))


def _default_loader(run_dir):
    from pointae.api import PointAE

    return PointAE.load(run_dir)


def _score_models(
    models: dict,
    cfgs: dict,
    slots: list[tuple[str, str, str]],
    tasks: Sequence[str],
    traces,
    split: dict[str, np.ndarray],
    *,
    eval_seed: int,
    batch_size: int,
    n_examples: int,
    sweeps: bool,
    run_info: dict,
    say: Callable[[str], None],
) -> tuple[dict, dict, dict]:
    """Every model's test-split scores, example maps and sweep curves, all from the one evaluator
    (:func:`pointae.train.evaluate`; baselines once per task and level). Records each model's
    inference samples/s in ``run_info``. Returns ``(task_results, examples, sweeps)``."""
    from pointae.data.transforms import distance_maps

    test, train_idx = split["test"], split["train"]
    # every score comes from the one evaluator (pointae.train.evaluate): the same corruption,
    # scorer and baselines as a run's own metrics.json
    from pointae.train.evaluate import HEADLINE, evaluate

    test_traces = traces[test]
    reference = traces.coords[train_idx]
    task_results: dict[str, dict] = {}
    examples: dict[str, dict] = {}
    for t in tasks:
        res: dict = {"models": {}, "baselines": {}}
        preds: dict[str, np.ndarray] = {}
        inputs = base_maps = None
        for g, r, _ in (s for s in slots if s[2] == t):
            ev = evaluate(
                models[(g, r, t)],
                test_traces,
                reference=reference,
                seed=eval_seed,
                task=cfgs[(g, r, t)].task,
                baselines=inputs is None,
                batch_size=batch_size,
                euclidean=False,
                keep_maps=True,
            )
            maps = ev.pop("maps")
            if inputs is None:
                inputs, base_maps = maps["inputs"], maps["baselines"]
                res["baselines"] = ev["baselines"]
            sps = ev["inference_samples_per_s"]
            run_info[g][r][t]["infer_samples_per_s"] = None if sps is None else round(sps, 1)
            res["models"].setdefault(g, {})[r] = ev["model"]
            preds[model_label(g, r)] = maps["model"]
        ex_idx = np.arange(min(n_examples, len(test)))
        if t != "autoencode" and n_examples:
            # pick example traces where the corruption changed something
            hit = np.flatnonzero(inputs.changed.any(1))
            ex_idx = hit[:n_examples] if hit.size else ex_idx
        recs = {k: v[ex_idx] for k, v in preds.items()}
        recs.update({k: v[ex_idx] for k, v in base_maps.items()})
        task_results[t] = res
        examples[t] = {
            "index": [int(test[i]) for i in ex_idx],
            "trace_id": [str(traces.trace_ids[test[i]]) for i in ex_idx],
            "input": distance_maps(inputs.clean[ex_idx]),
            "corrupted": distance_maps(inputs.coords[ex_idx]),
            "recon": recs,
        }
        say(
            f"evaluated {t}: "
            + ", ".join(
                f"{model_label(g, r)} mae={v['mae']:.4g}"
                for g, rr in res["models"].items()
                for r, v in rr.items()
            )
        )

    # ------------------------------------------------------------------ sweeps
    sweep_res: dict[str, dict] = {}
    if sweeps:
        plans = {
            "inpaint": ("hide_fraction", [0.1, 0.2, 0.3, 0.4, 0.5]),
            "denoise": ("outlier_rate", [0.05, 0.1, 0.2, 0.3]),
        }
        for t, (key, levels) in plans.items():
            if t not in tasks:
                continue
            head = HEADLINE.get(t, "mae")
            curves: dict[str, list] = {}
            for lv in levels:
                first = True
                for g, r, _ in (s for s in slots if s[2] == t):
                    ev = evaluate(
                        models[(g, r, t)],
                        test_traces,
                        reference=reference,
                        seed=eval_seed + 1,
                        level=lv,
                        task=cfgs[(g, r, t)].task,
                        baselines=first,
                        batch_size=batch_size,
                        euclidean=False,
                    )
                    curves.setdefault(model_label(g, r), []).append([lv, ev["model"][head]])
                    if first:
                        base_scores, first = ev["baselines"], False
                for name, v in base_scores.items():
                    curves.setdefault(name, []).append([lv, v[head]])
            sweep_res[key] = curves
        say("sweeps done")

    return task_results, examples, sweep_res


@dataclass
class CompareResult:
    """Everything :func:`compare` measured; ``metrics`` is what ``metrics.json`` holds."""

    out: Path
    metrics: dict
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def report(self) -> Path:
        return self.paths["html"]


# ------------------------------------------------------------------------------------ main entry
def compare(
    data,
    reprs: Sequence[str] = REPRS,
    tasks: Sequence[str] = TASKS,
    out: str | os.PathLike = "runs/compare",
    runs: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    task_overrides: Mapping[str, Sequence[str]] | None = None,
    latent_dim: int | None = None,
    decoder: str | None = None,
    labels: Sequence[str] | None = None,
    layout: str = "phate",
    eval_seed: int = 0,
    device: str | None = None,
    batch_size: int = 256,
    regimes: Sequence[str] = REGIMES,
    skip_reprs: Sequence[str] | None = None,
    sweeps: bool = True,
    n_examples: int = 1,
    trainer: Callable | None = None,
    loader: Callable | None = None,
    log: Callable[[str], None] | None = None,
) -> CompareResult:
    """Train (or reuse) one model per representation x task and write the comparison report.

    Parameters
    ----------
    data
        :class:`~pointae.Traces` or a path to a trace file.
    reprs, tasks
        Representations (``map``, ``graph``, ``voxel``) and tasks (``autoencode``, ``denoise``,
        ``inpaint``) to run.
    out
        Report folder: ``report.html``, ``report.md``, ``metrics.json``, ``figures/``; new runs go
        to ``out/runs/<repr>-<task>``.
    runs
        Folder of existing runs named ``<repr>-<task>`` to reuse (those missing are trained there).
    overrides
        ``section.key=value`` config overrides applied to every run (e.g. ``train.max_epochs=5``).
    task_overrides
        Extra overrides for the runs of one task only, applied after ``overrides`` (e.g.
        ``{"autoencode": ["task.loss=log_mse"]}``); recorded in ``settings.task_overrides``.
    latent_dim, decoder
        Shared model settings (shortcuts for ``model.latent_dim=``/``model.decoder=``).
    labels
        Label columns to score clusterings against (default: every categorical-looking meta column).
    layout
        2D layout for the clustering figures (``phate``, ``umap``, ``tsne``).
    eval_seed
        Seed of the evaluation corruptions (identical for every model and baseline).
    device
        ``train.accelerator`` for all runs (``cpu``, ``gpu``, ``auto``).
    regimes
        ``bottleneck`` (denoise/inpaint as plain encoder -> latent -> decoder autoencoders, run
        folders ``<repr>-<task>-bottleneck``) and/or ``skip`` (the task models with skip paths,
        ``<repr>-<task>``); the autoencode models (``<repr>-autoencode``) are bottleneck models
        and always run. See :data:`REGIMES`.
    skip_reprs
        Representations to run in the skip regime (default: all ``reprs``).
    trainer, loader
        Replace :func:`pointae.train.fit` / :meth:`pointae.api.PointAE.load` (tests, custom engines).
    log
        Progress callback (one line per step); silent when ``None``.

    Returns
    -------
    CompareResult
        ``metrics`` (the content of ``metrics.json``) and ``paths`` of the written files.
    """
    from pointae._version import __version__
    from pointae.analysis.cluster import DistancePCA, compute_layout, label_columns, label_metrics
    from pointae.config import TASK_NAMES, encoder_overrides, load_config
    from pointae.data.traces import Traces

    say = log or (lambda msg: None)
    reprs, tasks = list(dict.fromkeys(reprs)), list(dict.fromkeys(tasks))
    for r in reprs:  # a representation (with its default encoder) or any registered encoder
        encoder_overrides(r)
    for t in tasks:
        if t not in TASK_NAMES:
            raise PointaeError(f"unknown task {t!r}; expected any of {', '.join(TASK_NAMES)}")
    if not reprs or not tasks:
        raise PointaeError("compare needs at least one representation and one task")
    model_slots(reprs, tasks, regimes, skip_reprs)  # bad regimes fail before any training
    trainer = trainer or _default_trainer
    loader = loader or _default_loader
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    source = None
    if not isinstance(data, Traces):
        from pointae.data.io import read_traces

        source = str(data)
        data = read_traces(data)
    traces: Traces = data
    n, n_loci = len(traces), traces.n_loci
    if n < 20:
        raise PointaeError(f"compare needs at least 20 traces, got {n}")
    scale = traces.median_neighbour_distance()
    unit = traces.unit
    shared = list(overrides)
    if latent_dim is not None:
        shared.append(f"model.latent_dim={int(latent_dim)}")
    if decoder is not None:
        shared.append(f"model.decoder={decoder}")
    if device is not None:
        shared.append(f"train.accelerator={device}")
    if source is not None:
        shared.append(f"data.path={source}")
    base_cfg = load_config(overrides=shared)
    per_task = {str(k): [str(o) for o in v] for k, v in (task_overrides or {}).items()}
    for t in per_task:
        if t not in tasks:
            raise PointaeError(f"task_overrides names {t!r}, which is not among the tasks {', '.join(tasks)}")
        load_config(overrides=[*shared, *per_task[t]])  # a bad key or value fails before any training
    runs_dir = Path(runs) if runs is not None else out / "runs"

    # ------------------------------------------------------------------ train or reuse
    slots = model_slots(reprs, tasks, regimes, skip_reprs)
    models: dict[tuple[str, str, str], Any] = {}
    cfgs: dict[tuple[str, str, str], Any] = {}
    run_info: dict[str, dict[str, dict[str, dict]]] = {g: {} for g in dict.fromkeys(s[0] for s in slots)}
    histories: dict[tuple[str, str, str], pd.DataFrame] = {}
    split = None
    for g, r, t in slots:
        run_dir = runs_dir / run_name(g, r, t)
        own = [*per_task.get(t, []), *REGIME_OVERRIDES[g].get(t, ())]
        own += [*encoder_overrides(r), f"task.name={t}", f"out={run_dir}"]
        cfg = load_config(overrides=[*shared, *own])
        cfgs[(g, r, t)] = cfg
        reused = (run_dir / "model.safetensors").is_file()
        t0 = time.perf_counter()
        if reused:
            _check_reused_config(run_dir, cfg)
            say(f"reusing {run_dir}")
        else:
            say(f"training {r} x {t} ({g}) -> {run_dir}")
            cfg.overwrite = True
            run_dir = Path(trainer(cfg, traces))
        train_s = time.perf_counter() - t0
        model = loader(run_dir)
        models[(g, r, t)] = model
        sp = _split(run_dir, traces)
        if split is None:
            split = sp
        elif not np.array_equal(split["test"], sp["test"]):
            raise PointaeError(f"{run_dir}: its test split differs from the other runs (data.split_seed?)")
        hist = _read_history(run_dir)
        if hist is not None:
            histories[(g, r, t)] = hist
        tr = _run_training_info(run_dir)
        epochs = None
        if hist is not None and "epoch" in hist and len(hist):
            epochs = int(hist["epoch"].max()) + 1
        n_train = len(sp["train"])
        wall = tr.get("wall_s") or (None if reused else train_s)
        sps = tr.get("train_samples_per_s")
        if sps is None and wall and epochs:
            sps = n_train * epochs / max(wall, 1e-9)
        run_info[g].setdefault(r, {})[t] = {
            "run_dir": str(run_dir),
            "reused": bool(reused),
            "param_count": _param_count(model),
            "epochs": epochs,
            "train_seconds": None if wall is None else round(float(wall), 2),
            "train_samples_per_s": None if sps is None else round(float(sps), 1),
            "device": tr.get("device"),
        }

    train_idx = split["train"]
    d_lat = int(base_cfg.model.latent_dim)
    pca = DistancePCA(n_components=d_lat, scale=scale).fit(traces.coords[train_idx])
    # a second, scale-relative linear baseline for clustering only: PCA of log distances
    pca_log = DistancePCA(n_components=d_lat, scale=scale, log=True).fit(traces.coords[train_idx])

    # ------------------------------------------------------------------ scores (the one evaluator)
    task_results, examples, sweep_res = _score_models(
        models,
        cfgs,
        slots,
        tasks,
        traces,
        split,
        eval_seed=eval_seed,
        batch_size=batch_size,
        n_examples=n_examples,
        sweeps=sweeps,
        run_info=run_info,
        say=say,
    )

    # ------------------------------------------------------------------ clustering
    meta = traces.meta
    cols = label_columns(meta, labels)
    pca_codes = pca.transform(traces.coords)
    pca_log_codes = pca_log.transform(traces.coords)
    clustering: dict[str, dict] = {}
    layouts: dict[str, np.ndarray] = {}
    lat_regime, lat_task = slots[0][0], slots[0][2]  # the autoencoders when there are any
    base_rows = {
        c: {
            "pca_dist": label_metrics(pca_codes, meta[c].to_numpy(), seed=eval_seed),
            "pca_logdist": label_metrics(pca_log_codes, meta[c].to_numpy(), seed=eval_seed),
        }
        for c in cols
    }
    for g, r, t in slots:
        z = np.asarray(models[(g, r, t)].encode(traces, batch_size=batch_size), np.float32)
        per_label = clustering.setdefault(g, {}).setdefault(t, {})
        for c in cols:
            row = per_label.setdefault(c, {})
            row[r] = label_metrics(z, meta[c].to_numpy(), seed=eval_seed)
            row.update(base_rows[c])
        if (g, t) == (lat_regime, lat_task):
            layouts[r] = compute_layout(z, layout, seed=eval_seed)
    layouts["pca_dist"] = compute_layout(pca_codes, layout, seed=eval_seed)
    say("clustering done")

    metrics = {
        "schema": "pointae.compare/2",
        "keys": METRIC_KEYS,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "version": __version__,
        "data": {
            "source": source or str(traces.attrs.get("source", "in-memory Traces")),
            "n_traces": int(n),
            "n_loci": int(n_loci),
            "unit": unit,
            "median_neighbour_distance": float(scale),
            "missing_fraction": float(traces.missing_fraction),
            "labels": cols,
            "split_sizes": {k: int(len(v)) for k, v in split.items()},
        },
        "settings": {
            "latent_dim": int(base_cfg.model.latent_dim),
            "decoder": base_cfg.model.decoder,
            "overrides": shared,
            "task_overrides": per_task,
            "regimes": {g: sorted({f"{r}-{t}" for gg, r, t in slots if gg == g}) for g in run_info},
            "regime_overrides": {g: {t: list(v) for t, v in REGIME_OVERRIDES[g].items()} for g in run_info},
            "split_seed": int(base_cfg.data.split_seed),
            "eval_seed": int(eval_seed),
            "max_epochs": int(base_cfg.train.max_epochs),
            "corruption": {
                "outlier_fraction": base_cfg.task.outlier_fraction,
                "outlier_magnitude": list(base_cfg.task.outlier_magnitude),
                "hide_fraction": base_cfg.task.hide_fraction,
                "run_fraction": base_cfg.task.run_fraction,
                "max_run": base_cfg.task.max_run,
            },
            "layout": layout,
            "clustering_regime": lat_regime,
            "clustering_task": lat_task,
        },
        "runs": run_info,
        "tasks": task_results,
        "clustering": clustering,
        "sweeps": sweep_res,
    }
    lat_reprs = [r for g, r, t in slots if (g, t) == (lat_regime, lat_task)]
    metrics["verdict"] = _label_verdicts(clustering, cols)
    metrics["verdict_detail"] = _verdicts(clustering[lat_regime][lat_task], lat_reprs)
    metrics["summary"] = _summary_table_dict(metrics, slots, tasks, cols)

    from pointae.analysis._compare_report import build_sections

    sections = build_sections(metrics, slots, tasks, histories, examples, layouts, meta, cols, unit)
    from pointae.analysis.report import write_report

    subtitle = (
        f"pointae {__version__} · {n} traces x {n_loci} loci ({metrics['data']['source']}) · "
        f"latent {base_cfg.model.latent_dim} · decoder `{base_cfg.model.decoder}` · "
        f"split seed {base_cfg.data.split_seed} · eval seed {eval_seed} · {metrics['created']}"
    )
    paths = write_report(out, "pointae comparison report", sections, metrics, subtitle=subtitle)
    say(f"report: {paths['html']}")
    return CompareResult(out=out, metrics=metrics, paths=paths)


# ------------------------------------------------------------------------------------ summary + verdicts
def _knn_se(acc: float, n: int) -> float:
    """Binomial standard error of an accuracy measured on ``n`` points."""
    return float(np.sqrt(max(acc * (1 - acc), 0.0) / max(n, 1)))


def _verdicts(per_label: dict[str, dict], reprs: Sequence[str]) -> dict[str, str]:
    """One sentence per label: who beats PCA on kNN accuracy, beyond two standard errors or not."""
    out = {}
    for lab, row in per_label.items():
        base = row["pca_dist"]
        acc = {r: row[r]["knn_accuracy"] for r in reprs}
        ari = {r: row[r]["ari"] for r in reprs}
        b_acc = base["knn_accuracy"]
        if min([*acc.values(), b_acc]) >= 0.99:
            out[lab] = (
                f"{lab}: separated perfectly by every representation and by PCA "
                f"(kNN accuracy >= 0.99 for all); this label does not discriminate between them."
            )
            continue
        n = base["n_points"]
        parts = [f"{r} {acc[r]:.3f} (ARI {ari[r]:.3f})" for r in sorted(reprs, key=lambda r: -acc[r])]
        text = (
            f"{lab}: kNN accuracy {', '.join(parts)}; PCA of distances {b_acc:.3f} "
            f"(ARI {base['ari']:.3f}); chance {base['chance_accuracy']:.3f}. "
        )
        margin = {r: 2 * np.hypot(_knn_se(acc[r], n), _knn_se(b_acc, n)) for r in reprs}
        clear = [r for r in reprs if acc[r] - b_acc > margin[r]]
        slight = [r for r in reprs if 0 < acc[r] - b_acc <= margin[r]]
        if clear:
            best = max(clear, key=lambda r: acc[r])
            text += (
                f"Beating PCA by more than two standard errors: {', '.join(clear)}; best {best} "
                f"(+{acc[best] - b_acc:.3f} kNN accuracy, 2 SE = {margin[best]:.3f})."
            )
        elif slight:
            text += (
                f"{', '.join(slight)} score above PCA but within two standard errors ({n} points): "
                "no clear winner over PCA."
            )
        else:
            text += "No representation beats PCA of distances on this label."
        # ARI / NMI: no error bar, so only stated, never called a win on their own
        for key, name in (("ari", "ARI"), ("nmi", "NMI")):
            above = [r for r in reprs if row[r][key] > base[key]]
            if above:
                vals = ", ".join(f"{r} {row[r][key]:.3f}" for r in above)
                text += f" {name} above PCA ({base[key]:.3f}): {vals}."
        log = row.get("pca_logdist")
        if log is not None:
            text += (
                f" PCA of log distances: kNN accuracy {log['knn_accuracy']:.3f}, ARI {log['ari']:.3f}, "
                f"NMI {log['nmi']:.3f}"
            )
            top = max(reprs, key=lambda r: acc[r])
            gap = acc[top] - log["knn_accuracy"]
            m2 = 2 * np.hypot(_knn_se(acc[top], n), _knn_se(log["knn_accuracy"], n))
            if gap > m2:
                text += f"; {top} beats it by more than two standard errors (+{gap:.3f}, 2 SE = {m2:.3f})."
            elif gap > 0:
                text += f"; {top} is above it within two standard errors (+{gap:.3f}, 2 SE = {m2:.3f})."
            else:
                text += f"; no representation is above it on kNN accuracy (best {top} {acc[top]:.3f})."
        out[lab] = text
    return out


def _summary_table_dict(metrics: dict, slots, tasks, cols) -> dict:
    """Rows: each representation per regime, then the baselines; columns: task errors and clustering
    metrics (each row's clustering from its regime's first model: the autoencoder for bottleneck)."""
    unit = metrics["data"]["unit"]
    columns = []
    rows: dict[tuple[str, str], dict] = {}
    for g, r, _ in slots:
        rows.setdefault((g, r), {"name": model_label(g, r), "kind": "model", "regime": g})
    lat = {}  # (regime, repr) -> the task whose latents the row shows
    for g, r, t in slots:
        lat.setdefault((g, r), t)
    base_rows: dict[str, dict] = {}
    from pointae.train.evaluate import BASELINE_LABELS

    names = {**BASELINE_LABELS, "pca_dist": "PCA (distances)", "pca_logdist": "PCA (log distances)"}
    for t in tasks:
        res = metrics["tasks"][t]
        key = f"{t}_mae"
        what = {"denoise": "pairs at outliers", "inpaint": "hidden pairs"}.get(t, "observed pairs")
        columns.append({"key": key, "label": f"{t} MAE ({unit}, {what})", "better": "min"})
        field_ = "mae_changed" if t == "denoise" else "mae"
        for g, per in res["models"].items():
            for r, v in per.items():
                rows[(g, r)][key] = v[field_]
        for b, v in res["baselines"].items():
            base_rows.setdefault(b, {"name": names.get(b, b), "kind": "baseline"})[key] = v[field_]
    for c in cols:
        for m, lab in (("ari", "ARI"), ("nmi", "NMI"), ("knn_accuracy", "kNN acc")):
            key = f"{c}_{m}"
            columns.append({"key": key, "label": f"{c} {lab}", "better": "max"})
            for (g, r), row in rows.items():
                row[key] = metrics["clustering"][g][lat[(g, r)]][c][r][m]
            first = metrics["clustering"][slots[0][0]][slots[0][2]][c]
            for b in ("pca_dist", "pca_logdist"):
                if b in first:
                    base_rows.setdefault(b, {"name": names[b], "kind": "baseline"})[key] = first[b][m]
    columns.append({"key": "latents_of", "label": "latents of", "better": None})
    columns.append({"key": "params", "label": "params", "better": None})
    columns.append({"key": "train_sps", "label": "train samples/s", "better": None})
    columns.append({"key": "infer_sps", "label": "inference samples/s", "better": None})
    for (g, r), row in rows.items():
        info = metrics["runs"][g][r][lat[(g, r)]]
        row["latents_of"] = lat[(g, r)]
        row["params"] = info.get("param_count")
        row["train_sps"] = info.get("train_samples_per_s")
        row["infer_sps"] = info.get("infer_samples_per_s")
    return {"columns": columns, "rows": [*rows.values(), *base_rows.values()]}


def _label_verdicts(clustering: dict, cols: Sequence[str]) -> dict[str, str]:
    """One sentence per label: the best latents of all models (which representation, regime and
    task), by how much they beat PCA of log distances and PCA of distances (kNN accuracy, two
    binomial standard errors on the label's points), and the best latents of the other regime."""
    out = {}
    for c in cols:
        cand = []  # (acc, regime, repr, task)
        base = None
        for g, per_task in clustering.items():
            for t, per_label in per_task.items():
                row = per_label[c]
                base = base or row
                cand += [
                    (row[r]["knn_accuracy"], g, r, t) for r in row if r not in ("pca_dist", "pca_logdist")
                ]
        if base is None or not cand:
            continue
        n = base["pca_dist"]["n_points"]
        acc, g, r, t = max(cand, key=lambda x: x[0])
        b_acc = {k: base[k]["knn_accuracy"] for k in ("pca_logdist", "pca_dist") if k in base}
        if min([acc, *b_acc.values()]) >= 0.99 and min(x[0] for x in cand) >= 0.99:
            out[c] = (
                f"{c}: separated perfectly by every representation and both PCA baselines "
                "(kNN accuracy >= 0.99); this label does not discriminate between them."
            )
            continue
        who = f"{r} ({g} regime, {t} model)"
        lead = ""
        parts = []
        for k, name in (("pca_logdist", "PCA of log distances"), ("pca_dist", "PCA of distances")):
            if k not in b_acc:
                continue
            gap = acc - b_acc[k]
            m2 = 2 * float(np.hypot(_knn_se(acc, n), _knn_se(b_acc[k], n)))
            how = (
                "beyond two standard errors"
                if gap > m2
                else ("within noise" if abs(gap) <= m2 else "below it beyond two standard errors")
            )
            parts.append(f"{gap:+.3f} over {name} ({b_acc[k]:.3f}; 2 SE = {m2:.3f}, {how})")
            if not lead:  # the sentence opens with the winner against the strongest baseline named first
                lead = f"{who} wins" if gap > m2 else (f"{name} wins" if gap < -m2 else "no clear winner")
        text = f"{c}: {lead}; best latents {who}, kNN accuracy {acc:.3f} on {n} traces, " + " and ".join(
            parts
        )
        other = [x for x in cand if x[1] != g]
        if other:
            a2, g2, r2, t2 = max(other, key=lambda x: x[0])
            text += f"; best under the {g2} regime: {r2} ({t2} model) {a2:.3f}"
        out[c] = text + "."
    return out


def summary_text(metrics: dict) -> str:
    """The summary table for the terminal, transposed: one line per metric, one column per method."""
    from pointae.analysis.report import format_value

    cols = metrics["summary"]["columns"]
    rows = metrics["summary"]["rows"]
    short = {
        "PCA (distances)": "PCA",
        "PCA (log distances)": "PCA-log",
        "linear interpolation": "interp",
        "neighbour rule": "nbr-rule",
        "corrupted input (no correction)": "no-fix",
    }
    head = ["", *[short.get(r["name"], r["name"]) for r in rows]]
    body = []
    for c in cols:
        vals = [r.get(c["key"]) for r in rows]
        cells = [format_value(v) for v in vals]
        finite = [v for v in vals if isinstance(v, (int, float)) and v == v]
        if c.get("better") in ("min", "max") and len(finite) > 1:
            best = (min if c["better"] == "min" else max)(finite)
            cells = [f"*{s}" if v == best else s for s, v in zip(cells, vals)]
        arrow = {"min": " (lower better)", "max": " (higher better)"}.get(c.get("better"), "")
        body.append([c["label"] + arrow, *cells])
    widths = [max(len(str(line[i])) for line in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(
            str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(zip(line, widths))
        )
        for line in [head, *body]
    ]
    return "\n".join([*lines, "(* = best in row; PCA/PCA-log/interp/nbr-rule/no-fix are baselines)"])
