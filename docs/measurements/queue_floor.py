"""What SQLite itself costs per delivery on the gateway's schema, with no gateway around it.

The figures in the README's "What bounds the fan-out" come from this script. It runs the
SQLite store's own statements (the claim, the batch of answers, the fan-out's INSERT ... SELECT)
through Python's C binding, so that what it measures is SQLite's work alone, and the same
statements with triggers or indexes dropped, and the writes of a queue that would store each
delivery once, when it is answered.

Usage (SQLite 3.51 from PyPI, since a distribution's sqlite3 may be too old for `->>`):

    python3 -m venv /tmp/sqv && /tmp/sqv/bin/pip install pysqlite3-binary
    pushgate bench e2e --scenario fanout --devices 100000 --raw-units 0 --keep
    /tmp/sqv/bin/python docs/measurements/queue_floor.py /tmp/pushgate-bench-e2e-*/fanout.db

The database given is copied, never changed. The million-device part adds 900,000 devices to
the copy (about 1 GB of temporary files in /tmp).
"""

import json
import os
import shutil
import sys
import time

import pysqlite3 as sqlite3

WORK = "/tmp/queue_floor"

CLAIM_SELECT = """SELECT json_group_array(json_object('id', id, 'message_id', hex(message_id),
    'app', app, 'device_id', device_id, 'token', token, 'channel', channel, 'state', state,
    'attempts', attempts, 'due_at', due_at, 'lease_until', lease_until, 'deadline', deadline,
    'provider_message_id', provider_message_id, 'error_code', error_code,
    'updated_at', updated_at))
  FROM (SELECT * FROM deliveries WHERE app = ? AND channel = ?
          AND state IN ('queued', 'retry_wait', 'in_flight') AND due_at <= ?
        ORDER BY due_at, id LIMIT ?)"""
CLAIM_UPDATE = """UPDATE deliveries SET state = 'in_flight', lease_until = ?1, due_at = ?1,
    attempts = attempts + 1, updated_at = ?2 WHERE id IN (SELECT value FROM json_each(?3))"""
ANSWERS_SELECT = """SELECT json_group_array(json_array(hex(d.message_id), d.app, d.channel,
    j.value ->> 2)) FROM json_each(?1) j JOIN deliveries d ON d.id = j.value ->> 0
  WHERE d.state = 'in_flight' AND d.attempts = j.value ->> 1"""
ANSWERS_UPDATE = """UPDATE deliveries SET state = j.value ->> 2,
    due_at = COALESCE(j.value ->> 3, due_at), lease_until = NULL,
    provider_message_id = j.value ->> 4, error_code = j.value ->> 5, updated_at = ?1
  FROM json_each(?2) j
  WHERE deliveries.id = j.value ->> 0 AND deliveries.state = 'in_flight'
    AND deliveries.attempts = j.value ->> 1"""


def take_then_write(c, take, write, rows, label, names):
    """Repeats, until `rows` deliveries are done, a transaction running `take()` (which
    returns the deliveries it took) and one running `write(taken)`; prints both steps' times
    in µs a delivery."""
    took = wrote = 0.0
    done = 0
    while done < rows:
        t0 = time.perf_counter()
        c.execute("BEGIN IMMEDIATE")
        taken = take()
        c.execute("COMMIT")
        t1 = time.perf_counter()
        c.execute("BEGIN IMMEDIATE")
        write(taken)
        c.execute("COMMIT")
        took += t1 - t0
        wrote += time.perf_counter() - t1
        done += len(taken)
    c.close()
    per_delivery(label, [(names[0], took), (names[1], wrote)], done)


def per_delivery(label, parts, done):
    """Prints each timed part of a loop, and their sum, in µs a delivery."""
    each = ", ".join("%s %.1f µs" % (name, t / done * 1e6) for name, t in parts)
    total = sum(t for _, t in parts) / done * 1e6
    print("%s: %s, both %.1f µs a delivery" % (label, each, total))


def connect(path):
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=NORMAL")
    c.execute("PRAGMA cache_size=-8192")  # the writer's 8 MiB
    return c


def fresh_copy(src, name):
    os.makedirs(WORK, exist_ok=True)
    path = os.path.join(WORK, name)
    shutil.copy(src, path)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return path


def claim_and_answer(src, variant, rows=40000, batch=200):
    """The claim and the answers of `rows` deliveries, `batch` at a time, one transaction each,
    as the gateway's writer runs them; µs per delivery."""
    path = fresh_copy(src, "answers.db")
    c = connect(path)
    c.execute(
        "UPDATE deliveries SET state = 'queued', provider_message_id = NULL, lease_until = NULL,"
        " attempts = 0, due_at = 1000, error_code = NULL"
    )
    c.execute("VACUUM")
    if "no-triggers" in variant:
        c.execute("DROP TRIGGER deliveries_count_state")
        c.execute("DROP TRIGGER deliveries_count_settled")
    if "no-provider-index" in variant:
        c.execute("DROP INDEX deliveries_provider_id")
    if "no-waiting-index" in variant:
        c.execute("DROP INDEX deliveries_device_waiting")
    app, channel = c.execute("SELECT app, channel FROM deliveries LIMIT 1").fetchone()
    now = 2000

    def claim():
        due = json.loads(c.execute(CLAIM_SELECT, (app, channel, now, batch)).fetchone()[0])
        ids = [d["id"] for d in due]
        c.execute(CLAIM_UPDATE, (now + 60000, now, json.dumps(ids)))
        return ids

    def answer(ids):
        answers = json.dumps(
            [[i, 1, "sent", None, "projects/p/messages/%d" % (10**12 + i), None] for i in ids]
        )
        c.execute(ANSWERS_SELECT, (answers,)).fetchone()
        c.execute(ANSWERS_UPDATE, (now, answers))

    take_then_write(
        c, claim, answer, rows, "claim and answers, " + variant, ("claim", "answers")
    )


