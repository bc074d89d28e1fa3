//! Reviews: opening one puts a model without a decision under review;
//! closing it ends that.

use uuid::Uuid;

use super::clearance::rederive;
use super::{Done, Result, Workflow};
use crate::db::clearance::Cause;
use crate::db::reviews::{self, Review};
use crate::db::{advisories, models};
use crate::domain::audit::Actor;
use crate::domain::rejection::Rejection;
use crate::domain::review::{NewReview, ReviewOutcome};

pub async fn open(workflow: &Workflow, actor: Actor, new: NewReview) -> Result<Done<Review>> {
    workflow
        .run(actor, move |tx| {
            if models::existing(tx.conn, &[new.model_id])?.is_empty() {
                return Err(Rejection::invalid("model_id", "no model has this id").into());
            }
            let review = reviews::open(tx.conn, &new, &tx.actor.sub, tx.now)?;
            tx.audit_change("review.open", "review", review.id, &review)?;
            let cause = Cause {
                advisory_id: None,
                review_id: Some(review.id),
            };
            rederive(tx, &[review.model_id], cause)?;
            Ok(review)
        })
        .await
}

pub async fn close(
    workflow: &Workflow,
    actor: Actor,
    id: Uuid,
    outcome: ReviewOutcome,
) -> Result<Done<Review>> {
    workflow
        .run(actor, move |tx| {
            let review = reviews::get(tx.conn, id, tx.now)?;
            if review.closed_at.is_some() {
                return Err(Rejection::WrongState {
                    detail: "this review is already closed".into(),
                    current_state: "closed".into(),
                }
                .into());
            }
            if let Some(advisory) = outcome.advisory_id
                && advisories::existing(tx.conn, &[advisory])?.is_empty()
            {
                return Err(Rejection::invalid("advisory_id", "no advisory has this id").into());
            }
            let review = reviews::close(tx.conn, id, &outcome, &tx.actor.sub, tx.now)?;
            tx.audit_change("review.close", "review", review.id, &review)?;
            let cause = Cause {
                advisory_id: outcome.advisory_id,
                review_id: Some(id),
            };
            rederive(tx, &[review.model_id], cause)?;
            Ok(review)
        })
        .await
}
