//! The demo data set: the 2014 case (Xiaomi and the Redmi 1S) and enough
//! other models for the lookup to tell apart. Loading it twice changes
//! nothing. The TACs are illustrative, not the real allocations.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::{AuthKeys, Role};
use crate::config::Settings;
use crate::db::advisories::{self, AdvisoryFilter};
use crate::db::models::{self, ModelFilter};
use crate::db::{DbError, manufacturers, subscriptions};
use crate::domain::advisory::{AdvisoryContent, Audience, DecisionSpec, Tlp};
use crate::domain::audit::Actor;
use crate::domain::clearance::{Decision, Scope};
use crate::domain::email::EmailAddress;
use crate::domain::evidence::{
    EvidenceKind, Finding, ModelIds, NewEvidence, NewResponse, Reference, ResponseKind,
};
use crate::domain::firmware::FirmwareRange;
use crate::domain::imei::{Tac, luhn_check_digit};
use crate::domain::personnel::parse_roster;
use crate::domain::registry::{Category, Country, Name, NewManufacturer, NewModel};
use crate::domain::review::NewReview;
use crate::domain::severity::Severity;
use crate::domain::subscription::{Delivery, SubscribeRequest, SubscriptionFilter};
use crate::domain::text::{Line, Prose};
use crate::workflow::{self, Workflow};

struct DemoMaker {
    name: &'static str,
    country: &'static str,
    aliases: &'static [&'static str],
    models: &'static [DemoModel],
}

struct DemoModel {
    name: &'static str,
    model_numbers: &'static [&'static str],
    aliases: &'static [&'static str],
    category: Category,
    tacs: &'static [&'static str],
}

const DEMO_PERSONNEL: &str = "email,name,unit\n\
    a.officer@example.org,Alex Officer,Air Wing 1\n\
    b.officer@example.org,Billie Officer,Air Wing 2\n\
    c.officer@example.org,Casey Officer,Signals\n";

/// The Redmi 1S's first illustrative TAC, used in the printed examples.
pub const REDMI_1S_TAC: &str = "86452102";

const MAKERS: &[DemoMaker] = &[
    DemoMaker {
        name: "Xiaomi",
        country: "CN",
        aliases: &["小米", "Xiaomi Inc.", "MI"],
        models: &[
            DemoModel {
                name: "Redmi 1S",
                model_numbers: &["2014011", "HM 1SW", "HM 1SC"],
                aliases: &["Hongmi 1S", "红米1S"],
                category: Category::Phone,
                tacs: &[REDMI_1S_TAC, "86452103"],
            },
            DemoModel {
                name: "Redmi Note",
                model_numbers: &["HM NOTE 1W", "HM NOTE 1LTE"],
                aliases: &["Hongmi Note", "红米Note"],
                category: Category::Phone,
                tacs: &["86228802"],
            },
            DemoModel {
                name: "Mi 3",
                model_numbers: &["MI 3W", "MI 3C"],
                aliases: &["Xiaomi Mi3"],
                category: Category::Phone,
                tacs: &["86375302"],
            },
            DemoModel {
                name: "Mi Pad",
                model_numbers: &["A0101"],
                aliases: &["Mi Pad 7.9"],
                category: Category::Tablet,
                tacs: &[],
            },
        ],
    },
    DemoMaker {
        name: "Samsung",
        country: "KR",
        aliases: &["Samsung Electronics"],
        models: &[DemoModel {
            name: "Galaxy S5",
            model_numbers: &["SM-G900F", "SM-G900H"],
            aliases: &[],
            category: Category::Phone,
            tacs: &["35285806"],
        }],
    },
    DemoMaker {
        name: "Apple",
        country: "US",
        aliases: &["Apple Inc."],
        models: &[DemoModel {
            name: "iPhone 5s",
            model_numbers: &["A1457", "A1533"],
            aliases: &[],
            category: Category::Phone,
            tacs: &["35203506"],
        }],
    },
    DemoMaker {
        name: "Nokia",
        country: "FI",
        aliases: &[],
        models: &[DemoModel {
            name: "Lumia 930",
            model_numbers: &["RM-1045"],
            aliases: &[],
            category: Category::Phone,
            tacs: &["35468406"],
        }],
    },
];

