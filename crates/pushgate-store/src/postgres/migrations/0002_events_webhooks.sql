-- Upstream messages and receipts are recorded once per stanza id, however often CCS
-- redelivers them; webhooks keep their cursor (the last event seq the receiver accepted) and
-- a lease, so one worker at a time delivers an app's events, in order.

ALTER TABLE events ADD COLUMN dedup_key TEXT;
CREATE UNIQUE INDEX events_dedup ON events (app, dedup_key) WHERE dedup_key IS NOT NULL;

CREATE TABLE webhooks (
    app              TEXT    PRIMARY KEY REFERENCES apps(name) ON DELETE CASCADE,
    delivered_seq    BIGINT  NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    last_error       TEXT,
    last_attempt_at  BIGINT,
    next_attempt_at  BIGINT  NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT
);
