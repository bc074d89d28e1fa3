//! A model's clearance is derived, never typed in: from the decisions of the
//! advisories in force that apply to it, else from whether a review is open.
//! A decision names a model, or every model of a maker (optionally of one
//! category); for each firmware version the most specific scope with a
//! decision covering it wins, and among those the most restrictive. Without
//! a version, an answer never claims more than holds for every version:
//! where versions differ it says so, piece by piece.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::advisory::{Tlp, Viewer};
use super::firmware::{self, FirmwareRange, FirmwareVersion, Span};
use super::registry::Category;

crate::text_enum! {
    /// What an advisory decides for a model, from most to least restrictive
    /// (the order `Ord` follows).
    #[derive(PartialOrd, Ord)]
    pub enum Decision {
        Prohibited,
        Restricted,
        ApprovedWithConditions,
        Approved,
    }
}

crate::text_enum! {
    /// Where a model stands.
    pub enum ClearanceStatus {
        Prohibited,
        Restricted,
        ApprovedWithConditions,
        Approved,
        UnderReview,
        Unassessed,
        /// The decisions differ between firmware versions: see `by_firmware`.
        DependsOnFirmware,
    }
}

impl ClearanceStatus {
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.parse()
    }

    /// Whether a person may use the device (perhaps with conditions).
    pub fn allows_use(self) -> bool {
        matches!(self, Self::Approved | Self::ApprovedWithConditions)
    }

    /// Order from the answer that permits least to the one that permits
    /// most: what a summary of several answers falls back on.
    fn caution(self) -> u8 {
        match self {
            Self::Prohibited => 0,
            Self::UnderReview => 1,
            Self::Unassessed => 2,
            Self::Restricted => 3,
            Self::ApprovedWithConditions => 4,
            Self::Approved => 5,
            Self::DependsOnFirmware => 6,
        }
    }
}

impl From<Decision> for ClearanceStatus {
    fn from(decision: Decision) -> Self {
        match decision {
            Decision::Prohibited => Self::Prohibited,
            Decision::Restricted => Self::Restricted,
            Decision::ApprovedWithConditions => Self::ApprovedWithConditions,
            Decision::Approved => Self::Approved,
        }
    }
}

crate::text_enum! {
    /// How widely a decision applies.
    pub enum ScopeKind {
        /// One model.
        Model,
        /// Every model of a manufacturer, registered now or later (of one
        /// category when `category` is set).
        Manufacturer,
    }
}

/// What a decision names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Model(Uuid),
    Manufacturer {
        id: Uuid,
        category: Option<Category>,
    },
}

impl Scope {
    /// Higher is more specific: a model over a maker's category over a maker.
    fn specificity(self) -> u8 {
        match self {
            Self::Model(_) => 2,
            Self::Manufacturer {
                category: Some(_), ..
            } => 1,
            Self::Manufacturer { category: None, .. } => 0,
        }
    }

    /// The model or manufacturer named.
    pub fn target(self) -> Uuid {
        match self {
            Self::Model(id) | Self::Manufacturer { id, .. } => id,
        }
    }

    pub fn model(self) -> Option<Uuid> {
        match self {
            Self::Model(id) => Some(id),
            Self::Manufacturer { .. } => None,
        }
    }

    pub fn manufacturer(self) -> Option<Uuid> {
        match self {
            Self::Model(_) => None,
            Self::Manufacturer { id, .. } => Some(id),
        }
    }

    pub fn kind(self) -> ScopeKind {
        match self {
            Self::Model(_) => ScopeKind::Model,
            Self::Manufacturer { .. } => ScopeKind::Manufacturer,
        }
    }

    pub fn category(self) -> Option<Category> {
        match self {
            Self::Model(_) => None,
            Self::Manufacturer { category, .. } => category,
        }
    }

