//! Advisories: their markings and audience, the decisions they make, and the
//! lifecycle every advisory goes through — a pure state machine, so that
//! every rule about what may happen when lives here and nowhere else.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::clearance::{Decision, Scope};
use super::firmware::FirmwareRange;
use super::registry::Category;
use super::text::{Line, Prose};

crate::text_enum! {
    /// Traffic Light Protocol 2.0: how far an advisory may be shared.
    pub enum Tlp {
        Clear,
        Green,
        Amber,
        AmberStrict,
        Red,
    }
}

crate::text_enum! {
    /// Where an advisory stands. Before its first publication it is the
    /// stage of its first revision; afterwards, whether it is in force.
    pub enum AdvisoryState {
        Draft,
        Submitted,
        Approved,
        Published,
        Withdrawn,
        Superseded,
    }
}

crate::text_enum! {
    /// Where a revision being written stands.
    pub enum Stage {
        Draft,
        Submitted,
        Approved,
        Published,
    }
}

crate::text_enum! {
    /// What may be done to an advisory.
    pub enum Action {
        Edit,
        Submit,
        Reject,
        Approve,
        Publish,
        Amend,
        Withdraw,
        Supersede,
    }
}

/// Who is reading: what they may see of an advisory depends on its TLP.
/// This is the one place that decides it; every surface asks here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// Anyone, without a token: a family member on the lookup page, a
    /// subscriber, a feed reader.
    Public,
    /// Someone of the organisation, signed in with a token.
    Personnel,
}

impl Viewer {
    /// Whether the viewer may read what an advisory of `tlp` says.
    pub fn may_read(self, tlp: Tlp) -> bool {
        match self {
            Self::Public => tlp == Tlp::Clear,
            Self::Personnel => true,
        }
    }
}

impl AdvisoryState {
    /// Whether readers may see the advisory at all.
    pub fn is_public(self) -> bool {
        matches!(self, Self::Published | Self::Withdrawn | Self::Superseded)
    }
}

/// An advisory's position in the lifecycle: its own state, and the stage of
/// the revision being written, if any (the first one, or an amendment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    pub state: AdvisoryState,
    pub working: Option<Stage>,
}

/// A transition the lifecycle does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} an advisory whose {subject} is {current}")]
pub struct IllegalTransition {
    pub action: Action,
    /// "state", or "amendment" when the call acted on an open amendment.
    pub subject: &'static str,
    pub current: &'static str,
}

impl Lifecycle {
    /// A new advisory: a draft of its first revision.
    pub fn new_draft() -> Self {
        Self {
            state: AdvisoryState::Draft,
            working: Some(Stage::Draft),
        }
    }

    /// The lifecycle after `action`, or why it cannot happen.
    pub fn apply(self, action: Action) -> Result<Self, IllegalTransition> {
        use Action::*;
        let on_working = matches!(action, Edit | Submit | Reject | Approve | Publish);
        let illegal = || {
            let amendment = on_working && self.state == AdvisoryState::Published;
            IllegalTransition {
                action,
                subject: if amendment && self.working.is_some() {
                    "amendment"
                } else {
                    "state"
                },
                current: match (amendment, self.working) {
                    (true, Some(stage)) => stage.as_str(),
                    _ => self.state.as_str(),
                },
            }
        };
        let next_stage = match (action, self.working) {
            (Edit, Some(Stage::Draft)) => Some(Stage::Draft),
            (Submit, Some(Stage::Draft)) => Some(Stage::Submitted),
            (Reject, Some(Stage::Submitted)) => Some(Stage::Draft),
            (Approve, Some(Stage::Submitted)) => Some(Stage::Approved),
            _ => None,
        };
        match (action, self.state) {
            (Edit | Submit | Reject | Approve, AdvisoryState::Published) => next_stage
                .map(|stage| Self {
                    working: Some(stage),
                    ..self
                })
                .ok_or_else(illegal),
            (Edit | Submit | Reject | Approve, _) => next_stage
                .map(|stage| Self {
                    state: match stage {
                        Stage::Draft => AdvisoryState::Draft,
                        Stage::Submitted => AdvisoryState::Submitted,
                        Stage::Approved | Stage::Published => AdvisoryState::Approved,
                    },
                    working: Some(stage),
                })
                .filter(|_| {
                    self.state != AdvisoryState::Withdrawn
                        && self.state != AdvisoryState::Superseded
                })
                .ok_or_else(illegal),
            (Publish, AdvisoryState::Approved | AdvisoryState::Published)
                if self.working == Some(Stage::Approved) =>
            {
                Ok(Self {
                    state: AdvisoryState::Published,
                    working: None,
                })
            }
            (Amend, AdvisoryState::Published) if self.working.is_none() => Ok(Self {
                working: Some(Stage::Draft),
                ..self
            }),
            (Withdraw, AdvisoryState::Published) => Ok(Self {
                state: AdvisoryState::Withdrawn,
                working: None,
            }),
            (Supersede, AdvisoryState::Published) => Ok(Self {
                state: AdvisoryState::Superseded,
                working: None,
            }),
            _ => Err(illegal()),
        }
    }
}

