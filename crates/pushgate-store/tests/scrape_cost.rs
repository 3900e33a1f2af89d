//! A `/metrics` scrape costs the same with 100,000 finished deliveries as with 10: the
//! statements the store runs for it (the reads `pushgate_gateway::metrics` makes, recorded from
//! sqlx's statement log) are the same at both sizes, and none of them reads the deliveries or
//! events tables whole. SQLite: `EXPLAIN QUERY PLAN` may scan only the few-row tables (apps and
//! the counters). PostgreSQL: `EXPLAIN` of the generic plan with sequential scans switched off
//! (on small test tables the planner may prefer one anyway), so a statement that can only
//! be answered by reading a whole table still shows its `Seq Scan`. The counters the scrape
//! reads equal the tables counted here, and deleting rows leaves them as they were.

use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pushgate_proto::outcome::Outcome;
use pushgate_store::{
    Completion, EventKind, NewDevice, NewMessage, PostgresStore, SqliteStore, Store, Targets,
};
use pushgate_testkit::postgres::fresh_schema;
use sqlx::{AssertSqlSafe, PgPool, Row, SqlitePool};
use time::OffsetDateTime;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use uuid::Uuid;

const CH: &str = "main";
const FINAL: &str = "('sent', 'failed', 'token_dead', 'expired')";
const ACTIVE: &str = "('queued', 'retry_wait', 'in_flight')";

/// Statements logged while a scrape is being recorded.
static RECORDING: Mutex<Option<Vec<String>>> = Mutex::new(None);
/// The statement log is process-wide: one backend's scrape at a time.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Keeps the text of every statement sqlx logs while [`RECORDING`] is on.
struct StatementLog;

#[derive(Default)]
struct Fields {
    summary: String,
    statement: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_string(),
            "db.statement" => self.statement = value.to_string(),
            _ => {}
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn Debug) {}
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StatementLog {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        // sqlx logs short statements whole in `summary`, longer ones in `db.statement`.
        let sql = if f.statement.trim().is_empty() {
            f.summary
        } else {
            f.statement.trim().to_string()
        };
        // A pooled SQLite connection opened meanwhile sets itself up first: not the scrape's.
        if sql.starts_with("PRAGMA ") {
            return;
        }
        if let Some(list) = RECORDING.lock().unwrap().as_mut() {
            list.push(sql);
        }
    }
}

fn install_log() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(StatementLog))
            .expect("this test binary sets the only subscriber");
    });
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

fn secs(n: i64) -> OffsetDateTime {
    t0() + time::Duration::seconds(n)
}

/// What the metrics read, as the metrics read it (`metrics/stored.rs`, `Snapshot::read`).
#[derive(Debug, PartialEq)]
struct Figures {
    deliveries: Vec<(String, String, String, i64)>,
    events: Vec<(String, String, i64)>,
    pending: Vec<(String, String, i64)>,
    backlog: u64,
}

/// One scrape's reads, with the statements they ran.
async fn scrape(store: &dyn Store) -> (Vec<String>, Figures) {
    *RECORDING.lock().unwrap() = Some(Vec::new());
    let mut deliveries: Vec<_> = store
        .delivery_counts()
        .await
        .unwrap()
        .into_iter()
        .map(|(a, c, s, n)| (a, c, s.as_str().to_string(), n as i64))
        .collect();
    let queues = store.queue_by_channel(secs(100)).await.unwrap();
    let mut events: Vec<_> = store
        .event_counts()
        .await
        .unwrap()
        .into_iter()
        .map(|(a, k, n)| (a, k.as_str().to_string(), n as i64))
        .collect();
    let hook = store.webhook_state("app").await.unwrap().unwrap();
    let backlog = store
        .count_events_after("app", hook.delivered_seq)
        .await
        .unwrap();
    let statements = RECORDING.lock().unwrap().take().unwrap();
    deliveries.sort();
    events.sort();
    let mut pending: Vec<_> = queues
        .into_iter()
        .map(|q| (q.app, q.channel, q.stats.pending as i64))
        .collect();
    pending.sort();
    let figures = Figures {
        deliveries,
        events,
        pending,
        backlog,
    };
    (statements, figures)
}

