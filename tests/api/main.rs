//! Integration tests through the HTTP API, each on SQLite and PostgreSQL.

mod helpers;

mod auth;
mod errors;
mod evidence;
mod lookup;
mod operations;
mod registry;