    /// Whether the scope takes in a model of `manufacturer` and `category`.
    pub fn takes_in(self, model: Uuid, manufacturer: Uuid, category: Category) -> bool {
        match self {
            Self::Model(id) => id == model,
            Self::Manufacturer { id, category: only } => {
                id == manufacturer && only.is_none_or(|c| c == category)
            }
        }
    }
}

/// One decision of a published advisory revision that applies to a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionInForce {
    pub advisory_id: Uuid,
    pub reference: String,
    pub title: String,
    pub tlp: Tlp,
    pub scope: Scope,
    pub decision: Decision,
    pub conditions: Option<String>,
    /// The firmware range the decision is limited to.
    pub firmware: Option<FirmwareRange>,
    pub effective_at: DateTime<Utc>,
    /// When it stops applying because what replaces it takes effect: a
    /// later revision of its advisory, or the advisory superseding it.
    /// Until then it stands, so that nothing lapses in between.
    pub until: Option<DateTime<Utc>>,
}

impl DecisionInForce {
    /// Whether it applies at `now`: its date has come, and what replaces
    /// it has not taken effect yet.
    pub fn applies_at(&self, now: DateTime<Utc>) -> bool {
        self.effective_at <= now && self.until.is_none_or(|until| now < until)
    }

    fn covers(&self, piece: &Span) -> bool {
        self.firmware
            .as_ref()
            .is_none_or(|range| range.covers(piece))
    }
}

/// A review of a model that is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct OpenReview {
    pub id: Uuid,
    pub due_at: DateTime<Utc>,
}

/// An advisory decision behind an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DecidingAdvisory {
    pub id: Uuid,
    pub reference: String,
    /// The advisory's title.
    pub title: String,
    pub tlp: Tlp,
    pub decision: Decision,
    /// What an `approved_with_conditions` or `restricted` decision requires.
    pub conditions: Option<String>,
    /// The firmware range the decision applies to; null for every version.
    pub firmware: Option<String>,
    /// `model`, or `manufacturer` for a decision about every model of a maker.
    pub scope: ScopeKind,
    /// With `scope: manufacturer`, the one category it is narrowed to.
    pub category: Option<Category>,
    /// The advisory's public page (`{CLEARANCE_PUBLIC_URL}/advisories/{reference}`)
    /// in lookup answers; null elsewhere.
    pub page: Option<String>,
}

impl From<&DecisionInForce> for DecidingAdvisory {
    fn from(d: &DecisionInForce) -> Self {
        Self {
            id: d.advisory_id,
            reference: d.reference.clone(),
            title: d.title.clone(),
            tlp: d.tlp,
            decision: d.decision,
            conditions: d.conditions.clone(),
            firmware: d.firmware.as_ref().map(ToString::to_string),
            scope: d.scope.kind(),
            category: d.scope.category(),
            page: None,
        }
    }
}

/// The answer for one range of firmware versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FirmwareAnswer {
    /// The versions this answer holds for, e.g. `<7.1.2` or `>=5,<6`.
    pub firmware: String,
    /// Never `depends_on_firmware`.
    pub status: ClearanceStatus,
    pub conditions: Option<String>,
    pub advisories: Vec<DecidingAdvisory>,
}

/// A model's clearance and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Clearance {
    pub status: ClearanceStatus,
    /// Since when the status holds.
    pub since: DateTime<Utc>,
    /// What an `approved_with_conditions` or `restricted` status requires.
    pub conditions: Option<String>,
    /// The decisions behind the answer, most restrictive first.
    pub advisories: Vec<DecidingAdvisory>,
    pub review: Option<OpenReview>,
    /// With `depends_on_firmware`: each range of versions with its own
    /// answer, in version order, the versions no decision covers included.
    /// Empty otherwise (and when a version was asked about).
    pub by_firmware: Vec<FirmwareAnswer>,
}

