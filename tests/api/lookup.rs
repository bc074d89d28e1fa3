//! The lookup: may I use this phone? — by name, alias, model number, TAC,
//! IMEI and IMEISV.

use clearance::domain::imei::luhn_check_digit;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, body, page, problem};

crate::backend_tests!(
    a_phone_is_found_by_name_alias_and_model_number,
    a_phone_is_found_by_tac_imei_and_imeisv,
    an_unknown_tac_or_imei_answers_no_match,
    an_imei_with_a_wrong_check_digit_is_refused_not_missed,
    a_name_longer_than_any_is_refused_at_once,
    a_model_that_only_resembles_the_name_asked_is_flagged,
    an_answer_cut_at_its_limit_says_more_match,
    a_model_registered_a_moment_ago_is_found_at_once,
    the_best_match_comes_first,
    lookup_answers_the_derived_clearance,
);

fn imei(tac: &str, serial: &str) -> String {
    let first14 = format!("{tac}{serial}");
    format!("{first14}{}", luhn_check_digit(&first14))
}

async fn redmi(app: &TestApp) -> Value {
    let xiaomi = app.manufacturer("Xiaomi").await;
    let response = app
        .post(
            "/api/v1/models",
            Some(clearance::auth::Role::Analyst),
            &json!({
                "manufacturer_id": xiaomi,
                "name": "Redmi 1S",
                "aliases": ["Hongmi 1S"],
                "model_numbers": ["2014011", "HM 1SW"],
                "category": "phone",
                "tacs": ["86452102", "86452103"],
            }),
        )
        .await;
    assert_eq!(response.status(), 201);
    app.model(&xiaomi, "Redmi Note", &["86228802"]).await;
    body(response).await
}

async fn lookup(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/lookup?{query}"), None).await;
    assert_eq!(response.status(), 200, "lookup {query}");
    body(response).await
}

