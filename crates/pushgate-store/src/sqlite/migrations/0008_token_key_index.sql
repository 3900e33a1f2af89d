-- The second half of migration 0008 (see `0008_token_key.sql`), run once every device with a
-- token has its key.

-- The key leads, so that a query over an app's devices (an audience) never walks this index
-- in the keys' random order.
CREATE INDEX devices_token_key ON devices (token_key, app);

-- SQLite has no trigger for both INSERT and UPDATE: the two bodies below are the same rule
-- and must stay the same.
CREATE TRIGGER devices_token_unique_on_insert BEFORE INSERT ON devices
    WHEN new.token IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'devices.token_key must be set with devices.token')
        WHERE new.token_key IS NULL;
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: devices.app, devices.token')
        WHERE new.state <> 'invalid' AND EXISTS (
            SELECT 1 FROM devices d
            WHERE d.app = new.app AND d.token_key = new.token_key AND d.token = new.token
              AND d.state <> 'invalid' AND d.device_id <> new.device_id);
END;

CREATE TRIGGER devices_token_unique_on_update BEFORE UPDATE OF token, token_key, state ON devices
    WHEN new.token IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'devices.token_key must be set with devices.token')
        WHERE new.token_key IS NULL;
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: devices.app, devices.token')
        WHERE new.state <> 'invalid' AND EXISTS (
            SELECT 1 FROM devices d
            WHERE d.app = new.app AND d.token_key = new.token_key AND d.token = new.token
              AND d.state <> 'invalid' AND d.device_id <> new.device_id);
END;
