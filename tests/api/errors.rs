//! Bad input through the HTTP API: every malformed, misfit or conflicting
//! request gets the right status and an `application/problem+json` body
//! (naming the field at fault on a 422), and writes nothing.

use clearance::auth::Role;
use clearance::domain::imei::luhn_check_digit;
use reqwest::header::{ALLOW, CONTENT_TYPE, ETAG};
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{TestApp, body, problem};

crate::backend_tests!(
    malformed_json_is_a_400,
    a_body_that_is_not_declared_json_is_a_415,
    a_body_over_256_kib_is_a_413_and_one_of_exactly_256_kib_is_read,
    a_model_that_does_not_fit_is_a_422_naming_the_field,
    a_manufacturer_that_does_not_fit_is_a_422_naming_the_field,
    an_unknown_field_is_a_422_naming_that_field,
    names_with_line_breaks_are_refused,
    a_lookup_that_is_not_one_well_formed_question_is_a_422,
    paging_parameters_out_of_range_are_422s,
    unknown_routes_methods_and_ids_are_problems,
    a_wrong_method_is_a_405_that_names_the_allowed_methods,
    a_manufacturer_name_taken_in_another_case_is_a_409,
    a_tac_claimed_by_another_model_is_a_409_naming_it,
    patching_in_a_tac_claimed_by_another_model_is_a_409_and_changes_nothing,
);

const MODELS: &str = "/api/v1/models";
const MANUFACTURERS: &str = "/api/v1/manufacturers";
/// The JSON body limit of the default configuration.
const JSON_LIMIT: usize = 256 * 1024;
/// A valid IMEI (a public reference example).
const VALID_IMEI: &str = "490154203237518";

/// How many manufacturers and models the register holds.
async fn counts(app: &TestApp) -> (usize, usize) {
    (app.count(MANUFACTURERS).await, app.count(MODELS).await)
}

/// An analyst's request with a raw body and this content type (or none).
async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    raw: Vec<u8>,
) -> Response {
    let mut request = app.request(method, path, Some(Role::Analyst)).body(raw);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    request.send().await.expect("request sent")
}

/// A resource as a reader sees it, with its ETag.
async fn read_with_etag(app: &TestApp, path: &str) -> (String, Value) {
    let response = app.get(path, Some(Role::Reader)).await;
    assert_eq!(response.status(), 200, "GET {path}");
    let etag = response.headers()[ETAG].to_str().unwrap().to_owned();
    (etag, body(response).await)
}

