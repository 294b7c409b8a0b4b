//! `mcpgen serve` in `mode: "oauth"` and `mcpgen client --oauth` against a real identity
//! provider — panva's oidc-provider (`tests/peers/oidc/start.mjs`), on loopback — rather than
//! fakes: JWT access tokens signed RS256, ES256 and EdDSA verified through the provider's JWKS,
//! pinned by `algorithms`; the client authenticating at the provider with client_secret_basic,
//! client_secret_post and private_key_jwt, and finding the token endpoint by discovery; opaque
//! tokens checked by RFC 7662 introspection and refused soon after their revocation. Every
//! refusal's reason is in the access log, no token ever is.
//!
//! Each test starts its own provider (about a second) and server; nothing sleeps to synchronise.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::peers::{OidcProvider, free_port};
use support::*;

/// The scopes every client asks for: the sample's default tools, not getCustomers.
const SCOPES: &str = "orders.read products.read";
/// A client secret with the characters form-encoding must protect in HTTP Basic (RFC 6749 §2.3.1).
const TRICKY_SECRET: &str = "s3c+r/e=t:%x";

/// A running provider and what its discovery document says.
struct Idp {
    provider: OidcProvider,
    discovery: Value,
}

impl Idp {
    async fn start(config: Value) -> Idp {
        let provider = tokio::task::spawn_blocking(move || OidcProvider::start(&config)).await.expect("start oidc-provider");
        let url = format!("{}/.well-known/openid-configuration", provider.issuer);
        let discovery: Value = http_client().get(url).send().await.expect("discovery").json().await.expect("discovery JSON");
        Idp { provider, discovery }
    }

    fn issuer(&self) -> &str {
        &self.provider.issuer
    }

    fn endpoint(&self, name: &str) -> String {
        self.discovery[name].as_str().unwrap_or_else(|| panic!("no {name} in {}", self.discovery)).to_owned()
    }

