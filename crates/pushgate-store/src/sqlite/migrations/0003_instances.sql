-- Gateway instances sharing this database (several processes on one file), by heartbeat.
CREATE TABLE instances (
    id          TEXT    PRIMARY KEY,
    last_seen   BIGINT  NOT NULL,
    started_at  BIGINT  NOT NULL
);
