//! The models CSV: export (streamed, filtered), import (all or nothing,
//! every bad line named), and the round trip export → import into an empty
//! database → export giving the same file.

use clearance::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{TestApp, body, problem};
use crate::workflow::{draft, prohibition, publish, redmi_with_evidence};

const HEADER: &str = "manufacturer,manufacturer_country,name,model_numbers,aliases,tacs,category,clearance_status,reference\r\n";

async fn export(app: &TestApp, query: &str) -> String {
    let response = app
        .get(&format!("/api/v1/models.csv{query}"), Some(Role::Reader))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    response.text().await.unwrap()
}

async fn import(app: &TestApp, role: Role, csv: &str) -> reqwest::Response {
    app.request(Method::POST, "/api/v1/models/import", Some(role))
        .header("Content-Type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .expect("request sent")
}

async fn maker(app: &TestApp, name: &str, country: &str) -> String {
    let response = app
        .post(
            "/api/v1/manufacturers",
            Some(Role::Analyst),
            &json!({"name": name, "country": country, "aliases": []}),
        )
        .await;
    assert_eq!(response.status(), 201);
    body(response).await["id"].as_str().unwrap().to_owned()
}

async fn model(app: &TestApp, spec: Value) {
    let response = app.post("/api/v1/models", Some(Role::Analyst), &spec).await;
    assert_eq!(response.status(), 201, "{}", body(response).await);
}

async fn models_in(app: &TestApp) -> usize {
    app.count("/api/v1/models").await
}

async fn export_import_export_gives_the_same_file(app: TestApp) {
    let xiaomi = maker(&app, "小米", "CN").await;
    let acme = maker(&app, "Acme, \"Quoted\" Inc.", "US").await;
    model(
        &app,
        json!({"manufacturer_id": xiaomi, "name": "Redmi 1S, \"dual\"", "category": "phone",
               "model_numbers": ["2014011", "HM|1SW", "back\\slash"], "aliases": ["红米 1S"],
               "tacs": ["86452102", "86452103"]}),
    )
    .await;
    model(
        &app,
        json!({"manufacturer_id": acme, "name": "Router; with \u{e9}", "category": "router"}),
    )
    .await;
    model(
        &app,
        json!({"manufacturer_id": xiaomi, "name": "Mi Band", "category": "wearable", "tacs": ["35000001"]}),
    )
    .await;
    let original = export(&app, "").await;
    assert!(original.starts_with(HEADER), "{original}");
    assert_eq!(original.lines().count(), 4, "{original}");
    assert!(original.contains("小米,CN,\"Redmi 1S, \"\"dual\"\"\",2014011|HM\\|1SW|back\\\\slash,红米 1S,86452102|86452103,phone,unassessed,\r\n"), "{original}");

    let empty = TestApp::spawn(app.backend()).await;
    let imported = import(&empty, Role::Analyst, &original).await;
    assert_eq!(imported.status(), 200);
    assert_eq!(
        body(imported).await,
        json!({"created": 3, "updated": 0, "unchanged": 0, "total": 3})
    );
    assert_eq!(export(&empty, "").await, original);

    let again = import(&empty, Role::Analyst, &original).await;
    assert_eq!(
        body(again).await,
        json!({"created": 0, "updated": 0, "unchanged": 3, "total": 3})
    );
    let changed = original.replace(",wearable,", ",other,");
    let updated = import(&empty, Role::Analyst, &changed).await;
    assert_eq!(
        body(updated).await,
        json!({"created": 0, "updated": 1, "unchanged": 2, "total": 3})
    );
    assert_eq!(export(&empty, "").await, changed);
    assert!(
        empty.query_count("SELECT COUNT(*) FROM audit_log WHERE action = 'model.import'") == 3,
        "one audit row per import"
    );
}

/// A spreadsheet opening the export runs no formula (OWASP CSV injection),
/// and the import gives back exactly the names that were registered.
async fn formula_cells_are_exported_as_text_and_imported_back_unchanged(app: TestApp) {
    let maker_id = maker(&app, "=cmd|' /C calc'!A0", "CN").await;
    model(
        &app,
        json!({"manufacturer_id": maker_id, "name": "=HYPERLINK(\"http://evil.example\",\"update\")",
               "category": "phone", "model_numbers": ["+1+1", "A1"], "aliases": ["-Mini", "@SUM(A1)"]}),
    )
    .await;
    model(
        &app,
        json!({"manufacturer_id": maker_id, "name": "-2+3", "category": "phone", "aliases": ["'=quoted"]}),
    )
    .await;
    let original = export(&app, "").await;
    assert!(
        original.contains(
            "'=cmd|' /C calc'!A0,CN,\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"update\"\")\",'+1+1|A1,'-Mini|@SUM(A1),,phone,"
        ),
        "{original}"
    );
    assert!(original.contains(",'-2+3,,''=quoted,,phone,"), "{original}");
    for line in original.lines().skip(1) {
        for cell in line.split(',') {
            assert!(
                !cell
                    .trim_start_matches('"')
                    .starts_with(['=', '+', '-', '@']),
                "a formula cell in {line}"
            );
        }
    }

    let empty = TestApp::spawn(app.backend()).await;
    let imported = import(&empty, Role::Analyst, &original).await;
    assert_eq!(imported.status(), 200);
    let names: Vec<String> =
        body(empty.get("/api/v1/models", Some(Role::Reader)).await).await["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect();
    assert_eq!(
        names,
        ["=HYPERLINK(\"http://evil.example\",\"update\")", "-2+3"]
    );
    assert_eq!(export(&empty, "").await, original);
}

async fn every_bad_line_is_named_and_nothing_is_imported(app: TestApp) {
    let xiaomi = app.manufacturer("Xiaomi").await;
    app.model(&xiaomi, "Redmi 1S", &["86452102"]).await;
    let csv = format!(
        "{HEADER}\
         Xiaomi,,Redmi 2,,,11111111,phone,,\n\
         Xiaomi,,Redmi 3,,,1234567X,phone,,\n\
         Newco,DE,Widget,,,22222222,iot,,\n\
         Xiaomi,,Redmi 4,,,,phone,,\n\
         Xiaomi,,Redmi 5,,,,tablet,,\n\
         Xiaomi,,Redmi 6,,,,smartphone,,\n"
    );
    let answer = problem(import(&app, Role::Analyst, &csv).await, 422).await;
    let fields: Vec<&str> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["line 3", "line 7"], "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("tacs:")
    );
    assert!(
        answer["errors"][1]["message"]
            .as_str()
            .unwrap()
            .contains("category:")
    );
    assert_eq!(models_in(&app).await, 1, "nothing was imported");
    assert_eq!(app.count("/api/v1/manufacturers").await, 1);

    // Checked against the register too: a TAC another model holds, a new
    // manufacturer without a country, repeats within the file.
    let csv = format!(
        "{HEADER}\
         Xiaomi,,Redmi 2,,,86452102,phone,,\n\
         Newco,,Widget,,,,iot,,\n\
         Xiaomi,,Redmi 1S,,,,phone,,\n\
         xiaomi,, redmi 1s ,,,,phone,,\n"
    );
    let answer = problem(import(&app, Role::Analyst, &csv).await, 422).await;
    let errors = answer["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "file errors come first: {answer}");
    assert_eq!(errors[0]["field"], "line 5");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("repeats the model of line 4")
    );
    let csv = format!(
        "{HEADER}\
         Xiaomi,,Redmi 2,,,86452102,phone,,\n\
         Newco,,Widget,,,,iot,,\n\
         Xiaomi,,Redmi 1S,,,,phone,,\n"
    );
    let answer = problem(import(&app, Role::Analyst, &csv).await, 422).await;
    let errors = answer["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{answer}");
    assert_eq!(errors[0]["field"], "line 2", "{answer}");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("already claimed by `Xiaomi Redmi 1S`")
    );
    assert_eq!(errors[1]["field"], "line 3");
    assert!(
        errors[1]["message"]
            .as_str()
            .unwrap()
            .contains("manufacturer_country")
    );
    let redmi = body(
        app.get("/api/v1/models?q=Redmi%201S", Some(Role::Reader))
            .await,
    )
    .await;
    assert_eq!(redmi["items"][0]["tacs"], json!(["86452102"]), "unchanged");
}

