-- Each claim of outbox rows carries a token of its own: a worker records an
-- outcome only for rows still held under its token, so a worker whose lease
-- ran out (and was taken over) cannot overwrite the new holder's outcome.
ALTER TABLE outbox ADD COLUMN claim_token TEXT;
