//! Public subscriptions: the double opt-in lifecycle, each step with the
//! mail it causes queued in the same transaction. Audit rows name the
//! subscription and the public actor, never the address.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

use super::audit::{self, Change};
use super::outbox::{self, NewMail};
use super::schema::{
    manufacturers, models, subscription_categories, subscription_manufacturers,
    subscription_models, subscriptions,
};
use super::types::{DbId, DbTime};
use super::{DbConnection, DbError, is_unique_violation};
use crate::domain::audit::Actor;
use crate::domain::email::EmailAddress;
use crate::domain::mail::{MailKind, Recipient};
use crate::domain::registry::Category;
use crate::domain::severity::Severity;
use crate::domain::subscription::{
    Delivery, SubscribeStep, SubscriptionFilter, SubscriptionState, SubscriptionView, on_subscribe,
};
use crate::error::FieldError;

pub struct SubscribeRequest {
    pub email: EmailAddress,
    pub filter: SubscriptionFilter,
    pub delivery: Delivery,
}

/// Handles a subscription request (see [`on_subscribe`]) and queues the
/// mail it causes. Nothing about the outcome is returned: the caller's
/// answer must not reveal whether the address was known. Unknown
/// manufacturer or model ids are invalid input.
pub fn subscribe(
    conn: &mut DbConnection,
    request: SubscribeRequest,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let filter = request.filter.deduplicated();
    check_filter(conn, &filter)?;
    let key = request.email.key();
    let (id, step) = match find_by_key(conn, &key)? {
        Some((id, state)) => (id, on_subscribe(Some(state))),
        None => match create(conn, &request.email, &filter, request.delivery, now)? {
            Some(id) => (id, SubscribeStep::Create),
            // The same address was subscribed at this very moment: treat
            // this request as coming after that one.
            None => find_by_key(conn, &key)?
                .map(|(id, state)| (id, on_subscribe(Some(state))))
                .ok_or_else(|| {
                    DbError::Other(anyhow::anyhow!("a subscription vanished while subscribing"))
                })?,
        },
    };
    let requested = || {
        json!({
            "state": SubscriptionState::Pending,
            "delivery": request.delivery,
            "filter": filter,
        })
    };
    let (kind, action, to, payload) = match step {
        SubscribeStep::Create => (
            MailKind::Confirm,
            "subscription.create",
            request.email.as_str().to_owned(),
            requested(),
        ),
        SubscribeStep::Renew => {
            renew(conn, id, &request.email, &filter, request.delivery, now)?;
            (
                MailKind::Confirm,
                "subscription.renew",
                request.email.as_str().to_owned(),
                requested(),
            )
        }
        // To the address as its owner confirmed it, not as typed now.
        SubscribeStep::OfferManage => (
            MailKind::Manage,
            "subscription.manage_link",
            stored_email(conn, id)?,
            json!({ "state": SubscriptionState::Confirmed }),
        ),
    };
    outbox::enqueue(
        conn,
        NewMail {
            kind,
            email: to,
            name: None,
            recipient: Recipient::Subscriber,
            subscription_id: Some(id),
        },
        now,
    )?;
    audit::append(
        conn,
        &Actor::public(),
        vec![Change::new(action, "subscription", id, payload)],
        now,
    )
}

/// Pending → confirmed; a confirmed one stays so. An ended subscription is
/// not revived by an old confirmation link: its owner subscribes again.
/// `NotFound` unless subscription `id` belongs to `email_key`.
pub fn confirm(
    conn: &mut DbConnection,
    id: Uuid,
    email_key: &str,
    now: DateTime<Utc>,
) -> Result<SubscriptionState, DbError> {
    match owned_state(conn, id, email_key)? {
        SubscriptionState::Confirmed => Ok(SubscriptionState::Confirmed),
        SubscriptionState::Unsubscribed => Err(DbError::WrongState {
            detail:
                "this subscription was ended; subscribe again to receive a new confirmation link"
                    .into(),
            current_state: SubscriptionState::Unsubscribed.as_str().into(),
        }),
        SubscriptionState::Pending => {
            diesel::update(subscriptions::table.find(DbId(id)))
                .set((
                    subscriptions::state.eq(SubscriptionState::Confirmed.as_str()),
                    subscriptions::confirmed_at.eq(DbTime(now)),
                    subscriptions::updated_at.eq(DbTime(now)),
                ))
                .execute(conn)?;
            record(
                conn,
                "subscription.confirm",
                id,
                SubscriptionState::Confirmed,
                now,
            )?;
            Ok(SubscriptionState::Confirmed)
        }
    }
}

