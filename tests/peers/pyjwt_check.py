"""PyJWT and `cryptography` on what mcpgen writes: PyJWT verifies a minted token with
sa/public.pem (EdDSA, audience and issuer checked), `cryptography` loads sa/private.pem
(PKCS#8 v1), a token Python signs with that key verifies too, and the wrong audience or a token
of another key is refused.

Usage: pyjwt_check.py TOKEN_FILE PUBLIC_PEM PRIVATE_PEM AUDIENCE ISSUER OTHER_TOKEN_FILE; prints
one JSON object.
"""
import json, sys
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

token_path, public_path, private_path, audience, issuer, other_token = sys.argv[1:7]
token = open(token_path).read().strip()
public_pem = open(public_path, "rb").read()
private_pem = open(private_path, "rb").read()

claims = jwt.decode(token, public_pem, algorithms=["EdDSA"], audience=audience, issuer=issuer,
                    options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]})
header = jwt.get_unverified_header(token)

private = load_pem_private_key(private_pem, password=None)
assert isinstance(private, Ed25519PrivateKey), type(private)
public = load_pem_public_key(public_pem)
assert isinstance(public, Ed25519PublicKey), type(public)
same_key = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) == public.public_bytes(Encoding.Raw, PublicFormat.Raw)

# A token signed by Python with the profile's private key verifies with PyJWT too.
python_token = jwt.encode({"iss": issuer, "aud": audience, "sub": "py", "exp": claims["exp"]}, private, algorithm="EdDSA")
jwt.decode(python_token, public_pem, algorithms=["EdDSA"], audience=audience, issuer=issuer)

# The wrong audience and a token after rotation are refused.
refused = []
try:
    jwt.decode(token, public_pem, algorithms=["EdDSA"], audience="http://elsewhere/mcp", issuer=issuer)
except jwt.InvalidAudienceError:
    refused.append("audience")
try:
    jwt.decode(open(other_token).read().strip(), public_pem, algorithms=["EdDSA"], audience=audience, issuer=issuer)
except jwt.InvalidSignatureError:
    refused.append("signature")

print(json.dumps({"claims": claims, "header": header, "same_key": same_key, "refused": refused}))