async fn the_status_filter_exports_only_those_models(app: TestApp) {
    let story = redmi_with_evidence(&app).await;
    let xiaomi = body(
        app.get(
            &format!("/api/v1/models/{}", story.model_id),
            Some(Role::Reader),
        )
        .await,
    )
    .await["manufacturer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.model(&xiaomi, "Mi 4", &["86000001"]).await;
    let published = publish(&app, &draft(&app, &prohibition(&story)).await).await;
    let reference = published["reference"].as_str().unwrap();

    let prohibited = export(&app, "?status=prohibited").await;
    assert_eq!(
        prohibited,
        format!("{HEADER}Xiaomi,CN,Redmi 1S,,,86452102,phone,prohibited,{reference}\r\n")
    );
    assert_eq!(export(&app, "").await.lines().count(), 3);
    problem(
        app.get("/api/v1/models.csv?status=banned", Some(Role::Reader))
            .await,
        422,
    )
    .await;
}

async fn readers_export_analysts_import(app: TestApp) {
    problem(app.get("/api/v1/models.csv", None).await, 401).await;
    assert_eq!(export(&app, "").await, HEADER);
    let csv = format!("{HEADER}Xiaomi,CN,Redmi 1S,,,,phone,,\n");
    problem(import(&app, Role::Reader, &csv).await, 403).await;
    let as_json = app
        .request(Method::POST, "/api/v1/models/import", Some(Role::Analyst))
        .header("Content-Type", "application/json")
        .body(csv.clone())
        .send()
        .await
        .unwrap();
    problem(as_json, 415).await;
    assert_eq!(import(&app, Role::Analyst, &csv).await.status(), 200);
    assert_eq!(models_in(&app).await, 1);
}

/// Many models come out whole, across the export's pages.
async fn a_large_export_spans_pages(app: TestApp) {
    let mut csv = String::from(HEADER);
    for n in 0..1203 {
        csv.push_str(&format!(
            "Bulk,FI,Model {n:04},,,{:08},iot,,\r\n",
            10_000_000 + n
        ));
    }
    let imported = import(&app, Role::Analyst, &csv).await;
    assert_eq!(imported.status(), 200);
    let exported = export(&app, "").await;
    assert_eq!(exported, csv.replace(",iot,,\r\n", ",iot,unassessed,\r\n"));
}

backend_tests!(
    export_import_export_gives_the_same_file,
    formula_cells_are_exported_as_text_and_imported_back_unchanged,
    every_bad_line_is_named_and_nothing_is_imported,
    the_status_filter_exports_only_those_models,
    readers_export_analysts_import,
    a_large_export_spans_pages,
);
