//! The stored clearance never drifts from the rule: after every step of a
//! random sequence of publications, amendments, supersessions and
//! withdrawals, each model's clearance — as the lookup derives it, as
//! `?status=` filters on it, and as its history last recorded it — equals
//! what an independent model of the rule computes from scratch.

use clearance::auth::Role;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{TestApp, body};
use crate::workflow::{act, approved, draft, evidence, publish, publish_at_once};

const DECISIONS: [&str; 4] = [
    "prohibited",
    "restricted",
    "approved_with_conditions",
    "approved",
];

/// Decisions as (model index, index into `DECISIONS`).
type Decisions = Vec<(usize, usize)>;

/// The rule, restated: the most restrictive decision of the advisories in
/// force, else unassessed.
#[derive(Default)]
struct Oracle {
    /// (advisory id, in force, decisions as (model index, decision index)).
    advisories: Vec<(String, bool, Decisions)>,
}

impl Oracle {
    fn expected(&self, model: usize) -> &'static str {
        self.advisories
            .iter()
            .filter(|(_, in_force, _)| *in_force)
            .flat_map(|(_, _, decisions)| decisions.iter())
            .filter(|(m, _)| *m == model)
            .map(|(_, d)| *d)
            .min()
            .map_or("unassessed", |d| DECISIONS[d])
    }

    fn in_force(&self) -> Vec<usize> {
        (0..self.advisories.len())
            .filter(|i| self.advisories[*i].1)
            .collect()
    }
}

fn random_decisions(rng: &mut StdRng, models: usize) -> Vec<(usize, usize)> {
    let count = rng.random_range(1..=2);
    let mut chosen: Vec<(usize, usize)> = Vec::new();
    while chosen.len() < count {
        let model = rng.random_range(0..models);
        if !chosen.iter().any(|(m, _)| *m == model) {
            chosen.push((model, rng.random_range(0..DECISIONS.len())));
        }
    }
    chosen
}

fn decisions_json(decisions: &[(usize, usize)], model_ids: &[String]) -> Value {
    decisions
        .iter()
        .map(|(m, d)| {
            let mut decision = json!({"model_id": model_ids[*m], "decision": DECISIONS[*d]});
            if DECISIONS[*d] == "approved_with_conditions" {
                decision["conditions"] = json!("work profile only");
            }
            decision
        })
        .collect()
}

