//! Verification keys and token verification.
//!
//! Security rule: the algorithm a token is checked with comes from the key,
//! never from the token. A token without `kid` can only be an HS256 token
//! signed with our secret; a token with `kid` can only be checked with that
//! JWKS key's pinned algorithm. This shuts out `alg: none` and the classic
//! "HS256 signed with the RSA public key" confusion.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Deserializer, Serialize};

use super::Role;
use super::jwks_url::{JwksHealth, RemoteJwks};

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;
/// Smaller RSA keys are refused when loading a JWK Set.
const MIN_RSA_BITS: usize = 2048;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub email: String,
    #[serde(default)]
    pub name: String,
    /// Role names; unknown ones are kept here and ignored by `Principal`.
    pub roles: Vec<String>,
    pub iss: String,
    /// Foreign tokens may carry a list of audiences; after
    /// [`AuthKeys::verify`] this is always the configured audience.
    #[serde(deserialize_with = "one_audience")]
    pub aud: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub iat: i64,
}

/// Accepts `aud` as a string or as an array of strings (RFC 7519 §4.1.3).
fn one_audience<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Audience {
        One(String),
        Many(Vec<String>),
    }
    match Audience::deserialize(deserializer)? {
        Audience::One(aud) => Ok(aud),
        Audience::Many(auds) => auds
            .into_iter()
            .next()
            .ok_or_else(|| serde::de::Error::custom("`aud` is an empty list")),
    }
}

/// Why a token was rejected. Messages are safe to show to the caller: they
/// never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    #[error("the token header is malformed or names an algorithm this service does not accept")]
    MalformedHeader,
    #[error("the token's claims are malformed: {0}")]
    MalformedClaims(String),
    #[error("the token is missing the required `{0}` claim")]
    MissingClaim(String),
    #[error("the token names an unknown signing key (kid `{0}`)")]
    UnknownKeyId(String),
    #[error("the token's algorithm {found:?} is not allowed for its key (expected {expected:?})")]
    AlgorithmNotAllowed {
        found: Algorithm,
        expected: Algorithm,
    },
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error(
        "the token header marks extensions critical that this service does not understand ({0})"
    )]
    CriticalExtension(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by an issuer this service does not trust")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token could not be verified")]
    Unverifiable,
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(error: jsonwebtoken::errors::Error) -> Self {
        match error.into_kind() {
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::WrongIssuer,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            ErrorKind::MissingRequiredClaim(claim) => Self::MissingClaim(claim),
            ErrorKind::InvalidClaimFormat(claim) => {
                Self::MalformedClaims(format!("`{claim}` has the wrong type"))
            }
            // Only the payload is parsed as JSON here: the header was parsed
            // before (see `AuthKeys::verify`).
            ErrorKind::Json(error) => Self::MalformedClaims(error.to_string()),
            ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => Self::Malformed,
            other => {
                // A key that cannot be used, a provider failure…: a server
                // problem rather than the caller's, so leave a trace.
                tracing::warn!(error = ?other, "token verification failed unexpectedly");
                Self::Unverifiable
            }
        }
    }
}

/// A JWKS public key and the one algorithm it may verify.
pub(crate) struct PinnedKey {
    key: DecodingKey,
    alg: Algorithm,
}

/// The keys of a JWK Set by `kid`.
pub(crate) type KeySet = HashMap<String, Arc<PinnedKey>>;

/// Where the identity provider's keys are.
#[derive(Clone)]
enum Jwks {
    /// Loaded once (a file, or none: empty).
    Fixed(Arc<KeySet>),
    /// Fetched from a URL and kept fresh.
    Remote(Arc<RemoteJwks>),
}

/// Everything needed to verify (and mint) access tokens. Share it with
/// handlers as `web::Data<AuthKeys>`.
#[derive(Clone)]
pub struct AuthKeys {
    hs256_encoding: EncodingKey,
    hs256_decoding: DecodingKey,
    /// External identity provider keys by `kid`.
    jwks: Jwks,
    /// Where the roles are in a token's claims, when not the top-level
    /// `roles` (see [`AuthKeys::with_roles_claim`]).
    roles_claim: Option<String>,
    issuer: String,
    audience: String,
}

