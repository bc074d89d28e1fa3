//! Daily digests: once a day, from the configured hour, every confirmed
//! daily subscriber gets one mail listing the matching advisories published
//! since their last digest — and none on a day with nothing new.

use chrono::{DateTime, TimeZone, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::outbox::NewMail;
use super::schema::{
    advisories, advisory_decisions, advisory_revisions, models, subscription_categories,
    subscription_manufacturers, subscription_models, subscriptions,
};
use super::types::{DbId, DbTime};
use super::{DbConnection, DbError};
use crate::domain::advisory::Tlp;
use crate::domain::clearance::Scope;
use crate::domain::mail::{MailKind, Recipient};
use crate::domain::registry::Category;
use crate::domain::severity::Severity;
use crate::domain::subscription::{DecidedModel, Delivery, SubscriptionFilter, SubscriptionState};

/// One advisory revision a digest lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    pub advisory_id: Uuid,
    pub revision: i32,
}

/// When an advisory was withdrawn, or superseded.
type Ended = (Option<DbTime>, Option<DbTime>);

/// A daily subscription: id, address, address key, last digest, confirmed.
type Waiting = (DbId, String, Option<DbTime>, Option<DbTime>);

/// When today's digests are due: today at `hour` (UTC).
pub fn due_time(now: DateTime<Utc>, hour: u32) -> DateTime<Utc> {
    let date = now.date_naive();
    Utc.from_utc_datetime(&date.and_hms_opt(hour, 0, 0).unwrap_or_default())
}

/// Whether any subscriber's digest is due and not yet queued (a read, so
/// an idle worker looks without taking a write lock).
pub fn any_due(conn: &mut DbConnection, now: DateTime<Utc>, hour: u32) -> Result<bool, DbError> {
    let due = due_time(now, hour);
    if now < due {
        return Ok(false);
    }
    let first: Option<DbId> = waiting(due)
        .select(subscriptions::id)
        .first(conn)
        .optional()?;
    Ok(first.is_some())
}

/// The confirmed daily subscriptions whose digest for the day that became
/// due at `due` is not yet queued.
fn waiting(due: DateTime<Utc>) -> subscriptions::BoxedQuery<'static, super::MultiBackend> {
    subscriptions::table
        .filter(subscriptions::state.eq(SubscriptionState::Confirmed.as_str()))
        .filter(subscriptions::delivery.eq(Delivery::Daily.as_str()))
        .filter(
            subscriptions::last_digest_at
                .is_null()
                .or(subscriptions::last_digest_at.lt(DbTime(due))),
        )
        .into_boxed()
}

/// Queues today's digests that are due and not yet queued; returns how many
/// mails were queued. Safe with several workers: a subscription's digest is
/// claimed by moving its `last_digest_at`, which only one can do.
pub fn enqueue_due(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    hour: u32,
) -> Result<usize, DbError> {
    let due = due_time(now, hour);
    if now < due {
        return Ok(0);
    }
    let waiting: Vec<Waiting> = waiting(due)
        .select((
            subscriptions::id,
            subscriptions::email,
            subscriptions::last_digest_at,
            subscriptions::confirmed_at,
        ))
        .load(conn)?;
    let mut queued = 0;
    for (id, email, last, confirmed) in waiting {
        let claimed = diesel::update(
            subscriptions::table
                .filter(subscriptions::id.eq(id))
                .filter(
                    subscriptions::last_digest_at
                        .is_null()
                        .or(subscriptions::last_digest_at.lt(DbTime(due))),
                ),
        )
        .set(subscriptions::last_digest_at.eq(Some(DbTime(now))))
        .execute(conn)?;
        if claimed == 0 {
            continue;
        }
        let since = last.or(confirmed).map_or(DateTime::UNIX_EPOCH, |t| t.0);
        let filter = filter_of(conn, id)?;
        let listed = listed_between(conn, since, now, &filter)?;
        if listed.is_empty() {
            continue;
        }
        let mail = NewMail {
            kind: MailKind::Digest,
            email,
            name: None,
            recipient: Recipient::Subscriber,
            subscription_id: Some(id.0),
            payload: Some(serde_json::to_string(&listed).map_err(|e| DbError::Other(e.into()))?),
        };
        super::outbox::enqueue(conn, mail, now)?;
        queued += 1;
    }
    Ok(queued)
}

