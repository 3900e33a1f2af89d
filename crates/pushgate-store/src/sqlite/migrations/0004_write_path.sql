-- The write path built for batches: what every delivery write pays, and what reads of a big
-- message cost.
--
-- A message's deliveries counted by state, kept as deliveries change (a trigger on state
-- changes; the insert of a message's deliveries adds its counts at once), so that a message's
-- summary reads a handful of rows instead of counting every delivery of a large fan-out.
CREATE TABLE message_state_counts (
    message_id  BLOB    NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    state       TEXT    NOT NULL,
    n           BIGINT  NOT NULL,
    PRIMARY KEY (message_id, state)
) WITHOUT ROWID;

INSERT INTO message_state_counts (message_id, state, n)
    SELECT message_id, state, COUNT(*) FROM deliveries GROUP BY message_id, state;

CREATE TRIGGER deliveries_count_state AFTER UPDATE OF state ON deliveries
    WHEN old.state <> new.state
BEGIN
    UPDATE message_state_counts SET n = n - 1
        WHERE message_id = old.message_id AND state = old.state;
    INSERT INTO message_state_counts (message_id, state, n) VALUES (new.message_id, new.state, 1)
        ON CONFLICT (message_id, state) DO UPDATE SET n = n + 1;
END;

-- (app, token) was paid by every delivery insert (a long text key) for two rare reads: the
-- raw-token check of one message (now one pass over that message's deliveries) and linking a
-- CCS receipt to its delivery, which this smaller index serves, filled only when a provider
-- answers with an id.
DROP INDEX deliveries_app_token;
CREATE INDEX deliveries_provider_id ON deliveries (provider_message_id)
    WHERE provider_message_id IS NOT NULL;