/// Direct access to the database, beside the store: bulk rows, plain counts, query plans.
enum Raw {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

/// The highest `$n` placeholder of a statement.
fn placeholders(sql: &str) -> usize {
    sql.split('$')
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<usize>().ok()
        })
        .max()
        .unwrap_or(0)
}

impl Raw {
    async fn exec(&self, sql: String) {
        match self {
            Raw::Sqlite(p) => sqlx::raw_sql(AssertSqlSafe(sql)).execute(p).await.map(drop),
            Raw::Pg(p) => sqlx::raw_sql(AssertSqlSafe(sql)).execute(p).await.map(drop),
        }
        .unwrap();
    }

    /// Rows of text and integer columns (integers as text), sorted, by plain SQL.
    async fn rows(&self, sql: String) -> Vec<Vec<String>> {
        /// Each column as text, whatever the backend's row type.
        macro_rules! as_text {
            ($pool:expr) => {
                sqlx::query(AssertSqlSafe(sql))
                    .fetch_all($pool)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| {
                                r.try_get::<String, _>(i)
                                    .or_else(|_| r.try_get::<i64, _>(i).map(|n| n.to_string()))
                                    .unwrap()
                            })
                            .collect::<Vec<String>>()
                    })
                    .collect::<Vec<_>>()
            };
        }
        let mut rows = match self {
            Raw::Sqlite(p) => as_text!(p),
            Raw::Pg(p) => as_text!(p),
        };
        rows.sort();
        rows
    }

    /// What the counters must say, counted from the tables.
    async fn counted(&self) -> Figures {
        let d = self
            .rows(format!(
                "SELECT app, channel, state, COUNT(*) FROM deliveries WHERE state IN {FINAL}
                 GROUP BY app, channel, state"
            ))
            .await;
        let e = self
            .rows("SELECT app, kind, COUNT(*) FROM events GROUP BY app, kind".into())
            .await;
        let q = self
            .rows(format!(
                "SELECT app, channel, COUNT(*) FROM deliveries WHERE state IN {ACTIVE}
                 GROUP BY app, channel"
            ))
            .await;
        let n = |s: &String| s.parse::<i64>().unwrap();
        Figures {
            deliveries: d
                .iter()
                .map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), n(&r[3])))
                .collect(),
            events: e
                .iter()
                .map(|r| (r[0].clone(), r[1].clone(), n(&r[2])))
                .collect(),
            pending: q
                .iter()
                .map(|r| (r[0].clone(), r[1].clone(), n(&r[2])))
                .collect(),
            backlog: e.iter().map(|r| n(&r[2]) as u64).sum(),
        }
    }

    /// The plan of one statement, one line per node.
    async fn plan(&self, sql: &str) -> Vec<String> {
        let params = placeholders(sql);
        match self {
            Raw::Sqlite(p) => {
                let text = format!("EXPLAIN QUERY PLAN {sql}");
                let mut q = sqlx::query(AssertSqlSafe(text));
                for _ in 0..params {
                    q = q.bind(None::<i64>);
                }
                q.fetch_all(p)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.try_get::<String, _>("detail").unwrap())
                    .collect()
            }
            Raw::Pg(p) => {
                let mut conn = p.acquire().await.unwrap();
                let nulls = vec!["NULL"; params].join(", ");
                let args = if params == 0 {
                    String::new()
                } else {
                    format!("({nulls})")
                };
                let text = format!(
                    "SET enable_seqscan = off;
                     SET plan_cache_mode = force_generic_plan;
                     PREPARE scrape_plan AS {sql};
                     EXPLAIN EXECUTE scrape_plan{args};
                     DEALLOCATE scrape_plan;
                     RESET enable_seqscan;
                     RESET plan_cache_mode;"
                );
                sqlx::raw_sql(AssertSqlSafe(text))
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.try_get::<String, _>(0).unwrap())
                    .collect()
            }
        }
    }

    /// Tables a plan may read whole: a few rows each, whatever the history.
    const SMALL: [&'static str; 3] = ["apps", "delivery_counts", "event_counts"];

    /// Fails when a statement's plan reads a table other than the small ones whole.
    fn assert_no_full_scan(&self, sql: &str, plan: &[String]) {
        for line in plan {
            let scanned = match self {
                Raw::Sqlite(_) => line
                    .strip_prefix("SCAN ")
                    .and_then(|rest| rest.split_whitespace().next()),
                Raw::Pg(_) => line
                    .split("Seq Scan on ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next()),
            };
            if let Some(table) = scanned {
                assert!(
                    Self::SMALL.contains(&table),
                    "a scrape statement scans {table} instead of searching an index:\n{sql}\nplan: {plan:#?}"
                );
            }
        }
    }

    /// Adds deliveries `from..to` to the app's first message over two channels, inserted
    /// queued and settled by one update (one per final state in turn).
    async fn add_finished(&self, from: u64, to: u64) {
        self.exec(format!(
            "WITH RECURSIVE n(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {to})
             INSERT INTO deliveries (message_id, app, token, channel, state, attempts, due_at,
                                     deadline, updated_at)
             SELECT (SELECT id FROM messages WHERE app = 'app' ORDER BY created_at LIMIT 1),
                    'app', 'bulk-' || i, CASE WHEN i % 3 = 0 THEN 'other' ELSE 'main' END,
                    'queued', 1, 0, 0, 0
             FROM n"
        ))
        .await;
        self.exec(
            "UPDATE deliveries SET state = CASE id % 4 WHEN 0 THEN 'sent' WHEN 1 THEN 'failed'
                                                   WHEN 2 THEN 'token_dead' ELSE 'expired' END
             WHERE state = 'queued' AND token LIKE 'bulk-%'"
                .into(),
        )
        .await;
    }

    /// Adds `n` events of two kinds.
    async fn add_events(&self, n: u64) {
        self.exec(format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {n})
             INSERT INTO events (app, kind, data, created_at)
             SELECT 'app', CASE WHEN i % 2 = 0 THEN 'delivery_failed' ELSE 'delivery_receipt' END,
                    '{{}}', 0
             FROM n"
        ))
        .await;
    }
}

