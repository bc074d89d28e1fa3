//! The in-memory index behind the lookup: every model with the names a
//! person may type for it, its TACs, and what decides its clearance.
//! Built whole from the database and never mutated, so readers share it
//! without locks; answering a lookup is a few hash and range probes.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::clearance::{self, Clearance, DecisionInForce, OpenReview};
use crate::domain::firmware::FirmwareVersion;
use crate::domain::imei::Tac;
use crate::domain::registry::{ManufacturerRef, Model};
use crate::domain::text::{compact, words};

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
/// of a letter or two must not walk the whole register.
const PROBE_CAP: usize = 5_000;

#[derive(Debug, Clone)]
pub struct IndexedModel {
    pub id: Uuid,
    pub name: String,
    pub manufacturer: ManufacturerRef,
    /// Since when a status no decision explains holds: the model's last
    /// clearance change, or its registration.
    pub undecided_since: DateTime<Utc>,
    pub decisions: Vec<DecisionInForce>,
    pub review: Option<OpenReview>,
}

impl IndexedModel {
    pub fn clearance(&self, now: DateTime<Utc>, firmware: Option<&FirmwareVersion>) -> Clearance {
        clearance::derive(
            &self.decisions,
            self.review,
            now,
            self.undecided_since,
            firmware,
        )
    }
}

#[derive(Debug, Default)]
pub struct LookupIndex {
    generation: i64,
    models: Vec<IndexedModel>,
    by_id: HashMap<Uuid, usize>,
    by_tac: HashMap<String, usize>,
    /// Compact name → (model, how it matches).
    exact: HashMap<String, Vec<(usize, Score)>>,
    /// Compact names in order, for prefix probes.
    sorted_names: Vec<(String, usize)>,
    /// Word → models having it, in order, for word-prefix probes.
    words: BTreeMap<String, Vec<usize>>,
    /// Each model's words (its names' and its manufacturer's), by slot.
    model_words: Vec<Vec<String>>,
}