    /// A client-credentials token for `resource`, the client authenticating with HTTP Basic.
    async fn token(&self, client_id: &str, secret: &str, resource: &str, scope: &str) -> String {
        let reply = http_client()
            .post(self.endpoint("token_endpoint"))
            .basic_auth(client_id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", scope), ("resource", resource)])
            .send()
            .await
            .expect("token request");
        let status = reply.status();
        let body: Value = reply.json().await.expect("token JSON");
        assert_eq!(status, 200, "{client_id}: {body}; provider log:\n{}", self.provider.log.text());
        body["access_token"].as_str().expect("access_token").to_owned()
    }
}

/// A client-credentials client of the provider with a secret (HTTP Basic) and extra metadata.
fn client(id: &str, extra: Value) -> Value {
    let mut client = json!({"client_id": id, "client_secret": format!("{id}-secret")});
    client.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    client
}

/// The sample profile served in oauth mode on a port chosen beforehand, so that the MCP URL — the
/// audience every token must name — is known before the server starts.
fn serve_oauth(p: &Profile, idp: &Idp, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> (Server, String) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    p.edit_sa(|sa| {
        sa.insert("sso_mode".into(), json!(true));
        sa.insert("public_key".into(), Value::Null);
        sa.insert("jwks_uri".into(), json!(idp.endpoint("jwks_uri")));
        sa.insert("issuer".into(), json!(idp.issuer()));
        sa.insert("audience".into(), json!(url));
        edit(sa);
    });
    let server = Server::start(p.env.cmd(&["serve", &p.name, "--bind", "127.0.0.1", "--port", &port.to_string()]));
    assert_eq!(server.url, url);
    (server, url)
}

fn bearer(token: &str) -> Auth {
    Auth::header("Authorization", &format!("Bearer {token}"))
}

/// The log lines from `from` up to the first that contains `needle`.
async fn log_line_with(s: &Server, from: usize, needle: &str) -> String {
    let log = std::sync::Arc::clone(&s.log);
    let needle = needle.to_owned();
    let lines = tokio::task::spawn_blocking(move || log.wait_for(from, |l| l.contains(&needle))).await.expect("log");
    lines.last().cloned().unwrap_or_default()
}

#[tokio::test]
async fn serve_accepts_rs256_es256_and_eddsa_access_tokens_and_algorithms_pin_them() {
    let idp = Idp::start(json!({"clients": [
        client("rs-client", json!({"access_token_alg": "RS256"})),
        client("es-client", json!({"access_token_alg": "ES256"})),
        client("ed-client", json!({"access_token_alg": "EdDSA"})),
    ]}))
    .await;
    let p = Profile::sample();
    let (s, url) = serve_oauth(&p, &idp, |_| {});

    let mut tokens = Vec::new();
    for (client_id, alg) in [("rs-client", "RS256"), ("es-client", "ES256"), ("ed-client", "EdDSA")] {
        let token = idp.token(client_id, &format!("{client_id}-secret"), &url, SCOPES).await;
        assert_eq!(jwt_header(&token)["alg"], alg, "{client_id}");
        assert_eq!(jwt_header(&token)["typ"], "at+jwt", "an RFC 9068 access token");
        assert_eq!(jwt_claims(&token)["aud"], url.as_str());
        let session = s.session(&bearer(&token)).await;
        let reply = s.call(&session, "getOrder", json!({"orderId": "ord-1001"})).await;
        assert_eq!(reply.status, 200, "{alg}: {reply:?}");
        assert_eq!(reply.json()["result"]["isError"], false, "{alg}: {reply:?}");
        assert!(reply.body.contains("ord-1001"), "{reply:?}");
        let line = log_line_with(&s, 0, &format!("getOrder client={client_id} 200")).await;
        assert!(!line.contains("refused="), "{line}");
        // Scopes come from the token: getCustomers needs customers.read, which it lacks.
        let from = s.log.len();
        assert_eq!(s.call(&session, "getCustomers", json!({})).await.status, 403, "{alg}");
        let line = log_line_with(&s, from, &format!("getCustomers client={client_id} 403")).await;
        assert!(line.ends_with("refused=insufficient_scope: needs customers.read"), "{line}");
        tokens.push(token);
    }

    // A token the same provider issued for another resource is not for this server.
    let elsewhere = idp.token("rs-client", "rs-client-secret", "http://127.0.0.1:1/other", SCOPES).await;
    let from = s.log.len();
    let reply = s.try_initialize(&bearer(&elsewhere), "2025-11-25").await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(reply.challenge().contains("error=\"invalid_token\""), "{reply:?}");
    let line = log_line_with(&s, from, " 401 ").await;
    assert!(line.contains(&format!("refused=invalid_token: audience does not include \"{url}\"")), "{line}");

    // A refusal before authentication carries its reason too.
    let from = s.log.len();
    let reply = send(bearer(&tokens[0]).apply(s.post()).header("origin", "http://evil.example").body("{}")).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    let line = log_line_with(&s, from, " 403 ").await;
    assert!(line.ends_with("refused=origin_not_allowed"), "{line}");

    // `algorithms` pins what is accepted: ES256 goes, RS256 and EdDSA stay (picked up live).
    p.edit_sa(|sa| {
        sa.insert("algorithms".into(), json!(["RS256", "Ed25519"]));
    });
    s.wait_for_status(&bearer(&tokens[1]), 401, "ES256 once algorithms leaves it out").await;
    assert_eq!(s.auth_status(&bearer(&tokens[0])).await, 200);
    assert_eq!(s.auth_status(&bearer(&tokens[2])).await, 200);
    let line = log_line_with(&s, 0, "refused=invalid_token: algorithm \"ES256\" is not accepted").await;
    assert!(line.contains("client=- 401"), "{line}");

    let mut all: Vec<&str> = tokens.iter().map(String::as_str).collect();
    all.push(&elsewhere);
    s.assert_never_logged(&all);
}

#[test]
fn algorithms_naming_none_hmac_or_unknown_refuse_the_configuration() {
    for bad in ["none", "HS256", "RS1024"] {
        let p = Profile::sample();
        p.edit_sa(|sa| {
            sa.insert("mode".into(), json!("oauth"));
            sa.insert("algorithms".into(), json!(["RS256", bad]));
        });
        let out = p.env.run(&["serve", "p", "--port", "0"]);
        assert_ne!(out.code, 0, "{bad}: {out:?}");
        let config = p.config_path().display().to_string();
        assert!(out.stderr.contains(&config) && out.stderr.contains(&format!("algorithms: \"{bad}\"")), "{bad}: {}", out.stderr);
    }
}

/// The `--oauth` file of `client_id` with `method` and the lines in `extra`.
fn oauth_file(env: &Env, client_id: &str, method: &str, extra: &str) -> String {
    let path = env.dir.path().join(format!("{client_id}.yaml"));
    let text = format!("client_id: {client_id}\ntoken_endpoint_auth_method: {method}\nscopes: [orders.read, products.read]\n{extra}");
    std::fs::write(&path, text).expect("write the --oauth file");
    path.display().to_string()
}

/// `mcpgen client --url URL --oauth FILE --tool getOrder`, which must print the order.
fn call_with(p: &Profile, url: &str, file: &str) {
    let out = p.env.client().args(["--url", url, "--oauth", file, "--tool", "getOrder", "--args", r#"{"orderId": "ord-1001"}"#]).run();
    assert_eq!(out.code, 0, "{file}: {out:?}");
    let result: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout));
    assert_eq!(result["id"], "ord-1001", "{}", out.stdout);
}

#[tokio::test]
async fn client_gets_tokens_with_basic_post_and_private_key_jwt_and_calls_serve() {
    let p = Profile::sample();
    let profile_jwk = p.private_key().public().jwk();
    let idp = Idp::start(json!({"clients": [
        {"client_id": "basic-client", "client_secret": TRICKY_SECRET},
        client("post-client", json!({"token_endpoint_auth_method": "client_secret_post"})),
        {"client_id": "jwt-client", "token_endpoint_auth_method": "private_key_jwt",
         "token_endpoint_auth_signing_alg": "EdDSA", "jwks": {"keys": [profile_jwk]}},
    ]}))
    .await;
    let (s, url) = serve_oauth(&p, &idp, |_| {});
    let token_url = idp.endpoint("token_endpoint");
    let key_file = p.dir().join("sa/private.pem").display().to_string();

    for (client_id, file) in [
        ("basic-client", oauth_file(&p.env, "basic-client", "client_secret_basic", &format!("client_secret: \"{TRICKY_SECRET}\"\n"))),
        ("post-client", oauth_file(&p.env, "post-client", "client_secret_post", "client_secret: post-client-secret\n")),
        ("jwt-client", oauth_file(&p.env, "jwt-client", "private_key_jwt", &format!("private_key_file: {key_file}\n"))),
    ] {
        let text = std::fs::read_to_string(&file).unwrap() + &format!("token_url: {token_url}\n");
        std::fs::write(&file, text).unwrap();
        call_with(&p, &url, &file);
        log_line_with(&s, 0, &format!("tools/call getOrder client={client_id} 200")).await;
    }

    // The secret is compared exactly: one character less and the provider refuses (exit 3).
    let wrong =
        oauth_file(&p.env, "basic-client", "client_secret_basic", &format!("client_secret: \"s3c+r/e=t\"\ntoken_url: {token_url}\n"));
    let out = p.env.client().args(["--url", &url, "--oauth", &wrong, "--tool", "getOrder", "--args", "{}"]).run();
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("token endpoint") && out.stderr.contains("invalid_client"), "{}", out.stderr);
    assert!(!out.stderr.contains("s3c+r"), "the secret was printed: {}", out.stderr);
    let log = s.stop();
    assert!(!log.contains("Bearer ") && !log.contains(TRICKY_SECRET), "{log}");
}

