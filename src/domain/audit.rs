//! The audit chain's rule: each row's hash covers the previous row's hash
//! and the row itself, so altering, removing or reordering any row breaks
//! every hash after it.
//!
//! The hashes are keyed (HMAC-SHA256) with a secret kept outside the
//! database, so someone who can write the database cannot recompute them
//! after forging a row. A signed head (how many rows there are, the last
//! one's hash) is updated with every append, so removing rows from the end
//! shows too. Rows written before keyed hashing (below the head's
//! `keyed_from`) keep their plain SHA-256 hashes: they cannot be re-keyed
//! without trusting them, and they stay covered by the first keyed row's
//! `prev_hash` and by the signed head.

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// The key of the chain's hashes and of its head (`CLEARANCE_AUDIT_KEY`).
#[derive(Clone)]
pub struct AuditKey(std::sync::Arc<[u8]>);

impl AuditKey {
    pub fn new(secret: &[u8]) -> Self {
        Self(secret.into())
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes a key of any length")
    }

    /// `hex(HMAC-SHA256(key, parts…))`.
    fn sign(&self, parts: &[&[u8]]) -> String {
        let mut mac = self.mac();
        for part in parts {
            mac.update(part);
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `signature` is [`Self::sign`] of `parts`, compared in
    /// constant time.
    fn signed(&self, parts: &[&[u8]], signature: &str) -> bool {
        let Ok(signature) = hex::decode(signature) else {
            return false;
        };
        let mut mac = self.mac();
        for part in parts {
            mac.update(part);
        }
        mac.verify_slice(&signature).is_ok()
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(…)")
    }
}

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did something: the token's subject, and the name it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub sub: String,
    pub name: String,
}

impl Actor {
    /// Changes made by the service itself (the demo loader, scheduled work).
    pub fn system() -> Self {
        Self {
            sub: "system".into(),
            name: "Clearance".into(),
        }
    }

    /// Anyone, without an account: a subscriber following a link or
    /// subscribing. Such rows name the subscription, never the address.
    pub fn public() -> Self {
        Self {
            sub: "public".into(),
            name: "public".into(),
        }
    }
}

/// One audit row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    /// JSON text, hashed exactly as stored.
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRow {
    /// The JSON array of the row's other fields in a fixed order
    /// (unambiguous, unlike joining them).
    fn canonical(&self) -> String {
        serde_json::json!([
            self.seq,
            self.id.to_string(),
            self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            self.actor,
            self.action,
            self.entity,
            self.entity_id,
            self.payload,
        ])
        .to_string()
    }

    /// `hex(HMAC-SHA256(key, prev_hash ‖ canonical row))`: the hash of
    /// every row from the head's `keyed_from` on.
    pub fn keyed_hash(&self, key: &AuditKey) -> String {
        key.sign(&[self.prev_hash.as_bytes(), self.canonical().as_bytes()])
    }

    /// `hex(SHA-256(prev_hash ‖ canonical row))`: the hash of rows written
    /// before the chain was keyed.
    pub fn plain_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        hasher.update(self.canonical().as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// The chain's signed head: how many rows the chain has (its last `seq`),
/// the last row's hash, and the first `seq` whose hash is keyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
    pub keyed_from: i64,
    /// `hex(HMAC-SHA256(key, …))` of the three above; empty on a head the
    /// upgrade created and the service has not signed yet.
    pub signature: String,
}

impl ChainHead {
    /// The head of a chain whose last row is `seq` with `hash`, signed.
    pub fn signed(seq: i64, hash: String, keyed_from: i64, key: &AuditKey) -> Self {
        let mut head = Self {
            seq,
            hash,
            keyed_from,
            signature: String::new(),
        };
        head.signature = key.sign(&[head.signed_text().as_bytes()]);
        head
    }

    fn signed_text(&self) -> String {
        serde_json::json!(["clearance audit head", self.seq, self.hash, self.keyed_from])
            .to_string()
    }

    /// Whether the service signed this head with `key`.
    pub fn is_signed_by(&self, key: &AuditKey) -> bool {
        key.signed(&[self.signed_text().as_bytes()], &self.signature)
    }
}

/// Where the chain first fails, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The row's `seq`, or the first missing one.
    pub seq: i64,
    /// The row's id; `None` when the row is missing.
    pub id: Option<Uuid>,
    pub reason: String,
}

/// Walks rows in order against the head read before them, remembering
/// where the chain first breaks; [`ChainWalk::finish`] then compares the end
/// with the head.
#[derive(Debug, Clone)]
pub struct ChainWalk {
    key: AuditKey,
    head: Option<ChainHead>,
    last_seq: i64,
    last_hash: String,
    pub rows: u64,
    pub first_broken: Option<Broken>,
}

impl ChainWalk {
    /// A walk against `head` (`None` when the head row is gone). A head
    /// whose signature does not hold cannot say which rows are keyed: then
    /// every row must be.
    pub fn new(key: AuditKey, head: Option<ChainHead>) -> Self {
        Self {
            key,
            head,
            last_seq: 0,
            last_hash: GENESIS.to_owned(),
            rows: 0,
            first_broken: None,
        }
    }

