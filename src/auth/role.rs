//! The roles a caller can hold. They are hierarchical: each role includes
//! every right of the roles below it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A caller's role, ordered from least to most privileged; the derived
/// `Ord` follows declaration order, which is what [`Role`] comparisons rely on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads the register.
    Reader,
    /// Records test evidence and drafts advisories.
    Analyst,
    /// Approves or rejects advisories.
    Approver,
    /// Everything, including administration.
    Admin,
}

impl Role {
    /// Every role, least privileged first.
    pub const ALL: [Role; 4] = [Role::Reader, Role::Analyst, Role::Approver, Role::Admin];

    /// The role's name as it appears in tokens and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Analyst => "analyst",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role `{s}`: expected one of reader, analyst, approver, admin")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_privilege() {
        assert!(Role::Reader < Role::Analyst);
        assert!(Role::Analyst < Role::Approver);
        assert!(Role::Approver < Role::Admin);
        let mut shuffled = [Role::Admin, Role::Reader, Role::Approver, Role::Analyst];
        shuffled.sort();
        assert_eq!(shuffled, Role::ALL);
    }

    #[test]
    fn names_round_trip_through_str_display_and_serde() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(role.to_string(), role.as_str());
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
        }
    }

    #[test]
    fn unknown_names_are_rejected_with_the_allowed_list() {
        let err = "Admin".parse::<Role>().unwrap_err();
        assert!(err.contains("`Admin`"), "{err}");
        assert!(err.contains("reader, analyst, approver, admin"), "{err}");
        assert!("superuser".parse::<Role>().is_err());
    }
}
