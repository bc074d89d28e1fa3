//! The index behind the lookup, as one reader sees it: a large base part
//! built once, and a small overlay part holding the models changed since
//! (their base entries are masked). Both are immutable, so readers share a
//! snapshot without locks; a change builds a new overlay, never a new base.
//!
//! Answers are exactly those of one part built from the same models: every
//! probe walks both parts in the one order a single part would have.

use std::ops::ControlFlow;
use std::sync::Arc;

use chrono::{DateTime, Utc};
// A search hashes thousands of hits for a common word: a fast hasher.
use hashbrown::{HashMap, HashSet};
use uuid::Uuid;

use super::part::Part;
use crate::domain::clearance::Clearance;
use crate::domain::firmware::FirmwareVersion;
use crate::domain::imei::Tac;
use crate::domain::registry::ManufacturerRef;
use crate::domain::text::{compact, words};

crate::text_enum! {
    /// How a model answers the question asked.
    pub enum MatchedBy {
        /// Its name, an alias or a model number is the text asked.
        Name,
        /// The text is its maker's name and its own.
        MakerAndName,
        /// Its name begins with the text: maybe another model.
        NameStart,
        /// The text is its maker's name: all the maker's models.
        Maker,
        /// Each word of the text begins a word of its names: maybe another
        /// model.
        Words,
        /// Its TAC, asked for or in the IMEI asked for.
        Number,
    }
}

impl MatchedBy {
    /// Whether the model may be another than the one asked about: the
    /// text only begins its name, or shares words with it.
    pub fn is_approximate(self) -> bool {
        matches!(self, Self::NameStart | Self::Words)
    }
}

impl From<Score> for MatchedBy {
    fn from(score: Score) -> Self {
        match score {
            Score::Exact => Self::Name,
            Score::QualifiedName => Self::MakerAndName,
            Score::Prefix => Self::NameStart,
            Score::Manufacturer => Self::Maker,
            Score::Words => Self::Words,
        }
    }
}

/// How well a model matches a text query; higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Score {
    /// Every word of the query starts a word of the model's names.
    Words = 1,
    /// The query is the manufacturer's name or alias: all its models.
    Manufacturer = 2,
    /// The query starts one of the model's names.
    Prefix = 3,
    /// The query is "manufacturer model", exactly.
    QualifiedName = 4,
    /// The query is one of the model's names, aliases or model numbers.
    Exact = 5,
}

/// Most candidates a prefix or word probe collects before ranking: a query
/// of a letter or two must not walk the whole register. (Small in unit
/// tests, so that they reach it.)
const PROBE_CAP: usize = if cfg!(test) { 8 } else { 5_000 };

/// A model of the index, as a lookup answers it.
#[derive(Debug, Clone, Copy)]
pub struct IndexedModel<'a> {
    part: &'a Part,
    slot: u32,
}

impl<'a> IndexedModel<'a> {
    pub fn id(&self) -> Uuid {
        self.part.id(self.slot)
    }

    pub fn name(&self) -> &'a str {
        self.part.name(self.slot)
    }

    pub fn manufacturer(&self) -> ManufacturerRef {
        self.part.maker(self.slot).reference()
    }

    pub fn clearance(&self, now: DateTime<Utc>, firmware: Option<&FirmwareVersion>) -> Clearance {
        self.part.clearance(self.slot, now, firmware)
    }
}

/// The models changed since the base was built: their part, and the base
/// slots it replaces.
#[derive(Debug, Default)]
pub struct Overlay {
    part: Part,
    /// Base slots of changed (or vanished) models, ascending.
    masked: Vec<u32>,
    /// For each base word number, how many masked slots have it.
    masked_per_word: HashMap<u32, u32>,
}

impl Overlay {
    /// The overlay `part` over `base`, masking the base entries of
    /// `changed` (the models in `part`, and any that vanished).
    pub fn new(base: &Part, part: Part, changed: impl IntoIterator<Item = Uuid>) -> Self {
        let mut masked: Vec<u32> = changed
            .into_iter()
            .filter_map(|id| base.slot_of(id))
            .collect();
        masked.sort_unstable();
        masked.dedup();
        let mut masked_per_word: HashMap<u32, u32> = HashMap::new();
        for &slot in &masked {
            for &word in base.words_of(slot) {
                *masked_per_word.entry(word).or_default() += 1;
            }
        }
        Self {
            part,
            masked,
            masked_per_word,
        }
    }
}

