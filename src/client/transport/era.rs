//! The two protocol eras, seen from the client: `initialize` asks `server/discover` in the
//! stateless revision 2026-07-28 first and falls back to the handshake (initialize →
//! initialized, a session) when the answer is not a recognized modern one; a modern request
//! carries `_meta` and mirrors its method, name and `x-mcp-header` arguments into headers.

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

use super::{ClientError, McpClient, rpc_result, to_value};
use crate::client::param_headers;
use crate::logging::trace;
use crate::mcp::jsonrpc::{HEADER_MISMATCH, MISSING_CLIENT_CAPABILITY, Message};
use crate::mcp::messages::{DiscoverResult, Implementation, InitializeParams, InitializeResult};
use crate::mcp::{self, LATEST_VERSION, method};
use crate::validate::printable;

impl McpClient {
    /// Learn what the server speaks: `server/discover` in the stateless revision first, and the
    /// `initialize` handshake when the server's answer is not a recognized modern one (the
    /// transport specification's backward-compatibility rule). The era found is kept, so a
    /// re-initialize after a forgotten session does not probe again.
    pub async fn initialize(&mut self) -> Result<(), ClientError> {
        if !self.legacy_only {
            match self.discover().await {
                Ok(()) => return Ok(()),
                Err(e) if !falls_back(&e) => return Err(e),
                Err(e) => {
                    if self.debug {
                        trace("!", &format!("no modern answer to server/discover ({e}); initializing in the handshake era"));
                    }
                    self.legacy_only = true;
                }
            }
        }
        self.handshake().await
    }

    /// `server/discover`; on success the client is modern.
    async fn discover(&mut self) -> Result<(), ClientError> {
        self.session = None;
        self.version = None;
        self.modern = true;
        let id = self.take_id();
        let message = Message::request(id.clone(), method::DISCOVER, Some(with_meta(None)));
        let result = self.exchange(&message, Some(&id)).await.and_then(|(reply, _)| rpc_result::<DiscoverResult>(reply));
        let result = match result {
            Ok(result) if result.supported_versions.iter().any(|v| mcp::is_modern(v)) => result,
            Ok(_) => {
                self.modern = false;
                return Err(ClientError::Protocol("server/discover lists no version of the stateless revision mcpgen speaks".into()));
            }
            Err(e) => {
                self.modern = false;
                return Err(e);
            }
        };
        let from_meta =
            result.meta.as_ref().and_then(|m| m.get(mcp::meta::SERVER_INFO)).and_then(|v| serde_json::from_value(v.clone()).ok());
        self.server_info = from_meta.unwrap_or(result.server_info);
        self.capabilities = result.capabilities;
        Ok(())
    }

    /// initialize, then the initialized notification.
    async fn handshake(&mut self) -> Result<(), ClientError> {
        self.session = None;
        self.version = None;
        self.modern = false;
        let params = InitializeParams {
            protocol_version: LATEST_VERSION.into(),
            capabilities: Map::new(),
            client_info: Implementation { name: "mcpgen".into(), title: None, version: env!("CARGO_PKG_VERSION").into() },
        };
        let id = self.take_id();
        let message = Message::request(id.clone(), method::INITIALIZE, Some(to_value(&params)?));
        let (reply, headers) = self.exchange(&message, Some(&id)).await?;
        let result: InitializeResult = rpc_result(reply)?;
        if !mcp::is_supported(&result.protocol_version) {
            return Err(ClientError::Protocol(format!(
                "the server chose protocol version {:?}, which mcpgen does not speak ({})",
                printable(&result.protocol_version),
                mcp::SUPPORTED_VERSIONS.join(", ")
            )));
        }
        self.version = Some(result.protocol_version);
        self.session = headers.get(mcp::SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        self.server_info = result.server_info;
        self.capabilities = result.capabilities;
        self.exchange(&Message::notification(method::INITIALIZED), None).await?;
        Ok(())
    }

    /// The headers a stateless request mirrors from its body: version, method, the tool's name
    /// and its `x-mcp-header` arguments.
    pub(super) fn modern_headers(&self, message: &Message) -> Result<Vec<(HeaderName, HeaderValue)>, ClientError> {
        let method = message.method.as_deref().unwrap_or("");
        let mut out = vec![
            (HeaderName::from_static(mcp::VERSION_HEADER), HeaderValue::from_static(mcp::MODERN_VERSION)),
            (HeaderName::from_static(mcp::METHOD_HEADER), header_value(method)?),
        ];
        if method == method::TOOLS_CALL {
            let params = message.params.as_ref();
            let name = params.and_then(|p| p.get("name")).and_then(Value::as_str).unwrap_or("");
            out.push((HeaderName::from_static(mcp::NAME_HEADER), header_value(&param_headers::encode(name))?));
            if let (Some(headers), Some(arguments)) = (self.param_headers.get(name), params.and_then(|p| p.get("arguments"))) {
                for (header, value) in headers.values(arguments) {
                    let name = HeaderName::from_bytes(header.as_bytes()).map_err(|e| ClientError::Protocol(e.to_string()))?;
                    out.push((name, header_value(&value)?));
                }
            }
        }
        Ok(out)
    }
}

/// Whether a failed `server/discover` means "not a modern server" (fall back to the handshake)
/// rather than a failure to report: authentication, reachability and the revision's own
/// request errors are reported; anything else — a 4xx without a modern error, a JSON-RPC error
/// of another kind, a reply that is no `DiscoverResult` — falls back.
pub(crate) fn falls_back(e: &ClientError) -> bool {
    match e {
        ClientError::Refused { .. }
        | ClientError::Unreachable { .. }
        | ClientError::TokenEndpoint { .. }
        | ClientError::RateLimited { .. } => false,
        ClientError::Rpc { code, .. } => ![HEADER_MISMATCH, MISSING_CLIENT_CAPABILITY].contains(code),
        // A redirect or a server error is no answer about the protocol: report it.
        ClientError::Status { status } => (400..500).contains(status),
        ClientError::SessionGone | ClientError::Protocol(_) => true,
    }
}

/// `params` with the `_meta` every stateless request carries.
pub(super) fn with_meta(params: Option<Value>) -> Value {
    with_meta_of(params, json!({}), json!({"name": "mcpgen", "version": env!("CARGO_PKG_VERSION")}))
}

/// `params` with the stateless revision's `_meta`: the version, and the capabilities and
/// identity of the client (a relay passes its host's).
pub(crate) fn with_meta_of(params: Option<Value>, capabilities: Value, client_info: Value) -> Value {
    let mut params = match params {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let meta = params.entry("_meta").or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert(mcp::meta::PROTOCOL_VERSION.into(), json!(mcp::MODERN_VERSION));
        meta.insert(mcp::meta::CLIENT_CAPABILITIES.into(), capabilities);
        meta.insert(mcp::meta::CLIENT_INFO.into(), client_info);
    }
    Value::Object(params)
}

fn header_value(text: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(text).map_err(|_| ClientError::Protocol(format!("{} cannot be sent as a header", printable(text))))
}
