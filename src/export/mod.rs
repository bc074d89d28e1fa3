//! Exports in others' formats: CSAF 2.0 documents, and the provider
//! directory that lets aggregators find them.

pub mod csaf;
pub mod provider;