/// Through the store: four devices, one message to all of them, answered sent, sent, token
/// dead (an invalidation and a failure event) and retry later (still pending); a message to
/// two devices that cannot be sent to (settled when stored); a webhook.
async fn real_traffic(store: &dyn Store) {
    store.upsert_app("app", true).await.unwrap();
    let devices = (1..=4)
        .map(|i| NewDevice {
            device_id: format!("d{i}"),
            token: format!("t{i}"),
            ..Default::default()
        })
        .collect();
    store.put_devices("app", devices, t0()).await.unwrap();
    let msg = NewMessage {
        id: Uuid::now_v7(),
        app: "app".into(),
        payload: serde_json::json!({"data": {"k": "v"}}),
        channel_override: None,
        default_channel: CH.into(),
        ttl_secs: 3600,
        idempotency_key: None,
        request_hash: None,
        created_at: t0(),
        channels: None,
    };
    let all = Targets {
        all: true,
        ..Default::default()
    };
    store.insert_message(msg.clone(), &all).await.unwrap();
    let mut claimed = store
        .claim_due("app", CH, secs(1), 10, Duration::from_secs(30))
        .await
        .unwrap();
    claimed.sort_by_key(|d| d.token.clone());
    assert_eq!(claimed.len(), 4);
    let outcomes = [
        Outcome::Delivered {
            message_id: "p1".into(),
        },
        Outcome::Delivered {
            message_id: "p2".into(),
        },
        Outcome::TokenDead {
            reason: "NotRegistered".into(),
        },
        Outcome::RetryLater {
            reason: "Unavailable".into(),
            after: None,
            scope: pushgate_proto::FailureScope::Token,
        },
    ];
    let answers = claimed
        .iter()
        .zip(outcomes)
        .map(|(d, outcome)| Completion {
            delivery_id: d.id,
            attempt: d.attempts,
            outcome,
            retry_at: Some(secs(50)),
        })
        .collect();
    assert_eq!(store.complete(answers, secs(2)).await.unwrap(), 4);
    // Two deliveries stored already settled: to the now invalid d3, and to nobody.
    let named = NewMessage {
        id: Uuid::now_v7(),
        ..msg
    };
    let targets = Targets {
        device_ids: vec!["d3".into(), "ghost".into()],
        ..Default::default()
    };
    let out = store.insert_message(named, &targets).await.unwrap();
    assert_eq!((out.deliveries, out.queued), (2, 0));
    store.webhook_init("app", 0, t0()).await.unwrap();
}

