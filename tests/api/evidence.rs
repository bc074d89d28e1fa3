//! Evidence: filed once, never edited, appended to with responses and
//! artifacts; artifacts come back byte for byte and stay within the limit.

use std::path::{Path, PathBuf};

use clearance::auth::Role;
use reqwest::header::{ALLOW, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};
use reqwest::{Body, Method, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{SpawnOptions, TestApp, body, problem};

crate::backend_tests!(
    the_2014_lab_test_round_trips_exactly,
    evidence_needs_at_least_one_existing_model_and_stores_nothing_otherwise,
    readers_read_evidence_but_only_analysts_file_it,
    invalid_fields_are_422s_naming_the_field,
    evidence_cannot_be_edited_or_deleted,
    unknown_or_malformed_evidence_ids_are_404s,
    responses_are_appended_oldest_first,
    a_correction_supersedes_the_evidence_it_names,
    only_a_correction_may_supersede_and_only_existing_other_evidence,
    evidence_is_filtered_by_model_and_paginated,
    an_artifact_comes_back_byte_for_byte_and_safe_to_serve,
    the_same_artifact_twice_is_stored_once,
    an_artifact_needs_a_plain_filename_and_existing_evidence,
);

/// Starts its own app (with a small artifact limit).
mod artifact_limit {
    use super::*;
    crate::backend_tests!(with SpawnOptions { max_artifact_bytes: Some(SMALL_LIMIT), ..SpawnOptions::default() } => artifacts_over_the_limit_are_413s_and_leave_nothing);
}

const EVIDENCE: &str = "/api/v1/evidence";
const REFERENCE: &str = "https://www.f-secure.com/weblog/archives/00002731.html";

/// The July 2014 lab test of the Redmi 1S, as an analyst would file it.
fn lab_test_2014(model_ids: &[&str]) -> Value {
    let findings: Vec<Value> = ["carrier", "phone_number", "imei", "contacts", "sms"]
        .into_iter()
        .map(|data| {
            json!({
                "data": data,
                "destination": "api.account.xiaomi.com (Beijing)",
                "country": "CN",
                "encrypted": false,
                "consent": "no",
                "note": "while the cloud messaging service was on",
            })
        })
        .collect();
    json!({
        "model_ids": model_ids,
        "title": "Redmi 1S sends the phone number, IMEI, contacts and SMS numbers to Beijing",
        "source": "F-Secure Labs",
        "kind": "lab_test",
        "observed_at": "2014-07-30T09:00:00Z",
        "firmware": "MIUI JHCCNBH45.0",
        "summary": "With a fresh SIM and the cloud messaging service activated, the phone sent\nthe carrier name, the phone number, the IMEI and numbers from the address book\nand text messages to servers in Beijing, unencrypted.",
        "severity": "high",
        "findings": findings,
        "references": [REFERENCE],
    })
}

/// Registers Xiaomi and these models of it; returns the models' ids.
async fn models<const N: usize>(app: &TestApp, names: [&str; N]) -> [String; N] {
    let maker = app.manufacturer("Xiaomi").await;
    let mut ids = Vec::with_capacity(N);
    for name in names {
        ids.push(
            app.model(&maker, name, &[]).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids.try_into().expect("one id per name")
}

/// Files `evidence` as an analyst and returns what was filed.
async fn file(app: &TestApp, evidence: &Value) -> Value {
    let response = app.post(EVIDENCE, Some(Role::Analyst), evidence).await;
    assert_eq!(response.status(), 201, "filing evidence");
    body(response).await
}

async fn read(app: &TestApp, id: &str) -> Value {
    let response = app
        .get(&format!("{EVIDENCE}/{id}"), Some(Role::Reader))
        .await;
    assert_eq!(response.status(), 200, "reading evidence {id}");
    body(response).await
}

/// Asserts a 422 problem with an error on `field`.
async fn expect_invalid(response: Response, field: &str, why: &str) {
    let problem = problem(response, 422).await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{why}: a 422 lists its errors: {problem}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&field),
        "{why}: expected an error on `{field}`, got {fields:?}"
    );
}

/// Uploads `bytes` to evidence `id` as an analyst.
async fn upload(
    app: &TestApp,
    id: &str,
    filename: &str,
    content_type: Option<&str>,
    bytes: impl Into<Body>,
) -> Response {
    let mut request = app
        .request(
            Method::POST,
            &format!("{EVIDENCE}/{id}/artifacts"),
            Some(Role::Analyst),
        )
        .query(&[("filename", filename)])
        .body(bytes);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    request.send().await.expect("request sent")
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every file under `dir` at any depth (none when it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                files_under(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

/// Bytes no text decoder would pass: NULs, invalid UTF-8, every byte value.
fn binary(len: usize) -> Vec<u8> {
    let mut bytes = vec![0x00, 0xff, 0xfe, 0xc3, 0x28, 0x80, 0x00];
    bytes.extend((0..len).map(|i| (i * 31 % 256) as u8));
    bytes
}

async fn the_2014_lab_test_round_trips_exactly(app: TestApp) {
    let [redmi] = models(&app, ["Redmi 1S"]).await;
    let sent = lab_test_2014(&[&redmi]);
    let response = app.post(EVIDENCE, Some(Role::Analyst), &sent).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(response.headers().contains_key(ETAG));
    let filed = body(response).await;
    let id = filed["id"].as_str().unwrap();
    assert_eq!(location, format!("{EVIDENCE}/{id}"));
    for field in [
        "model_ids",
        "title",
        "source",
        "kind",
        "observed_at",
        "firmware",
        "summary",
        "severity",
        "findings",
        "references",
    ] {
        assert_eq!(filed[field], sent[field], "{field} comes back as sent");
    }
    assert_eq!(filed["findings"].as_array().unwrap().len(), 5);
    assert_eq!(filed["responses"], json!([]));
    assert_eq!(filed["artifacts"], json!([]));
    assert_eq!(filed["superseded_by"], json!([]));
    assert_eq!(filed["created_by"], "analyst-1");
    assert!(filed["created_at"].is_string());
    assert_eq!(read(&app, id).await, filed);
    let list = body(app.get(EVIDENCE, Some(Role::Reader)).await).await;
    assert_eq!(list["items"], json!([filed]));
    assert_eq!(list["next_cursor"], Value::Null);
}

async fn evidence_needs_at_least_one_existing_model_and_stores_nothing_otherwise(app: TestApp) {
    let [redmi] = models(&app, ["Redmi 1S"]).await;
    let nobody = uuid::Uuid::now_v7().to_string();
    expect_invalid(
        app.post(EVIDENCE, Some(Role::Analyst), &lab_test_2014(&[]))
            .await,
        "model_ids",
        "no model",
    )
    .await;
    expect_invalid(
        app.post(
            EVIDENCE,
            Some(Role::Analyst),
            &lab_test_2014(&[&redmi, &nobody]),
        )
        .await,
        "model_ids[1]",
        "an unknown model after a known one",
    )
    .await;
    expect_invalid(
        app.post(
            EVIDENCE,
            Some(Role::Analyst),
            &lab_test_2014(&[&redmi, &redmi]),
        )
        .await,
        "model_ids",
        "the same model twice",
    )
    .await;
    let mut without = lab_test_2014(&[]);
    without.as_object_mut().unwrap().remove("model_ids");
    expect_invalid(
        app.post(EVIDENCE, Some(Role::Analyst), &without).await,
        "model_ids",
        "model_ids left out",
    )
    .await;
    assert_eq!(app.count(EVIDENCE).await, 0, "nothing was stored");
}

async fn readers_read_evidence_but_only_analysts_file_it(app: TestApp) {
    let [redmi] = models(&app, ["Redmi 1S"]).await;
    let evidence = lab_test_2014(&[&redmi]);
    let response = app.post(EVIDENCE, Some(Role::Reader), &evidence).await;
    problem(response, 403).await;
    let response = app.post(EVIDENCE, None, &evidence).await;
    problem(response, 401).await;
    assert_eq!(app.count(EVIDENCE).await, 0);
    let filed = file(&app, &evidence).await;
    let id = filed["id"].as_str().unwrap();
    problem(app.get(EVIDENCE, None).await, 401).await;
    problem(app.get(&format!("{EVIDENCE}/{id}"), None).await, 401).await;
    assert_eq!(read(&app, id).await["id"], filed["id"]);
    let response = app
        .post(
            &format!("{EVIDENCE}/{id}/responses"),
            Some(Role::Reader),
            &json!({"kind": "retest", "author": "x", "received_at": "2014-08-01T00:00:00Z", "text": "x"}),
        )
        .await;
    problem(response, 403).await;
    let response = app
        .request(
            Method::POST,
            &format!("{EVIDENCE}/{id}/artifacts?filename=a.bin"),
            Some(Role::Reader),
        )
        .body(vec![1, 2, 3])
        .send()
        .await
        .unwrap();
    problem(response, 403).await;
    assert_eq!(read(&app, id).await, filed, "nothing was appended");
}

async fn invalid_fields_are_422s_naming_the_field(app: TestApp) {
    let [redmi] = models(&app, ["Redmi 1S"]).await;
    let cases: [(&str, Value, &str); 9] = [
        (
            "findings",
            json!([{"data": "imei", "destination": "x", "consent": "no", "country": "CHN"}]),
            "findings[0].country",
        ),
        (
            "findings",
            json!([{"data": "imei", "destination": "x", "consent": "no"}, {"data": "password", "destination": "x", "consent": "no"}]),
            "findings[1].data",
        ),
        (
            "findings",
            json!([{"data": "imei", "destination": "x", "consent": "maybe"}]),
            "findings[0].consent",
        ),
        (
            "findings",
            json!([{"data": "imei", "destination": "a\nb", "consent": "no"}]),
            "findings[0].destination",
        ),
        (
            "references",
            json!([REFERENCE, "not a url"]),
            "references[1]",
        ),
        (
            "references",
            json!(["javascript:alert(1)"]),
            "references[0]",
        ),
        ("observed_at", json!("last July"), "observed_at"),
        ("kind", json!("rumour"), "kind"),
        ("title", json!(""), "title"),
    ];
    for (field, value, at) in cases {
        let mut evidence = lab_test_2014(&[&redmi]);
        evidence[field] = value;
        let response = app.post(EVIDENCE, Some(Role::Analyst), &evidence).await;
        expect_invalid(response, at, at).await;
    }
    let mut evidence = lab_test_2014(&[&redmi]);
    evidence["tags"] = json!(["x"]);
    let response = app.post(EVIDENCE, Some(Role::Analyst), &evidence).await;
    expect_invalid(response, "tags", "an unknown field").await;
    assert_eq!(app.count(EVIDENCE).await, 0, "nothing was stored");
}

async fn evidence_cannot_be_edited_or_deleted(app: TestApp) {
    let [redmi] = models(&app, ["Redmi 1S"]).await;
    let filed = file(&app, &lab_test_2014(&[&redmi])).await;
    let path = format!("{EVIDENCE}/{}", filed["id"].as_str().unwrap());
    for method in [Method::PATCH, Method::PUT, Method::DELETE] {
        let response = app
            .request(method.clone(), &path, Some(Role::Admin))
            .json(&json!({"title": "edited"}))
            .send()
            .await
            .unwrap();
        let allow = response
            .headers()
            .get(ALLOW)
            .map(|v| v.to_str().unwrap().to_owned());
        problem(response, 405).await;
        assert_eq!(
            allow.as_deref(),
            Some("GET, HEAD"),
            "{method} names what is allowed"
        );
    }
    assert_eq!(read(&app, filed["id"].as_str().unwrap()).await, filed);
}

async fn unknown_or_malformed_evidence_ids_are_404s(app: TestApp) {
    let nobody = uuid::Uuid::now_v7();
    for path in [
        format!("{EVIDENCE}/{nobody}"),
        format!("{EVIDENCE}/not-a-uuid"),
        format!("{EVIDENCE}/{nobody}/artifacts/{}", sha256_hex(b"x")),
    ] {
        problem(app.get(&path, Some(Role::Reader)).await, 404).await;
    }
    let response = app
        .post(
            &format!("{EVIDENCE}/{nobody}/responses"),
            Some(Role::Analyst),
            &json!({"kind": "retest", "author": "Lab", "received_at": "2014-08-01T00:00:00Z", "text": "Retested."}),
        )
        .await;
    problem(response, 404).await;
}

async fn responses_are_appended_oldest_first(app: TestApp) {
    let [redmi] = models(&app, ["Redmi 1S"]).await;
    let filed = file(&app, &lab_test_2014(&[&redmi])).await;
    let id = filed["id"].as_str().unwrap();
    let path = format!("{EVIDENCE}/{id}/responses");
    let sent = [
        json!({
            "kind": "vendor_response", "author": "Xiaomi (Hugo Barra)",
            "received_at": "2014-08-10T12:00:00Z",
            "text": "An OTA update makes the cloud messaging service opt-in. Data never leaves without consent.",
        }),
        json!({
            "kind": "acknowledgement", "author": "F-Secure Labs",
            "received_at": "2014-08-14T08:30:00Z",
            "text": "With the update, nothing is sent until the user turns the service on.",
        }),
    ];
    let mut created = Vec::new();
    for response in &sent {
        let answer = app.post(&path, Some(Role::Analyst), response).await;
        assert_eq!(answer.status(), 201);
        assert_eq!(
            answer.headers()[LOCATION].to_str().unwrap(),
            format!("{EVIDENCE}/{id}")
        );
        let answer = body(answer).await;
        for field in ["kind", "author", "received_at", "text"] {
            assert_eq!(answer[field], response[field], "{field}");
        }
        assert_eq!(answer["evidence_id"], filed["id"]);
        assert_eq!(answer["supersedes"], Value::Null);
        assert_eq!(answer["created_by"], "analyst-1");
        created.push(answer);
    }
    let evidence = read(&app, id).await;
    assert_eq!(evidence["responses"], json!(created), "oldest first");
    assert_eq!(
        evidence["title"], filed["title"],
        "the evidence is unchanged"
    );
    assert_eq!(evidence["findings"], filed["findings"]);
}

async fn a_correction_supersedes_the_evidence_it_names(app: TestApp) {
    let [redmi] = models(&app, ["Redmi 1S"]).await;
    let old = file(&app, &lab_test_2014(&[&redmi])).await;
    let mut corrected = lab_test_2014(&[&redmi]);
    corrected["title"] = json!("Redmi 1S sends personal data to Beijing (corrected date)");
    corrected["observed_at"] = json!("2014-07-29T09:00:00Z");
    let new = file(&app, &corrected).await;
    let (old_id, new_id) = (old["id"].as_str().unwrap(), new["id"].as_str().unwrap());
    let response = app
        .post(
            &format!("{EVIDENCE}/{new_id}/responses"),
            Some(Role::Analyst),
            &json!({
                "kind": "correction", "author": "F-Secure Labs",
                "received_at": "2014-08-20T00:00:00Z",
                "text": "The test ran a day earlier than first reported.",
                "supersedes": old_id,
            }),
        )
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(body(response).await["supersedes"], old["id"]);
    let old_now = read(&app, old_id).await;
    assert_eq!(old_now["superseded_by"], json!([new_id]));
    assert_eq!(
        old_now["responses"],
        json!([]),
        "the old record is untouched"
    );
    assert_eq!(old_now["title"], old["title"]);
    let new_now = read(&app, new_id).await;
    assert_eq!(new_now["superseded_by"], json!([]));
    assert_eq!(new_now["responses"][0]["kind"], "correction");
}

async fn only_a_correction_may_supersede_and_only_existing_other_evidence(app: TestApp) {
    let [redmi] = models(&app, ["Redmi 1S"]).await;
    let old = file(&app, &lab_test_2014(&[&redmi])).await;
    let new = file(&app, &lab_test_2014(&[&redmi])).await;
    let (old_id, new_id) = (old["id"].as_str().unwrap(), new["id"].as_str().unwrap());
    let path = format!("{EVIDENCE}/{new_id}/responses");
    let nobody = uuid::Uuid::now_v7().to_string();
    for (kind, supersedes, why) in [
        ("vendor_response", old_id, "a vendor response"),
        ("retest", old_id, "a retest"),
        ("correction", new_id, "itself"),
        ("correction", &nobody, "unknown evidence"),
    ] {
        let response = app
            .post(
                &path,
                Some(Role::Analyst),
                &json!({
                    "kind": kind, "author": "Lab", "received_at": "2014-08-20T00:00:00Z",
                    "text": "Superseding.", "supersedes": supersedes,
                }),
            )
            .await;
        expect_invalid(response, "supersedes", why).await;
    }
    assert_eq!(read(&app, old_id).await["superseded_by"], json!([]));
    assert_eq!(read(&app, new_id).await["responses"], json!([]));
}

async fn evidence_is_filtered_by_model_and_paginated(app: TestApp) {
    let [redmi, note] = models(&app, ["Redmi 1S", "Redmi Note"]).await;
    let about_redmi = file(&app, &lab_test_2014(&[&redmi])).await;
    let about_note = file(&app, &lab_test_2014(&[&note])).await;
    let about_both = file(&app, &lab_test_2014(&[&note, &redmi])).await;
    assert_eq!(
        about_both["model_ids"],
        json!([note, redmi]),
        "in the order given"
    );
    let ids = |page: &Value| -> Vec<Value> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].clone())
            .collect()
    };
    let page = body(
        app.get(&format!("{EVIDENCE}?model_id={redmi}"), Some(Role::Reader))
            .await,
    )
    .await;
    assert_eq!(
        ids(&page),
        [about_redmi["id"].clone(), about_both["id"].clone()]
    );
    let page = body(
        app.get(&format!("{EVIDENCE}?model_id={note}"), Some(Role::Reader))
            .await,
    )
    .await;
    assert_eq!(
        ids(&page),
        [about_note["id"].clone(), about_both["id"].clone()]
    );
    expect_invalid(
        app.get(&format!("{EVIDENCE}?model_id=redmi"), Some(Role::Reader))
            .await,
        "model_id",
        "a model id that is not a UUID",
    )
    .await;
    let first = body(
        app.get(&format!("{EVIDENCE}?limit=2"), Some(Role::Reader))
            .await,
    )
    .await;
    assert_eq!(
        ids(&first),
        [about_redmi["id"].clone(), about_note["id"].clone()]
    );
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = body(
        app.get(
            &format!("{EVIDENCE}?limit=2&cursor={cursor}"),
            Some(Role::Reader),
        )
        .await,
    )
    .await;
    assert_eq!(ids(&second), [about_both["id"].clone()]);
    assert_eq!(second["next_cursor"], Value::Null);
}

async fn an_artifact_comes_back_byte_for_byte_and_safe_to_serve(app: TestApp) {
    let [redmi] = models(&app, ["Redmi 1S"]).await;
    let filed = file(&app, &lab_test_2014(&[&redmi])).await;
    let id = filed["id"].as_str().unwrap();
    // Several read chunks long, to cross chunk boundaries both ways.
    let bytes = binary(300_000);
    let sha256 = sha256_hex(&bytes);
    let response = upload(
        &app,
        id,
        "redmi 1s capture.pcap",
        Some("application/vnd.tcpdump.pcap"),
        bytes.clone(),
    )
    .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(location, format!("{EVIDENCE}/{id}/artifacts/{sha256}"));
    let artifact = body(response).await;
    assert_eq!(artifact["sha256"], sha256);
    assert_eq!(artifact["size"], bytes.len());
    assert_eq!(artifact["filename"], "redmi 1s capture.pcap");
    assert_eq!(artifact["content_type"], "application/vnd.tcpdump.pcap");
    assert_eq!(artifact["uploaded_by"], "analyst-1");
    assert_eq!(read(&app, id).await["artifacts"], json!([artifact]));

    let response = app.get(&location, Some(Role::Reader)).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers[CONTENT_TYPE], "application/vnd.tcpdump.pcap");
    assert_eq!(headers[ETAG].to_str().unwrap(), format!("\"{sha256}\""));
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"redmi 1s capture.pcap\""
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-security-policy"], "sandbox");
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let response = app
        .request(Method::GET, &location, Some(Role::Reader))
        .header(IF_NONE_MATCH, format!("\"{sha256}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    problem(app.get(&location, None).await, 401).await;

    // Without a content type, the bytes are kept as octets; a name that is
    // not ASCII is sent exactly in `filename*`.
    let small = binary(10);
    let response = upload(&app, id, "報告.bin", None, small.clone()).await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        body(response).await["content_type"],
        "application/octet-stream"
    );
    let response = app
        .get(
            &format!("{EVIDENCE}/{id}/artifacts/{}", sha256_hex(&small)),
            Some(Role::Reader),
        )
        .await;
    assert_eq!(response.headers()[CONTENT_TYPE], "application/octet-stream");
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"__.bin\"; filename*=UTF-8''%E5%A0%B1%E5%91%8A.bin"
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), small.as_slice());

    for (path, why) in [
        (
            format!("{EVIDENCE}/{id}/artifacts/{}", sha256_hex(b"other")),
            "unknown bytes",
        ),
        (
            format!("{EVIDENCE}/{id}/artifacts/not-a-digest"),
            "not a digest",
        ),
        (
            format!("{EVIDENCE}/{}/artifacts/{sha256}", uuid::Uuid::now_v7()),
            "other evidence",
        ),
    ] {
        let response = app.get(&path, Some(Role::Reader)).await;
        assert_eq!(response.status(), 404, "{why}");
    }
}

