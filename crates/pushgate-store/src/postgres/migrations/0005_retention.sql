-- Retention: a background task deletes old history in small batches. Each of its deletes
-- finds its rows through an index, never by scanning history:
--   * an app's messages by acceptance time (the oldest first);
--   * an app's invalid devices by the time they became invalid (a partial index: only
--     invalid devices pay for it);
--   * events already have (app, seq), and a message's deliveries (message_id, id).
CREATE INDEX messages_app_created ON messages (app, created_at);
CREATE INDEX devices_invalid_since ON devices (app, updated_at) WHERE state = 'invalid';

-- Per app, the newest acceptance time of a message retention deleted: a message id (UUIDv7,
-- which carries its time) not found and not newer than this was deleted as history, and the
-- API says so instead of a bare "not found".
CREATE TABLE retention_horizons (
    app               TEXT    PRIMARY KEY REFERENCES apps(name) ON DELETE CASCADE,
    messages_through  BIGINT  NOT NULL
);
