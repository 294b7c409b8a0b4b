//! Typed failures that decide the process exit code and carry an optional `hint:`.
//!
//! Commands use `anyhow` with context; when a failure belongs to a class a script can branch on
//! (usage, authentication, unreachable server, tool error) it is raised as a [`Failure`], and
//! `main` finds it anywhere in the error chain to pick the exit code and print the hint.

use std::fmt;

/// Exit codes, as the README documents them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1: anything that is not the caller's fault.
    Failure,
    /// 2: bad flags, names, JSON or other input the caller can fix.
    Usage,
    /// 3: the server refused us (401/403).
    Auth,
    /// 4: the server could not be reached or timed out.
    Unreachable,
    /// 5: the tool reported an error or does not exist.
    Tool,
    /// 6: the server's rate limit (429) asked us to wait longer than `client` waits.
    RateLimited,
}

impl Kind {
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Failure => 1,
            Kind::Usage => 2,
            Kind::Auth => 3,
            Kind::Unreachable => 4,
            Kind::Tool => 5,
            Kind::RateLimited => 6,
        }
    }
}

/// A failure with a class and an optional hint the user can act on.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Failure { kind, message: message.into(), hint: None }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Kind::Failure, message)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The class and hint of an error chain: the first [`Failure`] found wins.
pub fn classify(err: &anyhow::Error) -> (Kind, Option<String>) {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return (f.kind, f.hint.clone());
        }
    }
    (Kind::Failure, None)
}

/// One line: every message in the chain joined by ": ", with line breaks flattened so the
/// error stays on one line whatever a lower layer put in its message.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for (i, cause) in err.chain().enumerate() {
        let text = cause.to_string();
        if i > 0 {
            // Some libraries repeat their source inside their own message; skip exact repeats.
            if out.ends_with(&text) {
                continue;
            }
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out.replace(['\n', '\r'], " ")
}
