//! A clearance put into words, once: the lookup page, the advisory page and
//! the mail's "What you must do" all say what this module says, so they
//! can never disagree with the status the API gives, nor call a version
//! "allowed" that is not.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::advisory::{AdvisoryState, DecisionSpec, Tlp};
use super::clearance::{
    Clearance, ClearanceStatus, DecisionInForce, FirmwareAnswer, Scope, derive,
};
use super::firmware::{FirmwareRange, FirmwareVersion};
use super::registry::Category;

/// How an answer reads to a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wording {
    /// "Not allowed", "Allowed from 7.1.2" and so on.
    pub headline: String,
    /// Sentences that complete it: the other firmware versions, the
    /// conditions, what to check.
    pub details: Vec<String>,
    pub tone: Tone,
}

/// The colour of an answer (the words alone carry its meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    No,
    Partly,
    Yes,
    Unknown,
}

impl Tone {
    /// The CSS class the pages colour it with.
    pub fn class(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::Partly => "partly",
            Self::Yes => "yes",
            Self::Unknown => "unknown",
        }
    }
}

impl Wording {
    /// The headline and its details as one paragraph.
    pub fn sentence(&self) -> String {
        match self.details.as_slice() {
            [] => format!("{}.", self.headline),
            details => format!("{} — {}", self.headline, details.join(" ")),
        }
    }
}

/// Hint that closes every answer that depends on the firmware version.
pub const CHECK_THE_VERSION: &str = "Check the version in Settings.";

/// Whom to ask, as the foot of every public page says it: the deployment's
/// contact (`CLEARANCE_CONTACT`), else the security office.
pub fn questions(contact: Option<&str>) -> String {
    match contact {
        Some(contact) => format!("Questions? {contact}"),
        None => "Questions? Ask your security office.".to_owned(),
    }
}

/// What a valid IMEI or TAC that no model claims means for the person
/// asking: nobody decided on it, so they must ask — the contact when the
/// deployment names one.
pub fn not_in_the_register(contact: Option<&str>) -> String {
    let ask = match contact {
        Some(contact) => format!("Ask before you use it: {}.", contact.trim_end_matches('.')),
        None => "Ask your security office before you use it.".to_owned(),
    };
    format!("This phone is not in the register — it has not been assessed. {ask}")
}

/// A status in words, as the start of a sentence would have it.
pub fn status_words(status: ClearanceStatus) -> &'static str {
    match status {
        ClearanceStatus::Prohibited => "Not allowed",
        ClearanceStatus::Restricted => "Restricted",
        ClearanceStatus::ApprovedWithConditions => "Allowed with conditions",
        ClearanceStatus::Approved => "Allowed",
        ClearanceStatus::UnderReview => "Under review",
        ClearanceStatus::Unassessed => "Not assessed",
        ClearanceStatus::DependsOnFirmware => "Depends on the software version",
    }
}

fn tone(status: ClearanceStatus) -> Tone {
    match status {
        ClearanceStatus::Prohibited => Tone::No,
        ClearanceStatus::Restricted
        | ClearanceStatus::ApprovedWithConditions
        | ClearanceStatus::DependsOnFirmware => Tone::Partly,
        ClearanceStatus::Approved => Tone::Yes,
        ClearanceStatus::UnderReview | ClearanceStatus::Unassessed => Tone::Unknown,
    }
}

/// What the conditions of a status say, or where to ask when they are not
/// shown.
fn conditions_sentence(status: ClearanceStatus, conditions: Option<&str>) -> Option<String> {
    match (status, conditions) {
        // The headline already says "with conditions": the conditions
        // follow as a sentence of their own.
        (ClearanceStatus::ApprovedWithConditions | ClearanceStatus::Restricted, Some(c)) => {
            Some(as_sentence(c))
        }
        (ClearanceStatus::ApprovedWithConditions, None) => {
            Some("Ask your security office which conditions apply.".into())
        }
        (ClearanceStatus::Restricted, None) => {
            Some("Use it only as your security office allows.".into())
        }
        _ => None,
    }
}

