//! How serious a finding or an advisory is.

crate::text_enum! {
    /// From `none` to `critical`; ordered, so `>=` compares severities.
    #[derive(PartialOrd, Ord)]
    pub enum Severity {
        None,
        Low,
        Medium,
        High,
        Critical,
    }
}

impl Severity {
    /// The number a severity is stored as where the database compares
    /// severities (a subscription's minimum): none 0 … critical 4.
    pub fn rank(self) -> i32 {
        match self {
            Self::None => 0,
            Self::Low => 1,
            Self::Medium => 2,
            Self::High => 3,
            Self::Critical => 4,
        }
    }

    /// The severity of a stored rank.
    pub fn from_rank(rank: i32) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.rank() == rank)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_ordered_and_round_trip() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::None);
        assert_eq!((Severity::None.rank(), Severity::Critical.rank()), (0, 4));
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>().unwrap(), *s);
        }
        assert_eq!(
            "severe".parse::<Severity>().unwrap_err(),
            "must be one of: none, low, medium, high, critical"
        );
        assert_eq!(serde_json::to_string(&Severity::High).unwrap(), "\"high\"");
    }

    #[test]
    fn ranks_follow_the_order_and_round_trip() {
        for pair in Severity::ALL.windows(2) {
            assert!(pair[0] < pair[1] && pair[0].rank() < pair[1].rank());
        }
        for s in Severity::ALL {
            assert_eq!(Severity::from_rank(s.rank()), Some(*s));
        }
        assert_eq!(Severity::None.rank(), 0);
        assert_eq!(Severity::Critical.rank(), 4);
        assert_eq!(Severity::from_rank(5), None);
    }
}
