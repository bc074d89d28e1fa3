//! One immutable piece of the lookup index: a set of models with every name
//! a person may type for them, their TACs and what decides their clearance.
//! The index is a large base piece, built once, and a small piece of the
//! models changed since (see `super::index`).
//!
//! Compact by construction: a model is a few fixed-size entries in arrays
//! ordered by id (its *slot* is its position there); compacted names and
//! words are kept once each, in finite-state transducers that share their
//! prefixes and suffixes; a manufacturer's name is kept once for all its
//! models; equal lists of decisions (a manufacturer-wide decision, repeated
//! for each model) are kept once.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use fst::raw::{Fst, Node, Output};
use fst::{Map, MapBuilder};
use uuid::Uuid;

use crate::domain::clearance::{self, Clearance, DecisionInForce, OpenReview};
use crate::domain::firmware::FirmwareVersion;
use crate::domain::registry::ManufacturerRef;
use crate::domain::text::{compact, words};

/// A manufacturer as the index needs it: its names compacted and split
/// into words once.
#[derive(Debug)]
pub struct MakerInput {
    pub id: Uuid,
    pub name: String,
    pub country: String,
    /// The compact forms of its name and aliases (empty ones dropped).
    keys: Vec<String>,
    /// The words of its name and aliases.
    words: Vec<String>,
}

impl MakerInput {
    pub fn new(id: Uuid, name: String, country: String, aliases: &[String]) -> Self {
        let names = || std::iter::once(name.as_str()).chain(aliases.iter().map(String::as_str));
        Self {
            keys: distinct(names().map(compact).filter(|k| !k.is_empty())),
            words: distinct(names().flat_map(words)),
            id,
            name,
            country,
        }
    }
}

/// A model as the index needs it, its names compacted and split into words
/// once (an overlay keeps these, and rebuilds itself from them).
#[derive(Debug)]
pub struct ModelInput {
    pub id: Uuid,
    pub maker: Uuid,
    pub name: String,
    /// The compact forms of its name, aliases and model numbers.
    keys: Vec<String>,
    /// The words of those names.
    words: Vec<String>,
    /// Its TACs as numbers (a TAC is eight digits).
    tacs: Vec<u32>,
    /// Since when a status no decision explains holds: the model's last
    /// clearance change, or its registration.
    since: DateTime<Utc>,
    decisions: Vec<DecisionInForce>,
    review: Option<OpenReview>,
}

/// What decides a model's clearance besides time: the decisions in force
/// naming it and its open review.
pub struct ClearanceInputs {
    pub since: DateTime<Utc>,
    pub decisions: Vec<DecisionInForce>,
    pub review: Option<OpenReview>,
}

impl ModelInput {
    pub fn new(
        id: Uuid,
        maker: Uuid,
        name: String,
        other_names: &[String],
        tacs: &[String],
        inputs: ClearanceInputs,
    ) -> Self {
        let names = || std::iter::once(name.as_str()).chain(other_names.iter().map(String::as_str));
        Self {
            keys: distinct(names().map(compact)),
            words: distinct(names().flat_map(words)),
            // Only eight-digit TACs are ever stored.
            tacs: tacs.iter().filter_map(|t| t.parse().ok()).collect(),
            id,
            maker,
            name,
            since: inputs.since,
            decisions: inputs.decisions,
            review: inputs.review,
        }
    }
}

fn distinct(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut items: Vec<String> = items.collect();
    items.sort_unstable();
    items.dedup();
    items
}

/// A manufacturer with the slots of its models, in order.
#[derive(Debug)]
pub struct Maker {
    pub id: Uuid,
    pub name: String,
    pub country: String,
    pub models: Vec<u32>,
}