impl Clearance {
    /// The answer as `viewer` may see it: decisions of advisories they may
    /// not read still count, but nothing they say is shown — not their
    /// title, reference, conditions or firmware ranges. Where the firmware
    /// split would show such a range, the answer is the most cautious of
    /// its pieces instead (never "allowed" for a version that is not).
    pub fn seen_by(mut self, viewer: Viewer) -> Self {
        let hidden = |a: &DecidingAdvisory| !viewer.may_read(a.tlp);
        let split_by_hidden = self
            .by_firmware
            .iter()
            .any(|answer| answer.advisories.iter().any(hidden));
        if split_by_hidden {
            let cautious = self
                .by_firmware
                .iter()
                .map(|answer| answer.status)
                .min_by_key(|status| status.caution())
                .unwrap_or(self.status);
            self.status = cautious;
            self.by_firmware.clear();
        }
        for answer in &mut self.by_firmware {
            answer.advisories.retain(|a| !hidden(a));
            answer.conditions = conditions_of(&answer.advisories, answer.status);
        }
        self.advisories.retain(|a| !hidden(a));
        self.conditions = conditions_of(&self.advisories, self.status);
        self
    }
}

impl Clearance {
    /// The answer with each deciding advisory's public page, under
    /// `public_url`.
    pub fn with_pages(mut self, public_url: &url::Url) -> Self {
        let pieces = self.by_firmware.iter_mut().map(|p| &mut p.advisories);
        for advisories in std::iter::once(&mut self.advisories).chain(pieces) {
            for advisory in advisories {
                advisory.page = Some(super::advisory::advisory_page_url(
                    public_url,
                    &advisory.reference,
                ));
            }
        }
        self
    }
}

/// The conditions attached to `status` by the given decisions, joined.
fn conditions_of(advisories: &[DecidingAdvisory], status: ClearanceStatus) -> Option<String> {
    let conditions: Vec<&str> = advisories
        .iter()
        .filter(|a| ClearanceStatus::from(a.decision) == status)
        .filter_map(|a| a.conditions.as_deref())
        .collect();
    (!conditions.is_empty()).then(|| conditions.join("; "))
}

/// The answer for versions a set of decisions all cover.
struct Outcome {
    status: ClearanceStatus,
    since: DateTime<Utc>,
    /// The decisions behind the status: those of the most specific scope
    /// that decide what won.
    deciding: Vec<DecidingAdvisory>,
}

impl Outcome {
    fn of(
        covering: Vec<&DecisionInForce>,
        review: Option<OpenReview>,
        undecided_since: DateTime<Utc>,
    ) -> Self {
        let Some(specific) = covering.iter().map(|d| d.scope.specificity()).max() else {
            return Self {
                status: match review {
                    Some(_) => ClearanceStatus::UnderReview,
                    None => ClearanceStatus::Unassessed,
                },
                since: undecided_since,
                deciding: Vec::new(),
            };
        };
        let mut deciding: Vec<&DecisionInForce> = covering
            .into_iter()
            .filter(|d| d.scope.specificity() == specific)
            .collect();
        deciding.sort_by(|a, b| {
            a.decision
                .cmp(&b.decision)
                .then(a.effective_at.cmp(&b.effective_at))
        });
        let winner = deciding[0];
        Self {
            status: winner.decision.into(),
            since: winner.effective_at,
            deciding: deciding
                .into_iter()
                .filter(|d| d.decision == winner.decision)
                .map(DecidingAdvisory::from)
                .collect(),
        }
    }

    /// Whether two adjacent pieces give the same answer, so they read as
    /// one (whichever advisories say it).
    fn same_as(&self, other: &Self) -> bool {
        self.status == other.status && self.conditions() == other.conditions()
    }

    /// The two as one: the answer both give, for the reasons of either.
    fn merge(&mut self, other: Outcome) {
        self.since = self.since.min(other.since);
        for advisory in other.deciding {
            if !self.deciding.contains(&advisory) {
                self.deciding.push(advisory);
            }
        }
    }

    fn conditions(&self) -> Option<String> {
        conditions_of(&self.deciding, self.status)
    }
}

