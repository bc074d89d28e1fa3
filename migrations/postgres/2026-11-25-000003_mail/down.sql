DROP TABLE acknowledgements;
DROP TABLE outbox;
DROP TABLE subscription_categories;
DROP TABLE subscription_models;
DROP TABLE subscription_manufacturers;
DROP TABLE subscriptions;
DROP TABLE personnel;
