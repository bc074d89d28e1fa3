//! The outbox: every mail is a row here before it is sent, written in the
//! transaction of the change that causes it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::outbox;
use super::types::{DbId, DbTime};
use super::{DbConnection, DbError};
use crate::domain::mail::{DeliveryState, MailKind, Recipient, email_key};

/// A single mail not about an advisory (a confirmation, a link to manage a
/// subscription).
pub struct NewMail {
    pub kind: MailKind,
    pub email: String,
    pub name: Option<String>,
    pub recipient: Recipient,
    pub subscription_id: Option<Uuid>,
}

/// Queues one mail for the worker; returns its row id.
pub fn enqueue(conn: &mut DbConnection, mail: NewMail, now: DateTime<Utc>) -> Result<i64, DbError> {
    Ok(diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(mail.kind.as_str()),
            outbox::email_key.eq(email_key(&mail.email)),
            outbox::email.eq(mail.email.trim()),
            outbox::name.eq(mail.name),
            outbox::audience.eq(mail.recipient.as_str()),
            outbox::subscription_id.eq(mail.subscription_id.map(DbId)),
            outbox::state.eq(DeliveryState::Queued.as_str()),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(DbTime(now)),
            outbox::created_at.eq(DbTime(now)),
        ))
        .returning(outbox::id)
        .get_result(conn)?)
}