/// Asserts the status (showing the body and the case when it differs) and a
/// problem body; returns the problem.
async fn expect_problem(response: Response, status: u16, why: &str) -> Value {
    let actual = response.status().as_u16();
    if actual != status {
        panic!(
            "{why}: expected {status}, got {actual}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    problem(response, status).await
}

/// Asserts a 422 problem with an error on `field`.
async fn expect_invalid(response: Response, field: &str, why: &str) -> Value {
    let problem = expect_problem(response, 422, why).await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{why}: a 422 lists its errors: {problem}"))
        .iter()
        .map(|error| error["field"].as_str().expect("each error names its field"))
        .collect();
    assert!(
        fields.contains(&field),
        "{why}: expected an error on `{field}`, got {fields:?}"
    );
    problem
}

async fn malformed_json_is_a_400(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let before = counts(&app).await;
    let valid =
        json!({"manufacturer_id": maker, "name": "Redmi 1S", "category": "phone"}).to_string();
    let cases: [(String, &str); 4] = [
        (r#"{"name": "#.into(), "cut off mid-value"),
        ("not json at all".into(), "not JSON"),
        (String::new(), "an empty body"),
        (format!("{valid} {{"), "a valid object followed by more"),
    ];
    for (raw, why) in cases {
        let response = send_raw(
            &app,
            Method::POST,
            MODELS,
            Some("application/json"),
            raw.into_bytes(),
        )
        .await;
        expect_problem(response, 400, why).await;
    }
    assert_eq!(counts(&app).await, before, "nothing was written");
}

async fn a_body_that_is_not_declared_json_is_a_415(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let before = counts(&app).await;
    // The body itself is a valid model: only the declared type is wrong.
    let valid =
        json!({"manufacturer_id": maker, "name": "Redmi 1S", "category": "phone"}).to_string();
    for (content_type, why) in [
        (Some("text/plain"), "text/plain"),
        (Some("application/x-www-form-urlencoded"), "a form"),
        (None, "no Content-Type"),
    ] {
        let response = send_raw(
            &app,
            Method::POST,
            MODELS,
            content_type,
            valid.clone().into_bytes(),
        )
        .await;
        expect_problem(response, 415, why).await;
    }
    assert_eq!(counts(&app).await, before, "nothing was written");
}

async fn a_body_over_256_kib_is_a_413_and_one_of_exactly_256_kib_is_read(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let before = counts(&app).await;
    // A valid model padded with trailing white space, which JSON allows.
    let padded = |name: &str, len: usize| {
        let mut raw = json!({"manufacturer_id": maker, "name": name, "category": "phone"})
            .to_string()
            .into_bytes();
        raw.resize(len, b' ');
        raw
    };
    let response = send_raw(
        &app,
        Method::POST,
        MODELS,
        Some("application/json"),
        padded("Too Big", JSON_LIMIT + 1),
    )
    .await;
    expect_problem(response, 413, "one byte over the limit").await;
    assert_eq!(counts(&app).await, before, "nothing was written");
    let response = send_raw(
        &app,
        Method::POST,
        MODELS,
        Some("application/json"),
        padded("Just Fits", JSON_LIMIT),
    )
    .await;
    assert_eq!(
        response.status(),
        201,
        "a body of exactly the limit is read"
    );
}

async fn a_model_that_does_not_fit_is_a_422_naming_the_field(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let before = counts(&app).await;
    let model = |changes: Value| {
        let mut model = json!({"manufacturer_id": maker, "name": "Redmi 1S", "category": "phone", "tacs": ["86452102"]});
        for (field, value) in changes.as_object().unwrap() {
            if value.is_null() {
                model.as_object_mut().unwrap().remove(field);
            } else {
                model[field] = value.clone();
            }
        }
        model
    };
    let no_such_maker = uuid::Uuid::new_v4().to_string();
    // (the changes to a valid model, the field at fault, the case)
    let cases = [
        (json!({"name": null}), "name", "a missing name"),
        (json!({"category": null}), "category", "a missing category"),
        (
            json!({"manufacturer_id": null}),
            "manufacturer_id",
            "a missing manufacturer",
        ),
        (json!({"name": 5}), "name", "a number for the name"),
        (
            json!({"tacs": "86452102"}),
            "tacs",
            "a string for the list of TACs",
        ),
        (
            json!({"category": "smartphone"}),
            "category",
            "an unknown category",
        ),
        (json!({"tacs": ["8645210"]}), "tacs[0]", "a TAC of 7 digits"),
        (
            json!({"tacs": ["864521021"]}),
            "tacs[0]",
            "a TAC of 9 digits",
        ),
        (
            json!({"tacs": ["8645210A"]}),
            "tacs[0]",
            "a TAC with a letter",
        ),
        (
            json!({"tacs": ["86452102", "8645-210"]}),
            "tacs[1]",
            "a bad second TAC",
        ),
        (
            json!({"manufacturer_id": "not-a-uuid"}),
            "manufacturer_id",
            "a manufacturer id that is not a UUID",
        ),
        (
            json!({"manufacturer_id": no_such_maker}),
            "manufacturer_id",
            "the UUID of no manufacturer",
        ),
        (json!({"name": ""}), "name", "an empty name"),
        (json!({"name": "   "}), "name", "a blank name"),
        (
            json!({"name": "x".repeat(201)}),
            "name",
            "a name of 201 characters",
        ),
        (json!({"aliases": [""]}), "aliases[0]", "an empty alias"),
    ];
    for (changes, field, why) in cases {
        expect_invalid(
            app.post(MODELS, Some(Role::Analyst), &model(changes)).await,
            field,
            why,
        )
        .await;
    }
    assert_eq!(counts(&app).await, before, "nothing was written");
    // The control: the valid model the cases start from is accepted.
    assert_eq!(
        app.post(MODELS, Some(Role::Analyst), &model(json!({})))
            .await
            .status(),
        201
    );
}

async fn a_manufacturer_that_does_not_fit_is_a_422_naming_the_field(app: TestApp) {
    let cases = [
        (
            json!({"name": "Xiaomi", "country": "CHN"}),
            "country",
            "a three-letter country",
        ),
        (
            json!({"name": "Xiaomi", "country": "C1"}),
            "country",
            "a country with a digit",
        ),
        (json!({"name": "Xiaomi"}), "country", "a missing country"),
        (json!({"country": "CN"}), "name", "a missing name"),
        (
            json!({"name": "", "country": "CN"}),
            "name",
            "an empty name",
        ),
        (
            json!({"name": "Xiaomi", "country": "CN", "aliases": "小米"}),
            "aliases",
            "a string for the aliases",
        ),
    ];
    for (manufacturer, field, why) in cases {
        expect_invalid(
            app.post(MANUFACTURERS, Some(Role::Analyst), &manufacturer)
                .await,
            field,
            why,
        )
        .await;
    }
    assert_eq!(counts(&app).await, (0, 0), "nothing was written");
}

async fn an_unknown_field_is_a_422_naming_that_field(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let model = app.model(&maker, "Redmi 1S", &["86452102"]).await;
    let model_path = format!("{MODELS}/{}", model["id"].as_str().unwrap());
    let before = counts(&app).await;
    let cases = [
        (
            Method::POST,
            MANUFACTURERS,
            json!({"name": "Huawei", "country": "CN", "website": "huawei.com"}),
            "website",
            "a manufacturer with a website",
        ),
        (
            Method::POST,
            MODELS,
            json!({"manufacturer_id": maker, "name": "Redmi 2", "category": "phone", "colour": "red"}),
            "colour",
            "a model with a colour",
        ),
        (
            Method::PATCH,
            &model_path,
            json!({"name": "Redmi 1S Pro", "colour": "red"}),
            "colour",
            "a model's colour changed",
        ),
    ];
    for (method, path, payload, field, why) in cases {
        let response = app
            .request(method, path, Some(Role::Analyst))
            .json(&payload)
            .send()
            .await
            .expect("request sent");
        expect_invalid(response, field, why).await;
    }
    assert_eq!(counts(&app).await, before, "nothing was written");
    let after = body(app.get(&model_path, Some(Role::Reader)).await).await;
    assert_eq!(after, model, "the model is unchanged");
}

async fn names_with_line_breaks_are_refused(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let model = app.model(&maker, "Redmi 1S", &["86452102"]).await;
    let model_path = format!("{MODELS}/{}", model["id"].as_str().unwrap());
    let before = counts(&app).await;
    let evil = "Redmi\r\nBcc: victim@example.org";
    let cases = [
        (
            Method::POST,
            MANUFACTURERS,
            json!({"name": evil, "country": "CN"}),
            "name",
            "a manufacturer's name",
        ),
        (
            Method::POST,
            MANUFACTURERS,
            json!({"name": "Evil Corp", "country": "CN", "aliases": [evil]}),
            "aliases[0]",
            "a manufacturer's alias",
        ),
        (
            Method::POST,
            MODELS,
            json!({"manufacturer_id": maker, "name": evil, "category": "phone"}),
            "name",
            "a model's name",
        ),
        (
            Method::POST,
            MODELS,
            json!({"manufacturer_id": maker, "name": "Redmi 2", "category": "phone", "model_numbers": ["2014\n811"]}),
            "model_numbers[0]",
            "a model number",
        ),
        (
            Method::POST,
            MODELS,
            json!({"manufacturer_id": maker, "name": "Redmi 2", "category": "phone", "aliases": [evil]}),
            "aliases[0]",
            "a model's alias",
        ),
        (
            Method::PATCH,
            &model_path,
            json!({"name": evil}),
            "name",
            "a model renamed",
        ),
    ];
    for (method, path, payload, field, why) in cases {
        let response = app
            .request(method, path, Some(Role::Analyst))
            .json(&payload)
            .send()
            .await
            .expect("request sent");
        expect_invalid(response, field, why).await;
    }
    assert_eq!(counts(&app).await, before, "nothing was written");
    let after = body(app.get(&model_path, Some(Role::Reader)).await).await;
    assert_eq!(after, model, "the model is unchanged");
}

async fn a_lookup_that_is_not_one_well_formed_question_is_a_422(app: TestApp) {
    let valid_first14 = &VALID_IMEI[..14];
    assert_eq!(
        luhn_check_digit(valid_first14).to_string(),
        &VALID_IMEI[14..],
        "the fixture IMEI is valid"
    );
    let response = app
        .get(&format!("/api/v1/lookup?imei={VALID_IMEI}"), None)
        .await;
    assert_eq!(
        response.status(),
        200,
        "the valid IMEI the cases start from"
    );

    let last = VALID_IMEI[14..].parse::<u32>().unwrap();
    let wrong_check = format!("{valid_first14}{}", (last + 1) % 10);
    let fourth = VALID_IMEI[3..4].parse::<u32>().unwrap();
    let one_digit_changed = format!(
        "{}{}{}",
        &VALID_IMEI[..3],
        (fourth + 1) % 10,
        &VALID_IMEI[4..]
    );
    let cases = [
        (
            format!("imei={one_digit_changed}"),
            "imei",
            "a valid IMEI with its fourth digit changed",
        ),
        (
            format!("imei={valid_first14}"),
            "imei",
            "an IMEI of 14 digits",
        ),
        (
            "imei=49015420323751X".to_owned(),
            "imei",
            "an IMEI with a letter",
        ),
        ("tac=1234".to_owned(), "tac", "a TAC of 4 digits"),
        ("tac=864521021".to_owned(), "tac", "a TAC of 9 digits"),
        (format!("q=redmi&imei={VALID_IMEI}"), "q", "both q and imei"),
        ("q=redmi&tac=86452102".to_owned(), "q", "both q and tac"),
        (String::new(), "q", "no question at all"),
        ("q=%20%20".to_owned(), "q", "a blank q"),
    ];
    for (query, field, why) in cases {
        expect_invalid(
            app.get(&format!("/api/v1/lookup?{query}"), None).await,
            field,
            why,
        )
        .await;
    }
    let response = app
        .get(&format!("/api/v1/lookup?imei={wrong_check}"), None)
        .await;
    let problem = expect_invalid(response, "imei", "a wrong check digit").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("check digit"),
        "the detail names the check digit: {detail}"
    );
}

async fn paging_parameters_out_of_range_are_422s(app: TestApp) {
    for list in [MODELS, MANUFACTURERS] {
        for (query, field, why) in [
            ("limit=0", "limit", "a limit of 0"),
            ("limit=501", "limit", "a limit over 500"),
            ("limit=-1", "limit", "a negative limit"),
            ("limit=abc", "limit", "a limit that is not a number"),
            (
                "cursor=garbage",
                "cursor",
                "a cursor this service never returned",
            ),
        ] {
            let response = app
                .get(&format!("{list}?{query}"), Some(Role::Reader))
                .await;
            expect_invalid(response, field, &format!("{list}: {why}")).await;
        }
        for query in ["limit=1", "limit=500"] {
            let response = app
                .get(&format!("{list}?{query}"), Some(Role::Reader))
                .await;
            assert_eq!(response.status(), 200, "{list}?{query} is in range");
        }
    }
}

async fn unknown_routes_methods_and_ids_are_problems(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    app.model(&maker, "Redmi 1S", &["86452102"]).await;
    let before = counts(&app).await;
    let nobody = uuid::Uuid::new_v4();
    let cases = [
        (
            Method::GET,
            "/api/v1/nothing-here".to_owned(),
            404,
            "an unknown route",
        ),
        (
            Method::GET,
            "/nothing-here".to_owned(),
            404,
            "an unknown route outside the API",
        ),
        (
            Method::DELETE,
            MODELS.to_owned(),
            405,
            "DELETE on the models",
        ),
        (
            Method::PUT,
            format!("{MANUFACTURERS}/{maker}"),
            405,
            "PUT on a manufacturer",
        ),
        (
            Method::GET,
            format!("{MODELS}/not-a-uuid"),
            404,
            "a model id that is not a UUID",
        ),
        (
            Method::GET,
            format!("{MANUFACTURERS}/not-a-uuid"),
            404,
            "a manufacturer id that is not a UUID",
        ),
        (
            Method::GET,
            format!("{MODELS}/{nobody}"),
            404,
            "the UUID of no model",
        ),
        (
            Method::GET,
            format!("{MANUFACTURERS}/{nobody}"),
            404,
            "the UUID of no manufacturer",
        ),
    ];
    for (method, path, status, why) in cases {
        let response = app
            .request(method, &path, Some(Role::Admin))
            .send()
            .await
            .expect("request sent");
        expect_problem(response, status, why).await;
    }
    let response = app
        .patch(
            &format!("{MODELS}/{nobody}"),
            Some(Role::Analyst),
            &json!({"name": "Ghost"}),
            None,
        )
        .await;
    expect_problem(response, 404, "PATCH of the UUID of no model").await;
    assert_eq!(counts(&app).await, before, "nothing was written");
}

async fn a_wrong_method_is_a_405_that_names_the_allowed_methods(app: TestApp) {
    // RFC 9110 §15.5.6: a 405 MUST carry `Allow`.
    let response = app
        .request(Method::DELETE, MODELS, Some(Role::Admin))
        .send()
        .await
        .expect("request sent");
    let allow = response
        .headers()
        .get(ALLOW)
        .map(|v| v.to_str().unwrap().to_owned());
    expect_problem(response, 405, "DELETE on the models").await;
    let allow = allow.expect("a 405 names the allowed methods in `Allow`");
    let mut methods: Vec<&str> = allow.split(',').map(str::trim).collect();
    methods.sort_unstable();
    assert_eq!(methods, ["GET", "HEAD", "POST"], "Allow: {allow}");
}

async fn a_manufacturer_name_taken_in_another_case_is_a_409(app: TestApp) {
    app.manufacturer("Xiaomi").await;
    for (name, why) in [
        ("xiaomi", "lower case"),
        ("XIAOMI", "upper case"),
        ("  Xiaomi ", "padded with spaces"),
    ] {
        let response = app
            .post(
                MANUFACTURERS,
                Some(Role::Analyst),
                &json!({"name": name, "country": "CN"}),
            )
            .await;
        expect_problem(response, 409, why).await;
    }
    assert_eq!(app.count(MANUFACTURERS).await, 1, "still one manufacturer");
}

async fn a_tac_claimed_by_another_model_is_a_409_naming_it(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let first = app.model(&maker, "Redmi 1S", &["86452102"]).await;
    let response = app
        .post(
            MODELS,
            Some(Role::Analyst),
            &json!({"manufacturer_id": maker, "name": "Redmi 2", "category": "phone", "tacs": ["86452199", "86452102"]}),
        )
        .await;
    let problem = expect_problem(response, 409, "a TAC of the Redmi 1S").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("86452102"),
        "the detail names the TAC: {detail}"
    );
    assert_eq!(
        app.count(MODELS).await,
        1,
        "the second model was not created"
    );
    // Neither TAC of the refused model was kept.
    let answer = body(app.get("/api/v1/lookup?tac=86452102", None).await).await;
    assert_eq!(
        answer["matches"][0]["model"]["id"], first["id"],
        "the TAC stays with its model"
    );
    let answer = body(app.get("/api/v1/lookup?tac=86452199", None).await).await;
    assert_eq!(
        answer["matches"],
        json!([]),
        "the refused model's other TAC is unclaimed"
    );
}

async fn patching_in_a_tac_claimed_by_another_model_is_a_409_and_changes_nothing(app: TestApp) {
    let maker = app.manufacturer("Xiaomi").await;
    let first = app.model(&maker, "Redmi 1S", &["86452102"]).await;
    let second = app.model(&maker, "Redmi 2", &["86452199"]).await;
    let path = format!("{MODELS}/{}", second["id"].as_str().unwrap());
    let before = read_with_etag(&app, &path).await;
    let changes = json!({"name": "Redmi 2 Pro", "aliases": ["Hongmi 2"], "category": "tablet", "tacs": ["86452102"]});
    let response = app.patch(&path, Some(Role::Analyst), &changes, None).await;
    let problem = expect_problem(response, 409, "the Redmi 1S's TAC").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("86452102"),
        "the detail names the TAC: {detail}"
    );
    assert_eq!(
        read_with_etag(&app, &path).await,
        before,
        "the model and its ETag are unchanged"
    );
    let answer = body(app.get("/api/v1/lookup?tac=86452102", None).await).await;
    assert_eq!(
        answer["matches"][0]["model"]["id"], first["id"],
        "the TAC stays with its model"
    );
    let answer = body(app.get("/api/v1/lookup?tac=86452199", None).await).await;
    assert_eq!(
        answer["matches"][0]["model"]["id"], second["id"],
        "the patched model keeps its TAC"
    );
}
