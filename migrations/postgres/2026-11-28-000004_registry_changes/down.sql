CREATE INDEX model_tacs_model ON model_tacs (model_id);
DROP INDEX model_tacs_model_position;
ALTER TABLE registry_generation DROP COLUMN pruned_through;
DROP TABLE registry_changes;
