//! Ed25519 keys: generation, PEM in and out, the public JWK and its RFC 7638 thumbprint.
//!
//! The private key is written as PKCS#8 v1 (RFC 8410 `OneAsymmetricKey` without the embedded
//! public key): ed25519-dalek's default v2 output is refused by OpenSSL 3.0 and Python
//! `cryptography`. Reading accepts both forms. [`PrivateKey`] never prints its bytes.

use std::fmt;

use anyhow::{Context, Result, anyhow};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::json;
use sha2::{Digest, Sha256};

/// An Ed25519 signing key. `Debug` and `Display` redact it; the bytes take an explicit call.
#[derive(Clone)]
pub struct PrivateKey(SigningKey);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(<redacted>, kid={})", self.public().thumbprint())
    }
}

impl PrivateKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let seed: [u8; 32] = rand::random();
        PrivateKey(SigningKey::from_bytes(&seed))
    }

    /// The 32-byte seed (RFC 8032 private key), as in a JWK `d`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        PrivateKey(SigningKey::from_bytes(seed))
    }

    /// Parse a PKCS#8 PEM private key (v1 or v2).
    pub fn from_pem(pem: &str) -> Result<Self> {
        SigningKey::from_pkcs8_pem(pem).map(PrivateKey).map_err(|e| anyhow!("not an Ed25519 PKCS#8 private key ({e})"))
    }

    /// PKCS#8 v1 PEM. The returned string is secret.
    pub fn to_pem(&self) -> Result<String> {
        let bytes = KeypairBytes { secret_key: self.0.to_bytes(), public_key: None };
        let pem = bytes.to_pkcs8_pem(LineEnding::LF).map_err(|e| anyhow!("cannot encode private key: {e}"))?;
        Ok(pem.to_string())
    }

    /// PKCS#8 v1 DER (what `jsonwebtoken::EncodingKey::from_ed_der` expects). Secret.
    pub fn to_der(&self) -> Result<Vec<u8>> {
        let bytes = KeypairBytes { secret_key: self.0.to_bytes(), public_key: None };
        let der = bytes.to_pkcs8_der().map_err(|e| anyhow!("cannot encode private key: {e}"))?;
        Ok(der.as_bytes().to_vec())
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The Ed25519 signature of `message` (RFC 8032, deterministic).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.0.sign(message).to_bytes()
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.x())
    }
}

impl PublicKey {
    /// Parse an SPKI PEM public key.
    pub fn from_pem(pem: &str) -> Result<Self> {
        VerifyingKey::from_public_key_pem(pem.trim()).map(PublicKey).map_err(|e| anyhow!("not an Ed25519 SPKI public key ({e})"))
    }

    /// From a JWK `x` (base64url of the 32 raw bytes).
    pub fn from_x(x: &str) -> Result<Self> {
        let raw = B64URL.decode(x.trim_end_matches('=')).context("JWK x is not base64url")?;
        let raw: [u8; 32] = raw.try_into().map_err(|_| anyhow!("JWK x is not 32 bytes"))?;
        VerifyingKey::from_bytes(&raw).map(PublicKey).map_err(|_| anyhow!("JWK x is not an Ed25519 point"))
    }

    pub fn to_pem(&self) -> Result<String> {
        self.0.to_public_key_pem(LineEnding::LF).map_err(|e| anyhow!("cannot encode public key: {e}"))
    }

    /// base64url of the raw key: the JWK `x` member.
    pub fn x(&self) -> String {
        B64URL.encode(self.0.as_bytes())
    }

    /// RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order.
    pub fn thumbprint(&self) -> String {
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, self.x());
        B64URL.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// The public JWK, with `kid` = thumbprint, for JWKS documents.
    pub fn jwk(&self) -> serde_json::Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": self.x(), "kid": self.thumbprint(), "alg": "EdDSA", "use": "sig"})
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8037 Appendix A.1.
    const D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn rfc_key() -> PrivateKey {
        let seed: [u8; 32] = B64URL.decode(D).unwrap().try_into().unwrap();
        PrivateKey::from_seed(&seed)
    }

    #[test]
    fn rfc8037_public_key_and_thumbprint() {
        let key = rfc_key();
        assert_eq!(key.public().x(), X);
        // RFC 8037 A.3.
        assert_eq!(key.public().thumbprint(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn private_pem_is_pkcs8_v1_and_round_trips() {
        let key = rfc_key();
        let pem = key.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let der = key.to_der().unwrap();
        // RFC 8410 §10.3: version 0, no public key; 48 bytes in all.
        assert_eq!(der.len(), 48);
        assert_eq!(&der[..16], &[0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
        let back = PrivateKey::from_pem(&pem).unwrap();
        assert_eq!(back.public(), key.public());
    }

    #[test]
    fn public_pem_round_trips_and_x_parses() {
        let key = rfc_key().public();
        let pem = key.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(PublicKey::from_pem(&pem).unwrap(), key);
        assert_eq!(PublicKey::from_x(X).unwrap(), key);
        assert!(PublicKey::from_x("AAAA").is_err());
    }

    #[test]
    fn debug_redacts_private_key() {
        let text = format!("{:?}", rfc_key());
        assert!(text.contains("redacted"));
        assert!(!text.contains(D));
    }

    #[test]
    fn garbage_pem_is_an_error() {
        assert!(PrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err());
        assert!(PublicKey::from_pem("hello").is_err());
    }
}