impl Maker {
    pub fn reference(&self) -> ManufacturerRef {
        ManufacturerRef {
            id: self.id,
            name: self.name.clone(),
            country: self.country.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Extra {
    decisions: Arc<[DecisionInForce]>,
    review: Option<OpenReview>,
}

/// A name's value in its transducer: one slot, or (with this bit) the
/// position in `Names::shared` of a count followed by that many slots.
const SHARED_KEY: u64 = 1 << 32;

/// One entry per model, by slot (and TACs), as both the part and its
/// builder hold them.
#[derive(Debug)]
struct Entries {
    ids: Vec<Uuid>,
    maker_of: Vec<u32>,
    since: Vec<DateTime<Utc>>,
    /// Every model's display name, one after the other.
    name_text: String,
    name_starts: Vec<u32>,
    /// `(tac, slot)`; by TAC once built.
    tacs: Vec<(u32, u32)>,
}

#[derive(Debug)]
pub struct Part {
    entries: Entries,
    names: Names,
    words: Words,
    /// `(slot, decisions and review)` for the models that have either.
    extras: Vec<(u32, Extra)>,
    makers: Vec<Maker>,
    /// Compact manufacturer name or alias → makers. A search asks it once
    /// per split of the query ("manufacturer model"), so its hasher is a
    /// fast one.
    maker_keys: HashMap<String, Vec<u32>, hashbrown::DefaultHashBuilder>,
}

/// Compact names: each once, with the slots of the models it names.
#[derive(Debug)]
struct Names {
    /// Compact name → slot, or where its slots are in `shared`.
    map: Map<Vec<u8>>,
    shared: Vec<u32>,
}

/// Words: each once, numbered in word order (so the words that a prefix
/// starts are a range of numbers), with the slots having them.
#[derive(Debug)]
struct Words {
    map: Map<Vec<u8>>,
    /// The slots having each word (their own names' or their maker's), in
    /// slot order.
    posting_starts: Vec<u32>,
    postings: Vec<u32>,
    /// Each slot's word numbers, ascending.
    word_starts: Vec<u32>,
    model_words: Vec<u32>,
}

impl Entries {
    /// Gives back what growing the arrays reserved beyond their length.
    fn shrink_to_fit(&mut self) {
        self.ids.shrink_to_fit();
        self.maker_of.shrink_to_fit();
        self.since.shrink_to_fit();
        self.name_text.shrink_to_fit();
        self.name_starts.shrink_to_fit();
        self.tacs.shrink_to_fit();
    }
}

impl Default for Part {
    fn default() -> Self {
        PartBuilder::new(Vec::new()).finish()
    }
}

impl Part {
    /// Builds a part from models in id order.
    pub fn build<'a>(
        makers: Vec<Arc<MakerInput>>,
        models: impl IntoIterator<Item = &'a ModelInput>,
    ) -> Self {
        let mut builder = PartBuilder::new(makers);
        for model in models {
            builder.push(model);
        }
        builder.finish()
    }

    pub fn len(&self) -> usize {
        self.entries.ids.len()
    }

    /// About how many bytes the part holds (its arrays and maps; not the
    /// decisions, which are few and shared).
    pub fn bytes(&self) -> usize {
        fn of<T>(items: &Vec<T>) -> usize {
            items.capacity() * size_of::<T>()
        }
        let Entries {
            ids,
            maker_of,
            since,
            name_text,
            name_starts,
            tacs,
        } = &self.entries;
        let words = &self.words;
        of(ids)
            + of(maker_of)
            + of(since)
            + name_text.capacity()
            + of(name_starts)
            + of(tacs)
            + self.names.map.as_fst().as_bytes().len()
            + of(&self.names.shared)
            + words.map.as_fst().as_bytes().len()
            + of(&words.posting_starts)
            + of(&words.postings)
            + of(&words.word_starts)
            + of(&words.model_words)
            + of(&self.extras)
            + self.makers.iter().map(|m| of(&m.models)).sum::<usize>()
    }

    pub fn id(&self, slot: u32) -> Uuid {
        self.entries.ids[slot as usize]
    }

    pub fn slot_of(&self, id: Uuid) -> Option<u32> {
        self.entries.ids.binary_search(&id).ok().map(|s| s as u32)
    }

    pub fn name(&self, slot: u32) -> &str {
        let slot = slot as usize;
        &self.entries.name_text
            [self.entries.name_starts[slot] as usize..self.entries.name_starts[slot + 1] as usize]
    }

    pub fn maker(&self, slot: u32) -> &Maker {
        &self.makers[self.entries.maker_of[slot as usize] as usize]
    }

    pub fn by_tac(&self, tac: u32) -> Option<u32> {
        self.entries
            .tacs
            .binary_search_by_key(&tac, |&(t, _)| t)
            .ok()
            .map(|at| self.entries.tacs[at].1)
    }

    pub fn clearance(
        &self,
        slot: u32,
        now: DateTime<Utc>,
        firmware: Option<&FirmwareVersion>,
    ) -> Clearance {
        let extra = self
            .extras
            .binary_search_by_key(&slot, |(s, _)| *s)
            .ok()
            .map(|at| &self.extras[at].1);
        clearance::derive(
            extra.map(|e| &*e.decisions).unwrap_or_default(),
            extra.and_then(|e| e.review),
            now,
            self.entries.since[slot as usize],
            firmware,
        )
    }

    /// The slots whose name, alias or model number compacts to `key`.
    pub fn exact(&self, key: &str) -> impl Iterator<Item = u32> + '_ {
        self.key_value_slots(self.names.map.get(key))
    }

    fn key_value_slots(&self, value: Option<u64>) -> impl Iterator<Item = u32> + '_ {
        let (one, shared): (Option<u32>, &[u32]) = match value {
            None => (None, &[]),
            Some(v) if v & SHARED_KEY == 0 => (Some(v as u32), &[]),
            Some(v) => {
                let at = (v & !SHARED_KEY) as usize;
                let count = self.names.shared[at] as usize;
                (None, &self.names.shared[at + 1..at + 1 + count])
            }
        };
        one.into_iter().chain(shared.iter().copied())
    }

