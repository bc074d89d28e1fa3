//! The audit chain's rule: each row's hash covers the previous row's hash
//! and the row itself, so altering, removing or reordering any row breaks
//! every hash after it.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

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
    /// `hex(SHA-256(prev_hash ‖ canonical row))`, the canonical row being the
    /// JSON array of its other fields in a fixed order (unambiguous, unlike
    /// joining them).
    pub fn expected_hash(&self) -> String {
        let canonical = serde_json::json!([
            self.seq,
            self.id.to_string(),
            self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            self.actor,
            self.action,
            self.entity,
            self.entity_id,
            self.payload,
        ]);
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        hasher.update(canonical.to_string().as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// Walks rows in order, remembering where the chain first breaks.
#[derive(Debug, Clone)]
pub struct ChainWalk {
    last_seq: i64,
    last_hash: String,
    pub rows: u64,
    pub first_broken: Option<Uuid>,
}

impl Default for ChainWalk {
    fn default() -> Self {
        Self {
            last_seq: 0,
            last_hash: GENESIS.to_owned(),
            rows: 0,
            first_broken: None,
        }
    }
}

impl ChainWalk {
    /// Checks the next row: it must follow the previous one (no gap), point
    /// at its hash, and hash to what it says.
    pub fn step(&mut self, row: &AuditRow) {
        self.rows += 1;
        let intact = row.seq == self.last_seq + 1
            && row.prev_hash == self.last_hash
            && row.hash == row.expected_hash();
        if !intact && self.first_broken.is_none() {
            self.first_broken = Some(row.id);
        }
        self.last_seq = row.seq;
        self.last_hash = row.hash.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRow> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let id = Uuid::now_v7();
                let at = Utc::now();
                let mut row = AuditRow {
                    seq,
                    id,
                    at,
                    actor: "a".into(),
                    action: "x.create".into(),
                    entity: "x".into(),
                    entity_id: "1".into(),
                    payload: format!("{{\"n\":{seq}}}"),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                row.hash = row.expected_hash();
                prev = row.hash.clone();
                row
            })
            .collect()
    }

    fn walk(rows: &[AuditRow]) -> ChainWalk {
        let mut walk = ChainWalk::default();
        rows.iter().for_each(|r| walk.step(r));
        walk
    }

    #[test]
    fn an_intact_chain_verifies() {
        let w = walk(&chain(5));
        assert_eq!((w.rows, w.first_broken), (5, None));
    }

    #[test]
    fn an_altered_payload_names_its_row() {
        let mut rows = chain(5);
        rows[2].payload = "{\"n\":99}".into();
        assert_eq!(walk(&rows).first_broken, Some(rows[2].id));
    }

    #[test]
    fn a_removed_row_breaks_the_next() {
        let mut rows = chain(5);
        rows.remove(1);
        assert_eq!(walk(&rows).first_broken, Some(rows[1].id));
    }

    #[test]
    fn a_rehashed_row_still_breaks_its_successor() {
        let mut rows = chain(4);
        rows[1].actor = "mallory".into();
        rows[1].hash = rows[1].expected_hash();
        assert_eq!(walk(&rows).first_broken, Some(rows[2].id));
    }
}
