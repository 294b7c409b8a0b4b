//! Verification keys and the JWS algorithms they may verify: the profile's own Ed25519 keys,
//! and any standards JWK an identity provider publishes (RSA, EC P-256/P-384, OKP Ed25519;
//! RFC 7517/7518/8037), parsed with `jsonwebtoken`'s JWK types.
//!
//! A key is only ever used with the algorithms of its kind (RS/PS for RSA, ES256 for P-256,
//! ES384 for P-384, EdDSA for Ed25519), and only with the one its JWK `alg` names when it names
//! one; a JWK whose `use` is not `sig`, or that carries private or symmetric material, is
//! skipped. HMAC and `none` are not algorithms here at all.

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use serde_json::Value;

use crate::keys::PublicKey;

/// Smallest RSA modulus accepted (NIST SP 800-131A; RFC 7518 §3.3 requires at least 2048).
const MIN_RSA_BITS: usize = 2048;

fn modulus_bits(n: &str) -> usize {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(n.trim_end_matches('=')).unwrap_or_default();
    let significant = raw.iter().skip_while(|b| **b == 0).count();
    significant * 8
}

/// The JWS algorithms mcpgen verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    EdDSA,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
}

impl Alg {
    /// Every asymmetric algorithm identity providers use: the default of `mode: "oauth"`.
    pub const ASYMMETRIC: [Alg; 9] =
        [Alg::EdDSA, Alg::RS256, Alg::RS384, Alg::RS512, Alg::PS256, Alg::PS384, Alg::PS512, Alg::ES256, Alg::ES384];

    /// From a JWS `alg` (or an `algorithms` list entry). `Ed25519` is the fully-specified name
    /// of EdDSA with Ed25519 (RFC 9864).
    pub fn parse(name: &str) -> Option<Alg> {
        Some(match name {
            "EdDSA" | "Ed25519" => Alg::EdDSA,
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "PS256" => Alg::PS256,
            "PS384" => Alg::PS384,
            "PS512" => Alg::PS512,
            "ES256" => Alg::ES256,
            "ES384" => Alg::ES384,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::EdDSA => "EdDSA",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
        }
    }

    /// The same algorithm as `jsonwebtoken` names it.
    pub fn jose(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            Alg::EdDSA => A::EdDSA,
            Alg::RS256 => A::RS256,
            Alg::RS384 => A::RS384,
            Alg::RS512 => A::RS512,
            Alg::PS256 => A::PS256,
            Alg::PS384 => A::PS384,
            Alg::PS512 => A::PS512,
            Alg::ES256 => A::ES256,
            Alg::ES384 => A::ES384,
        }
    }
}

/// The public material of a key.
#[derive(Clone)]
pub enum Material {
    Ed25519(PublicKey),
    Rsa(DecodingKey),
    P256(DecodingKey),
    P384(DecodingKey),
}

/// A key that may verify tokens, named by its `kid` (for the profile's keys, the RFC 7638
/// thumbprint).
#[derive(Clone)]
pub struct TrustedKey {
    pub kid: String,
    pub material: Material,
    /// The one algorithm its JWK allows, when it names one.
    pub alg: Option<Alg>,
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.material {
            Material::Ed25519(_) => "Ed25519",
            Material::Rsa(_) => "RSA",
            Material::P256(_) => "P-256",
            Material::P384(_) => "P-384",
        };
        write!(f, "TrustedKey({kind}, kid={})", self.kid)
    }
}

impl TrustedKey {
    /// One of the profile's Ed25519 keys, named by its thumbprint.
    pub fn new(key: PublicKey) -> Self {
        TrustedKey { kid: key.thumbprint(), material: Material::Ed25519(key), alg: None }
    }

    /// The Ed25519 key, for publishing in the profile's JWKS.
    pub fn ed25519(&self) -> Option<&PublicKey> {
        match &self.material {
            Material::Ed25519(key) => Some(key),
            _ => None,
        }
    }

