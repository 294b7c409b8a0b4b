//! Client failures as errors of the CLI's classes (exit 3 refused, 4 unreachable, 6 rate
//! limited, 1 protocol),
//! each with a hint that names the party to fix: the token, the server, the URL.

use crate::client::ClientError;
use crate::error::{Failure, Kind};
use crate::validate;

/// What the error hints need to know.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    pub profile: Option<String>,
    /// Which token was chosen ("token ci-bot", "$SERVICE_ACCOUNT_JWT").
    pub token_source: Option<String>,
}

/// A client failure as an error of the right class, with a hint where the user can act.
pub fn client_error(e: ClientError, hints: &Hints) -> anyhow::Error {
    let profile = hints.profile.as_deref().unwrap_or("PROFILE");
    match &e {
        ClientError::Refused { status, scope, metadata, .. } => {
            let mut hint = match (status, scope) {
                (403, Some(scope)) => format!("mint a token with that scope: `mcpgen sa-token {profile} --name NAME --scopes {scope}`"),
                (401, _) if hints.token_source.is_none() => {
                    format!(
                        "pass a token: --sa-token NAME or $SERVICE_ACCOUNT_JWT, or make one primary with `mcpgen sa-token {profile} --name NAME --primary`"
                    )
                }
                (401, _) => format!(
                    "{} was refused; check it with `mcpgen sa-verify {profile}{}`{}",
                    hints.token_source.as_deref().unwrap_or("the token"),
                    if hints.token_source.as_deref().is_some_and(|s| s.starts_with("token ")) { " --name NAME" } else { " --token JWT" },
                    // An exported token is read before the profile's own files.
                    if hints.token_source.as_deref().is_some_and(|s| s.starts_with('$')) {
                        ", or unset it if it belongs to another profile"
                    } else {
                        ""
                    }
                ),
                _ => "the server refused the request".to_owned(),
            };
            if let Some(m) = metadata {
                hint.push_str(&format!("; resource metadata: {}", validate::printable(m)));
            }
            Failure::new(Kind::Auth, format!("server refused the request: {e}")).hint(hint).into()
        }
        ClientError::TokenEndpoint { error, .. } => {
            let hint = match error.as_deref() {
                Some("invalid_client") | Some("unauthorized_client") => {
                    "the token endpoint does not accept these client credentials: check client_id, client_secret or private_key and token_endpoint_auth_method in the --oauth file"
                }
                Some("invalid_scope") => {
                    "the authorization server does not grant these scopes to this client: check scopes in the --oauth file"
                }
                Some("invalid_target") => {
                    "the authorization server does not know this resource: check resource in the --oauth file (default: the MCP URL)"
                }
                _ => "check the --oauth file's credentials and the authorization server's log",
            };
            Failure::new(Kind::Auth, e.to_string()).hint(hint).into()
        }
        ClientError::Unreachable { url, reason } => Failure::new(Kind::Unreachable, e.to_string())
            .hint(match (&hints.profile, url.starts_with("token endpoint"), reason == "timed out") {
                // A TLS failure is no sign of a stopped server.
                _ if reason.contains("certificate") || reason.contains("Certificate") || reason.contains("tls") => {
                    "the server's TLS certificate is not trusted: point SSL_CERT_FILE at the CA (or self-signed certificate) that issued it; a self-signed one must say basicConstraints CA:FALSE".to_owned()
                }
                (_, true, _) => "check token_url (or the authorization server) in the --oauth file, and that it is up".to_owned(),
                (_, _, true) => "the server did not answer in time; give it longer with --timeout SECONDS".to_owned(),
                (Some(p), _, _) => format!("is the server running? start it with `mcpgen serve {p}`, or pass --url"),
                (None, _, _) => "check the URL and that the server is running".to_owned(),
            })
            .into(),
        ClientError::RateLimited { retry_after } => Failure::new(Kind::RateLimited, e.to_string())
            .hint(match retry_after {
                Some(wait) => format!(
                    "the server allows this client only so many requests a minute; try again in {} s, or ask its operator for a higher security.rate_limit",
                    wait.as_secs()
                ),
                None => "the server allows this client only so many requests a minute; try again later".to_owned(),
            })
            .into(),
        // The message may quote the server; keep its control characters off the terminal.
        ClientError::Rpc { .. } | ClientError::Protocol(_) | ClientError::Status { .. } | ClientError::SessionGone => {
            Failure::error(format!("MCP error: {}", validate::escape_controls(&e.to_string()))).into()
        }
    }
}
