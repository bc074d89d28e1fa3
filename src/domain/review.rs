//! Reviews: a model under examination until a due date ("a decision within
//! three months").

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::text::{Line, Prose};

/// A review to open, as a request body gives it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReview {
    pub model_id: Uuid,
    pub reason: Prose,
    /// When a decision is due, e.g. 90 days from now for "within three months".
    pub due_at: DateTime<Utc>,
}

/// How a review ended, as a request body gives it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CloseReview)]
pub struct ReviewOutcome {
    pub outcome: Line,
    /// The advisory that settled the review, if one did.
    #[serde(default)]
    pub advisory_id: Option<Uuid>,
}