/// Which part a slot is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    Base,
    Overlay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Hit {
    side: Side,
    slot: u32,
}

#[derive(Debug, Default)]
pub struct LookupIndex {
    generation: i64,
    base: Arc<Part>,
    overlay: Arc<Overlay>,
}

impl LookupIndex {
    pub fn new(generation: i64, base: Arc<Part>, overlay: Arc<Overlay>) -> Self {
        Self {
            generation,
            base,
            overlay,
        }
    }

    /// The generation of the register's change log this index has followed
    /// through.
    pub fn generation(&self) -> i64 {
        self.generation
    }

    pub fn base(&self) -> &Arc<Part> {
        &self.base
    }

    pub fn overlay(&self) -> &Arc<Overlay> {
        &self.overlay
    }

    pub fn len(&self) -> usize {
        self.base.len() - self.overlay.masked.len() + self.overlay.part.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn part(&self, side: Side) -> &Part {
        match side {
            Side::Base => &self.base,
            Side::Overlay => &self.overlay.part,
        }
    }

    fn model(&self, hit: Hit) -> IndexedModel<'_> {
        IndexedModel {
            part: self.part(hit.side),
            slot: hit.slot,
        }
    }

    fn live_in_base(&self, slot: u32) -> bool {
        self.overlay.masked.binary_search(&slot).is_err()
    }

    /// The base hit of `slot` unless the overlay masks it.
    fn base_hit(&self, slot: u32) -> Option<Hit> {
        self.live_in_base(slot).then_some(Hit {
            side: Side::Base,
            slot,
        })
    }