    /// Calls `visit` with each compact name that `prefix` starts, in order,
    /// and its slots, until it says stop.
    pub fn names_starting(
        &self,
        prefix: &str,
        mut visit: impl FnMut(&[u8], &mut dyn Iterator<Item = u32>) -> bool,
    ) {
        keys_below(&self.names.map, prefix.as_bytes(), |key, value| {
            visit(key, &mut self.key_value_slots(Some(value)))
        });
    }

    /// The numbers of the words that `prefix` starts: a range.
    pub fn word_range(&self, prefix: &str) -> (u32, u32) {
        // Words are numbered in order, so a bound's number is that of the
        // first word at or after it.
        let (low, high) = prefix_values(&self.words.map, prefix.as_bytes());
        let number = |value: Option<u64>| value.map_or(self.word_count(), |n| n as u32);
        (number(low), number(high))
    }

    /// Where `word` stands among this part's words: the number of the
    /// first word at or after it, and whether that word is `word`.
    pub fn word_position(&self, word: &[u8]) -> (u32, bool) {
        match first_at_least(&self.words.map, word) {
            None => (self.word_count(), false),
            Some((at, same)) => (at as u32, same),
        }
    }

    fn word_count(&self) -> u32 {
        self.words.posting_starts.len() as u32 - 1
    }

    /// Calls `visit` with each word that `prefix` starts, in order, and its
    /// number, until it says stop.
    pub fn words_starting(&self, prefix: &str, mut visit: impl FnMut(&[u8], u32) -> bool) {
        keys_below(&self.words.map, prefix.as_bytes(), |word, number| {
            visit(word, number as u32)
        });
    }

    /// The slots having word `number`, in slot order.
    pub fn postings(&self, number: u32) -> &[u32] {
        let (n, words) = (number as usize, &self.words);
        &words.postings[words.posting_starts[n] as usize..words.posting_starts[n + 1] as usize]
    }

    /// The word numbers of a slot, ascending.
    pub fn words_of(&self, slot: u32) -> &[u32] {
        let (s, words) = (slot as usize, &self.words);
        &words.model_words[words.word_starts[s] as usize..words.word_starts[s + 1] as usize]
    }

    /// Whether one of the slot's words has a number in `range`.
    pub fn has_word_in(&self, slot: u32, (low, high): (u32, u32)) -> bool {
        let own = self.words_of(slot);
        own.get(own.partition_point(|&w| w < low))
            .is_some_and(|&w| w < high)
    }

