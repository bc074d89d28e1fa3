//! The decision workflow end to end: evidence, advisories through their
//! lifecycle with two people, the clearance every lookup then answers, its
//! history, reviews.

use clearance::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, SpawnOptions, TestApp, body, page, problem, wait_for};

const REDMI_TAC: &str = "86452102";
const IMEI: &str = "864521021234562";

pub struct Story {
    pub model_id: String,
    pub evidence_id: String,
}

/// Xiaomi, the Redmi 1S, and the 2014 lab evidence with its five findings.
pub async fn redmi_with_evidence(app: &TestApp) -> Story {
    let xiaomi = app.manufacturer("Xiaomi").await;
    let model = app.model(&xiaomi, "Redmi 1S", &[REDMI_TAC]).await;
    let model_id = model["id"].as_str().unwrap().to_owned();
    let evidence_id = evidence(app, &[&model_id]).await;
    Story {
        model_id,
        evidence_id,
    }
}

pub async fn evidence(app: &TestApp, model_ids: &[&str]) -> String {
    let finding = |data: &str| {
        json!({"data": data, "destination": "api.account.xiaomi.com (Beijing)", "country": "CN",
               "encrypted": false, "consent": "no",
               "note": "while the cloud messaging service was on"})
    };
    let findings = ["carrier", "phone_number", "imei", "contacts", "sms"].map(finding);
    let response = app
        .post(
            "/api/v1/evidence",
            Some(Role::Analyst),
            &json!({
                "model_ids": model_ids,
                "title": "Redmi 1S sends personal data to servers in Beijing",
                "source": "F-Secure Labs",
                "kind": "lab_test",
                "observed_at": "2014-07-30T00:00:00Z",
                "firmware": "MIUI JHCCNBH45.0",
                "summary": "With the cloud messaging service on, the phone sends the carrier, phone number, IMEI, contacts and SMS numbers.",
                "severity": "high",
                "findings": findings,
                "references": ["https://www.f-secure.com/weblog/archives/00002731.html"],
            }),
        )
        .await;
    assert_eq!(response.status(), 201, "filing evidence");
    body(response).await["id"].as_str().unwrap().to_owned()
}

pub fn prohibition(story: &Story) -> Value {
    json!({
        "title": "Do not use Xiaomi Redmi 1S phones",
        "summary": "Officers and their families are to refrain from using Redmi 1S phones.",
        "body": "The phone sends personal data abroad. **Do not use it.**",
        "severity": "high",
        "tlp": "clear",
        "audience": {"all_personnel": true, "units": []},
        "acknowledgement_required": true,
        "decisions": [{"model_id": story.model_id, "decision": "prohibited"}],
        "evidence_ids": [story.evidence_id],
    })
}

/// Drafts `advisory` and has it submitted and approved; returns its id.
pub async fn approved(app: &TestApp, advisory: &Value) -> String {
    let id = draft(app, advisory).await;
    act(app, &id, "submit", Role::Analyst, &json!({})).await;
    act(app, &id, "approve", Role::Approver, &json!({})).await;
    id
}

/// Publishes the approved advisories `ids` all at once; returns each as
/// published, in the order of `ids`.
pub async fn publish_at_once(app: &TestApp, ids: &[String]) -> Vec<Value> {
    let nothing = json!({});
    let publishes = ids
        .iter()
        .map(|id| act(app, id, "publish", Role::Approver, &nothing));
    let mut published = Vec::new();
    for response in futures_util::future::join_all(publishes).await {
        assert_eq!(response.status(), 200);
        published.push(body(response).await);
    }
    published
}

/// Drafts an advisory as `analyst-1`; returns its id.
pub async fn draft(app: &TestApp, advisory: &Value) -> String {
    let response = app
        .post("/api/v1/advisories", Some(Role::Analyst), advisory)
        .await;
    let status = response.status();
    let created = body(response).await;
    assert_eq!(status, 201, "drafting: {created}");
    created["id"].as_str().unwrap().to_owned()
}

pub async fn act(
    app: &TestApp,
    id: &str,
    action: &str,
    role: Role,
    body: &Value,
) -> reqwest::Response {
    app.post(
        &format!("/api/v1/advisories/{id}/{action}"),
        Some(role),
        body,
    )
    .await
}

/// Opens an amendment of published advisory `id` and makes `change` to it,
/// as `analyst-1`; publishing it is the caller's.
pub async fn amend(app: &TestApp, id: &str, change: &Value) {
    let opened = act(app, id, "amend", Role::Analyst, &json!({})).await;
    assert_eq!(opened.status(), 200, "amending");
    let etag = opened.headers()["etag"].to_str().unwrap().to_owned();
    let path = format!("/api/v1/advisories/{id}");
    let edited = app
        .patch(&path, Some(Role::Analyst), change, Some(&etag))
        .await;
    assert_eq!(edited.status(), 200, "editing the amendment");
}

