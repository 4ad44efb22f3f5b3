"""Self-contained reports: one HTML page (figures base64-embedded), a Markdown twin, a JSON file.

A report is a list of :class:`Section` s, each with paragraphs, :class:`Table` s and figures (PNG
bytes). :func:`write_report` writes

- ``report.html``: opens offline in any browser; tables highlight the best value per column
  (``Column.better`` = ``"min"``/``"max"``) among all rows, baselines shown as shaded rows;
- ``report.md``: the same text and tables in Markdown, figures referenced as ``figures/*.png``
  (written beside it);
- ``metrics.json``: the machine-readable numbers passed as ``metrics`` (the caller documents
  its keys under ``metrics["keys"]``).
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pointae.errors import atomic_path

__all__ = ["Column", "Table", "Section", "write_report", "format_value", "best_rows"]


@dataclass
class Column:
    """A table column: ``key`` into each row's values, header ``label``, which direction is best."""

    key: str
    label: str
    better: str | None = None  # "min", "max" or None (no highlight)
    fmt: str = "{:.3g}"


@dataclass
class Table:
    """Rows are dicts with ``name`` (first column), ``kind`` (``model``|``baseline``) and values."""

    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    note: str = ""
    name_label: str = ""


@dataclass
class Section:
    """A titled block of paragraphs, tables and figures ``(caption, png_bytes)``."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, bytes]] = field(default_factory=list)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def format_value(v, fmt: str = "{:.3g}") -> str:
    """Numbers through ``fmt``; ``None``/NaN as an em dash; anything else as ``str``."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        if isinstance(v, int) and fmt == "{:.3g}":
            return f"{v:,}"
        return fmt.format(v)
    return str(v)


def best_rows(table: Table) -> dict[str, set[int]]:
    """Row indices holding the best value of each column with a direction (ties all win)."""
    out: dict[str, set[int]] = {}
    for c in table.columns:
        if c.better not in ("min", "max"):
            continue
        vals = [(i, r.get(c.key)) for i, r in enumerate(table.rows) if _finite(r.get(c.key))]
        if len(vals) < 2:
            continue
        target = (min if c.better == "min" else max)(v for _, v in vals)
        out[c.key] = {i for i, v in vals if math.isclose(v, target, rel_tol=1e-9, abs_tol=1e-12)}
    return out


