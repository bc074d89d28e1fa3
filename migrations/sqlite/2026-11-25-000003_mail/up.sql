-- Email: the personnel directory, public subscriptions with their filters,
-- the outbox every mail goes through, and acknowledgements.

CREATE TABLE personnel (
    id          TEXT PRIMARY KEY NOT NULL,
    email       TEXT NOT NULL,
    email_key   TEXT NOT NULL UNIQUE, -- lower-cased
    name        TEXT NOT NULL,
    unit        TEXT,
    active      BOOLEAN NOT NULL,
    version     BIGINT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX personnel_unit ON personnel (unit);

-- A subscription matches an advisory when the advisory's severity reaches
-- `min_severity` (a rank: none 0 … critical 4) and one model it decides on
-- passes every non-empty list of the filter (an `all_*` flag means that
-- list is empty: anything passes).
CREATE TABLE subscriptions (
    id                TEXT PRIMARY KEY NOT NULL,
    email             TEXT NOT NULL,
    email_key         TEXT NOT NULL UNIQUE,
    state             TEXT NOT NULL, -- pending, confirmed, unsubscribed
    delivery          TEXT NOT NULL, -- immediate, daily
    min_severity      INTEGER NOT NULL,
    all_manufacturers BOOLEAN NOT NULL,
    all_models        BOOLEAN NOT NULL,
    all_categories    BOOLEAN NOT NULL,
    confirmed_at      TEXT,
    unsubscribed_at   TEXT,
    last_digest_at    TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

CREATE TABLE subscription_manufacturers (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    manufacturer_id TEXT NOT NULL,
    PRIMARY KEY (subscription_id, manufacturer_id)
);

CREATE TABLE subscription_models (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    model_id        TEXT NOT NULL,
    PRIMARY KEY (subscription_id, model_id)
);

CREATE TABLE subscription_categories (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    category        TEXT NOT NULL,
    PRIMARY KEY (subscription_id, category)
);

-- One row per mail to send. Advisory mail is unique per advisory revision,
-- kind and address; the Message-ID is derived from the row, so a resend
-- after a crash carries the same one.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    advisory_id     TEXT REFERENCES advisories (id),
    revision        INTEGER,
    email           TEXT NOT NULL,
    email_key       TEXT NOT NULL,
    name            TEXT,
    audience        TEXT NOT NULL, -- personnel, subscriber
    subscription_id TEXT REFERENCES subscriptions (id),
    payload         TEXT, -- a digest: the JSON list of its advisory revisions
    state           TEXT NOT NULL, -- queued, sending, sent, retrying, failed, suppressed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_until     TEXT,
    last_error      TEXT,
    last_reply      TEXT,
    sent_at         TEXT,
    created_at      TEXT NOT NULL,
    UNIQUE (advisory_id, revision, kind, email_key)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state IN ('queued', 'retrying', 'sending');
CREATE INDEX outbox_advisory ON outbox (advisory_id, id);

CREATE TABLE acknowledgements (
    advisory_id     TEXT NOT NULL REFERENCES advisories (id),
    revision        INTEGER NOT NULL,
    email_key       TEXT NOT NULL,
    email           TEXT NOT NULL,
    acknowledged_at TEXT NOT NULL,
    PRIMARY KEY (advisory_id, revision, email_key)
);
