//! Integration tests through the HTTP API, each on SQLite and PostgreSQL;
//! and the mail transports against a real SMTP server.

mod browser;
mod helpers;
mod jwks_server;
mod mail_server;

mod advisory_page;
mod audit;
mod auth;
mod backup;
mod clearance_rule;
mod cluster;
mod csaf;
mod errors;
mod evidence;
mod feed;
mod hardening;
mod idempotency;
mod identity_provider;
mod limits;
mod lookup;
mod lookup_follows;
mod lookup_page;
mod mail;
mod models_csv;
mod operations;
mod page_contact;
mod personnel;
mod read_replica;
mod registry;
mod startup;
mod subscriptions;
mod transport;
mod visibility;
mod workflow;