    /// The makers whose name or an alias compacts to `key`.
    pub fn makers_named(&self, key: &str) -> &[u32] {
        self.maker_keys
            .get(key)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn maker_models(&self, maker: u32) -> &[u32] {
        &self.makers[maker as usize].models
    }

    pub fn maker_index_of(&self, slot: u32) -> u32 {
        self.entries.maker_of[slot as usize]
    }
}

/// The value of the first key of `map` at or after `bound`, found by one
/// walk down the transducer: a stream would do the same, but allocates its
/// own stack first.
fn first_value_at_least(map: &Map<Vec<u8>>, bound: &[u8]) -> Option<u64> {
    first_at_least(map, bound).map(|(value, _)| value)
}

/// [`first_value_at_least`], and whether that first key is `bound` itself
/// (the same walk tells).
fn first_at_least(map: &Map<Vec<u8>>, bound: &[u8]) -> Option<(u64, bool)> {
    let fst = map.as_fst();
    match walk(fst, bound) {
        Err(past) => past.map(|value| (value, false)),
        // The bound itself is on the path: it, or the least key it starts.
        Ok((node, output, _)) if node.is_final() || !node.is_empty() => {
            Some((least_below(fst, node, output), node.is_final()))
        }
        Ok((_, _, next_larger)) => next_larger.map(|step| (least_past(fst, step), false)),
    }
}

/// The values of the first key of `map` at or after `prefix` and of the
/// first key after all that `prefix` starts, in one walk: the two bounds'
/// paths part only at `prefix`'s last byte.
fn prefix_values(map: &Map<Vec<u8>>, prefix: &[u8]) -> (Option<u64>, Option<u64>) {
    let Some((&last, path)) = prefix.split_last().filter(|(last, _)| **last < u8::MAX) else {
        let past = successor(prefix).and_then(|bound| first_value_at_least(map, &bound));
        return (first_value_at_least(map, prefix), past);
    };
    let fst = map.as_fst();
    let (node, output, next_larger) = match walk(fst, path) {
        Ok(reached) => reached,
        // No key starts with `path`, so none with `prefix`.
        Err(past) => return (past, past),
    };
    let with_last = node.find_input(last);
    let past = first_larger(&node, last, with_last)
        .map(|at| (node, at, output))
        .or(next_larger)
        .map(|step| least_past(fst, step));
    let first = with_last.map_or(past, |at| Some(least_past(fst, (node, at, output))));
    (first, past)
}

/// Calls `visit` with each key of `map` that `prefix` starts, in order, and
/// its value, until it says stop: a depth-first walk below the prefix's
/// node (a range stream seeks the same node, but sets up far more first).
fn keys_below(map: &Map<Vec<u8>>, prefix: &[u8], mut visit: impl FnMut(&[u8], u64) -> bool) {
    let fst = map.as_fst();
    let Ok((node, output, _)) = walk(fst, prefix) else {
        return;
    };
    let mut key = prefix.to_vec();
    if node.is_final() && !visit(&key, output.cat(node.final_output()).value()) {
        return;
    }
    // Each node on the way down, the position of the next transition to
    // take from it, and the output up to it.
    let mut path: Vec<(Node<'_>, usize, Output)> = Vec::with_capacity(16);
    path.push((node, 0, output));
    while let Some((node, next, output)) = path.last_mut() {
        if *next == node.len() {
            path.pop();
            key.pop();
            continue;
        }
        let step = node.transition(*next);
        *next += 1;
        let (child, output) = (fst.node(step.addr), output.cat(step.out));
        key.push(step.inp);
        if child.is_final() && !visit(&key, output.cat(child.final_output()).value()) {
            return;
        }
        path.push((child, 0, output));
    }
}

/// The position of `node`'s first transition on a byte larger than `byte`,
/// given the position of `byte`'s own (transitions are in byte order).
fn first_larger(node: &Node<'_>, byte: u8, own: Option<usize>) -> Option<usize> {
    match own {
        Some(at) => (at + 1 < node.len()).then_some(at + 1),
        None => (0..node.len()).find(|&at| node.transition(at).inp > byte),
    }
}

/// A step off a path: a node, the position of one of its transitions,
/// and the output up to the node.
type Step<'f> = (Node<'f>, usize, Output);

/// Walks `path` down `fst`: the node it reaches, the output so far, and
/// the least step off the path to a larger key (at the deepest node where
/// a larger byte leaves it; transitions are in byte order). When the path
/// leaves the transducer, `Err` with the value of the first key past it.
fn walk<'f>(
    fst: &'f Fst<Vec<u8>>,
    path: &[u8],
) -> Result<(Node<'f>, Output, Option<Step<'f>>), Option<u64>> {
    let mut node = fst.root();
    let mut output = Output::zero();
    let mut next_larger: Option<Step<'f>> = None;
    for &byte in path {
        let own = node.find_input(byte);
        if let Some(larger) = first_larger(&node, byte, own) {
            next_larger = Some((node, larger, output));
        }
        let Some(at) = own else {
            return Err(next_larger.map(|step| least_past(fst, step)));
        };
        let step = node.transition(at);
        output = output.cat(step.out);
        node = fst.node(step.addr);
    }
    Ok((node, output, next_larger))
}