    /// Whether this key may verify a token signed with `alg`.
    pub fn allows(&self, alg: Alg) -> bool {
        let kind_ok = match &self.material {
            Material::Ed25519(_) => alg == Alg::EdDSA,
            Material::Rsa(_) => matches!(alg, Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512),
            Material::P256(_) => alg == Alg::ES256,
            Material::P384(_) => alg == Alg::ES384,
        };
        kind_ok && self.alg.is_none_or(|a| a == alg)
    }

    /// Check an RSA or ECDSA signature (base64url `signature` over `message`) with
    /// `jsonwebtoken`'s primitives. Ed25519 is checked by the caller with `verify_strict`.
    pub fn verify_jose(&self, alg: Alg, message: &[u8], signature: &str) -> bool {
        let key = match &self.material {
            Material::Rsa(k) | Material::P256(k) | Material::P384(k) => k,
            Material::Ed25519(_) => return false,
        };
        self.allows(alg) && jsonwebtoken::crypto::verify(signature, message, key, alg.jose()).unwrap_or(false)
    }
}

/// The signing keys of a JWKS document (`{"keys": [...]}`); keys mcpgen cannot or must not use
/// are skipped. A key without `kid` is named by its RFC 7638 thumbprint when it is Ed25519,
/// else by its position.
pub fn parse_set(doc: &Value) -> Vec<TrustedKey> {
    let mut out = Vec::new();
    for (i, raw) in doc.get("keys").and_then(Value::as_array).into_iter().flatten().enumerate() {
        // Private parts must never be published; a set that does so is misconfigured.
        if ["d", "p", "q", "dp", "dq", "qi", "k"].iter().any(|m| raw.get(m).is_some()) {
            continue;
        }
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else { continue };
        if let Some(key) = from_jwk(&jwk, i) {
            out.push(key);
        }
    }
    out
}

fn from_jwk(jwk: &Jwk, index: usize) -> Option<TrustedKey> {
    if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature) {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::EdDSA) => Some(Alg::EdDSA),
        Some(other) => Some(Alg::parse(&format!("{other:?}"))?),
    };
    let material = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => Material::Ed25519(PublicKey::from_x(&p.x).ok()?),
        AlgorithmParameters::RSA(p) if modulus_bits(&p.n) >= MIN_RSA_BITS => {
            Material::Rsa(DecodingKey::from_rsa_components(&p.n, &p.e).ok()?)
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            Material::P256(DecodingKey::from_ec_components(&p.x, &p.y).ok()?)
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P384 => {
            Material::P384(DecodingKey::from_ec_components(&p.x, &p.y).ok()?)
        }
        _ => return None,
    };
    let kid = match (&jwk.common.key_id, &material) {
        (Some(kid), _) => kid.clone(),
        (None, Material::Ed25519(key)) => key.thumbprint(),
        (None, _) => format!("#{index}"),
    };
    let key = TrustedKey { kid, material, alg };
    // A JWK `alg` that does not fit the key's kind makes the key unusable.
    if alg.is_some_and(|a| !key.allows(a)) {
        return None;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_taken_by_kind_use_and_alg() {
        let ed = crate::keys::PrivateKey::generate().public();
        let doc = json!({"keys": [
            ed.jwk(),
            {"kty": "OKP", "crv": "X25519", "x": ed.x(), "kid": "x"},
            {"kty": "OKP", "crv": "Ed25519", "x": ed.x(), "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": ed.x(), "kid": "priv", "d": ed.x()},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw",
             "e": "AQAB", "kid": "rsa", "alg": "RS256", "use": "sig"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB", "kid": "rsa-hs", "alg": "HS256"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa-tiny"},
        ]});
        let keys = parse_set(&doc);
        let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, [ed.thumbprint().as_str(), "rsa"]);
        assert!(keys[0].allows(Alg::EdDSA) && !keys[0].allows(Alg::RS256));
        assert!(keys[1].allows(Alg::RS256) && !keys[1].allows(Alg::PS256) && !keys[1].allows(Alg::EdDSA));
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(Alg::parse("Ed25519"), Some(Alg::EdDSA));
        for alg in Alg::ASYMMETRIC {
            assert_eq!(Alg::parse(alg.name()), Some(alg));
        }
        for refused in ["none", "HS256", "ES512", "eddsa", ""] {
            assert_eq!(Alg::parse(refused), None, "{refused}");
        }
    }
}
