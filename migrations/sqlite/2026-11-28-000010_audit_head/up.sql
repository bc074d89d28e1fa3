-- The audit chain's signed head (issue 12): how many rows the chain has,
-- the last one's hash, and from which seq on hashes are keyed with the
-- audit key; the service signs it (HMAC-SHA256 with the same key) and moves
-- it in the transaction of every append. The rows already written keep
-- their unkeyed SHA-256 hashes: keyed hashing starts after them. The
-- migration cannot sign (the key is not in the database): the service
-- signs this head when it starts.
CREATE TABLE audit_head (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq        BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    keyed_from BIGINT NOT NULL,
    signature  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash, keyed_from, signature)
SELECT 1,
       COALESCE(MAX(seq), 0),
       COALESCE((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1),
                '0000000000000000000000000000000000000000000000000000000000000000'),
       COALESCE(MAX(seq), 0) + 1,
       ''
FROM audit_log;