/// The value of the least key below the transition `step` leaves by.
fn least_past<'f>(fst: &'f Fst<Vec<u8>>, (node, at, output): Step<'f>) -> u64 {
    let step = node.transition(at);
    least_below(fst, fst.node(step.addr), output.cat(step.out))
}

/// The value of the least key at or below `node`, reached with `output`.
fn least_below<'f>(fst: &'f Fst<Vec<u8>>, mut node: Node<'f>, mut output: Output) -> u64 {
    while !node.is_final() {
        let first = node.transition(0);
        output = output.cat(first.out);
        node = fst.node(first.addr);
    }
    output.cat(node.final_output()).value()
}

/// The smallest byte string greater than every string `prefix` starts.
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut bound = prefix.to_vec();
    while let Some(last) = bound.pop() {
        if last < u8::MAX {
            bound.push(last + 1);
            return Some(bound);
        }
    }
    None
}

/// Words seen while building, each stored once: numbered in order of first
/// sight, renumbered in word order at the end.
struct WordTable {
    text: String,
    ends: Vec<u32>,
    table: hashbrown::HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl WordTable {
    fn new() -> Self {
        Self {
            text: String::new(),
            ends: Vec::new(),
            table: hashbrown::HashTable::new(),
            hasher: hashbrown::DefaultHashBuilder::default(),
        }
    }

    fn word(&self, number: u32) -> &str {
        let n = number as usize;
        let start = if n == 0 { 0 } else { self.ends[n - 1] as usize };
        &self.text[start..self.ends[n] as usize]
    }

    fn intern(&mut self, word: &str) -> u32 {
        let hash = self.hasher.hash_one(word);
        let Self {
            text,
            ends,
            table,
            hasher,
        } = self;
        let text_of = |n: u32| {
            let n = n as usize;
            let start = if n == 0 { 0 } else { ends[n - 1] as usize };
            &text[start..ends[n] as usize]
        };
        if let Some(&found) = table.find(hash, |&n| text_of(n) == word) {
            return found;
        }
        let number = ends.len() as u32;
        text.push_str(word);
        ends.push(text.len() as u32);
        let hash_of = |n: &u32| {
            let n = *n as usize;
            let start = if n == 0 { 0 } else { ends[n - 1] as usize };
            hasher.hash_one(&text[start..ends[n] as usize])
        };
        table.insert_unique(hash, number, hash_of);
        number
    }

    fn len(&self) -> usize {
        self.ends.len()
    }
}

/// Keeps one copy of each distinct list of decisions, found by its
/// advisories and dates.
#[derive(Default)]
struct DecisionLists(HashMap<Vec<(Uuid, DateTime<Utc>)>, Vec<SharedDecisions>>);

type SharedDecisions = Arc<[DecisionInForce]>;

impl DecisionLists {
    fn share(&mut self, decisions: &[DecisionInForce]) -> Arc<[DecisionInForce]> {
        let key = decisions
            .iter()
            .map(|d| (d.advisory_id, d.effective_at))
            .collect();
        let same = self.0.entry(key).or_default();
        if let Some(found) = same.iter().find(|list| ***list == *decisions) {
            return found.clone();
        }
        let list: Arc<[DecisionInForce]> = decisions.into();
        same.push(list.clone());
        list
    }
}

/// Gathers models (in id order) into the arrays of a [`Part`].
pub struct PartBuilder {
    entries: Entries,
    /// `(compact name, slot)`, sorted at the end.
    key_text: String,
    key_refs: Vec<(u32, u32, u32)>,
    words: WordTable,
    /// Each slot's own words, as numbers of first sight.
    word_starts: Vec<u32>,
    model_words: Vec<u32>,
    extras: Vec<(u32, Extra)>,
    decision_lists: DecisionLists,
    makers: Vec<Maker>,
    maker_slot: HashMap<Uuid, u32>,
    maker_inputs: Vec<Arc<MakerInput>>,
    /// Each maker's words, as numbers of first sight.
    maker_words: Vec<Vec<u32>>,
}

impl PartBuilder {
    /// A builder for models of these manufacturers.
    pub fn new(makers: Vec<Arc<MakerInput>>) -> Self {
        let mut builder = Self {
            entries: Entries {
                ids: Vec::new(),
                maker_of: Vec::new(),
                since: Vec::new(),
                name_text: String::new(),
                name_starts: vec![0],
                tacs: Vec::new(),
            },
            key_text: String::new(),
            key_refs: Vec::new(),
            words: WordTable::new(),
            word_starts: vec![0],
            model_words: Vec::new(),
            extras: Vec::new(),
            decision_lists: DecisionLists::default(),
            makers: Vec::with_capacity(makers.len()),
            maker_slot: HashMap::with_capacity(makers.len()),
            maker_inputs: Vec::with_capacity(makers.len()),
            maker_words: Vec::with_capacity(makers.len()),
        };
        for maker in makers {
            if builder.maker_slot.contains_key(&maker.id) {
                continue;
            }
            let words = maker
                .words
                .iter()
                .map(|w| builder.words.intern(w))
                .collect();
            builder
                .maker_slot
                .insert(maker.id, builder.makers.len() as u32);
            builder.makers.push(Maker {
                id: maker.id,
                name: maker.name.clone(),
                country: maker.country.clone(),
                models: Vec::new(),
            });
            builder.maker_words.push(words);
            builder.maker_inputs.push(maker);
        }
        builder
    }

