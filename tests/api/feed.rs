//! The public Atom feed, parsed back with `atom_syndication`: which
//! advisories it carries, in which order, with which ids and links, how an
//! amendment moves an entry, and conditional GETs.

use atom_syndication::Feed;
use clearance::auth::Role;
use reqwest::Method;
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{TestApp, body};
use crate::workflow::{act, draft, prohibition, publish, redmi_with_evidence};

async fn fetch(app: &TestApp) -> (Feed, reqwest::header::HeaderMap) {
    let response = app.get("/feed.atom", None).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/atom+xml");
    let bytes = response.bytes().await.unwrap();
    let feed = Feed::read_from(&bytes[..]).expect("a valid Atom feed");
    (feed, headers)
}

async fn the_feed_carries_published_clear_advisories_newest_first(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let (empty, _) = fetch(&app).await;
    assert!(empty.entries().is_empty());

    let first = publish(&app, &draft(&app, &prohibition(&story)).await).await;
    let mut amber = prohibition(&story);
    amber["title"] = json!("Amber: for the office only");
    amber["tlp"] = json!("amber");
    publish(&app, &draft(&app, &amber).await).await;
    let mut unpublished = prohibition(&story);
    unpublished["title"] = json!("Still a draft");
    draft(&app, &unpublished).await;
    let mut later = prohibition(&story);
    later["title"] = json!("Second clear advisory");
    let second = publish(&app, &draft(&app, &later).await).await;

    let (feed, _) = fetch(&app).await;
    let titles: Vec<&str> = feed.entries().iter().map(|e| e.title().as_str()).collect();
    assert_eq!(
        titles,
        vec![
            format!(
                "[{}] Second clear advisory",
                second["reference"].as_str().unwrap()
            ),
            format!(
                "[{}] Do not use Xiaomi Redmi 1S phones",
                first["reference"].as_str().unwrap()
            ),
        ],
        "the amber advisory and the draft are absent"
    );
    let entry = &feed.entries()[1];
    let id = first["id"].as_str().unwrap();
    assert_eq!(entry.id(), format!("urn:uuid:{id}"));
    assert_eq!(
        entry.summary().unwrap().as_str(),
        "Officers and their families are to refrain from using Redmi 1S phones."
    );
    let link = |rel: &str| {
        entry
            .links()
            .iter()
            .find(|l| l.rel() == rel)
            .unwrap_or_else(|| panic!("a {rel} link"))
            .clone()
    };
    assert!(
        link("related")
            .href()
            .ends_with(&format!("/api/v1/advisories/{id}"))
    );
    let alternate = |mime: &str| {
        entry
            .links()
            .iter()
            .find(|l| l.rel() == "alternate" && l.mime_type() == Some(mime))
            .unwrap_or_else(|| panic!("an alternate {mime} link"))
            .clone()
    };
    let reference = first["reference"].as_str().unwrap();
    assert!(
        alternate("text/html")
            .href()
            .ends_with(&format!("/advisories/{reference}"))
    );
    // The CSAF document, for anyone who reads the feed: no token needed.
    // (Links name the public URL; the test's server listens elsewhere.)
    let csaf_link = reqwest::Url::parse(alternate("application/json").href()).unwrap();
    assert!(
        csaf_link.path().starts_with("/.well-known/csaf/clear/"),
        "{csaf_link}"
    );
    let csaf = app.get(csaf_link.path(), None).await;
    assert_eq!(csaf.status(), 200);
    assert_eq!(body(csaf).await["document"]["tracking"]["id"], reference);
    assert_eq!(entry.published(), Some(entry.updated()));
    let categories: Vec<(&str, Option<&str>)> = entry
        .categories()
        .iter()
        .map(|c| (c.term(), c.label()))
        .collect();
    assert_eq!(
        categories,
        [("prohibited", Some("Xiaomi Redmi 1S: Not allowed"))]
    );
    assert_eq!(feed.updated(), feed.entries()[0].updated());

    // A withdrawal stays in the feed, marked, as the newest change.
    let withdrawn = act(
        &app,
        id,
        "withdraw",
        Role::Approver,
        &json!({"reason": "Retested"}),
    )
    .await;
    assert_eq!(withdrawn.status(), 200);
    let (feed, _) = fetch(&app).await;
    assert_eq!(feed.entries().len(), 2);
    let top = &feed.entries()[0];
    assert_eq!(top.id(), format!("urn:uuid:{id}"));
    assert!(
        top.title().as_str().ends_with("(withdrawn)"),
        "{}",
        top.title().as_str()
    );
    assert!(top.summary().unwrap().as_str().starts_with("Withdrawn"));
}

async fn an_amendment_moves_its_entry_up_and_changes_the_etag(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let first = publish(&app, &draft(&app, &prohibition(&story)).await).await;
    let mut later = prohibition(&story);
    later["title"] = json!("Second clear advisory");
    publish(&app, &draft(&app, &later).await).await;
    let (before, headers) = fetch(&app).await;
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let last_modified = headers["last-modified"].to_str().unwrap().to_owned();
    assert_eq!(
        before.entries()[1].id(),
        format!("urn:uuid:{}", first["id"].as_str().unwrap())
    );

    for (name, value) in [
        ("If-None-Match", &etag),
        ("If-Modified-Since", &last_modified),
    ] {
        let response = app
            .request(Method::GET, "/feed.atom", None)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 304, "{name}");
        assert_eq!(response.headers()["etag"].to_str().unwrap(), etag);
        assert!(response.bytes().await.unwrap().is_empty());
    }

    let id = first["id"].as_str().unwrap();
    let amended = act(&app, id, "amend", Role::Analyst, &json!({})).await;
    assert_eq!(amended.status(), 200, "{}", body(amended).await);
    for (action, role) in [
        ("submit", Role::Analyst),
        ("approve", Role::Approver),
        ("publish", Role::Approver),
    ] {
        let response = act(&app, id, action, role, &json!({})).await;
        assert_eq!(response.status(), 200, "{action}");
    }

    let (after, headers) = fetch(&app).await;
    let moved = &after.entries()[0];
    assert_eq!(moved.id(), format!("urn:uuid:{id}"));
    assert!(moved.updated() > before.entries()[1].updated());
    assert!(moved.updated() > before.entries()[0].updated());
    assert_eq!(after.updated(), moved.updated());
    assert_ne!(headers["etag"].to_str().unwrap(), etag);
    let stale = app
        .request(Method::GET, "/feed.atom", None)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
}

backend_tests!(
    the_feed_carries_published_clear_advisories_newest_first,
    an_amendment_moves_its_entry_up_and_changes_the_etag,
);