#[tokio::test]
async fn client_discovers_the_token_endpoint_from_the_servers_metadata() {
    let idp = Idp::start(json!({"clients": [client("disc-client", json!({}))]})).await;
    let p = Profile::sample();
    let issuer = idp.issuer().to_owned();
    let (s, url) = serve_oauth(&p, &idp, |sa| {
        sa.insert("authorization_servers".into(), json!([issuer]));
    });
    let meta = s.get("/.well-known/oauth-protected-resource/mcp").await.json();
    assert_eq!(meta["authorization_servers"], json!([idp.issuer()]), "{meta}");
    assert_eq!(meta["resource"], url.as_str());

    // No token_url: RFC 9728 metadata → the provider's discovery document → its token endpoint.
    // The provider is on another origin than the MCP server, so the file names it as the
    // issuer it trusts with the secret; without that, discovery refuses to send the secret.
    let file = oauth_file(&p.env, "disc-client", "client_secret_basic", "client_secret: disc-client-secret\n");
    assert!(!std::fs::read_to_string(&file).unwrap().contains("token_url"));
    let out = p.env.client().args(["--url", url.as_str(), "--oauth", &file, "--tool", "getOrder"]).run();
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("another origin"), "{}", out.stderr);
    let file = oauth_file(&p.env, "disc-client", "client_secret_basic", &format!("client_secret: disc-client-secret\nissuer: {issuer}\n"));
    call_with(&p, &url, &file);
    let line = log_line_with(&s, 0, "tools/call getOrder client=disc-client 200").await;
    assert!(!line.contains("refused"), "{line}");
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_refused_soon_after_revocation() {
    let idp = Idp::start(json!({"clients": [
        client("opaque-client", json!({"access_token_format": "opaque"})),
        client("mcp-server", json!({})),
    ]}))
    .await;
    let p = Profile::sample();
    let introspection = idp.endpoint("introspection_endpoint");
    let (s, url) = serve_oauth(&p, &idp, |sa| {
        sa.insert("introspection_endpoint".into(), json!(introspection));
        sa.insert("client_id".into(), json!("mcp-server"));
        sa.insert("client_secret".into(), json!("mcp-server-secret"));
    });

    let token = idp.token("opaque-client", "opaque-client-secret", &url, SCOPES).await;
    assert_ne!(token.split('.').count(), 3, "an opaque token: {token}");
    let session = s.session(&bearer(&token)).await;
    let reply = s.call(&session, "getOrder", json!({"orderId": "ord-1001"})).await;
    assert_eq!(reply.json()["result"]["isError"], false, "{reply:?}");
    log_line_with(&s, 0, "tools/call getOrder client=opaque-client 200").await;
    // Scopes come from the introspection reply too.
    assert_eq!(s.call(&session, "getCustomers", json!({})).await.status, 403);

    // An opaque token for another resource: its introspected `aud` does not name this server.
    let elsewhere = idp.token("opaque-client", "opaque-client-secret", "http://127.0.0.1:1/other", SCOPES).await;
    assert_eq!(s.auth_status(&bearer(&elsewhere)).await, 401);
    log_line_with(&s, 0, &format!("refused=invalid_token: audience does not include \"{url}\"")).await;

    // Revoked at the provider: refused within the introspection cache's lifetime (5 s).
    let revoked = http_client()
        .post(idp.endpoint("revocation_endpoint"))
        .basic_auth("opaque-client", Some("opaque-client-secret"))
        .form(&[("token", token.as_str()), ("token_type_hint", "access_token")])
        .send()
        .await
        .expect("revocation request");
    assert_eq!(revoked.status(), 200);
    let started = std::time::Instant::now();
    s.wait_for_status(&bearer(&token), 401, "the revoked opaque token").await;
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    let line = log_line_with(&s, 0, "refused=invalid_token: token is not active").await;
    assert!(line.contains(" 401 "), "{line}");
    s.assert_never_logged(&[&token, &elsewhere, "mcp-server-secret"]);
}
