//! `sa-verify` and `serve` trust the same keys (one definition, `mcpgen::trust`): after an
//! operator edits `service_account.public_key` in the configuration, both refuse tokens of the
//! old key and both accept tokens of the new one.

mod support;

use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn sa_verify_and_serve_agree_after_the_configured_key_changes() {
    let p = Profile::sample();
    let server = p.serve(&[]);
    let old_token = p.token();
    assert_eq!(server.auth_status(&Auth::sa(&old_token)).await, 200);
    p.env.ok(&["sa-verify", "p"]);

    // The operator points the server at another key.
    let other = PrivateKey::generate();
    p.edit_config(|c| c["security"]["authentication"]["service_account"]["public_key"] = json!(other.public().to_pem().unwrap()));

    // serve: the old token is refused once the edit is loaded ...
    server.wait_for_status(&Auth::sa(&old_token), 401, "the old key's token after the config edit").await;
    // ... and so is it in sa-verify.
    let out = p.env.run(&["sa-verify", "p"]);
    assert_eq!(out.code, 1, "sa-verify accepted what serve refuses: {}", out.stderr);
    assert!(out.stderr.contains("invalid"), "{}", out.stderr);

    // A token signed by the configured key: both accept it.
    let claims = jwt_claims(&old_token);
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": other.public().thumbprint()});
    let new_token = sign(&other, &header, &claims);
    assert_eq!(server.auth_status(&Auth::sa(&new_token)).await, 200);
    let out = p.env.run(&["sa-verify", "p", "--token", &new_token]);
    assert_eq!(out.code, 0, "sa-verify refused what serve accepts: {}", out.stderr);
}