    fn keyed_from(&self) -> i64 {
        match &self.head {
            Some(head) if head.is_signed_by(&self.key) => head.keyed_from,
            _ => 1,
        }
    }

    fn broken(&mut self, seq: i64, id: Option<Uuid>, reason: String) {
        self.first_broken.get_or_insert(Broken { seq, id, reason });
    }

    /// Checks the next row: it must follow the previous one (no gap), point
    /// at its hash, and hash to what it says.
    pub fn step(&mut self, row: &AuditRow) {
        self.rows += 1;
        let keyed = row.seq >= self.keyed_from();
        let expected = if keyed {
            row.keyed_hash(&self.key)
        } else {
            row.plain_hash()
        };
        let reason = if row.seq != self.last_seq + 1 {
            Some(format!(
                "it follows seq {}: the rows between are missing",
                self.last_seq
            ))
        } else if row.prev_hash != self.last_hash {
            Some("its prev_hash is not the hash of the row before".to_owned())
        } else if row.hash != expected {
            Some(if keyed {
                "its hash is not the keyed hash of its content: the row was changed".to_owned()
            } else {
                "its hash is not the SHA-256 of its content: the row was changed".to_owned()
            })
        } else if self
            .head
            .as_ref()
            .is_some_and(|h| h.seq == row.seq && h.hash != row.hash)
        {
            Some("its hash is not the one the signed head records".to_owned())
        } else {
            None
        };
        if let Some(reason) = reason {
            self.broken(row.seq, Some(row.id), reason);
        }
        self.last_seq = row.seq;
        self.last_hash = row.hash.clone();
    }