fn names(raw: &[&str]) -> anyhow::Result<Vec<Name>> {
    raw.iter().map(|n| parse(Name::parse(n))).collect()
}

fn parse<T>(result: Result<T, impl std::fmt::Display>) -> anyhow::Result<T> {
    result.map_err(|e| anyhow::anyhow!("demo data is invalid: {e}"))
}

/// Loads the demo data set through the use cases, as the office would
/// enter it; what already exists is left as it is.
pub async fn load(workflow: &Workflow) -> anyhow::Result<()> {
    let db = workflow.db();
    let system = Actor::system();
    for maker in MAKERS {
        let name = parse(Name::parse(maker.name))?;
        let known = {
            let name = name.clone();
            db.read(move |conn| manufacturers::find_by_name(conn, &name))
                .await?
        };
        let manufacturer = match known {
            Some(existing) => existing,
            None => {
                let new = NewManufacturer {
                    name,
                    country: parse(Country::parse(maker.country))?,
                    aliases: names(maker.aliases)?,
                };
                workflow::registry::register_manufacturer(workflow, system.clone(), new)
                    .await?
                    .value
            }
        };
        for model in maker.models {
            let new = NewModel {
                manufacturer_id: manufacturer.id,
                name: parse(Name::parse(model.name))?,
                model_numbers: names(model.model_numbers)?,
                aliases: names(model.aliases)?,
                category: model.category,
                tacs: model
                    .tacs
                    .iter()
                    .map(|t| parse(Tac::parse(t)))
                    .collect::<Result<_, _>>()?,
            };
            match workflow::registry::register_model(workflow, system.clone(), new).await {
                Ok(_) | Err(workflow::Error::Store(DbError::Conflict(_))) => {}
                Err(other) => return Err(other.into()),
            }
        }
    }
    // A few officers, so that publishing mails someone (into the mail
    // folder on the embedded defaults).
    let roster = parse_roster(DEMO_PERSONNEL.as_bytes())
        .map_err(|errors| anyhow::anyhow!("demo personnel are invalid: {errors:?}"))?;
    workflow::personnel::import(workflow, system, roster).await?;
    the_2014_case(workflow).await
}

/// The model of this name, if it is registered.
async fn find(workflow: &Workflow, name: &'static str) -> anyhow::Result<Option<Uuid>> {
    let filter = ModelFilter {
        q: Some(name.to_lowercase()),
        ..ModelFilter::default()
    };
    let found = workflow
        .db()
        .read(move |conn| models::list(conn, &filter, None, 10))
        .await?;
    Ok(found.into_iter().find(|m| m.name == name).map(|m| m.id))
}

