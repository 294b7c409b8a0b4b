//! What every integration test shares: running the real binary on a temporary root (`run`),
//! snapshots and modes of the files it leaves (`tree`), decoding and forging JWTs (`jwt`),
//! starting `mcpgen serve` and speaking MCP to it (`serve`), fake HTTP servers (`fake`), and the
//! third-party peers — Python, Node, nginx — the interop tests provision for themselves (`peers`).
//!
//! Each test binary compiles this module with `mod support;` and uses a different part of it,
//! hence the `dead_code` allowance.
#![allow(dead_code, unused_imports)]

pub mod fake;
pub mod jwt;
pub mod peers;
pub mod run;
pub mod serve;
pub mod tree;

pub use fake::*;
pub use jwt::*;
pub use run::*;
pub use serve::*;
pub use tree::*;

/// Every path into the library the tests use, gathered here so that a module moving inside
/// `src/` is a one-line fix in this file rather than an edit of every test.
pub mod lib {
    pub use mcpgen::keys::{PrivateKey, PublicKey};
    pub use mcpgen::net::init_tls;
    pub use mcpgen::openapi::SAMPLE_YAML;
    pub use mcpgen::token::{Claims, Expect, Minter, TokenError, TrustedKey, new_jti, verify};
}

pub use lib::{PrivateKey, PublicKey};