/// The whole case on one backend.
async fn scrape_cost_does_not_grow(store: Arc<dyn Store>, raw: Raw) {
    let _turn = TURN.lock().await;
    install_log();
    real_traffic(&*store).await;
    // 5 finished through the store, 5 more in bulk: 10.
    raw.add_finished(0, 5).await;
    let (_, warm) = scrape(&*store).await; // connections opened and prepared
    let (small, at_10) = scrape(&*store).await;
    assert_eq!(at_10, warm);
    let counted = raw.counted().await;
    assert_eq!(at_10, counted, "the counters agree with the tables");
    let finished: i64 = at_10.deliveries.iter().map(|d| d.3).sum();
    assert_eq!(finished, 10);
    assert_eq!(at_10.pending, [("app".into(), CH.into(), 1)]);
    let kinds: Vec<&str> = at_10.events.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(
        kinds,
        [
            EventKind::DeliveryFailed.as_str(),
            EventKind::DeviceInvalidated.as_str()
        ]
    );

    raw.add_finished(5, 99_995).await; // 100,000 finished in all
    raw.add_events(100_000).await;
    if let Raw::Pg(p) = &raw {
        sqlx::query("ANALYZE").execute(p).await.unwrap();
    }
    let (large, at_100k) = scrape(&*store).await;
    assert_eq!(
        at_100k,
        raw.counted().await,
        "the counters agree with the tables"
    );
    let finished: i64 = at_100k.deliveries.iter().map(|d| d.3).sum();
    assert_eq!(finished, 100_000);
    assert!(at_100k.backlog > 100_000);
    assert_eq!(
        large, small,
        "a scrape runs the same statements at both sizes"
    );
    assert!(
        large.len() >= 5,
        "every read of the scrape was recorded: {large:#?}"
    );
    let mut used = String::new();
    for sql in &large {
        let plan = raw.plan(sql).await;
        raw.assert_no_full_scan(sql, &plan);
        used.push_str(&plan.join("\n"));
    }
    // The queue is read through the index of active deliveries; the backlog through an index
    // from the webhook's cursor on (SQLite: `events_app_seq`; PostgreSQL's generic plan may
    // take the primary key from the cursor instead).
    assert!(used.contains("deliveries_due"), "{used}");
    if let Raw::Sqlite(_) = raw {
        assert!(used.contains("events_app_seq"), "{used}");
    }

    // Deleting history (as retention does) leaves every total as it was.
    raw.exec(format!("DELETE FROM deliveries WHERE state IN {FINAL}"))
        .await;
    raw.exec("DELETE FROM events".into()).await;
    let (_, after) = scrape(&*store).await;
    assert_eq!(after.deliveries, at_100k.deliveries);
    assert_eq!(after.events, at_100k.events);
    assert_eq!(after.pending, at_100k.pending);
    assert!(raw.counted().await.deliveries.is_empty());
}

