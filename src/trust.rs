//! Which keys a profile's server trusts — one definition, used by `serve` (every reloaded
//! snapshot) and by `sa-verify`, so the two can never disagree about a token.
//!
//! The static keys are the configuration's `service_account.public_key` (what an operator
//! edits, and what `remint-all` rewrites) plus every key `remint-all --grace-days` retired that
//! is still inside its grace period. `sa/public.pem` is the published copy of the current key,
//! not a second source of trust.

use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::config::ServiceAccount;
use crate::keys::PublicKey;
use crate::profile::Profile;
use crate::token::TrustedKey;

/// The static keys `sa` (the effective service-account configuration read from `config_path`)
/// and `profile` trust at `now`.
pub fn static_keys(sa: &ServiceAccount, profile: &Profile, config_path: &Path, now: DateTime<Utc>) -> Result<Vec<TrustedKey>> {
    let mut keys = Vec::new();
    if let Some(pem) = sa.public_key.as_deref().filter(|p| !p.trim().is_empty()) {
        let key = PublicKey::from_pem(pem).with_context(|| format!("{}: service_account.public_key", config_path.display()))?;
        keys.push(TrustedKey::new(key));
    }
    keys.extend(profile.keys_in_grace(now)?);
    Ok(keys)
}
