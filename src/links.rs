//! Tokens for the links in mail (confirm a subscription, unsubscribe,
//! acknowledge an advisory, manage a subscription): signed, expiring and
//! good for one purpose only, so that a link can act for its recipient
//! without an account and without a database row per link.
//!
//! A token is `base64url(claims) "." base64url(HMAC-SHA256(key, claims))`,
//! URL-safe without escaping. The key is the service's *link* secret
//! (`CLEARANCE_LINK_SECRET`, else generated into the data directory), never
//! the API's JWT secret: a leaked one cannot mint the other's tokens.
//!
//! The claims carry the purpose, the recipient's address key, the subject
//! (a subscription, or an advisory revision) and the expiry. The address
//! key travels readable inside the token; the token only ever goes to that
//! address, and a handler must check it against the subject's address
//! ([`LinkClaims::is_for`]) so that a token for one address never acts on
//! another's subscription.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use url::Url;
use uuid::Uuid;

use crate::config::Settings;
use crate::domain::mail::email_key;

type HmacSha256 = Hmac<Sha256>;

crate::text_enum! {
    /// What a link does; a token is good for its purpose only.
    pub enum LinkPurpose {
        /// Confirms a pending subscription (double opt-in).
        Confirm,
        /// Ends a subscription (RFC 8058 one-click, or the page's button).
        Unsubscribe,
        /// Acknowledges one revision of an advisory.
        Acknowledge,
        /// Shows a subscription and how to end it.
        Manage,
    }
}

impl LinkPurpose {
    /// How long a link stays good: a confirmation must follow the request
    /// soon; the others sit in mailboxes for months.
    pub fn lifetime(self) -> Duration {
        match self {
            Self::Confirm => Duration::hours(48),
            Self::Unsubscribe | Self::Acknowledge | Self::Manage => Duration::days(365),
        }
    }

    /// The path of the page or endpoint a link of this purpose opens.
    pub fn path(self) -> &'static str {
        match self {
            Self::Confirm => "/confirm",
            Self::Unsubscribe => "/unsubscribe",
            Self::Acknowledge => "/acknowledge",
            Self::Manage => "/manage",
        }
    }
}

/// What a link acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkSubject {
    /// A subscription (confirm, unsubscribe, manage).
    Subscription(Uuid),
    /// One revision of an advisory (acknowledge).
    Revision { advisory_id: Uuid, revision: i32 },
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    pub purpose: LinkPurpose,
    /// The recipient's address key (trimmed, lower-cased).
    pub email_key: String,
    pub subject: LinkSubject,
    /// Kept to the second.
    pub expires_at: DateTime<Utc>,
}

impl LinkClaims {
    /// Claims for a link sent to `email` at `now`, good for the purpose's
    /// [`lifetime`](LinkPurpose::lifetime).
    pub fn new(
        purpose: LinkPurpose,
        email: &str,
        subject: LinkSubject,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            purpose,
            email_key: email_key(email),
            subject,
            expires_at: now + purpose.lifetime(),
        }
    }

    /// Whether the link was sent to `email` (ignoring case).
    pub fn is_for(&self, email: &str) -> bool {
        self.email_key == email_key(email)
    }

    /// The subscription a subscription link acts on.
    pub fn subscription_id(&self) -> Option<Uuid> {
        match self.subject {
            LinkSubject::Subscription(id) => Some(id),
            LinkSubject::Revision { .. } => None,
        }
    }
}

/// Why a token is refused. Every kind is the caller's fault (a 400), never
/// the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is incomplete or damaged")]
    Malformed,
    #[error("the link's signature does not match")]
    BadSignature,
    #[error("the link is for something else")]
    WrongPurpose,
    #[error("the link has expired")]
    Expired,
}

/// The claims as they travel: short keys keep links short.
#[derive(Serialize, Deserialize)]
struct Wire {
    p: LinkPurpose,
    a: String,
    s: LinkSubject,
    e: i64,
}

