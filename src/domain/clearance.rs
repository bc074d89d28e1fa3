//! A model's clearance is derived, never typed in: from the decisions of the
//! advisories in force that name it, the most restrictive winning, else from
//! whether a review is open.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::advisory::Tlp;
use super::firmware::{FirmwareRange, FirmwareVersion};

crate::text_enum! {
    /// What an advisory decides for a model, from most to least restrictive
    /// (the order `Ord` follows).
    #[derive(PartialOrd, Ord)]
    pub enum Decision {
        Prohibited = "prohibited",
        Restricted = "restricted",
        ApprovedWithConditions = "approved_with_conditions",
        Approved = "approved",
    }
}

/// Where a model stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClearanceStatus {
    Prohibited,
    Restricted,
    ApprovedWithConditions,
    Approved,
    UnderReview,
    Unassessed,
}

impl ClearanceStatus {
    pub const ALL: [ClearanceStatus; 6] = [
        Self::Prohibited,
        Self::Restricted,
        Self::ApprovedWithConditions,
        Self::Approved,
        Self::UnderReview,
        Self::Unassessed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prohibited => "prohibited",
            Self::Restricted => "restricted",
            Self::ApprovedWithConditions => "approved_with_conditions",
            Self::Approved => "approved",
            Self::UnderReview => "under_review",
            Self::Unassessed => "unassessed",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw).ok_or_else(|| {
            "must be one of: prohibited, restricted, approved_with_conditions, approved, under_review, unassessed"
                .into()
        })
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

/// One decision of a published advisory revision about a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionInForce {
    pub advisory_id: Uuid,
    pub reference: String,
    pub title: String,
    pub tlp: Tlp,
    pub decision: Decision,
    pub conditions: Option<String>,
    /// The firmware range the decision is limited to.
    pub firmware: Option<FirmwareRange>,
    pub effective_at: DateTime<Utc>,
}

/// A review of a model that is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct OpenReview {
    pub id: Uuid,
    pub due_at: DateTime<Utc>,
}

/// An advisory that decides a model's clearance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DecidingAdvisory {
    pub id: Uuid,
    pub reference: String,
    /// Null for anonymous callers unless the advisory is TLP:CLEAR.
    pub title: Option<String>,
    pub tlp: Tlp,
    pub decision: Decision,
    /// The firmware range the decision applies to; null for every version.
    pub firmware: Option<String>,
}

/// A model's clearance and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Clearance {
    pub status: ClearanceStatus,
    /// Since when the status holds.
    pub since: DateTime<Utc>,
    /// The conditions attached to an `approved_with_conditions` status.
    pub conditions: Option<String>,
    /// The decisions in force, most restrictive first.
    pub advisories: Vec<DecidingAdvisory>,
    pub review: Option<OpenReview>,
}

impl Clearance {
    /// What an anonymous caller may see: only TLP:CLEAR advisories' titles.
    pub fn for_the_public(mut self) -> Self {
        for advisory in &mut self.advisories {
            if advisory.tlp != Tlp::Clear {
                advisory.title = None;
            }
        }
        self
    }
}

