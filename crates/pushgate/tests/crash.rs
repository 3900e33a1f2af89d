//! Crash safety: the gateway process is killed with SIGKILL while 100,000 deliveries are in
//! flight, restarted on the same database, and every accepted message still reaches the
//! emulator; the duplicates the crash caused are counted and bounded by the unrecorded window
//! (the in-flight limit plus one batch).
//!
//! The emulator runs inside the test process, so it outlives the gateway and keeps the true
//! record of what reached the devices (`GET /emulator/stats`: `delivered` counts inbox
//! insertions, `duplicates` the copies of a payload a device already had).

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pushgate_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use pushgate_store::{DeliveryState, SqliteStore, Store};
use serde_json::{Value, json};
use support::{GatewayProcess, TempDir, client, free_port, wait_healthy};

const DEVICES: usize = 100_000;
/// Single-device messages accepted before the fan-out, and posted (paced) after it.
const SINGLES_BEFORE: usize = 150;
const SINGLES_AFTER: usize = 50;
/// `devices:import` calls (1000 devices each) in flight at once.
const IMPORT_CONCURRENCY: usize = 2;
const APP: &str = "crash";
const API_KEY: &str = "crash-test-key-0123456789";
/// Legacy multicast: at most this many batches are between "claimed for sending" and
/// "answer committed" at any moment (the channel loop holds one permit per batch from before
/// the request until after the commit).
const MAX_IN_FLIGHT: usize = 4;
/// Tokens per legacy multicast request (the protocol's limit, `registration_ids`).
const MULTICAST: usize = 1000;
/// Deliveries one claim takes; claimed work waits for a free permit before it is sent.
const CLAIM_BATCH: usize = 1000;
/// Long enough that a live worker's batch does not outlive its lease on a loaded 2-core
/// machine (with "3s" a restarted gateway was seen to re-claim and resend one of its own
/// batches whose commit was slow: a duplicate without a crash); short enough that the
/// restarted gateway reclaims the dead one's leases before it runs out of other work.
const LEASE: &str = "10s";
/// Kill the gateway once the emulator has stored at least this many messages...
const KILL_AT: u64 = 20_000;
/// ... and fail (instead of passing vacuously) if the run got this far before we could.
const TOO_LATE: u64 = 90_000;
/// How long the restarted gateway gets to finish everything.
const FINISH_DEADLINE: Duration = Duration::from_secs(120);

async fn emulator_stats(http: &reqwest::Client, emu: &str) -> Value {
    http.get(format!("{emu}/emulator/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {key:?} in {v}"))
}