// Hand-written so that no key material can end up in a log.
impl fmt::Debug for AuthKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("AuthKeys");
        debug
            .field("issuer", &self.issuer)
            .field("audience", &self.audience);
        match &self.jwks {
            Jwks::Fixed(set) => {
                let mut kids: Vec<_> = set.keys().collect();
                kids.sort();
                debug.field("jwks_kids", &kids)
            }
            Jwks::Remote(remote) => debug.field("jwks", remote),
        };
        debug.finish_non_exhaustive()
    }
}

impl AuthKeys {
    /// Keys for our own HS256 tokens only. The secret should be at least 32
    /// random bytes; checking that is the configuration's job.
    pub fn new(hs256_secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            hs256_encoding: EncodingKey::from_secret(hs256_secret),
            hs256_decoding: DecodingKey::from_secret(hs256_secret),
            jwks: Jwks::Fixed(Arc::default()),
            roles_claim: None,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// Also accept tokens signed by the keys of a JWK Set (replacing any set
    /// loaded before). Every key needs a unique `kid` and must be a public
    /// RSA or EC (P-256, P-384) signing key; anything else is an error rather
    /// than silently skipped, so a bad configuration fails at start-up.
    pub fn with_jwks_json(mut self, json: &str) -> anyhow::Result<Self> {
        self.jwks = Jwks::Fixed(Arc::new(parse_jwks(json)?));
        Ok(self)
    }

    /// Also accept tokens signed by the keys of a JWK Set URL (replacing any
    /// set loaded before); see [`RemoteJwks`].
    pub fn with_remote_jwks(mut self, remote: Arc<RemoteJwks>) -> Self {
        self.jwks = Jwks::Remote(remote);
        self
    }

    /// Read the roles of the identity provider's tokens (those with a `kid`)
    /// from another claim than the top-level `roles`: a claim name, or a
    /// dotted path into nested claims such as Keycloak's `realm_access.roles`. A claim whose own name contains dots (an
    /// Auth0-style `https://example.org/roles`) is found by its whole name.
    pub fn with_roles_claim(mut self, claim: Option<String>) -> Self {
        self.roles_claim = claim;
        self
    }

    /// The JWK Set URL the keys come from, if they do.
    pub fn remote_jwks(&self) -> Option<&Arc<RemoteJwks>> {
        match &self.jwks {
            Jwks::Remote(remote) => Some(remote),
            Jwks::Fixed(_) => None,
        }
    }

    /// How the JWK Set URL is doing, when the keys come from one.
    pub fn jwks_health(&self) -> Option<JwksHealth> {
        self.remote_jwks().map(|remote| remote.health())
    }

    /// [`Self::with_jwks_json`] with the JWK Set read from a file.
    pub fn with_jwks_file(self, path: &Path) -> anyhow::Result<Self> {
        let json = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the JWK Set file {}", path.display()))?;
        self.with_jwks_json(&json)
            .with_context(|| format!("invalid JWK Set file {}", path.display()))
    }

    /// Checks a token's signature and claims and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|error| match error.kind() {
            ErrorKind::InvalidToken => TokenError::Malformed,
            // Includes algorithms jsonwebtoken does not know, such as "none".
            _ => TokenError::MalformedHeader,
        })?;
        // RFC 7515 §4.1.11: a token whose `crit` names an extension the
        // recipient does not understand must be rejected; this service
        // understands none.
        if let Some(critical) = &header.crit {
            return Err(TokenError::CriticalExtension(critical.join(", ")));
        }
        let pinned: Arc<PinnedKey>;
        let (key, alg) = match header.kid.as_deref() {
            Some(kid) => {
                // Never fall back to the HS256 secret for an unknown kid.
                pinned = self
                    .jwks_key(kid)
                    .ok_or_else(|| TokenError::UnknownKeyId(kid.to_owned()))?;
                (&pinned.key, pinned.alg)
            }
            None => (&self.hs256_decoding, Algorithm::HS256),
        };
        if header.alg != alg {
            return Err(TokenError::AlgorithmNotAllowed {
                found: header.alg,
                expected: alg,
            });
        }
        // Decode to a JSON value first so that jsonwebtoken's claim checks
        // (missing `exp`, wrong `aud`…) report before our stricter struct does.
        let mut data =
            jsonwebtoken::decode::<serde_json::Value>(token, key, &self.validation(alg))?;
        // The roles claim describes the identity provider's tokens; our own
        // (no `kid`) always carry `roles`.
        if let (Some(path), Some(_)) = (&self.roles_claim, &header.kid) {
            let roles = nested_claim(&data.claims, path)
                .cloned()
                .ok_or_else(|| TokenError::MissingClaim(path.clone()))?;
            data.claims["roles"] = roles;
        }
        let mut claims: Claims = serde_json::from_value(data.claims)
            .map_err(|error| TokenError::MalformedClaims(error.to_string()))?;
        if claims.sub.is_empty() {
            return Err(TokenError::MalformedClaims("`sub` is empty".into()));
        }
        // Validated above to be (or, for a list, contain) the configured one.
        claims.aud.clone_from(&self.audience);
        Ok(claims)
    }

    /// [`Self::verify`], fetching the JWK Set URL again first when the
    /// token names a `kid` the cached set does not hold (as often as the
    /// refresh policy allows): the identity provider may have rotated its
    /// keys since the last fetch.
    pub async fn verify_fresh(&self, token: &str) -> Result<Claims, TokenError> {
        match (self.verify(token), &self.jwks) {
            (Err(TokenError::UnknownKeyId(_)), Jwks::Remote(remote)) => {
                remote.refresh_for_unknown_kid().await;
                self.verify(token)
            }
            (outcome, _) => outcome,
        }
    }

    fn jwks_key(&self, kid: &str) -> Option<Arc<PinnedKey>> {
        match &self.jwks {
            Jwks::Fixed(set) => set.get(kid).cloned(),
            Jwks::Remote(remote) => remote.key(kid),
        }
    }

    /// Issues an HS256 token (no `kid`) valid from now for `ttl`.
    pub fn mint(
        &self,
        sub: &str,
        email: &str,
        name: &str,
        roles: &[Role],
        ttl: chrono::Duration,
    ) -> String {
        let now = chrono::Utc::now();
        let claims = Claims {
            sub: sub.to_owned(),
            email: email.to_owned(),
            name: name.to_owned(),
            roles: roles.iter().map(|role| role.as_str().to_owned()).collect(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: (now + ttl).timestamp(),
            nbf: None,
            iat: now.timestamp(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.hs256_encoding,
        )
        .expect("HS256 signing of plain claims with an in-memory secret cannot fail")
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        validation
    }
}

/// Parses a JWK Set. Every key needs a unique `kid` and must be a public RSA
/// or EC (P-256, P-384) signing key; anything else is an error rather than
/// silently skipped, so a bad set is noticed instead of half-used.
pub(crate) fn parse_jwks(json: &str) -> anyhow::Result<KeySet> {
    let set: JwkSet = serde_json::from_str(json).context("the JWK Set is not valid JSON")?;
    ensure!(!set.keys.is_empty(), "the JWK Set has no keys");
    let mut keys = KeySet::with_capacity(set.keys.len());
    for (index, jwk) in set.keys.iter().enumerate() {
        let kid = jwk
            .common
            .key_id
            .as_deref()
            .filter(|kid| !kid.is_empty())
            .with_context(|| format!("JWK Set key #{index} has no `kid`"))?;
        let pinned = pin_key(jwk).with_context(|| format!("JWK Set key `{kid}`"))?;
        ensure!(
            keys.insert(kid.to_owned(), Arc::new(pinned)).is_none(),
            "the JWK Set has two keys with kid `{kid}`"
        );
    }
    Ok(keys)
}

/// The claim at `path`: the claim of that whole name if there is one, else
/// the dotted path followed through nested objects.
fn nested_claim<'a>(claims: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    claims.get(path).or_else(|| {
        path.split('.')
            .try_fold(claims, |value, part| value.get(part))
    })
}

