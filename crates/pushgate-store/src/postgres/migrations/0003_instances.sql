-- Gateway instances sharing this database (instances behind one load balancer), by heartbeat.
CREATE TABLE instances (
    id          TEXT    PRIMARY KEY,
    last_seen   BIGINT  NOT NULL,
    started_at  BIGINT  NOT NULL
);
