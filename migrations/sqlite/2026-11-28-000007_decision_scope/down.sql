CREATE TABLE advisory_decisions_model_only (
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
INSERT INTO advisory_decisions_model_only
SELECT advisory_id, revision, position, model_id, decision, conditions, firmware
FROM advisory_decisions WHERE model_id IS NOT NULL;
DROP TABLE advisory_decisions;
ALTER TABLE advisory_decisions_model_only RENAME TO advisory_decisions;
CREATE INDEX advisory_decisions_model ON advisory_decisions (model_id);
