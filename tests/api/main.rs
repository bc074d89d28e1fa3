//! Integration tests through the HTTP API, each on SQLite and PostgreSQL.

mod helpers;

mod audit;
mod auth;
mod clearance_rule;
mod errors;
mod evidence;
mod idempotency;
mod lookup;
mod operations;
mod personnel;
mod registry;
mod subscriptions;
mod workflow;
