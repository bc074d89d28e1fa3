//! Integration tests through the HTTP API, each on SQLite and PostgreSQL;
//! and the mail transports against a real SMTP server.

mod helpers;
mod mail_server;

mod audit;
mod auth;
mod clearance_rule;
mod csaf;
mod errors;
mod evidence;
mod feed;
mod idempotency;
mod lookup;
mod lookup_follows;
mod lookup_page;
mod mail;
mod models_csv;
mod operations;
mod personnel;
mod registry;
mod subscriptions;
mod transport;
mod workflow;
