//! Public subscriptions and their double opt-in. Anyone can type anyone's
//! address, so nothing here tells the caller whether an address was known,
//! and a confirmed subscription is never changed by a stranger: its owner is
//! mailed a link instead. Audit rows name the subscription and the public
//! actor, never the address.

use serde_json::json;
use uuid::Uuid;

use super::{Done, Result, Tx, Workflow, unknown_ids};
use crate::db::audit::Change;
use crate::db::outbox::{self, NewMail};
use crate::db::{DbError, address_mail, manufacturers, models, subscriptions};
use crate::domain::audit::Actor;
use crate::domain::mail::{MailKind, Recipient};
use crate::domain::rejection::Rejection;
use crate::domain::subscription::{
    Delivery, SubscribeRequest, SubscribeStep, SubscriptionFilter, SubscriptionState, on_subscribe,
};

/// Handles a request to subscribe (see [`on_subscribe`]) and queues the mail
/// it causes; the answer is the same whatever the address's history. A
/// manufacturer or model id of the filter that names nothing is invalid.
/// An address already sent `mails_per_day` mails today gets no more, and
/// its subscription is left as it is — with the same answer.
pub async fn subscribe(
    workflow: &Workflow,
    request: SubscribeRequest,
    mails_per_day: u32,
) -> Result<Done<()>> {
    workflow
        .run(Actor::public(), move |tx| {
            let filter = request.filter.deduplicated();
            check_filter(tx, &filter)?;
            let key = request.email.key();
            let mails_today = address_mail::count_one(tx.conn, &key, tx.now.date_naive())?;
            if i64::from(mails_today) > i64::from(mails_per_day) {
                tracing::info!("subscription request ignored: its address had today's mails");
                return Ok(());
            }
            let (id, step) = match subscriptions::find_by_key(tx.conn, &key)? {
                Some((id, state)) => (id, on_subscribe(Some(state))),
                None => match subscriptions::create(
                    tx.conn,
                    &request.email,
                    &filter,
                    request.delivery,
                    tx.now,
                )? {
                    Some(id) => (id, SubscribeStep::Create),
                    // The same address was subscribed at this very moment:
                    // treat this request as coming after that one.
                    None => subscriptions::find_by_key(tx.conn, &key)?
                        .map(|(id, state)| (id, on_subscribe(Some(state))))
                        .ok_or_else(|| {
                            DbError::Other(anyhow::anyhow!(
                                "a subscription vanished while subscribing"
                            ))
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
                    subscriptions::renew(
                        tx.conn,
                        id,
                        &request.email,
                        &filter,
                        request.delivery,
                        tx.now,
                    )?;
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
                    subscriptions::stored_email(tx.conn, id)?,
                    json!({ "state": SubscriptionState::Confirmed }),
                ),
            };
            outbox::enqueue(
                tx.conn,
                NewMail {
                    kind,
                    email: to,
                    name: None,
                    recipient: Recipient::Subscriber,
                    subscription_id: Some(id),
                    payload: None,
                },
                tx.now,
            )?;
            tx.mail_queued(1);
            tx.audit(Change::new(action, "subscription", id, payload));
            Ok(())
        })
        .await
}

/// Forgets the per-address mail counts of the days before today.
pub async fn forget_old_mail_counts(workflow: &Workflow) -> Result<usize> {
    let today = workflow.clock().now().date_naive();
    workflow
        .db()
        .write(move |conn| Ok(address_mail::forget_before(conn, today)?))
        .await
}

/// Pending → confirmed; a confirmed one stays so. An ended subscription is
/// not revived by an old confirmation link: its owner subscribes again.
/// `NotFound` unless subscription `id` belongs to `email_key`.
pub async fn confirm(
    workflow: &Workflow,
    id: Uuid,
    email_key: String,
) -> Result<Done<SubscriptionState>> {
    workflow
        .run(Actor::public(), move |tx| {
            match subscriptions::owned_state(tx.conn, id, &email_key)? {
                SubscriptionState::Confirmed => {}
                SubscriptionState::Unsubscribed => {
                    return Err(ended("to receive a new confirmation link").into());
                }
                SubscriptionState::Pending => {
                    moved(tx, id, SubscriptionState::Confirmed, "subscription.confirm")?;
                }
            }
            Ok(SubscriptionState::Confirmed)
        })
        .await
}

/// Ends the subscription; ending an ended one changes nothing.
/// `NotFound` unless subscription `id` belongs to `email_key`.
pub async fn unsubscribe(workflow: &Workflow, id: Uuid, email_key: String) -> Result<Done<()>> {
    workflow
        .run(Actor::public(), move |tx| {
            if subscriptions::owned_state(tx.conn, id, &email_key)?
                != SubscriptionState::Unsubscribed
            {
                moved(
                    tx,
                    id,
                    SubscriptionState::Unsubscribed,
                    "subscription.unsubscribe",
                )?;
            }
            Ok(())
        })
        .await
}

/// Its owner (who followed a manage link) changes what subscription `id`
/// receives and how: the same filter rules as subscribing; its address and
/// state stay. An ended subscription is not changed: its owner subscribes
/// again. `NotFound` unless subscription `id` belongs to `email_key`.
pub async fn change_filter(
    workflow: &Workflow,
    id: Uuid,
    email_key: String,
    filter: SubscriptionFilter,
    delivery: Delivery,
) -> Result<Done<()>> {
    workflow
        .run(Actor::public(), move |tx| {
            if subscriptions::owned_state(tx.conn, id, &email_key)?
                == SubscriptionState::Unsubscribed
            {
                return Err(ended("before choosing what to receive").into());
            }
            let filter = filter.deduplicated();
            check_filter(tx, &filter)?;
            subscriptions::change_filter(tx.conn, id, &filter, delivery, tx.now)?;
            tx.audit(Change::new(
                "subscription.change_filter",
                "subscription",
                id,
                json!({ "delivery": delivery, "filter": filter }),
            ));
            Ok(())
        })
        .await
}

/// A step an ended subscription does not take: its owner subscribes again
/// `first` (to do what they wanted).
fn ended(first: &str) -> Rejection {
    Rejection::WrongState {
        detail: format!("this subscription was ended; subscribe again {first}"),
        current_state: SubscriptionState::Unsubscribed.as_str().into(),
    }
}

fn moved(tx: &mut Tx<'_>, id: Uuid, state: SubscriptionState, action: &'static str) -> Result<()> {
    subscriptions::set_state(tx.conn, id, state, tx.now)?;
    tx.audit(Change::new(
        action,
        "subscription",
        id,
        json!({ "state": state }),
    ));
    Ok(())
}

/// Each id of the filter that names nothing is a field at fault.
fn check_filter(tx: &mut Tx<'_>, filter: &SubscriptionFilter) -> Result<()> {
    let known = manufacturers::existing(tx.conn, &filter.manufacturer_ids)?;
    let mut errors = unknown_ids(
        "filter.manufacturer_ids",
        &filter.manufacturer_ids,
        &known,
        "manufacturer",
    );
    let known = models::existing(tx.conn, &filter.model_ids)?;
    errors.extend(unknown_ids(
        "filter.model_ids",
        &filter.model_ids,
        &known,
        "model",
    ));
    Ok(Rejection::unless_invalid(errors)?)
}