    pub fn get(&self, id: Uuid) -> Option<IndexedModel<'_>> {
        self.find(|part| part.slot_of(id))
    }

    pub fn by_tac(&self, tac: &Tac) -> Option<IndexedModel<'_>> {
        let tac: u32 = tac.as_str().parse().ok()?;
        self.find(|part| part.by_tac(tac))
    }

    /// The model `probe` finds: in the overlay (newer) first, else live in
    /// the base.
    fn find(&self, probe: impl Fn(&Part) -> Option<u32>) -> Option<IndexedModel<'_>> {
        let hit = match probe(&self.overlay.part) {
            Some(slot) => Some(Hit {
                side: Side::Overlay,
                slot,
            }),
            None => probe(&self.base).and_then(|s| self.base_hit(s)),
        };
        hit.map(|h| self.model(h))
    }

    /// The models a free-text query names, best match first, at most `limit`.
    pub fn search(&self, query: &str, limit: usize) -> Vec<(MatchedBy, IndexedModel<'_>)> {
        let key = compact(query);
        if key.is_empty() {
            return Vec::new();
        }
        let mut best: HashMap<Hit, Score> = HashMap::new();
        let mut note = |hit: Hit, score: Score| {
            let entry = best.entry(hit).or_insert(score);
            *entry = (*entry).max(score);
        };
        for side in [Side::Base, Side::Overlay] {
            let part = self.part(side);
            let live = |slot: u32| side == Side::Overlay || self.live_in_base(slot);
            let hit = |slot: u32| Hit { side, slot };
            for slot in part.exact(&key).filter(|&s| live(s)) {
                note(hit(slot), Score::Exact);
            }
            // "manufacturer model": each split whose front names a maker.
            let splits = key.char_indices().skip(1).map(|(at, _)| at);
            for at in splits.chain([key.len()]) {
                let (maker_key, rest) = key.split_at(at);
                let makers = part.makers_named(maker_key);
                if makers.is_empty() {
                    continue;
                }
                for slot in part.exact(rest) {
                    if live(slot) && makers.contains(&part.maker_index_of(slot)) {
                        note(hit(slot), Score::QualifiedName);
                    }
                }
            }
            for &maker in part.makers_named(&key) {
                for &slot in part.maker_models(maker) {
                    if live(slot) {
                        note(hit(slot), Score::Manufacturer);
                    }
                }
            }
        }
        for hit in self.prefix_hits(&key) {
            note(hit, Score::Prefix);
        }
        // Word matches rank last: when better ones fill the answer already,
        // they could not enter it.
        if best.len() < limit {
            for hit in self.word_matches(&words(query)) {
                best.entry(hit).or_insert(Score::Words);
            }
        }
        // Best score first, then the shortest name, by name, by id. A
        // common word gathers thousands of hits, of which only `limit`
        // are answered: select those, then order just them.
        let mut ranked: Vec<(Score, IndexedModel<'_>)> = best
            .into_iter()
            .map(|(hit, score)| (score, self.model(hit)))
            .collect();
        let order = |(score_a, a): &(Score, IndexedModel<'_>),
                     (score_b, b): &(Score, IndexedModel<'_>)| {
            score_b
                .cmp(score_a)
                .then(a.name().len().cmp(&b.name().len()))
                .then_with(|| a.name().cmp(b.name()))
                .then_with(|| a.id().cmp(&b.id()))
        };
        if ranked.len() > limit {
            ranked.select_nth_unstable_by(limit, order);
            ranked.truncate(limit);
        }
        ranked.sort_unstable_by(order);
        ranked
            .into_iter()
            .map(|(score, model)| (score.into(), model))
            .collect()
    }

    /// The first [`PROBE_CAP`] entries, in (name, id) order, of the names
    /// that `key` starts.
    fn prefix_hits(&self, key: &str) -> Vec<Hit> {
        // The overlay is small: gather its entries, then merge them into
        // the base's as the base streams by.
        let mut pending: Vec<(Vec<u8>, Vec<u32>)> = Vec::new();
        self.overlay.part.names_starting(key, |name, slots| {
            pending.push((name.to_vec(), slots.collect()));
            true
        });
        let mut pending = pending.into_iter().peekable();
        let mut hits = Vec::new();
        let overlay = |slot| Hit {
            side: Side::Overlay,
            slot,
        };
        let full = |hits: &Vec<Hit>| hits.len() >= PROBE_CAP;
        self.base.names_starting(key, |name, slots| {
            while let Some((_, earlier)) = pending.next_if(|(n, _)| n.as_slice() < name) {
                hits.extend(earlier.into_iter().map(overlay));
                if full(&hits) {
                    return false;
                }
            }
            let same: Vec<u32> = pending
                .next_if(|(n, _)| n.as_slice() == name)
                .map(|(_, s)| s)
                .unwrap_or_default();
            let base: Vec<Hit> = slots.filter_map(|s| self.base_hit(s)).collect();
            hits.extend(self.merge_by_id(base, same));
            !full(&hits)
        });
        if !full(&hits) {
            hits.extend(pending.flat_map(|(_, slots)| slots).map(overlay));
        }
        hits.truncate(PROBE_CAP);
        hits
    }

    /// Live base hits and overlay slots of one name or word, in id order.
    fn merge_by_id(&self, base: Vec<Hit>, overlay: Vec<u32>) -> Vec<Hit> {
        if overlay.is_empty() {
            return base;
        }
        let mut merged: Vec<Hit> = base
            .into_iter()
            .chain(overlay.into_iter().map(|slot| Hit {
                side: Side::Overlay,
                slot,
            }))
            .collect();
        merged.sort_by_key(|&hit| self.model(hit).id());
        merged
    }

    /// Calls `visit` with each word that `prefix` starts, in word order, as
    /// its number in the base and in the overlay (where it has one).
    /// `base_range` is the range of `prefix` in the base.
    fn for_each_word(
        &self,
        prefix: &str,
        (low, high): (u32, u32),
        mut visit: impl FnMut(Option<u32>, Option<u32>) -> ControlFlow<()>,
    ) {
        // The base's words are numbered in word order, so those that
        // `prefix` starts are a range of numbers, found without a stream.
        // Each of the overlay's (few) is placed among them: before the
        // base word at the first position at or after it, or on it.
        let mut pending: Vec<(u32, bool, u32)> = Vec::new();
        self.overlay.part.words_starting(prefix, |word, number| {
            let (at, same) = self.base.word_position(word);
            pending.push((at, same, number));
            true
        });
        let mut pending = pending.into_iter().peekable();
        for base in low..high {
            while let Some((_, _, earlier)) =
                pending.next_if(|&(at, same, _)| at < base || (at == base && !same))
            {
                if visit(None, Some(earlier)).is_break() {
                    return;
                }
            }
            let same = pending
                .next_if(|&(at, same, _)| at == base && same)
                .map(|(_, _, number)| number);
            if visit(Some(base), same).is_break() {
                return;
            }
        }
        for (_, _, number) in pending {
            if visit(None, Some(number)).is_break() {
                return;
            }
        }
    }

    /// The words that `word` starts, as their numbers in the base and in
    /// the overlay, in word order until they reach [`PROBE_CAP`] entries.
    fn words_reached(&self, word: &str) -> WordsReached {
        let base_range = self.base.word_range(word);
        let mut reach = 0;
        let mut reached = Vec::new();
        self.for_each_word(word, base_range, |base, overlay| {
            if let Some(number) = base {
                let masked = self.overlay.masked_per_word.get(&number).copied();
                reach += self.base.postings(number).len() - masked.unwrap_or(0) as usize;
            }
            if let Some(number) = overlay {
                reach += self.overlay.part.postings(number).len();
            }
            reached.push((base, overlay));
            if reach >= PROBE_CAP {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        WordsReached {
            reach,
            words: reached,
            base_range,
        }
    }

    /// Models in which every query word starts some word of their names.
    /// The query word that starts the fewest entries picks the candidates;
    /// each candidate is then checked against its own words, so a common
    /// word ("phone") never has to be expanded.
    fn word_matches(&self, query_words: &[String]) -> HashSet<Hit> {
        let mut reached: Vec<WordsReached> =
            query_words.iter().map(|w| self.words_reached(w)).collect();
        let base_ranges: Vec<(u32, u32)> = reached.iter().map(|r| r.base_range).collect();
        let overlay_ranges: Vec<(u32, u32)> = query_words
            .iter()
            .map(|q| self.overlay.part.word_range(q))
            .collect();
        let Some(lead) = (0..reached.len()).min_by_key(|&at| reached[at].reach) else {
            return HashSet::new();
        };
        let mut candidates = Vec::new();
        for (base, overlay) in reached.swap_remove(lead).words {
            // Postings are in id order, as candidates are: more than the
            // room left could not enter, however the overlay's merge in.
            let room = PROBE_CAP - candidates.len();
            let base: Vec<Hit> = base
                .map(|n| self.base.postings(n))
                .unwrap_or_default()
                .iter()
                .filter_map(|&s| self.base_hit(s))
                .take(room)
                .collect();
            let overlay = overlay
                .map(|n| self.overlay.part.postings(n).to_vec())
                .unwrap_or_default();
            candidates.extend(self.merge_by_id(base, overlay));
            if candidates.len() >= PROBE_CAP {
                break;
            }
        }
        candidates.truncate(PROBE_CAP);
        candidates
            .into_iter()
            .filter(|hit| {
                let (part, ranges) = match hit.side {
                    Side::Base => (&*self.base, &base_ranges),
                    Side::Overlay => (&self.overlay.part, &overlay_ranges),
                };
                ranges.iter().all(|&r| part.has_word_in(hit.slot, r))
            })
            .collect()
    }
}

/// The words a query word starts, as [`LookupIndex::words_reached`] walks
/// them.
struct WordsReached {
    /// How many index entries they reach (counted up to [`PROBE_CAP`]).
    reach: usize,
    /// Their numbers in the base and in the overlay, in word order.
    words: Vec<(Option<u32>, Option<u32>)>,
    /// The range of the query word's numbers in the base.
    base_range: (u32, u32),
}

#[cfg(test)]
mod tests {
    use super::super::part::{ClearanceInputs, MakerInput, ModelInput};
    use super::*;

    struct Maker {
        id: Uuid,
        name: &'static str,
        aliases: Vec<String>,
    }

    fn maker(name: &'static str, aliases: &[&str]) -> Maker {
        Maker {
            id: Uuid::now_v7(),
            name,
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn model(
        maker: &Maker,
        name: &str,
        aliases: &[&str],
        numbers: &[&str],
        tacs: &[&str],
    ) -> ModelInput {
        let others = [aliases, numbers].concat();
        model_with_id(Uuid::now_v7(), maker, name, &others, tacs)
    }

    /// A model with this id; `others` are its aliases and model numbers.
    fn model_with_id(
        id: Uuid,
        maker: &Maker,
        name: &str,
        others: &[&str],
        tacs: &[&str],
    ) -> ModelInput {
        let others: Vec<String> = others.iter().map(|s| s.to_string()).collect();
        let tacs: Vec<String> = tacs.iter().map(|s| s.to_string()).collect();
        ModelInput::new(
            id,
            maker.id,
            name.into(),
            &others,
            &tacs,
            ClearanceInputs {
                since: Utc::now(),
                decisions: Vec::new(),
                review: None,
            },
        )
    }

    fn makers(makers: &[&Maker]) -> Vec<Arc<MakerInput>> {
        makers
            .iter()
            .map(|m| {
                Arc::new(MakerInput::new(
                    m.id,
                    m.name.into(),
                    "CN".into(),
                    &m.aliases,
                ))
            })
            .collect()
    }

    /// A base-only index of these models (in any order).
    fn index_of(all_makers: &[&Maker], mut models: Vec<ModelInput>) -> LookupIndex {
        models.sort_by_key(|m| m.id);
        let base = Part::build(makers(all_makers), &models);
        LookupIndex::new(7, Arc::new(base), Arc::default())
    }

    /// `base` with `changed` laid over it, and the ids in `vanished` gone.
    fn with_overlay(
        all_makers: &[&Maker],
        base: &[ModelInput],
        changed: &[ModelInput],
        vanished: &[Uuid],
    ) -> LookupIndex {
        let base = Arc::new(Part::build(makers(all_makers), base));
        let part = Part::build(makers(all_makers), changed);
        let ids = changed.iter().map(|m| m.id).chain(vanished.iter().copied());
        let overlay = Overlay::new(&base, part, ids);
        LookupIndex::new(7, base, Arc::new(overlay))
    }

    fn sample() -> LookupIndex {
        let xiaomi = maker("Xiaomi", &["小米"]);
        let apple = maker("Apple", &[]);
        let models = vec![
            model(
                &xiaomi,
                "Redmi 1S",
                &["Hongmi 1S"],
                &["2014011", "HM 1SW"],
                &["86452102"],
            ),
            model(&xiaomi, "Redmi Note", &[], &["HM NOTE 1W"], &["86452103"]),
            model(&xiaomi, "Mi 3", &[], &["MI 3W"], &[]),
            model(&apple, "iPhone 5s", &[], &["A1457"], &["35203506"]),
        ];
        index_of(&[&xiaomi, &apple], models)
    }

    fn names_of(hits: Vec<(MatchedBy, IndexedModel<'_>)>) -> Vec<&str> {
        hits.into_iter().map(|(_, m)| m.name()).collect()
    }

    #[test]
    fn an_exact_name_alias_or_model_number_finds_the_model_first() {
        let index = sample();
        for query in [
            "redmi 1s",
            "REDMI-1S",
            "hongmi 1s",
            "2014011",
            "hm1sw",
            "xiaomi redmi 1s",
        ] {
            assert_eq!(
                names_of(index.search(query, 10)).first(),
                Some(&"Redmi 1S"),
                "query {query:?}"
            );
        }
    }

    #[test]
    fn each_model_found_says_how_it_matched() {
        let index = sample();
        let matched = |query| {
            let found = index.search(query, 10);
            found
                .iter()
                .map(|(by, m)| (*by, m.name().to_owned()))
                .collect::<Vec<_>>()
        };
        let one = |by, name: &str| vec![(by, name.to_owned())];
        assert_eq!(matched("hongmi 1s"), one(MatchedBy::Name, "Redmi 1S"));
        assert_eq!(
            matched("xiaomi redmi 1s"),
            one(MatchedBy::MakerAndName, "Redmi 1S")
        );
        assert_eq!(matched("iphone 5"), one(MatchedBy::NameStart, "iPhone 5s"));
        assert_eq!(matched("apple"), one(MatchedBy::Maker, "iPhone 5s"));
        assert_eq!(matched("note redmi"), one(MatchedBy::Words, "Redmi Note"));
        assert!(MatchedBy::NameStart.is_approximate() && MatchedBy::Words.is_approximate());
        assert!(!MatchedBy::Name.is_approximate() && !MatchedBy::Maker.is_approximate());
    }

    #[test]
    fn a_prefix_finds_every_model_it_starts() {
        let index = sample();
        assert_eq!(
            names_of(index.search("redmi", 10)),
            vec!["Redmi 1S", "Redmi Note"]
        );
    }

    #[test]
    fn a_manufacturer_name_or_alias_finds_its_models() {
        let index = sample();
        assert_eq!(index.search("xiaomi", 10).len(), 3);
        assert_eq!(index.search("小米", 10).len(), 3);
        assert_eq!(names_of(index.search("apple", 10)), vec!["iPhone 5s"]);
    }

    #[test]
    fn words_in_any_order_match() {
        let index = sample();
        assert_eq!(names_of(index.search("note redmi", 10)), vec!["Redmi Note"]);
        assert!(index.search("redmi galaxy", 10).is_empty());
    }

    #[test]
    fn tacs_and_ids_resolve() {
        let index = sample();
        let tac = Tac::parse("86452102").unwrap();
        let found = index.by_tac(&tac).unwrap();
        assert_eq!(found.name(), "Redmi 1S");
        assert_eq!(index.get(found.id()).unwrap().name(), "Redmi 1S");
        assert!(index.by_tac(&Tac::parse("99999999").unwrap()).is_none());
        assert_eq!(index.generation(), 7);
    }

    #[test]
    fn the_best_matches_come_first_however_many_match() {
        let acme = maker("Acme", &[]);
        let names = [
            "Phone 10",
            "Phone 333",
            "Phone 2",
            "Phone",
            "Phone 55",
            "Phone 4",
        ];
        let models = names
            .iter()
            .map(|n| model(&acme, n, &[], &[], &[]))
            .collect();
        let index = index_of(&[&acme], models);
        // The exact name, then the shortest names that it starts, by name.
        assert_eq!(
            names_of(index.search("phone", 3)),
            vec!["Phone", "Phone 2", "Phone 4"]
        );
        assert_eq!(
            names_of(index.search("phone", 100)),
            vec![
                "Phone",
                "Phone 2",
                "Phone 4",
                "Phone 10",
                "Phone 55",
                "Phone 333"
            ]
        );
    }

    #[test]
    fn limit_and_blank_queries_are_respected() {
        let index = sample();
        assert_eq!(index.search("xiaomi", 2).len(), 2);
        assert!(index.search(" - ", 10).is_empty());
    }

    #[test]
    fn a_changed_model_answers_as_it_is_now() {
        let xiaomi = maker("Xiaomi", &[]);
        let old = model(&xiaomi, "Redmi 1S", &[], &["HM 1SW"], &["86452102"]);
        let other = model(&xiaomi, "Mi 3", &[], &[], &["86452109"]);
        let renamed = model_with_id(old.id, &xiaomi, "Redmi 2", &[], &[]);
        let took_tac = model_with_id(other.id, &xiaomi, "Mi 3", &[], &["86452102"]);
        let index = with_overlay(&[&xiaomi], &[old, other], &[renamed, took_tac], &[]);
        assert!(index.search("redmi 1s", 10).is_empty(), "the old name");
        assert!(
            index.search("hm1sw", 10).is_empty(),
            "a dropped model number"
        );
        assert_eq!(names_of(index.search("redmi 2", 10)), vec!["Redmi 2"]);
        let tac = |t| Tac::parse(t).unwrap();
        assert_eq!(index.by_tac(&tac("86452102")).unwrap().name(), "Mi 3");
        assert!(index.by_tac(&tac("86452109")).is_none(), "a released TAC");
        assert_eq!(index.search("xiaomi", 10).len(), 2);
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn a_vanished_model_is_gone() {
        let xiaomi = maker("Xiaomi", &[]);
        let gone = model(&xiaomi, "Redmi 1S", &[], &[], &["86452102"]);
        let id = gone.id;
        let index = with_overlay(&[&xiaomi], &[gone], &[], &[id]);
        assert!(index.get(id).is_none());
        assert!(index.search("redmi", 10).is_empty());
        assert!(index.by_tac(&Tac::parse("86452102").unwrap()).is_none());
    }

    mod same_answers_as_one_part {
        //! Whatever was changed, a base with its overlay answers exactly as
        //! one part built from the models as they now are.
        use std::collections::{BTreeMap, BTreeSet};

        use proptest::prelude::*;

        use super::*;

        const SYLLABLES: &[&str] = &["re", "dmi", "no", "te", "mi", "1s", "x", "pro", "9"];

        fn name() -> impl Strategy<Value = String> {
            prop::collection::vec((prop::sample::select(SYLLABLES), prop::bool::ANY), 1..4)
                .prop_map(|parts| {
                    parts
                        .into_iter()
                        .map(|(s, space)| if space { format!("{s} ") } else { s.to_owned() })
                        .collect::<String>()
                        .trim()
                        .to_owned()
                })
        }

        /// A model: maker 0–2, name, other names, TAC 0–4 (or none).
        type Spec = (usize, String, Vec<String>, Option<u8>);

        fn spec() -> impl Strategy<Value = Spec> {
            (
                0..3_usize,
                name(),
                prop::collection::vec(name(), 0..3),
                prop::option::of(0..5_u8),
            )
        }

        fn build(id: Uuid, makers: &[Maker], spec: &Spec) -> ModelInput {
            let (maker, name, others, tac) = spec;
            let others: Vec<&str> = others.iter().map(String::as_str).collect();
            let tac = tac.map(|t| format!("3520350{t}"));
            let tacs: Vec<&str> = tac.iter().map(String::as_str).collect();
            model_with_id(id, &makers[*maker], name, &others, &tacs)
        }

        /// Drops each TAC that `taken` already holds, then takes the rest.
        fn claim(spec: &mut Spec, taken: &mut HashSet<u8>) {
            if let Some(tac) = spec.3
                && !taken.insert(tac)
            {
                spec.3 = None;
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            #[test]
            fn for_any_change(
                before in prop::collection::vec(spec(), 1..12),
                changes in prop::collection::vec((0..12_usize, prop::option::of(spec())), 0..6),
                added in prop::collection::vec(spec(), 0..3),
                queries in prop::collection::vec(name(), 1..6),
            ) {
                let makers = [maker("Xiao Mi", &["MI"]), maker("Redmi", &[]), maker("Pro", &["9 x"])];
                let refs: Vec<&Maker> = makers.iter().collect();
                let was: BTreeMap<Uuid, Spec> = before.into_iter().map(|s| (Uuid::now_v7(), s)).collect();
                let ids: Vec<Uuid> = was.keys().copied().collect();
                let mut now = was.clone();
                let mut changed = BTreeSet::new();
                for (which, new) in changes {
                    let id = ids[which % ids.len()];
                    changed.insert(id);
                    match new {
                        Some(spec) => now.insert(id, spec),
                        None => now.remove(&id),
                    };
                }
                for spec in added {
                    let id = Uuid::now_v7();
                    changed.insert(id);
                    now.insert(id, spec);
                }
                // As in the database, a TAC is one model's at a time.
                let mut taken = HashSet::new();
                for spec in now.values_mut() {
                    claim(spec, &mut taken);
                }
                let mut taken: HashSet<u8> = now
                    .iter()
                    .filter(|(id, _)| !changed.contains(*id))
                    .filter_map(|(_, s)| s.3)
                    .collect();
                let base: Vec<ModelInput> = was
                    .iter()
                    .map(|(id, spec)| {
                        let mut spec = if changed.contains(id) { spec.clone() } else { now[id].clone() };
                        if changed.contains(id) {
                            claim(&mut spec, &mut taken);
                        }
                        build(*id, &makers, &spec)
                    })
                    .collect();
                let overlay: Vec<ModelInput> = changed
                    .iter()
                    .filter_map(|id| now.get(id).map(|spec| build(*id, &makers, spec)))
                    .collect();
                let vanished: Vec<Uuid> = changed.iter().filter(|id| !now.contains_key(*id)).copied().collect();
                let layered = with_overlay(&refs, &base, &overlay, &vanished);
                let whole = index_of(&refs, now.iter().map(|(id, spec)| build(*id, &makers, spec)).collect());
                prop_assert_eq!(layered.len(), whole.len());
                let answer = |index: &LookupIndex, q: &str, limit| -> Vec<Uuid> {
                    index.search(q, limit).into_iter().map(|(_, m)| m.id()).collect()
                };
                let fixed = ["xiao mi", "mi", "redmi", "9 x", "pro 9", "re", "x"];
                for query in queries.iter().map(String::as_str).chain(fixed) {
                    for limit in [1, 3, 20] {
                        prop_assert_eq!(answer(&layered, query, limit), answer(&whole, query, limit), "query {:?}", query);
                    }
                }
                for t in 0..5 {
                    let tac = Tac::parse(&format!("3520350{t}")).unwrap();
                    prop_assert_eq!(layered.by_tac(&tac).map(|m| m.id()), whole.by_tac(&tac).map(|m| m.id()));
                }
                for id in ids.iter().chain(&changed) {
                    prop_assert_eq!(layered.get(*id).map(|m| m.name()), whole.get(*id).map(|m| m.name()));
                }
            }
        }
    }
}