/// The migration fills the counters once from the rows already stored: undone on a database
/// with history (its tables, triggers and record dropped), it runs again when the store opens.
async fn migration_fills_counters_from_history<F>(raw: Raw, open: impl Fn() -> F)
where
    F: std::future::Future<Output = Arc<dyn Store>>,
{
    let store = open().await;
    real_traffic(&*store).await;
    raw.add_finished(0, 1_000).await;
    raw.add_events(500).await;
    let undo = match raw {
        Raw::Sqlite(_) => {
            "DROP TRIGGER deliveries_count_settled; DROP TRIGGER events_count; DROP TABLE delivery_counts; DROP TABLE event_counts;"
        }
        Raw::Pg(_) => {
            "DROP FUNCTION pushgate_count_settled_updates, pushgate_count_settled_inserts,
                           pushgate_count_events CASCADE;
             DROP TABLE delivery_counts; DROP TABLE event_counts;"
        }
    };
    raw.exec(format!(
        "{undo} DELETE FROM schema_migrations WHERE name = 'counters';"
    ))
    .await;
    store.close().await;
    // History written while no counter was kept.
    raw.add_finished(1_000, 3_000).await;
    raw.add_events(700).await;
    let store = open().await;
    let counted = raw.counted().await;
    let (_, figures) = scrape(&*store).await;
    assert_eq!(figures.deliveries, counted.deliveries);
    assert_eq!(figures.events, counted.events);
    let finished: i64 = figures.deliveries.iter().map(|d| d.3).sum();
    assert_eq!(finished, 5 + 3_000);
    let (applied, latest) = store.schema_version().await.unwrap();
    assert_eq!(applied, latest);
}

/// A fresh SQLite file: its path and a pool beside the store's.
async fn sqlite_file() -> (String, Raw, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("pushgate-scrape-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db").to_string_lossy().into_owned();
    // The store creates the file and its schema first.
    SqliteStore::open(&path).await.unwrap().close().await;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .busy_timeout(Duration::from_secs(30));
    let raw = Raw::Sqlite(SqlitePool::connect_with(options).await.unwrap());
    (path, raw, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migration_fills_counters_from_history() {
    let _turn = TURN.lock().await;
    let (path, raw, dir) = sqlite_file().await;
    let open = || async { Arc::new(SqliteStore::open(&path).await.unwrap()) as Arc<dyn Store> };
    migration_fills_counters_from_history(raw, open).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migration_fills_counters_from_history() {
    let Some(schema) = fresh_schema().await else {
        return;
    };
    let _turn = TURN.lock().await;
    let url = schema.url().to_string();
    PostgresStore::open(&url).await.unwrap();
    let raw = Raw::Pg(PgPool::connect(&url).await.unwrap());
    let open = || async { Arc::new(PostgresStore::open(&url).await.unwrap()) as Arc<dyn Store> };
    migration_fills_counters_from_history(raw, open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_scrape_costs_the_same_at_10_and_100k_finished_deliveries() {
    let (path, raw, dir) = sqlite_file().await;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    scrape_cost_does_not_grow(store, raw).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_scrape_costs_the_same_at_10_and_100k_finished_deliveries() {
    let Some(schema) = fresh_schema().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(PostgresStore::open(schema.url()).await.unwrap());
    let raw = Raw::Pg(PgPool::connect(schema.url()).await.unwrap());
    scrape_cost_does_not_grow(store, raw).await;
}

#[test]
fn placeholders_are_counted() {
    assert_eq!(placeholders("SELECT 1"), 0);
    assert_eq!(placeholders("a = $1 AND b > $2 OR c <= $1"), 2);
    assert_eq!(placeholders("x = $12"), 12);
}