    /// Adds a model, after every model of a smaller id. A model of a maker
    /// the builder was not given is left out (the database never has one).
    pub fn push(&mut self, model: &ModelInput) {
        debug_assert!(self.entries.ids.last().is_none_or(|last| *last < model.id));
        let Some(&maker) = self.maker_slot.get(&model.maker) else {
            tracing::warn!(model = %model.id, "a model of an unknown manufacturer was not indexed");
            return;
        };
        let slot = self.entries.ids.len() as u32;
        self.entries.ids.push(model.id);
        self.entries.maker_of.push(maker);
        self.makers[maker as usize].models.push(slot);
        self.entries.since.push(model.since);
        self.entries.name_text.push_str(&model.name);
        self.entries
            .name_starts
            .push(self.entries.name_text.len() as u32);
        self.entries
            .tacs
            .extend(model.tacs.iter().map(|&tac| (tac, slot)));
        for key in &model.keys {
            let start = self.key_text.len() as u32;
            self.key_text.push_str(key);
            self.key_refs
                .push((start, self.key_text.len() as u32, slot));
        }
        for word in &model.words {
            let number = self.words.intern(word);
            self.model_words.push(number);
        }
        self.word_starts.push(self.model_words.len() as u32);
        if !model.decisions.is_empty() || model.review.is_some() {
            self.extras.push((
                slot,
                Extra {
                    decisions: self.decision_lists.share(&model.decisions),
                    review: model.review,
                },
            ));
        }
    }