def million_devices(src):
    path = os.path.join(WORK, "million.db")
    if os.path.exists(path):
        return path
    path = fresh_copy(src, "million.db")
    c = connect(path)
    c.execute("BEGIN")
    for table in ("deliveries", "message_state_counts", "delivery_counts", "messages"):
        c.execute("DELETE FROM %s" % table)
    have = c.execute("SELECT COUNT(*) FROM devices").fetchone()[0]
    c.execute(
        """INSERT INTO devices (app, device_id, token, channel, tags, state, created_at,
                                updated_at, token_key)
           WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < 999999)
           SELECT app, printf('floor-%07d', i), substr(token, 1, 100) || printf('%052d', i),
                  channel, tags, 'active', created_at, updated_at, token_key + i
           FROM n, (SELECT * FROM devices LIMIT 1)""",
        (have,),
    )
    c.execute("COMMIT")
    c.execute("VACUUM")
    c.close()
    return path


def fan_out_insert(src):
    """The POST of a million-device fan-out: every delivery inserted in the message's
    transaction, flushed (synchronous=FULL)."""
    path = fresh_copy(million_devices(src), "insert.db")
    c = connect(path)
    c.execute("PRAGMA synchronous=FULL")
    c.execute(
        "INSERT INTO messages (id, app, payload, channel, ttl_secs, created_at)"
        " VALUES (x'0102030405060708090a0b0c0d0e0f10', 'sandbox', '{}', NULL, 3600, 1)"
    )
    t0 = time.perf_counter()
    c.execute("BEGIN IMMEDIATE")
    n = c.execute(
        """INSERT INTO deliveries (message_id, app, device_id, token, channel, state,
                                   error_code, attempts, due_at, deadline, updated_at)
           SELECT x'0102030405060708090a0b0c0d0e0f10', d.app, d.device_id, d.token,
                  COALESCE(d.channel, 'fcm'), 'queued', NULL, 0, 5, 100000, 5
           FROM devices d WHERE d.app = 'sandbox' AND d.state = 'active'
             AND d.token IS NOT NULL"""
    ).rowcount
    t1 = time.perf_counter()
    c.execute("COMMIT")
    t2 = time.perf_counter()
    c.close()
    print(
        "fan-out POST of %d deliveries: insert %.2f s, flushed commit %.2f s"
        % (n, t1 - t0, t2 - t1)
    )


def written_once(src, rows=200000, batch=1000):
    """A queue that stores a fan-out's deliveries once, answered: read the next devices of
    the audience from a cursor, then insert their answered rows; µs per delivery."""
    path = fresh_copy(million_devices(src), "once.db")
    c = connect(path)
    c.execute(
        "INSERT INTO messages (id, app, payload, channel, ttl_secs, created_at)"
        " VALUES (x'0102030405060708090a0b0c0d0e0f10', 'sandbox', '{}', NULL, 3600, 1)"
    )
    cursor = [0]

    def read_audience():
        devices = c.execute(
            """SELECT rowid, device_id, token, channel FROM devices
               WHERE +app = 'sandbox' AND state = 'active' AND token IS NOT NULL
                 AND rowid > ? ORDER BY rowid LIMIT ?""",
            (cursor[0], batch),
        ).fetchall()
        cursor[0] = devices[-1][0]
        return devices

    def insert_answered(devices):
        answered = json.dumps(
            [[d[1], d[2], d[3], "projects/p/messages/%d" % (10**12 + d[0])] for d in devices]
        )
        c.execute(
            """INSERT INTO deliveries (message_id, app, device_id, token, channel, state,
                                       provider_message_id, attempts, due_at, deadline,
                                       updated_at)
               SELECT x'0102030405060708090a0b0c0d0e0f10', 'sandbox', j.value ->> 0,
                      j.value ->> 1, j.value ->> 2, 'sent', j.value ->> 3, 1, 5, 100000, 5
               FROM json_each(?) j""",
            (answered,),
        )

    take_then_write(
        c,
        read_audience,
        insert_answered,
        rows,
        "written once",
        ("audience read", "answered rows"),
    )


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    src = sys.argv[1]
    for variant in (
        "as stored",
        "no-triggers",
        "no-provider-index",
        "no-triggers no-provider-index no-waiting-index",
    ):
        claim_and_answer(src, variant)
    fan_out_insert(src)
    written_once(src)
    shutil.rmtree(WORK)


if __name__ == "__main__":
    main()
