//! Public subscriptions as stored: an address, its filter lists and where
//! its double opt-in stands.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{
    models, subscription_categories, subscription_manufacturers, subscription_models, subscriptions,
};
use super::types::{DbId, DbTime};
use super::{DbConnection, DbError, is_unique_violation};
use crate::domain::email::EmailAddress;
use crate::domain::registry::Category;
use crate::domain::severity::Severity;
use crate::domain::subscription::{
    Delivery, SubscriptionFilter, SubscriptionState, SubscriptionView,
};

/// Moves subscription `id` to `state` (confirmed or unsubscribed), noting
/// when.
pub fn set_state(
    conn: &mut DbConnection,
    id: Uuid,
    state: SubscriptionState,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let at = Some(DbTime(now));
    let (confirmed_at, unsubscribed_at) = match state {
        SubscriptionState::Confirmed => (at, None),
        _ => (None, at),
    };
    diesel::update(subscriptions::table.find(DbId(id)))
        .set((
            subscriptions::state.eq(state.as_str()),
            confirmed_at.map(|at| subscriptions::confirmed_at.eq(at)),
            unsubscribed_at.map(|at| subscriptions::unsubscribed_at.eq(at)),
            subscriptions::updated_at.eq(DbTime(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The subscription and its filter, for its owner's page.
/// `NotFound` unless subscription `id` belongs to `email_key`.
pub fn view(
    conn: &mut DbConnection,
    id: Uuid,
    email_key: &str,
) -> Result<SubscriptionView, DbError> {
    let (email, state, delivery, min_severity): (String, String, String, i32) =
        subscriptions::table
            .filter(subscriptions::id.eq(DbId(id)))
            .filter(subscriptions::email_key.eq(email_key))
            .select((
                subscriptions::email,
                subscriptions::state,
                subscriptions::delivery,
                subscriptions::min_severity,
            ))
            .first(conn)?;
    let sid = DbId(id);
    let manufacturer_ids: Vec<DbId> = subscription_manufacturers::table
        .filter(subscription_manufacturers::subscription_id.eq(sid))
        .select(subscription_manufacturers::manufacturer_id)
        .load(conn)?;
    let models: Vec<(DbId, String)> = models::table
        .filter(
            models::id.eq_any(
                subscription_models::table
                    .filter(subscription_models::subscription_id.eq(sid))
                    .select(subscription_models::model_id),
            ),
        )
        .select((models::id, models::name))
        .order(models::name)
        .load(conn)?;
    let categories: Vec<String> = subscription_categories::table
        .filter(subscription_categories::subscription_id.eq(sid))
        .select(subscription_categories::category)
        .order(subscription_categories::category)
        .load(conn)?;
    Ok(SubscriptionView {
        id,
        email,
        state: parse_stored(&state)?,
        delivery: parse_stored(&delivery)?,
        filter: SubscriptionFilter {
            manufacturer_ids: manufacturer_ids.into_iter().map(|id| id.0).collect(),
            model_ids: models.iter().map(|(id, _)| id.0).collect(),
            categories: categories
                .iter()
                .map(|c| parse_stored::<Category>(c))
                .collect::<Result<_, _>>()?,
            min_severity: Severity::from_rank(min_severity)
                .ok_or_else(|| stored_garbage("min_severity", &min_severity.to_string()))?,
        },
        model_names: models.into_iter().map(|(_, name)| name).collect(),
    })
}

/// The subscription of an address (by its key), with its state.
pub fn find_by_key(
    conn: &mut DbConnection,
    key: &str,
) -> Result<Option<(Uuid, SubscriptionState)>, DbError> {
    let row: Option<(DbId, String)> = subscriptions::table
        .filter(subscriptions::email_key.eq(key))
        .select((subscriptions::id, subscriptions::state))
        .first(conn)
        .optional()?;
    row.map(|(id, state)| Ok((id.0, parse_stored(&state)?)))
        .transpose()
}

/// The state of subscription `id`; `NotFound` unless it belongs to
/// `email_key`.
pub fn owned_state(
    conn: &mut DbConnection,
    id: Uuid,
    email_key: &str,
) -> Result<SubscriptionState, DbError> {
    let state: String = subscriptions::table
        .filter(subscriptions::id.eq(DbId(id)))
        .filter(subscriptions::email_key.eq(email_key))
        .select(subscriptions::state)
        .first(conn)?;
    parse_stored(&state)
}

/// The address of subscription `id` as its owner confirmed it.
pub fn stored_email(conn: &mut DbConnection, id: Uuid) -> Result<String, DbError> {
    Ok(subscriptions::table
        .find(DbId(id))
        .select(subscriptions::email)
        .first(conn)?)
}

/// Inserts a pending subscription; `None` if the address was subscribed
/// meanwhile (in a savepoint, so that the transaction goes on).
pub fn create(
    conn: &mut DbConnection,
    email: &EmailAddress,
    filter: &SubscriptionFilter,
    delivery: Delivery,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, DbError> {
    let id = Uuid::now_v7();
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(subscriptions::table)
            .values((
                subscriptions::id.eq(DbId(id)),
                subscriptions::email.eq(email.as_str()),
                subscriptions::email_key.eq(email.key()),
                subscriptions::state.eq(SubscriptionState::Pending.as_str()),
                subscriptions::delivery.eq(delivery.as_str()),
                subscriptions::min_severity.eq(filter.min_severity.rank()),
                subscriptions::all_manufacturers.eq(filter.manufacturer_ids.is_empty()),
                subscriptions::all_models.eq(filter.model_ids.is_empty()),
                subscriptions::all_categories.eq(filter.categories.is_empty()),
                subscriptions::created_at.eq(DbTime(now)),
                subscriptions::updated_at.eq(DbTime(now)),
            ))
            .execute(conn)
    });
    match inserted {
        Err(e) if is_unique_violation(&e) => return Ok(None),
        other => other?,
    };
    write_filter_lists(conn, id, filter)?;
    Ok(Some(id))
}

/// Gives a subscription that is not confirmed the new filter and makes it
/// pending again.
pub fn renew(
    conn: &mut DbConnection,
    id: Uuid,
    email: &EmailAddress,
    filter: &SubscriptionFilter,
    delivery: Delivery,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::update(subscriptions::table.find(DbId(id)))
        .set((
            subscriptions::email.eq(email.as_str()),
            subscriptions::state.eq(SubscriptionState::Pending.as_str()),
            subscriptions::confirmed_at.eq(None::<DbTime>),
            subscriptions::unsubscribed_at.eq(None::<DbTime>),
        ))
        .execute(conn)?;
    change_filter(conn, id, filter, delivery, now)
}

/// Replaces what subscription `id` receives and how, leaving its address
/// and state as they are.
pub fn change_filter(
    conn: &mut DbConnection,
    id: Uuid,
    filter: &SubscriptionFilter,
    delivery: Delivery,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let sid = DbId(id);
    diesel::update(subscriptions::table.find(sid))
        .set((
            subscriptions::delivery.eq(delivery.as_str()),
            subscriptions::min_severity.eq(filter.min_severity.rank()),
            subscriptions::all_manufacturers.eq(filter.manufacturer_ids.is_empty()),
            subscriptions::all_models.eq(filter.model_ids.is_empty()),
            subscriptions::all_categories.eq(filter.categories.is_empty()),
            subscriptions::updated_at.eq(DbTime(now)),
        ))
        .execute(conn)?;
    diesel::delete(
        subscription_manufacturers::table
            .filter(subscription_manufacturers::subscription_id.eq(sid)),
    )
    .execute(conn)?;
    diesel::delete(subscription_models::table.filter(subscription_models::subscription_id.eq(sid)))
        .execute(conn)?;
    diesel::delete(
        subscription_categories::table.filter(subscription_categories::subscription_id.eq(sid)),
    )
    .execute(conn)?;
    write_filter_lists(conn, id, filter)
}

fn write_filter_lists(
    conn: &mut DbConnection,
    id: Uuid,
    filter: &SubscriptionFilter,
) -> Result<(), DbError> {
    let sid = DbId(id);
    for manufacturer in &filter.manufacturer_ids {
        diesel::insert_into(subscription_manufacturers::table)
            .values((
                subscription_manufacturers::subscription_id.eq(sid),
                subscription_manufacturers::manufacturer_id.eq(DbId(*manufacturer)),
            ))
            .execute(conn)?;
    }
    for model in &filter.model_ids {
        diesel::insert_into(subscription_models::table)
            .values((
                subscription_models::subscription_id.eq(sid),
                subscription_models::model_id.eq(DbId(*model)),
            ))
            .execute(conn)?;
    }
    for category in &filter.categories {
        diesel::insert_into(subscription_categories::table)
            .values((
                subscription_categories::subscription_id.eq(sid),
                subscription_categories::category.eq(category.as_str()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

fn parse_stored<T: std::str::FromStr>(raw: &str) -> Result<T, DbError> {
    raw.parse()
        .map_err(|_| stored_garbage("subscriptions", raw))
}

fn stored_garbage(what: &str, raw: &str) -> DbError {
    DbError::Other(anyhow::anyhow!("unexpected stored value in {what}: {raw}"))
}

/// Whether the subscription still wants mail (is confirmed): a mail queued
/// before its owner unsubscribed is suppressed, not sent.
pub fn wants_mail(conn: &mut DbConnection, id: Uuid) -> Result<bool, DbError> {
    let state: Option<String> = subscriptions::table
        .find(DbId(id))
        .select(subscriptions::state)
        .first(conn)
        .optional()?;
    Ok(state.as_deref() == Some(SubscriptionState::Confirmed.as_str()))
}