    pub fn finish(self) -> Part {
        let Self {
            mut entries,
            key_text,
            key_refs,
            words,
            word_starts,
            model_words,
            extras,
            decision_lists: _,
            makers,
            maker_slot: _,
            maker_inputs,
            maker_words,
        } = self;
        entries.tacs.sort_unstable();
        entries.shrink_to_fit();
        // The two halves are independent: on a large part, use both cores.
        let own = OwnWords {
            table: words,
            starts: word_starts,
            numbers: model_words,
        };
        let large = entries.ids.len() >= PARALLEL_FROM;
        let maker_of = &entries.maker_of;
        let (names, words) = std::thread::scope(|scope| {
            let words = || Words::build(own, maker_of, maker_words);
            if large {
                let words = scope.spawn(words);
                let names = Names::build(key_text, key_refs);
                (
                    names,
                    words.join().expect("building the words does not panic"),
                )
            } else {
                (Names::build(key_text, key_refs), words())
            }
        });
        let mut maker_keys: HashMap<String, Vec<u32>, _> = HashMap::default();
        for (index, maker) in maker_inputs.iter().enumerate() {
            for key in &maker.keys {
                maker_keys
                    .entry(key.clone())
                    .or_default()
                    .push(index as u32);
            }
        }
        Part {
            entries,
            names,
            words,
            extras,
            makers,
            maker_keys,
        }
    }
}

/// Parts of at least this many models build their names and words on two
/// threads.
const PARALLEL_FROM: usize = 50_000;

impl Names {
    /// From `(start, end, slot)` references into `text`.
    fn build(text: String, mut refs: Vec<(u32, u32, u32)>) -> Self {
        let key_of =
            |&(start, end, _): &(u32, u32, u32)| &text.as_bytes()[start as usize..end as usize];
        refs.sort_unstable_by(|a, b| key_of(a).cmp(key_of(b)).then(a.2.cmp(&b.2)));
        let mut map = MapBuilder::memory();
        let mut shared = Vec::new();
        for group in refs.chunk_by(|a, b| key_of(a) == key_of(b)) {
            let mut slots: Vec<u32> = group.iter().map(|r| r.2).collect();
            slots.dedup();
            let value = match slots.as_slice() {
                [one] => u64::from(*one),
                many => {
                    let at = shared.len() as u64;
                    shared.push(many.len() as u32);
                    shared.extend_from_slice(many);
                    SHARED_KEY | at
                }
            };
            map.insert(key_of(&group[0]), value)
                .expect("keys are inserted in order, once each");
        }
        Self {
            map: map.into_map(),
            shared,
        }
    }
}

/// Each slot's own words, as numbers of first sight.
struct OwnWords {
    table: WordTable,
    starts: Vec<u32>,
    numbers: Vec<u32>,
}

impl Words {
    fn build(own: OwnWords, maker_of: &[u32], maker_words: Vec<Vec<u32>>) -> Self {
        let OwnWords {
            table,
            starts: own_starts,
            numbers: own_numbers,
        } = own;
        // Renumbered in word order, so that a prefix is a range.
        let mut order: Vec<u32> = (0..table.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| table.word(a).cmp(table.word(b)));
        let mut rank = vec![0_u32; table.len()];
        let mut map = MapBuilder::memory();
        for (position, &number) in order.iter().enumerate() {
            rank[number as usize] = position as u32;
            map.insert(table.word(number), position as u64)
                .expect("words are inserted in order, once each");
        }
        drop(order);
        drop(table);
        let maker_words: Vec<Vec<u32>> = maker_words
            .into_iter()
            .map(|w| w.into_iter().map(|n| rank[n as usize]).collect())
            .collect();
        let slots = maker_of.len();
        let mut word_starts = Vec::with_capacity(slots + 1);
        word_starts.push(0);
        let mut model_words = Vec::with_capacity(own_numbers.len() + slots);
        let mut counts = vec![0_u32; rank.len() + 1];
        for slot in 0..slots {
            let start = model_words.len();
            let own = &own_numbers[own_starts[slot] as usize..own_starts[slot + 1] as usize];
            model_words.extend(own.iter().map(|&n| rank[n as usize]));
            model_words.extend_from_slice(&maker_words[maker_of[slot] as usize]);
            let mine = &mut model_words[start..];
            mine.sort_unstable();
            let distinct = dedup_in_place(mine);
            model_words.truncate(start + distinct);
            for &w in &model_words[start..] {
                counts[w as usize + 1] += 1;
            }
            word_starts.push(model_words.len() as u32);
        }
        drop(own_numbers);
        // Postings by counting: slots visited in order stay in order.
        for w in 1..counts.len() {
            counts[w] += counts[w - 1];
        }
        let posting_starts = counts.clone();
        let mut next = counts;
        let mut postings = vec![0_u32; model_words.len()];
        for slot in 0..slots {
            for &w in &model_words[word_starts[slot] as usize..word_starts[slot + 1] as usize] {
                postings[next[w as usize] as usize] = slot as u32;
                next[w as usize] += 1;
            }
        }
        model_words.shrink_to_fit();
        Self {
            map: map.into_map(),
            posting_starts,
            postings,
            word_starts,
            model_words,
        }
    }
}

/// Removes repeats from a sorted slice, keeping the distinct values at its
/// front; returns how many there are.
fn dedup_in_place(sorted: &mut [u32]) -> usize {
    let mut kept = 0;
    for i in 0..sorted.len() {
        if kept == 0 || sorted[kept - 1] != sorted[i] {
            sorted[kept] = sorted[i];
            kept += 1;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use fst::{IntoStreamer, Streamer};
    use proptest::prelude::*;

    use super::*;

    /// What [`first_value_at_least`] must find: the first key a stream
    /// from `bound` on yields.
    fn streamed(map: &Map<Vec<u8>>, bound: &[u8]) -> Option<u64> {
        map.range().ge(bound).into_stream().next().map(|(_, v)| v)
    }

    /// What [`keys_below`] must yield: the keys a stream from `prefix` on
    /// yields while `prefix` starts them.
    fn streamed_below(map: &Map<Vec<u8>>, prefix: &[u8]) -> Vec<(Vec<u8>, u64)> {
        let mut stream = map.range().ge(prefix).into_stream();
        let mut keys = Vec::new();
        while let Some((key, value)) = stream.next() {
            if !key.starts_with(prefix) {
                break;
            }
            keys.push((key.to_vec(), value));
        }
        keys
    }

    fn walked_below(map: &Map<Vec<u8>>, prefix: &[u8], most: usize) -> Vec<(Vec<u8>, u64)> {
        let mut keys = Vec::new();
        keys_below(map, prefix, |key, value| {
            keys.push((key.to_vec(), value));
            keys.len() < most
        });
        keys
    }

    /// Keys of a few bytes from a small alphabet, so that keys share
    /// prefixes, nodes have several transitions and bounds fall between.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop::sample::select(vec![0u8, b'a', b'b', b'c', 0xff]),
            0..5,
        )
    }

    proptest! {
        #[test]
        fn the_walk_finds_what_a_stream_finds(
            keys in prop::collection::btree_set(key(), 0..40),
            bounds in prop::collection::vec(key(), 1..20),
        ) {
            let keys: BTreeSet<Vec<u8>> = keys;
            let map = Map::from_iter(keys.iter().enumerate().map(|(n, k)| (k.clone(), n as u64)))
                .unwrap();
            for bound in bounds.iter().chain(&keys) {
                prop_assert_eq!(first_value_at_least(&map, bound), streamed(&map, bound));
                let found = first_at_least(&map, bound).map(|(_, same)| same);
                prop_assert_eq!(found, streamed(&map, bound).map(|_| map.contains_key(bound)));
                let past = successor(bound).and_then(|after| streamed(&map, &after));
                prop_assert_eq!(prefix_values(&map, bound), (streamed(&map, bound), past));
                let below = streamed_below(&map, bound);
                prop_assert_eq!(&walked_below(&map, bound, usize::MAX), &below);
                // Told to stop after the first key, it yields no other.
                prop_assert_eq!(walked_below(&map, bound, 1), below.into_iter().take(1).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn a_prefix_names_the_range_of_the_words_it_starts() {
        let words = ["note", "noted", "notepad", "phone", "pro"];
        let map = Map::from_iter(words.iter().enumerate().map(|(n, w)| (*w, n as u64))).unwrap();
        let part = Part {
            words: Words {
                map,
                posting_starts: vec![0; words.len() + 1],
                postings: Vec::new(),
                word_starts: Vec::new(),
                model_words: Vec::new(),
            },
            ..Part::default()
        };
        assert_eq!(part.word_range("note"), (0, 3));
        assert_eq!(part.word_range("p"), (3, 5));
        assert_eq!(part.word_range("q"), (5, 5));
        assert_eq!(part.word_position(b"noted"), (1, true));
        assert_eq!(part.word_position(b"notes"), (3, false));
        assert_eq!(part.word_position(b"zz"), (5, false));
    }
}