/// The two-person rule: the approver of a revision is neither the
/// advisory's author nor anyone who wrote the revision.
pub fn may_approve(approver: &str, advisory_author: &str, revision_writers: &[String]) -> bool {
    approver != advisory_author && !revision_writers.iter().any(|w| w == approver)
}

/// Who must follow an advisory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    /// Every active person in the personnel directory.
    pub all_personnel: bool,
    /// Units whose members must follow it (besides, or instead of, everyone).
    #[serde(default)]
    pub units: Vec<Line>,
}

impl Default for Audience {
    fn default() -> Self {
        Self {
            all_personnel: true,
            units: Vec::new(),
        }
    }
}

/// One decision of an advisory: about one model, or about every model of a
/// manufacturer (optionally of one category), registered now or later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DecisionInput", into = "DecisionInput")]
pub struct DecisionSpec {
    pub scope: Scope,
    pub decision: Decision,
    /// Required for `approved_with_conditions`.
    pub conditions: Option<Prose>,
    /// The firmware range the decision is limited to; `None` for every version.
    pub firmware: Option<FirmwareRange>,
}

/// A decision as a request gives it: exactly one of `model_id` and
/// `manufacturer_id`, and a `category` only with a manufacturer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DecisionSpec)]
pub struct DecisionInput {
    /// The model decided on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<Uuid>,
    /// Or the manufacturer, every model of which is decided on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer_id: Option<Uuid>,
    /// With `manufacturer_id`: only its models of this category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    pub decision: Decision,
    /// Required for `approved_with_conditions`.
    #[serde(default)]
    pub conditions: Option<Prose>,
    /// The firmware range the decision is limited to; null for every version.
    #[serde(default)]
    pub firmware: Option<FirmwareRange>,
}

impl TryFrom<DecisionInput> for DecisionSpec {
    type Error = String;
    fn try_from(input: DecisionInput) -> Result<Self, String> {
        let scope = match (input.model_id, input.manufacturer_id, input.category) {
            (Some(id), None, None) => Scope::Model(id),
            (None, Some(id), category) => Scope::Manufacturer { id, category },
            (Some(_), None, Some(_)) => {
                return Err("a category narrows a manufacturer-wide decision: give manufacturer_id, not model_id".into());
            }
            _ => {
                return Err("a decision names exactly one of model_id and manufacturer_id".into());
            }
        };
        Ok(Self {
            scope,
            decision: input.decision,
            conditions: input.conditions,
            firmware: input.firmware,
        })
    }
}

