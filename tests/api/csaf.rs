//! CSAF 2.0: every exported document validates against the official schema
//! (a copy in `tests/fixtures/csaf`, with the CVSS schemas its `$ref`s name,
//! resolved locally: no network), plus the CSAF rules a schema cannot say;
//! and an aggregator's walk of the provider directory.

use std::collections::HashSet;
use std::sync::LazyLock;

use clearance::auth::Role;
use jsonschema::{Retrieve, Uri, Validator};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};

use crate::backend_tests;
use crate::helpers::{TestApp, body, problem};
use crate::workflow::{
    act, amend, draft, every_phone_of, prohibition, publish, redmi_with_evidence,
};

/// Resolves the schemas' `$ref`s by file name to the local copies.
struct LocalSchemas;

impl Retrieve for LocalSchemas {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let address = uri.as_str();
        let address = address.split(['#', '?']).next().unwrap_or(address);
        let name = address.rsplit('/').next().unwrap_or(address);
        Ok(load(name))
    }
}

fn load(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/csaf")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).expect("a JSON schema")
}

fn validator(name: &str) -> Validator {
    jsonschema::options()
        .with_retriever(LocalSchemas)
        .should_validate_formats(true)
        .build(&load(name))
        .expect("the schema compiles")
}

pub static CSAF: LazyLock<Validator> = LazyLock::new(|| validator("csaf_json_schema.json"));
pub static PROVIDER: LazyLock<Validator> = LazyLock::new(|| validator("provider_json_schema.json"));

fn assert_valid(validator: &Validator, instance: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{instance:#}");
}

fn product_ids(branches: &Value, into: &mut Vec<String>) {
    for branch in branches.as_array().into_iter().flatten() {
        if let Some(id) = branch["product"]["product_id"].as_str() {
            into.push(id.to_owned());
        }
        product_ids(&branch["branches"], into);
    }
}

fn date(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value.as_str().unwrap().parse().unwrap()
}

/// The schema, and the CSAF 2.0 mandatory tests (§6.1) that apply to what
/// we emit and a schema cannot express.
fn check_csaf(doc: &Value) {
    assert_valid(&CSAF, doc);
    // 6.1.8 unique product ids; 6.1.1 every referenced id is defined.
    let mut defined = Vec::new();
    product_ids(&doc["product_tree"]["branches"], &mut defined);
    let unique: HashSet<&String> = defined.iter().collect();
    assert_eq!(unique.len(), defined.len(), "duplicate product ids");
    for vulnerability in doc["vulnerabilities"].as_array().unwrap() {
        let mut seen = HashSet::new();
        for (group, ids) in vulnerability["product_status"].as_object().unwrap() {
            for id in ids.as_array().unwrap() {
                let id = id.as_str().unwrap().to_owned();
                assert!(unique.contains(&id), "{group} names undefined {id}");
                // 6.1.6 contradicting product status.
                assert!(seen.insert(id.clone()), "{id} in two status groups");
            }
        }
        for remediation in vulnerability["remediations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for id in remediation["product_ids"].as_array().unwrap() {
                let id = id.as_str().unwrap().to_owned();
                assert!(unique.contains(&id), "a remediation names undefined {id}");
            }
        }
    }
    // 6.1.14 sorted, 6.1.21 no gaps, 6.1.22 no duplicates, 6.1.16 the
    // latest number is the version; dates consistent with both releases.
    let tracking = &doc["document"]["tracking"];
    let history = tracking["revision_history"].as_array().unwrap();
    for (i, revision) in history.iter().enumerate() {
        assert_eq!(revision["number"], (i + 1).to_string(), "revision numbers");
        if i > 0 {
            assert!(date(&revision["date"]) >= date(&history[i - 1]["date"]));
        }
    }
    assert_eq!(history.last().unwrap()["number"], tracking["version"]);
    let initial = date(&tracking["initial_release_date"]);
    let current = date(&tracking["current_release_date"]);
    assert!(initial <= current, "initial after current release");
    assert_eq!(initial, date(&history[0]["date"]));
    assert_eq!(current, date(&history.last().unwrap()["date"]));
    // 6.1.20 a final document has a released version.
    assert_eq!(tracking["status"], "final");
    assert_ne!(tracking["version"], "0");
}

