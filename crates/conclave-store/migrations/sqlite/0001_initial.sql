-- Conclave's schema (SQLite). Kept in step with ../postgres/0001_initial.sql:
-- both backends run the same queries, so flags are 0/1 integers, times are
-- RFC 3339 text, and lists inside a row are JSON arrays.

CREATE TABLE accounts (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    host                   TEXT    NOT NULL,
    username               TEXT    NOT NULL,
    sha1_salt              BLOB    NOT NULL,
    sha1_iterations        INTEGER NOT NULL,
    sha1_salted_password   BLOB    NOT NULL,
    sha256_salt            BLOB    NOT NULL,
    sha256_iterations      INTEGER NOT NULL,
    sha256_salted_password BLOB    NOT NULL,
    -- Incremented by every roster change (RFC 6121 section 2.6).
    roster_version         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (host, username)
) STRICT;

CREATE TABLE roster_items (
    account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    jid          TEXT    NOT NULL,
    name         TEXT,
    subscription TEXT    NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
    ask          INTEGER NOT NULL CHECK (ask IN (0, 1)),
    approved     INTEGER NOT NULL CHECK (approved IN (0, 1)),
    group_names  TEXT    NOT NULL, -- JSON array of strings
    PRIMARY KEY (account_id, jid)
) STRICT;

CREATE TABLE subscription_requests (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    from_jid   TEXT    NOT NULL,
    xml        TEXT    NOT NULL,
    stamp      TEXT    NOT NULL,
    PRIMARY KEY (account_id, from_jid)
) STRICT;

CREATE TABLE offline_messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT, -- gives the delivery order
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    xml        TEXT    NOT NULL,
    stamp      TEXT    NOT NULL
) STRICT;
CREATE INDEX offline_messages_by_account ON offline_messages (account_id, id);

CREATE TABLE account_data (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    store      TEXT    NOT NULL,
    item_key   TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    PRIMARY KEY (account_id, store, item_key)
) STRICT;

CREATE TABLE rooms (
    jid    TEXT PRIMARY KEY,
    domain TEXT, -- the part after '@', NULL for a JID without one
    state  TEXT NOT NULL
) STRICT;
CREATE INDEX rooms_by_domain ON rooms (domain);