impl From<DecisionSpec> for DecisionInput {
    fn from(spec: DecisionSpec) -> Self {
        let (model_id, manufacturer_id, category) = match spec.scope {
            Scope::Model(id) => (Some(id), None, None),
            Scope::Manufacturer { id, category } => (None, Some(id), category),
        };
        Self {
            model_id,
            manufacturer_id,
            category,
            decision: spec.decision,
            conditions: spec.conditions,
            firmware: spec.firmware,
        }
    }
}

/// What an advisory says: the content of one revision (and the body of a
/// request that drafts one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateAdvisory)]
pub struct AdvisoryContent {
    pub title: Line,
    pub summary: Prose,
    /// Markdown; empty when the summary says it all.
    #[serde(default, deserialize_with = "super::text::prose_or_empty")]
    #[schema(value_type = Option<String>)]
    pub body: String,
    pub severity: super::severity::Severity,
    pub tlp: Tlp,
    /// Who must follow it; all personnel when absent.
    #[serde(default)]
    pub audience: Audience,
    #[serde(default)]
    pub acknowledgement_required: bool,
    #[serde(default)]
    #[schema(value_type = Vec<DecisionInput>)]
    pub decisions: Vec<DecisionSpec>,
    #[serde(default)]
    pub evidence_ids: Vec<Uuid>,
    /// Published advisories this one replaces once published.
    #[serde(default)]
    pub supersedes: Vec<Uuid>,
    /// When the decisions start to apply; at publication when absent.
    #[serde(default)]
    pub effective_at: Option<DateTime<Utc>>,
    /// When the advisory should be reviewed again.
    #[serde(default)]
    pub review_due: Option<DateTime<Utc>>,
}

impl AdvisoryContent {
    /// Problems with the content on its own (field path, message); whether
    /// the models, evidence and advisories it names exist is the store's
    /// to check.
    pub fn problems(&self, own_id: Option<Uuid>) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (i, decision) in self.decisions.iter().enumerate() {
            if decision.decision == Decision::ApprovedWithConditions
                && decision.conditions.is_none()
            {
                problems.push((
                    format!("decisions[{i}].conditions"),
                    "an approval with conditions must state the conditions".into(),
                ));
            }
        }
        if let Some(own) = own_id
            && let Some(i) = self.supersedes.iter().position(|s| *s == own)
        {
            problems.push((
                format!("supersedes[{i}]"),
                "an advisory cannot supersede itself".into(),
            ));
        }
        if !self.audience.all_personnel && self.audience.units.is_empty() {
            problems.push((
                "audience".into(),
                "name at least one unit, or address all personnel".into(),
            ));
        }
        problems
    }

    /// What stops the content from being published (field, message).
    pub fn publication_problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.decisions.is_empty() {
            problems.push((
                "decisions".into(),
                "a published advisory must decide on at least one model".into(),
            ));
        }
        if self.evidence_ids.is_empty() {
            problems.push((
                "evidence_ids".into(),
                "a published advisory must cite at least one evidence record".into(),
            ));
        }
        problems
    }
}

/// Changes to a draft: each field given replaces that part of the content;
/// absent fields stay as they are, and `null` clears the two dates.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdateAdvisory)]
pub struct ContentPatch {
    pub title: Option<Line>,
    pub summary: Option<Prose>,
    #[serde(default, deserialize_with = "super::text::prose_change")]
    #[schema(value_type = Option<String>)]
    pub body: Option<String>,
    pub severity: Option<super::severity::Severity>,
    pub tlp: Option<Tlp>,
    pub audience: Option<Audience>,
    pub acknowledgement_required: Option<bool>,
    #[schema(value_type = Option<Vec<DecisionInput>>)]
    pub decisions: Option<Vec<DecisionSpec>>,
    pub evidence_ids: Option<Vec<Uuid>>,
    pub supersedes: Option<Vec<Uuid>>,
    /// null clears it.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub effective_at: Option<Option<DateTime<Utc>>>,
    /// null clears it.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub review_due: Option<Option<DateTime<Utc>>>,
}

