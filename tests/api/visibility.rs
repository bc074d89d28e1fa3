//! Field-level TLP: what the public may see of an advisory is decided in one
//! place (`Viewer`), and every public surface goes through it. Each TLP's
//! advisory carries a marker in every text it has; no marker of an advisory
//! the caller may not read may appear in any body the caller gets.

use clearance::auth::Role;
use serde_json::json;

use crate::backend_tests;
use crate::helpers::TestApp;
use crate::workflow::{draft, evidence, publish};

const TLPS: [&str; 5] = ["clear", "green", "amber", "amber_strict", "red"];

fn marker(tlp: &str) -> String {
    format!("MARKER{}", tlp.replace('_', "").to_uppercase())
}

/// One model per TLP, each decided on by an advisory of that TLP whose
/// title, summary, body and conditions carry the TLP's marker, split by
/// firmware so ranges would show too. Returns the models' TACs and the
/// advisories' references.
async fn an_advisory_of_every_tlp(app: &TestApp) -> (Vec<String>, Vec<String>) {
    let maker = app.manufacturer("Xiaomi").await;
    let mut tacs = Vec::new();
    let mut references = Vec::new();
    for (i, tlp) in TLPS.iter().enumerate() {
        let tac = format!("8645210{i}");
        let model = app
            .model(&maker, &format!("Redmi {i}"), &[tac.as_str()])
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mark = marker(tlp);
        let id = draft(
            app,
            &json!({
                "title": format!("{mark} title"),
                "summary": format!("{mark} summary"),
                "body": format!("{mark} body"),
                "severity": "high",
                "tlp": tlp,
                "decisions": [
                    {"model_id": model, "decision": "approved_with_conditions",
                     "conditions": format!("{mark} conditions"), "firmware": ">=6.3.1"},
                    {"model_id": model, "decision": "prohibited", "firmware": "<6.3.1"},
                ],
                "evidence_ids": [evidence(app, &[&model]).await],
            }),
        )
        .await;
        let published = publish(app, &id).await;
        references.push(published["reference"].as_str().unwrap().to_owned());
        tacs.push(tac);
    }
    (tacs, references)
}

async fn text(app: &TestApp, path: &str, role: Option<Role>) -> String {
    let response = app.get(path, role).await;
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.text().await.unwrap()
}

/// Every public surface, as an anonymous caller gets it.
async fn public_bodies(
    app: &TestApp,
    tacs: &[String],
    references: &[String],
) -> Vec<(String, String)> {
    let mut paths: Vec<String> = vec![
        "/api/v1/lookup?q=redmi".into(),
        "/lookup?q=redmi".into(),
        "/feed.atom".into(),
        "/.well-known/csaf/provider-metadata.json".into(),
        "/.well-known/csaf/clear/index.txt".into(),
        "/.well-known/csaf/clear/changes.csv".into(),
    ];
    for tac in tacs {
        for firmware in ["", "&firmware=6.3.0", "&firmware=7"] {
            paths.push(format!("/api/v1/lookup?tac={tac}{firmware}"));
            paths.push(format!("/lookup?q={tac}{firmware}"));
        }
    }
    paths.extend(references.iter().map(|r| format!("/advisories/{r}")));
    let index = text(app, "/.well-known/csaf/clear/index.txt", None).await;
    paths.extend(
        index
            .lines()
            .map(|l| format!("/.well-known/csaf/clear/{l}")),
    );
    let mut bodies = Vec::new();
    for path in paths {
        let body = text(app, &path, None).await;
        bodies.push((path, body));
    }
    bodies
}

async fn the_public_sees_nothing_of_an_advisory_it_may_not_read(app: TestApp) {
    let (tacs, references) = an_advisory_of_every_tlp(&app).await;
    let bodies = public_bodies(&app, &tacs, &references).await;
    for tlp in &TLPS[1..] {
        let mark = marker(tlp);
        for (path, body) in &bodies {
            assert!(!body.contains(&mark), "{tlp} leaks on {path}: {body}");
        }
    }
    // The check can fail: what the public may read does show.
    let clear = marker("clear");
    assert!(
        bodies
            .iter()
            .any(|(_, b)| b.contains(&format!("{clear} title")))
    );
    assert!(
        bodies
            .iter()
            .any(|(_, b)| b.contains(&format!("{clear} conditions")))
    );
    assert!(
        bodies
            .iter()
            .any(|(p, b)| p.starts_with("/advisories/") && b.contains(&format!("{clear} body")))
    );
    // Without reading them, the public still gets each model's answer: the
    // firmware split is hidden, so the most cautious one.
    for tac in &tacs[1..] {
        let answer: serde_json::Value =
            serde_json::from_str(&text(&app, &format!("/api/v1/lookup?tac={tac}"), None).await)
                .unwrap();
        let clearance = &answer["matches"][0]["clearance"];
        assert_eq!(clearance["status"], "prohibited", "{tac}");
        assert_eq!(clearance["by_firmware"], json!([]));
    }
}

async fn personnel_read_every_advisory(app: TestApp) {
    let (tacs, references) = an_advisory_of_every_tlp(&app).await;
    for (reference, tlp) in references.iter().zip(TLPS) {
        let page = text(
            &app,
            &format!("/advisories/{reference}"),
            Some(Role::Reader),
        )
        .await;
        assert!(page.contains(&marker(tlp)), "{tlp}: {page}");
    }
    for (tac, tlp) in tacs.iter().zip(TLPS) {
        let answer = text(
            &app,
            &format!("/api/v1/lookup?tac={tac}"),
            Some(Role::Reader),
        )
        .await;
        assert!(answer.contains(&marker(tlp)), "{tlp}: {answer}");
        assert!(answer.contains("depends_on_firmware"), "{tlp}: {answer}");
    }
}

backend_tests!(
    the_public_sees_nothing_of_an_advisory_it_may_not_read,
    personnel_read_every_advisory,
);
