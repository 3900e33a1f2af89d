//! `pushgate db migrate`: brings a database's schema up to date and exits, on PostgreSQL (a
//! fresh schema of the test server) and on SQLite; never shows a password.

use std::process::{Command, Output};

use pushgate_testkit::postgres::fresh_schema;
use sqlx::Connection;

fn pushgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushgate"))
        .args(args)
        .env("RUST_LOG", "warn")
        // The working directory has no pushgate.toml, and no PUSHGATE_* setting leaks in.
        .current_dir(std::env::temp_dir())
        .env_remove("PUSHGATE_DATABASE")
        .output()
        .expect("pushgate runs")
}

/// How many migrations a backend ships (`postgres` or `sqlite`), counted by their numbers in
/// the source tree: the version a new database reaches.
fn shipped_migrations(backend: &str) -> i64 {
    let dir = format!(
        "{}/../pushgate-store/src/{backend}/migrations",
        env!("CARGO_MANIFEST_DIR")
    );
    // A migration is numbered by its scripts' prefix (`0008_…`); one may have two scripts.
    let numbers: std::collections::BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .filter_map(|name| name.split('_').next().map(str::to_owned))
        .collect();
    numbers.len() as i64
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn migrates_a_new_postgres_schema_once_and_then_finds_it_current() {
    let Some(schema) = fresh_schema().await else {
        return;
    };
    let first = pushgate(&["db", "migrate", "--database", schema.url()]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let said = text(&first.stdout);
    let latest = shipped_migrations("postgres");
    assert!(
        said.contains(&format!("migrated from version 0 to {latest}")),
        "{said}"
    );

    let mut conn = sqlx::PgConnection::connect(schema.url()).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(versions, (1..=latest).collect::<Vec<_>>());
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_name IN ('deliveries', 'webhooks')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 2);
    conn.close().await.unwrap();

    let again = pushgate(&["db", "migrate", "--database", schema.url()]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains(&format!("already at version {latest}")),
        "{}",
        text(&again.stdout)
    );
}

#[test]
fn migrates_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.db");
    let out = pushgate(&["db", "migrate", "--database", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!(
            "schema at version {}",
            shipped_migrations("sqlite")
        )),
        "{}",
        text(&out.stdout)
    );
    assert!(path.exists(), "the file was created");
}

#[test]
fn an_unreachable_database_fails_without_showing_its_password() {
    let out = pushgate(&[
        "db",
        "migrate",
        "--database",
        "postgres://pushgate:hunter2-secret@127.0.0.1:1/pushgate",
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("postgres://pushgate:***@127.0.0.1:1/pushgate"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    assert!(!text(&out.stdout).contains("hunter2"));
}
