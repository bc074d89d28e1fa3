ALTER TABLE outbox RESET (fillfactor);
UPDATE outbox SET state = 'sending' WHERE claim_token IS NOT NULL AND state IN ('queued', 'retrying');