/// Turns one JWK into a verification key with its single allowed algorithm.
fn pin_key(jwk: &Jwk) -> anyhow::Result<PinnedKey> {
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        bail!("an encryption key (`use: enc`) cannot verify signatures");
    }
    let declared = jwk.common.key_algorithm;
    match &jwk.algorithm {
        AlgorithmParameters::RSA(params) => {
            let key = DecodingKey::from_rsa_components(&params.n, &params.e)
                .context("the RSA modulus or exponent is not base64url")?;
            if let DecodingKeyKind::RsaModulusExponent { n, .. } = key.kind() {
                let bits = n.iter().position(|&byte| byte != 0).map_or(0, |first| {
                    (n.len() - first) * 8 - n[first].leading_zeros() as usize
                });
                ensure!(
                    bits >= MIN_RSA_BITS,
                    "the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"
                );
            }
            let alg = pin_algorithm(declared, AlgorithmFamily::Rsa.algorithms())?;
            Ok(PinnedKey { key, alg })
        }
        AlgorithmParameters::EllipticCurve(params) => {
            let alg = match params.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                ref other => bail!("the curve {other:?} is not supported (only P-256 and P-384)"),
            };
            let alg = pin_algorithm(declared, &[alg])?;
            let key = DecodingKey::from_ec_components(&params.x, &params.y)
                .context("the EC coordinates are not base64url")?;
            // The point is only parsed when a verifier is built: build one now
            // so that a bad key fails at start-up rather than on every request.
            jsonwebtoken::crypto::verify("", b"", &key, alg)
                .context("the EC coordinates are not a point on the curve")?;
            Ok(PinnedKey { key, alg })
        }
        AlgorithmParameters::OctetKey(_) => {
            bail!("symmetric (`oct`) keys are not accepted: only public RSA and EC keys")
        }
        _ => bail!("unsupported key type: only public RSA and EC (P-256, P-384) keys"),
    }
}