/// Posts JSON with the app's key and expects `status`; returns the body.
async fn post(http: &reqwest::Client, url: String, body: &Value, status: u16) -> Value {
    let r = http
        .post(&url)
        .bearer_auth(API_KEY)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let got = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(got, status, "{url}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// One accepted message: its id, how many deliveries the 202 promised, and who to look at.
struct Accepted {
    id: String,
    /// Deliveries stored before the 202 (a large fan-out's first chunk; the test then sets
    /// the whole audience it expects).
    deliveries: u64,
    /// The rest of the audience was still to be stored when the 202 was sent.
    expanding: bool,
    /// The token of a single-device message (None for the fan-out).
    token: Option<String>,
    data: Value,
    /// The 202 was a replay of an earlier acceptance (same `Idempotency-Key`).
    replayed: bool,
}

/// Posts a message under an `Idempotency-Key`. `None`: no answer (the gateway died under
/// the request), so the client must post it again with the same key; any answer but 202
/// fails the test.
async fn try_accept(
    http: &reqwest::Client,
    gw: &str,
    key: &str,
    body: Value,
    token: Option<String>,
) -> Option<Accepted> {
    let url = format!("{gw}/v1/apps/{APP}/messages");
    let r = http
        .post(&url)
        .bearer_auth(API_KEY)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    let replayed = r.headers().contains_key("idempotent-replayed");
    let text = r.text().await.ok()?;
    assert_eq!(status, 202, "{url} ({key}): {text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    Some(Accepted {
        id: answer["id"].as_str().unwrap().to_string(),
        deliveries: num(&answer, "deliveries"),
        expanding: answer["expanding"] == json!(true),
        token,
        data: body["data"].clone(),
        replayed,
    })
}

/// A single-device message to one device, with its own data (so the emulator never
/// mistakes it for a copy of another message) and its own idempotency key.
async fn single(http: &reqwest::Client, gw: &str, tokens: &[String], n: usize) -> Option<Accepted> {
    let k = (n * 397 + 11) % DEVICES;
    let body = json!({
        "targets": {"device_ids": [format!("d{k}")]},
        "data": {"kind": "single", "n": n.to_string()},
    });
    try_accept(
        http,
        gw,
        &format!("single-{n}"),
        body,
        Some(tokens[k].clone()),
    )
    .await
}

/// Single-device messages `range`, posted 4 at a time: the accepted ones, and the numbers of
/// those that got no answer.
async fn singles(
    http: &reqwest::Client,
    gw: &str,
    tokens: &Arc<Vec<String>>,
    range: impl IntoIterator<Item = usize>,
) -> (Vec<Accepted>, Vec<usize>) {
    let mut set = tokio::task::JoinSet::new();
    let mut out = Vec::new();
    let mut unanswered = Vec::new();
    let mut record = |(n, a): (usize, Option<Accepted>)| match a {
        Some(a) => out.push(a),
        None => unanswered.push(n),
    };
    for n in range {
        if set.len() >= 4
            && let Some(done) = set.join_next().await
        {
            record(done.unwrap());
        }
        let (http, gw, tokens) = (http.clone(), gw.to_string(), tokens.clone());
        set.spawn(async move { (n, single(&http, &gw, &tokens, n).await) });
    }
    while let Some(done) = set.join_next().await {
        record(done.unwrap());
    }
    (out, unanswered)
}

/// A small deterministic generator for the inbox sample (seed printed for reruns).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Deliveries recorded as sent (and the fan-out's states), read straight from the database
/// file of the dead gateway.
async fn committed_sent(db: &Path, accepted: &[Accepted]) -> (u64, String) {
    let store = SqliteStore::open(db.to_str().unwrap())
        .await
        .expect("the dead gateway's database opens");
    let mut sent = 0;
    let mut fanout = String::new();
    for a in accepted {
        let summary = store.message_summary(a.id.parse().unwrap()).await.unwrap();
        sent += summary.get(&DeliveryState::Sent).copied().unwrap_or(0);
        if a.token.is_none() {
            fanout = format!("{summary:?}");
        }
    }
    store.close().await;
    (sent, fanout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_loses_nothing_and_duplicates_stay_within_the_unrecorded_window() {
    let started = Instant::now();
    let http = client();

    // 1. The emulator lives in this process and outlives the gateway.
    let emulator: RunningEmulator = Emulator::start(EmulatorConfig {
        http: "127.0.0.1:0".parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    let emu = emulator.base_url();
    let created = http
        .post(format!("{emu}/emulator/devices"))
        .json(&json!({"count": DEVICES}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let created: Value = created.json().await.unwrap();
    let tokens: Arc<Vec<String>> = created["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["token"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .into();
    assert_eq!(tokens.len(), DEVICES);
    eprintln!(
        "created {DEVICES} emulator devices in {:?}",
        started.elapsed()
    );

    // 2. Config, database and logs in a temp dir; a fixed port so the restart is the same
    //    command.
    let dir = TempDir::new("pushgate-crash");
    let db = dir.0.join("gateway.db");
    let port = free_port();
    let gw = format!("http://127.0.0.1:{port}");
    let config = dir.0.join("pushgate.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:{port}"
database = "{db}"

[delivery]
lease = "{LEASE}"
claim_batch = {CLAIM_BATCH}
idle_poll = "100ms"
retry_initial = "200ms"
retry_max = "2s"
shutdown_grace = "1s"

[storage]
durable_commits = true

[apps.{APP}]
api_keys = ["{API_KEY}"]
default_channel = "gcm"

[apps.{APP}.channels.gcm]
kind = "legacy"
api_key = "emulator-key"
endpoint = "{emu}/gcm/send"
max_in_flight = {MAX_IN_FLIGHT}
"#,
            db = db.display()
        ),
    )
    .unwrap();
    let mut first = GatewayProcess::spawn(&dir.0, &config, "gateway-1");
    wait_healthy(&http, &gw, &mut first).await;

    // 3. Register every device (1000 per call, IMPORT_CONCURRENCY calls at a time).
    let setup = Instant::now();
    let mut imports = tokio::task::JoinSet::new();
    let chunks: Vec<Vec<(usize, String)>> = tokens
        .iter()
        .cloned()
        .enumerate()
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(<[_]>::to_vec)
        .collect();
    let mut chunks = chunks.into_iter();
    let mut imported = 0;
    let mut slowest = Duration::ZERO;
    loop {
        while imports.len() < IMPORT_CONCURRENCY {
            let Some(chunk) = chunks.next() else { break };
            let http = http.clone();
            let url = format!("{gw}/v1/apps/{APP}/devices:import");
            imports.spawn(async move {
                let devices: Vec<Value> = chunk
                    .iter()
                    .map(|(i, t)| json!({"device_id": format!("d{i}"), "token": t}))
                    .collect();
                let t = Instant::now();
                let answer = post(&http, url, &json!({"devices": devices}), 200).await;
                (num(&answer, "imported"), t.elapsed())
            });
        }
        match imports.join_next().await {
            Some(done) => {
                let (n, took) = done.unwrap();
                imported += n;
                slowest = slowest.max(took);
            }
            None => break,
        }
    }
    assert_eq!(imported, DEVICES as u64);
    eprintln!(
        "imported {imported} devices in {:?} (slowest call {slowest:?})",
        setup.elapsed()
    );

    // Accept the work: single messages, the fan-out to all, more singles (queued behind it).
    // Every message carries an Idempotency-Key, so one whose 202 the crash swallowed is
    // posted again to the restarted gateway, as a client would.
    let mut accepted = Vec::new();
    let (before, unanswered) = singles(&http, &gw, &tokens, 0..SINGLES_BEFORE).await;
    assert!(
        unanswered.is_empty(),
        "singles {unanswered:?} got no answer"
    );
    accepted.extend(before);
    let fanout_body =
        json!({"targets": {"all": true}, "data": {"kind": "fanout", "of": "everyone"}});
    let mut fanout = try_accept(&http, &gw, "fanout", fanout_body, None)
        .await
        .expect("the fan-out is accepted");
    // 100,000 devices are ten chunks (storage.fanout_chunk's default of 10,000): the 202
    // follows the first, and the rest are stored in the background, through the kill.
    assert!(
        fanout.expanding,
        "a fan-out of ten chunks is still expanding at its 202"
    );
    assert_eq!(fanout.deliveries, 10_000, "the 202 counts the first chunk");
    fanout.deliveries = DEVICES as u64;
    let fanout_accepted_at = Instant::now();
    eprintln!("fan-out accepted {:?} after the start", started.elapsed());
    accepted.push(fanout);
    // The later singles trickle in while the fan-out is being delivered (they queue behind
    // it), one at a time, through the kill: some get their 202 from the first gateway, the
    // rest (including maybe one the crash interrupted) are posted to the second.
    let later = {
        let (http, gw, tokens) = (http.clone(), gw.clone(), tokens.clone());
        tokio::spawn(async move {
            let mut out = Vec::new();
            let mut unanswered = Vec::new();
            for n in SINGLES_BEFORE..SINGLES_BEFORE + SINGLES_AFTER {
                match single(&http, &gw, &tokens, n).await {
                    Some(a) => out.push(a),
                    None => unanswered.push(n),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (out, unanswered)
        })
    };

    // 4. SIGKILL in the middle of the run.
    let mut seen;
    loop {
        first.check_alive();
        seen = num(&emulator_stats(&http, &emu).await, "delivered");
        if seen >= KILL_AT {
            break;
        }
        assert!(
            fanout_accepted_at.elapsed() < Duration::from_secs(60),
            "60 s after the fan-out only {seen} delivered\n{}",
            first.logs()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill();
    let since_fanout = fanout_accepted_at.elapsed();
    let rate = seen as f64 / since_fanout.as_secs_f64();
    let expected = (DEVICES + SINGLES_BEFORE + SINGLES_AFTER) as u64;
    assert!(
        seen < TOO_LATE,
        "the run was nearly over ({seen} of {expected} delivered, {since_fanout:?} after the \
         fan-out's 202) before the kill: not a mid-run crash; the gateway is too fast for \
         this window or the polling too slow"
    );
    let (later_accepted, unanswered) = later.await.unwrap();
    let answered_by_first = later_accepted.len();
    accepted.extend(later_accepted);
    // Requests that reached the emulator before the kill are answered (to no one) at once:
    // let them settle before taking the number.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let delivered_at_kill = num(&emulator_stats(&http, &emu).await, "delivered");
    // Only messages with a 202 are looked at: one whose 202 was lost queues behind the
    // fan-out's remaining deliveries, so none of its deliveries can have been sent yet.
    let (sent_at_kill, fanout_states) = committed_sent(&db, &accepted).await;
    let unrecorded = delivered_at_kill.saturating_sub(sent_at_kill);
    eprintln!(
        "killed at {seen} delivered, {since_fanout:?} after the fan-out's 202 (~{rate:.0}/s); \
         settled: emulator holds {delivered_at_kill}, database records {sent_at_kill} sent \
         (fan-out {fanout_states}); delivered but not recorded: {unrecorded}; later singles: \
         {answered_by_first} accepted by the first gateway, {} to post again",
        unanswered.len()
    );
    assert!(
        delivered_at_kill >= sent_at_kill,
        "the database records more sends ({sent_at_kill}) than the emulator got \
         ({delivered_at_kill})"
    );
    assert!(
        sent_at_kill + 10_000 < expected,
        "only {} deliveries were left when the gateway died: not a mid-run crash",
        expected - sent_at_kill
    );

    // 5. The same command on the same database.
    drop(first);
    let http = client();
    let restart = Instant::now();
    let mut second = GatewayProcess::spawn(&dir.0, &config, "gateway-2");
    wait_healthy(&http, &gw, &mut second).await;
    let (again, still_unanswered) = singles(&http, &gw, &tokens, unanswered.clone()).await;
    assert!(
        still_unanswered.is_empty(),
        "the restarted gateway did not answer singles {still_unanswered:?}"
    );
    let replays = again.iter().filter(|a| a.replayed).count();
    accepted.extend(again);
    for a in &accepted {
        assert_eq!(
            a.deliveries,
            if a.token.is_some() { 1 } else { DEVICES as u64 }
        );
    }
    let mut ids: Vec<&str> = accepted.iter().map(|a| a.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        1 + SINGLES_BEFORE + SINGLES_AFTER,
        "one id per message"
    );
    let total: u64 = accepted.iter().map(|a| a.deliveries).sum();
    assert_eq!(total, expected);
    eprintln!(
        "accepted {} messages, {total} deliveries ({} posted again after the restart, of \
         which {replays} were replays of a lost 202)",
        accepted.len(),
        unanswered.len()
    );
    let deadline = Instant::now() + FINISH_DEADLINE;
    let mut pending: Vec<&Accepted> = accepted.iter().collect();
    let mut last = Value::Null;
    while !pending.is_empty() {
        second.check_alive();
        let mut still = Vec::new();
        for a in pending {
            let view: Value = http
                .get(format!("{gw}/v1/messages/{}?limit=1", a.id))
                .bearer_auth(API_KEY)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if view["done"] != json!(true) {
                last = view;
                still.push(a);
            } else {
                assert_eq!(
                    view["deliveries"].as_u64(),
                    Some(a.deliveries),
                    "message {} is done with another number of deliveries",
                    a.id
                );
                let sent = view["counts"]["sent"].as_u64().unwrap_or(0);
                assert_eq!(
                    sent, a.deliveries,
                    "message {} finished with deliveries not sent: {}",
                    a.id, view["counts"]
                );
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} message(s) not done {FINISH_DEADLINE:?} after the restart; e.g. {}\nemulator: {}",
            pending.len(),
            last,
            emulator_stats(&http, &emu).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("restarted gateway finished in {:?}", restart.elapsed());

    // 6. Nothing lost, duplicates counted and bounded.
    let stats = emulator_stats(&http, &emu).await;
    let delivered = num(&stats, "delivered");
    let duplicates = num(&stats, "duplicates");
    assert!(
        delivered >= total,
        "lost deliveries: the emulator holds {delivered} of {total} accepted"
    );
    let extra = delivered - total;
    // Every accepted delivery is a distinct (device, payload) pair and nothing else was sent,
    // so the emulator's own duplicate count must be exactly the surplus: and then every pair
    // arrived at least once.
    assert_eq!(
        duplicates, extra,
        "emulator: {delivered} delivered, {duplicates} duplicates, {total} accepted"
    );
    // The bound: a duplicate is a send that reached the emulator but whose answer the dead
    // process had not committed. The channel loop holds a batch's share of its unrecorded
    // window from before the request until the batch's commit, and that window is the
    // in-flight limit (MAX_IN_FLIGHT multicasts) plus one batch (one multicast), so at most
    // MAX_IN_FLIGHT + 1 multicasts of at most MULTICAST tokens are sent-but-unrecorded at
    // once. Deliveries claimed but still waiting for room (at most one claim, CLAIM_BATCH)
    // were never sent: after the lease runs out they are delivered once, not duplicated. So
    // the bound is (MAX_IN_FLIGHT + 1) × MULTICAST = 5 × 1000 = 5000, and the claim batch adds
    // nothing. (Commits, not the emulator, are the bottleneck in this setup, so at the kill
    // the window usually holds answered batches: expect the duplicates near the bound.)
    let window = ((MAX_IN_FLIGHT + 1) * MULTICAST) as u64;
    eprintln!(
        "CRASH RESULT: {total} deliveries accepted ({} messages); killed at {seen} delivered \
         ({delivered_at_kill} settled, {sent_at_kill} recorded as sent); finally {delivered} \
         delivered, {duplicates} duplicates (unrecorded window {window}); total {:?}",
        accepted.len(),
        started.elapsed()
    );
    assert!(
        duplicates <= window,
        "{duplicates} duplicates exceed the unrecorded window of {window} (the crash left \
         {unrecorded} sends unrecorded); worst pairs: {}",
        stats["duplicate_pairs"]
    );
    // What the crash left unrecorded is exactly what had to be sent twice: any other
    // duplicate would come from the restarted gateway itself (e.g. a lease running out under it).
    assert_eq!(
        duplicates, unrecorded,
        "duplicates other than the crash's unrecorded sends"
    );

    // Spot checks of inboxes: a random sample for the fan-out, and every single's target.
    let seed = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1))
        | 1;
    let mut rng = XorShift(seed);
    let fanout = accepted.iter().find(|a| a.token.is_none()).unwrap();
    let mut checks: Vec<(String, Value)> = (0..200)
        .map(|_| {
            let k = (rng.next() % DEVICES as u64) as usize;
            (tokens[k].clone(), fanout.data.clone())
        })
        .collect();
    for a in accepted.iter().filter(|a| a.token.is_some()) {
        checks.push((a.token.clone().unwrap(), a.data.clone()));
    }
    for (token, data) in &checks {
        let inbox: Value = http
            .get(format!("{emu}/emulator/devices/{token}/messages"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let copies = inbox["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["data"] == *data)
            .count();
        assert!(
            copies >= 1,
            "sample seed {seed}: {token} lacks {data}: {inbox}"
        );
    }
    drop(second);
    emulator.shutdown().await;
    eprintln!("crash test took {:?}", started.elapsed());
}
