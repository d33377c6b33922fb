-- Conclave's schema (PostgreSQL). Kept in step with ../sqlite/0001_initial.sql:
-- both backends run the same queries, so flags are 0/1 integers, times are
-- RFC 3339 text, and lists inside a row are JSON arrays.

CREATE TABLE accounts (
    id                     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host                   TEXT   NOT NULL,
    username               TEXT   NOT NULL,
    sha1_salt              BYTEA  NOT NULL,
    sha1_iterations        BIGINT NOT NULL,
    sha1_salted_password   BYTEA  NOT NULL,
    sha256_salt            BYTEA  NOT NULL,
    sha256_iterations      BIGINT NOT NULL,
    sha256_salted_password BYTEA  NOT NULL,
    -- Incremented by every roster change (RFC 6121 section 2.6).
    roster_version         BIGINT NOT NULL DEFAULT 0,
    UNIQUE (host, username)
);

CREATE TABLE roster_items (
    account_id   BIGINT   NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    jid          TEXT     NOT NULL,
    name         TEXT,
    subscription TEXT     NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
    ask          SMALLINT NOT NULL CHECK (ask IN (0, 1)),
    approved     SMALLINT NOT NULL CHECK (approved IN (0, 1)),
    group_names  TEXT     NOT NULL, -- JSON array of strings
    PRIMARY KEY (account_id, jid)
);

CREATE TABLE subscription_requests (
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    from_jid   TEXT   NOT NULL,
    xml        TEXT   NOT NULL,
    stamp      TEXT   NOT NULL,
    PRIMARY KEY (account_id, from_jid)
);

CREATE TABLE offline_messages (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- gives the delivery order
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    xml        TEXT   NOT NULL,
    stamp      TEXT   NOT NULL
);
CREATE INDEX offline_messages_by_account ON offline_messages (account_id, id);

CREATE TABLE account_data (
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    store      TEXT   NOT NULL,
    item_key   TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    PRIMARY KEY (account_id, store, item_key)
);

CREATE TABLE rooms (
    jid    TEXT PRIMARY KEY,
    domain TEXT, -- the part after '@', NULL for a JID without one
    state  TEXT NOT NULL
);
CREATE INDEX rooms_by_domain ON rooms (domain);