/// The JWK's own `alg` when it fits the key type, else the first `allowed`
/// (the key type's default).
fn pin_algorithm(
    declared: Option<KeyAlgorithm>,
    allowed: &[Algorithm],
) -> anyhow::Result<Algorithm> {
    let Some(declared) = declared else {
        return Ok(allowed[0]);
    };
    match Algorithm::try_from(declared) {
        Ok(alg) if allowed.contains(&alg) => Ok(alg),
        _ => bail!("`alg: {declared}` does not fit the key type (expected one of {allowed:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, encode};
    use serde_json::{Value, json};

    const SECRET: &[u8] = b"test-secret-that-is-long-enough-for-hs256";
    const ISSUER: &str = "https://clearance.test";
    const AUDIENCE: &str = "clearance-api";

    const JWKS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/jwt/jwks.json"
    ));
    const RSA_PRIVATE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/jwt/rsa-private.pem"
    ));
    const OTHER_RSA_PRIVATE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/jwt/other-rsa-private.pem"
    ));
    const EC_PRIVATE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/jwt/ec-private.pem"
    ));

    fn keys() -> AuthKeys {
        AuthKeys::new(SECRET, ISSUER, AUDIENCE)
            .with_jwks_json(JWKS)
            .expect("the fixture JWK Set loads")
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    /// Valid claims for the configured issuer and audience.
    fn claims() -> Value {
        json!({
            "sub": "user-1",
            "email": "ada@example.test",
            "name": "Ada",
            "roles": ["analyst"],
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now(),
            "exp": now() + 600,
        })
    }

    /// Claims with some fields replaced (`null` removes a field).
    fn claims_with(changes: Value) -> Value {
        let mut claims = claims();
        for (field, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(field);
            } else {
                claims[field] = value.clone();
            }
        }
        claims
    }

    fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        encode(&header, claims, key).unwrap()
    }

    fn hs256(claims: &Value) -> String {
        sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(SECRET),
            claims,
        )
    }

    fn rsa_key(pem: &str) -> EncodingKey {
        EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()
    }

    /// Verifies a token that must fail, checking the message hides the token.
    fn rejection(token: &str) -> TokenError {
        let error = keys()
            .verify(token)
            .expect_err("the token must be rejected");
        assert!(
            token.is_empty() || !error.to_string().contains(token),
            "{error}"
        );
        error
    }

    #[test]
    fn minted_token_verifies_and_yields_its_claims() {
        let keys = keys();
        let token = keys.mint(
            "user-1",
            "ada@example.test",
            "Ada",
            &[Role::Analyst, Role::Reader],
            chrono::Duration::minutes(5),
        );
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.sub, "user-1");
        assert_eq!(claims.email, "ada@example.test");
        assert_eq!(claims.name, "Ada");
        assert_eq!(claims.roles, ["analyst", "reader"]);
        assert_eq!(claims.iss, ISSUER);
        assert_eq!(claims.aud, AUDIENCE);
        assert_eq!(claims.nbf, None);
        assert!((claims.iat - now()).abs() <= 5);
        assert_eq!(claims.exp - claims.iat, 300);
    }

    #[test]
    fn minted_token_is_hs256_without_kid_and_aud_is_a_string() {
        let token = keys().mint("u", "e@x", "", &[], chrono::Duration::minutes(1));
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        assert_eq!(header.kid, None);
        let payload: Value = jsonwebtoken::dangerous::insecure_decode_claims(&token).unwrap();
        assert_eq!(payload["aud"], json!(AUDIENCE));
        assert!(payload.get("nbf").is_none());
    }

    #[test]
    fn rs256_token_with_known_kid_verifies() {
        let token = sign(
            Algorithm::RS256,
            Some("test-rsa"),
            &rsa_key(RSA_PRIVATE),
            &claims(),
        );
        assert_eq!(keys().verify(&token).unwrap().sub, "user-1");
    }

    #[test]
    fn es256_token_with_known_kid_verifies() {
        let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
        let token = sign(Algorithm::ES256, Some("test-ec"), &key, &claims());
        assert_eq!(keys().verify(&token).unwrap().email, "ada@example.test");
    }

    #[test]
    fn roles_come_from_the_configured_claim_of_identity_provider_tokens() {
        let keys = keys().with_roles_claim(Some("realm_access.roles".into()));
        let rsa = |claims: &Value| {
            sign(
                Algorithm::RS256,
                Some("test-rsa"),
                &rsa_key(RSA_PRIVATE),
                claims,
            )
        };
        // Keycloak: nested, and the top-level `roles` (absent here) is not needed.
        let keycloak = claims_with(json!({
            "roles": null,
            "realm_access": { "roles": ["approver", "offline_access"] },
        }));
        let verified = keys.verify(&rsa(&keycloak)).unwrap();
        assert_eq!(verified.roles, ["approver", "offline_access"]);
        // The configured claim wins over a top-level `roles`.
        let both = claims_with(json!({ "realm_access": { "roles": ["reader"] } }));
        assert_eq!(keys.verify(&rsa(&both)).unwrap().roles, ["reader"]);
        // Missing: refused by name, not read as "no roles".
        assert_eq!(
            keys.verify(&rsa(&claims())).unwrap_err(),
            TokenError::MissingClaim("realm_access.roles".into())
        );
        let not_a_list = claims_with(json!({ "realm_access": { "roles": "admin" } }));
        assert!(matches!(
            keys.verify(&rsa(&not_a_list)).unwrap_err(),
            TokenError::MalformedClaims(_)
        ));
        // Our own HS256 tokens keep `roles`.
        assert_eq!(keys.verify(&hs256(&claims())).unwrap().roles, ["analyst"]);
        // An Auth0-style claim whose name contains dots is found whole.
        let keys = keys.with_roles_claim(Some("https://clearance.example.org/roles".into()));
        let auth0 = claims_with(json!({ "https://clearance.example.org/roles": ["admin"] }));
        assert_eq!(keys.verify(&rsa(&auth0)).unwrap().roles, ["admin"]);
    }

    #[test]
    fn audience_list_containing_ours_is_accepted() {
        let token = hs256(&claims_with(json!({ "aud": ["other", AUDIENCE] })));
        assert_eq!(keys().verify(&token).unwrap().aud, AUDIENCE);
    }

    #[test]
    fn expiry_within_the_leeway_is_accepted() {
        let token = hs256(&claims_with(json!({ "exp": now() - 10 })));
        assert!(keys().verify(&token).is_ok());
    }

    #[test]
    fn a_critical_extension_is_rejected_even_when_signed() {
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(vec!["b64".into()]);
        let token = encode(&header, &claims(), &EncodingKey::from_secret(SECRET)).unwrap();
        assert_eq!(
            rejection(&token),
            TokenError::CriticalExtension("b64".into())
        );
    }

    #[test]
    fn alg_none_is_rejected() {
        // base64url of {"alg":"none","typ":"JWT"}, then a valid payload and
        // an empty signature.
        let payload = hs256(&claims()).split('.').nth(1).unwrap().to_owned();
        let token = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(rejection(&token), TokenError::MalformedHeader);
    }

    #[test]
    fn wrong_audience_is_rejected() {
        let token = hs256(&claims_with(json!({ "aud": "someone-else" })));
        assert_eq!(rejection(&token), TokenError::WrongAudience);
        let token = hs256(&claims_with(json!({ "aud": ["a", "b"] })));
        assert_eq!(rejection(&token), TokenError::WrongAudience);
    }

    #[test]
    fn wrong_issuer_is_rejected() {
        let token = hs256(&claims_with(json!({ "iss": "https://evil.test" })));
        assert_eq!(rejection(&token), TokenError::WrongIssuer);
    }

    #[test]
    fn expired_token_is_rejected() {
        let token = hs256(&claims_with(json!({ "exp": now() - 45 })));
        assert_eq!(rejection(&token), TokenError::Expired);
    }

    #[test]
    fn token_not_valid_yet_is_rejected() {
        let token = hs256(&claims_with(json!({ "nbf": now() + 45 })));
        assert_eq!(rejection(&token), TokenError::NotYetValid);
    }

    #[test]
    fn hs256_token_signed_with_another_secret_is_rejected() {
        let key = EncodingKey::from_secret(b"another-secret-that-is-long-enough");
        let token = sign(Algorithm::HS256, None, &key, &claims());
        assert_eq!(rejection(&token), TokenError::BadSignature);
    }

    #[test]
    fn rs256_token_from_another_key_under_a_known_kid_is_rejected() {
        let token = sign(
            Algorithm::RS256,
            Some("test-rsa"),
            &rsa_key(OTHER_RSA_PRIVATE),
            &claims(),
        );
        assert_eq!(rejection(&token), TokenError::BadSignature);
    }

    #[test]
    fn unknown_kid_is_rejected() {
        let token = sign(
            Algorithm::RS256,
            Some("not-in-the-set"),
            &rsa_key(OTHER_RSA_PRIVATE),
            &claims(),
        );
        assert_eq!(
            rejection(&token),
            TokenError::UnknownKeyId("not-in-the-set".into())
        );
        // Not even an HS256 token signed with our own secret gets through.
        let token = sign(
            Algorithm::HS256,
            Some("not-in-the-set"),
            &EncodingKey::from_secret(SECRET),
            &claims(),
        );
        assert_eq!(
            rejection(&token),
            TokenError::UnknownKeyId("not-in-the-set".into())
        );
    }

    #[test]
    fn rs256_token_without_kid_is_rejected() {
        let token = sign(Algorithm::RS256, None, &rsa_key(RSA_PRIVATE), &claims());
        assert_eq!(
            rejection(&token),
            TokenError::AlgorithmNotAllowed {
                found: Algorithm::RS256,
                expected: Algorithm::HS256
            }
        );
    }

    #[test]
    fn hs256_token_claiming_an_rsa_kid_is_rejected() {
        // Algorithm confusion: HS256 under a kid pinned to RS256.
        let token = sign(
            Algorithm::HS256,
            Some("test-rsa"),
            &EncodingKey::from_secret(SECRET),
            &claims(),
        );
        assert_eq!(
            rejection(&token),
            TokenError::AlgorithmNotAllowed {
                found: Algorithm::HS256,
                expected: Algorithm::RS256
            }
        );
    }

    #[test]
    fn token_without_exp_is_rejected() {
        let token = hs256(&claims_with(json!({ "exp": null })));
        assert_eq!(rejection(&token), TokenError::MissingClaim("exp".into()));
    }

    #[test]
    fn token_without_sub_iss_or_aud_is_rejected() {
        for claim in ["sub", "iss", "aud"] {
            let token = hs256(&claims_with(json!({ claim: null })));
            assert_eq!(rejection(&token), TokenError::MissingClaim(claim.into()));
        }
    }

    #[test]
    fn token_without_email_is_rejected() {
        let token = hs256(&claims_with(json!({ "email": null })));
        assert!(matches!(rejection(&token), TokenError::MalformedClaims(_)));
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(rejection("garbage"), TokenError::Malformed);
        assert_eq!(rejection(""), TokenError::Malformed);
        assert_eq!(rejection("a.b.c"), TokenError::MalformedHeader);
    }

    #[test]
    fn jwks_pins_rs256_and_es256_from_the_fixture() {
        let keys = keys();
        assert_eq!(keys.jwks_key("test-rsa").unwrap().alg, Algorithm::RS256);
        assert_eq!(keys.jwks_key("test-ec").unwrap().alg, Algorithm::ES256);
        // Debug lists the kids and no key material.
        let debug = format!("{keys:?}");
        assert!(
            debug.contains("test-ec") && debug.contains("test-rsa"),
            "{debug}"
        );
        assert!(!debug.contains("test-secret"), "{debug}");
    }

    /// The fixture JWK Set with its first key (RSA) edited.
    fn jwks_with_rsa(changes: Value) -> String {
        let mut set: Value = serde_json::from_str(JWKS).unwrap();
        for (field, value) in changes.as_object().unwrap() {
            if value.is_null() {
                set["keys"][0].as_object_mut().unwrap().remove(field);
            } else {
                set["keys"][0][field] = value.clone();
            }
        }
        set.to_string()
    }

    fn jwks_error(json: &str) -> String {
        let error = AuthKeys::new(SECRET, ISSUER, AUDIENCE)
            .with_jwks_json(json)
            .expect_err("the JWK Set must be refused");
        format!("{error:#}")
    }

    #[test]
    fn jwks_honours_a_consistent_alg_and_defaults_without_one() {
        let keys = AuthKeys::new(SECRET, ISSUER, AUDIENCE)
            .with_jwks_json(&jwks_with_rsa(json!({ "alg": "PS256" })))
            .unwrap();
        assert_eq!(keys.jwks_key("test-rsa").unwrap().alg, Algorithm::PS256);
        let keys = AuthKeys::new(SECRET, ISSUER, AUDIENCE)
            .with_jwks_json(&jwks_with_rsa(json!({ "alg": null })))
            .unwrap();
        assert_eq!(keys.jwks_key("test-rsa").unwrap().alg, Algorithm::RS256);
    }

    #[test]
    fn jwks_refuses_bad_keys() {
        let error = jwks_error(&jwks_with_rsa(json!({ "kid": null })));
        assert!(error.contains("key #0 has no `kid`"), "{error}");

        let error = jwks_error(&jwks_with_rsa(json!({ "alg": "ES256" })));
        assert!(
            error.contains("`test-rsa`") && error.contains("does not fit"),
            "{error}"
        );

        let error = jwks_error(&jwks_with_rsa(json!({ "alg": "HS256" })));
        assert!(error.contains("does not fit"), "{error}");

        let error = jwks_error(&jwks_with_rsa(json!({ "use": "enc" })));
        assert!(error.contains("encryption key"), "{error}");

        let error =
            jwks_error(r#"{"keys":[{"kty":"oct","kid":"shared","alg":"HS256","k":"c2VjcmV0"}]}"#);
        assert!(
            error.contains("`shared`") && error.contains("symmetric"),
            "{error}"
        );

        let error = jwks_error(&jwks_with_rsa(json!({ "kid": "test-ec" })));
        assert!(error.contains("two keys with kid `test-ec`"), "{error}");

        // A 512-bit modulus: 86 base64url characters, the first byte 0xC0.
        let small = jwks_with_rsa(json!({ "n": "A".repeat(86).replacen('A', "w", 1) }));
        let error = jwks_error(&small);
        assert!(error.contains("at least 2048"), "{error}");

        assert!(jwks_error("not json").contains("not valid JSON"));
        assert!(jwks_error(r#"{"keys":[]}"#).contains("no keys"));
    }

    #[test]
    fn jwks_refuses_an_ec_point_off_the_curve() {
        let mut set: Value = serde_json::from_str(JWKS).unwrap();
        set["keys"][1]["y"] = json!(set["keys"][1]["x"].clone());
        let error = jwks_error(&set.to_string());
        assert!(
            error.contains("`test-ec`") && error.contains("curve"),
            "{error}"
        );
    }

    #[test]
    fn jwks_file_errors_name_the_path() {
        let path = Path::new("/nonexistent/clearance-jwks.json");
        let error = AuthKeys::new(SECRET, ISSUER, AUDIENCE)
            .with_jwks_file(path)
            .unwrap_err();
        assert!(
            format!("{error:#}").contains("/nonexistent/clearance-jwks.json"),
            "{error:#}"
        );
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/jwt/jwks.json"
        ));
        let keys = AuthKeys::new(SECRET, ISSUER, AUDIENCE)
            .with_jwks_file(path)
            .unwrap();
        assert!(keys.jwks_key("test-rsa").is_some() && keys.jwks_key("test-ec").is_some());
    }
}
