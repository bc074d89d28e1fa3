//! Clearance: a device advisory service.

pub mod api; // HTTP handlers, one file per resource, with their OpenAPI docs
pub mod app; // builds and runs the actix application
pub mod artifacts; // the content-addressed store of evidence artifacts
pub mod audit_checkpoint; // the audit chain's head, exported outside the database
pub mod auth; // JWT keys, the Principal extractor, roles
pub mod clock; // the service's idea of now, settable in tests
pub mod config; // settings from file and environment, validated at start
pub mod db; // pool, connection enum, schema, queries per aggregate
pub mod demo; // the demo data set
pub mod domain; // pure rules and parsed types, no I/O
pub mod error; // the one API error type, rendered as problem+json
pub mod export; // CSAF 2.0 and its provider directory, the Atom feed, the models CSV
pub mod limits; // rate limits, the client behind a proxy, body deadlines
pub mod links; // signed, expiring, single-purpose tokens for links in mail
pub mod lookup; // the in-memory lookup index and its refresh
pub mod mail; // mail: templates, messages, transports (SMTP or .eml files) and the outbox worker
pub mod metrics; // request counts and latencies, with labels from fixed sets
pub mod openapi; // the generated OpenAPI document
pub mod pages; // the small HTML pages that links in mail open
pub mod schedule; // timed work: decisions that become effective
pub mod secrets; // secrets generated into the data directory
pub mod telemetry; // logging setup
pub mod workflow; // the use cases: each one transaction (change + audit + outbox)
