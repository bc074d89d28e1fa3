//! The HTTP API and the pages: one file per resource, each handler parsing,
//! authorising, calling one use case (`crate::workflow`) or query, and
//! rendering. [`endpoints`] lists every handler once; their
//! `#[utoipa::path]` annotations give the method and path, so the route
//! table and the OpenAPI document come from the same list.

pub mod acknowledge;
pub mod advisories;
pub mod audit;
pub mod csaf;
pub mod deliveries;
pub mod evidence;
pub mod extract;
pub mod feed;
pub mod idempotency;
pub mod lookup;
pub mod manufacturers;
pub mod models;
pub mod models_csv;
pub mod ops;
pub mod personnel;
pub mod reviews;
pub mod routes;
pub mod subscriptions;

use actix_web::web;

use crate::pages;
use crate::pages::advisory as advisory_page;
use crate::pages::lookup as lookup_page;
use routes::Endpoint;

/// Every operation the service answers.
pub fn endpoints() -> Vec<Endpoint> {
    crate::endpoints![
        ops::healthz,
        ops::readyz,
        ops::openapi_json,
        manufacturers::create,
        manufacturers::list,
        manufacturers::get,
        models::create,
        models::list,
        models::get,
        models::update,
        models::clearance_history,
        models_csv::export,
        models_csv::import,
        lookup::lookup,
        pages::home,
        lookup_page::lookup_page,
        evidence::create,
        evidence::list,
        evidence::get,
        evidence::respond,
        evidence::upload,
        evidence::download,
        advisories::create,
        advisories::list,
        advisories::get,
        advisories::update,
        advisories::submit,
        advisories::reject,
        advisories::approve,
        advisories::publish,
        advisories::amend,
        advisories::withdraw,
        advisories::revisions,
        advisory_page::advisory_page,
        csaf::document,
        csaf::provider_metadata,
        csaf::index,
        csaf::changes,
        csaf::clear_directory,
        csaf::clear_year_directory,
        csaf::clear_file,
        feed::feed,
        deliveries::list,
        deliveries::retry,
        deliveries::acknowledgements,
        deliveries::remind,
        acknowledge::page,
        acknowledge::acknowledge,
        reviews::open,
        reviews::list,
        reviews::get,
        reviews::close,
        personnel::create,
        personnel::list,
        personnel::get,
        personnel::update,
        personnel::import,
        subscriptions::subscribe,
        subscriptions::confirm,
        subscriptions::confirm_page,
        subscriptions::unsubscribe_page,
        subscriptions::unsubscribe,
        subscriptions::manage_page,
        subscriptions::manage,
        subscriptions::subscribe_page,
        subscriptions::subscribe_form,
        audit::list,
        audit::verify,
    ]
}

/// Registers every endpoint.
pub fn routes(cfg: &mut web::ServiceConfig) {
    routes::configure(cfg, &endpoints());
}
