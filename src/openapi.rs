//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{self, extract::Page};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Clearance",
        description = "Device advisory service: a register of device models, the evidence about them and the advisories that decide whether they may be used. Errors are RFC 9457 `application/problem+json`.",
        license(name = "Apache-2.0"),
    ),
    paths(
        api::ops::healthz,
        api::ops::readyz,
        api::ops::openapi_json,
        api::manufacturers::create,
        api::manufacturers::list,
        api::manufacturers::get,
        api::models::create,
        api::models::list,
        api::models::get,
        api::models::update,
        api::models::clearance_history,
        api::models_csv::export,
        api::models_csv::import,
        api::lookup::lookup,
        api::evidence::create,
        api::evidence::list,
        api::evidence::get,
        api::evidence::respond,
        api::evidence::upload,
        api::evidence::download,
        api::advisories::create,
        api::advisories::list,
        api::advisories::get,
        api::advisories::update,
        api::advisories::submit,
        api::advisories::reject,
        api::advisories::approve,
        api::advisories::publish,
        api::advisories::amend,
        api::advisories::withdraw,
        api::advisories::revisions,
        api::csaf::document,
        api::feed::feed,
        api::deliveries::list,
        api::deliveries::retry,
        api::deliveries::acknowledgements,
        api::deliveries::remind,
        api::acknowledge::page,
        api::acknowledge::acknowledge,
        api::reviews::open,
        api::reviews::list,
        api::reviews::get,
        api::reviews::close,
        api::personnel::create,
        api::personnel::list,
        api::personnel::get,
        api::personnel::update,
        api::personnel::import,
        api::subscriptions::subscribe,
        api::subscriptions::confirm,
        api::subscriptions::unsubscribe_page,
        api::subscriptions::unsubscribe,
        api::subscriptions::manage_page,
        api::audit::list,
        api::audit::verify,
    ),
    components(schemas(
        crate::error::Problem,
        crate::error::FieldError,
        Page<crate::domain::registry::Manufacturer>,
        Page<api::models::ModelView>,
        Page<crate::domain::evidence::Evidence>,
        Page<crate::db::clearance::StatusChange>,
        Page<api::advisories::AdvisoryView>,
        Page<api::advisories::RevisionView>,
        Page<crate::db::reviews::Review>,
        Page<api::audit::AuditEntry>,
        Page<crate::domain::personnel::Person>,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "registry", description = "Manufacturers and device models"),
        (name = "lookup", description = "May this device be used?"),
        (name = "evidence", description = "What was observed about models, the answers to it, and its files; never edited, only appended to"),
        (name = "advisories", description = "Advisories that decide whether models may be used, and their lifecycle"),
        (name = "reviews", description = "Models under examination until a due date"),
        (name = "personnel", description = "The directory of people who must follow advisories (admin)"),
        (name = "subscriptions", description = "Public subscriptions to TLP:CLEAR advisories, and the pages the links in their mail open"),
        (name = "audit", description = "The tamper-evident record of every change"),
        (name = "operations", description = "Health, readiness, documentation"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The document as committed in `openapi/openapi.json`.
pub fn to_json() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    json.push('\n');
    json
}
