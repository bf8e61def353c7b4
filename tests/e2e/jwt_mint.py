#!/usr/bin/python3
"""Keys, JWK Sets and tokens for the JWT e2e tests and bench W8, made with libraries no
one here wrote: Debian's python3-jwt (PyJWT) and python3-cryptography. Run it with
/usr/bin/python3 (the system interpreter that has them).

  jwt_mint.py keys DIR
      Generates DIR/{rsa,rsa2,ec256,ec384,ec521,ed25519}.pem (private keys), rsa.pub.pem,
      hs.key (48 random base64url characters: the HS* shared secret), jwks.json (the public keys, kids
      "rsa", "rsa2", "ec256", "ec384", "ec521", "ed") and jwks_one.json (the "rsa" key
      alone, without a kid).
  jwt_mint.py jwks OUT KID=PEM...
      Writes the JWK Set of the given PEM keys (private or public) to OUT.
  jwt_mint.py mint DIR < requests.json > tokens.json
      requests.json: { NAME: REQUEST, ... }; prints { NAME: TOKEN, ... }. A REQUEST is
        alg     "RS256" ... "EdDSA", "HS256" ..., or "none"
        key     a key of DIR ("rsa" -> DIR/rsa.pem; for HS*: "hs" -> the bytes of DIR/hs.key,
                "rsa.pub" -> the bytes of DIR/rsa.pub.pem) or a path
        kid     the header's kid (absent or null: no kid)
        claims  the payload; exp_in / nbf_in / iat_in are seconds from now (turned into
                exp / nbf / iat), null values are left out. Without claims: iss, aud,
                sub, iat, exp (now + 600).
        defaults  false: only the given claims
        header  extra header fields
        manual  true: sign with hmac/this script instead of PyJWT (PyJWT refuses an
                asymmetric PEM as an HMAC secret, as it should: the confusion attack)
        tamper  "flip": one byte of the signature changed
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ISSUER = "https://idp.test/realm"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def pem_private(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def pem_public(k):
    return k.public_key().public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)


def load_key(path):
    data = open(path, "rb").read()
    if b"PRIVATE KEY" in data:
        return serialization.load_pem_private_key(data, password=None)
    return serialization.load_pem_public_key(data)


def uint_b64(n, size=None):
    """A big-endian unsigned integer, base64url: minimal length (RSA's n and e) or exactly
    size bytes (EC coordinates, RFC 7518 6.2.1.2: PyJWT 2.6 drops their leading zeros)."""
    if size is None:
        size = max(1, (n.bit_length() + 7) // 8)
    return b64(n.to_bytes(size, "big"))


EC_CURVES = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48), "secp521r1": ("P-521", 66)}


def jwk_of(key, kid):
    """The public JWK of a cryptography key (private or public), with use and kid."""
    pub = key.public_key() if hasattr(key, "public_key") else key
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        d = {"kty": "RSA", "n": uint_b64(nums.n), "e": uint_b64(nums.e)}
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        crv, size = EC_CURVES[pub.curve.name]
        nums = pub.public_numbers()
        d = {"kty": "EC", "crv": crv, "x": uint_b64(nums.x, size), "y": uint_b64(nums.y, size)}
    elif isinstance(pub, ed25519.Ed25519PublicKey):
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        d = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
    else:
        raise SystemExit("unsupported key type: %r" % pub)
    d["use"] = "sig"
    if kid:
        d["kid"] = kid
    return d


def cmd_keys(d):
    os.makedirs(d, exist_ok=True)
    keys = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "rsa2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec256": ec.generate_private_key(ec.SECP256R1()),
        "ec384": ec.generate_private_key(ec.SECP384R1()),
        "ec521": ec.generate_private_key(ec.SECP521R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }
    for name, k in keys.items():
        write(os.path.join(d, name + ".pem"), pem_private(k), 0o600)
    write(os.path.join(d, "rsa.pub.pem"), pem_public(keys["rsa"]))
    # 48 printable bytes and no newline: the file is the secret, whatever a reader trims.
    write(os.path.join(d, "hs.key"), b64(os.urandom(36)).encode(), 0o600)
    kids = {"rsa": "rsa", "rsa2": "rsa2", "ec256": "ec256", "ec384": "ec384", "ec521": "ec521",
            "ed25519": "ed"}
    jwks = {"keys": [jwk_of(keys[n], kid) for n, kid in kids.items()]}
    write(os.path.join(d, "jwks.json"), json.dumps(jwks, indent=1).encode())
    write(os.path.join(d, "jwks_one.json"), json.dumps({"keys": [jwk_of(keys["rsa"], None)]}).encode())


def cmd_jwks(out, pairs):
    keys = []
    for p in pairs:
        kid, path = p.split("=", 1)
        keys.append(jwk_of(load_key(path), kid))
    write(out, json.dumps({"keys": keys}).encode())


def claims_of(req, now):
    c = {}
    if req.get("defaults", True):
        c = {"iss": ISSUER, "aud": "pets", "sub": "user-1", "iat": now, "exp": now + 600}
    for k, v in (req.get("claims") or {}).items():
        if k in ("exp_in", "nbf_in", "iat_in"):
            c[k[:3]] = now + v
        else:
            c[k] = v
    return {k: v for k, v in c.items() if v is not None}


def secret_of(d, key):
    path = key if "/" in key else os.path.join(d, {"hs": "hs.key", "rsa.pub": "rsa.pub.pem"}.get(key, key))
    return open(path, "rb").read()


def private_key_of(d, key):
    return load_key(key if "/" in key else os.path.join(d, key + ".pem"))


HMACS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def mint(d, req, now):
    alg = req["alg"]
    header = {"alg": alg, "typ": "JWT"}
    if req.get("kid"):
        header["kid"] = req["kid"]
    header.update(req.get("header") or {})
    claims = claims_of(req, now)
    if req.get("manual") or alg == "none":
        signing_input = (b64(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64(json.dumps(claims, separators=(",", ":")).encode()))
        if alg == "none":
            sig = b""
        elif alg in HMACS:
            sig = hmac.new(secret_of(d, req["key"]), signing_input.encode(), HMACS[alg]).digest()
        else:
            raise SystemExit("manual signing is for HS* and none only")
        tok = signing_input + "." + b64(sig)
    else:
        key = secret_of(d, req["key"]) if alg in HMACS else private_key_of(d, req["key"])
        extra = {k: v for k, v in header.items() if k not in ("alg",)}
        tok = jwt.encode(claims, key, algorithm=alg, headers=extra)
    if req.get("tamper") == "flip":
        h, p, s = tok.split(".")
        sig = bytearray(unb64(s))
        sig[len(sig) // 2] ^= 0x01
        tok = h + "." + p + "." + b64(bytes(sig))
    return tok


def cmd_mint(d):
    reqs = json.load(sys.stdin)
    now = int(time.time())
    out = {name: mint(d, req, now) for name, req in reqs.items()}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


def main(argv):
    if len(argv) >= 2 and argv[0] == "keys":
        cmd_keys(argv[1])
    elif len(argv) >= 3 and argv[0] == "jwks":
        cmd_jwks(argv[1], argv[2:])
    elif len(argv) >= 2 and argv[0] == "mint":
        cmd_mint(argv[1])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
