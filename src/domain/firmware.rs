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

    /// The range in words: `<7.1.2` → "before 7.1.2", `>=5,<6` → "from 5
    /// and before 6".
    pub fn words(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(op, v)| match op {
                Op::Lt => format!("before {v}"),
                Op::Le => format!("up to {v}"),
                Op::Gt => format!("after {v}"),
                Op::Ge => format!("from {v}"),
                Op::Eq => format!("exactly {v}"),
            })
            .collect();
        parts.join(" and ")
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

/// One end of a stretch of the version line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// No end: from the first version, or to the last.
    Open,
    Included(FirmwareVersion),
    Excluded(FirmwareVersion),
}

/// A stretch of the version line, from one bound to another: what a
/// decision's range covers, and the pieces an answer is given for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub from: Bound,
    pub to: Bound,
}

impl Span {
    /// Every version.
    pub fn all() -> Self {
        Self {
            from: Bound::Open,
            to: Bound::Open,
        }
    }

    pub fn is_all(&self) -> bool {
        self.from == Bound::Open && self.to == Bound::Open
    }

    /// This span and the one that follows it, as one.
    pub fn joined(self, next: Span) -> Span {
        Span {
            from: self.from,
            to: next.to,
        }
    }

    /// Whether `version` lies in the span.
    pub fn contains(&self, version: &FirmwareVersion) -> bool {
        let above = match &self.from {
            Bound::Open => true,
            Bound::Included(v) => version >= v,
            Bound::Excluded(v) => version > v,
        };
        let below = match &self.to {
            Bound::Open => true,
            Bound::Included(v) => version <= v,
            Bound::Excluded(v) => version < v,
        };
        above && below
    }

    /// The span as a range (`<7.1.2`, `>=5,<6`, `=6.3`); `None` for every
    /// version.
    pub fn range(&self) -> Option<FirmwareRange> {
        let mut constraints = Vec::new();
        match (&self.from, &self.to) {
            (Bound::Included(a), Bound::Included(b)) if a == b => {
                constraints.push((Op::Eq, a.clone()));
            }
            (from, to) => {
                match from {
                    Bound::Included(v) => constraints.push((Op::Ge, v.clone())),
                    Bound::Excluded(v) => constraints.push((Op::Gt, v.clone())),
                    Bound::Open => {}
                }
                match to {
                    Bound::Included(v) => constraints.push((Op::Le, v.clone())),
                    Bound::Excluded(v) => constraints.push((Op::Lt, v.clone())),
                    Bound::Open => {}
                }
            }
        }
        (!constraints.is_empty()).then_some(FirmwareRange(constraints))
    }
}

/// Cuts the version line into the fewest pieces inside which every one of
/// `ranges` either holds for every version or for none: each version a
/// range names is a piece of its own, and so is each stretch between two
/// such versions (and before the first, after the last). In order, from
/// the first version.
pub fn pieces<'a>(ranges: impl IntoIterator<Item = &'a FirmwareRange>) -> Vec<Span> {
    let mut cuts: Vec<FirmwareVersion> = ranges
        .into_iter()
        .flat_map(|range| range.0.iter().map(|(_, v)| v.clone()))
        .collect();
    cuts.sort();
    cuts.dedup();
    let zero = FirmwareVersion(vec![0]);
    let mut pieces = Vec::with_capacity(cuts.len() * 2 + 1);
    let mut from = Bound::Open;
    for cut in cuts {
        // No version comes before 0.
        if !(from == Bound::Open && cut == zero) {
            pieces.push(Span {
                from,
                to: Bound::Excluded(cut.clone()),
            });
        }
        pieces.push(Span {
            from: if cut == zero {
                Bound::Open
            } else {
                Bound::Included(cut.clone())
            },
            to: Bound::Included(cut.clone()),
        });
        from = Bound::Excluded(cut);
    }
    pieces.push(Span {
        from,
        to: Bound::Open,
    });
    pieces
}

impl FirmwareRange {
    /// Whether the range holds for every version of `piece`, one of the
    /// pieces [`pieces`] cut for this range (among others): inside a piece
    /// no bound of the range falls, so one test per constraint tells.
    pub fn covers(&self, piece: &Span) -> bool {
        // Only single versions end with an included bound.
        if let Bound::Included(version) = &piece.to {
            return self.holds(version);
        }
        self.0.iter().all(|(op, bound)| {
            // The bound lies wholly below the piece, or wholly above it.
            let piece_above = matches!(&piece.from, Bound::Excluded(v) if v >= bound);
            if piece_above {
                matches!(op, Op::Gt | Op::Ge)
            } else {
                matches!(op, Op::Lt | Op::Le)
            }
        })
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

    #[test]
    fn pieces_cut_the_line_at_every_bound() {
        let ranges = [r("<6.3.1"), r(">=5,<6")];
        let cut = pieces(&ranges);
        let shown: Vec<String> = cut
            .iter()
            .map(|p| p.range().map_or("any".into(), |r| r.to_string()))
            .collect();
        assert_eq!(
            shown,
            ["<5", "=5", ">5,<6", "=6", ">6,<6.3.1", "=6.3.1", ">6.3.1"]
        );
        assert!(pieces(&[r(">=0")]).iter().all(|p| p.range().is_some()));
        assert_eq!(
            pieces(std::iter::empty::<&FirmwareRange>()),
            vec![Span::all()]
        );
    }

    fn version() -> impl Strategy<Value = FirmwareVersion> {
        proptest::collection::vec(0u64..4, 1..4).prop_map(FirmwareVersion)
    }

    fn range() -> impl Strategy<Value = FirmwareRange> {
        let op = prop_oneof![
            Just(Op::Lt),
            Just(Op::Le),
            Just(Op::Gt),
            Just(Op::Ge),
            Just(Op::Eq)
        ];
        proptest::collection::vec((op, version()), 1..3)
            .prop_map(FirmwareRange)
            .prop_filter("satisfiable", FirmwareRange::satisfiable)
    }

    proptest! {
        /// A range covers a piece exactly when it holds for the versions
        /// in it: the cut never splits what a range says.
        #[test]
        fn a_range_covers_a_piece_exactly_when_it_holds_inside_it(
            ranges in proptest::collection::vec(range(), 1..4),
            probe in version(),
        ) {
            let cut = pieces(&ranges);
            let inside: Vec<&Span> = cut.iter().filter(|p| p.contains(&probe)).collect();
            prop_assert_eq!(inside.len(), 1, "one piece holds {}", probe);
            for range in &ranges {
                prop_assert_eq!(range.covers(inside[0]), range.holds(&probe), "{} at {}", range, probe);
            }
            let piece_range = inside[0].range();
            prop_assert!(piece_range.is_none_or(|r| r.holds(&probe)));
        }

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