/// Ends the subscription; ending an ended one changes nothing.
/// `NotFound` unless subscription `id` belongs to `email_key`.
pub fn unsubscribe(
    conn: &mut DbConnection,
    id: Uuid,
    email_key: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    if owned_state(conn, id, email_key)? == SubscriptionState::Unsubscribed {
        return Ok(());
    }
    diesel::update(subscriptions::table.find(DbId(id)))
        .set((
            subscriptions::state.eq(SubscriptionState::Unsubscribed.as_str()),
            subscriptions::unsubscribed_at.eq(DbTime(now)),
            subscriptions::updated_at.eq(DbTime(now)),
        ))
        .execute(conn)?;
    record(
        conn,
        "subscription.unsubscribe",
        id,
        SubscriptionState::Unsubscribed,
        now,
    )
}

/// The subscription and its filter with names, for its owner's page.
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
    let manufacturer_ids = subscription_manufacturers::table
        .filter(subscription_manufacturers::subscription_id.eq(DbId(id)))
        .select(subscription_manufacturers::manufacturer_id);
    let manufacturers: Vec<String> = manufacturers::table
        .filter(manufacturers::id.eq_any(manufacturer_ids))
        .select(manufacturers::name)
        .order(manufacturers::name)
        .load(conn)?;
    let model_ids = subscription_models::table
        .filter(subscription_models::subscription_id.eq(DbId(id)))
        .select(subscription_models::model_id);
    let models: Vec<String> = models::table
        .filter(models::id.eq_any(model_ids))
        .select(models::name)
        .order(models::name)
        .load(conn)?;
    let categories: Vec<String> = subscription_categories::table
        .filter(subscription_categories::subscription_id.eq(DbId(id)))
        .select(subscription_categories::category)
        .order(subscription_categories::category)
        .load(conn)?;
    Ok(SubscriptionView {
        id,
        email,
        state: parse_stored(&state)?,
        delivery: parse_stored(&delivery)?,
        min_severity: Severity::from_rank(min_severity)
            .ok_or_else(|| stored_garbage("min_severity", &min_severity.to_string()))?,
        manufacturers,
        models,
        categories: categories
            .iter()
            .map(|c| parse_stored::<Category>(c))
            .collect::<Result<_, _>>()?,
    })
}

/// 422 naming each id of the filter that names nothing.
fn check_filter(conn: &mut DbConnection, filter: &SubscriptionFilter) -> Result<(), DbError> {
    let wanted: Vec<DbId> = filter.manufacturer_ids.iter().copied().map(DbId).collect();
    let known: Vec<DbId> = manufacturers::table
        .filter(manufacturers::id.eq_any(&wanted))
        .select(manufacturers::id)
        .load(conn)?;
    let mut errors: Vec<FieldError> =
        unknown(&wanted, &known, "filter.manufacturer_ids", "manufacturer");
    let wanted: Vec<DbId> = filter.model_ids.iter().copied().map(DbId).collect();
    let known: Vec<DbId> = models::table
        .filter(models::id.eq_any(&wanted))
        .select(models::id)
        .load(conn)?;
    errors.extend(unknown(&wanted, &known, "filter.model_ids", "model"));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DbError::Invalid(errors))
    }
}

fn unknown(wanted: &[DbId], known: &[DbId], field: &str, what: &str) -> Vec<FieldError> {
    wanted
        .iter()
        .enumerate()
        .filter(|(_, id)| !known.contains(id))
        .map(|(index, _)| {
            FieldError::new(
                format!("{field}[{index}]"),
                format!("no {what} has this id"),
            )
        })
        .collect()
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

fn owned_state(
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

fn stored_email(conn: &mut DbConnection, id: Uuid) -> Result<String, DbError> {
    Ok(subscriptions::table
        .find(DbId(id))
        .select(subscriptions::email)
        .first(conn)?)
}

/// Inserts a pending subscription; `None` if the address was subscribed
/// meanwhile (in a savepoint, so that the transaction goes on).
fn create(
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
fn renew(
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
            subscriptions::delivery.eq(delivery.as_str()),
            subscriptions::min_severity.eq(filter.min_severity.rank()),
            subscriptions::all_manufacturers.eq(filter.manufacturer_ids.is_empty()),
            subscriptions::all_models.eq(filter.model_ids.is_empty()),
            subscriptions::all_categories.eq(filter.categories.is_empty()),
            subscriptions::confirmed_at.eq(None::<DbTime>),
            subscriptions::unsubscribed_at.eq(None::<DbTime>),
            subscriptions::updated_at.eq(DbTime(now)),
        ))
        .execute(conn)?;
    let sid = DbId(id);
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

fn record(
    conn: &mut DbConnection,
    action: &'static str,
    id: Uuid,
    state: SubscriptionState,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let payload: Value = json!({ "state": state });
    audit::append(
        conn,
        &Actor::public(),
        vec![Change::new(action, "subscription", id, payload)],
        now,
    )
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