/// Issues and checks link tokens with one key.
#[derive(Clone)]
pub struct LinkTokens {
    mac: HmacSha256,
}

impl LinkTokens {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            // HMAC takes a key of any length.
            mac: HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length"),
        }
    }

    /// The tokens of the link secret the settings name (or the generated one).
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let secret = crate::secrets::link_secret(settings)?;
        Ok(Self::new(crate::secrets::bytes(&secret)))
    }

    pub fn issue(&self, claims: &LinkClaims) -> String {
        let wire = Wire {
            p: claims.purpose,
            a: claims.email_key.clone(),
            s: claims.subject,
            e: claims.expires_at.timestamp(),
        };
        let payload = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&wire).expect("link claims serialise to JSON"));
        let signature = URL_SAFE_NO_PAD.encode(self.sign(&payload).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// The claims of a token issued with this key, for `purpose`, that has
    /// not expired.
    pub fn verify(&self, token: &str, purpose: LinkPurpose) -> Result<LinkClaims, LinkError> {
        self.verify_at(token, purpose, Utc::now())
    }

    fn verify_at(
        &self,
        token: &str,
        purpose: LinkPurpose,
        now: DateTime<Utc>,
    ) -> Result<LinkClaims, LinkError> {
        let (payload, signature) = token.trim().split_once('.').ok_or(LinkError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| LinkError::Malformed)?;
        self.sign(payload)
            .verify_slice(&signature)
            .map_err(|_| LinkError::BadSignature)?;
        let wire: Wire = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(LinkError::Malformed)?;
        if wire.p != purpose {
            return Err(LinkError::WrongPurpose);
        }
        let expires_at = DateTime::from_timestamp(wire.e, 0).ok_or(LinkError::Malformed)?;
        if now >= expires_at {
            return Err(LinkError::Expired);
        }
        Ok(LinkClaims {
            purpose: wire.p,
            email_key: wire.a,
            subject: wire.s,
            expires_at,
        })
    }

    fn sign(&self, payload: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        mac
    }
}

