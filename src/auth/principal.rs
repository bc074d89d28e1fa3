//! The authenticated caller, taken from the `Authorization: Bearer` header.

use std::marker::PhantomData;
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use super::{AuthKeys, Claims, Role};
use crate::domain::advisory::Viewer;
use crate::domain::audit::Actor;
use crate::error::ApiError;

/// Who is calling, with the roles this service recognises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub sub: String,
    pub email: String,
    pub name: String,
    /// Sorted, without duplicates; may be empty.
    pub roles: Vec<Role>,
}

impl From<Claims> for Principal {
    fn from(claims: Claims) -> Self {
        // Unknown role names (another service's roles, say) are ignored.
        let mut roles: Vec<Role> = claims.roles.iter().filter_map(|r| r.parse().ok()).collect();
        roles.sort_unstable();
        roles.dedup();
        Self {
            sub: claims.sub,
            email: claims.email,
            name: claims.name,
            roles,
        }
    }
}

impl Principal {
    /// Who the audit log names for this caller's changes.
    pub fn actor(&self) -> Actor {
        Actor {
            sub: self.sub.clone(),
            name: self.name.clone(),
        }
    }

    pub fn highest_role(&self) -> Option<Role> {
        self.roles.iter().max().copied()
    }

    /// Roles are hierarchical: an approver has every analyst right.
    pub fn has(&self, role: Role) -> bool {
        self.highest_role().is_some_and(|highest| highest >= role)
    }

    /// 403 unless the principal has `role` (or a higher one).
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.has(role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this action needs the {role} role"
            )))
        }
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            authenticate(&req)
                .await?
                .ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))
        })
    }
}

/// The least role an endpoint needs, named as a type so that a handler
/// states it in its signature: `Authorized<Analyst>`.
pub trait Needs {
    const ROLE: Role;
}

/// One type per [`Role`], for [`Authorized`]; never built.
macro_rules! role_types {
    ($($role:ident),*) => {$(
        #[doc = concat!("The ", stringify!($role), " role, or a higher one.")]
        pub enum $role {}

        impl Needs for $role {
            const ROLE: Role = Role::$role;
        }
    )*};
}

role_types!(Reader, Analyst, Approver, Admin);

/// A caller who holds `R`'s role or a higher one: 401 without a valid
/// token, 403 with too low a role. Taken before a handler's other
/// extractors, so a caller who may not act is refused before its query or
/// body is judged.
pub struct Authorized<R> {
    principal: Principal,
    role: PhantomData<R>,
}

impl<R> Deref for Authorized<R> {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl<R: Needs + 'static> FromRequest for Authorized<R> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let principal = Principal::from_request(req, payload);
        Box::pin(async move {
            let principal = principal.await?;
            principal.require(R::ROLE)?;
            Ok(Self {
                principal,
                role: PhantomData,
            })
        })
    }
}

/// For public endpoints: `None` without an `Authorization` header. A header
/// that is present but invalid is still a 401, never a silent anonymous call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaybePrincipal(pub Option<Principal>);

impl MaybePrincipal {
    /// On a public endpoint (`public` when the deployment allows anonymous
    /// callers) whether the caller may go on, and as whom they read: a
    /// token, when sent, must still be valid (the extractor refuses a bad
    /// one) and, where the endpoint is not public, name a reader.
    pub fn may_use_public(&self, public: bool) -> Result<Viewer, ApiError> {
        match &self.0 {
            Some(principal) if !public => principal.require(Role::Reader)?,
            None if !public => {
                return Err(ApiError::Unauthorized("a bearer token is required".into()));
            }
            _ => {}
        }
        Ok(self.viewer())
    }

    /// As whom the caller reads advisories.
    pub fn viewer(&self) -> Viewer {
        match self.0 {
            Some(_) => Viewer::Personnel,
            None => Viewer::Public,
        }
    }
}

impl FromRequest for MaybePrincipal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await.map(MaybePrincipal) })
    }
}

/// The principal of the request's bearer token; `Ok(None)` without an
/// `Authorization` header. Middleware that needs the caller (idempotency
/// keys are per caller) uses it too, so tokens are judged one way only.
pub(crate) async fn authenticate(req: &HttpRequest) -> Result<Option<Principal>, ApiError> {
    // Looked up first so that a wiring mistake shows on every request.
    let keys = req.app_data::<web::Data<AuthKeys>>().ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!("AuthKeys is not registered as app data"))
    })?;
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let claims = keys
        .verify_fresh(bearer_token(value)?)
        .await
        .map_err(|error| {
            tracing::debug!(reason = %error, "bearer token rejected");
            ApiError::Unauthorized(error.to_string())
        })?;
    Ok(Some(claims.into()))
}

