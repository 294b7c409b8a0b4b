//! The MCP client behind `mcpgen client` (and `demo`): Streamable HTTP transport with JSON and
//! SSE replies (`transport`, `sse`), OAuth2 client credentials (`oauth`), the choice of
//! credentials from flags, environment and profile (`target`), a check of tool arguments
//! against their input schema (`schema`), rendering of listings and results (`render`), and the
//! mapping of failures to exit codes and hints (`failure`).

pub mod bridge;
pub mod challenge;
pub mod failure;
pub mod oauth;
pub mod param_headers;
pub mod render;
pub mod schema;
pub mod sse;
pub mod target;
pub mod transport;

pub use failure::{Hints, client_error};
pub use target::{Target, resolve_target};
pub use transport::{ClientError, ExtraHeader, McpClient};