/// The absolute link of `purpose` carrying `token`, under the service's
/// public URL.
pub fn url(public_url: &Url, purpose: LinkPurpose, token: &str) -> Url {
    let mut url = public_url.clone();
    let base = public_url.path().trim_end_matches('/');
    url.set_path(&format!("{base}{}", purpose.path()));
    url.query_pairs_mut().clear().append_pair("token", token);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> LinkTokens {
        LinkTokens::new(b"a-link-secret-for-unit-tests-only-0123456789")
    }

    fn claims(purpose: LinkPurpose) -> LinkClaims {
        LinkClaims::new(
            purpose,
            " Ada@Example.ORG ",
            LinkSubject::Subscription(Uuid::now_v7()),
            Utc::now(),
        )
    }

    #[test]
    fn a_token_round_trips_to_its_claims() {
        let claims = claims(LinkPurpose::Unsubscribe);
        let token = tokens().issue(&claims);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "URL-safe: {token}"
        );
        let verified = tokens().verify(&token, LinkPurpose::Unsubscribe).unwrap();
        assert_eq!(verified.email_key, "ada@example.org");
        assert_eq!(verified.subject, claims.subject);
        assert_eq!(
            verified.expires_at.timestamp(),
            claims.expires_at.timestamp()
        );
        assert!(verified.is_for("ADA@example.org") && !verified.is_for("eve@example.org"));
        assert_eq!(verified.subscription_id(), claims.subscription_id());
    }

    #[test]
    fn acknowledge_links_name_an_advisory_revision() {
        let subject = LinkSubject::Revision {
            advisory_id: Uuid::now_v7(),
            revision: 3,
        };
        let claims = LinkClaims::new(
            LinkPurpose::Acknowledge,
            "a@example.org",
            subject,
            Utc::now(),
        );
        let token = tokens().issue(&claims);
        let verified = tokens().verify(&token, LinkPurpose::Acknowledge).unwrap();
        assert_eq!(verified.subject, subject);
        assert_eq!(verified.subscription_id(), None);
    }

    #[test]
    fn a_token_is_good_for_its_purpose_only() {
        let token = tokens().issue(&claims(LinkPurpose::Confirm));
        for other in [
            LinkPurpose::Unsubscribe,
            LinkPurpose::Acknowledge,
            LinkPurpose::Manage,
        ] {
            assert_eq!(tokens().verify(&token, other), Err(LinkError::WrongPurpose));
        }
    }

    #[test]
    fn confirmations_expire_after_48_hours_the_rest_after_a_year() {
        let issued = Utc::now();
        let confirm = LinkClaims::new(
            LinkPurpose::Confirm,
            "a@example.org",
            LinkSubject::Subscription(Uuid::now_v7()),
            issued,
        );
        let token = tokens().issue(&confirm);
        let at = |hours| issued + Duration::hours(hours);
        assert!(
            tokens()
                .verify_at(&token, LinkPurpose::Confirm, at(47))
                .is_ok()
        );
        assert_eq!(
            tokens().verify_at(&token, LinkPurpose::Confirm, at(49)),
            Err(LinkError::Expired)
        );
        let unsubscribe = tokens().issue(&claims(LinkPurpose::Unsubscribe));
        assert!(
            tokens()
                .verify_at(&unsubscribe, LinkPurpose::Unsubscribe, at(24 * 360))
                .is_ok()
        );
    }

    #[test]
    fn a_past_expiry_is_refused() {
        let mut claims = claims(LinkPurpose::Confirm);
        claims.expires_at = Utc::now() - Duration::minutes(1);
        let token = tokens().issue(&claims);
        assert_eq!(
            tokens().verify(&token, LinkPurpose::Confirm),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn tampering_anywhere_is_detected() {
        let token = tokens().issue(&claims(LinkPurpose::Unsubscribe));
        let (payload, signature) = token.split_once('.').unwrap();
        // Another address in otherwise identical claims, keeping the signature.
        let json = URL_SAFE_NO_PAD.decode(payload).unwrap();
        let forged = String::from_utf8(json)
            .unwrap()
            .replace("ada@example.org", "eve@example.org");
        let forged = format!("{}.{signature}", URL_SAFE_NO_PAD.encode(forged));
        assert_eq!(
            tokens().verify(&forged, LinkPurpose::Unsubscribe),
            Err(LinkError::BadSignature)
        );
        for index in [0, payload.len() + 3, token.len() - 1] {
            let mut bytes = token.clone().into_bytes();
            bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(
                tokens()
                    .verify(&tampered, LinkPurpose::Unsubscribe)
                    .is_err(),
                "{index}"
            );
        }
        for junk in ["", ".", "abc", "a.b", "🙂.🙂", &format!("{token}.x")] {
            assert!(
                tokens().verify(junk, LinkPurpose::Unsubscribe).is_err(),
                "{junk}"
            );
        }
    }

    #[test]
    fn another_key_refuses_the_token() {
        let token = tokens().issue(&claims(LinkPurpose::Manage));
        let other = LinkTokens::new(b"another-secret-of-the-same-length-012345678");
        assert_eq!(
            other.verify(&token, LinkPurpose::Manage),
            Err(LinkError::BadSignature)
        );
    }

    #[test]
    fn links_are_built_under_the_public_url() {
        let base = Url::parse("https://clearance.example.org/office/").unwrap();
        let link = url(&base, LinkPurpose::Unsubscribe, "abc.def");
        assert_eq!(
            link.as_str(),
            "https://clearance.example.org/office/unsubscribe?token=abc.def"
        );
        let root = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            url(&root, LinkPurpose::Confirm, "t").as_str(),
            "http://127.0.0.1:8080/confirm?token=t"
        );
    }
}