    /// Compares the end of the walk with the head: the head must be there,
    /// signed with the key, and no row it counts may be missing. (Rows
    /// after it were appended while the walk ran.)
    pub fn finish(mut self) -> Self {
        let missing = match &self.head {
            None => Some((self.last_seq + 1, "the signed head of the chain is missing".to_owned())),
            Some(head) if !head.is_signed_by(&self.key) => Some((
                head.seq,
                "the chain's head does not carry the audit key's signature: it was changed outside the service"
                    .to_owned(),
            )),
            Some(head) if head.seq > self.last_seq => Some((
                self.last_seq + 1,
                format!(
                    "the signed head counts {} rows but the log ends at seq {}: rows were removed",
                    head.seq, self.last_seq
                ),
            )),
            Some(_) => None,
        };
        if let Some((seq, reason)) = missing {
            self.broken(seq, None, reason);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AuditKey {
        AuditKey::new(b"an audit key of at least thirty-two bytes")
    }

    fn row(seq: i64, prev_hash: String) -> AuditRow {
        AuditRow {
            seq,
            id: Uuid::now_v7(),
            at: Utc::now(),
            actor: "a".into(),
            action: "x.create".into(),
            entity: "x".into(),
            entity_id: "1".into(),
            payload: format!("{{\"n\":{seq}}}"),
            prev_hash,
            hash: String::new(),
        }
    }

    /// `n` rows, the first `plain` of them hashed as before keying, and
    /// their signed head.
    fn chain_from(n: i64, plain: i64) -> (Vec<AuditRow>, ChainHead) {
        let mut prev = GENESIS.to_owned();
        let rows: Vec<AuditRow> = (1..=n)
            .map(|seq| {
                let mut row = row(seq, prev.clone());
                row.hash = if seq <= plain {
                    row.plain_hash()
                } else {
                    row.keyed_hash(&key())
                };
                prev = row.hash.clone();
                row
            })
            .collect();
        (rows, ChainHead::signed(n, prev, plain + 1, &key()))
    }

    fn chain(n: i64) -> (Vec<AuditRow>, ChainHead) {
        chain_from(n, 0)
    }

    fn walk(rows: &[AuditRow], head: &ChainHead) -> ChainWalk {
        let mut walk = ChainWalk::new(key(), Some(head.clone()));
        rows.iter().for_each(|r| walk.step(r));
        walk.finish()
    }

    fn broken_at(rows: &[AuditRow], head: &ChainHead) -> Option<(i64, Option<Uuid>)> {
        walk(rows, head).first_broken.map(|b| (b.seq, b.id))
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (rows, head) = chain(5);
        let w = walk(&rows, &head);
        assert_eq!((w.rows, w.first_broken), (5, None));
        let (rows, head) = chain(0);
        assert_eq!(walk(&rows, &head).first_broken, None);
    }

    #[test]
    fn an_altered_payload_names_its_row() {
        let (mut rows, head) = chain(5);
        rows[2].payload = "{\"n\":99}".into();
        assert_eq!(broken_at(&rows, &head), Some((3, Some(rows[2].id))));
    }

    #[test]
    fn a_removed_row_breaks_the_next() {
        let (mut rows, head) = chain(5);
        rows.remove(1);
        assert_eq!(broken_at(&rows, &head), Some((3, Some(rows[1].id))));
    }

    #[test]
    fn removed_rows_at_the_end_are_found_by_the_head() {
        for removed in [1, 3] {
            let (mut rows, head) = chain(5);
            rows.truncate(5 - removed);
            let broken = walk(&rows, &head).first_broken.unwrap();
            assert_eq!((broken.seq, broken.id), (6 - removed as i64, None));
            assert!(broken.reason.contains("rows were removed"), "{broken:?}");
        }
    }

    #[test]
    fn a_chain_recomputed_without_the_key_is_found() {
        let (mut rows, head) = chain(4);
        rows[1].actor = "mallory".into();
        let mut prev = rows[0].hash.clone();
        for row in &mut rows[1..] {
            row.prev_hash = prev.clone();
            row.hash = row.plain_hash();
            prev = row.hash.clone();
        }
        assert_eq!(broken_at(&rows, &head), Some((2, Some(rows[1].id))));
        // With a head of its own, signed by another key.
        let forged = ChainHead::signed(4, prev, 5, &AuditKey::new(b"not the key"));
        assert_eq!(broken_at(&rows, &forged), Some((2, Some(rows[1].id))));
    }

    #[test]
    fn a_head_changed_without_the_key_is_found() {
        let (mut rows, head) = chain(5);
        rows.truncate(3);
        let rolled = ChainHead {
            seq: 3,
            hash: rows[2].hash.clone(),
            ..head
        };
        let broken = walk(&rows, &rolled).first_broken.unwrap();
        assert_eq!(broken.seq, 3);
        assert!(broken.reason.contains("signature"), "{broken:?}");
        let mut headless = ChainWalk::new(key(), None);
        rows.iter().for_each(|r| headless.step(r));
        assert!(headless.finish().first_broken.is_some());
    }

    #[test]
    fn rows_from_before_keying_keep_their_plain_hashes() {
        let (rows, head) = chain_from(6, 3);
        assert_eq!(walk(&rows, &head).first_broken, None);
        // A plain row is still bound: changing it breaks the first keyed
        // row after it, recomputed or not.
        let (mut rows, head) = chain_from(6, 3);
        rows[1].payload = "{}".into();
        rows[1].hash = rows[1].plain_hash();
        rows[2].prev_hash = rows[1].hash.clone();
        rows[2].hash = rows[2].plain_hash();
        assert_eq!(broken_at(&rows, &head), Some((4, Some(rows[3].id))));
    }

    #[test]
    fn rows_appended_after_the_head_was_read_are_checked_by_their_keyed_hash() {
        let (rows, _) = chain(5);
        let head_at_3 = ChainHead::signed(3, rows[2].hash.clone(), 1, &key());
        assert_eq!(broken_at(&rows, &head_at_3), None);
    }
}
