//! Why a use case says no: outcomes of the product's rules, not failures of
//! the machinery. The API maps each to its status once (`crate::error`).

use serde::Serialize;
use utoipa::ToSchema;

/// One invalid input field: where it is and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the offending field, e.g. `tacs[1]` or `query.limit`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A rule of the product refuses the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The input names something that does not exist or breaks a rule of
    /// its content: each field at fault.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// A rule forbids this caller the change (e.g. the two-person rule).
    #[error("{0}")]
    Refused(String),
    /// A step the resource's current state does not allow.
    #[error("{detail}")]
    WrongState {
        detail: String,
        current_state: String,
    },
}

impl Rejection {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }

    /// `Ok` when no field is at fault.
    pub fn unless_invalid(errors: Vec<FieldError>) -> Result<(), Self> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Self::Invalid(errors))
        }
    }
}

impl From<super::advisory::IllegalTransition> for Rejection {
    fn from(illegal: super::advisory::IllegalTransition) -> Self {
        Self::WrongState {
            detail: illegal.to_string(),
            current_state: illegal.current.to_owned(),
        }
    }
}
