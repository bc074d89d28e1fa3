//! How serious a finding or an advisory is.

crate::text_enum! {
    /// From `none` to `critical`; ordered, so `>=` compares severities.
    #[derive(PartialOrd, Ord)]
    pub enum Severity {
        None = "none",
        Low = "low",
        Medium = "medium",
        High = "high",
        Critical = "critical",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_ordered_and_round_trip() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::None);
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>().unwrap(), *s);
        }
        assert_eq!(
            "severe".parse::<Severity>().unwrap_err(),
            "must be one of: none, low, medium, high, critical"
        );
        assert_eq!(serde_json::to_string(&Severity::High).unwrap(), "\"high\"");
    }
}