fn match_names(answer: &Value) -> Vec<String> {
    answer["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"]["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_phone_is_found_by_name_alias_and_model_number(app: TestApp) {
    let redmi = redmi(&app).await;
    for (query, why) in [
        ("q=redmi%201s", "its name"),
        ("q=REDMI-1S", "its name in another case and spelling"),
        ("q=hongmi%201s", "its alias"),
        ("q=2014011", "a model number"),
        ("q=HM%201SW", "another model number"),
        ("q=xiaomi%20redmi%201s", "manufacturer and name"),
    ] {
        let answer = lookup(&app, query).await;
        assert_eq!(
            answer["matches"][0]["model"]["id"], redmi["id"],
            "found by {why}"
        );
        assert_eq!(
            answer["matches"][0]["model"]["manufacturer"]["name"],
            "Xiaomi"
        );
        assert_eq!(answer["query"]["kind"], "text");
    }
}

async fn a_phone_is_found_by_tac_imei_and_imeisv(app: TestApp) {
    let redmi = redmi(&app).await;
    let full = imei("86452103", "765432");
    let spaced = format!("{} {} {}", &full[..2], &full[2..8], &full[8..]);
    for (query, kind) in [
        ("tac=86452102".to_owned(), "tac"),
        (format!("imei={}", imei("86452102", "123456")), "imei"),
        (format!("imei={}", spaced.replace(' ', "%20")), "imei"),
        ("imei=8645210212345678".to_owned(), "imei"),
    ] {
        let answer = lookup(&app, &query).await;
        assert_eq!(match_names(&answer), vec!["Redmi 1S"], "{query}");
        assert_eq!(answer["matches"][0]["model"]["id"], redmi["id"]);
        assert_eq!(answer["query"]["kind"], kind);
    }
    let answer = lookup(&app, &format!("imei={}", imei("86452103", "765432"))).await;
    assert_eq!(answer["query"]["tac"], "86452103");
}

async fn an_unknown_tac_or_imei_answers_no_match(app: TestApp) {
    redmi(&app).await;
    for query in [
        "tac=99999999".to_owned(),
        format!("imei={}", imei("99999999", "000001")),
    ] {
        let answer = lookup(&app, &query).await;
        assert_eq!(answer["matches"], json!([]), "{query}");
        // The same words as the lookup page: no model, so nobody decided.
        assert_eq!(
            answer["message"],
            "This phone is not in the register — it has not been assessed. \
             Ask your security office before you use it.",
            "{query}"
        );
    }
    let by_name = lookup(&app, "q=nokia%203310").await;
    assert_eq!(by_name["matches"], json!([]));
    assert_eq!(
        by_name["message"],
        "No phone called “nokia 3310” is registered. Check the spelling, or try the IMEI."
    );
    // A registered model's IMEI asked for as a name: not a silent miss.
    let imei_as_name = imei("86452102", "123456");
    let as_name = lookup(&app, &format!("q={imei_as_name}")).await;
    assert_eq!(as_name["matches"], json!([]));
    assert_eq!(
        as_name["message"],
        format!(
            "No phone has the name or model number “{imei_as_name}”. \
             If it is a TAC or an IMEI, ask for it as one."
        )
    );
    let found = lookup(&app, &format!("imei={}", imei("86452102", "123456"))).await;
    assert_eq!(found["message"], json!(null), "a match needs no message");
}

async fn an_imei_with_a_wrong_check_digit_is_refused_not_missed(app: TestApp) {
    redmi(&app).await;
    let good = imei("86452102", "123456");
    let last = good.chars().last().unwrap().to_digit(10).unwrap();
    let bad_check = format!("{}{}", &good[..14], (last + 1) % 10);
    let p = problem(
        app.get(&format!("/api/v1/lookup?imei={bad_check}"), None)
            .await,
        422,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("check digit"), "{p}");
    assert_eq!(p["errors"][0]["field"], "imei");
    // A valid IMEI with one digit changed is refused, whichever digit.
    for position in 0..14 {
        let mut digits: Vec<char> = good.chars().collect();
        let d = digits[position].to_digit(10).unwrap();
        digits[position] = char::from_digit((d + 3) % 10, 10).unwrap();
        let changed: String = digits.into_iter().collect();
        let response = app
            .get(&format!("/api/v1/lookup?imei={changed}"), None)
            .await;
        assert_eq!(
            response.status(),
            422,
            "digit {position} changed: {changed}"
        );
    }
}

/// A public endpoint: a name of tens of thousands of characters costs
/// nothing but a 422, on the API and on the page.
async fn a_name_longer_than_any_is_refused_at_once(app: TestApp) {
    redmi(&app).await;
    let long = "redmi-".repeat(10_000);
    let p = problem(
        app.get(&format!("/api/v1/lookup?q={long}"), None).await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "q", "{p}");
    let message = p["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("at most 401 characters"), "{p}");
    let page = app
        .request(Method::GET, &format!("/lookup?q={long}"), None)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 422);
    let page = page.text().await.unwrap();
    assert!(page.contains("at most 401 characters"), "{page}");
    // The longest name that could be registered is still asked.
    let longest = "x".repeat(401);
    let answer = lookup(&app, &format!("q={longest}")).await;
    assert_eq!(answer["matches"], json!([]));
}

/// "iphone 5" finds the iPhone 5s, a different phone: the answer says the
/// name was not found exactly, on the API and on the page.
async fn a_model_that_only_resembles_the_name_asked_is_flagged(app: TestApp) {
    let apple = app.manufacturer("Apple").await;
    app.model(&apple, "iPhone 5s", &["35203506"]).await;
    let near = lookup(&app, "q=iphone%205").await;
    assert_eq!(near["matches"][0]["matched_by"], "name_start");
    let warning = "No model is called exactly “iphone 5”: check that the model below is yours.";
    assert_eq!(near["message"], warning);
    let exact = lookup(&app, "q=iphone%205s").await;
    assert_eq!(exact["matches"][0]["matched_by"], "name");
    assert_eq!(exact["message"], Value::Null);
    let by_tac = lookup(&app, "tac=35203506").await;
    assert_eq!(by_tac["matches"][0]["matched_by"], "number");
    let (_, _, page) = page(&app, "/lookup", &[("q", "iphone 5")]).await;
    assert!(page.contains(warning), "{page}");
}

/// Twenty-one models called "Bulk …": the page shows twenty and says more
/// match; the API says so at any limit below what matches.
async fn an_answer_cut_at_its_limit_says_more_match(app: TestApp) {
    let maker = app.manufacturer("Acme").await;
    for n in 1..=21 {
        app.model(&maker, &format!("Bulk {n}"), &[]).await;
    }
    let cut = lookup(&app, "q=bulk&limit=5").await;
    assert_eq!(cut["matches"].as_array().unwrap().len(), 5);
    assert_eq!(cut["more_matches"], true);
    let whole = lookup(&app, "q=bulk&limit=21").await;
    assert_eq!(whole["matches"].as_array().unwrap().len(), 21);
    assert_eq!(whole["more_matches"], false);
    let (_, _, page) = page(&app, "/lookup", &[("q", "bulk")]).await;
    assert!(
        page.contains("More than 20 models match “bulk”. The closest 20"),
        "{page}"
    );
}

async fn a_model_registered_a_moment_ago_is_found_at_once(app: TestApp) {
    let maker = app.manufacturer("Fairphone").await;
    assert_eq!(lookup(&app, "q=fairphone%205").await["matches"], json!([]));
    app.model(&maker, "Fairphone 5", &["35123456"]).await;
    assert_eq!(
        match_names(&lookup(&app, "q=fairphone%205").await),
        vec!["Fairphone 5"]
    );
    assert_eq!(
        match_names(&lookup(&app, "tac=35123456").await),
        vec!["Fairphone 5"]
    );
}

async fn the_best_match_comes_first(app: TestApp) {
    redmi(&app).await;
    let names = match_names(&lookup(&app, "q=redmi").await);
    assert_eq!(
        names,
        vec!["Redmi 1S", "Redmi Note"],
        "prefix matches, shorter first"
    );
    let names = match_names(&lookup(&app, "q=redmi%20note").await);
    assert_eq!(names, vec!["Redmi Note"]);
    let names = match_names(&lookup(&app, "q=xiaomi").await);
    assert_eq!(names.len(), 2, "a manufacturer's name finds its models");
    let limited = lookup(&app, "q=xiaomi&limit=1").await;
    assert_eq!(limited["matches"].as_array().unwrap().len(), 1);
}

async fn lookup_answers_the_derived_clearance(app: TestApp) {
    let redmi = redmi(&app).await;
    let answer = lookup(&app, "q=redmi%201s&firmware=6.3.0").await;
    let clearance = &answer["matches"][0]["clearance"];
    assert_eq!(clearance["status"], "unassessed");
    assert_eq!(clearance["since"], redmi["created_at"]);
    assert_eq!(clearance["advisories"], json!([]));
    assert_eq!(clearance["review"], Value::Null);
    assert_eq!(answer["query"]["firmware"], "6.3.0");
}