/// The lab's evidence about the Redmi 1S, the vendor's answer and the
/// tester's acknowledgement, and the circular that followed: every Xiaomi
/// phone prohibited — unless the model already has an advisory.
async fn the_2014_case(workflow: &Workflow) -> anyhow::Result<()> {
    let Some(redmi) = find(workflow, "Redmi 1S").await? else {
        return Ok(());
    };
    let xiaomi_name = parse(Name::parse("Xiaomi"))?;
    let Some(xiaomi) = workflow
        .db()
        .read(move |conn| manufacturers::find_by_name(conn, &xiaomi_name))
        .await?
    else {
        return Ok(());
    };
    let decided = AdvisoryFilter {
        model_id: Some(redmi),
        ..AdvisoryFilter::default()
    };
    let already = workflow
        .db()
        .read(move |conn| advisories::list(conn, &decided, None, 1))
        .await?;
    if !already.is_empty() {
        return Ok(());
    }
    let now = workflow.clock().now();
    let team = Team {
        analyst: Actor {
            sub: "demo-analyst".into(),
            name: "Demo Analyst".into(),
        },
        approver: Actor {
            sub: "demo-approver".into(),
            name: "Demo Approver".into(),
        },
    };
    // A family member who subscribed (and confirmed) before the circular.
    let family = parse(EmailAddress::parse("family@example.org"))?;
    let key = family.key();
    let request = SubscribeRequest {
        email: family,
        filter: SubscriptionFilter::default(),
        delivery: Delivery::Immediate,
    };
    // The demo's own subscription, not a stranger's: no daily mail limit.
    workflow::subscriptions::subscribe(workflow, request, u32::MAX).await?;
    let subscribed = {
        let key = key.clone();
        workflow
            .db()
            .read(move |conn| subscriptions::find_by_key(conn, &key))
            .await?
    };
    if let Some((id, _)) = subscribed {
        workflow::subscriptions::confirm(workflow, id, key).await?;
    }
    let finding = |data: &str| {
        serde_json::from_value::<Finding>(serde_json::json!({
            "data": data, "destination": "api.account.xiaomi.com (Beijing)", "country": "CN",
            "encrypted": false, "consent": "no",
            "note": "while the cloud messaging service was on"
        }))
    };
    let findings = ["carrier", "phone_number", "imei", "contacts", "sms"]
        .into_iter()
        .map(|d| parse(finding(d)))
        .collect::<Result<Vec<_>, _>>()?;
    let observed = parse(DateTime::parse_from_rfc3339("2014-07-30T00:00:00Z"))?.to_utc();
    let lab = NewEvidence {
        model_ids: parse(ModelIds::try_from(vec![redmi]))?,
        title: parse(Line::parse(
            "Redmi 1S sends personal data to servers in Beijing",
        ))?,
        source: parse(Line::parse("F-Secure Labs"))?,
        kind: EvidenceKind::LabTest,
        observed_at: observed,
        firmware: Some(parse(Line::parse("MIUI JHCCNBH45.0"))?),
        summary: parse(Prose::parse(
            "Once the cloud messaging service was activated, the phone sent the carrier name, \
             the phone number, the IMEI and numbers from the address book and text messages \
             to servers in Beijing.",
        ))?,
        severity: Severity::High,
        findings,
        references: vec![parse(Reference::parse(
            "https://www.f-secure.com/weblog/archives/00002731.html",
        ))?],
    };
    let lab = workflow::evidence::file(workflow, team.analyst.clone(), lab)
        .await?
        .value;
    for (kind, author, days, text) in [
        (
            ResponseKind::VendorResponse,
            "Xiaomi",
            10,
            "An update made the cloud messaging service opt-in; data never leaves without the \
             user's consent, and user data is moving to servers outside China.",
        ),
        (
            ResponseKind::Acknowledgement,
            "F-Secure Labs",
            14,
            "The tester acknowledged the fix four days after the vendor's update.",
        ),
    ] {
        let response = NewResponse {
            kind,
            author: parse(Line::parse(author))?,
            received_at: observed + chrono::Duration::days(days),
            text: parse(Prose::parse(text))?,
            supersedes: None,
        };
        workflow::evidence::respond(workflow, team.analyst.clone(), lab.id, response).await?;
    }
    let content = AdvisoryContent {
        title: parse(Line::parse("Refrain from using Xiaomi phones"))?,
        summary: parse(Prose::parse(
            "Officers and their families are to refrain from using Xiaomi phones: a Redmi 1S \
             was found sending personal data to servers abroad.",
        ))?,
        body: "A lab test found that, with the vendor's cloud messaging service on, a **Redmi \
               1S** sent the carrier, the phone number, the IMEI, contacts and SMS numbers to \
               servers in Beijing without consent.\n\nThe same service ships on the maker's \
               other phones, so this applies to **every Xiaomi phone**, including models \
               registered later:\n\n- do not use one for official business;\n- do not \
               bring one into a secure area.\n\nSee the [lab's report](https://www.f-secure.com/weblog/archives/00002731.html)."
            .into(),
        severity: Severity::High,
        tlp: Tlp::Clear,
        audience: Audience::default(),
        acknowledgement_required: true,
        decisions: vec![DecisionSpec {
            scope: Scope::Manufacturer {
                id: xiaomi.id,
                category: Some(Category::Phone),
            },
            decision: Decision::Prohibited,
            conditions: None,
            firmware: None,
        }],
        evidence_ids: vec![lab.id],
        supersedes: Vec::new(),
        effective_at: None,
        review_due: Some(now + chrono::Duration::days(90)),
    };
    team.publish(workflow, content).await?;
    other_decisions(workflow, &team, now).await
}