impl LookupIndex {
    /// Builds the index from every model (with its manufacturer's aliases)
    /// and what decides each model's clearance.
    pub fn build(
        generation: i64,
        models: Vec<Model>,
        maker_aliases: &HashMap<Uuid, Vec<String>>,
        mut decisions: HashMap<Uuid, Vec<DecisionInForce>>,
        reviews: &HashMap<Uuid, OpenReview>,
        last_changes: &HashMap<Uuid, DateTime<Utc>>,
    ) -> Self {
        let mut index = Self {
            generation,
            ..Self::default()
        };
        let mut maker_words: HashMap<Uuid, Vec<String>> = HashMap::new();
        for model in models {
            let slot = index.models.len();
            let maker = &model.manufacturer;
            let aliases = maker_aliases
                .get(&maker.id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let maker_names: Vec<&str> = std::iter::once(maker.name.as_str())
                .chain(aliases.iter().map(String::as_str))
                .collect();
            let own_names: Vec<&str> = std::iter::once(model.name.as_str())
                .chain(model.aliases.iter().map(String::as_str))
                .chain(model.model_numbers.iter().map(String::as_str))
                .collect();
            for name in &own_names {
                index.add_exact(compact(name), slot, Score::Exact);
                index.sorted_names.push((compact(name), slot));
                for maker_name in &maker_names {
                    index.add_exact(
                        format!("{}{}", compact(maker_name), compact(name)),
                        slot,
                        Score::QualifiedName,
                    );
                }
            }
            for maker_name in &maker_names {
                index.add_exact(compact(maker_name), slot, Score::Manufacturer);
            }
            let mut model_words: Vec<String> = own_names.iter().flat_map(|n| words(n)).collect();
            model_words.extend(
                maker_words
                    .entry(maker.id)
                    .or_insert_with(|| maker_names.iter().flat_map(|n| words(n)).collect())
                    .iter()
                    .cloned(),
            );
            model_words.sort();
            model_words.dedup();
            for word in &model_words {
                index.words.entry(word.clone()).or_default().push(slot);
            }
            index.model_words.push(model_words);
            for tac in &model.tacs {
                index.by_tac.insert(tac.clone(), slot);
            }
            index.by_id.insert(model.id, slot);
            index.models.push(IndexedModel {
                id: model.id,
                name: model.name,
                manufacturer: model.manufacturer,
                undecided_since: last_changes
                    .get(&model.id)
                    .copied()
                    .unwrap_or(model.created_at),
                decisions: decisions.remove(&model.id).unwrap_or_default(),
                review: reviews.get(&model.id).copied(),
            });
        }
        index.sorted_names.sort();
        index.sorted_names.dedup();
        index
    }

    fn add_exact(&mut self, key: String, slot: usize, score: Score) {
        if !key.is_empty() {
            self.exact.entry(key).or_default().push((slot, score));
        }
    }

    pub fn generation(&self) -> i64 {
        self.generation
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    pub fn get(&self, id: Uuid) -> Option<&IndexedModel> {
        self.by_id.get(&id).map(|&slot| &self.models[slot])
    }

    pub fn by_tac(&self, tac: &Tac) -> Option<&IndexedModel> {
        self.by_tac
            .get(tac.as_str())
            .map(|&slot| &self.models[slot])
    }

    /// The models a free-text query names, best match first, at most `limit`.
    pub fn search(&self, query: &str, limit: usize) -> Vec<&IndexedModel> {
        let key = compact(query);
        if key.is_empty() {
            return Vec::new();
        }
        let mut best: HashMap<usize, Score> = HashMap::new();
        let mut note = |slot: usize, score: Score| {
            let entry = best.entry(slot).or_insert(score);
            *entry = (*entry).max(score);
        };
        for &(slot, score) in self.exact.get(&key).into_iter().flatten() {
            note(slot, score);
        }
        let start = self
            .sorted_names
            .partition_point(|(name, _)| name.as_str() < key.as_str());
        for (_, slot) in self.sorted_names[start..]
            .iter()
            .take_while(|(name, _)| name.starts_with(&key))
            .take(PROBE_CAP)
        {
            note(*slot, Score::Prefix);
        }
        // Word matches rank last: when better ones fill the answer already,
        // they could not enter it.
        if best.len() < limit {
            for slot in self.word_matches(&words(query)) {
                best.entry(slot).or_insert(Score::Words);
            }
        }
        let mut ranked: Vec<(usize, Score)> = best.into_iter().collect();
        ranked.sort_by(|(a, score_a), (b, score_b)| {
            let (a, b) = (&self.models[*a], &self.models[*b]);
            score_b
                .cmp(score_a)
                .then(a.name.len().cmp(&b.name.len()))
                .then_with(|| a.name.cmp(&b.name))
                .then(a.id.cmp(&b.id))
        });
        ranked
            .into_iter()
            .take(limit)
            .map(|(slot, _)| &self.models[slot])
            .collect()
    }

    /// Models in which every query word starts some word of their names.
    /// The query word that starts the fewest entries picks the candidates;
    /// each candidate is then checked against its own words, so a common
    /// word ("phone") never has to be expanded.
    fn word_matches(&self, query_words: &[String]) -> Vec<usize> {
        let Some(lead) = query_words.iter().min_by_key(|w| self.word_reach(w)) else {
            return Vec::new();
        };
        let mut slots: Vec<usize> = self
            .words_starting(lead)
            .flat_map(|slots| slots.iter().copied())
            .take(PROBE_CAP)
            .filter(|&slot| {
                let own = &self.model_words[slot];
                query_words
                    .iter()
                    .all(|q| own.iter().any(|w| w.starts_with(q.as_str())))
            })
            .collect();
        slots.sort_unstable();
        slots.dedup();
        slots
    }

    fn words_starting<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Vec<usize>> + 'a {
        self.words
            .range(prefix.to_owned()..)
            .take_while(move |(w, _)| w.starts_with(prefix))
            .map(|(_, slots)| slots)
    }

    /// How many index entries a word starts, counted up to `PROBE_CAP`.
    fn word_reach(&self, word: &str) -> usize {
        let mut reach = 0;
        for slots in self.words_starting(word) {
            reach += slots.len();
            if reach >= PROBE_CAP {
                break;
            }
        }
        reach
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::registry::Category;

    fn model(
        maker: &ManufacturerRef,
        name: &str,
        aliases: &[&str],
        numbers: &[&str],
        tacs: &[&str],
    ) -> Model {
        let now = Utc::now();
        Model {
            id: Uuid::now_v7(),
            manufacturer: maker.clone(),
            name: name.into(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            model_numbers: numbers.iter().map(|s| s.to_string()).collect(),
            category: Category::Phone,
            tacs: tacs.iter().map(|s| s.to_string()).collect(),
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    fn sample() -> LookupIndex {
        let xiaomi = ManufacturerRef {
            id: Uuid::now_v7(),
            name: "Xiaomi".into(),
            country: "CN".into(),
        };
        let apple = ManufacturerRef {
            id: Uuid::now_v7(),
            name: "Apple".into(),
            country: "US".into(),
        };
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
        let aliases = HashMap::from([(xiaomi.id, vec!["小米".to_string()])]);
        LookupIndex::build(
            7,
            models,
            &aliases,
            HashMap::new(),
            &HashMap::new(),
            &HashMap::new(),
        )
    }

    fn names(hits: Vec<&IndexedModel>) -> Vec<&str> {
        hits.into_iter().map(|m| m.name.as_str()).collect()
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
                names(index.search(query, 10)).first(),
                Some(&"Redmi 1S"),
                "query {query:?}"
            );
        }
    }

    #[test]
    fn a_prefix_finds_every_model_it_starts() {
        let index = sample();
        assert_eq!(
            names(index.search("redmi", 10)),
            vec!["Redmi 1S", "Redmi Note"]
        );
    }

    #[test]
    fn a_manufacturer_name_or_alias_finds_its_models() {
        let index = sample();
        assert_eq!(index.search("xiaomi", 10).len(), 3);
        assert_eq!(index.search("小米", 10).len(), 3);
        assert_eq!(names(index.search("apple", 10)), vec!["iPhone 5s"]);
    }

    #[test]
    fn words_in_any_order_match() {
        let index = sample();
        assert_eq!(names(index.search("note redmi", 10)), vec!["Redmi Note"]);
        assert!(index.search("redmi galaxy", 10).is_empty());
    }

    #[test]
    fn tacs_and_ids_resolve() {
        let index = sample();
        let tac = Tac::parse("86452102").unwrap();
        let found = index.by_tac(&tac).unwrap();
        assert_eq!(found.name, "Redmi 1S");
        assert_eq!(index.get(found.id).unwrap().name, "Redmi 1S");
        assert!(index.by_tac(&Tac::parse("99999999").unwrap()).is_none());
        assert_eq!(index.generation(), 7);
    }

    #[test]
    fn limit_and_blank_queries_are_respected() {
        let index = sample();
        assert_eq!(index.search("xiaomi", 2).len(), 2);
        assert!(index.search(" - ", 10).is_empty());
    }
}