/// Derives a model's clearance at `now` from the decisions that apply to it
/// (only those whose effective date has come and which nothing has replaced
/// yet count) and its open review,
/// if any; `undecided_since` is the "since" of a status no decision explains
/// (the model's last change of clearance, or its registration). With
/// `firmware`, the answer for that version; without, the answer for every
/// version, split by range where they differ.
pub fn derive(
    decisions: &[DecisionInForce],
    review: Option<OpenReview>,
    now: DateTime<Utc>,
    undecided_since: DateTime<Utc>,
    firmware: Option<&FirmwareVersion>,
) -> Clearance {
    let in_force: Vec<&DecisionInForce> = decisions.iter().filter(|d| d.applies_at(now)).collect();
    let outcome_where = |covers: &dyn Fn(&DecisionInForce) -> bool| {
        let covering = in_force.iter().copied().filter(|d| covers(d)).collect();
        Outcome::of(covering, review, undecided_since)
    };
    if let Some(version) = firmware {
        let outcome = outcome_where(&|d| d.firmware.as_ref().is_none_or(|r| r.holds(version)));
        return whole(outcome, review);
    }
    let mut answers: Vec<(Span, Outcome)> = Vec::new();
    for piece in firmware::pieces(in_force.iter().filter_map(|d| d.firmware.as_ref())) {
        let outcome = outcome_where(&|d| d.covers(&piece));
        match answers.last_mut() {
            Some((span, last)) if last.same_as(&outcome) => {
                *span = std::mem::replace(span, Span::all()).joined(piece);
                last.merge(outcome);
            }
            _ => answers.push((piece, outcome)),
        }
    }
    if answers.len() == 1 {
        let (_, outcome) = answers.remove(0);
        return whole(outcome, review);
    }
    let mut advisories: Vec<DecidingAdvisory> = Vec::new();
    for (_, outcome) in &answers {
        for advisory in &outcome.deciding {
            if !advisories.contains(advisory) {
                advisories.push(advisory.clone());
            }
        }
    }
    advisories.sort_by_key(|a| a.decision);
    Clearance {
        status: ClearanceStatus::DependsOnFirmware,
        since: answers
            .iter()
            .map(|(_, o)| o.since)
            .max()
            .unwrap_or(undecided_since),
        conditions: None,
        advisories,
        review,
        by_firmware: answers
            .into_iter()
            .map(|(span, outcome)| FirmwareAnswer {
                firmware: span.range().map(|r| r.to_string()).unwrap_or_default(),
                status: outcome.status,
                conditions: outcome.conditions(),
                advisories: outcome.deciding,
            })
            .collect(),
    }
}

