-- Counters for metrics, kept as the writes happen so that a scrape reads a handful of rows
-- instead of counting history (deliveries and events are deleted by retention; these totals
-- are not: deleting rows never touches them).
--
-- delivery_counts: deliveries that reached each final state, per app and channel, counted
-- when a delivery enters the state (an update of its state, or an insert already settled).
-- Each row is split in slots (the writing backend's pid modulo 16) so that instances and
-- connections settling deliveries of one channel at once do not queue on one row lock until
-- their commits; readers add the slots up.
-- event_counts: events written, per app and kind (writers of an app's events already take
-- turns under the app's event lock, so one row each is enough). Both only ever grow.
CREATE TABLE delivery_counts (
    app      TEXT     NOT NULL,
    channel  TEXT     NOT NULL,
    state    TEXT     NOT NULL,
    slot     INTEGER  NOT NULL,
    n        BIGINT   NOT NULL,
    PRIMARY KEY (app, channel, state, slot)
);

CREATE TABLE event_counts (
    app   TEXT    NOT NULL,
    kind  TEXT    NOT NULL,
    n     BIGINT  NOT NULL,
    PRIMARY KEY (app, kind)
);

-- Filled once from the rows already stored.
INSERT INTO delivery_counts (app, channel, state, slot, n)
    SELECT app, channel, state, 0, COUNT(*) FROM deliveries
    WHERE state IN ('sent', 'failed', 'token_dead', 'expired')
    GROUP BY app, channel, state;

INSERT INTO event_counts (app, kind, n)
    SELECT app, kind, COUNT(*) FROM events GROUP BY app, kind;

-- Statement-level triggers: one grouped upsert per statement, whatever number of rows it
-- changed (the rows come from the statement's transition tables), in a fixed order so that
-- two transactions lock counter rows in the same order.
CREATE FUNCTION pushgate_count_settled_updates() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO delivery_counts (app, channel, state, slot, n)
        SELECT n.app, n.channel, n.state, pg_backend_pid() % 16, COUNT(*)
        FROM changed_new n JOIN changed_old o ON o.id = n.id
        WHERE n.state IN ('sent', 'failed', 'token_dead', 'expired') AND o.state <> n.state
        GROUP BY n.app, n.channel, n.state
        ORDER BY n.app, n.channel, n.state
    ON CONFLICT (app, channel, state, slot) DO UPDATE SET n = delivery_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE TRIGGER deliveries_count_settled AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION pushgate_count_settled_updates();

CREATE FUNCTION pushgate_count_settled_inserts() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO delivery_counts (app, channel, state, slot, n)
        SELECT app, channel, state, pg_backend_pid() % 16, COUNT(*)
        FROM inserted
        WHERE state IN ('sent', 'failed', 'token_dead', 'expired')
        GROUP BY app, channel, state
        ORDER BY app, channel, state
    ON CONFLICT (app, channel, state, slot) DO UPDATE SET n = delivery_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE TRIGGER deliveries_count_settled_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION pushgate_count_settled_inserts();

CREATE FUNCTION pushgate_count_events() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO event_counts (app, kind, n)
        SELECT app, kind, COUNT(*) FROM inserted
        GROUP BY app, kind
        ORDER BY app, kind
    ON CONFLICT (app, kind) DO UPDATE SET n = event_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE TRIGGER events_count AFTER INSERT ON events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION pushgate_count_events();
