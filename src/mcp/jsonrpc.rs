//! The JSON-RPC 2.0 envelope: one [`Message`] type for requests, notifications and responses
//! (MCP peers send all three on one stream), typed ids that keep "absent" apart from `null`,
//! and the error codes both ends use.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// MCP 2026-07-28: the mirrored headers are missing or do not match the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// MCP 2026-07-28: a capability the server needs from the client is missing.
pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
/// MCP 2026-07-28: the requested protocol version is not served (`data.supported` lists them).
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// A request id: JSON-RPC allows strings and numbers; MCP forbids `null`, which is kept as a
/// variant so the server can refuse it instead of mistaking it for a notification.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    Number(i64),
    String(String),
    Null,
}

/// Any JSON-RPC message: request (id + method), notification (method only) or response (id +
/// result or error).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Message {
    #[serde(default)]
    pub jsonrpc: String,
    /// `None` when the member is absent; `Some(Id::Null)` when it is `null`.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Id>, D::Error> {
    Id::deserialize(d).map(Some)
}

/// The `error` member of a response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorObject {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// What a message is, by its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
    Invalid(&'static str),
}

impl Message {
    pub fn request(id: Id, method: &str, params: Option<Value>) -> Self {
        Message { jsonrpc: "2.0".into(), id: Some(id), method: Some(method.into()), params, ..Default::default() }
    }

    pub fn notification(method: &str) -> Self {
        Message { jsonrpc: "2.0".into(), method: Some(method.into()), ..Default::default() }
    }

    pub fn result(id: Id, result: impl Serialize) -> Self {
        let result = serde_json::to_value(result).unwrap_or(Value::Null);
        Message { jsonrpc: "2.0".into(), id: Some(id), result: Some(result), ..Default::default() }
    }

    pub fn error(id: Id, code: i64, message: impl Into<String>) -> Self {
        Message {
            jsonrpc: "2.0".into(),
            id: Some(id),
            error: Some(ErrorObject { code, message: message.into(), data: None }),
            ..Default::default()
        }
    }

    /// An error response with a `data` member (e.g. the versions a server supports).
    pub fn error_with_data(id: Id, code: i64, message: impl Into<String>, data: Value) -> Self {
        let mut m = Message::error(id, code, message);
        if let Some(error) = &mut m.error {
            error.data = Some(data);
        }
        m
    }

    pub fn kind(&self) -> Kind {
        if self.jsonrpc != "2.0" {
            return Kind::Invalid("jsonrpc must be \"2.0\"");
        }
        match (&self.id, &self.method, self.result.is_some() || self.error.is_some()) {
            (Some(Id::Null), Some(_), _) => Kind::Invalid("a request id must not be null"),
            (Some(_), Some(_), false) => Kind::Request,
            (None, Some(_), false) => Kind::Notification,
            (Some(_), None, true) => Kind::Response,
            _ => Kind::Invalid("not a request, notification or response"),
        }
    }

    /// A request expects a response; notifications and responses do not.
    pub fn is_request(&self) -> bool {
        self.kind() == Kind::Request
    }

    /// The typed `params` of a request (absent params read as `{}`).
    pub fn params_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(self.params.clone().unwrap_or_else(|| Value::Object(Default::default())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Message {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn kinds_keep_absent_and_null_ids_apart() {
        assert_eq!(parse(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).kind(), Kind::Request);
        assert_eq!(parse(r#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#).id, Some(Id::String("a".into())));
        assert_eq!(parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).kind(), Kind::Notification);
        assert!(matches!(parse(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#).kind(), Kind::Invalid(_)));
        assert_eq!(parse(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#).kind(), Kind::Response);
        assert!(matches!(parse(r#"{"jsonrpc":"1.0","id":3,"method":"x"}"#).kind(), Kind::Invalid(_)));
        assert!(serde_json::from_str::<Message>(r#"{"jsonrpc":"2.0","id":[1],"method":"x"}"#).is_err());
    }

    #[test]
    fn serializes_without_absent_members() {
        let text = serde_json::to_string(&Message::request(Id::Number(7), "ping", None)).unwrap();
        assert_eq!(text, r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#);
        let text = serde_json::to_string(&Message::error(Id::Null, PARSE_ERROR, "bad")).unwrap();
        assert_eq!(text, r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}"#);
    }
}