/// Withdraws a published advisory as `approver-1`, for `reason`.
pub async fn withdraw(app: &TestApp, id: &str, reason: &str) {
    let response = act(
        app,
        id,
        "withdraw",
        Role::Approver,
        &json!({"reason": reason}),
    )
    .await;
    assert_eq!(response.status(), 200, "withdrawing");
}

/// Submits (as the analyst), approves and publishes (as `approver-1`).
pub async fn publish(app: &TestApp, id: &str) -> Value {
    for (action, role) in [
        ("submit", Role::Analyst),
        ("approve", Role::Approver),
        ("publish", Role::Approver),
    ] {
        let response = act(app, id, action, role, &json!({})).await;
        let status = response.status();
        let answer = body(response).await;
        assert_eq!(status, 200, "{action}: {answer}");
        if action == "publish" {
            return answer;
        }
    }
    unreachable!()
}

async fn status_of(app: &TestApp, model_id: &str) -> String {
    let model = body(
        app.get(&format!("/api/v1/models/{model_id}"), Some(Role::Reader))
            .await,
    )
    .await;
    model["clearance"]["status"].as_str().unwrap().to_owned()
}

async fn lookup(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/lookup?{query}"), None).await;
    assert_eq!(response.status(), 200, "lookup {query}");
    body(response).await
}

async fn the_2014_story(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let path = format!("/api/v1/evidence/{}/responses", story.evidence_id);
    for (kind, author, at) in [
        (
            "vendor_response",
            "Xiaomi (Hugo Barra)",
            "2014-08-10T00:00:00Z",
        ),
        ("acknowledgement", "F-Secure Labs", "2014-08-14T00:00:00Z"),
    ] {
        let response = app
            .post(
                &path,
                Some(Role::Analyst),
                &json!({"kind": kind, "author": author, "received_at": at,
                        "text": "The cloud messaging service is now opt-in."}),
            )
            .await;
        assert_eq!(response.status(), 201, "{kind}");
    }
    let id = draft(&app, &prohibition(&story)).await;
    assert_eq!(
        act(&app, &id, "submit", Role::Analyst, &json!({}))
            .await
            .status(),
        200
    );

    // The author, even holding the approver role, cannot approve it.
    let own = app
        .request(
            Method::POST,
            &format!("/api/v1/advisories/{id}/approve"),
            None,
        )
        .bearer_auth(app.token_for(Role::Approver, "analyst-1"))
        .send()
        .await
        .unwrap();
    let refused = problem(own, 403).await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("two-person rule")
    );

    assert_eq!(
        act(&app, &id, "approve", Role::Approver, &json!({}))
            .await
            .status(),
        200
    );
    let published = body(act(&app, &id, "publish", Role::Approver, &json!({})).await).await;
    // Numbered within the year it was published in.
    let year = &published["published_at"].as_str().unwrap()[..4];
    let reference = format!("CLR-{year}-0001");
    assert_eq!(published["reference"], reference.as_str());
    assert_eq!(published["state"], "published");
    assert_eq!(published["revision"], 1);
    assert_eq!(published["author"], "analyst-1");
    assert_eq!(published["approved_by"], "approver-1");

    for query in ["q=redmi%201s".to_owned(), format!("imei={IMEI}")] {
        let answer = lookup(&app, &query).await;
        let clearance = &answer["matches"][0]["clearance"];
        assert_eq!(clearance["status"], "prohibited", "{query}");
        assert_eq!(clearance["advisories"][0]["reference"], reference.as_str());
        assert_eq!(clearance["advisories"][0]["decision"], "prohibited");
        assert_eq!(
            clearance["advisories"][0]["title"],
            "Do not use Xiaomi Redmi 1S phones"
        );
    }
    let history = body(
        app.get(
            &format!("/api/v1/models/{}/clearance/history", story.model_id),
            Some(Role::Reader),
        )
        .await,
    )
    .await;
    let changes = history["items"].as_array().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["status"], "prohibited");
    assert_eq!(changes[0]["previous_status"], "unassessed");
    assert_eq!(changes[0]["advisory_id"], id.as_str());

    let trail = body(
        app.get(
            &format!("/api/v1/audit?entity=advisory&entity_id={id}"),
            Some(Role::Admin),
        )
        .await,
    )
    .await;
    let actions: Vec<(&str, &str)> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["action"].as_str().unwrap(),
                row["actor"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("advisory.create", "analyst-1"),
            ("advisory.submit", "analyst-1"),
            ("advisory.approve", "approver-1"),
            ("advisory.publish", "approver-1"),
        ]
    );
    let verified = body(app.get("/api/v1/audit/verify", Some(Role::Admin)).await).await;
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["first_broken"], Value::Null);

    let prohibited = body(
        app.get("/api/v1/models?status=prohibited", Some(Role::Reader))
            .await,
    )
    .await;
    assert_eq!(prohibited["items"].as_array().unwrap().len(), 1);
    assert_eq!(prohibited["items"][0]["id"], story.model_id.as_str());
}

