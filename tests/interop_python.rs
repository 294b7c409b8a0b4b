//! Interoperability with the Python tools the original product's users have: PyJWT must verify a
//! minted token with `sa/public.pem` (EdDSA, audience and issuer checked), and `cryptography` must
//! load `sa/private.pem` (PKCS#8 v1). Python with `jwt` and `cryptography` is a test requirement
//! (CI installs them with `pip install pyjwt cryptography`); without them this test fails.

mod support;

use std::process::{Command, Stdio};

use support::*;

const SCRIPT: &str = r#"
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
"#;

#[test]
fn pyjwt_verifies_tokens_and_cryptography_loads_the_private_key() {
    let probe = Command::new("python3").args(["-c", "import jwt, cryptography"]).stderr(Stdio::piped()).output();
    match probe {
        Err(e) => {
            panic!("python3 is required for this test and could not be run ({e}); install Python 3 and `pip install pyjwt cryptography`")
        }
        Ok(out) if !out.status.success() => panic!(
            "python3 lacks the `jwt` (PyJWT) or `cryptography` module; install them with `pip install pyjwt cryptography`:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Ok(_) => {}
    }

    let env = Env::new();
    env.ok(&["up", "--instance", "py", "--port", "8123", "--issuer", "py-issuer"]);
    env.ok(&["sa-token", "py", "--name", "ci-bot", "--scopes", "orders.read", "products.read", "--days", "30"]);
    let token = env.file("py", "sa/ci-bot.jwt");
    // A token signed by a different key: another profile's.
    env.up("other");
    let other = env.file("other", "sa/token.jwt");

    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(&token)
        .arg(env.file("py", "sa/public.pem"))
        .arg(env.file("py", "sa/private.pem"))
        .arg("http://127.0.0.1:8123/mcp")
        .arg("py-issuer")
        .arg(&other)
        .output()
        .unwrap();
    assert!(out.status.success(), "the Python check failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = env.token_entry("py", "ci-bot");
    assert_eq!(report["claims"]["jti"], entry["jti"]);
    assert_eq!(report["claims"]["client_id"], "ci-bot");
    assert_eq!(report["claims"]["scope"], "orders.read products.read");
    assert_eq!(report["header"]["alg"], "EdDSA");
    assert_eq!(report["header"]["kid"], env.profile_json("py")["key_id"]);
    assert_eq!(report["same_key"], true, "sa/private.pem and sa/public.pem are one keypair");
    assert_eq!(report["refused"], serde_json::json!(["audience", "signature"]));
}
