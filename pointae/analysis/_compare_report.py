"""Turn the numbers of :func:`pointae.analysis.compare.compare` into report sections and figures."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pointae.analysis.report import Column, Section, Table
from pointae.train.evaluate import BASELINE_LABELS

#: report names of the baselines: the evaluator's map baselines and the clustering baselines
_BASE_NAMES = {**BASELINE_LABELS, "pca_dist": "PCA (distances)", "pca_logdist": "PCA (log distances)"}


def _summary_section(metrics: dict) -> Section:
    s = metrics["summary"]
    table = Table(
        title="",
        columns=[Column(c["key"], c["label"], c["better"]) for c in s["columns"]],
        rows=s["rows"],
        name_label="representation",
        note="Best value per column in bold green (↓ lower is better, ↑ higher is better); baselines are the "
        "shaded italic rows. Clustering columns: latents of the "
        f"{metrics['settings']['clustering_task']} models, k-means with k = number of classes for ARI/NMI, "
        "5-fold cross-validated 15-NN accuracy.",
    )
    paras = [
        "Two regimes: **bottleneck** = every model is encoder -> latent -> decoder (the autoencoders, and "
        "denoise/inpaint models trained as such), so everything they output passed through the latent and "
        "representations can differ; **skip** = the best model for the task (denoise/inpaint task "
        "models whose skip paths carry the input past the latent). A row's clustering columns are the "
        "latents of its regime's first model (column 'latents of').",
        *[f"**{lab}.** {text.split(': ', 1)[1]}" for lab, text in metrics["verdict"].items()],
    ]
    return Section("Summary", paragraphs=paras, tables=[table])


def _verdict_sections(metrics: dict, cols: Sequence[str]) -> list[Section]:
    """One section per label: the one-sentence verdict, then the detail on the clustering models."""
    out = []
    st = metrics["settings"]
    for c in cols:
        paras = []
        if c in metrics["verdict"]:
            paras.append("**Verdict.** " + metrics["verdict"][c].split(": ", 1)[1])
        if c in metrics.get("verdict_detail", {}):
            paras.append(
                f"Detail ({st['clustering_regime']} regime, {st['clustering_task']} models): "
                + metrics["verdict_detail"][c].split(": ", 1)[1]
            )
        rows = []
        for g, per_task in metrics["clustering"].items():
            for t, per_label in per_task.items():
                for r, m in per_label[c].items():
                    if r not in ("pca_dist", "pca_logdist"):
                        rows.append({"name": f"{r} ({g}, {t})", "kind": "model", **m})
        first = next(iter(next(iter(metrics["clustering"].values())).values()))[c]
        rows += [
            {"name": _BASE_NAMES[b], "kind": "baseline", **first[b]}
            for b in ("pca_logdist", "pca_dist")
            if b in first
        ]
        tcols = [
            Column("knn_accuracy", "kNN accuracy", "max"),
            Column("ari", "ARI", "max"),
            Column("nmi", "NMI", "max"),
            Column("n_points", "traces"),
        ]
        table = Table("every model's latents", tcols, rows, name_label="latents (regime, task)")
        out.append(Section(f"Verdict: {c}", paragraphs=paras, tables=[table]))
    return out


def _settings_section(metrics: dict) -> Section:
    d, st = metrics["data"], metrics["settings"]
    c = st["corruption"]
    paras = [
        f"Data: {d['source']}: {d['n_traces']} traces x {d['n_loci']} loci, unit {d['unit']}, "
        f"{100 * d['missing_fraction']:.1f}% loci missing, median neighbour distance "
        f"{d['median_neighbour_distance']:.4g} {d['unit']}. Split (same for every run, seed "
        f"{st['split_seed']}): " + ", ".join(f"{k} {v}" for k, v in d["split_sizes"].items()) + ".",
        f"Every model: latent size {st['latent_dim']}, decoder `{st['decoder']}`, at most {st['max_epochs']} "
        f"epochs; overrides: {', '.join(f'`{o}`' for o in st['overrides']) or 'none'}."
        + "".join(
            f" {t} runs also: {', '.join(f'`{o}`' for o in ov)}."
            for t, ov in st.get("task_overrides", {}).items()
            if ov
        )
        + "".join(
            f" {t} runs of the {g} regime also: {', '.join(f'`{o}`' for o in ov)}."
            for g, per in st.get("regime_overrides", {}).items()
            for t, ov in per.items()
            if ov and any(x.endswith("-" + t) for x in st.get("regimes", {}).get(g, []))
        ),
        f"Evaluation corruptions (seed {st['eval_seed']}, identical for every model and baseline): "
        f"denoise: {c['outlier_fraction']:.0%} of observed loci displaced by {c['outlier_magnitude'][0]}-"
        f"{c['outlier_magnitude'][1]} median bonds; inpaint: {c['hide_fraction']:.0%} of observed loci "
        f"hidden ({c['run_fraction']:.0%} of them in runs of up to {c['max_run']}). Errors are measured "
        "against the measured (uncorrupted) maps on the test split.",
        f"Label columns scored: {', '.join(d['labels']) or 'none'}.",
    ]
    return Section("Data and settings", paragraphs=paras)


def _runs_section(metrics: dict, slots) -> Section:
    rows = []
    for g, r, t in slots:
        info = metrics["runs"][g][r][t]
        if info:
            rows.append(
                {
                    "name": f"{r} x {t} ({g})",
                    "kind": "model",
                    "params": info.get("param_count"),
                    "epochs": info.get("epochs"),
                    "train_s": info.get("train_seconds"),
                    "train_sps": info.get("train_samples_per_s"),
                    "infer_sps": info.get("infer_samples_per_s"),
                    "run": info.get("run_dir"),
                }
            )
    cols = [
        Column("params", "parameters"),
        Column("epochs", "epochs"),
        Column("train_s", "train time (s)"),
        Column("train_sps", "train samples/s", "max"),
        Column("infer_sps", "inference samples/s", "max"),
        Column("run", "run directory"),
    ]
    note = "Train samples/s = training traces x epochs / wall time of the run (includes validation)."
    return Section("Models: size and speed", tables=[Table("", cols, rows, note=note, name_label="run")])


def _task_section(metrics: dict, tasks, examples, unit: str) -> Section:
    from pointae.viz.maps import example_maps_figure, figure_png

    tables, figs = [], []
    for t in tasks:
        res = metrics["tasks"][t]
        rows = [
            {"name": f"{r} ({g})", "kind": "model", **v}
            for g, per in res["models"].items()
            for r, v in per.items()
        ]
        rows += [
            {"name": _BASE_NAMES.get(b, b), "kind": "baseline", **v} for b, v in res["baselines"].items()
        ]
        scored = {
            "autoencode": "observed pairs",
            "denoise": "observed pairs",
            "inpaint": "pairs touching a hidden locus",
            "contrast": "observed pairs",
        }
        cols = [
            Column("mae", f"MAE ({unit})", "min"),
            Column("rmse", f"RMSE ({unit})", "min"),
            Column("pearson", "Pearson r", "max"),
        ]
        if t == "denoise":
            cols += [
                Column("mae_changed", f"MAE at outliers ({unit})", "min"),
                Column("rmse_changed", f"RMSE at outliers ({unit})", "min"),
            ]
        cols.append(Column("n_pairs", "pairs scored"))
        tables.append(Table(f"{t} (scored on {scored[t]})", cols, rows, name_label="method"))
        ex = examples.get(t)
        if ex is not None:
            for k, tid in enumerate(ex["trace_id"]):
                grid = {}
                for name, rec in ex["recon"].items():
                    row = {"input": ex["input"][k], "model input (corrupted)": ex["corrupted"][k]}
                    row["reconstruction"] = rec[k]
                    row["truth"] = ex["input"][k]
                    row["error (recon - truth)"] = rec[k] - ex["input"][k]
                    grid[_BASE_NAMES.get(name, name)] = row
                fig = example_maps_figure(grid, unit=unit)
                figs.append(
                    (
                        f"{t}: test trace {tid}, the same trace for every representation and baseline "
                        f"(grey = missing; colour scale shared; error on a diverging scale).",
                        figure_png(fig, dpi=80),
                    )
                )
    return Section("Map quality per task (test split)", tables=tables, figures=figs)


def _curves_section(histories: dict, slots, tasks) -> Section:
    from pointae.viz.maps import _plt, figure_png

    figs = []
    if not histories:
        return Section("Training curves", paragraphs=["No history.csv found in the run directories."])
    plt = _plt()
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.3), squeeze=False)
    for ax, t in zip(axes[0], tasks):
        for k, (g, r) in enumerate(dict.fromkeys((g, r) for g, r, tt in slots if tt == t)):
            h = histories.get((g, r, t))
            if h is None or "epoch" not in h:
                continue
            train_col = next((c for c in ("train_loss_epoch", "train_loss") if c in h), None)
            for col, style, what in (("val_loss", "-", "val"), (train_col, "--", "train")):
                if col is not None and col in h and h[col].notna().any():
                    hh = h[["epoch", col]].dropna().groupby("epoch").last()
                    ax.plot(
                        hh.index + 1,
                        hh[col],
                        style,
                        color=f"C{k}",
                        marker="o",
                        ms=2.5,
                        label=f"{r} ({g}) {what}",
                    )
        ax.set_title(t, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("loss (scaled units)", fontsize=8)
        ax.set_yscale("log")
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, frameon=False)
    fig.tight_layout()
    figs.append(("Training (dashed) and validation (solid) loss per epoch.", figure_png(fig, dpi=85)))
    return Section("Training curves", figures=figs)


def _clustering_section(metrics: dict, reprs, layouts, meta: pd.DataFrame, cols: Sequence[str]) -> Section:
    from pointae.viz.maps import _plt, figure_png, scatter_layout

    task = metrics["settings"]["clustering_task"]
    regime = metrics["settings"]["clustering_regime"]
    tables = []
    for c in cols:
        row = metrics["clustering"][regime][task][c]
        rows = [{"name": r, "kind": "model", **row[r]} for r in reprs]
        rows.append({"name": "PCA (distances)", "kind": "baseline", **row["pca_dist"]})
        if "pca_logdist" in row:
            rows.append({"name": "PCA (log distances)", "kind": "baseline", **row["pca_logdist"]})
        tcols = [
            Column("ari", "ARI", "max"),
            Column("nmi", "NMI", "max"),
            Column("knn_accuracy", "kNN accuracy (5-fold CV)", "max"),
            Column("silhouette", "silhouette", "max"),
            Column("chance_accuracy", "chance accuracy"),
            Column("n_classes", "classes"),
        ]
        tables.append(
            Table(f"label: {c} ({regime} regime, {task} models)", tcols, rows, name_label="latents")
        )
    other = [(g, t) for g, per in metrics["clustering"].items() for t in per if (g, t) != (regime, task)]
    for g, t in other:
        rows = []
        for c in cols:
            for r, m in metrics["clustering"][g][t][c].items():
                if r not in ("pca_dist", "pca_logdist"):
                    rows.append({"name": f"{r} ({c})", "kind": "model", **m})
        if rows:
            tables.append(
                Table(
                    f"latents of the {t} models ({g} regime)",
                    [Column("ari", "ARI"), Column("nmi", "NMI"), Column("knn_accuracy", "kNN accuracy")],
                    rows,
                    name_label="latents (label)",
                )
            )
    figs = []
    if layouts and cols:
        plt = _plt()
        names = [*reprs, "pca_dist"]
        names = [nm for nm in names if nm in layouts]
        fig, axes = plt.subplots(
            len(cols), len(names), figsize=(3.4 * len(names), 3.2 * len(cols)), squeeze=False
        )
        for i, c in enumerate(cols):
            has = (meta[c].notna() & (meta[c].astype(str) != "")).to_numpy()  # traces in the label's scope
            y = meta[c].astype(str).to_numpy()[has]
            for j, nm in enumerate(names):
                scatter_layout(layouts[nm][has], y, ax=axes[i, j], title=f"{_BASE_NAMES.get(nm, nm)} · {c}")
        fig.tight_layout()
        layout = metrics["settings"]["layout"].upper()
        figs.append(
            (
                f"{layout} layouts of each representation's latents (columns) coloured by each label (rows); "
                "last column: the PCA-of-distances baseline.",
                figure_png(fig, dpi=75),
            )
        )
    paras = [
        "ARI/NMI compare a k-means clustering (k = number of classes) of the latents with the label; kNN "
        "accuracy is a 5-fold cross-validated 15-nearest-neighbour classifier on the latents (labels are "
        "never used in training); chance accuracy is the majority-class rate. Metrics use all traces."
    ]
    return Section("Clustering of the latents", paragraphs=paras, tables=tables, figures=figs)


def _sweep_section(metrics: dict, unit: str) -> Section:
    from pointae.viz.maps import _plt, figure_png, line_plot

    sw = metrics.get("sweeps") or {}
    if not sw:
        return Section(
            "Error vs corruption level", paragraphs=["No sweep was run (needs denoise or inpaint)."]
        )
    plt = _plt()
    fig, axes = plt.subplots(1, len(sw), figsize=(5.0 * len(sw), 3.4), squeeze=False)
    labels = {"hide_fraction": "fraction of loci hidden", "outlier_rate": "fraction of loci displaced"}
    ylab = {"hide_fraction": f"MAE on hidden pairs ({unit})", "outlier_rate": f"MAE at outliers ({unit})"}
    for ax, (key, curves) in zip(axes[0], sw.items()):
        series = {
            _BASE_NAMES.get(k, k): (np.asarray(v)[:, 0], np.asarray(v)[:, 1]) for k, v in curves.items()
        }
        dashed = [_BASE_NAMES[k] for k in curves if k in _BASE_NAMES]
        line_plot(series, labels[key], ylab[key], ax=ax, dashed=dashed, title=key.replace("_", " "))
    fig.tight_layout()
    return Section(
        "Error vs corruption level",
        paragraphs=["Models trained at one corruption level, evaluated across levels (baselines dashed)."],
        figures=[("Error as a function of the missing fraction / outlier rate.", figure_png(fig, dpi=85))],
    )


def _keys_section(metrics: dict) -> Section:
    rows = [{"name": k, "kind": "model", "doc": v} for k, v in metrics["keys"].items()]
    return Section(
        "metrics.json keys",
        paragraphs=["Every number above is in `metrics.json` beside this page; its keys:"],
        tables=[Table("", [Column("doc", "meaning")], rows, name_label="key")],
    )


def build_sections(metrics, slots, tasks, histories, examples, layouts, meta, cols, unit) -> list[Section]:
    """All sections of the comparison report, in reading order (``slots``: ``(regime, repr, task)``)."""
    st = metrics["settings"]
    lat_reprs = [r for g, r, t in slots if (g, t) == (st["clustering_regime"], st["clustering_task"])]
    return [
        _summary_section(metrics),
        *_verdict_sections(metrics, cols),
        _settings_section(metrics),
        _task_section(metrics, tasks, examples, unit),
        _clustering_section(metrics, lat_reprs, layouts, meta, cols),
        _sweep_section(metrics, unit),
        _curves_section(histories, slots, tasks),
        _runs_section(metrics, slots),
        _keys_section(metrics),
    ]