/// Derives a model's clearance at `now` from the decisions naming it (only
/// those whose effective date has come count, and with `firmware` only those
/// whose range holds it) and its open review, if any. `unassessed_since` is
/// when the model entered the register: the "since" of a model nobody has
/// decided on.
pub fn derive(
    decisions: &[DecisionInForce],
    review: Option<OpenReview>,
    now: DateTime<Utc>,
    unassessed_since: DateTime<Utc>,
    firmware: Option<&FirmwareVersion>,
) -> Clearance {
    let mut in_force: Vec<&DecisionInForce> = decisions
        .iter()
        .filter(|d| d.effective_at <= now)
        .filter(|d| match (firmware, &d.firmware) {
            (Some(version), Some(range)) => range.holds(version),
            _ => true,
        })
        .collect();
    in_force.sort_by(|a, b| {
        a.decision
            .cmp(&b.decision)
            .then(a.effective_at.cmp(&b.effective_at))
    });
    let Some(winner) = in_force.first() else {
        let (status, since) = match review {
            Some(_) => (ClearanceStatus::UnderReview, unassessed_since),
            None => (ClearanceStatus::Unassessed, unassessed_since),
        };
        return Clearance {
            status,
            since,
            conditions: None,
            advisories: Vec::new(),
            review,
        };
    };
    let conditions: Vec<&str> = in_force
        .iter()
        .filter(|d| d.decision == winner.decision)
        .filter_map(|d| d.conditions.as_deref())
        .collect();
    Clearance {
        status: winner.decision.into(),
        since: winner.effective_at,
        conditions: (!conditions.is_empty()).then(|| conditions.join("; ")),
        advisories: in_force
            .iter()
            .map(|d| DecidingAdvisory {
                id: d.advisory_id,
                reference: d.reference.clone(),
                title: Some(d.title.clone()),
                tlp: d.tlp,
                decision: d.decision,
                firmware: d.firmware.as_ref().map(ToString::to_string),
            })
            .collect(),
        review,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn decision(decision: Decision, days_ago: i64, now: DateTime<Utc>) -> DecisionInForce {
        DecisionInForce {
            advisory_id: Uuid::new_v4(),
            reference: format!("CLR-2026-{days_ago:04}"),
            title: "t".into(),
            tlp: Tlp::Clear,
            decision,
            conditions: (decision == Decision::ApprovedWithConditions)
                .then(|| "work profile only".into()),
            firmware: None,
            effective_at: now - Duration::days(days_ago),
        }
    }

    #[test]
    fn no_decision_and_no_review_is_unassessed_since_registration() {
        let now = Utc::now();
        let registered = now - Duration::days(3);
        let c = derive(&[], None, now, registered, None);
        assert_eq!(c.status, ClearanceStatus::Unassessed);
        assert_eq!(c.since, registered);
        assert!(c.advisories.is_empty());
    }

    #[test]
    fn an_open_review_without_decision_is_under_review() {
        let now = Utc::now();
        let review = OpenReview {
            id: Uuid::new_v4(),
            due_at: now + Duration::days(90),
        };
        let c = derive(&[], Some(review), now, now, None);
        assert_eq!(c.status, ClearanceStatus::UnderReview);
        assert_eq!(c.review, Some(review));
    }

    #[test]
    fn the_most_restrictive_decision_wins() {
        let now = Utc::now();
        let decisions = [
            decision(Decision::Approved, 10, now),
            decision(Decision::Prohibited, 5, now),
            decision(Decision::ApprovedWithConditions, 1, now),
        ];
        let c = derive(&decisions, None, now, now, None);
        assert_eq!(c.status, ClearanceStatus::Prohibited);
        assert_eq!(c.since, now - Duration::days(5));
        assert_eq!(c.advisories.len(), 3);
        assert_eq!(c.advisories[0].decision, Decision::Prohibited);
        assert_eq!(c.conditions, None);
    }

    #[test]
    fn conditions_come_with_a_conditional_approval() {
        let now = Utc::now();
        let c = derive(
            &[decision(Decision::ApprovedWithConditions, 1, now)],
            None,
            now,
            now,
            None,
        );
        assert_eq!(c.status, ClearanceStatus::ApprovedWithConditions);
        assert_eq!(c.conditions.as_deref(), Some("work profile only"));
    }

    #[test]
    fn a_decision_not_yet_effective_does_not_count() {
        let now = Utc::now();
        let c = derive(
            &[decision(Decision::Prohibited, -2, now)],
            None,
            now,
            now,
            None,
        );
        assert_eq!(c.status, ClearanceStatus::Unassessed);
    }

    #[test]
    fn a_firmware_version_picks_the_decisions_whose_range_holds_it() {
        let now = Utc::now();
        let mut prohibited = decision(Decision::Prohibited, 3, now);
        prohibited.firmware = Some(FirmwareRange::parse("<6.3.1").unwrap());
        let mut approved = decision(Decision::Approved, 1, now);
        approved.firmware = Some(FirmwareRange::parse(">=6.3.1").unwrap());
        let decisions = [prohibited, approved];
        let at = |v: Option<&str>| {
            let version = v.map(|v| FirmwareVersion::parse(v).unwrap());
            derive(&decisions, None, now, now, version.as_ref())
        };
        assert_eq!(at(Some("6.3.0")).status, ClearanceStatus::Prohibited);
        assert_eq!(at(Some("6.3.1")).status, ClearanceStatus::Approved);
        let overall = at(None);
        assert_eq!(overall.status, ClearanceStatus::Prohibited);
        let ranges: Vec<_> = overall
            .advisories
            .iter()
            .map(|a| a.firmware.clone())
            .collect();
        assert_eq!(
            ranges,
            vec![Some("<6.3.1".to_owned()), Some(">=6.3.1".to_owned())]
        );
    }

    #[test]
    fn the_public_sees_only_clear_titles() {
        let now = Utc::now();
        let mut amber = decision(Decision::Restricted, 1, now);
        amber.tlp = Tlp::Amber;
        let c = derive(
            &[decision(Decision::Approved, 2, now), amber],
            None,
            now,
            now,
            None,
        )
        .for_the_public();
        assert_eq!(c.advisories[0].title, None);
        assert_eq!(c.advisories[1].title.as_deref(), Some("t"));
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in ClearanceStatus::ALL {
            assert_eq!(ClearanceStatus::parse(s.as_str()).unwrap(), s);
        }
        assert!(ClearanceStatus::parse("banned").is_err());
    }
}
