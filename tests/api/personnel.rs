//! The personnel directory: admin-only CRUD, addresses unique ignoring
//! case, and the all-or-nothing CSV import.

use std::time::Instant;

use clearance::auth::Role;
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{TestApp, body, problem};

crate::backend_tests!(
    a_person_is_created_read_listed_and_patched,
    a_stale_if_match_is_a_412_and_changes_nothing,
    addresses_are_unique_ignoring_case,
    only_admins_keep_the_directory,
    invalid_fields_are_named,
    the_list_filters_by_unit_active_and_text,
    creating_a_person_is_idempotent,
    a_roster_is_imported_with_quotes_commas_and_utf8,
    an_import_updates_the_people_it_knows,
    a_roster_with_bad_lines_imports_nothing,
    a_roster_needs_its_header_the_csv_type_and_utf8,
    ten_thousand_people_import_in_one_request,
    the_same_roster_imported_twice_at_once_adds_everyone_once,
);

const PERSONNEL: &str = "/api/v1/personnel";

async fn add(app: &TestApp, person: Value) -> Response {
    app.post(PERSONNEL, Some(Role::Admin), &person).await
}

async fn import(app: &TestApp, csv: impl Into<reqwest::Body>) -> Response {
    app.request(Method::POST, "/api/v1/personnel/import", Some(Role::Admin))
        .header("Content-Type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("request sent")
}

fn people_in_directory(app: &TestApp) -> usize {
    app.query_count("SELECT COUNT(*) FROM personnel")
}

/// Every person of the directory, walking the pages as an admin.
async fn everyone(app: &TestApp, query: &str) -> Vec<Value> {
    let mut people = Vec::new();
    let mut cursor = String::new();
    loop {
        let url = format!("{PERSONNEL}?limit=500&{query}&cursor={cursor}");
        let page = body(app.get(&url, Some(Role::Admin)).await).await;
        people.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => return people,
        }
    }
}

fn etag(response: &Response) -> String {
    response.headers()["etag"].to_str().unwrap().to_owned()
}

