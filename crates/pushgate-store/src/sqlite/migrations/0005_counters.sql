-- Counters for metrics, kept as the writes happen so that a scrape reads a handful of rows
-- instead of counting history (deliveries and events are deleted by retention; these totals
-- are not: deleting rows never touches them).
--
-- delivery_counts: deliveries that reached each final state, per app and channel, counted
-- when a delivery enters the state (an update of its state, or an insert already settled).
-- event_counts: events written, per app and kind. Both only ever grow.
CREATE TABLE delivery_counts (
    app      TEXT    NOT NULL,
    channel  TEXT    NOT NULL,
    state    TEXT    NOT NULL,
    n        BIGINT  NOT NULL,
    PRIMARY KEY (app, channel, state)
) WITHOUT ROWID;

CREATE TABLE event_counts (
    app   TEXT    NOT NULL,
    kind  TEXT    NOT NULL,
    n     BIGINT  NOT NULL,
    PRIMARY KEY (app, kind)
) WITHOUT ROWID;

-- Filled once from the rows already stored.
INSERT INTO delivery_counts (app, channel, state, n)
    SELECT app, channel, state, COUNT(*) FROM deliveries
    WHERE state IN ('sent', 'failed', 'token_dead', 'expired')
    GROUP BY app, channel, state;

INSERT INTO event_counts (app, kind, n)
    SELECT app, kind, COUNT(*) FROM events GROUP BY app, kind;

-- One upsert per delivery when it settles (never on claims or retries), on a table of a few
-- rows that stays in the page cache. Deliveries stored already settled (a named device that
-- cannot be sent to) are counted by the message's insert, once per message, so that the
-- insert of a large fan-out pays no trigger per row.
CREATE TRIGGER deliveries_count_settled AFTER UPDATE OF state ON deliveries
    WHEN old.state <> new.state AND new.state IN ('sent', 'failed', 'token_dead', 'expired')
BEGIN
    INSERT INTO delivery_counts (app, channel, state, n) VALUES (new.app, new.channel, new.state, 1)
        ON CONFLICT (app, channel, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER events_count AFTER INSERT ON events
BEGIN
    INSERT INTO event_counts (app, kind, n) VALUES (new.app, new.kind, 1)
        ON CONFLICT (app, kind) DO UPDATE SET n = n + 1;
END;
