//! Every route, named once. A handler's `#[utoipa::path]` gives its method
//! and path; [`endpoints!`] pairs each handler with that documentation, and
//! the one list builds both the route table ([`configure`]) and the OpenAPI
//! document (`crate::openapi`), so the two cannot drift apart.

use std::sync::Arc;

use actix_web::dev::Handler;
use actix_web::http::Method;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{FromRequest, Responder, Route, web};
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::{RefOr, schema::Schema};

use crate::limits::rate::RateClass;

/// One operation: where it is served, what serves it, how it is documented.
#[derive(Clone)]
pub struct Endpoint {
    pub path: String,
    pub method: HttpMethod,
    pub operation: Operation,
    /// The handler's module (`models` for `models::list`): it tells apart
    /// handlers of the same name in the document's operation ids.
    pub module: &'static str,
    /// The schemas the operation refers to, for the document's components.
    pub schemas: Vec<(String, RefOr<Schema>)>,
    route: Arc<dyn Fn(Method) -> Route + Send + Sync>,
}

impl Endpoint {
    /// The endpoint of `handler`, documented by `Doc` (the type that
    /// `#[utoipa::path]` generates for it).
    pub fn new<Doc, F, Args>(module: &'static str, handler: F) -> Self
    where
        Doc: utoipa::Path + utoipa::__dev::SchemaReferences + for<'t> utoipa::__dev::Tags<'t>,
        F: Handler<Args> + Send + Sync,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let methods = Doc::methods();
        assert_eq!(methods.len(), 1, "{}: one method per handler", Doc::path());
        let mut operation = Doc::operation();
        let tags = Doc::tags();
        if !tags.is_empty() {
            operation
                .tags
                .get_or_insert_with(Vec::new)
                .extend(tags.into_iter().map(ToString::to_string));
        }
        let mut schemas = Vec::new();
        Doc::schemas(&mut schemas);
        Self {
            path: Doc::path(),
            method: methods[0].clone(),
            operation,
            module,
            schemas,
            route: Arc::new(move |method| web::route().method(method).to(handler.clone())),
        }
    }

    fn method(&self) -> Method {
        match self.method {
            HttpMethod::Get => Method::GET,
            HttpMethod::Post => Method::POST,
            HttpMethod::Put => Method::PUT,
            HttpMethod::Delete => Method::DELETE,
            HttpMethod::Options => Method::OPTIONS,
            HttpMethod::Head => Method::HEAD,
            HttpMethod::Patch => Method::PATCH,
            HttpMethod::Trace => Method::TRACE,
        }
    }

    /// Whether the operation documents `Idempotency-Key`: then the resource
    /// honours it.
    fn honours_idempotency_key(&self) -> bool {
        crate::openapi::header_parameter(&self.operation, "Idempotency-Key").is_some()
    }
}

/// The endpoints of the listed handlers (`module::handler`), each with the
/// documentation its `#[utoipa::path]` generated.
#[macro_export]
macro_rules! endpoints {
    ($($module:ident :: $handler:ident),* $(,)?) => {
        pastey::paste! {
            vec![$(
                $crate::api::routes::Endpoint::new::<$module::[<__path_ $handler>], _, _>(
                    stringify!($module),
                    $module::$handler,
                )
            ),*]
        }
    };
}

/// Registers `endpoints`: one resource per path with a route per method (so
/// a wrong method is a 405 naming the right ones), `HEAD` wherever `GET` is
/// served (named in a 405's `Allow`; `app::head_as_get` answers it), the
/// per-client rate limits applied where they apply ([`RateClass`]), and
/// `Idempotency-Key` honoured where it is documented. Paths
/// without parameters go first, so `/models/import` is never taken for
/// `/models/{id}`.
pub fn configure(cfg: &mut web::ServiceConfig, endpoints: &[Endpoint]) {
    let mut paths: Vec<&str> = Vec::new();
    for endpoint in endpoints {
        if !paths.contains(&endpoint.path.as_str()) {
            paths.push(&endpoint.path);
        }
    }
    paths.sort_by_key(|path| path.matches('{').count());
    for path in paths {
        let served: Vec<&Endpoint> = endpoints.iter().filter(|e| e.path == path).collect();
        let mut resource = web::resource(path);
        for endpoint in &served {
            let method = endpoint.method();
            resource = resource.route((endpoint.route)(method.clone()));
            if method == Method::GET {
                resource = resource.route((endpoint.route)(Method::HEAD));
            }
        }
        let resource = resource.wrap(Condition::new(
            RateClass::limits_route(path),
            from_fn(crate::limits::rate::limit),
        ));
        if served.iter().any(|e| e.honours_idempotency_key()) {
            cfg.service(resource.wrap(from_fn(super::idempotency::replay)));
        } else {
            cfg.service(resource);
        }
    }
}