/// Who writes and who approves the demo's advisories (two people).
struct Team {
    analyst: Actor,
    approver: Actor,
}

impl Team {
    async fn publish(&self, workflow: &Workflow, content: AdvisoryContent) -> anyhow::Result<()> {
        use workflow::advisories::{approve, draft, publish, submit};
        let id = draft(workflow, self.analyst.clone(), content)
            .await?
            .value
            .id;
        submit(workflow, self.analyst.clone(), id).await?;
        approve(workflow, self.approver.clone(), id).await?;
        publish(workflow, self.approver.clone(), id).await?;
        Ok(())
    }

    /// Files the office lab's test of the model `decision` is about, then
    /// publishes an advisory that takes that decision on its evidence.
    async fn decide_on(
        &self,
        workflow: &Workflow,
        now: DateTime<Utc>,
        test: LabTest,
        decision: DecisionSpec,
        advisory: Notice,
    ) -> anyhow::Result<()> {
        let Scope::Model(model) = decision.scope else {
            anyhow::bail!("the demo's lab tests are of one model");
        };
        let evidence = NewEvidence {
            model_ids: parse(ModelIds::try_from(vec![model]))?,
            title: parse(Line::parse(test.title))?,
            source: parse(Line::parse("Office test lab"))?,
            kind: EvidenceKind::LabTest,
            observed_at: now - chrono::Duration::days(test.days_ago),
            firmware: Some(parse(Line::parse(test.firmware))?),
            summary: parse(Prose::parse(test.found))?,
            severity: test.severity,
            findings: Vec::new(),
            references: Vec::new(),
        };
        let evidence = workflow::evidence::file(workflow, self.analyst.clone(), evidence)
            .await?
            .value;
        let content = AdvisoryContent {
            title: parse(Line::parse(advisory.title))?,
            summary: parse(Prose::parse(advisory.summary))?,
            body: String::new(),
            severity: Severity::Low,
            tlp: Tlp::Clear,
            audience: Audience::default(),
            acknowledgement_required: false,
            decisions: vec![decision],
            evidence_ids: vec![evidence.id],
            supersedes: Vec::new(),
            effective_at: None,
            review_due: None,
        };
        self.publish(workflow, content).await
    }
}

/// A test the office's own lab ran on one model.
struct LabTest {
    title: &'static str,
    days_ago: i64,
    /// The firmware tested.
    firmware: &'static str,
    found: &'static str,
    severity: Severity,
}

/// The title and summary of an advisory.
struct Notice {
    title: &'static str,
    summary: &'static str,
}