/// `text` as a sentence: a capital first letter and one full stop at the
/// end ("work profile only" → "Work profile only.").
fn as_sentence(text: &str) -> String {
    let text = text.trim().trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// A range of versions in words ("before 7.1.2"); the text as given when it
/// is not one.
fn range_words(firmware: &str) -> String {
    FirmwareRange::parse(firmware).map_or_else(|_| firmware.to_owned(), |r| r.words())
}

/// The words of one range's answer: "allowed from 7.1.2".
pub fn piece_words(answer: &FirmwareAnswer) -> String {
    format!(
        "{} {}",
        status_words(answer.status).to_lowercase(),
        range_words(&answer.firmware)
    )
}

/// Which piece leads an answer that depends on the version: one that allows
/// use (plain approval first), else the most cautious.
fn lead(pieces: &[FirmwareAnswer]) -> Option<&FirmwareAnswer> {
    pieces
        .iter()
        .find(|p| p.status == ClearanceStatus::Approved)
        .or_else(|| pieces.iter().find(|p| p.status.allows_use()))
        .or_else(|| pieces.first())
}

/// The clearance in words.
pub fn words(clearance: &Clearance) -> Wording {
    let status = clearance.status;
    if status != ClearanceStatus::DependsOnFirmware {
        let headline = match (status, clearance.review) {
            (ClearanceStatus::UnderReview, Some(review)) => format!(
                "Under review, decision due {}",
                review.due_at.format("%-d %B %Y")
            ),
            _ => status_words(status).to_owned(),
        };
        return Wording {
            headline,
            details: conditions_sentence(status, clearance.conditions.as_deref())
                .into_iter()
                .collect(),
            tone: tone(status),
        };
    }
    let pieces = &clearance.by_firmware;
    let Some(first) = lead(pieces) else {
        return Wording {
            headline: status_words(status).to_owned(),
            details: vec![CHECK_THE_VERSION.to_owned()],
            tone: tone(status),
        };
    };
    let mut headline = piece_words(first);
    headline[..1].make_ascii_uppercase();
    let mut details: Vec<String> = conditions_sentence(first.status, first.conditions.as_deref())
        .into_iter()
        .collect();
    for other in pieces.iter().filter(|p| !std::ptr::eq(*p, first)) {
        details.push(format!(
            "Versions {} are {}.",
            range_words(&other.firmware),
            status_words(other.status).to_lowercase()
        ));
    }
    details.push(CHECK_THE_VERSION.to_owned());
    Wording {
        headline,
        details,
        tone: Tone::Partly,
    }
}

/// The answer for one version in words, with what another version would
/// change: `overall` is the same model's answer for every version.
pub fn words_for_version(
    at_version: &Clearance,
    overall: &Clearance,
    version: &FirmwareVersion,
) -> Wording {
    let mut wording = words(at_version);
    wording.headline = format!("{} on version {version}", wording.headline);
    if !at_version.status.allows_use() {
        for piece in overall.by_firmware.iter().filter(|p| p.status.allows_use()) {
            wording.details.push(format!(
                "Versions {} are {}: an update may help.",
                range_words(&piece.firmware),
                status_words(piece.status).to_lowercase()
            ));
        }
    }
    wording
}

/// "What you must do" about one target (a model, or every model of a
/// maker) of an advisory, from the advisory's own decisions about it: the
/// answer, then what to do about it where the answer alone is no
/// instruction ("Not allowed. Do not use one.").
pub fn must_do(target: &str, clearance: &Clearance) -> String {
    let said = words(clearance).sentence();
    match instruction(clearance.status) {
        Some(instruction) => format!("{target}: {said} {instruction}"),
        None => format!("{target}: {said}"),
    }
}

/// What a person does about a status, when its words do not already say
/// (conditions, restrictions and firmware splits say it in their details).
fn instruction(status: ClearanceStatus) -> Option<&'static str> {
    match status {
        ClearanceStatus::Prohibited => Some("Do not use one."),
        ClearanceStatus::Approved => Some("You may use one."),
        ClearanceStatus::UnderReview | ClearanceStatus::Unassessed => {
            Some("Ask your security office before you use one.")
        }
        ClearanceStatus::Restricted
        | ClearanceStatus::ApprovedWithConditions
        | ClearanceStatus::DependsOnFirmware => None,
    }
}