fn filter_of(conn: &mut DbConnection, id: DbId) -> Result<SubscriptionFilter, DbError> {
    let min_severity: i32 = subscriptions::table
        .find(id)
        .select(subscriptions::min_severity)
        .first(conn)?;
    let manufacturer_ids = subscription_manufacturers::table
        .filter(subscription_manufacturers::subscription_id.eq(id))
        .select(subscription_manufacturers::manufacturer_id)
        .load::<DbId>(conn)?;
    let model_ids = subscription_models::table
        .filter(subscription_models::subscription_id.eq(id))
        .select(subscription_models::model_id)
        .load::<DbId>(conn)?;
    let categories = subscription_categories::table
        .filter(subscription_categories::subscription_id.eq(id))
        .select(subscription_categories::category)
        .load::<String>(conn)?;
    Ok(SubscriptionFilter {
        manufacturer_ids: manufacturer_ids.into_iter().map(|m| m.0).collect(),
        model_ids: model_ids.into_iter().map(|m| m.0).collect(),
        categories: categories
            .iter()
            .filter_map(|c| c.parse::<Category>().ok())
            .collect(),
        min_severity: Severity::from_rank(min_severity).unwrap_or(Severity::None),
    })
}

/// What an advisory revision decides on, as a subscription filter sees it:
/// each model it names or takes in, and each maker it decides on wholesale.
fn decided_models(
    conn: &mut DbConnection,
    advisory: DbId,
    revision: i32,
) -> Result<Vec<DecidedModel>, DbError> {
    let scopes = advisory_decisions::table
        .filter(advisory_decisions::advisory_id.eq(advisory))
        .filter(advisory_decisions::revision.eq(revision))
        .select((
            advisory_decisions::model_id,
            advisory_decisions::manufacturer_id,
            advisory_decisions::category,
        ))
        .load(conn)?
        .into_iter()
        .map(super::clearance::scope_of)
        .collect::<Result<Vec<Scope>, _>>()?;
    let ids: Vec<DbId> = super::models::in_scopes(conn, &scopes)?
        .into_iter()
        .map(DbId)
        .collect();
    let mut decided: Vec<DecidedModel> = models::table
        .filter(models::id.eq_any(ids))
        .select((models::id, models::manufacturer_id, models::category))
        .load::<(DbId, DbId, String)>(conn)?
        .into_iter()
        .map(|(model, maker, category)| DecidedModel {
            model_id: Some(model.0),
            manufacturer_id: maker.0,
            category: category.parse().ok(),
        })
        .collect();
    decided.extend(scopes.into_iter().filter_map(|scope| match scope {
        Scope::Manufacturer { id, category } => Some(DecidedModel {
            model_id: None,
            manufacturer_id: id,
            category,
        }),
        Scope::Model(_) => None,
    }));
    Ok(decided)
}

/// What a digest for `(since, until]` lists of what `filter` matches, oldest
/// first: each TLP:CLEAR revision published then, and each advisory
/// withdrawn or superseded then (its revision in force), so that a daily
/// subscriber learns that a decision mailed before no longer applies.
fn listed_between(
    conn: &mut DbConnection,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    filter: &SubscriptionFilter,
) -> Result<Vec<Listed>, DbError> {
    let mut revisions: Vec<(DbId, i32, String, DbTime)> = advisory_revisions::table
        .filter(advisory_revisions::published_at.gt(DbTime(since)))
        .filter(advisory_revisions::published_at.le(DbTime(until)))
        .filter(advisory_revisions::tlp.eq(Tlp::Clear.as_str()))
        .select((
            advisory_revisions::advisory_id,
            advisory_revisions::revision,
            advisory_revisions::severity,
            advisory_revisions::published_at.assume_not_null(),
        ))
        .load(conn)?;
    let ended: Vec<(DbId, i32, String, Ended)> = advisory_revisions::table
        .inner_join(
            advisories::table.on(advisories::id
                .eq(advisory_revisions::advisory_id)
                .and(advisories::current_revision.eq(advisory_revisions::revision))),
        )
        .filter(
            advisories::withdrawn_at
                .gt(DbTime(since))
                .and(advisories::withdrawn_at.le(DbTime(until)))
                .or(advisories::superseded_at
                    .gt(DbTime(since))
                    .and(advisories::superseded_at.le(DbTime(until)))),
        )
        .filter(advisory_revisions::tlp.eq(Tlp::Clear.as_str()))
        .select((
            advisory_revisions::advisory_id,
            advisory_revisions::revision,
            advisory_revisions::severity,
            (advisories::withdrawn_at, advisories::superseded_at),
        ))
        .load(conn)?;
    for (advisory, revision, severity, (withdrawn, superseded)) in ended {
        // Listed once: an advisory published and ended the same day is
        // listed as it ended.
        revisions.retain(|(listed, ..)| *listed != advisory);
        let at = withdrawn.or(superseded).unwrap_or(DbTime(until));
        revisions.push((advisory, revision, severity, at));
    }
    revisions.sort_by_key(|(.., at)| at.0);
    let mut listed = Vec::new();
    for (advisory, revision, severity, _) in revisions {
        let decided = decided_models(conn, advisory, revision)?;
        let severity: Severity = severity
            .parse()
            .map_err(|e: String| DbError::Other(anyhow::anyhow!(e)))?;
        if filter.matches(severity, &decided) {
            listed.push(Listed {
                advisory_id: advisory.0,
                revision,
            });
        }
    }
    Ok(listed)
}