async fn a_person_is_created_read_listed_and_patched(app: TestApp) {
    let response = add(
        &app,
        json!({"email": " Ada@Example.org ", "name": "Ada Lovelace", "unit": "North"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let first_etag = etag(&response);
    let created = body(response).await;
    assert_eq!(
        location,
        format!("{PERSONNEL}/{}", created["id"].as_str().unwrap())
    );
    assert_eq!(
        created["email"], "Ada@Example.org",
        "trimmed, spelling kept"
    );
    assert_eq!(created["unit"], "North");
    assert_eq!(created["active"], true, "active unless said otherwise");

    let fetched = app.get(&location, Some(Role::Admin)).await;
    assert_eq!(etag(&fetched), first_etag);
    assert_eq!(body(fetched).await, created);
    assert_eq!(everyone(&app, "").await, vec![created.clone()]);

    let patched = app
        .patch(
            &location,
            Some(Role::Admin),
            &json!({"name": "Augusta Ada King", "unit": null, "active": false}),
            Some(&first_etag),
        )
        .await;
    assert_eq!(patched.status(), 200);
    assert_ne!(etag(&patched), first_etag);
    let patched = body(patched).await;
    assert_eq!(patched["name"], "Augusta Ada King");
    assert_eq!(patched["unit"], Value::Null, "null clears the unit");
    assert_eq!(patched["active"], false);
    assert_eq!(patched["email"], "Ada@Example.org", "absent fields stay");

    // Without If-Match the change applies to whatever is current.
    let renamed = app
        .patch(
            &location,
            Some(Role::Admin),
            &json!({"email": "ada@example.net"}),
            None,
        )
        .await;
    assert_eq!(body(renamed).await["email"], "ada@example.net");

    let unknown = format!("{PERSONNEL}/{}", uuid::Uuid::now_v7());
    problem(app.get(&unknown, Some(Role::Admin)).await, 404).await;

    let audit = body(
        app.get(
            &format!(
                "/api/v1/audit?entity=personnel&entity_id={}",
                created["id"].as_str().unwrap()
            ),
            Some(Role::Admin),
        )
        .await,
    )
    .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["personnel.create", "personnel.update", "personnel.update"]
    );
}

async fn a_stale_if_match_is_a_412_and_changes_nothing(app: TestApp) {
    let response = add(&app, json!({"email": "bob@example.org", "name": "Bob"})).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let stale = etag(&response);
    let current = app
        .patch(
            &location,
            Some(Role::Admin),
            &json!({"unit": "South"}),
            Some(&stale),
        )
        .await;
    assert_eq!(current.status(), 200);
    let refused = app
        .patch(
            &location,
            Some(Role::Admin),
            &json!({"name": "Robert"}),
            Some(&stale),
        )
        .await;
    problem(refused, 412).await;
    let person = body(app.get(&location, Some(Role::Admin)).await).await;
    assert_eq!(person["name"], "Bob");
    assert_eq!(person["unit"], "South");
}

async fn addresses_are_unique_ignoring_case(app: TestApp) {
    assert_eq!(
        add(&app, json!({"email": "ada@example.org", "name": "Ada"}))
            .await
            .status(),
        201
    );
    let again = add(
        &app,
        json!({"email": "ADA@Example.ORG", "name": "Other Ada"}),
    )
    .await;
    let refused = problem(again, 409).await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("ADA@Example.ORG"),
        "{refused}"
    );

    let bob = add(&app, json!({"email": "bob@example.org", "name": "Bob"})).await;
    let bob = body(bob).await;
    let taking = app
        .patch(
            &format!("{PERSONNEL}/{}", bob["id"].as_str().unwrap()),
            Some(Role::Admin),
            &json!({"email": "Ada@example.org"}),
            None,
        )
        .await;
    problem(taking, 409).await;
    assert_eq!(people_in_directory(&app), 2);
}

async fn only_admins_keep_the_directory(app: TestApp) {
    let person = json!({"email": "ada@example.org", "name": "Ada"});
    for role in [Role::Reader, Role::Analyst, Role::Approver] {
        problem(app.post(PERSONNEL, Some(role), &person).await, 403).await;
        problem(app.get(PERSONNEL, Some(role)).await, 403).await;
        let import = app
            .request(Method::POST, "/api/v1/personnel/import", Some(role))
            .header("Content-Type", "text/csv")
            .body("email,name,unit\nada@example.org,Ada,\n")
            .send()
            .await
            .unwrap();
        problem(import, 403).await;
    }
    problem(app.post(PERSONNEL, None, &person).await, 401).await;
    problem(app.get(PERSONNEL, None).await, 401).await;
    let created = body(add(&app, person).await).await;
    let one = format!("{PERSONNEL}/{}", created["id"].as_str().unwrap());
    problem(app.get(&one, Some(Role::Analyst)).await, 403).await;
    problem(
        app.patch(&one, Some(Role::Analyst), &json!({"active": false}), None)
            .await,
        403,
    )
    .await;
    problem(app.get(&one, None).await, 401).await;
    assert_eq!(people_in_directory(&app), 1);
}

async fn invalid_fields_are_named(app: TestApp) {
    for (person, field) in [
        (json!({"email": "not an address", "name": "Ada"}), "email"),
        (json!({"email": "ada@localhost", "name": "Ada"}), "email"),
        (json!({"email": "ada@example.org", "name": "  "}), "name"),
        (
            json!({"email": "ada@example.org", "name": "Ada\nBcc: x"}),
            "name",
        ),
        (json!({"name": "Ada"}), "email"),
        (
            json!({"email": "ada@example.org", "name": "Ada", "role": "x"}),
            "role",
        ),
    ] {
        let refused = problem(add(&app, person.clone()).await, 422).await;
        assert_eq!(refused["errors"][0]["field"], field, "{person}");
    }
    assert_eq!(people_in_directory(&app), 0);
}

async fn the_list_filters_by_unit_active_and_text(app: TestApp) {
    for (email, name, unit, active) in [
        ("ada@example.org", "Ada Lovelace", "North", true),
        ("bob@example.org", "Bob Byte", "North", false),
        ("cyd@example.org", "Cyd Charisse", "South", true),
    ] {
        let response = add(
            &app,
            json!({"email": email, "name": name, "unit": unit, "active": active}),
        )
        .await;
        assert_eq!(response.status(), 201);
    }
    let names = |people: Vec<Value>| -> Vec<String> {
        people
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(everyone(&app, "unit=North").await),
        ["Ada Lovelace", "Bob Byte"]
    );
    assert_eq!(names(everyone(&app, "active=false").await), ["Bob Byte"]);
    assert_eq!(
        names(everyone(&app, "unit=North&active=true").await),
        ["Ada Lovelace"]
    );
    assert_eq!(names(everyone(&app, "q=LOVE").await), ["Ada Lovelace"]);
    assert_eq!(names(everyone(&app, "q=cyd%40").await), ["Cyd Charisse"]);
    assert_eq!(
        names(everyone(&app, "q=100%25").await),
        Vec::<String>::new()
    );
    // Surrounding spaces are not part of the search; a blank one is none.
    assert_eq!(
        names(everyone(&app, "q=%20love%20").await),
        ["Ada Lovelace"]
    );
    assert_eq!(
        names(everyone(&app, "q=%20%20&unit=%20North").await),
        ["Ada Lovelace", "Bob Byte"]
    );
    let refused = app
        .get(&format!("{PERSONNEL}?active=maybe"), Some(Role::Admin))
        .await;
    assert_eq!(problem(refused, 422).await["errors"][0]["field"], "active");

    let first = body(
        app.get(&format!("{PERSONNEL}?limit=2"), Some(Role::Admin))
            .await,
    )
    .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = body(
        app.get(
            &format!("{PERSONNEL}?limit=2&cursor={cursor}"),
            Some(Role::Admin),
        )
        .await,
    )
    .await;
    assert_eq!(
        names(second["items"].as_array().unwrap().clone()),
        ["Cyd Charisse"]
    );
    assert_eq!(second["next_cursor"], Value::Null);
}

async fn creating_a_person_is_idempotent(app: TestApp) {
    let send = || {
        app.request(Method::POST, PERSONNEL, Some(Role::Admin))
            .header("Idempotency-Key", "person-1")
            .json(&json!({"email": "ada@example.org", "name": "Ada"}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first = body(first).await;
    let second = send().await.unwrap();
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(body(second).await, first);
    assert_eq!(people_in_directory(&app), 1);
}

async fn a_roster_is_imported_with_quotes_commas_and_utf8(app: TestApp) {
    let csv = "email,name,unit\r\n\
               ada@example.org,\"Lovelace, Ada\",\"Unit 1, North\"\r\n\
               zoe@example.org,Zoë Ångström,\r\n\
               li@example.org,李小龍,\"The \"\"Dragons\"\"\"\r\n";
    let response = import(&app, csv).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        body(response).await,
        json!({"created": 3, "updated": 0, "unchanged": 0, "total": 3})
    );
    let people = everyone(&app, "").await;
    let find = |email: &str| {
        people
            .iter()
            .find(|p| p["email"] == email)
            .unwrap_or_else(|| panic!("{email} imported"))
            .clone()
    };
    assert_eq!(find("ada@example.org")["name"], "Lovelace, Ada");
    assert_eq!(find("ada@example.org")["unit"], "Unit 1, North");
    assert_eq!(find("zoe@example.org")["name"], "Zoë Ångström");
    assert_eq!(find("zoe@example.org")["unit"], Value::Null);
    assert_eq!(find("li@example.org")["name"], "李小龍");
    assert_eq!(find("li@example.org")["unit"], "The \"Dragons\"");
    assert!(people.iter().all(|p| p["active"] == true));

    let again = import(&app, csv).await;
    assert_eq!(
        body(again).await,
        json!({"created": 0, "updated": 0, "unchanged": 3, "total": 3}),
        "importing the same roster twice changes nothing"
    );
    let audit = body(
        app.get("/api/v1/audit?entity=personnel", Some(Role::Admin))
            .await,
    )
    .await;
    let imports: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["action"] == "personnel.import")
        .collect();
    assert_eq!(imports.len(), 2, "one summary row per import: {audit}");
    assert_eq!(imports[0]["payload"]["created"], 3);
    assert_eq!(imports[0]["actor"], "admin-1");
}

async fn an_import_updates_the_people_it_knows(app: TestApp) {
    let ada = add(
        &app,
        json!({"email": "Ada@Example.org", "name": "Ada", "unit": "Old", "active": false}),
    )
    .await;
    let ada_location = ada.headers()["location"].to_str().unwrap().to_owned();
    let ada_etag = etag(&ada);
    let bob = add(
        &app,
        json!({"email": "bob@example.org", "name": "Bob", "unit": "South"}),
    )
    .await;
    let bob_location = bob.headers()["location"].to_str().unwrap().to_owned();
    let bob_etag = etag(&bob);

    let csv = "email,name,unit\n\
               ADA@example.org,Ada Lovelace,North\n\
               bob@example.org,Bob,South\n\
               cyd@example.org,Cyd,\n";
    let summary = body(import(&app, csv).await).await;
    assert_eq!(
        summary,
        json!({"created": 1, "updated": 1, "unchanged": 1, "total": 3})
    );
    let ada = app.get(&ada_location, Some(Role::Admin)).await;
    assert_ne!(etag(&ada), ada_etag, "a changed person has a new version");
    let ada = body(ada).await;
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(ada["unit"], "North");
    assert_eq!(ada["active"], true, "an imported person is active");
    assert_eq!(
        ada["email"], "Ada@Example.org",
        "matched by address ignoring case"
    );
    let bob = app.get(&bob_location, Some(Role::Admin)).await;
    assert_eq!(
        etag(&bob),
        bob_etag,
        "an unchanged person keeps their version"
    );
    assert_eq!(people_in_directory(&app), 3);
}

async fn a_roster_with_bad_lines_imports_nothing(app: TestApp) {
    add(
        &app,
        json!({"email": "keep@example.org", "name": "Keep", "unit": "Old"}),
    )
    .await;
    let csv = "email,name,unit\n\
               one@example.org,One,\n\
               not-an-address,Two,\n\
               three@example.org,Three,\n\
               four@example.org,Four,\n\
               keep@example.org,Changed,New\n\
               four@EXAMPLE.org,,\n\
               eight@example.org,Eight,\n";
    let refused = problem(import(&app, csv).await, 422).await;
    let errors = refused["errors"].as_array().unwrap();
    let lines: Vec<&str> = errors
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["line 3", "line 7"], "{refused}");
    assert!(errors[0]["message"].as_str().unwrap().starts_with("email:"));
    let seventh = errors[1]["message"].as_str().unwrap();
    assert!(seventh.starts_with("name:"), "{seventh}");
    assert_eq!(people_in_directory(&app), 1, "nothing imported");
    let kept = everyone(&app, "").await;
    assert_eq!(kept[0]["name"], "Keep", "nothing updated either");

    let wrong_count = "email,name,unit\nok@example.org,Ok,\nshort@example.org\n";
    let refused = problem(import(&app, wrong_count).await, 422).await;
    assert_eq!(refused["errors"][0]["field"], "line 3");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("has 1 fields")
    );
    let duplicate = "email,name,unit\nok@example.org,Ok,\nOK@example.org,Again,\n";
    let refused = problem(import(&app, duplicate).await, 422).await;
    assert_eq!(
        refused["errors"],
        json!([{"field": "line 3", "message": "repeats the address of line 2"}])
    );
    assert_eq!(people_in_directory(&app), 1);
}

