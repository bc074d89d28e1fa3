-- A decision names one model, or every model of a manufacturer (optionally
-- of one category), registered now or later.
ALTER TABLE advisory_decisions ALTER COLUMN model_id DROP NOT NULL;
ALTER TABLE advisory_decisions ADD COLUMN manufacturer_id UUID REFERENCES manufacturers (id);
ALTER TABLE advisory_decisions ADD COLUMN category TEXT;
ALTER TABLE advisory_decisions ADD CONSTRAINT advisory_decisions_one_scope
    CHECK ((model_id IS NULL) <> (manufacturer_id IS NULL));
ALTER TABLE advisory_decisions ADD CONSTRAINT advisory_decisions_category_of_a_maker
    CHECK (category IS NULL OR manufacturer_id IS NOT NULL);
CREATE INDEX advisory_decisions_manufacturer ON advisory_decisions (manufacturer_id);
