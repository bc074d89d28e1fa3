//! The registry: manufacturers and models, their lists, and safe edits.

use std::collections::HashSet;

use clearance::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, body, problem};

crate::backend_tests!(
    a_registered_manufacturer_can_be_read_back,
    a_registered_model_has_a_location_an_etag_and_its_clearance,
    pagination_walks_every_model_once,
    models_are_filtered_by_text_manufacturer_category_and_status,
    a_patch_with_the_current_etag_applies,
    a_patch_with_a_stale_etag_is_refused_and_changes_nothing,
    a_patched_tac_moves_the_lookup,
    renaming_a_model_to_a_name_its_maker_uses_is_a_409,
);

async fn a_registered_manufacturer_can_be_read_back(app: TestApp) {
    let response = app
        .post(
            "/api/v1/manufacturers",
            Some(Role::Analyst),
            &json!({"name": " Xiaomi ", "country": "cn", "aliases": ["小米", "Xiaomi Inc."]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created = body(response).await;
    assert_eq!(
        location,
        format!("/api/v1/manufacturers/{}", created["id"].as_str().unwrap())
    );
    assert_eq!(created["name"], "Xiaomi", "names are trimmed");
    assert_eq!(created["country"], "CN", "country codes are upper-cased");
    assert_eq!(created["aliases"], json!(["小米", "Xiaomi Inc."]));
    let fetched = app.get(&location, Some(Role::Reader)).await;
    assert_eq!(fetched.status(), 200);
    assert!(fetched.headers().contains_key("etag"));
    assert_eq!(body(fetched).await, created);
    let list = body(app.get("/api/v1/manufacturers", Some(Role::Reader)).await).await;
    assert_eq!(list["items"], json!([created]));
    assert_eq!(list["next_cursor"], Value::Null);
}

async fn a_registered_model_has_a_location_an_etag_and_its_clearance(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let response = app
        .post(
            "/api/v1/models",
            Some(Role::Analyst),
            &json!({
                "manufacturer_id": maker, "name": "Redmi 1S", "aliases": ["Hongmi 1S", "hongmi 1s"],
                "model_numbers": ["2014011"], "category": "phone", "tacs": ["86452102"],
            }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let model = body(response).await;
    assert_eq!(
        model["aliases"],
        json!(["Hongmi 1S"]),
        "repeated aliases are kept once"
    );
    assert_eq!(model["manufacturer"]["name"], "Xiaomi");
    assert_eq!(model["tacs"], json!(["86452102"]));
    assert_eq!(model["clearance"]["status"], "unassessed");
    let fetched = app.get(&location, Some(Role::Reader)).await;
    assert_eq!(fetched.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(body(fetched).await, model);
}

async fn pagination_walks_every_model_once(app: TestApp) {
    let maker = app.manufacturer("Acme").await;
    let mut created = HashSet::new();
    for n in 0..120 {
        let model = app.model(&maker, &format!("Model {n:03}"), &[]).await;
        created.insert(model["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut url = "/api/v1/models?limit=50".to_owned();
    loop {
        let page = body(app.get(&url, Some(Role::Reader)).await).await;
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 50);
        seen.extend(items.iter().map(|m| m["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("/api/v1/models?limit=50&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 120, "no model repeated");
    assert_eq!(
        seen.iter().cloned().collect::<HashSet<_>>(),
        created,
        "no model lost"
    );
}

async fn models_are_filtered_by_text_manufacturer_category_and_status(app: TestApp) {
    let xiaomi = app.manufacturer("Xiaomi").await;
    let apple = app.manufacturer("Apple").await;
    app.model(&xiaomi, "Redmi 1S", &[]).await;
    app.model(&apple, "iPhone 5s", &[]).await;
    let pad = app
        .post(
            "/api/v1/models",
            Some(Role::Analyst),
            &json!({"manufacturer_id": xiaomi, "name": "Mi Pad", "category": "tablet", "model_numbers": ["A0101"]}),
        )
        .await;
    assert_eq!(pad.status(), 201);
    let names = |page: Value| -> Vec<String> {
        let mut names: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    for (query, expected) in [
        ("q=redmi", vec!["Redmi 1S"]),
        ("q=XIAOMI", vec!["Mi Pad", "Redmi 1S"]),
        ("q=a0101", vec!["Mi Pad"]),
        ("q=100%25", vec![]),
        (
            &format!("manufacturer_id={apple}") as &str,
            vec!["iPhone 5s"],
        ),
        ("category=tablet", vec!["Mi Pad"]),
        ("status=unassessed", vec!["Mi Pad", "Redmi 1S", "iPhone 5s"]),
        ("status=prohibited", vec![]),
    ] {
        let page = body(
            app.get(&format!("/api/v1/models?{query}"), Some(Role::Reader))
                .await,
        )
        .await;
        assert_eq!(names(page), expected, "{query}");
    }
}

async fn a_patch_with_the_current_etag_applies(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let model = app.model(&maker, "Redmi 1S", &["86452102"]).await;
    let path = format!("/api/v1/models/{}", model["id"].as_str().unwrap());
    let etag = app.get(&path, Some(Role::Reader)).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let response = app
        .patch(
            &path,
            Some(Role::Analyst),
            &json!({"aliases": ["Hongmi 1S"], "category": "other"}),
            Some(&etag),
        )
        .await;
    assert_eq!(response.status(), 200);
    let new_etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);
    let patched = body(response).await;
    assert_eq!(patched["aliases"], json!(["Hongmi 1S"]));
    assert_eq!(patched["category"], "other");
    assert_eq!(
        patched["tacs"],
        json!(["86452102"]),
        "fields not sent stay as they were"
    );
    // Without If-Match the change applies too (it is required only for drafts).
    let response = app
        .patch(
            &path,
            Some(Role::Analyst),
            &json!({"name": "Redmi 1S (2014)"}),
            None,
        )
        .await;
    assert_eq!(body(response).await["name"], "Redmi 1S (2014)");
}

async fn a_patch_with_a_stale_etag_is_refused_and_changes_nothing(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let model = app.model(&maker, "Redmi 1S", &[]).await;
    let path = format!("/api/v1/models/{}", model["id"].as_str().unwrap());
    let stale = app.get(&path, Some(Role::Reader)).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let first = app
        .patch(
            &path,
            Some(Role::Analyst),
            &json!({"aliases": ["first"]}),
            Some(&stale),
        )
        .await;
    assert_eq!(first.status(), 200);
    let second = app
        .patch(
            &path,
            Some(Role::Analyst),
            &json!({"aliases": ["second"]}),
            Some(&stale),
        )
        .await;
    problem(second, 412).await;
    let garbage = app
        .patch(
            &path,
            Some(Role::Analyst),
            &json!({"aliases": ["third"]}),
            Some("\"v-nope\""),
        )
        .await;
    problem(garbage, 412).await;
    let now = body(app.get(&path, Some(Role::Reader)).await).await;
    assert_eq!(now["aliases"], json!(["first"]));
}

async fn a_patched_tac_moves_the_lookup(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let model = app.model(&maker, "Redmi 1S", &["86452102"]).await;
    let path = format!("/api/v1/models/{}", model["id"].as_str().unwrap());
    let response = app
        .patch(
            &path,
            Some(Role::Analyst),
            &json!({"tacs": ["86452109"]}),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let old = body(app.get("/api/v1/lookup?tac=86452102", None).await).await;
    assert_eq!(old["matches"], json!([]));
    let new = body(app.get("/api/v1/lookup?tac=86452109", None).await).await;
    assert_eq!(new["matches"][0]["model"]["id"], model["id"]);
}

async fn renaming_a_model_to_a_name_its_maker_uses_is_a_409(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    app.model(&maker, "Redmi 1S", &[]).await;
    let note = app.model(&maker, "Redmi Note", &[]).await;
    let path = format!("/api/v1/models/{}", note["id"].as_str().unwrap());
    let response = app
        .patch(
            &path,
            Some(Role::Analyst),
            &json!({"name": "redmi 1s", "category": "tablet"}),
            None,
        )
        .await;
    let p = problem(response, 409).await;
    assert!(p["detail"].as_str().unwrap().contains("redmi 1s"), "{p}");
    let unchanged = body(app.get(&path, Some(Role::Reader)).await).await;
    assert_eq!(unchanged, note, "neither the name nor the category changed");
}
