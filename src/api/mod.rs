//! The HTTP API: one file per resource, each handler parsing, authorising,
//! calling the store and rendering.

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
pub mod subscriptions;

use actix_web::middleware::from_fn;
use actix_web::web;

/// Registers every route of the API. Each resource with a creating `POST`
/// is wrapped in [`idempotency::replay`], which honours `Idempotency-Key`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(ops::healthz)))
        .service(web::resource("/readyz").route(web::get().to(ops::readyz)))
        .service(web::resource("/openapi.json").route(web::get().to(ops::openapi_json)))
        .service(web::resource("/feed.atom").route(web::get().to(feed::feed)))
        // The links in mail: short, outside the API's prefix.
        .service(
            web::resource("/unsubscribe")
                .route(web::get().to(subscriptions::unsubscribe_page))
                .route(web::post().to(subscriptions::unsubscribe)),
        )
        // The CSAF provider (public, TLP:CLEAR only), where the standard puts it.
        .service(
            web::resource("/.well-known/csaf/provider-metadata.json")
                .route(web::get().to(csaf::provider_metadata)),
        )
        .service(
            web::resource("/.well-known/csaf/clear/index.txt").route(web::get().to(csaf::index)),
        )
        .service(
            web::resource("/.well-known/csaf/clear/changes.csv")
                .route(web::get().to(csaf::changes)),
        )
        .service(
            web::resource("/.well-known/csaf/clear/{year}/{file}")
                .route(web::get().to(csaf::clear_file)),
        )
        .service(web::resource("/manage").route(web::get().to(subscriptions::manage_page)))
        .service(
            web::resource("/subscribe")
                .route(web::get().to(subscriptions::subscribe_page))
                .route(web::post().to(subscriptions::subscribe_form)),
        )
        .service(
            web::resource("/acknowledge")
                .route(web::get().to(acknowledge::page))
                .route(web::post().to(acknowledge::acknowledge)),
        )
        .service(
            web::scope("/api/v1")
                .service(
                    web::resource("/manufacturers")
                        .wrap(from_fn(idempotency::replay))
                        .route(web::get().to(manufacturers::list))
                        .route(web::post().to(manufacturers::create)),
                )
                .service(
                    web::resource("/manufacturers/{id}").route(web::get().to(manufacturers::get)),
                )
                .service(
                    web::resource("/models")
                        .wrap(from_fn(idempotency::replay))
                        .route(web::get().to(models::list))
                        .route(web::post().to(models::create)),
                )
                .service(web::resource("/models.csv").route(web::get().to(models_csv::export)))
                // Before `/models/{id}`, which would otherwise take it. An
                // import is an upsert, so it needs no Idempotency-Key.
                .service(web::resource("/models/import").route(web::post().to(models_csv::import)))
                .service(
                    web::resource("/models/{id}")
                        .route(web::get().to(models::get))
                        .route(web::patch().to(models::update)),
                )
                .service(
                    web::resource("/models/{id}/clearance/history")
                        .route(web::get().to(models::clearance_history)),
                )
                .service(web::resource("/lookup").route(web::get().to(lookup::lookup)))
                .service(
                    web::resource("/advisories")
                        .wrap(from_fn(idempotency::replay))
                        .route(web::get().to(advisories::list))
                        .route(web::post().to(advisories::create)),
                )
                .service(
                    web::resource("/advisories/{id}")
                        .route(web::get().to(advisories::get))
                        .route(web::patch().to(advisories::update)),
                )
                .service(
                    web::resource("/advisories/{id}/deliveries")
                        .route(web::get().to(deliveries::list)),
                )
                .service(
                    web::resource("/advisories/{id}/deliveries/retry")
                        .route(web::post().to(deliveries::retry)),
                )
                .service(
                    web::resource("/advisories/{id}/acknowledgements")
                        .route(web::get().to(deliveries::acknowledgements)),
                )
                .service(
                    web::resource("/advisories/{id}/remind")
                        .route(web::post().to(deliveries::remind)),
                )
                .service(
                    web::resource("/advisories/{id}/revisions")
                        .route(web::get().to(advisories::revisions)),
                )
                .service(
                    web::resource("/advisories/{id}/csaf").route(web::get().to(csaf::document)),
                )
                .service(
                    web::resource("/advisories/{id}/submit")
                        .route(web::post().to(advisories::submit)),
                )
                .service(
                    web::resource("/advisories/{id}/reject")
                        .route(web::post().to(advisories::reject)),
                )
                .service(
                    web::resource("/advisories/{id}/approve")
                        .route(web::post().to(advisories::approve)),
                )
                .service(
                    web::resource("/advisories/{id}/publish")
                        .route(web::post().to(advisories::publish)),
                )
                .service(
                    web::resource("/advisories/{id}/amend")
                        .route(web::post().to(advisories::amend)),
                )
                .service(
                    web::resource("/advisories/{id}/withdraw")
                        .route(web::post().to(advisories::withdraw)),
                )
                .service(
                    web::resource("/reviews")
                        .wrap(from_fn(idempotency::replay))
                        .route(web::get().to(reviews::list))
                        .route(web::post().to(reviews::open)),
                )
                .service(web::resource("/reviews/{id}").route(web::get().to(reviews::get)))
                .service(web::resource("/reviews/{id}/close").route(web::post().to(reviews::close)))
                .service(
                    web::resource("/evidence")
                        .wrap(from_fn(idempotency::replay))
                        .route(web::get().to(evidence::list))
                        .route(web::post().to(evidence::create)),
                )
                // Evidence is never edited: GET only, so any other method
                // is a 405 naming it.
                .service(web::resource("/evidence/{id}").route(web::get().to(evidence::get)))
                .service(
                    web::resource("/evidence/{id}/responses")
                        .wrap(from_fn(idempotency::replay))
                        .route(web::post().to(evidence::respond)),
                )
                .service(
                    web::resource("/evidence/{id}/artifacts")
                        .route(web::post().to(evidence::upload)),
                )
                .service(
                    web::resource("/evidence/{id}/artifacts/{sha256}")
                        .route(web::get().to(evidence::download)),
                )
                .service(
                    web::resource("/personnel")
                        .wrap(from_fn(idempotency::replay))
                        .route(web::get().to(personnel::list))
                        .route(web::post().to(personnel::create)),
                )
                // Before `/personnel/{id}`, which would otherwise take it.
                // An import is an upsert, so it needs no Idempotency-Key.
                .service(
                    web::resource("/personnel/import").route(web::post().to(personnel::import)),
                )
                .service(
                    web::resource("/personnel/{id}")
                        .route(web::get().to(personnel::get))
                        .route(web::patch().to(personnel::update)),
                )
                // Public: no caller, so no Idempotency-Key either; repeating
                // a request only queues another mail.
                .service(
                    web::resource("/subscriptions").route(web::post().to(subscriptions::subscribe)),
                )
                .service(
                    web::resource("/subscriptions/confirm")
                        .route(web::get().to(subscriptions::confirm)),
                )
                .service(web::resource("/audit").route(web::get().to(audit::list)))
                .service(web::resource("/audit/verify").route(web::get().to(audit::verify))),
        );
}
