-- A claim no longer changes a row's state: a claimed row stays queued or
-- retrying, under its claim token and lease, and reads as sending while it
-- holds a token (PostgreSQL can then update it in place; see there).
UPDATE outbox SET state = CASE WHEN attempts <= 1 THEN 'queued' ELSE 'retrying' END
WHERE state = 'sending';
