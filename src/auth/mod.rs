//! Authentication and authorisation.
//!
//! Callers present a JWT as `Authorization: Bearer <token>`. Tokens without a
//! `kid` are our own HS256 tokens (see [`AuthKeys::mint`]); tokens with a
//! `kid` come from an external identity provider whose public keys are loaded
//! from a JWK Set file or fetched from its URL ([`jwks_url`]). Either way the
//! key decides the algorithm, never the token.
//!
//! Handlers take an [`Authorized`] caller, which names the least [`Role`]
//! the action needs (`Authorized<Analyst>`), or a [`MaybePrincipal`]
//! (public endpoints).

pub mod jwks_url;
pub mod keys;
pub mod principal;
pub mod role;

pub use keys::{AuthKeys, Claims, TokenError};
pub use principal::{Admin, Analyst, Approver, Authorized, MaybePrincipal, Principal, Reader};
pub use role::Role;