async fn a_roster_needs_its_header_the_csv_type_and_utf8(app: TestApp) {
    let no_header = problem(import(&app, "ada@example.org,Ada,North\n").await, 422).await;
    assert_eq!(no_header["errors"][0]["field"], "line 1");
    let empty = problem(import(&app, "").await, 422).await;
    assert_eq!(empty["errors"][0]["field"], "line 1");

    let as_json = app
        .request(Method::POST, "/api/v1/personnel/import", Some(Role::Admin))
        .header("Content-Type", "application/json")
        .body("email,name,unit\nada@example.org,Ada,\n")
        .send()
        .await
        .unwrap();
    problem(as_json, 415).await;
    let latin1 = app
        .request(Method::POST, "/api/v1/personnel/import", Some(Role::Admin))
        .header("Content-Type", "text/csv; charset=iso-8859-1")
        .body("email,name,unit\nada@example.org,Ada,\n")
        .send()
        .await
        .unwrap();
    problem(latin1, 415).await;
    let utf8 = app
        .request(Method::POST, "/api/v1/personnel/import", Some(Role::Admin))
        .header("Content-Type", "text/csv; charset=UTF-8")
        .body("email,name,unit\nada@example.org,Ada,\n")
        .send()
        .await
        .unwrap();
    assert_eq!(utf8.status(), 200);

    let not_utf8 = b"email,name,unit\nzoe@example.org,Zo\xeb,\n".to_vec();
    let refused = problem(import(&app, not_utf8).await, 422).await;
    assert_eq!(refused["errors"][0]["field"], "line 2");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("UTF-8")
    );
    assert_eq!(people_in_directory(&app), 1);
}

