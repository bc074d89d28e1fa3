//! What Clearance publishes for other programs, each format in its own
//! module: CSAF 2.0 documents and the provider directory aggregators read,
//! the Atom feed, and the models as CSV.

pub mod atom;
pub mod csaf;
pub mod models_csv;
pub mod provider;