async fn check(app: &TestApp, oracle: &Oracle, model_ids: &[String], step: &str) {
    for (index, id) in model_ids.iter().enumerate() {
        let expected = oracle.expected(index);
        let model = body(
            app.get(&format!("/api/v1/models/{id}"), Some(Role::Reader))
                .await,
        )
        .await;
        assert_eq!(
            model["clearance"]["status"], expected,
            "derived, model {index} after {step}"
        );
        let filtered = body(
            app.get(
                &format!("/api/v1/models?status={expected}"),
                Some(Role::Reader),
            )
            .await,
        )
        .await;
        assert!(
            filtered["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["id"] == id.as_str()),
            "stored status of model {index} after {step} is not {expected}"
        );
        let history = body(
            app.get(
                &format!("/api/v1/models/{id}/clearance/history?limit=500"),
                Some(Role::Reader),
            )
            .await,
        )
        .await;
        let last = history["items"]
            .as_array()
            .unwrap()
            .last()
            .map_or("unassessed", |c| c["status"].as_str().unwrap());
        assert_eq!(last, expected, "history of model {index} after {step}");
    }
}

async fn random_sequences_never_drift_from_the_rule(app: TestApp) {
    for seed in [0x2014_0730, 7, 42] {
        run_sequence(&app, seed).await;
    }
}

/// Ten random steps on three fresh models, checked after each.
async fn run_sequence(app: &TestApp, seed: u64) {
    let maker = app.manufacturer(&format!("Maker {seed}")).await;
    let mut model_ids = Vec::new();
    for name in ["Alpha", "Beta", "Gamma"] {
        model_ids.push(
            app.model(&maker, name, &[]).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let ids: Vec<&str> = model_ids.iter().map(String::as_str).collect();
    let evidence_id = evidence(app, &ids).await;
    let mut oracle = Oracle::default();
    let mut rng = StdRng::seed_from_u64(seed);
    for step in 0..10 {
        let in_force = oracle.in_force();
        let choice = if in_force.is_empty() {
            0
        } else {
            rng.random_range(0..4)
        };
        let name = match choice {
            // Publish a new advisory, sometimes superseding one in force.
            0 | 1 => {
                let decisions = random_decisions(&mut rng, model_ids.len());
                let superseded = (!in_force.is_empty() && rng.random_bool(0.4))
                    .then(|| in_force[rng.random_range(0..in_force.len())]);
                let supersedes: Vec<&str> = superseded
                    .iter()
                    .map(|i| oracle.advisories[*i].0.as_str())
                    .collect();
                let id = draft(
                    app,
                    &json!({"title": format!("Advisory {step}"), "summary": "s", "severity": "medium",
                            "tlp": "clear", "decisions": decisions_json(&decisions, &model_ids),
                            "evidence_ids": [evidence_id], "supersedes": supersedes}),
                )
                .await;
                publish(app, &id).await;
                if let Some(i) = superseded {
                    oracle.advisories[i].1 = false;
                }
                oracle.advisories.push((id, true, decisions));
                "publish"
            }
            // Amend one in force with new decisions.
            2 => {
                let target = in_force[rng.random_range(0..in_force.len())];
                let id = oracle.advisories[target].0.clone();
                let decisions = random_decisions(&mut rng, model_ids.len());
                let opened = act(app, &id, "amend", Role::Analyst, &json!({})).await;
                let etag = opened.headers()["etag"].to_str().unwrap().to_owned();
                let path = format!("/api/v1/advisories/{id}");
                let edited = app
                    .patch(
                        &path,
                        Some(Role::Analyst),
                        &json!({"decisions": decisions_json(&decisions, &model_ids)}),
                        Some(&etag),
                    )
                    .await;
                assert_eq!(edited.status(), 200);
                publish(app, &id).await;
                oracle.advisories[target].2 = decisions;
                "amend"
            }
            // Withdraw one in force.
            _ => {
                let target = in_force[rng.random_range(0..in_force.len())];
                let id = oracle.advisories[target].0.clone();
                let withdrawn = act(
                    app,
                    &id,
                    "withdraw",
                    Role::Approver,
                    &json!({"reason": "r"}),
                )
                .await;
                assert_eq!(withdrawn.status(), 200);
                oracle.advisories[target].1 = false;
                "withdraw"
            }
        };
        check(
            app,
            &oracle,
            &model_ids,
            &format!("seed {seed}, step {step} ({name})"),
        )
        .await;
    }
}

backend_tests!(random_sequences_never_drift_from_the_rule);

/// Publishes raced on PostgreSQL (which, unlike SQLite, runs them side by
/// side): each round, one advisory prohibits three models and seven approve
/// them, all published at once. Whatever order they commit in, the stored
/// status must end as the rule says, prohibited: a derivation that ran at
/// a time before a decision committed by another must not write it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn raced_publishes_leave_the_stored_status_as_the_rule_says() {
    let app = TestApp::spawn(crate::helpers::Backend::Postgres).await;
    for round in 0..6 {
        let maker = app.manufacturer(&format!("Raced {round}")).await;
        let mut model_ids = Vec::new();
        for name in ["Alpha", "Beta", "Gamma"] {
            let model = app.model(&maker, name, &[]).await;
            model_ids.push(model["id"].as_str().unwrap().to_owned());
        }
        let ids: Vec<&str> = model_ids.iter().map(String::as_str).collect();
        let evidence_id = evidence(&app, &ids).await;
        let mut drafts = Vec::new();
        for i in 0..8 {
            let decision = if i == round % 8 { 0 } else { 3 };
            let decisions: Decisions = (0..3).map(|m| (m, decision)).collect();
            let advisory = json!({"title": format!("Round {round}, advisory {i}"),
                "summary": "s", "severity": "medium", "tlp": "clear",
                "decisions": decisions_json(&decisions, &model_ids),
                "evidence_ids": [evidence_id]});
            drafts.push(approved(&app, &advisory).await);
        }
        publish_at_once(&app, &drafts).await;
        let mut oracle = Oracle::default();
        for (i, id) in drafts.iter().enumerate() {
            let decision = if i == round % 8 { 0 } else { 3 };
            oracle
                .advisories
                .push((id.clone(), true, (0..3).map(|m| (m, decision)).collect()));
        }
        check(&app, &oracle, &model_ids, &format!("round {round}")).await;
    }
}
