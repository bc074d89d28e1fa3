-- The decision workflow: evidence about models, advisories that decide
-- whether a model may be used (with their revisions), reviews, the history
-- of every model's clearance, the tamper-evident audit log, and the
-- idempotency keys of creating requests.

-- Evidence is never edited: no column here is ever updated.
CREATE TABLE evidence (
    id          TEXT PRIMARY KEY NOT NULL,
    title       TEXT NOT NULL,
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    firmware    TEXT,
    summary     TEXT NOT NULL,
    severity    TEXT NOT NULL,
    findings    TEXT NOT NULL, -- JSON array of findings
    refs        TEXT NOT NULL, -- JSON array of URLs
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE evidence_models (
    evidence_id TEXT NOT NULL REFERENCES evidence (id),
    model_id    TEXT NOT NULL REFERENCES models (id),
    position    INTEGER NOT NULL,
    PRIMARY KEY (evidence_id, model_id)
);
CREATE INDEX evidence_models_model ON evidence_models (model_id, evidence_id);

CREATE TABLE evidence_responses (
    id          TEXT PRIMARY KEY NOT NULL,
    evidence_id TEXT NOT NULL REFERENCES evidence (id),
    kind        TEXT NOT NULL,
    author      TEXT NOT NULL,
    received_at TEXT NOT NULL,
    text        TEXT NOT NULL,
    supersedes  TEXT REFERENCES evidence (id),
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX evidence_responses_evidence ON evidence_responses (evidence_id, id);
CREATE INDEX evidence_responses_supersedes ON evidence_responses (supersedes);

-- Artifact bytes live in the artifact store, named by their SHA-256.
CREATE TABLE evidence_artifacts (
    evidence_id  TEXT NOT NULL REFERENCES evidence (id),
    sha256       TEXT NOT NULL,
    size         BIGINT NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    uploaded_by  TEXT NOT NULL,
    uploaded_at  TEXT NOT NULL,
    PRIMARY KEY (evidence_id, sha256)
);

-- An advisory and where it stands; its content lives in its revisions.
-- `state` is the advisory's own state; `working_revision` is the revision
-- being drafted, submitted or approved (the first one, or an amendment).
CREATE TABLE advisories (
    id               TEXT PRIMARY KEY NOT NULL,
    reference        TEXT UNIQUE,
    state            TEXT NOT NULL,
    current_revision INTEGER NOT NULL DEFAULT 0,
    working_revision INTEGER,
    author           TEXT NOT NULL,
    author_name      TEXT NOT NULL,
    withdrawn_reason TEXT,
    withdrawn_by     TEXT,
    withdrawn_at     TEXT,
    superseded_by    TEXT REFERENCES advisories (id),
    superseded_at    TEXT,
    version          BIGINT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX advisories_state ON advisories (state, id);

CREATE TABLE advisory_revisions (
    advisory_id              TEXT NOT NULL REFERENCES advisories (id),
    revision                 INTEGER NOT NULL,
    stage                    TEXT NOT NULL,
    title                    TEXT NOT NULL,
    summary                  TEXT NOT NULL,
    body                     TEXT NOT NULL,
    severity                 TEXT NOT NULL,
    tlp                      TEXT NOT NULL,
    audience_all             BOOLEAN NOT NULL,
    audience_units           TEXT NOT NULL, -- JSON array of unit names
    acknowledgement_required BOOLEAN NOT NULL,
    effective_at             TEXT,
    review_due               TEXT,
    author                   TEXT NOT NULL,
    contributors             TEXT NOT NULL, -- JSON array of everyone who wrote it
    rejection_reason         TEXT,
    submitted_by             TEXT,
    submitted_at             TEXT,
    approved_by              TEXT,
    approved_at              TEXT,
    published_by             TEXT,
    published_at             TEXT,
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL,
    PRIMARY KEY (advisory_id, revision)
);

CREATE TABLE advisory_decisions (
    advisory_id TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    model_id    TEXT NOT NULL REFERENCES models (id),
    decision    TEXT NOT NULL,
    conditions  TEXT,
    firmware    TEXT,
    PRIMARY KEY (advisory_id, revision, position),
    FOREIGN KEY (advisory_id, revision) REFERENCES advisory_revisions (advisory_id, revision) ON DELETE CASCADE
);
CREATE INDEX advisory_decisions_model ON advisory_decisions (model_id);

CREATE TABLE advisory_evidence (
    advisory_id TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    evidence_id TEXT NOT NULL REFERENCES evidence (id),
    PRIMARY KEY (advisory_id, revision, position),
    FOREIGN KEY (advisory_id, revision) REFERENCES advisory_revisions (advisory_id, revision) ON DELETE CASCADE
);

CREATE TABLE advisory_supersedes (
    advisory_id   TEXT NOT NULL,
    revision      INTEGER NOT NULL,
    position      INTEGER NOT NULL,
    superseded_id TEXT NOT NULL REFERENCES advisories (id),
    PRIMARY KEY (advisory_id, revision, position),
    FOREIGN KEY (advisory_id, revision) REFERENCES advisory_revisions (advisory_id, revision) ON DELETE CASCADE
);

-- The last reference number issued per year: taken in the publishing
-- transaction, so a rolled-back publish leaves no gap.
CREATE TABLE reference_counters (
    year INTEGER PRIMARY KEY NOT NULL,
    last INTEGER NOT NULL
);

CREATE TABLE reviews (
    id          TEXT PRIMARY KEY NOT NULL,
    model_id    TEXT NOT NULL REFERENCES models (id),
    reason      TEXT NOT NULL,
    due_at      TEXT NOT NULL,
    opened_by   TEXT NOT NULL,
    opened_at   TEXT NOT NULL,
    outcome     TEXT,
    advisory_id TEXT REFERENCES advisories (id),
    closed_by   TEXT,
    closed_at   TEXT
);
-- At most one open review per model.
CREATE UNIQUE INDEX reviews_open_per_model ON reviews (model_id) WHERE closed_at IS NULL;
CREATE INDEX reviews_due ON reviews (due_at) WHERE closed_at IS NULL;

CREATE TABLE clearance_history (
    id              TEXT PRIMARY KEY NOT NULL,
    model_id        TEXT NOT NULL REFERENCES models (id),
    status          TEXT NOT NULL,
    previous_status TEXT NOT NULL,
    advisory_id     TEXT REFERENCES advisories (id),
    review_id       TEXT REFERENCES reviews (id),
    changed_at      TEXT NOT NULL
);
CREATE INDEX clearance_history_model ON clearance_history (model_id, id);

-- Up to when decisions with a future effective date have been applied to
-- the materialised clearance (`models.clearance_status`).
CREATE TABLE clearance_settled (
    id      INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    through TEXT NOT NULL
);
INSERT INTO clearance_settled (id, through) VALUES (1, '2000-01-01T00:00:00.000000Z');

-- Append-only; each row's hash covers the previous row's hash.
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY NOT NULL,
    id        TEXT NOT NULL UNIQUE,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    entity    TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    payload   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, seq);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- The first answer to a creating request, replayed when the same caller
-- sends the same key again. `status` is null while the request runs.
CREATE TABLE idempotency_keys (
    principal   TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER,
    headers     TEXT,
    body        BLOB,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (principal, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