async fn ten_thousand_people_import_in_one_request(app: TestApp) {
    add(
        &app,
        json!({"email": "person-00042@example.org", "name": "Before"}),
    )
    .await;
    let mut csv = String::from("email,name,unit\n");
    for n in 0..10_000 {
        csv.push_str(&format!(
            "person-{n:05}@example.org,\"Person {n}, Officer\",Unit {}\n",
            n % 50
        ));
    }
    let started = Instant::now();
    let response = import(&app, csv).await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 200);
    eprintln!(
        "imported 10,000 people on {:?} in {:.2} s",
        app.backend(),
        elapsed.as_secs_f64()
    );
    assert_eq!(
        body(response).await,
        json!({"created": 9_999, "updated": 1, "unchanged": 0, "total": 10_000})
    );
    assert_eq!(people_in_directory(&app), 10_000);
    let unit_7 = app.query_count("SELECT COUNT(*) FROM personnel WHERE unit = 'Unit 7'");
    assert_eq!(unit_7, 200);
}

/// Two admins send the same new roster at the same moment: each person is
/// added once, and an import that lost the race is refused naming an
/// address (never a 500), or finds everyone already there.
async fn the_same_roster_imported_twice_at_once_adds_everyone_once(app: TestApp) {
    let mut csv = String::from("email,name,unit\n");
    for n in 0..5_000 {
        csv.push_str(&format!("twice-{n:05}@example.org,Person {n},Unit 1\n"));
    }
    let (first, second) = tokio::join!(import(&app, csv.clone()), import(&app, csv));
    let mut created = 0;
    for response in [first, second] {
        match response.status().as_u16() {
            200 => created += body(response).await["created"].as_u64().unwrap(),
            409 => {
                let refused = problem(response, 409).await;
                let detail = refused["detail"].as_str().unwrap();
                assert!(detail.contains("@example.org"), "{detail}");
            }
            status => panic!(
                "an import answered {status}: {}",
                response.text().await.unwrap()
            ),
        }
    }
    assert_eq!(created, 5_000);
    assert_eq!(people_in_directory(&app), 5_000);
}
