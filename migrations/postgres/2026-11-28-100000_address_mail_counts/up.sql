-- How many confirmation and manage mails each address (by its key: the
-- address in lower case) was sent on each day (UTC, YYYY-MM-DD): anyone can
-- type anyone's address, so a few a day is all one address gets. Counted in
-- the database, so every replica counts together; old days are pruned.
CREATE TABLE address_mail_counts (
    email_key  TEXT NOT NULL,
    day        TEXT NOT NULL,
    mails      INTEGER NOT NULL,
    PRIMARY KEY (email_key, day)
);
CREATE INDEX address_mail_counts_day ON address_mail_counts (day);
