//! How many subscription mails (confirm, manage) each address was sent a
//! day: the count behind the per-address mail limit.

use chrono::NaiveDate;
use diesel::prelude::*;

use super::schema::address_mail_counts as counts;
use super::{DbConnection, DbError, is_unique_violation};

fn day_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// Counts one more mail to the address with `email_key` on `day`, and
/// returns how many that makes. The update locks the row, so concurrent
/// requests for one address count one after the other; the first of a day
/// inserts (in a savepoint: when another request inserted meanwhile, its row
/// is updated instead).
pub fn count_one(conn: &mut DbConnection, email_key: &str, day: NaiveDate) -> Result<i32, DbError> {
    let day = day_text(day);
    loop {
        let counted: Option<i32> = diesel::update(
            counts::table
                .filter(counts::email_key.eq(email_key))
                .filter(counts::day.eq(&day)),
        )
        .set(counts::mails.eq(counts::mails + 1))
        .returning(counts::mails)
        .get_result(conn)
        .optional()?;
        if let Some(mails) = counted {
            return Ok(mails);
        }
        let inserted = conn.transaction(|conn| {
            diesel::insert_into(counts::table)
                .values((
                    counts::email_key.eq(email_key),
                    counts::day.eq(&day),
                    counts::mails.eq(1),
                ))
                .execute(conn)
        });
        match inserted {
            Ok(_) => return Ok(1),
            Err(error) if is_unique_violation(&error) => continue,
            Err(error) => return Err(error.into()),
        }
    }
}

/// Forgets the counts of days before `today`; returns how many it forgot.
pub fn forget_before(conn: &mut DbConnection, today: NaiveDate) -> Result<usize, DbError> {
    Ok(diesel::delete(counts::table.filter(counts::day.lt(day_text(today)))).execute(conn)?)
}