async fn csaf(app: &TestApp, id: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/advisories/{id}/csaf"), Some(Role::Reader))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc = body(response).await;
    check_csaf(&doc);
    doc
}

fn notes_titled<'a>(doc: &'a Value, title: &str) -> Vec<&'a Value> {
    doc["document"]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["title"] == title)
        .collect()
}

async fn the_prohibition_exports_as_valid_csaf(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let id = draft(&app, &prohibition(&story)).await;
    let path = format!("/api/v1/advisories/{id}/csaf");
    // Never published: nobody gets a document, not even its analyst.
    problem(app.get(&path, Some(Role::Reader)).await, 404).await;
    problem(app.get(&path, Some(Role::Analyst)).await, 404).await;
    let published = publish(&app, &id).await;
    problem(app.get(&path, None).await, 401).await;
    problem(
        app.get(
            &format!("/api/v1/advisories/{}/csaf", uuid::Uuid::now_v7()),
            Some(Role::Reader),
        )
        .await,
        404,
    )
    .await;

    let doc = csaf(&app, &id).await;
    // The validator is not vacuous: it refuses what the schema refuses.
    let mut broken = doc.clone();
    broken["document"]["tracking"]["revision_history"][0]["date"] = json!("yesterday");
    assert!(!CSAF.is_valid(&broken), "a bad date-time must be refused");
    broken["document"]["tracking"]
        .as_object_mut()
        .unwrap()
        .remove("id");
    assert!(!CSAF.is_valid(&broken));
    let document = &doc["document"];
    let reference = published["reference"].as_str().unwrap();
    assert_eq!(document["category"], "csaf_security_advisory");
    assert_eq!(document["csaf_version"], "2.0");
    assert_eq!(document["title"], "Do not use Xiaomi Redmi 1S phones");
    assert_eq!(
        document["publisher"],
        json!({"category": "coordinator", "name": "Clearance", "namespace": "http://127.0.0.1:8080/"})
    );
    assert_eq!(document["tracking"]["id"], reference);
    assert_eq!(document["tracking"]["version"], "1");
    assert_eq!(
        document["tracking"]["initial_release_date"],
        document["tracking"]["current_release_date"]
    );
    assert_eq!(document["distribution"]["tlp"]["label"], "WHITE");
    assert_eq!(
        notes_titled(&doc, "Summary")[0]["text"],
        published["summary"]
    );
    let references = document["references"].as_array().unwrap();
    let year = &reference[4..8];
    assert_eq!(references[0]["category"], "self");
    assert_eq!(
        references[0]["url"],
        format!(
            "http://127.0.0.1:8080/.well-known/csaf/clear/{year}/{}.json",
            reference.to_lowercase()
        )
    );
    assert!(references.iter().any(|r| r["category"] == "external"
        && r["url"] == "https://www.f-secure.com/weblog/archives/00002731.html"));

    let vendor = &doc["product_tree"]["branches"][0];
    assert_eq!(vendor["category"], "vendor");
    assert_eq!(vendor["name"], "Xiaomi");
    let model = &vendor["branches"][0];
    assert_eq!(model["category"], "product_name");
    assert_eq!(model["name"], "Redmi 1S");
    let product_id = &model["product"]["product_id"];
    let vulnerability = &doc["vulnerabilities"][0];
    assert_eq!(
        vulnerability["title"],
        "Redmi 1S sends personal data to servers in Beijing"
    );
    assert_eq!(
        vulnerability["product_status"]["known_affected"][0],
        *product_id
    );
    assert_eq!(
        vulnerability["remediations"][0]["category"],
        "no_fix_planned"
    );
    let findings: Vec<&Value> = vulnerability["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["category"] == "details")
        .collect();
    assert_eq!(findings.len(), 5, "one note per finding");
    assert!(findings[2]["text"].as_str().unwrap().contains(
        "The imei is sent to api.account.xiaomi.com (Beijing) (CN), unencrypted, without consent"
    ));
}

async fn an_amended_advisory_has_two_revisions(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let id = draft(&app, &prohibition(&story)).await;
    publish(&app, &id).await;
    let reworded =
        json!({"body": "Update: the vendor made the service opt-in. The prohibition stands."});
    amend(&app, &id, &reworded).await;
    // The amendment in progress does not show.
    assert_eq!(
        csaf(&app, &id).await["document"]["tracking"]["version"],
        "1"
    );
    publish(&app, &id).await;
    let doc = csaf(&app, &id).await;
    let tracking = &doc["document"]["tracking"];
    assert_eq!(tracking["version"], "2");
    assert_eq!(tracking["revision_history"].as_array().unwrap().len(), 2);
    assert!(date(&tracking["initial_release_date"]) < date(&tracking["current_release_date"]));
    assert_eq!(
        notes_titled(&doc, "Advisory")[0]["text"],
        "Update: the vendor made the service opt-in. The prohibition stands."
    );
}

async fn a_withdrawn_advisory_says_so(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let id = draft(&app, &prohibition(&story)).await;
    publish(&app, &id).await;
    let reason = "The lab retracted its findings.";
    let withdrawn = act(
        &app,
        &id,
        "withdraw",
        Role::Approver,
        &json!({"reason": reason}),
    )
    .await;
    assert_eq!(withdrawn.status(), 200);
    let doc = csaf(&app, &id).await;
    let tracking = &doc["document"]["tracking"];
    assert_eq!(tracking["status"], "final");
    assert_eq!(tracking["version"], "2");
    let last = &tracking["revision_history"][1];
    assert_eq!(last["summary"], format!("Withdrawn: {reason}"));
    let note = notes_titled(&doc, "Withdrawn");
    assert_eq!(note.len(), 1);
    assert!(note[0]["text"].as_str().unwrap().contains(reason));
    // Still served to aggregators, updated.
    let index = app
        .get("/.well-known/csaf/clear/index.txt", None)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(index.lines().count(), 1);
}

async fn tlp_labels_map_and_restricted_advisories_stay_private(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let mut red = prohibition(&story);
    red["tlp"] = json!("red");
    let red_id = draft(&app, &red).await;
    let red_reference = publish(&app, &red_id).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let doc = csaf(&app, &red_id).await;
    assert_eq!(doc["document"]["distribution"]["tlp"]["label"], "RED");
    assert_eq!(
        doc["document"]["references"][0]["url"],
        format!("http://127.0.0.1:8080/api/v1/advisories/{red_id}/csaf")
    );

    let mut strict = prohibition(&story);
    strict["tlp"] = json!("amber_strict");
    let strict_id = draft(&app, &strict).await;
    publish(&app, &strict_id).await;
    let doc = csaf(&app, &strict_id).await;
    assert_eq!(doc["document"]["distribution"]["tlp"]["label"], "AMBER");
    assert_eq!(notes_titled(&doc, "TLP:AMBER+STRICT").len(), 1);

    for listing in ["index.txt", "changes.csv"] {
        let text = app
            .get(&format!("/.well-known/csaf/clear/{listing}"), None)
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(text, "", "{listing} lists only TLP:CLEAR");
    }
    let year = &red_reference[4..8];
    let html = fetch(&app, &format!("{}/.well-known/csaf/clear/", app.address))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(links(&html), ["../", "changes.csv", "index.txt"], "{html}");
    problem(
        app.get(&format!("/.well-known/csaf/clear/{year}/"), None)
            .await,
        404,
    )
    .await;
    let file = format!("{}.json", red_reference.to_lowercase());
    for suffix in ["", ".sha256", ".sha512"] {
        let response = app
            .get(
                &format!("/.well-known/csaf/clear/{year}/{file}{suffix}"),
                None,
            )
            .await;
        problem(response, 404).await;
    }
}

async fn firmware_ranges_and_conditions_become_version_ranges(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let xiaomi = body(app.get("/api/v1/manufacturers", Some(Role::Reader)).await).await["items"][0]
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .post(
            "/api/v1/models",
            Some(Role::Analyst),
            &json!({"manufacturer_id": xiaomi, "name": "Mi 4", "category": "phone",
                    "model_numbers": ["LTE", "3W"], "tacs": []}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let mi4 = body(response).await["id"].as_str().unwrap().to_owned();
    let mut advisory = prohibition(&story);
    advisory["decisions"] = json!([
        {"model_id": story.model_id, "decision": "prohibited", "firmware": "<6.3.1"},
        {"model_id": story.model_id, "decision": "approved_with_conditions", "firmware": ">=6.3.1,<7",
         "conditions": "Keep the cloud messaging service off."},
        {"model_id": story.model_id, "decision": "approved", "firmware": ">=7"},
        {"model_id": mi4, "decision": "approved"},
    ]);
    let id = draft(&app, &advisory).await;
    publish(&app, &id).await;
    let doc = csaf(&app, &id).await;

    let models = doc["product_tree"]["branches"][0]["branches"]
        .as_array()
        .unwrap();
    assert_eq!(models.len(), 2, "both models under one vendor");
    let ranges: Vec<&Value> = models[0]["branches"].as_array().unwrap().iter().collect();
    let names: Vec<&str> = ranges.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "vers:generic/<6.3.1",
            "vers:generic/>=6.3.1|<7",
            "vers:generic/>=7"
        ]
    );
    assert!(
        ranges
            .iter()
            .all(|r| r["category"] == "product_version_range")
    );
    let id_of = |branch: &Value| branch["product"]["product_id"].clone();
    let mi4_product = &models[1]["product"];
    assert_eq!(
        mi4_product["product_identification_helper"]["skus"],
        json!(["LTE", "3W"])
    );

    let vulnerability = &doc["vulnerabilities"][0];
    let status = &vulnerability["product_status"];
    assert_eq!(
        status["known_affected"],
        json!([id_of(ranges[0]), id_of(ranges[1])])
    );
    assert_eq!(status["fixed"], json!([id_of(ranges[2])]));
    assert_eq!(
        status["known_not_affected"],
        json!([mi4_product["product_id"]])
    );
    let remediations = vulnerability["remediations"].as_array().unwrap();
    let categories: Vec<&str> = remediations
        .iter()
        .map(|r| r["category"].as_str().unwrap())
        .collect();
    assert_eq!(categories, ["no_fix_planned", "workaround", "vendor_fix"]);
    assert!(
        remediations[1]["details"]
            .as_str()
            .unwrap()
            .contains("Keep the cloud messaging service off.")
    );
}

async fn fetch(app: &TestApp, url: &str) -> reqwest::Response {
    let response = app
        .client
        .request(Method::GET, url)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200, "{url}");
    response
}

