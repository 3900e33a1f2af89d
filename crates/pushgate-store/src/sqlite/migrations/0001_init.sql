-- Times are Unix milliseconds (BIGINT) so that comparisons and indexes behave the same on
-- SQLite and PostgreSQL. Lists given to one statement arrive as JSON arrays (json_each).

CREATE TABLE apps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    is_default  BOOLEAN NOT NULL DEFAULT FALSE
);

-- Provider channels as configured: credentials by reference and fingerprint, never the secret.
CREATE TABLE channels (
    app                     TEXT    NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    name                    TEXT    NOT NULL,
    kind                    TEXT    NOT NULL,
    is_default              BOOLEAN NOT NULL DEFAULT FALSE,
    endpoint                TEXT    NOT NULL,
    credential_ref          TEXT    NOT NULL,
    credential_fingerprint  TEXT    NOT NULL,
    updated_at              BIGINT  NOT NULL,
    PRIMARY KEY (app, name)
);

CREATE TABLE devices (
    app             TEXT    NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    device_id       TEXT    NOT NULL,
    token           TEXT,
    channel         TEXT,
    user_id         TEXT,
    tags            TEXT    NOT NULL DEFAULT '[]',
    topics          TEXT    NOT NULL DEFAULT '[]',
    app_version     TEXT,
    state           TEXT    NOT NULL DEFAULT 'active',
    invalid_reason  TEXT,
    registration    TEXT    NOT NULL DEFAULT 'api',
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    PRIMARY KEY (app, device_id)
);

-- A token belongs to at most one live device of an app; retired devices keep theirs for the
-- record. A C2DM-flow device has no token (NULL) until it confirms a registration id.
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

-- Topic subscriptions kept by the gateway's registry (targets `topic` and `condition`).
CREATE TABLE device_topics (
    app        TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    topic      TEXT NOT NULL,
    PRIMARY KEY (app, topic, device_id),
    FOREIGN KEY (app, device_id) REFERENCES devices(app, device_id) ON DELETE CASCADE
);
CREATE INDEX device_topics_device ON device_topics (app, device_id);

-- C2DM-era flow: a registration id waiting for the device to echo its confirmation token.
CREATE TABLE pending_registrations (
    app                 TEXT    NOT NULL,
    device_id           TEXT    NOT NULL,
    registration_id     TEXT    NOT NULL,
    confirmation_token  TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL,
    PRIMARY KEY (app, device_id),
    FOREIGN KEY (app, device_id) REFERENCES devices(app, device_id) ON DELETE CASCADE
);

CREATE TABLE messages (
    id               BLOB    PRIMARY KEY,
    app              TEXT    NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    payload          TEXT    NOT NULL,
    channel          TEXT,
    ttl_secs         BIGINT  NOT NULL,
    idempotency_key  TEXT,
    request_hash     TEXT,
    deliveries       BIGINT  NOT NULL DEFAULT 0,
    queued           BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    UNIQUE (app, idempotency_key)
);

-- While in flight, due_at is the end of the lease: one index finds every claimable row.
CREATE TABLE deliveries (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id           BLOB    NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    app                  TEXT    NOT NULL,
    device_id            TEXT,
    token                TEXT    NOT NULL,
    channel              TEXT    NOT NULL,
    state                TEXT    NOT NULL DEFAULT 'queued',
    attempts             BIGINT  NOT NULL DEFAULT 0,
    due_at               BIGINT  NOT NULL,
    lease_until          BIGINT,
    deadline             BIGINT  NOT NULL,
    provider_message_id  TEXT,
    error_code           TEXT,
    updated_at           BIGINT  NOT NULL
);

CREATE INDEX deliveries_due ON deliveries (app, channel, due_at)
    WHERE state IN ('queued', 'retry_wait', 'in_flight');
CREATE INDEX deliveries_device_waiting ON deliveries (app, device_id)
    WHERE state IN ('queued', 'retry_wait');
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
