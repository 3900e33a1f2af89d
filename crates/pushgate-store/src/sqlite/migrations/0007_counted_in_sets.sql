-- Changes of a delivery's state into or out of 'in_flight' (claims, provider answers,
-- releases, the expiry of leased work) are counted by the statements that make them, one
-- set-based upsert per batch (`sqlite/state_counts.rs`): these row triggers cost those
-- statements several microseconds per delivery, twice in every delivery's life. The
-- triggers keep counting every other change (a retired device's waiting work, expiry of
-- work never claimed).
DROP TRIGGER deliveries_count_state;
CREATE TRIGGER deliveries_count_state AFTER UPDATE OF state ON deliveries
    WHEN old.state <> new.state AND old.state <> 'in_flight' AND new.state <> 'in_flight'
BEGIN
    UPDATE message_state_counts SET n = n - 1
        WHERE message_id = old.message_id AND state = old.state;
    INSERT INTO message_state_counts (message_id, state, n) VALUES (new.message_id, new.state, 1)
        ON CONFLICT (message_id, state) DO UPDATE SET n = n + 1;
END;

DROP TRIGGER deliveries_count_settled;
CREATE TRIGGER deliveries_count_settled AFTER UPDATE OF state ON deliveries
    WHEN old.state <> new.state AND old.state <> 'in_flight'
         AND new.state IN ('sent', 'failed', 'token_dead', 'expired')
BEGIN
    INSERT INTO delivery_counts (app, channel, state, n) VALUES (new.app, new.channel, new.state, 1)
        ON CONFLICT (app, channel, state) DO UPDATE SET n = n + 1;
END;