impl ContentPatch {
    pub fn apply(self, content: AdvisoryContent) -> AdvisoryContent {
        AdvisoryContent {
            title: self.title.unwrap_or(content.title),
            summary: self.summary.unwrap_or(content.summary),
            body: self.body.unwrap_or(content.body),
            severity: self.severity.unwrap_or(content.severity),
            tlp: self.tlp.unwrap_or(content.tlp),
            audience: self.audience.unwrap_or(content.audience),
            acknowledgement_required: self
                .acknowledgement_required
                .unwrap_or(content.acknowledgement_required),
            decisions: self.decisions.unwrap_or(content.decisions),
            evidence_ids: self.evidence_ids.unwrap_or(content.evidence_ids),
            supersedes: self.supersedes.unwrap_or(content.supersedes),
            effective_at: self.effective_at.unwrap_or(content.effective_at),
            review_due: self.review_due.unwrap_or(content.review_due),
        }
    }
}

/// Why an advisory is rejected or withdrawn, as a request body gives it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub reason: Prose,
}

/// The reference an advisory gets on first publication: `CLR-2026-0001`.
pub fn reference(year: i32, number: i32) -> String {
    format!("CLR-{year}-{number:04}")
}

/// A reference as a link may spell it (`clr-2026-0001`), in the form it was
/// given (`CLR-2026-0001`); `None` when it cannot be one.
pub fn parse_reference(raw: &str) -> Option<String> {
    let upper = raw.trim().to_ascii_uppercase();
    let (year, number) = upper.strip_prefix("CLR-")?.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (year.len() == 4 && digits(year) && number.len() >= 4 && number.len() <= 9 && digits(number))
        .then_some(upper)
}

/// The public page of the advisory `reference`, under the service's public
/// URL: what mail, feed entries and lookup answers link to.
pub fn advisory_page_url(public_url: &url::Url, reference: &str) -> String {
    public_page(public_url, &format!("advisories/{reference}"))
}

/// The lookup page of the deployment at `public_url`.
pub fn lookup_page_url(public_url: &url::Url) -> String {
    public_page(public_url, "lookup")
}

