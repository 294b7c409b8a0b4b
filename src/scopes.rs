//! What scopes a profile's server actually uses: each tool's scopes (from
//! `security.authorization.tools`, as `serve` enforces them), the scopes the spec's operations
//! declare, and `required_scopes`. `sa-token` checks requested scopes against them (a typo, a
//! comma-joined list, a token that would see no tool) and `client` counts the tools a token
//! cannot see.

use std::collections::BTreeSet;

use anyhow::Result;

use crate::config::ServerConfig;
use crate::fsx::Dir;
use crate::openapi::{MAX_SPEC_BYTES, Spec};

/// The scopes a profile's tools need.
#[derive(Debug, Clone, Default)]
pub struct ServedScopes {
    /// Each tool (as `serve` lists it) and the scopes a caller needs to see and call it.
    pub tools: Vec<(String, Vec<String>)>,
    /// Scopes every request needs (`service_account.required_scopes`).
    pub required: Vec<String>,
    /// Every scope the profile mentions anywhere, sorted.
    pub known: BTreeSet<String>,
}

impl ServedScopes {
    /// Read the profile's server configuration and spec (the built-in sample without one).
    pub fn load(dir: &Dir) -> Result<ServedScopes> {
        let config = ServerConfig::load(dir)?;
        let spec = match &config.openapi.spec {
            Some(file) => Spec::parse(&dir.read_text_capped(file, MAX_SPEC_BYTES as u64)?, &dir.join(file).display().to_string())?,
            None => Spec::sample(),
        };
        let authorization = &config.security.authorization;
        let required = config.security.authentication.service_account.required_scopes.clone();
        let mut known: BTreeSet<String> = required.iter().cloned().collect();
        known.extend(authorization.tools.values().flatten().cloned());
        let mut tools = Vec::new();
        for op in spec.operations(&config.routing.allowed_methods) {
            known.extend(op.scopes.iter().cloned());
            let needed = authorization.scopes_for(&op.name).to_vec();
            tools.push((op.name, needed));
        }
        Ok(ServedScopes { tools, required, known })
    }

    /// How many tools a token with `scopes` sees (none without every required scope).
    pub fn visible(&self, scopes: &[String]) -> usize {
        let has = |needed: &[String]| needed.iter().all(|s| scopes.contains(s));
        if !has(&self.required) {
            return 0;
        }
        self.tools.iter().filter(|(_, needed)| has(needed)).count()
    }

    /// Problems with `scopes` for this profile, one sentence each: a comma-joined list, a
    /// scope no tool uses (with the nearest known one), a token that would see no tool.
    pub fn problems(&self, scopes: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let known = || self.known.iter().cloned().collect::<Vec<_>>().join(" ");
        for scope in scopes {
            if scope.contains(',') && !self.known.contains(scope) {
                let parts: Vec<&str> = scope.split(',').filter(|p| !p.is_empty()).collect();
                out.push(format!("scope {scope:?} holds commas: scopes are separated by spaces (--scopes {})", parts.join(" ")));
            } else if !self.known.is_empty() && !self.known.contains(scope) {
                let near = self
                    .known
                    .iter()
                    .map(|k| (strsim::levenshtein(&scope.to_lowercase(), &k.to_lowercase()), k))
                    .filter(|(d, _)| *d <= (scope.chars().count() / 3).max(2))
                    .min_by_key(|(d, _)| *d)
                    .map(|(_, k)| format!("did you mean {k}? "))
                    .unwrap_or_default();
                out.push(format!("scope {scope:?} is not used by any tool of this profile; {near}known scopes: {}", known()));
            }
        }
        if !self.tools.is_empty() && self.visible(scopes) == 0 {
            out.push(format!(
                "this token would see none of the profile's {} tool{} (known scopes: {})",
                self.tools.len(),
                if self.tools.len() == 1 { "" } else { "s" },
                if self.known.is_empty() { "-".to_owned() } else { known() }
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ServedScopes {
        ServedScopes {
            tools: vec![
                ("getOrders".into(), vec!["orders.read".into()]),
                ("getProducts".into(), vec!["products.read".into()]),
                ("ping".into(), vec![]),
            ],
            required: vec![],
            known: ["orders.read".to_owned(), "products.read".to_owned()].into_iter().collect(),
        }
    }

    #[test]
    fn typos_commas_and_blind_tokens_are_named() {
        let s = sample();
        assert!(s.problems(&["orders.read".into()]).is_empty());
        let typo = s.problems(&["orders.raed".into()]);
        assert!(typo[0].contains("did you mean orders.read?") && typo[0].contains("known scopes: orders.read products.read"), "{typo:?}");
        let comma = s.problems(&["orders.read,products.read".into()]);
        assert!(comma[0].contains("--scopes orders.read products.read"), "{comma:?}");
        assert_eq!(s.visible(&[]), 1, "ping needs no scope");
        let mut strict = s.clone();
        strict.required = vec!["mcp".into()];
        assert_eq!(strict.visible(&["orders.read".into()]), 0);
        assert!(strict.problems(&["orders.read".into()]).iter().any(|p| p.contains("would see none of the profile's 3 tools")));
    }
}
