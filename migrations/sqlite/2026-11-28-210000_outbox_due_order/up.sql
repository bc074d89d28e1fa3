-- The claim takes due mail in (next_attempt_at, id) order: with the id in
-- the index the scan stops after the batch instead of sorting every mail
-- queued (a publish queues them all at one instant).
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state IN ('queued', 'retrying', 'sending');