/// One Xiaomi phone the office cleared itself (a model's decision outranks
/// the maker-wide one), an approval of a model of another maker from a
/// firmware version on, and the Redmi Note under independent review.
async fn other_decisions(
    workflow: &Workflow,
    team: &Team,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if let Some(mi3) = find(workflow, "Mi 3").await? {
        let retest = LabTest {
            title: "Mi 3 retested with cloud messaging switched off",
            days_ago: 20,
            firmware: "MIUI 6.1",
            found: "With cloud messaging switched off and a work profile, no personal data left \
                    the phone in a week of traffic analysis.",
            severity: Severity::Low,
        };
        let decision = DecisionSpec {
            scope: Scope::Model(mi3),
            decision: Decision::ApprovedWithConditions,
            conditions: Some(parse(Prose::parse(
                "cloud messaging switched off, official apps in a work profile only",
            ))?),
            firmware: None,
        };
        let advisory = Notice {
            title: "Mi 3 cleared for official use with conditions",
            summary: "Unlike other Xiaomi phones, the Mi 3 may be used, under two conditions.",
        };
        team.decide_on(workflow, now, retest, decision, advisory)
            .await?;
    }
    if let Some(iphone) = find(workflow, "iPhone 5s").await? {
        let assessment = LabTest {
            title: "iPhone 5s: no unexpected data flows",
            days_ago: 30,
            firmware: "iOS 7.1.2",
            found: "A week of traffic analysis found no personal data sent without the user's consent.",
            severity: Severity::None,
        };
        let decision = DecisionSpec {
            scope: Scope::Model(iphone),
            decision: Decision::Approved,
            conditions: None,
            firmware: Some(parse(FirmwareRange::parse(">=7.1.2"))?),
        };
        let advisory = Notice {
            title: "iPhone 5s approved for official use",
            summary: "The iPhone 5s may be used, on iOS 7.1.2 or later.",
        };
        team.decide_on(workflow, now, assessment, decision, advisory)
            .await?;
    }
    if let Some(note) = find(workflow, "Redmi Note").await? {
        let review = NewReview {
            model_id: note,
            reason: parse(Prose::parse(
                "Independent tests of the Redmi Note; a decision within three months.",
            ))?,
            due_at: now + chrono::Duration::days(90),
        };
        workflow::reviews::open(workflow, team.analyst.clone(), review).await?;
    }
    Ok(())
}

/// A valid IMEI of the demo Redmi 1S (its TAC, a serial, the Luhn digit).
pub fn example_imei() -> String {
    let first14 = format!("{REDMI_1S_TAC}123456");
    format!("{first14}{}", luhn_check_digit(&first14))
}

/// What to try, printed by `clearance demo`.
pub fn instructions(settings: &Settings, keys: &AuthKeys) -> String {
    let ttl = chrono::Duration::days(7);
    let tokens: Vec<String> = [Role::Reader, Role::Analyst, Role::Approver, Role::Admin]
        .into_iter()
        .map(|role| {
            let name = role.as_str();
            let token = keys.mint(
                &format!("demo-{name}"),
                &format!("{name}@example.org"),
                &format!("Demo {name}"),
                &[role],
                ttl,
            );
            format!("{} token (7 days):\n  {token}\n", name.to_uppercase())
        })
        .collect();
    let base = settings.public_url.as_str().trim_end_matches('/');
    let imei = example_imei();
    let mail_dir = settings.mail_dir.display();
    format!(
        "Clearance demo data is loaded: the 2014 lab evidence about the Redmi 1S, the\n\
         vendor's answer and the tester's acknowledgement, and the circular that followed:\n\
         every Xiaomi phone prohibited, models registered later included (mailed to three\n\
         officers and a subscribed family member: see the .eml files in {mail_dir}). The\n\
         Mi 3 alone is cleared with conditions by an advisory of its own, the iPhone 5s is\n\
         approved from iOS 7.1.2, and the Redmi Note is under independent review.\n\n\
         {}\n\
         May I use a Redmi 1S? Open {base}/lookup (on a phone too) and type its name or\n\
         an IMEI such as {imei}.\n\n\
         Try:\n\
         \x20 curl '{base}/api/v1/lookup?q=redmi%201s'\n\
         \x20 curl '{base}/api/v1/lookup?imei={imei}'\n\
         \x20 curl -H \"Authorization: Bearer $READER\" '{base}/api/v1/advisories'\n\
         \x20 curl -H \"Authorization: Bearer $ADMIN\" '{base}/api/v1/audit/verify'\n\
         \x20 API documentation: {base}/docs/\n",
        tokens.join("\n")
    )
}
