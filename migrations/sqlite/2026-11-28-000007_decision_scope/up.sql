-- A decision names one model, or every model of a manufacturer (optionally
-- of one category), registered now or later. SQLite cannot relax NOT NULL
-- in place: the table is rebuilt (nothing refers to it).
CREATE TABLE advisory_decisions_scoped (
    advisory_id     TEXT NOT NULL,
    revision        INTEGER NOT NULL,
    position        INTEGER NOT NULL,
    model_id        TEXT REFERENCES models (id),
    manufacturer_id TEXT REFERENCES manufacturers (id),
    category        TEXT,
    decision        TEXT NOT NULL,
    conditions      TEXT,
    firmware        TEXT,
    PRIMARY KEY (advisory_id, revision, position),
    FOREIGN KEY (advisory_id, revision) REFERENCES advisory_revisions (advisory_id, revision) ON DELETE CASCADE,
    CHECK ((model_id IS NULL) <> (manufacturer_id IS NULL)),
    CHECK (category IS NULL OR manufacturer_id IS NOT NULL)
);
INSERT INTO advisory_decisions_scoped
    (advisory_id, revision, position, model_id, decision, conditions, firmware)
SELECT advisory_id, revision, position, model_id, decision, conditions, firmware
FROM advisory_decisions;
DROP TABLE advisory_decisions;
ALTER TABLE advisory_decisions_scoped RENAME TO advisory_decisions;
CREATE INDEX advisory_decisions_model ON advisory_decisions (model_id);
CREATE INDEX advisory_decisions_manufacturer ON advisory_decisions (manufacturer_id);