/// The page at `path` under the service's public URL, whether or not that
/// URL ends in a slash.
fn public_page(public_url: &url::Url, path: &str) -> String {
    let base = public_url.as_str().trim_end_matches('/');
    format!("{base}/{path}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use AdvisoryState as S;

    fn at(state: AdvisoryState, working: Option<Stage>) -> Lifecycle {
        Lifecycle { state, working }
    }

    #[test]
    fn the_happy_path_runs_draft_to_published() {
        let l = Lifecycle::new_draft();
        let l = l.apply(Action::Edit).unwrap();
        let l = l.apply(Action::Submit).unwrap();
        assert_eq!(l.state, S::Submitted);
        let l = l.apply(Action::Reject).unwrap();
        assert_eq!(l, Lifecycle::new_draft());
        let l = l
            .apply(Action::Submit)
            .and_then(|l| l.apply(Action::Approve))
            .unwrap();
        assert_eq!(l, at(S::Approved, Some(Stage::Approved)));
        let l = l.apply(Action::Publish).unwrap();
        assert_eq!(l, at(S::Published, None));
    }

    #[test]
    fn an_amendment_runs_the_same_stages_while_the_advisory_stays_in_force() {
        let l = at(S::Published, None).apply(Action::Amend).unwrap();
        assert_eq!(l, at(S::Published, Some(Stage::Draft)));
        let l = l.apply(Action::Submit).unwrap();
        assert_eq!(l, at(S::Published, Some(Stage::Submitted)));
        let err = l.apply(Action::Amend).unwrap_err();
        assert_eq!(err.current, "published");
        let err = l.apply(Action::Submit).unwrap_err();
        assert_eq!((err.subject, err.current), ("amendment", "submitted"));
        let l = l
            .apply(Action::Approve)
            .and_then(|l| l.apply(Action::Publish))
            .unwrap();
        assert_eq!(l, at(S::Published, None));
    }

    #[test]
    fn every_transition_not_in_the_machine_is_refused_with_the_current_state() {
        let legal: &[(Lifecycle, Action)] = &[
            (Lifecycle::new_draft(), Action::Edit),
            (Lifecycle::new_draft(), Action::Submit),
            (at(S::Submitted, Some(Stage::Submitted)), Action::Reject),
            (at(S::Submitted, Some(Stage::Submitted)), Action::Approve),
            (at(S::Approved, Some(Stage::Approved)), Action::Publish),
            (at(S::Published, None), Action::Amend),
            (at(S::Published, None), Action::Withdraw),
            (at(S::Published, None), Action::Supersede),
            (at(S::Published, Some(Stage::Draft)), Action::Edit),
            (at(S::Published, Some(Stage::Draft)), Action::Submit),
            (at(S::Published, Some(Stage::Draft)), Action::Withdraw),
            (at(S::Published, Some(Stage::Draft)), Action::Supersede),
            (at(S::Published, Some(Stage::Submitted)), Action::Reject),
            (at(S::Published, Some(Stage::Submitted)), Action::Approve),
            (at(S::Published, Some(Stage::Submitted)), Action::Withdraw),
            (at(S::Published, Some(Stage::Submitted)), Action::Supersede),
            (at(S::Published, Some(Stage::Approved)), Action::Publish),
            (at(S::Published, Some(Stage::Approved)), Action::Withdraw),
            (at(S::Published, Some(Stage::Approved)), Action::Supersede),
        ];
        let states = [
            Lifecycle::new_draft(),
            at(S::Submitted, Some(Stage::Submitted)),
            at(S::Approved, Some(Stage::Approved)),
            at(S::Published, None),
            at(S::Published, Some(Stage::Draft)),
            at(S::Published, Some(Stage::Submitted)),
            at(S::Published, Some(Stage::Approved)),
            at(S::Withdrawn, None),
            at(S::Superseded, None),
        ];
        for state in states {
            for action in Action::ALL {
                let result = state.apply(*action);
                let expected_legal = legal.contains(&(state, *action));
                assert_eq!(result.is_ok(), expected_legal, "{state:?} {action:?}");
                if let Err(err) = result {
                    let shown = match (err.subject, state.working) {
                        ("amendment", Some(stage)) => stage.as_str(),
                        _ => state.state.as_str(),
                    };
                    assert_eq!(err.current, shown);
                }
            }
        }
    }

    #[test]
    fn nobody_approves_what_they_wrote() {
        let writers = vec!["alice".to_owned(), "bob".to_owned()];
        assert!(!may_approve("alice", "alice", &[]));
        assert!(!may_approve("bob", "alice", &writers));
        assert!(may_approve("carol", "alice", &writers));
    }

    #[test]
    fn references_have_four_digits_at_least() {
        assert_eq!(reference(2026, 1), "CLR-2026-0001");
        assert_eq!(reference(2026, 12345), "CLR-2026-12345");
    }

    #[test]
    fn references_in_links_are_read_in_any_case_and_nothing_else_is() {
        assert_eq!(
            parse_reference("clr-2026-0001").as_deref(),
            Some("CLR-2026-0001")
        );
        assert_eq!(
            parse_reference("CLR-2026-12345").as_deref(),
            Some("CLR-2026-12345")
        );
        for bad in [
            "",
            "CLR-2026",
            "CLR-26-0001",
            "CLR-2026-001",
            "XYZ-2026-0001",
            "CLR-2026-00a1",
            "CLR-2026-0001/x",
        ] {
            assert_eq!(parse_reference(bad), None, "{bad}");
        }
        let base = url::Url::parse("https://clearance.example.org/").unwrap();
        assert_eq!(
            advisory_page_url(&base, "CLR-2026-0001"),
            "https://clearance.example.org/advisories/CLR-2026-0001"
        );
    }
}