/// The token of a `Bearer <token>` header value; the scheme is
/// case-insensitive (RFC 9110 §11.1).
fn bearer_token(value: &HeaderValue) -> Result<&str, ApiError> {
    let malformed =
        || ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into());
    let (scheme, token) = value
        .to_str()
        .map_err(|_| malformed())?
        .trim()
        .split_once(' ')
        .ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;
    use actix_web::http::StatusCode;
    use actix_web::test::TestRequest;

    const SECRET: &[u8] = b"test-secret-that-is-long-enough-for-hs256";

    fn keys() -> AuthKeys {
        AuthKeys::new(SECRET, "https://clearance.test", "clearance-api")
    }

    fn token(roles: &[Role]) -> String {
        keys().mint(
            "user-1",
            "ada@example.test",
            "Ada",
            roles,
            chrono::Duration::minutes(5),
        )
    }

    fn principal(roles: &[Role]) -> Principal {
        Principal {
            sub: "user-1".into(),
            email: "ada@example.test".into(),
            name: "Ada".into(),
            roles: roles.to_vec(),
        }
    }

    /// A request carrying `AuthKeys` and, optionally, an Authorization header.
    fn request(authorization: Option<&str>) -> HttpRequest {
        let request = TestRequest::default().app_data(web::Data::new(keys()));
        match authorization {
            Some(value) => request.insert_header((header::AUTHORIZATION, value)),
            None => request,
        }
        .to_http_request()
    }

    fn assert_unauthorized(error: &ApiError) {
        assert!(matches!(error, ApiError::Unauthorized(_)), "{error:?}");
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            "Bearer"
        );
    }

    #[test]
    fn roles_are_hierarchical() {
        let approver = principal(&[Role::Reader, Role::Approver]);
        assert_eq!(approver.highest_role(), Some(Role::Approver));
        assert!(approver.has(Role::Reader));
        assert!(approver.has(Role::Analyst));
        assert!(approver.has(Role::Approver));
        assert!(!approver.has(Role::Admin));
        assert!(approver.require(Role::Analyst).is_ok());
        let error = approver.require(Role::Admin).unwrap_err();
        assert!(
            matches!(&error, ApiError::Forbidden(m) if m == "this action needs the admin role")
        );
        assert_eq!(error.status_code(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn no_recognised_role_means_no_rights() {
        let nobody = principal(&[]);
        assert_eq!(nobody.highest_role(), None);
        assert!(!nobody.has(Role::Reader));
        assert!(matches!(
            nobody.require(Role::Reader),
            Err(ApiError::Forbidden(_))
        ));
    }

    #[test]
    fn claims_keep_known_roles_only_sorted_and_deduplicated() {
        let keys = keys();
        let token = keys.mint("u", "e@x", "", &[], chrono::Duration::minutes(1));
        let mut claims = keys.verify(&token).unwrap();
        claims.roles = ["admin", "superuser", "reader", "admin", "Reader"]
            .map(String::from)
            .to_vec();
        assert_eq!(Principal::from(claims).roles, [Role::Reader, Role::Admin]);
    }

    #[actix_web::test]
    async fn valid_bearer_token_yields_the_principal() {
        let req = request(Some(&format!("Bearer {}", token(&[Role::Analyst]))));
        let principal = Principal::extract(&req).await.unwrap();
        assert_eq!(principal, self::principal(&[Role::Analyst]));
        // The scheme is case-insensitive.
        let req = request(Some(&format!("bearer {}", token(&[Role::Analyst]))));
        assert!(Principal::extract(&req).await.is_ok());
    }

    #[actix_web::test]
    async fn missing_header_is_401_with_www_authenticate() {
        let error = Principal::extract(&request(None)).await.unwrap_err();
        assert!(matches!(&error, ApiError::Unauthorized(m) if m == "a bearer token is required"));
        assert_unauthorized(&error);
    }

    #[actix_web::test]
    async fn invalid_token_is_401_with_the_reason() {
        let error = Principal::extract(&request(Some("Bearer not-a-jwt")))
            .await
            .unwrap_err();
        assert_unauthorized(&error);
        assert_eq!(
            error.to_string(),
            crate::auth::TokenError::Malformed.to_string()
        );
    }

    #[actix_web::test]
    async fn non_bearer_schemes_are_401() {
        for value in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "token"] {
            let error = Principal::extract(&request(Some(value))).await.unwrap_err();
            assert_unauthorized(&error);
        }
    }

    #[actix_web::test]
    async fn missing_auth_keys_is_an_internal_error() {
        let req = TestRequest::default()
            .insert_header((header::AUTHORIZATION, format!("Bearer {}", token(&[]))))
            .to_http_request();
        let error = Principal::extract(&req).await.unwrap_err();
        assert!(matches!(error, ApiError::Internal(_)), "{error:?}");
    }

    #[actix_web::test]
    async fn maybe_principal_is_none_without_a_header() {
        let MaybePrincipal(principal) = MaybePrincipal::extract(&request(None)).await.unwrap();
        assert_eq!(principal, None);
    }

    #[actix_web::test]
    async fn maybe_principal_is_some_with_a_valid_token() {
        let req = request(Some(&format!("Bearer {}", token(&[Role::Admin]))));
        let MaybePrincipal(principal) = MaybePrincipal::extract(&req).await.unwrap();
        assert_eq!(principal.unwrap().highest_role(), Some(Role::Admin));
    }

    #[actix_web::test]
    async fn maybe_principal_rejects_a_bad_header() {
        let error = MaybePrincipal::extract(&request(Some("Bearer not-a-jwt")))
            .await
            .unwrap_err();
        assert_unauthorized(&error);
    }
}
