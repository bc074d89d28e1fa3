DROP TABLE registry_generation;
DROP TABLE model_tacs;
DROP TABLE model_names;
DROP TABLE models;
DROP TABLE manufacturer_aliases;
DROP TABLE manufacturers;