/// What the lookup says above models that only resemble the name asked
/// (`found` of them): they may not be the phone in hand.
pub fn no_exact_match(asked: &str, found: usize) -> String {
    let check = if found == 1 {
        "check that the model below is yours"
    } else {
        "check which of the models below is yours"
    };
    format!("No model is called exactly “{asked}”: {check}.")
}

/// How a list of advisories (the feed, a digest) marks one that no longer
/// applies: a note for its title and a sentence; `None` while in force.
pub fn no_longer_applies(state: AdvisoryState) -> Option<(&'static str, &'static str)> {
    match state {
        AdvisoryState::Withdrawn => {
            Some(("withdrawn", "Withdrawn: its decisions no longer apply."))
        }
        AdvisoryState::Superseded => Some((
            "superseded",
            "Superseded by a later advisory: its decisions no longer apply.",
        )),
        _ => None,
    }
}

/// What people call a model: its maker's name, then its own ("Xiaomi
/// Redmi 1S"), unless its own already begins with the maker's ("Fairphone
/// 2", not "Fairphone Fairphone 2").
pub fn model_name(maker: &str, model: &str) -> String {
    let named_after_maker = model
        .get(..maker.len())
        .is_some_and(|front| front.eq_ignore_ascii_case(maker))
        && !model[maker.len()..].starts_with(char::is_alphanumeric);
    if named_after_maker || maker.is_empty() {
        model.to_owned()
    } else {
        format!("{maker} {model}")
    }
}

/// What a decision's scope is called, given the name of the model
/// ([`model_name`]) or of the manufacturer ("Xiaomi") it names.
pub fn target_name(scope: Scope, name: &str) -> String {
    match scope {
        Scope::Model(_) => name.to_owned(),
        Scope::Manufacturer { category, .. } => {
            format!(
                "All {name} {}",
                category.map_or("products", Category::plural)
            )
        }
    }
}

/// The models and makers an advisory decides on, each once, in the order
/// it names them.
pub fn targets(decisions: &[DecisionSpec]) -> Vec<Scope> {
    let mut targets: Vec<Scope> = Vec::new();
    for decision in decisions {
        if !targets.contains(&decision.scope) {
            targets.push(decision.scope);
        }
    }
    targets
}

/// One decision in words, as the advisory states it: "Not allowed before
/// 6.3.1", "Allowed with conditions from 2.1 (work profile only)".
pub fn decision_words(decision: &DecisionSpec) -> String {
    let mut text = status_words(decision.decision.into()).to_owned();
    if let Some(range) = &decision.firmware {
        text.push(' ');
        text.push_str(&range.words());
    }
    if let Some(conditions) = &decision.conditions {
        text.push_str(&format!(" ({conditions})"));
    }
    text
}

