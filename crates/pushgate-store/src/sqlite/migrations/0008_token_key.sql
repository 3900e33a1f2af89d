-- Devices are found by token through a compact key: the first 8 bytes of the token's SHA-256
-- as an integer (`sqlite/token_key.rs`), filled by the store with every token it writes and,
-- for devices stored before this migration, by the migration runner right after this script,
-- in the same transaction. The unique index on (app, token) held every token a second time,
-- about 170 bytes an entry: past a few tens of thousands of devices it no longer fit the page
-- cache, and each new device then read and dirtied a page of its own, written to the
-- write-ahead log and checkpointed again (`devices:import` of 300,000 devices spent most of
-- its time there). An entry of this index is about 20 bytes.
--
-- The index is not unique (two tokens may share a key); the triggers keep a token to at most
-- one live device of an app exactly as the unique index did, finding the candidates through
-- the key and comparing the tokens themselves. Every lookup by token names both the key and
-- the token. The index covers retired devices too, so the send path also finds a token that
-- only a retired device held through it.
--
-- The index and the triggers are made by `0008_token_key_index.sql`, once the runner has
-- filled the keys: an index built over the filled column is one sort, where filling the keys
-- of an indexed column would move each device's entry to a random page.
DROP INDEX devices_app_token;
ALTER TABLE devices ADD COLUMN token_key INTEGER;
