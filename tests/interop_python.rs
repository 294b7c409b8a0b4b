//! Interoperability with the Python software the original product's users have, installed by
//! the tests themselves (`support::peers::python`, pinned in `tests/peers/requirements.txt`):
//! PyJWT verifies a minted token with `sa/public.pem` and `cryptography` loads `sa/private.pem`.

mod support;

use serde_json::json;
use support::peers::run_python;
use support::*;

#[test]
fn pyjwt_verifies_tokens_and_cryptography_loads_the_private_key() {
    let env = Env::new();
    env.ok(&["up", "--instance", "py", "--port", "8123", "--issuer", "py-issuer"]);
    env.ok(&["sa-token", "py", "--name", "ci-bot", "--scopes", "orders.read", "products.read", "--days", "30"]);
    // A token signed by a different key: another profile's.
    env.up("other");
    let path = |profile: &str, file: &str| env.file(profile, file).display().to_string();

    let report = run_python(
        "pyjwt_check.py",
        &[
            &path("py", "sa/ci-bot.jwt"),
            &path("py", "sa/public.pem"),
            &path("py", "sa/private.pem"),
            "http://127.0.0.1:8123/mcp",
            "py-issuer",
            &path("other", "sa/token.jwt"),
        ],
    );
    let entry = env.token_entry("py", "ci-bot");
    assert_eq!(report["claims"]["jti"], entry["jti"]);
    assert_eq!(report["claims"]["client_id"], "ci-bot");
    assert_eq!(report["claims"]["scope"], "orders.read products.read");
    assert_eq!(report["header"]["alg"], "EdDSA");
    assert_eq!(report["header"]["kid"], env.profile_json("py")["key_id"]);
    assert_eq!(report["same_key"], true, "sa/private.pem and sa/public.pem are one keypair");
    assert_eq!(report["refused"], json!(["audience", "signature"]));
}