/// How an amendment changed what is decided, one line per model or maker
/// and range whose decision differs: "Xiaomi Redmi 1S, versions before
/// 6.3.1: not allowed → allowed".
pub fn decision_changes(
    before: &[DecisionSpec],
    after: &[DecisionSpec],
    name: impl Fn(Scope) -> String,
) -> Vec<String> {
    let key = |d: &DecisionSpec| (d.scope, d.firmware.clone());
    let said = |d: Option<&DecisionSpec>| {
        d.map_or("no decision".to_owned(), |d| {
            let mut text = status_words(d.decision.into()).to_lowercase();
            if let Some(conditions) = &d.conditions {
                text.push_str(&format!(" ({conditions})"));
            }
            text
        })
    };
    let mut keys: Vec<(Scope, Option<FirmwareRange>)> = Vec::new();
    for k in before.iter().chain(after).map(key) {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .filter_map(|k| {
            let old = before.iter().find(|d| key(d) == k);
            let new = after.iter().find(|d| key(d) == k);
            (old != new).then(|| {
                let range =
                    k.1.as_ref()
                        .map_or(String::new(), |r| format!(", versions {}", r.words()));
                format!("{}{range}: {} → {}", name(k.0), said(old), said(new))
            })
        })
        .collect()
}

/// "What you must do", one line per model or maker an advisory decides on,
/// each from the advisory's decisions about it (so a firmware split reads as
/// one answer, never as "do not use" beside "you may use").
pub fn advisory_says(decisions: &[DecisionSpec], name: impl Fn(Scope) -> String) -> Vec<String> {
    let ever = DateTime::<Utc>::MIN_UTC;
    targets(decisions)
        .into_iter()
        .map(|scope| {
            let own: Vec<DecisionInForce> = decisions
                .iter()
                .filter(|d| d.scope == scope)
                .map(|d| DecisionInForce {
                    advisory_id: Uuid::nil(),
                    reference: String::new(),
                    title: String::new(),
                    tlp: Tlp::Clear,
                    scope,
                    decision: d.decision,
                    conditions: d.conditions.as_ref().map(ToString::to_string),
                    firmware: d.firmware.clone(),
                    effective_at: ever,
                    until: None,
                })
                .collect();
            must_do(&name(scope), &derive(&own, None, ever, ever, None))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_model_is_called_by_its_maker_once() {
        use super::model_name;
        assert_eq!(model_name("Xiaomi", "Redmi 1S"), "Xiaomi Redmi 1S");
        assert_eq!(model_name("Apple", "iPhone 5s"), "Apple iPhone 5s");
        assert_eq!(model_name("Fairphone", "Fairphone 2"), "Fairphone 2");
        assert_eq!(
            model_name("Samsung", "SAMSUNG Galaxy S5"),
            "SAMSUNG Galaxy S5"
        );
        assert_eq!(model_name("Nokia", "Nokia"), "Nokia");
        // Only the whole word: "Mi" does not name the "Mix 2".
        assert_eq!(model_name("Mi", "Mix 2"), "Mi Mix 2");
        assert_eq!(
            model_name("Fairphone", "Fairphone2"),
            "Fairphone Fairphone2"
        );
        // A name shorter than the maker's, or cut inside a character.
        assert_eq!(model_name("Xiaomi", "Mi"), "Xiaomi Mi");
        assert_eq!(model_name("小米", "小"), "小米 小");
        assert_eq!(model_name("Huawei", "Huaw€i P8"), "Huawei Huaw€i P8");
    }

    use proptest::prelude::*;

    use super::*;
    use crate::domain::clearance::Decision;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn decision(decision: Decision, scope: Scope, firmware: Option<&str>) -> DecisionInForce {
        DecisionInForce {
            advisory_id: Uuid::new_v4(),
            reference: "CLR-2026-0001".into(),
            title: "t".into(),
            tlp: Tlp::Clear,
            scope,
            decision,
            conditions: (decision == Decision::ApprovedWithConditions)
                .then(|| "work profile only".into()),
            firmware: firmware.map(|f| FirmwareRange::parse(f).unwrap()),
            effective_at: now(),
            until: None,
        }
    }

    fn model() -> Scope {
        Scope::Model(Uuid::nil())
    }

    #[test]
    fn an_approval_from_a_version_says_so_and_what_holds_before() {
        let c = derive(
            &[decision(Decision::Approved, model(), Some(">=7.1.2"))],
            None,
            now(),
            now(),
            None,
        );
        let w = words(&c);
        assert_eq!(w.headline, "Allowed from 7.1.2");
        assert_eq!(
            w.sentence(),
            "Allowed from 7.1.2 — Versions before 7.1.2 are not assessed. Check the version in Settings."
        );
        let v7 = FirmwareVersion::parse("7.0").unwrap();
        let at = derive(
            &[decision(Decision::Approved, model(), Some(">=7.1.2"))],
            None,
            now(),
            now(),
            Some(&v7),
        );
        let w = words_for_version(&at, &c, &v7);
        assert_eq!(w.headline, "Not assessed on version 7.0");
        assert_eq!(
            w.details,
            ["Versions from 7.1.2 are allowed: an update may help."]
        );
    }

    #[test]
    fn what_you_must_do_is_an_instruction() {
        let one = |kind| derive(&[decision(kind, model(), None)], None, now(), now(), None);
        assert_eq!(
            must_do("All Xiaomi phones", &one(Decision::Prohibited)),
            "All Xiaomi phones: Not allowed. Do not use one."
        );
        assert_eq!(
            must_do("Apple iPhone 5s", &one(Decision::Approved)),
            "Apple iPhone 5s: Allowed. You may use one."
        );
    }

    #[test]
    fn the_2014_fix_never_says_both_do_not_use_and_use() {
        let c = derive(
            &[
                decision(Decision::Prohibited, model(), Some("<6.3.1")),
                decision(Decision::Approved, model(), Some(">=6.3.1")),
            ],
            None,
            now(),
            now(),
            None,
        );
        assert_eq!(
            must_do("Xiaomi Redmi 1S", &c),
            "Xiaomi Redmi 1S: Allowed from 6.3.1 — Versions before 6.3.1 are not allowed. Check the version in Settings."
        );
    }

    fn spec(decision: Decision, firmware: Option<&str>, conditions: Option<&str>) -> DecisionSpec {
        DecisionSpec {
            scope: model(),
            decision,
            conditions: conditions.map(|c| crate::domain::text::Prose::parse(c).unwrap()),
            firmware: firmware.map(|f| FirmwareRange::parse(f).unwrap()),
        }
    }

    #[test]
    fn each_decision_and_each_change_reads_as_words() {
        assert_eq!(
            decision_words(&spec(Decision::Prohibited, Some("<6.3.1"), None)),
            "Not allowed before 6.3.1"
        );
        assert_eq!(
            decision_words(&spec(
                Decision::ApprovedWithConditions,
                None,
                Some("work profile only")
            )),
            "Allowed with conditions (work profile only)"
        );
        let before = [spec(Decision::Prohibited, None, None)];
        let after = [
            spec(Decision::Prohibited, Some("<6.3.1"), None),
            spec(Decision::Approved, Some(">=6.3.1"), None),
        ];
        let name = |_: Scope| "Xiaomi Redmi 1S".to_owned();
        assert_eq!(
            decision_changes(&before, &after, name),
            [
                "Xiaomi Redmi 1S: not allowed → no decision",
                "Xiaomi Redmi 1S, versions before 6.3.1: no decision → not allowed",
                "Xiaomi Redmi 1S, versions from 6.3.1: no decision → allowed",
            ]
        );
        assert!(decision_changes(&after, &after, name).is_empty());
    }

    #[test]
    fn every_status_has_plain_words() {
        use crate::domain::clearance::OpenReview;
        use chrono::TimeZone;
        let clearance = |status, conditions: Option<&str>| Clearance {
            status,
            since: now(),
            conditions: conditions.map(Into::into),
            advisories: Vec::new(),
            review: None,
            by_firmware: Vec::new(),
        };
        use ClearanceStatus::*;
        let cases = [
            (Prohibited, None, "Not allowed."),
            (
                Restricted,
                Some("office use only"),
                "Restricted — Office use only.",
            ),
            (
                ApprovedWithConditions,
                Some("work profile only"),
                "Allowed with conditions — Work profile only.",
            ),
            (Approved, None, "Allowed."),
            (UnderReview, None, "Under review."),
            (Unassessed, None, "Not assessed."),
        ];
        for (status, conditions, sentence) in cases {
            assert_eq!(words(&clearance(status, conditions)).sentence(), sentence);
        }
        let mut review = clearance(UnderReview, None);
        review.review = Some(OpenReview {
            id: Uuid::now_v7(),
            due_at: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
        });
        assert_eq!(
            words(&review).headline,
            "Under review, decision due 1 March 2026"
        );
    }

    #[test]
    fn whom_to_ask_is_the_contact_when_there_is_one() {
        let office = Some("Security office, ext. 4242, security@example.org");
        assert_eq!(
            questions(office),
            "Questions? Security office, ext. 4242, security@example.org"
        );
        assert_eq!(questions(None), "Questions? Ask your security office.");
        assert_eq!(
            not_in_the_register(office),
            "This phone is not in the register — it has not been assessed. \
             Ask before you use it: Security office, ext. 4242, security@example.org."
        );
        assert_eq!(
            not_in_the_register(Some("The security office.")),
            "This phone is not in the register — it has not been assessed. \
             Ask before you use it: The security office."
        );
        assert_eq!(
            not_in_the_register(None),
            "This phone is not in the register — it has not been assessed. \
             Ask your security office before you use it."
        );
    }

    #[test]
    fn conditions_are_said_or_asked_for() {
        let c = derive(
            &[decision(Decision::ApprovedWithConditions, model(), None)],
            None,
            now(),
            now(),
            None,
        );
        assert_eq!(
            words(&c).sentence(),
            "Allowed with conditions — Work profile only."
        );
        let mut hidden = c.clone();
        hidden.conditions = None;
        assert_eq!(
            words(&hidden).details,
            ["Ask your security office which conditions apply."]
        );
    }

    /// Whether a text calls something allowed (not "not allowed").
    fn says_allowed(text: &str) -> bool {
        let lower = text.to_lowercase();
        lower.replace("not allowed", "").contains("allowed")
    }

    fn any_decision() -> impl Strategy<Value = DecisionInForce> {
        let kind = prop_oneof![
            Just(Decision::Prohibited),
            Just(Decision::Restricted),
            Just(Decision::ApprovedWithConditions),
            Just(Decision::Approved)
        ];
        let scope = prop_oneof![
            Just(Scope::Model(Uuid::nil())),
            Just(Scope::Manufacturer {
                id: Uuid::nil(),
                category: None
            }),
            Just(Scope::Manufacturer {
                id: Uuid::nil(),
                category: Some(Category::Phone)
            }),
        ];
        let range = prop_oneof![
            Just(None),
            (0u64..4, 0u64..3).prop_map(|(a, b)| Some(format!("<{a}.{b}"))),
            (0u64..4, 0u64..3).prop_map(|(a, b)| Some(format!(">={a}.{b}"))),
            (0u64..3, 0u64..3).prop_map(|(a, b)| Some(format!(">={a},<{}.{b}", a + 1))),
            (0u64..4).prop_map(|a| Some(format!("={a}"))),
        ];
        (kind, scope, range)
            .prop_map(|(kind, scope, range)| decision(kind, scope, range.as_deref()))
    }

    proptest! {
        /// The API's status, the page's words and the mail's words agree
        /// for every version, and "allowed" is said only of versions whose
        /// status allows use.
        #[test]
        fn status_and_words_never_disagree(
            decisions in proptest::collection::vec(any_decision(), 0..5),
            probes in proptest::collection::vec((0u64..5, 0u64..3), 1..6),
        ) {
            let overall = derive(&decisions, None, now(), now(), None);
            let said = words(&overall);
            prop_assert_eq!(
                says_allowed(&said.headline),
                overall.status.allows_use() || overall.by_firmware.iter().any(|p| p.status.allows_use())
            );
            prop_assert_eq!(overall.by_firmware.is_empty(), overall.status != ClearanceStatus::DependsOnFirmware);
            for piece in &overall.by_firmware {
                prop_assert_ne!(piece.status, ClearanceStatus::DependsOnFirmware);
                prop_assert_eq!(says_allowed(&piece_words(piece)), piece.status.allows_use());
            }
            let mail = must_do("X", &overall);
            prop_assert!(mail.contains(&said.sentence()));
            prop_assert!(
                !(mail.contains("Do not use") && mail.contains("may use")),
                "{}", mail
            );
            for (a, b) in probes {
                let version = FirmwareVersion::parse(&format!("{a}.{b}")).unwrap();
                let at = derive(&decisions, None, now(), now(), Some(&version));
                let expected = match overall.by_firmware.iter().find(|p| {
                    FirmwareRange::parse(&p.firmware).is_ok_and(|r| r.holds(&version))
                }) {
                    Some(piece) => piece.status,
                    None => overall.status,
                };
                prop_assert_eq!(at.status, expected, "version {}", version);
                let at_words = words_for_version(&at, &overall, &version);
                prop_assert_eq!(says_allowed(&at_words.headline), at.status.allows_use());
            }
        }
    }
}
