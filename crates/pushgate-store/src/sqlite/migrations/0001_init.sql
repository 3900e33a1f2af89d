-- Times are Unix milliseconds (BIGINT) so that comparisons and indexes behave the same on
-- SQLite and PostgreSQL.

CREATE TABLE apps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    is_default  BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE devices (
    app             TEXT    NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    device_id       TEXT    NOT NULL,
    token           TEXT    NOT NULL,
    channel         TEXT,
    user_id         TEXT,
    tags            TEXT    NOT NULL DEFAULT '[]',
    app_version     TEXT,
    state           TEXT    NOT NULL DEFAULT 'active',
    invalid_reason  TEXT,
    confirmed       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    PRIMARY KEY (app, device_id)
);

-- A token belongs to at most one live device of an app; retired devices keep theirs for the record.
CREATE UNIQUE INDEX devices_app_token ON devices (app, token) WHERE state <> 'invalid';
CREATE INDEX devices_app_user ON devices (app, user_id);

CREATE TABLE device_tags (
    app        TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (app, tag, device_id),
    FOREIGN KEY (app, device_id) REFERENCES devices(app, device_id) ON DELETE CASCADE
);
CREATE INDEX device_tags_device ON device_tags (app, device_id);

CREATE TABLE messages (
    id               BLOB    PRIMARY KEY,
    app              TEXT    NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    payload          TEXT    NOT NULL,
    channel          TEXT,
    ttl_secs         BIGINT  NOT NULL,
    idempotency_key  TEXT,
    created_at       BIGINT  NOT NULL,
    UNIQUE (app, idempotency_key)
);

CREATE TABLE deliveries (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id           BLOB    NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    app                  TEXT    NOT NULL,
    device_id            TEXT,
    token                TEXT    NOT NULL,
    channel              TEXT,
    state                TEXT    NOT NULL DEFAULT 'queued',
    attempts             BIGINT  NOT NULL DEFAULT 0,
    due_at               BIGINT  NOT NULL,
    lease_until          BIGINT,
    deadline             BIGINT  NOT NULL,
    provider_message_id  TEXT,
    error_code           TEXT,
    updated_at           BIGINT  NOT NULL
);

CREATE INDEX deliveries_claim ON deliveries (state, due_at);
CREATE INDEX deliveries_lease ON deliveries (state, lease_until);
CREATE INDEX deliveries_message ON deliveries (message_id, id);
CREATE INDEX deliveries_app_token ON deliveries (app, token);

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    app         TEXT    NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    device_id   TEXT,
    data        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX events_app_seq ON events (app, seq);
