//! The lookup follows changes: a write is answered by its own server as soon
//! as the request returns, and by every other server on the same database
//! within the refresh period — names dropped, TACs moved, decisions
//! reworded — even when the change log no longer reaches back.

use std::time::Duration;

use clearance::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, body, wait_for};
use crate::workflow::{amend, draft, publish, redmi_with_evidence};

crate::backend_tests!(
    a_renamed_model_no_longer_matches_its_old_name,
    a_tac_moved_between_models_resolves_to_the_new_owner,
    a_write_in_one_server_reaches_another_within_the_refresh_period,
    reworded_conditions_reach_another_server_though_the_status_stays,
    a_change_the_log_no_longer_holds_is_found_by_a_full_rebuild,
);

/// Longer than any refresh period the tests run with (the default, 1 s),
/// with room for a busy machine.
const PATIENCE: Duration = Duration::from_secs(15);

async fn lookup(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/lookup?{query}"), None).await;
    assert_eq!(response.status(), 200, "lookup {query}");
    body(response).await
}

/// The ids of the models a lookup answers, best first.
async fn found(app: &TestApp, query: &str) -> Vec<String> {
    lookup(app, query).await["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Asks until the answer is `expected`, for at most [`PATIENCE`].
async fn eventually<T: PartialEq>(what: &str, expected: T, ask: impl AsyncFn() -> T) {
    wait_for(what, PATIENCE, async || ask().await == expected).await;
}

/// Asks until the lookup answers exactly these models.
async fn until_found(app: &TestApp, query: &str, expected: &[&str]) {
    let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    eventually(query, expected, async || found(app, query).await).await;
}

async fn patch_model(app: &TestApp, id: &str, change: Value) {
    let response = app
        .patch(
            &format!("/api/v1/models/{id}"),
            Some(Role::Analyst),
            &change,
            None,
        )
        .await;
    assert_eq!(response.status(), 200, "patching {change}");
}

fn id(model: &Value) -> &str {
    model["id"].as_str().unwrap()
}

async fn a_renamed_model_no_longer_matches_its_old_name(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let model = app.model(&maker, "Redmi 1S", &[]).await;
    patch_model(
        &app,
        id(&model),
        json!({"name": "Redmi 2", "model_numbers": ["2014811"]}),
    )
    .await;
    assert_eq!(found(&app, "q=redmi%201s").await, Vec::<String>::new());
    assert_eq!(found(&app, "q=redmi%202").await, [id(&model)]);
    assert_eq!(found(&app, "q=2014811").await, [id(&model)]);
    patch_model(&app, id(&model), json!({"model_numbers": []})).await;
    assert_eq!(
        found(&app, "q=2014811").await,
        Vec::<String>::new(),
        "a dropped model number"
    );
}

async fn a_tac_moved_between_models_resolves_to_the_new_owner(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let old_owner = app.model(&maker, "Redmi 1S", &["86452102"]).await;
    let new_owner = app.model(&maker, "Redmi Note", &[]).await;
    patch_model(&app, id(&old_owner), json!({"tacs": []})).await;
    assert_eq!(found(&app, "tac=86452102").await, Vec::<String>::new());
    patch_model(&app, id(&new_owner), json!({"tacs": ["86452102"]})).await;
    assert_eq!(found(&app, "tac=86452102").await, [id(&new_owner)]);
    assert_eq!(found(&app, "imei=864521021234562").await, [id(&new_owner)]);
}

async fn a_write_in_one_server_reaches_another_within_the_refresh_period(app: TestApp) {
    let other = app.spawn_beside().await;
    let maker = app.manufacturer("Xiaomi").await;
    let first = app.model(&maker, "Redmi 1S", &["86452102"]).await;
    assert_eq!(found(&app, "q=redmi%201s").await, [id(&first)]);
    until_found(&other, "q=redmi%201s", &[id(&first)]).await;

    // A write in the second server, then in the first again.
    let second = other.model(&maker, "Redmi Note", &[]).await;
    patch_model(&other, id(&first), json!({"name": "Redmi 2", "tacs": []})).await;
    patch_model(&app, id(&second), json!({"tacs": ["86452102"]})).await;
    assert_eq!(found(&app, "tac=86452102").await, [id(&second)]);
    until_found(&other, "tac=86452102", &[id(&second)]).await;
    until_found(&app, "q=redmi%202", &[id(&first)]).await;
    assert_eq!(found(&app, "q=redmi%201s").await, Vec::<String>::new());
    assert_eq!(found(&other, "q=redmi%201s").await, Vec::<String>::new());
}

async fn reworded_conditions_reach_another_server_though_the_status_stays(app: TestApp) {
    let other = app.spawn_beside().await;
    let story = redmi_with_evidence(&app).await;
    let conditions = |text: &str| {
        json!([{"model_id": story.model_id, "decision": "approved_with_conditions",
                "conditions": text}])
    };
    let advisory = json!({
        "title": "Redmi 1S: only with cloud messaging off",
        "summary": "Allowed once the cloud messaging service is switched off.",
        "body": "Switch it off.",
        "severity": "medium",
        "tlp": "clear",
        "audience": {"all_personnel": true, "units": []},
        "decisions": conditions("cloud messaging off"),
        "evidence_ids": [story.evidence_id],
    });
    let advisory_id = draft(&app, &advisory).await;
    publish(&app, &advisory_id).await;
    // The status and conditions a server answers for the Redmi 1S.
    let answer_of = async |server: &TestApp| {
        let answer = lookup(server, "tac=86452102").await;
        let clearance = &answer["matches"][0]["clearance"];
        (clearance["status"].clone(), clearance["conditions"].clone())
    };
    let before = (
        json!("approved_with_conditions"),
        json!("cloud messaging off"),
    );
    assert_eq!(answer_of(&app).await, before);

    let reworded = json!({"decisions": conditions("cloud messaging and MIUI backup off")});
    amend(&app, &advisory_id, &reworded).await;
    publish(&app, &advisory_id).await;
    let after = (
        json!("approved_with_conditions"),
        json!("cloud messaging and MIUI backup off"),
    );
    assert_eq!(answer_of(&app).await, after);
    eventually("the other server", after, async || answer_of(&other).await).await;
}

async fn a_change_the_log_no_longer_holds_is_found_by_a_full_rebuild(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let model = app.model(&maker, "Redmi 1S", &[]).await;
    // Renamed behind the service's back, and the log pruned past it, as
    // after a bulk load or a long outage: only a rebuild can find it.
    app.execute_sql(&format!(
        "UPDATE models SET name = 'Redmi 2', name_key = 'redmi 2' WHERE id = '{}'; \
         UPDATE registry_generation SET generation = generation + 1, \
                                        pruned_through = generation + 1",
        id(&model)
    ))
    .unwrap();
    until_found(&app, "q=redmi%202", &[id(&model)]).await;
    assert_eq!(found(&app, "q=redmi%201s").await, Vec::<String>::new());
}
