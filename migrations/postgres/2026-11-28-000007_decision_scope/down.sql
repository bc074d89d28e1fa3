DELETE FROM advisory_decisions WHERE manufacturer_id IS NOT NULL;
DROP INDEX advisory_decisions_manufacturer;
ALTER TABLE advisory_decisions DROP CONSTRAINT advisory_decisions_category_of_a_maker;
ALTER TABLE advisory_decisions DROP CONSTRAINT advisory_decisions_one_scope;
ALTER TABLE advisory_decisions DROP COLUMN category;
ALTER TABLE advisory_decisions DROP COLUMN manufacturer_id;
ALTER TABLE advisory_decisions ALTER COLUMN model_id SET NOT NULL;
