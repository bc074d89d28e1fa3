//! The Atom feed (RFC 4287) of public TLP:CLEAR advisories, built with the
//! `atom_syndication` crate so escaping and the element order are never
//! hand-written.

use atom_syndication::{Category, Entry, Feed, FixedDateTime, Link, Person, Text};
use chrono::{DateTime, Utc};

use crate::db::advisories::FeedItem;
use crate::domain::wording;
use crate::export::csaf;

/// How many entries the feed carries: feed readers poll and remember, so
/// the most recent changes are enough.
pub const FEED_ENTRIES: i64 = 100;

/// The feed's XML for `items` (newest first), its links rooted at `base`
/// (the public URL without a trailing slash). The feed's `updated` is the
/// newest entry's, or the Unix epoch for an empty feed, so that the same
/// data always renders the same bytes (and the same `ETag`).
pub fn render(items: &[FeedItem], base: &str) -> String {
    let updated = items
        .iter()
        .map(|item| item.updated)
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let feed = Feed {
        id: format!("{base}/feed.atom"),
        title: Text::plain("Clearance advisories"),
        subtitle: Some(Text::plain(
            "Published TLP:CLEAR device advisories, newest first",
        )),
        updated: fixed(updated),
        authors: vec![Person {
            name: "Clearance".into(),
            uri: Some(base.to_owned()),
            ..Person::default()
        }],
        links: vec![link(
            &format!("{base}/feed.atom"),
            "self",
            "application/atom+xml",
        )],
        entries: items.iter().map(|item| entry(item, base)).collect(),
        ..Feed::default()
    };
    feed.to_string()
}

/// One advisory. The id is a URN of the advisory's id, so it stays the same
/// through amendments, withdrawal and a change of the public URL. Withdrawn
/// and superseded advisories stay in the feed, saying so in title and
/// summary, so that a follower learns that a decision no longer applies.
fn entry(item: &FeedItem, base: &str) -> Entry {
    let advisory = format!("{base}/api/v1/advisories/{}", item.id);
    let page = format!("{base}/advisories/{}", item.reference);
    let (title_note, summary_note) = match wording::no_longer_applies(item.state) {
        Some((note, sentence)) => (format!(" ({note})"), format!("{sentence} ")),
        None => Default::default(),
    };
    Entry {
        id: format!("urn:uuid:{}", item.id),
        title: Text::plain(format!("[{}] {}{title_note}", item.reference, item.title)),
        updated: fixed(item.updated),
        published: Some(fixed(item.published)),
        summary: Some(Text::plain(format!("{summary_note}{}", item.summary))),
        links: vec![
            link(&page, "alternate", "text/html"),
            link(&advisory, "related", "application/json"),
            // The feed is public, and so is every document it lists.
            link(
                &csaf::clear_url(base, &item.reference, item.published),
                "alternate",
                "application/json",
            ),
        ],
        categories: item
            .decisions
            .iter()
            .map(|(decision, target)| Category {
                term: decision.decision.as_str().to_owned(),
                scheme: Some(format!("{base}/decisions")),
                label: Some(format!("{target}: {}", wording::decision_words(decision))),
            })
            .collect(),
        ..Entry::default()
    }
}

fn link(href: &str, rel: &str, mime_type: &str) -> Link {
    Link {
        href: href.to_owned(),
        rel: rel.to_owned(),
        mime_type: Some(mime_type.to_owned()),
        ..Link::default()
    }
}

fn fixed(at: DateTime<Utc>) -> FixedDateTime {
    at.fixed_offset()
}