async fn the_same_artifact_twice_is_stored_once(app: TestApp) {
    let [redmi] = models(&app, ["Redmi 1S"]).await;
    let first = file(&app, &lab_test_2014(&[&redmi])).await;
    let second = file(&app, &lab_test_2014(&[&redmi])).await;
    let (first_id, second_id) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );
    let bytes = binary(5_000);
    let response = upload(&app, first_id, "capture.pcap", None, bytes.clone()).await;
    assert_eq!(response.status(), 201);
    let original = body(response).await;
    let response = upload(&app, first_id, "again.pcap", None, bytes.clone()).await;
    assert_eq!(response.status(), 200, "the same bytes again");
    assert_eq!(body(response).await, original, "the first record stands");
    assert_eq!(read(&app, first_id).await["artifacts"], json!([original]));
    let response = upload(&app, second_id, "capture.pcap", None, bytes.clone()).await;
    assert_eq!(response.status(), 201, "the same bytes with other evidence");
    let stored = files_under(&app.data_dir().join("artifacts"));
    let sha256 = sha256_hex(&bytes);
    assert_eq!(
        stored,
        [app.data_dir()
            .join("artifacts")
            .join(&sha256[..2])
            .join(&sha256)],
        "one blob on disk"
    );
}

async fn an_artifact_needs_a_plain_filename_and_existing_evidence(app: TestApp) {
    let [redmi] = models(&app, ["Redmi 1S"]).await;
    let filed = file(&app, &lab_test_2014(&[&redmi])).await;
    let id = filed["id"].as_str().unwrap();
    let response = app
        .request(
            Method::POST,
            &format!("{EVIDENCE}/{id}/artifacts"),
            Some(Role::Analyst),
        )
        .body(vec![1, 2, 3])
        .send()
        .await
        .unwrap();
    expect_invalid(response, "filename", "no filename").await;
    for bad in ["", "..", "../etc/passwd", "a\\b", "line\nbreak"] {
        let response = upload(&app, id, bad, None, vec![1, 2, 3]).await;
        expect_invalid(response, "filename", bad).await;
    }
    let response = upload(&app, id, "a.bin", Some("not a media type"), vec![1]).await;
    problem(response, 415).await;
    let nobody = uuid::Uuid::now_v7().to_string();
    problem(
        upload(&app, &nobody, "a.bin", None, vec![1, 2, 3]).await,
        404,
    )
    .await;
    assert_eq!(read(&app, id).await["artifacts"], json!([]));
    assert_eq!(
        files_under(&app.data_dir().join("artifacts")),
        Vec::<PathBuf>::new()
    );
}