/// The targets of a listing's links, in order.
fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"'))
        .map(|(target, _)| target.to_owned())
        .collect()
}

async fn an_aggregator_walks_the_provider(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let first = draft(&app, &prohibition(&story)).await;
    publish(&app, &first).await;
    let mut second = prohibition(&story);
    second["title"] = json!("Redmi 1S: the prohibition, restated");
    let second = draft(&app, &second).await;
    publish(&app, &second).await;
    let mut green = prohibition(&story);
    green["tlp"] = json!("green");
    let green = draft(&app, &green).await;
    publish(&app, &green).await;
    // A draft is not served either.
    draft(&app, &prohibition(&story)).await;

    let metadata_url = format!("{}/.well-known/csaf/provider-metadata.json", app.address);
    let metadata: Value = fetch(&app, &metadata_url).await.json().await.unwrap();
    assert_valid(&PROVIDER, &metadata);
    assert_eq!(metadata["role"], "csaf_provider");
    assert_eq!(metadata["metadata_version"], "2.0");
    assert_eq!(
        metadata["canonical_url"],
        "http://127.0.0.1:8080/.well-known/csaf/provider-metadata.json"
    );
    let directory = metadata["distributions"][0]["directory_url"]
        .as_str()
        .unwrap();
    assert_eq!(directory, "http://127.0.0.1:8080/.well-known/csaf/clear/");
    // The test server is not at the public URL: follow the path.
    let directory = directory.replace("http://127.0.0.1:8080", &app.address);

    let index = fetch(&app, &format!("{directory}index.txt"))
        .await
        .text()
        .await
        .unwrap();
    let paths: Vec<&str> = index.lines().collect();
    assert_eq!(paths.len(), 2, "the two TLP:CLEAR advisories: {index}");
    let changes = fetch(&app, &format!("{directory}changes.csv"))
        .await
        .text()
        .await
        .unwrap();
    let mut dates = Vec::new();
    for (line, path) in changes.lines().zip(&paths) {
        let (listed, when) = line.split_once(',').unwrap();
        assert_eq!(listed, format!("\"{path}\""));
        dates.push(date(&json!(when.trim_matches('"'))));
    }
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert_eq!(
        date(&metadata["last_updated"]),
        dates[0],
        "updated with the newest document"
    );

    // The directory listings (requirement 14) lead to the same files.
    let listing = fetch(&app, &directory).await;
    assert!(
        listing.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let entries = links(&listing.text().await.unwrap());
    let year = &paths[0][..5];
    assert_eq!(entries, ["../", "changes.csv", "index.txt", year]);
    let in_year = links(
        &fetch(&app, &format!("{directory}{year}"))
            .await
            .text()
            .await
            .unwrap(),
    );
    let mut expected = vec!["../".to_owned()];
    let mut files: Vec<&str> = paths.iter().map(|p| &p[5..]).collect();
    files.sort_unstable();
    for file in files {
        expected.extend([
            file.to_owned(),
            format!("{file}.sha256"),
            format!("{file}.sha512"),
        ]);
    }
    assert_eq!(in_year, expected);

    for path in paths {
        let url = format!("{directory}{path}");
        let bytes = fetch(&app, &url).await.bytes().await.unwrap();
        let file = path.rsplit('/').next().unwrap();
        let sha256 = fetch(&app, &format!("{url}.sha256"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(
            sha256,
            format!("{}  {file}\n", hex::encode(Sha256::digest(&bytes)))
        );
        let sha512 = fetch(&app, &format!("{url}.sha512"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(
            sha512,
            format!("{}  {file}\n", hex::encode(Sha512::digest(&bytes)))
        );
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        check_csaf(&doc);
        let tracking = &doc["document"]["tracking"];
        let reference = tracking["id"].as_str().unwrap();
        assert_eq!(file, format!("{}.json", reference.to_lowercase()));
        assert!(path.starts_with(&tracking["initial_release_date"].as_str().unwrap()[..4]));
        assert_eq!(doc["document"]["distribution"]["tlp"]["label"], "WHITE");
        let listed = changes
            .lines()
            .find(|l| l.starts_with(&format!("\"{path}\"")))
            .unwrap();
        assert!(listed.ends_with(&format!(
            ",\"{}\"",
            tracking["current_release_date"].as_str().unwrap()
        )));
        assert_eq!(
            doc["document"]["references"][0]["url"],
            url.replace(&app.address, "http://127.0.0.1:8080")
        );
        // Anywhere else in the directory, the same document is not found.
        let elsewhere = url.replace(&path[..4], "1999");
        problem(
            app.get(&elsewhere.replace(&app.address, ""), None).await,
            404,
        )
        .await;
    }
}

async fn a_maker_wide_decision_is_a_product_family_of_the_vendor(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let xiaomi = body(app.get("/api/v1/manufacturers", Some(Role::Reader)).await).await["items"][0]
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut circular = every_phone_of(&xiaomi, &story);
    circular["decisions"]
        .as_array_mut()
        .unwrap()
        .push(json!({"model_id": story.model_id, "decision": "approved", "firmware": ">=6.3.1"}));
    let id = draft(&app, &circular).await;
    publish(&app, &id).await;
    let doc = csaf(&app, &id).await;
    let vendor = &doc["product_tree"]["branches"][0];
    assert_eq!(vendor["category"], "vendor");
    assert_eq!(vendor["name"], "Xiaomi");
    let family = &vendor["branches"][0];
    assert_eq!(family["category"], "product_family");
    assert_eq!(family["name"], "phones");
    assert_eq!(family["product"]["name"], "All Xiaomi phones");
    let model = &vendor["branches"][1];
    assert_eq!(model["category"], "product_name");
    assert_eq!(model["name"], "Redmi 1S");
    let status = &doc["vulnerabilities"][0]["product_status"];
    assert_eq!(
        status["known_affected"],
        json!([family["product"]["product_id"]])
    );
}

backend_tests!(
    a_maker_wide_decision_is_a_product_family_of_the_vendor,
    the_prohibition_exports_as_valid_csaf,
    an_amended_advisory_has_two_revisions,
    a_withdrawn_advisory_says_so,
    tlp_labels_map_and_restricted_advisories_stay_private,
    firmware_ranges_and_conditions_become_version_ranges,
    an_aggregator_walks_the_provider,
);