/// A clearance that is the same for every version in question.
fn whole(outcome: Outcome, review: Option<OpenReview>) -> Clearance {
    Clearance {
        status: outcome.status,
        since: outcome.since,
        conditions: outcome.conditions(),
        advisories: outcome.deciding,
        review,
        by_firmware: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn at(days_ago: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
            .unwrap()
            .to_utc()
            - Duration::days(days_ago)
    }

    fn now() -> DateTime<Utc> {
        at(0)
    }

    fn decision(decision: Decision, days_ago: i64) -> DecisionInForce {
        DecisionInForce {
            advisory_id: Uuid::new_v4(),
            reference: format!("CLR-2026-{days_ago:04}"),
            title: "t".into(),
            tlp: Tlp::Clear,
            scope: Scope::Model(Uuid::nil()),
            decision,
            conditions: (decision == Decision::ApprovedWithConditions)
                .then(|| "work profile only".into()),
            firmware: None,
            effective_at: at(days_ago),
            until: None,
        }
    }

    fn ranged(decision: Decision, range: &str) -> DecisionInForce {
        DecisionInForce {
            firmware: Some(FirmwareRange::parse(range).unwrap()),
            ..self::decision(decision, 1)
        }
    }

    fn maker_wide(decision: Decision, category: Option<Category>) -> DecisionInForce {
        DecisionInForce {
            scope: Scope::Manufacturer {
                id: Uuid::nil(),
                category,
            },
            ..self::decision(decision, 2)
        }
    }

    fn version(raw: &str) -> FirmwareVersion {
        FirmwareVersion::parse(raw).unwrap()
    }

    #[test]
    fn no_decision_and_no_review_is_unassessed_since_registration() {
        let registered = at(3);
        let c = derive(&[], None, now(), registered, None);
        assert_eq!(c.status, ClearanceStatus::Unassessed);
        assert_eq!(c.since, registered);
        assert!(c.advisories.is_empty() && c.by_firmware.is_empty());
    }

    #[test]
    fn an_open_review_without_decision_is_under_review() {
        let review = OpenReview {
            id: Uuid::new_v4(),
            due_at: at(-90),
        };
        let c = derive(&[], Some(review), now(), now(), None);
        assert_eq!(c.status, ClearanceStatus::UnderReview);
        assert_eq!(c.review, Some(review));
    }

    /// A decision replaced later (`until`) decides up to that moment, and
    /// from it the replacement does.
    #[test]
    fn a_replaced_decision_applies_until_its_replacement_takes_effect() {
        let mut prohibited = decision(Decision::Prohibited, 5);
        prohibited.until = Some(at(-1));
        let mut restricted = decision(Decision::Restricted, -1);
        restricted.conditions = Some("work profile only".into());
        let both = [prohibited, restricted];
        let status = |when| derive(&both, None, when, at(9), None).status;
        assert_eq!(status(now()), ClearanceStatus::Prohibited);
        assert_eq!(status(at(-1)), ClearanceStatus::Restricted, "at the moment");
        assert_eq!(status(at(-2)), ClearanceStatus::Restricted);
    }

    #[test]
    fn the_most_restrictive_decision_of_a_scope_wins() {
        let decisions = [
            decision(Decision::Approved, 10),
            decision(Decision::Prohibited, 5),
            decision(Decision::ApprovedWithConditions, 1),
        ];
        let c = derive(&decisions, None, now(), now(), None);
        assert_eq!(c.status, ClearanceStatus::Prohibited);
        assert_eq!(c.since, at(5));
        assert_eq!(c.advisories.len(), 1, "the decision that won explains it");
        assert_eq!(c.advisories[0].decision, Decision::Prohibited);
        assert_eq!(c.conditions, None);
    }

    #[test]
    fn a_model_decision_outranks_a_makers_and_a_category_the_whole_maker() {
        let everything = maker_wide(Decision::Prohibited, None);
        let tablets = maker_wide(Decision::Restricted, Some(Category::Tablet));
        let this_one = decision(Decision::ApprovedWithConditions, 1);
        let status = |ds: &[DecisionInForce]| derive(ds, None, now(), now(), None).status;
        assert_eq!(
            status(std::slice::from_ref(&everything)),
            ClearanceStatus::Prohibited
        );
        assert_eq!(
            status(&[everything.clone(), tablets.clone()]),
            ClearanceStatus::Restricted
        );
        let c = derive(&[everything, tablets, this_one], None, now(), now(), None);
        assert_eq!(c.status, ClearanceStatus::ApprovedWithConditions);
        assert_eq!(c.conditions.as_deref(), Some("work profile only"));
        assert_eq!(c.advisories.len(), 1, "only the deciding scope explains it");
    }

    #[test]
    fn a_decision_not_yet_effective_does_not_count() {
        let c = derive(
            &[decision(Decision::Prohibited, -2)],
            None,
            now(),
            now(),
            None,
        );
        assert_eq!(c.status, ClearanceStatus::Unassessed);
    }

    #[test]
    fn an_approval_from_a_version_leaves_earlier_versions_unassessed() {
        let decisions = [ranged(Decision::Approved, ">=7.1.2")];
        let c = derive(&decisions, None, now(), now(), None);
        assert_eq!(c.status, ClearanceStatus::DependsOnFirmware);
        let pieces: Vec<(&str, ClearanceStatus)> = c
            .by_firmware
            .iter()
            .map(|a| (a.firmware.as_str(), a.status))
            .collect();
        assert_eq!(
            pieces,
            [
                ("<7.1.2", ClearanceStatus::Unassessed),
                (">=7.1.2", ClearanceStatus::Approved)
            ]
        );
        let on = |v: &str| derive(&decisions, None, now(), now(), Some(&version(v)));
        assert_eq!(on("7.0").status, ClearanceStatus::Unassessed);
        assert_eq!(on("7.1.2").status, ClearanceStatus::Approved);
        assert!(on("8").by_firmware.is_empty());
    }

    #[test]
    fn the_2014_fix_splits_prohibited_below_and_approved_from_6_3_1() {
        let decisions = [
            ranged(Decision::Prohibited, "<6.3.1"),
            ranged(Decision::Approved, ">=6.3.1"),
        ];
        let c = derive(&decisions, None, now(), now(), None);
        assert_eq!(c.status, ClearanceStatus::DependsOnFirmware);
        assert_eq!(c.by_firmware.len(), 2);
        assert_eq!(c.by_firmware[0].status, ClearanceStatus::Prohibited);
        assert_eq!(c.advisories[0].decision, Decision::Prohibited);
        let on = |v: &str| derive(&decisions, None, now(), now(), Some(&version(v))).status;
        assert_eq!(on("6.3.0"), ClearanceStatus::Prohibited);
        assert_eq!(on("6.3.1"), ClearanceStatus::Approved);
    }

    #[test]
    fn ranges_that_give_the_same_answer_read_as_one() {
        let decisions = [
            ranged(Decision::Approved, "<5"),
            ranged(Decision::Approved, ">=5"),
        ];
        let c = derive(&decisions, None, now(), now(), None);
        assert_eq!(c.status, ClearanceStatus::Approved);
        assert!(c.by_firmware.is_empty());
        assert_eq!(c.advisories.len(), 2, "both say it, for their versions");
    }

    #[test]
    fn the_public_sees_nothing_a_restricted_advisory_says() {
        let mut secret = ranged(Decision::ApprovedWithConditions, ">=2");
        secret.tlp = Tlp::Red;
        secret.conditions = Some("SECRET".into());
        secret.title = "SECRET".into();
        let decisions = [decision(Decision::Prohibited, 4), secret];
        let full = derive(&decisions, None, now(), now(), None);
        assert_eq!(
            full.status,
            ClearanceStatus::Prohibited,
            "a model prohibition covers all"
        );
        let split = derive(&decisions[1..], None, now(), now(), None);
        assert_eq!(split.status, ClearanceStatus::DependsOnFirmware);
        let public = split.clone().seen_by(Viewer::Public);
        assert_eq!(
            public.status,
            ClearanceStatus::Unassessed,
            "the most cautious piece"
        );
        assert!(public.by_firmware.is_empty() && public.advisories.is_empty());
        let text = serde_json::to_string(&public).unwrap();
        assert!(!text.contains("SECRET") && !text.contains(">=2"), "{text}");
        assert_eq!(split.clone().seen_by(Viewer::Personnel), split);
        let on_three = derive(&decisions[1..], None, now(), now(), Some(&version("3")));
        let seen = on_three.seen_by(Viewer::Public);
        assert_eq!(seen.status, ClearanceStatus::ApprovedWithConditions);
        assert_eq!(seen.conditions, None);
        assert!(!serde_json::to_string(&seen).unwrap().contains("SECRET"));
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in ClearanceStatus::ALL {
            assert_eq!(ClearanceStatus::parse(s.as_str()).unwrap(), *s);
        }
        assert!(ClearanceStatus::parse("banned").is_err());
    }
}