# ------------------------------------------------------------------------------------ HTML
_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px;
color:#222;line-height:1.45;padding:0 16px}
h1{font-size:1.6em;margin-bottom:0.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:4px;
margin-top:1.8em}h3{font-size:1.05em;margin-bottom:0.3em}
table{border-collapse:collapse;margin:8px 0 4px 0;font-size:0.86em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f2f2f2}
td.name,th.name{text-align:left;font-weight:600}
tr.baseline td{background:#f7f7fb;color:#444;font-style:italic}
td.best{background:#d9f2d9;font-weight:700}
tr.baseline td.best{background:#cfe8cf}
.scroll{overflow-x:auto;max-width:100%}
.note{font-size:0.82em;color:#555;margin:2px 0 10px 0}
figure{display:inline-block;margin:8px 12px 8px 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:0.82em;color:#444;max-width:1100px}
.meta{font-size:0.85em;color:#555}
code{background:#f4f4f4;padding:0 3px}
"""


def _table_html(t: Table) -> str:
    best = best_rows(t)
    head = f'<th class="name">{html.escape(t.name_label)}</th>' + "".join(
        f"<th>{html.escape(c.label)}{' ↓' if c.better == 'min' else ' ↑' if c.better == 'max' else ''}</th>"
        for c in t.columns
    )
    body = []
    for i, r in enumerate(t.rows):
        cells = [f'<td class="name">{html.escape(str(r.get("name", "")))}</td>']
        for c in t.columns:
            cls = ' class="best"' if i in best.get(c.key, ()) else ""
            cells.append(f"<td{cls}>{html.escape(format_value(r.get(c.key), c.fmt))}</td>")
        kind = html.escape(str(r.get("kind", "model")))
        body.append(f'<tr class="{kind}">' + "".join(cells) + "</tr>")
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    title = f"<h3>{html.escape(t.title)}</h3>" if t.title else ""
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'{title}<div class="scroll">{table}</div>{note}'


def _inline(text: str) -> str:
    """Escape text, then render ``code`` and **bold** spans."""
    s = html.escape(text)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)


def render_html(title: str, sections: list[Section], subtitle: str = "") -> str:
    """The whole page as one string (no external resources)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if subtitle:
        parts.append(f'<p class="meta">{_inline(subtitle)}</p>')
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        parts.extend(f"<p>{_inline(p)}</p>" for p in s.paragraphs)
        parts.extend(_table_html(t) for t in s.tables)
        for caption, png in s.figures:
            b64 = base64.b64encode(png).decode("ascii")
            parts.append(
                f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{b64}">'
                f"<figcaption>{_inline(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------ Markdown
def md_text(text) -> str:
    """Escape text for Markdown as :func:`html.escape` does for the HTML report.

    Markdown renders raw HTML, so ``<``, ``>`` and ``&`` in data-derived text (label columns, trace
    ids, file names) become entities; newlines become spaces. pointae's own markup (backticks,
    ``**bold**``) is kept, as in the HTML report's ``_inline``.
    """
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def _md_cell(text) -> str:
    """:func:`md_text` plus the table separator ``|`` escaped."""
    return md_text(text).replace("|", "\\|")


def _table_md(t: Table) -> str:
    best = best_rows(t)
    head = [_md_cell(t.name_label or " ")] + [
        _md_cell(c.label) + (" ↓" if c.better == "min" else " ↑" if c.better == "max" else "")
        for c in t.columns
    ]
    lines = []
    if t.title:
        lines += [f"**{md_text(t.title)}**", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * len(t.columns)) + "|"]
    for i, r in enumerate(t.rows):
        name = _md_cell(r.get("name", ""))
        if r.get("kind") == "baseline":
            name = f"*{name}*"
        cells = [name]
        for c in t.columns:
            v = _md_cell(format_value(r.get(c.key), c.fmt))
            cells.append(f"**{v}**" if i in best.get(c.key, ()) else v)
        lines.append("| " + " | ".join(cells) + " |")
    if t.note:
        lines += ["", f"_{md_text(t.note)}_"]
    return "\n".join(lines)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "figure"


def render_md(
    title: str, sections: list[Section], subtitle: str = "", figure_names: dict | None = None
) -> str:
    """Markdown version; figures referenced by ``figure_names[(section, index)]`` paths."""
    out = [f"# {md_text(title)}", ""]
    if subtitle:
        out += [md_text(subtitle), ""]
    for si, s in enumerate(sections):
        out += [f"## {md_text(s.title)}", ""]
        for p in s.paragraphs:
            out += [md_text(p), ""]
        for t in s.tables:
            out += [_table_md(t), ""]
        for fi, (caption, _) in enumerate(s.figures):
            name = (figure_names or {}).get((si, fi))
            if name:
                alt = md_text(caption).replace("[", "\\[").replace("]", "\\]")
                out += [f"![{alt}]({name})", "", f"_{md_text(caption)}_", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------------ writing
def _json_default(o):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


def _clean_json(obj):
    """NaN/inf -> None so the file is strict JSON."""
    if isinstance(obj, dict):
        return {str(k): _clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_json(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            return _clean_json(obj.item())
        except (ValueError, AttributeError):
            return obj
    return obj


def write_report(
    out: str | os.PathLike,
    title: str,
    sections: list[Section],
    metrics: dict | None = None,
    subtitle: str = "",
) -> dict[str, Path]:
    """Write ``report.html``, ``report.md``, ``figures/*.png`` and ``metrics.json`` into ``out``.

    Returns
    -------
    dict
        ``{"html": path, "md": path, "json": path, "figures": folder}``.
    """
    out = Path(out)
    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    names: dict[tuple[int, int], str] = {}
    used: set[str] = set()
    for si, s in enumerate(sections):
        for fi, (_caption, png) in enumerate(s.figures):
            base = f"{si:02d}_{_slug(s.title)}_{fi:02d}"
            name = base if base not in used else f"{base}_{len(used)}"
            used.add(name)
            with atomic_path(figdir / f"{name}.png") as tmp:
                tmp.write_bytes(png)
            names[(si, fi)] = f"figures/{name}.png"
    paths = {
        "html": out / "report.html",
        "md": out / "report.md",
        "json": out / "metrics.json",
        "figures": figdir,
    }
    with atomic_path(paths["html"]) as tmp:
        tmp.write_text(render_html(title, sections, subtitle), encoding="utf-8")
    with atomic_path(paths["md"]) as tmp:
        tmp.write_text(render_md(title, sections, subtitle, names), encoding="utf-8")
    write_metrics(paths["json"], metrics or {})
    return paths


def write_metrics(path: str | os.PathLike, metrics: dict) -> Path:
    """Write ``metrics`` as JSON to ``path`` atomically (NaN/inf as null, numpy values as numbers)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_clean_json(metrics), indent=2, default=_json_default, allow_nan=False))
    return path
