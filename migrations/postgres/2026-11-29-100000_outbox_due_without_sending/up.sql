-- Since `outbox_claim_in_place` no row is `sending`, and the claim's
-- condition reads `state IN ('queued', 'retrying')`. SQLite uses a partial
-- index only when the query repeats its condition term for term, so the
-- index kept from before (which listed `sending` too) was never used: each
-- claim read and sorted the whole outbox (bench/README.md). The condition
-- here must stay exactly the one `DUE` in src/db/outbox.rs writes.
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state IN ('queued', 'retrying');
