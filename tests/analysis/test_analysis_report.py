"""The report writer, and the page rendered in a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from pointae.analysis.report import Column, Section, Table, best_rows, format_value, write_report
from pointae.viz.maps import figure_png, map_grid


def _sections(rng) -> list[Section]:
    maps = rng.uniform(0, 500, size=(3, 10, 10))
    maps = (maps + maps.transpose(0, 2, 1)) / 2
    fig = figure_png(map_grid(maps, titles=["a", "b", "c"], unit="nm"))
    t = Table(
        "errors",
        [Column("mae", "MAE", "min"), Column("acc", "accuracy", "max"), Column("n", "count")],
        [
            {"name": "map", "kind": "model", "mae": 10.0, "acc": 0.9, "n": 5},
            {"name": "graph", "kind": "model", "mae": 12.0, "acc": float("nan"), "n": 5},
            {"name": "PCA <b>", "kind": "baseline", "mae": 9.0, "acc": 0.7, "n": None},
        ],
        note="note & more",
    )
    return [
        Section("Summary", paragraphs=["**bold** and `code` <script>"], tables=[t], figures=[("maps", fig)]),
        Section("More", figures=[("again", fig)]),
    ]


def test_best_rows_and_formatting():
    t = Table("", [Column("x", "x", "min"), Column("y", "y", "max"), Column("z", "z")], [])
    t.rows = [{"x": 1.0, "y": 2.0}, {"x": 1.0, "y": float("nan")}, {"x": 3.0, "y": 1.0}]
    assert best_rows(t) == {"x": {0, 1}, "y": {0}}
    assert format_value(None) == "—" and format_value(float("nan")) == "—"
    assert format_value(1234567) == "1,234,567" and format_value(0.123456) == "0.123"


def test_write_report_files(tmp_path, rng):
    metrics = {"a": 1.0, "b": float("nan"), "c": np.float32(2.5), "d": {"e": [np.int64(3)]}}
    paths = write_report(tmp_path, "Title", _sections(rng), metrics, subtitle="sub")
    html = paths["html"].read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert html.count('src="data:image/png;base64,') == 2
    assert "http://" not in html and "https://" not in html  # nothing external: opens offline
    assert "&lt;script&gt;" in html and "<script>" not in html  # text is escaped
    assert "<b>bold</b>" in html and "<code>code</code>" in html
    # best per column: MAE of the PCA baseline row (9.0), accuracy of map (0.9)
    assert re.search(r'<tr class="baseline">.*<td class="best">9</td>', html)
    assert '<td class="best">0.9</td>' in html
    md = paths["md"].read_text()
    assert "| map | 10 | **0.9** | 5 |" in md and "| *PCA &lt;b&gt;* | **9** | 0.7 | — |" in md
    assert "figures/00_summary_00.png" in md and (tmp_path / "figures" / "00_summary_00.png").is_file()
    j = json.loads(paths["json"].read_text())  # strict JSON: NaN became null
    assert j == {"a": 1.0, "b": None, "c": 2.5, "d": {"e": [3]}}


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


@pytest.mark.viz
def test_report_renders_in_headless_chromium(tmp_path, rng):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary found (install the 'chromium' system package, as .ci/run does)")
    paths = write_report(tmp_path, "Render test", _sections(rng), {"x": 1})
    url = paths["html"].resolve().as_uri()
    common = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    png = tmp_path / "page.png"
    subprocess.run(
        [*common, f"--screenshot={png}", "--window-size=1280,2000", url],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert png.is_file() and png.stat().st_size > 10_000
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    assert img.shape[0] >= 1000 and img.shape[1] == 1280
    assert img[..., :3].std() > 0.05  # not blank: text, tables and figures drawn
    # the browser's DOM after loading: images decoded (naturalWidth > 0), all from data: URIs
    probe = tmp_path / "probe.html"
    probe.write_text(
        paths["html"]
        .read_text()
        .replace(
            "</body>",
            "<script>window.onload=function(){var i=document.images,ok=0;for(var k=0;k<i.length;k++)"
            "{if(i[k].complete&&i[k].naturalWidth>0&&i[k].src.indexOf('data:image/png')===0)ok++;}"
            "document.title='IMAGES '+ok+'/'+i.length;};</script></body>",
        )
    )
    dom = subprocess.run(
        [*common, "--dump-dom", "--virtual-time-budget=5000", probe.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    assert dom.count("<img") == 2
    assert "<title>IMAGES 2/2</title>" in dom, dom[:300]
