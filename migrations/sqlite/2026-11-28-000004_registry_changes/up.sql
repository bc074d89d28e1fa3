-- The register's change log: which models each write changed, numbered by
-- the register's generation, so that a server process brings its in-memory
-- lookup index up to date by reloading just those models. The writing
-- transaction bumps the generation and appends its rows; the bump locks the
-- generation row until commit, so generations commit in order.
CREATE TABLE registry_changes (
    generation  BIGINT NOT NULL,
    model_id    TEXT NOT NULL,
    PRIMARY KEY (generation, model_id)
);

-- Rows up to this generation have been pruned: a process that has seen
-- less rebuilds its index whole. Whoever changes the register behind the
-- service's back (a bulk load) sets it to the generation it bumped to.
-- The log starts now: processes that knew an earlier generation rebuild.
ALTER TABLE registry_generation ADD COLUMN pruned_through BIGINT NOT NULL DEFAULT 0;
UPDATE registry_generation SET pruned_through = generation;

-- The index reads each model's TACs in order, a range of models at a time.
CREATE INDEX model_tacs_model_position ON model_tacs (model_id, position);
DROP INDEX model_tacs_model;
