//! Firmware versions and the ranges a decision may be limited to.
//! Versions are dotted numbers ("6.3.1") compared component by component,
//! a missing component counting as 0 ("6.3" = "6.3.0"); a range is a
//! comma-separated list of constraints that must all hold (">=5,<6").

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

const MAX_COMPONENTS: usize = 8;
const MAX_COMPONENT_DIGITS: usize = 9;

/// A firmware version: dotted numbers, with an optional leading `v`.
#[derive(Debug, Clone, Eq)]
pub struct FirmwareVersion(Vec<u64>);

impl FirmwareVersion {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = raw.trim();
        let text = text
            .strip_prefix('v')
            .or_else(|| text.strip_prefix('V'))
            .unwrap_or(text);
        let invalid = || format!("`{raw}` is not a version: write dotted numbers such as 6.3.1");
        let components: Vec<u64> = text
            .split('.')
            .map(|part| {
                if part.is_empty()
                    || part.len() > MAX_COMPONENT_DIGITS
                    || !part.bytes().all(|b| b.is_ascii_digit())
                {
                    Err(invalid())
                } else {
                    part.parse::<u64>().map_err(|_| invalid())
                }
            })
            .collect::<Result<_, _>>()?;
        if components.len() > MAX_COMPONENTS {
            return Err(format!("`{raw}` has more than {MAX_COMPONENTS} components"));
        }
        Ok(Self(components))
    }

    fn component(&self, i: usize) -> u64 {
        self.0.get(i).copied().unwrap_or(0)
    }
}

impl Ord for FirmwareVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.0.len().max(other.0.len());
        (0..len)
            .map(|i| self.component(i).cmp(&other.component(i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for FirmwareVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for FirmwareVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u64::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "=",
        }
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Lt => ordering.is_lt(),
            Op::Le => ordering.is_le(),
            Op::Gt => ordering.is_gt(),
            Op::Ge => ordering.is_ge(),
            Op::Eq => ordering.is_eq(),
        }
    }
}

/// A range of firmware versions, e.g. `<6.3.1`, `>=6.3.1` or `>=5,<6`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "<6.3.1")]
pub struct FirmwareRange(Vec<(Op, FirmwareVersion)>);

