//! Clearance as a CSAF 2.0 provider (OASIS CSAF 2.0 §7.1): the provider
//! metadata, and one distribution directory for TLP:CLEAR documents with
//! `index.txt` and `changes.csv`. Only TLP:CLEAR advisories that were
//! published are served; a withdrawn or superseded one stays, updated, as
//! aggregators expect documents never to vanish.

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::csaf::{self, PublisherEntry, Release, Source};
use crate::db::advisories::{self, AdvisoryFilter};
use crate::db::{DbConnection, DbError};
use crate::domain::advisory::Tlp;

/// `/.well-known/csaf/provider-metadata.json`.
#[derive(Debug, Serialize)]
pub struct ProviderMetadata {
    canonical_url: String,
    distributions: Vec<Distribution>,
    last_updated: DateTime<Utc>,
    #[serde(rename = "list_on_CSAF_aggregators")]
    list_on_csaf_aggregators: bool,
    metadata_version: &'static str,
    #[serde(rename = "mirror_on_CSAF_aggregators")]
    mirror_on_csaf_aggregators: bool,
    publisher: PublisherEntry,
    role: &'static str,
}

#[derive(Debug, Serialize)]
struct Distribution {
    directory_url: String,
}

impl ProviderMetadata {
    /// The metadata for a provider at `base` (the public URL without a
    /// trailing slash). Aggregators are not asked to list or mirror us: the
    /// documents concern one organisation's personnel. `last_updated` is
    /// the newest release, so the file only changes when a document does.
    pub fn new(base: &str, publisher: &PublisherEntry, releases: &[(Uuid, Release)]) -> Self {
        Self {
            canonical_url: format!("{base}/.well-known/csaf/provider-metadata.json"),
            distributions: vec![Distribution {
                directory_url: format!("{base}{CLEAR_DIRECTORY}"),
            }],
            last_updated: releases
                .iter()
                .map(|(_, r)| r.current)
                .max()
                .unwrap_or(DateTime::UNIX_EPOCH),
            list_on_csaf_aggregators: false,
            metadata_version: "2.0",
            mirror_on_csaf_aggregators: false,
            publisher: publisher.clone(),
            role: "csaf_provider",
        }
    }
}

/// Every published TLP:CLEAR advisory's release, newest first.
pub fn releases(conn: &mut DbConnection) -> Result<Vec<(Uuid, Release)>, DbError> {
    const PAGE: i64 = 500;
    let filter = AdvisoryFilter {
        public_only: true,
        ..AdvisoryFilter::default()
    };
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let page = advisories::list(conn, &filter, after, PAGE)?;
        after = page.last().map(|a| a.id);
        for advisory in &page {
            let clear = advisory
                .current
                .as_ref()
                .is_some_and(|c| c.content.tlp == Tlp::Clear);
            if !clear {
                continue;
            }
            let superseded_by = match advisory.superseded_by {
                Some(by) => advisories::get(conn, by)?.reference,
                None => None,
            };
            let revisions = advisories::published_revisions(conn, advisory.id)?;
            if let Some(release) = Release::of(advisory, &revisions, superseded_by.as_deref()) {
                found.push((advisory.id, release));
            }
        }
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    found.sort_by_key(|(_, release)| std::cmp::Reverse(release.current));
    Ok(found)
}

/// `index.txt`: one document path per line, relative to the directory.
pub fn index(releases: &[(Uuid, Release)]) -> String {
    releases
        .iter()
        .map(|(_, r)| format!("{}\n", r.path()))
        .collect()
}

/// `changes.csv`: `"path","current_release_date"`, newest first.
pub fn changes(releases: &[(Uuid, Release)]) -> String {
    releases
        .iter()
        .map(|(_, r)| {
            format!(
                "\"{}\",\"{}\"\n",
                r.path(),
                r.current
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            )
        })
        .collect()
}

/// A directory of the distribution as a page of links, one per entry
/// (CSAF 2.0 §7.1.14: server-side directory listings), with the parent
/// first as a web server's listing has it.
#[derive(Debug, askama::Template)]
#[template(path = "csaf/listing.html")]
pub struct Listing {
    /// The directory's path from the site's root (`/.well-known/csaf/clear/2026/`).
    pub path: String,
    /// Names relative to the directory; a folder's ends with `/`.
    pub entries: Vec<String>,
}

/// Where the TLP:CLEAR documents live, from the site's root.
pub const CLEAR_DIRECTORY: &str = "/.well-known/csaf/clear/";

impl Listing {
    /// The TLP:CLEAR directory: its index files and a folder per year a
    /// document was first published in, newest first.
    pub fn clear(releases: &[(Uuid, Release)]) -> Self {
        let mut years: Vec<String> = releases
            .iter()
            .map(|(_, r)| format!("{}/", r.initial.year()))
            .collect();
        years.sort_unstable_by(|a, b| b.cmp(a));
        years.dedup();
        let mut entries = vec!["changes.csv".to_owned(), "index.txt".to_owned()];
        entries.extend(years);
        Self {
            path: CLEAR_DIRECTORY.to_owned(),
            entries,
        }
    }

    /// One year's folder: each document with its `.sha256` and `.sha512`;
    /// `None` when no document was first published in `year`.
    pub fn year(releases: &[(Uuid, Release)], year: &str) -> Option<Self> {
        let mut files: Vec<String> = releases
            .iter()
            .filter_map(|(_, r)| Some(r.path().strip_prefix(year)?.strip_prefix('/')?.to_owned()))
            .collect();
        if files.is_empty() {
            return None;
        }
        files.sort_unstable();
        let entries = files
            .into_iter()
            .flat_map(|file| {
                let hashes = [format!("{file}.sha256"), format!("{file}.sha512")];
                std::iter::once(file).chain(hashes)
            })
            .collect();
        Some(Self {
            path: format!("{CLEAR_DIRECTORY}{year}/"),
            entries,
        })
    }
}

/// The source of the document at `{year}/{file}` in the TLP:CLEAR
/// directory; `None` unless a published TLP:CLEAR advisory lives there.
pub fn find(conn: &mut DbConnection, year: &str, file: &str) -> Result<Option<Source>, DbError> {
    let Some(stem) = file.strip_suffix(".json") else {
        return Ok(None);
    };
    let reference = stem.to_uppercase();
    if csaf::file_name(&reference) != file {
        return Ok(None);
    }
    let Some(source) = csaf::load_published(conn, &reference)? else {
        return Ok(None);
    };
    let release = Release::of(
        &source.advisory,
        &source.revisions,
        source.superseded_by.as_deref(),
    );
    let here = release.is_some_and(|r| r.tlp == Tlp::Clear && r.path() == format!("{year}/{file}"));
    Ok(here.then_some(source))
}
