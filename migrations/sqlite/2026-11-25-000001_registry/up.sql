-- The registry: manufacturers and device models, with every name a person
-- may type (aliases, model numbers) and the TACs that identify a model.
-- Keys (`*_key`) hold the normalised, lower-cased form that lookups use.

CREATE TABLE manufacturers (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL UNIQUE,
    country     TEXT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE manufacturer_aliases (
    manufacturer_id TEXT NOT NULL REFERENCES manufacturers (id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    alias           TEXT NOT NULL,
    alias_key       TEXT NOT NULL,
    PRIMARY KEY (manufacturer_id, position)
);
CREATE INDEX manufacturer_aliases_key ON manufacturer_aliases (alias_key);

CREATE TABLE models (
    id               TEXT PRIMARY KEY NOT NULL,
    manufacturer_id  TEXT NOT NULL REFERENCES manufacturers (id),
    name             TEXT NOT NULL,
    name_key         TEXT NOT NULL,
    category         TEXT NOT NULL,
    clearance_status TEXT NOT NULL DEFAULT 'unassessed',
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (manufacturer_id, name_key)
);
CREATE INDEX models_name_key ON models (name_key);
CREATE INDEX models_manufacturer ON models (manufacturer_id, id);
CREATE INDEX models_category ON models (category, id);
CREATE INDEX models_clearance_status ON models (clearance_status, id);

CREATE TABLE model_names (
    model_id  TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('alias', 'model_number')),
    position  INTEGER NOT NULL,
    value     TEXT NOT NULL,
    value_key TEXT NOT NULL,
    PRIMARY KEY (model_id, kind, position)
);
CREATE INDEX model_names_key ON model_names (value_key);

CREATE TABLE model_tacs (
    tac       TEXT PRIMARY KEY NOT NULL,
    model_id  TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL
);
CREATE INDEX model_tacs_model ON model_tacs (model_id);

-- Bumped by every change the lookup index depends on, so that each server
-- process can tell cheaply whether its in-memory index is current.
CREATE TABLE registry_generation (
    id          INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    generation  BIGINT NOT NULL
);
INSERT INTO registry_generation (id, generation) VALUES (1, 0);