impl FirmwareRange {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            return Err("must not be empty: use null for every version".into());
        }
        let constraints = raw
            .split(',')
            .map(|part| {
                let part = part.trim();
                let (op, version) = [
                    (">=", Op::Ge),
                    ("<=", Op::Le),
                    ("==", Op::Eq),
                    (">", Op::Gt),
                    ("<", Op::Lt),
                    ("=", Op::Eq),
                ]
                .into_iter()
                .find_map(|(symbol, op)| part.strip_prefix(symbol).map(|rest| (op, rest)))
                .unwrap_or((Op::Eq, part));
                FirmwareVersion::parse(version)
                    .map(|v| (op, v))
                    .map_err(|e| {
                        format!("is not a firmware range such as <6.3.1, >=6.3.1 or >=5,<6: {e}")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let range = Self(constraints);
        if !range.satisfiable() {
            return Err(format!("no version satisfies `{range}`"));
        }
        Ok(range)
    }

    /// Whether `version` lies in the range.
    pub fn holds(&self, version: &FirmwareVersion) -> bool {
        self.0
            .iter()
            .all(|(op, bound)| op.holds(version.cmp(bound)))
    }

    /// The range as a `vers` expression (the version range specifier CSAF's
    /// `product_version_range` names): `>=5,<6` → `vers:generic/>=5|<6`.
    /// Constraints are sorted by version as `vers` requires; an equality is
    /// the bare version.
    pub fn vers(&self) -> String {
        let mut constraints = self.0.clone();
        constraints.sort_by(|a, b| a.1.cmp(&b.1));
        let parts: Vec<String> = constraints
            .iter()
            .map(|(op, v)| match op {
                Op::Eq => v.to_string(),
                _ => format!("{}{v}", op.symbol()),
            })
            .collect();
        format!("vers:generic/{}", parts.join("|"))
    }

    /// False for ranges such as `>6,<5` that no version lies in.
    fn satisfiable(&self) -> bool {
        let lowest = self
            .0
            .iter()
            .filter(|(op, _)| matches!(op, Op::Gt | Op::Ge | Op::Eq))
            .max_by(|a, b| a.1.cmp(&b.1).then((a.0 == Op::Gt).cmp(&(b.0 == Op::Gt))));
        let highest = self
            .0
            .iter()
            .filter(|(op, _)| matches!(op, Op::Lt | Op::Le | Op::Eq))
            .min_by(|a, b| {
                a.1.cmp(&b.1)
                    .then((a.0 == Op::Lt).cmp(&(b.0 == Op::Lt)).reverse())
            });
        match (lowest, highest) {
            (Some((low_op, low)), Some((high_op, high))) => match low.cmp(high) {
                Ordering::Less => true,
                Ordering::Equal => *low_op != Op::Gt && *high_op != Op::Lt,
                Ordering::Greater => false,
            },
            _ => true,
        }
    }
}

impl fmt::Display for FirmwareRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(op, v)| format!("{}{v}", op.symbol()))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl TryFrom<String> for FirmwareRange {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<FirmwareRange> for String {
    fn from(range: FirmwareRange) -> String {
        range.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(raw: &str) -> FirmwareVersion {
        FirmwareVersion::parse(raw).unwrap()
    }

    #[test]
    fn ranges_become_vers_expressions() {
        let vers = |raw: &str| FirmwareRange::parse(raw).unwrap().vers();
        assert_eq!(vers("<6.3.1"), "vers:generic/<6.3.1");
        assert_eq!(vers(">=5,<6"), "vers:generic/>=5|<6");
        assert_eq!(vers("<6, >=5"), "vers:generic/>=5|<6");
        assert_eq!(vers("==6.3"), "vers:generic/6.3");
    }

    fn r(raw: &str) -> FirmwareRange {
        FirmwareRange::parse(raw).unwrap()
    }

    #[test]
    fn versions_compare_component_wise() {
        assert!(v("6.3.10") > v("6.3.9"));
        assert!(v("6.10") > v("6.9.9"));
        assert_eq!(v("6.3"), v("6.3.0"));
        assert_eq!(v("V6.3.1"), v("6.3.1"));
        for bad in [
            "",
            "6..3",
            "6.3a",
            "x",
            "6.-1",
            "1.2.3.4.5.6.7.8.9",
            "1234567890",
        ] {
            assert!(FirmwareVersion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_2014_fix_splits_at_6_3_1() {
        let before = r("<6.3.1");
        let after = r(">=6.3.1");
        assert!(before.holds(&v("6.3.0")) && !after.holds(&v("6.3.0")));
        assert!(!before.holds(&v("6.3.1")) && after.holds(&v("6.3.1")));
        assert!(after.holds(&v("7")));
    }

    #[test]
    fn ranges_combine_and_print_canonically() {
        let five = r(" >= 5 , <6 ");
        assert_eq!(five.to_string(), ">=5,<6");
        assert!(five.holds(&v("5.9.9")) && !five.holds(&v("6")) && !five.holds(&v("4.9")));
        assert!(r("6.3.1").holds(&v("6.3.1.0")));
        assert_eq!(r("==6.3.1").to_string(), "=6.3.1");
    }

    #[test]
    fn unparsable_or_empty_ranges_are_refused() {
        for bad in [
            "", "~6", ">=", "<6,", "abc", ">6,<5", ">6,<6", ">=6,<6", "=5,=6",
        ] {
            assert!(FirmwareRange::parse(bad).is_err(), "{bad}");
        }
        assert!(FirmwareRange::parse(">=6,<=6").is_ok());
    }

    proptest! {
        #[test]
        fn a_range_and_its_complement_split_every_version(
            bound in proptest::collection::vec(0u64..20, 1..4),
            version in proptest::collection::vec(0u64..20, 1..4),
        ) {
            let text = bound.iter().map(u64::to_string).collect::<Vec<_>>().join(".");
            let version = FirmwareVersion(version);
            let below = r(&format!("<{text}"));
            let at_or_above = r(&format!(">={text}"));
            prop_assert!(below.holds(&version) != at_or_above.holds(&version));
        }
    }
}