const SMALL_LIMIT: u64 = 1024;

async fn artifacts_over_the_limit_are_413s_and_leave_nothing(app: TestApp) {
    let [redmi] = models(&app, ["Redmi 1S"]).await;
    let filed = file(&app, &lab_test_2014(&[&redmi])).await;
    let id = filed["id"].as_str().unwrap();
    let artifacts = app.data_dir().join("artifacts");

    // Declared too large: refused before a byte is read.
    let declared = binary(SMALL_LIMIT as usize);
    assert!(declared.len() as u64 > SMALL_LIMIT);
    problem(upload(&app, id, "big.bin", None, declared).await, 413).await;

    // Streamed without a length: refused once it runs past the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..4).map(|_| Ok(binary(500))).collect();
    let streamed = Body::wrap_stream(futures_util::stream::iter(chunks));
    problem(upload(&app, id, "big.bin", None, streamed).await, 413).await;

    assert_eq!(read(&app, id).await["artifacts"], json!([]), "no record");
    assert_eq!(files_under(&artifacts), Vec::<PathBuf>::new(), "no file");

    // Exactly at the limit is fine, streamed or not.
    let exact = vec![0xa5; SMALL_LIMIT as usize];
    assert_eq!(
        upload(&app, id, "exact.bin", None, exact.clone())
            .await
            .status(),
        201
    );
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![0x5a; 1000]), Ok(vec![0x5a; 24])];
    let streamed = Body::wrap_stream(futures_util::stream::iter(chunks));
    assert_eq!(
        upload(&app, id, "exact2.bin", None, streamed)
            .await
            .status(),
        201
    );
    assert_eq!(
        read(&app, id).await["artifacts"].as_array().unwrap().len(),
        2
    );
    assert_eq!(files_under(&artifacts).len(), 2);
}
