#!/usr/bin/python3
"""Keys, JWK Sets and tokens for tests/e2e/jwt_keys_spec.lua, made with python3-jwt (a
library no one here wrote). Run with /usr/bin/python3.

  key OUT.pem rsa|ec|ed25519            a new private key (PEM)
  jwks OUT.json KID=KEY.pem ...         the public JWK Set of those keys (KID "-": no kid)
  sign KEY.pem ALG KID CLAIMS_JSON      a compact JWS of the claims (KID "-": no kid);
                                        KEY.pem may be a secret file for HS* algorithms
"""
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


def load(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def main(argv):
    cmd = argv[1]
    if cmd == "key":
        kind = argv[3]
        if kind == "rsa":
            k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif kind == "ec":
            k = ec.generate_private_key(ec.SECP256R1())
        else:
            k = ed25519.Ed25519PrivateKey.generate()
        pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
        with open(argv[2], "wb") as f:
            f.write(pem)
    elif cmd == "jwks":
        keys = []
        for spec in argv[3:]:
            kid, path = spec.split("=", 1)
            pub = load(path).public_key()
            if isinstance(pub, rsa.RSAPublicKey):
                jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(pub))
            elif isinstance(pub, ec.EllipticCurvePublicKey):
                jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(pub))
            else:
                jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(pub))
            if kid != "-":
                jwk["kid"] = kid
            jwk["use"] = "sig"
            keys.append(jwk)
        with open(argv[2], "w") as f:
            json.dump({"keys": keys}, f)
    elif cmd == "sign":
        path, alg, kid, claims = argv[2], argv[3], argv[4], json.loads(argv[5])
        if alg.startswith("HS"):
            with open(path, "rb") as f:
                key = f.read()
        else:
            key = load(path)
        headers = {} if kid == "-" else {"kid": kid}
        sys.stdout.write(jwt.encode(claims, key, algorithm=alg, headers=headers))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