async fn firmware_ranges_split_the_answer(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let mut advisory = prohibition(&story);
    advisory["decisions"] = json!([
        {"model_id": story.model_id, "decision": "prohibited", "firmware": "<6.3.1"},
        {"model_id": story.model_id, "decision": "approved", "firmware": ">=6.3.1"},
    ]);
    let id = draft(&app, &advisory).await;
    publish(&app, &id).await;
    let at = |firmware: &'static str| {
        let app = &app;
        async move {
            let answer = lookup(app, &format!("tac={REDMI_TAC}{firmware}")).await;
            answer["matches"][0]["clearance"].clone()
        }
    };
    assert_eq!(at("&firmware=6.3.0").await["status"], "prohibited");
    assert_eq!(at("&firmware=6.3.1").await["status"], "approved");
    assert_eq!(at("&firmware=7").await["status"], "approved");
    assert!(
        at("&firmware=7").await["by_firmware"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Without a version the answer never claims more than holds for each.
    let overall = at("").await;
    assert_eq!(overall["status"], "depends_on_firmware");
    let ranges: Vec<(&str, &str)> = overall["by_firmware"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["firmware"].as_str().unwrap(),
                a["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranges, [("<6.3.1", "prohibited"), (">=6.3.1", "approved")]);
    assert_eq!(
        status_of(&app, &story.model_id).await,
        "depends_on_firmware"
    );

    let bad = app
        .get(
            &format!("/api/v1/lookup?tac={REDMI_TAC}&firmware=six"),
            None,
        )
        .await;
    assert_eq!(problem(bad, 422).await["errors"][0]["field"], "firmware");
    advisory["decisions"][0]["firmware"] = json!("~6");
    let refused = app
        .post("/api/v1/advisories", Some(Role::Analyst), &advisory)
        .await;
    assert_eq!(
        problem(refused, 422).await["errors"][0]["field"],
        "decisions[0].firmware"
    );
}

async fn a_superseding_advisory_relaxes_and_withdrawal_returns_to_unassessed(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let first = draft(&app, &prohibition(&story)).await;
    publish(&app, &first).await;
    assert_eq!(status_of(&app, &story.model_id).await, "prohibited");

    let mut relaxing = prohibition(&story);
    relaxing["title"] = json!("Redmi 1S with the fixed firmware may be used with conditions");
    relaxing["decisions"] = json!([{"model_id": story.model_id, "decision": "approved_with_conditions",
                                     "conditions": "cloud messaging switched off"}]);
    relaxing["supersedes"] = json!([first]);
    let second = draft(&app, &relaxing).await;
    let published = publish(&app, &second).await;
    assert_eq!(
        published["reference"].as_str().unwrap().len(),
        "CLR-2026-0002".len()
    );
    let clearance = body(
        app.get(
            &format!("/api/v1/models/{}", story.model_id),
            Some(Role::Reader),
        )
        .await,
    )
    .await["clearance"]
        .clone();
    assert_eq!(clearance["status"], "approved_with_conditions");
    assert_eq!(clearance["conditions"], "cloud messaging switched off");
    let old = body(
        app.get(&format!("/api/v1/advisories/{first}"), Some(Role::Reader))
            .await,
    )
    .await;
    assert_eq!(old["state"], "superseded");
    assert_eq!(old["superseded_by"], second.as_str());

    // A superseded advisory cannot be withdrawn or superseded again.
    let again = act(
        &app,
        &first,
        "withdraw",
        Role::Approver,
        &json!({"reason": "x"}),
    )
    .await;
    assert_eq!(problem(again, 409).await["current_state"], "superseded");

    let withdrawn = act(
        &app,
        &second,
        "withdraw",
        Role::Approver,
        &json!({"reason": "The vendor's fix was not confirmed."}),
    )
    .await;
    let withdrawn = body(withdrawn).await;
    assert_eq!(withdrawn["state"], "withdrawn");
    assert_eq!(
        withdrawn["withdrawn_reason"],
        "The vendor's fix was not confirmed."
    );
    let model = body(
        app.get(
            &format!("/api/v1/models/{}", story.model_id),
            Some(Role::Reader),
        )
        .await,
    )
    .await;
    assert_eq!(model["clearance"]["status"], "unassessed");
    assert_eq!(
        model["clearance"]["since"], withdrawn["withdrawn_at"],
        "unassessed since the withdrawal"
    );
    let history = body(
        app.get(
            &format!("/api/v1/models/{}/clearance/history", story.model_id),
            Some(Role::Reader),
        )
        .await,
    )
    .await;
    let statuses: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["prohibited", "approved_with_conditions", "unassessed"]
    );
}

async fn reviews_put_a_model_under_review_and_list_when_overdue(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let due_in_90_days = (chrono::Utc::now() + chrono::Duration::days(90)).to_rfc3339();
    let opened = app
        .post(
            "/api/v1/reviews",
            Some(Role::Analyst),
            &json!({"model_id": story.model_id, "reason": "Independent tests; a decision within three months.",
                    "due_at": due_in_90_days}),
        )
        .await;
    assert_eq!(opened.status(), 201);
    let review = body(opened).await;
    let model = body(
        app.get(
            &format!("/api/v1/models/{}", story.model_id),
            Some(Role::Reader),
        )
        .await,
    )
    .await;
    assert_eq!(model["clearance"]["status"], "under_review");
    assert_eq!(model["clearance"]["review"]["id"], review["id"]);
    let twice = app
        .post(
            "/api/v1/reviews",
            Some(Role::Analyst),
            &json!({"model_id": story.model_id, "reason": "again", "due_at": due_in_90_days}),
        )
        .await;
    problem(twice, 409).await;
    let overdue = body(
        app.get("/api/v1/reviews?overdue=true", Some(Role::Reader))
            .await,
    )
    .await;
    assert!(overdue["items"].as_array().unwrap().is_empty());

    // Another model whose review is past due is listed.
    let maker = app.manufacturer("Other").await;
    let other = app.model(&maker, "Phone X", &[]).await;
    let late = app
        .post(
            "/api/v1/reviews",
            Some(Role::Analyst),
            &json!({"model_id": other["id"], "reason": "overdue", "due_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    let late = body(late).await;
    let overdue = body(
        app.get("/api/v1/reviews?overdue=true", Some(Role::Reader))
            .await,
    )
    .await;
    let items = overdue["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], late["id"]);
    assert_eq!(items[0]["overdue"], true);

    let close = |id: Value| {
        let app = &app;
        async move {
            app.post(
                &format!("/api/v1/reviews/{}/close", id.as_str().unwrap()),
                Some(Role::Approver),
                &json!({"outcome": "no finding", "advisory_id": null}),
            )
            .await
        }
    };
    let analyst_close = app
        .post(
            &format!("/api/v1/reviews/{}/close", review["id"].as_str().unwrap()),
            Some(Role::Analyst),
            &json!({"outcome": "x"}),
        )
        .await;
    problem(analyst_close, 403).await;
    assert_eq!(close(review["id"].clone()).await.status(), 200);
    assert_eq!(status_of(&app, &story.model_id).await, "unassessed");
    let again = close(review["id"].clone()).await;
    assert_eq!(problem(again, 409).await["current_state"], "closed");
}

async fn every_illegal_transition_is_a_409_naming_the_state(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let id = draft(&app, &prohibition(&story)).await;
    for (action, role) in [
        ("reject", Role::Approver),
        ("approve", Role::Approver),
        ("publish", Role::Approver),
        ("amend", Role::Analyst),
        ("withdraw", Role::Approver),
    ] {
        let response = act(&app, &id, action, role, &json!({"reason": "because"})).await;
        assert_eq!(
            problem(response, 409).await["current_state"],
            "draft",
            "{action}"
        );
    }
    act(&app, &id, "submit", Role::Analyst, &json!({})).await;
    let path = format!("/api/v1/advisories/{id}");
    let edit = app
        .patch(
            &path,
            Some(Role::Analyst),
            &json!({"title": "New"}),
            Some("\"2\""),
        )
        .await;
    assert_eq!(problem(edit, 409).await["current_state"], "submitted");
    for action in ["submit", "publish"] {
        let response = act(&app, &id, action, Role::Approver, &json!({})).await;
        assert_eq!(
            problem(response, 409).await["current_state"],
            "submitted",
            "{action}"
        );
    }
    act(&app, &id, "approve", Role::Approver, &json!({})).await;
    act(&app, &id, "publish", Role::Approver, &json!({})).await;
    for action in ["submit", "approve", "publish", "reject"] {
        let response = act(&app, &id, action, Role::Approver, &json!({"reason": "r"})).await;
        assert_eq!(
            problem(response, 409).await["current_state"],
            "published",
            "{action}"
        );
    }
    let unknown = act(
        &app,
        &uuid::Uuid::now_v7().to_string(),
        "submit",
        Role::Analyst,
        &json!({}),
    )
    .await;
    problem(unknown, 404).await;
}

async fn drafts_change_only_with_a_current_etag_and_reject_sends_back(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let response = app
        .post(
            "/api/v1/advisories",
            Some(Role::Analyst),
            &prohibition(&story),
        )
        .await;
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let id = body(response).await["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/advisories/{id}");
    let change = json!({"title": "Redmi 1S: prohibited", "review_due": "2027-01-01T00:00:00Z"});
    problem(
        app.patch(&path, Some(Role::Analyst), &change, None).await,
        428,
    )
    .await;
    problem(
        app.patch(&path, Some(Role::Analyst), &change, Some("\"99\""))
            .await,
        412,
    )
    .await;
    let changed = app
        .patch(&path, Some(Role::Analyst), &change, Some(&etag))
        .await;
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
    let changed = body(changed).await;
    assert_eq!(changed["title"], "Redmi 1S: prohibited");
    assert_eq!(changed["review_due"], "2027-01-01T00:00:00Z");
    assert_eq!(changed["summary"], prohibition(&story)["summary"]);
    // The old ETag is stale now.
    problem(
        app.patch(&path, Some(Role::Analyst), &change, Some(&etag))
            .await,
        412,
    )
    .await;

    act(&app, &id, "submit", Role::Analyst, &json!({})).await;
    let no_reason = act(&app, &id, "reject", Role::Approver, &json!({})).await;
    problem(no_reason, 422).await;
    let rejected = body(
        act(
            &app,
            &id,
            "reject",
            Role::Approver,
            &json!({"reason": "Cite the vendor's reply."}),
        )
        .await,
    )
    .await;
    assert_eq!(rejected["state"], "draft");
    assert_eq!(rejected["rejection_reason"], "Cite the vendor's reply.");
}

async fn publishing_needs_a_decision_and_evidence(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let mut empty = prohibition(&story);
    empty["decisions"] = json!([]);
    empty["evidence_ids"] = json!([]);
    let id = draft(&app, &empty).await;
    act(&app, &id, "submit", Role::Analyst, &json!({})).await;
    act(&app, &id, "approve", Role::Approver, &json!({})).await;
    let refused = problem(
        act(&app, &id, "publish", Role::Approver, &json!({})).await,
        422,
    )
    .await;
    let fields: Vec<&str> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["decisions", "evidence_ids"]);
    let still = body(
        app.get(&format!("/api/v1/advisories/{id}"), Some(Role::Analyst))
            .await,
    )
    .await;
    assert_eq!(still["state"], "approved");
    assert_eq!(still["reference"], Value::Null);

    let mut wrong = prohibition(&story);
    wrong["decisions"] =
        json!([{"model_id": uuid::Uuid::now_v7(), "decision": "approved_with_conditions"}]);
    wrong["evidence_ids"] = json!([uuid::Uuid::now_v7()]);
    let refused = problem(
        app.post("/api/v1/advisories", Some(Role::Analyst), &wrong)
            .await,
        422,
    )
    .await;
    let mut fields: Vec<&str> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "decisions[0].conditions",
            "decisions[0].model_id",
            "evidence_ids[0]"
        ]
    );
}

async fn drafts_are_invisible_to_readers(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let id = draft(&app, &prohibition(&story)).await;
    let path = format!("/api/v1/advisories/{id}");
    problem(app.get(&path, Some(Role::Reader)).await, 404).await;
    problem(
        app.get(&format!("{path}/revisions"), Some(Role::Reader))
            .await,
        404,
    )
    .await;
    assert_eq!(app.get(&path, Some(Role::Analyst)).await.status(), 200);
    let listed = body(app.get("/api/v1/advisories", Some(Role::Reader)).await).await;
    assert!(listed["items"].as_array().unwrap().is_empty());
    let listed = body(
        app.get("/api/v1/advisories?state=draft", Some(Role::Analyst))
            .await,
    )
    .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    problem(app.get(&path, None).await, 401).await;
    problem(
        app.post(
            "/api/v1/advisories",
            Some(Role::Reader),
            &prohibition(&story),
        )
        .await,
        403,
    )
    .await;
    publish(&app, &id).await;
    let seen = body(app.get(&path, Some(Role::Reader)).await).await;
    assert_eq!(seen["state"], "published");
    let by_model = body(
        app.get(
            &format!("/api/v1/advisories?model_id={}", story.model_id),
            Some(Role::Reader),
        )
        .await,
    )
    .await;
    assert_eq!(by_model["items"][0]["id"], id.as_str());
}

async fn an_amendment_is_a_new_revision_through_two_people_again(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let id = draft(&app, &prohibition(&story)).await;
    let first = publish(&app, &id).await;
    let amended = body(act(&app, &id, "amend", Role::Analyst, &json!({})).await).await;
    assert_eq!(amended["state"], "published");
    assert_eq!(amended["revision"], 1);
    assert_eq!(amended["amendment"]["revision"], 2);
    assert_eq!(amended["amendment"]["state"], "draft");

    let path = format!("/api/v1/advisories/{id}");
    let reader_view = body(app.get(&path, Some(Role::Reader)).await).await;
    assert_eq!(reader_view["amendment"], Value::Null);
    assert_eq!(reader_view["title"], first["title"]);

    let etag = app.get(&path, Some(Role::Analyst)).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let edited = app
        .patch(
            &path,
            Some(Role::Analyst),
            &json!({"body": "Update: the vendor made the service opt-in. The prohibition stands."}),
            Some(&etag),
        )
        .await;
    assert_eq!(edited.status(), 200);
    // Still the revision in force for everyone until the amendment is published.
    assert_eq!(
        body(app.get(&path, Some(Role::Reader)).await).await["body"],
        first["body"]
    );
    act(&app, &id, "submit", Role::Analyst, &json!({})).await;
    let own = app
        .request(Method::POST, &format!("{path}/approve"), None)
        .bearer_auth(app.token_for(Role::Approver, "analyst-1"))
        .send()
        .await
        .unwrap();
    problem(own, 403).await;
    act(&app, &id, "approve", Role::Approver, &json!({})).await;
    let second = body(act(&app, &id, "publish", Role::Approver, &json!({})).await).await;
    assert_eq!(second["revision"], 2);
    assert_eq!(second["reference"], first["reference"]);
    assert_eq!(
        second["body"],
        "Update: the vendor made the service opt-in. The prohibition stands."
    );
    let revisions = body(
        app.get(&format!("{path}/revisions"), Some(Role::Reader))
            .await,
    )
    .await;
    let items = revisions["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["revision"], 1);
    assert_eq!(items[0]["body"], first["body"]);
    assert_eq!(items[1]["revision"], 2);
    assert_eq!(status_of(&app, &story.model_id).await, "prohibited");
}

async fn anonymous_lookups_see_only_clear_titles(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let mut amber = prohibition(&story);
    amber["tlp"] = json!("amber");
    let id = draft(&app, &amber).await;
    publish(&app, &id).await;
    let public = lookup(&app, &format!("tac={REDMI_TAC}")).await;
    // The decision counts, but nothing the advisory says is shown.
    assert_eq!(public["matches"][0]["clearance"]["status"], "prohibited");
    assert_eq!(public["matches"][0]["clearance"]["advisories"], json!([]));
    let officer = body(
        app.get(
            &format!("/api/v1/lookup?tac={REDMI_TAC}"),
            Some(Role::Reader),
        )
        .await,
    )
    .await;
    assert_eq!(
        officer["matches"][0]["clearance"]["advisories"][0]["title"],
        "Do not use Xiaomi Redmi 1S phones"
    );
}

async fn a_decision_applies_when_its_effective_date_comes(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let mut later = prohibition(&story);
    let effective = app.clock.now() + chrono::Duration::days(1);
    later["effective_at"] = json!(effective.to_rfc3339());
    let id = draft(&app, &later).await;
    publish(&app, &id).await;
    assert_eq!(status_of(&app, &story.model_id).await, "unassessed");
    let prohibited = async || {
        let page = app
            .get("/api/v1/models?status=prohibited", Some(Role::Reader))
            .await;
        body(page).await["items"].as_array().unwrap().len()
    };
    assert_eq!(prohibited().await, 0);

    app.clock.advance(chrono::Duration::days(1));
    // The lookup derives per request; the stored status and its history
    // follow within the refresh period.
    assert_eq!(status_of(&app, &story.model_id).await, "prohibited");
    wait_for(
        "the effective decision to settle",
        std::time::Duration::from_secs(10),
        async || prohibited().await == 1,
    )
    .await;
    let history = body(
        app.get(
            &format!("/api/v1/models/{}/clearance/history", story.model_id),
            Some(Role::Reader),
        )
        .await,
    )
    .await;
    assert_eq!(history["items"][0]["status"], "prohibited");
    assert_eq!(history["items"][0]["advisory_id"], id.as_str());
    let changed_at = history["items"][0]["changed_at"].as_str().unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(changed_at).unwrap(),
        effective
    );
}

/// Starts its own app, on a clock the test moves.
mod effective_dates {
    use super::*;
    use chrono::SubsecRound;
    use clearance::clock::Clock;
    crate::backend_tests!(with SpawnOptions {
        clock: Clock::stopped_at(chrono::Utc::now().trunc_subsecs(0)),
        ..SpawnOptions::default()
    } => a_decision_applies_when_its_effective_date_comes, a_review_s_etag_moves_when_it_falls_overdue_and_when_it_closes, a_replacement_taking_effect_later_leaves_the_decision_standing_until_then);
}

/// An amendment, or an advisory superseding another, that takes effect
/// later leaves the decision it replaces standing until then: a prohibited
/// phone is never "not assessed" in between, in the lookup or as stored.
async fn a_replacement_taking_effect_later_leaves_the_decision_standing_until_then(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let id = draft(&app, &prohibition(&story)).await;
    let reference = publish(&app, &id).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let tac_status = async || {
        lookup(&app, &format!("tac={REDMI_TAC}")).await["matches"][0]["clearance"]["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let settles_to = async |status: &str| {
        assert_eq!(tac_status().await, status, "the lookup");
        wait_for(
            &format!("the stored status to be {status}"),
            std::time::Duration::from_secs(10),
            async || status_of(&app, &story.model_id).await == status,
        )
        .await;
    };
    let day = chrono::Duration::days(1);

    // Amended to restricted, from tomorrow.
    let restricted = json!({
        "decisions": [{"model_id": story.model_id, "decision": "restricted",
                       "conditions": "Only with the work profile."}],
        "effective_at": (app.clock.now() + day).to_rfc3339(),
    });
    amend(&app, &id, &restricted).await;
    publish(&app, &id).await;
    settles_to("prohibited").await;
    app.clock.advance(day);
    settles_to("restricted").await;

    // Superseded by an approval, from the day after.
    let mut approval = prohibition(&story);
    approval["decisions"] = json!([{"model_id": story.model_id, "decision": "approved"}]);
    approval["supersedes"] = json!([id]);
    approval["effective_at"] = json!((app.clock.now() + day).to_rfc3339());
    let successor = draft(&app, &approval).await;
    publish(&app, &successor).await;
    let path = format!("/api/v1/advisories/{id}");
    assert_eq!(
        body(app.get(&path, Some(Role::Reader)).await).await["state"],
        "superseded"
    );
    settles_to("restricted").await;
    // Its page says so too: in force until its successor takes effect.
    let superseded_page = async || page(&app, &format!("/advisories/{reference}"), &[]).await.2;
    let until = (app.clock.now() + day).format("%-d %B %Y").to_string();
    let html = superseded_page().await;
    assert!(
        html.contains(&format!("<dd>In force until {until}</dd>")),
        "{html}"
    );
    assert!(html.contains("its decisions apply until then"), "{html}");
    app.clock.advance(day);
    settles_to("approved").await;
    let html = superseded_page().await;
    assert!(html.contains("<dd>No longer in force</dd>"), "{html}");
    assert!(
        html.contains(&format!("its decisions applied until {until}")),
        "{html}"
    );
}

/// `ETag` on single resources: a review's moves whenever what a read of
/// it shows does, the day it falls overdue included.
async fn a_review_s_etag_moves_when_it_falls_overdue_and_when_it_closes(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let due = app.clock.now() + chrono::Duration::days(1);
    let etag = |response: &reqwest::Response| {
        (response.headers().get("etag"))
            .expect("an ETag")
            .to_str()
            .unwrap()
            .to_owned()
    };
    let opened = app
        .post(
            "/api/v1/reviews",
            Some(Role::Analyst),
            &json!({"model_id": story.model_id, "reason": "Independent tests", "due_at": due}),
        )
        .await;
    assert_eq!(opened.status(), 201);
    let on_opening = etag(&opened);
    let path = format!(
        "/api/v1/reviews/{}",
        body(opened).await["id"].as_str().unwrap()
    );
    let read = app.get(&path, Some(Role::Reader)).await;
    assert_eq!(etag(&read), on_opening, "nothing changed");

    app.clock.advance(chrono::Duration::days(2));
    let read = app.get(&path, Some(Role::Reader)).await;
    let when_overdue = etag(&read);
    assert_eq!(body(read).await["overdue"], true);
    assert_ne!(when_overdue, on_opening, "it reads differently now");

    let closed = app
        .post(
            &format!("{path}/close"),
            Some(Role::Approver),
            &json!({"outcome": "no finding"}),
        )
        .await;
    assert_eq!(closed.status(), 200);
    let on_closing = etag(&closed);
    assert!(![&on_opening, &when_overdue].contains(&&on_closing));
    assert_eq!(etag(&app.get(&path, Some(Role::Reader)).await), on_closing);
}

/// Registers a model of `maker` in `category`; returns its id.
pub async fn model_in(app: &TestApp, maker: &str, name: &str, category: &str) -> String {
    let response = app
        .post(
            "/api/v1/models",
            Some(Role::Analyst),
            &json!({"manufacturer_id": maker, "name": name, "category": category}),
        )
        .await;
    assert_eq!(response.status(), 201, "registering {name}");
    body(response).await["id"].as_str().unwrap().to_owned()
}

/// The 2014 circular as it was: every phone of the maker prohibited.
pub fn every_phone_of(maker: &str, story: &Story) -> Value {
    let mut circular = prohibition(story);
    circular["title"] = json!("Refrain from using Xiaomi phones");
    circular["decisions"] =
        json!([{"manufacturer_id": maker, "category": "phone", "decision": "prohibited"}]);
    circular
}

async fn a_maker_wide_prohibition_covers_its_phones_registered_later_too(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let xiaomi = body(app.get("/api/v1/manufacturers", Some(Role::Reader)).await).await["items"][0]
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pad = model_in(&app, &xiaomi, "Mi Pad", "tablet").await;
    let circular = draft(&app, &every_phone_of(&xiaomi, &story)).await;
    let published = publish(&app, &circular).await;
    assert_eq!(published["decisions"][0]["scope"], "manufacturer");
    assert_eq!(published["decisions"][0]["manufacturer_name"], "Xiaomi");
    assert_eq!(published["decisions"][0]["category"], "phone");
    assert_eq!(status_of(&app, &story.model_id).await, "prohibited");
    assert_eq!(status_of(&app, &pad).await, "unassessed", "a tablet");

    // A phone registered after the circular is prohibited at once, and its
    // history names the circular.
    let later = model_in(&app, &xiaomi, "Redmi 2", "phone").await;
    assert_eq!(status_of(&app, &later).await, "prohibited");
    let history = body(
        app.get(
            &format!("/api/v1/models/{later}/clearance/history"),
            Some(Role::Reader),
        )
        .await,
    )
    .await;
    assert_eq!(history["items"][0]["status"], "prohibited");
    assert_eq!(history["items"][0]["advisory_id"], circular.as_str());
    let answer = lookup(&app, "q=redmi%202").await;
    let deciding = &answer["matches"][0]["clearance"]["advisories"][0];
    assert_eq!(deciding["scope"], "manufacturer");
    assert_eq!(deciding["category"], "phone");
    assert_eq!(deciding["title"], "Refrain from using Xiaomi phones");

    // Made a phone, the tablet falls under it too.
    let patched = app
        .patch(
            &format!("/api/v1/models/{pad}"),
            Some(Role::Analyst),
            &json!({"category": "phone"}),
            None,
        )
        .await;
    assert_eq!(patched.status(), 200);
    assert_eq!(status_of(&app, &pad).await, "prohibited");

    // A model's own decision outranks the maker's.
    let mut cleared = prohibition(&story);
    cleared["decisions"] = json!([{"model_id": story.model_id,
        "decision": "approved_with_conditions", "conditions": "work profile only"}]);
    publish(&app, &draft(&app, &cleared).await).await;
    assert_eq!(
        status_of(&app, &story.model_id).await,
        "approved_with_conditions"
    );
    assert_eq!(status_of(&app, &later).await, "prohibited");
    let prohibited = body(
        app.get("/api/v1/models?status=prohibited", Some(Role::Reader))
            .await,
    )
    .await;
    let mut names: Vec<&str> = prohibited["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["Mi Pad", "Redmi 2"]);
    // The maker's models list it among their advisories.
    let listed = body(
        app.get(
            &format!("/api/v1/advisories?model_id={later}"),
            Some(Role::Reader),
        )
        .await,
    )
    .await;
    assert_eq!(listed["items"][0]["id"], circular.as_str());
}

async fn a_decision_names_exactly_one_model_or_maker(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let maker = body(app.get("/api/v1/manufacturers", Some(Role::Reader)).await).await["items"][0]
        ["id"]
        .clone();
    for (decision, why) in [
        (json!({"decision": "prohibited"}), "neither"),
        (
            json!({"model_id": story.model_id, "manufacturer_id": maker, "decision": "prohibited"}),
            "both",
        ),
        (
            json!({"model_id": story.model_id, "category": "phone", "decision": "prohibited"}),
            "a category without a maker",
        ),
    ] {
        let mut advisory = prohibition(&story);
        advisory["decisions"] = json!([decision]);
        let refused = app
            .post("/api/v1/advisories", Some(Role::Analyst), &advisory)
            .await;
        let problem = problem(refused, 422).await;
        assert_eq!(problem["errors"][0]["field"], "decisions[0]", "{why}");
    }
    let mut unknown = prohibition(&story);
    unknown["decisions"] =
        json!([{"manufacturer_id": uuid::Uuid::now_v7(), "decision": "prohibited"}]);
    let refused = app
        .post("/api/v1/advisories", Some(Role::Analyst), &unknown)
        .await;
    assert_eq!(
        problem(refused, 422).await["errors"][0]["field"],
        "decisions[0].manufacturer_id"
    );
}

backend_tests!(
    a_maker_wide_prohibition_covers_its_phones_registered_later_too,
    a_decision_names_exactly_one_model_or_maker,
    the_2014_story,
    firmware_ranges_split_the_answer,
    a_superseding_advisory_relaxes_and_withdrawal_returns_to_unassessed,
    reviews_put_a_model_under_review_and_list_when_overdue,
    every_illegal_transition_is_a_409_naming_the_state,
    drafts_change_only_with_a_current_etag_and_reject_sends_back,
    publishing_needs_a_decision_and_evidence,
    drafts_are_invisible_to_readers,
    an_amendment_is_a_new_revision_through_two_people_again,
    anonymous_lookups_see_only_clear_titles,
);

/// Publishes raced on PostgreSQL get distinct references without gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishes_get_distinct_gap_free_references() {
    // On a stopped clock: all eight are published in the year it shows.
    let options = SpawnOptions {
        clock: clearance::clock::Clock::stopped_at(chrono::Utc::now()),
        ..SpawnOptions::default()
    };
    let app = TestApp::spawn_with(Backend::Postgres, options).await;
    let story = redmi_with_evidence(&app).await;
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(approved(&app, &prohibition(&story)).await);
    }
    let mut references: Vec<String> = publish_at_once(&app, &ids)
        .await
        .iter()
        .map(|published| published["reference"].as_str().unwrap().to_owned())
        .collect();
    references.sort();
    let year = app.clock.now().format("%Y");
    let expected: Vec<String> = (1..=8).map(|n| format!("CLR-{year}-{n:04}")).collect();
    assert_eq!(references, expected);
}
