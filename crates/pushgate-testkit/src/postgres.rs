//! A PostgreSQL schema of its own for each test, so that suites run in parallel on one
//! database and leave nothing behind; and the one place that decides what happens when no
//! PostgreSQL is there.
//!
//! The server comes from `PUSHGATE_TEST_POSTGRES` (default [`DEFAULT_URL`]). When it cannot
//! be reached, a test fails if `CI` is set (a CI run must not pass without its database), and
//! otherwise prints a loud `skipped: no PostgreSQL at …` line and does nothing.

use std::time::Duration;

use sqlx::{Connection, PgConnection};

/// The test server when `PUSHGATE_TEST_POSTGRES` is not set (trust auth).
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// How long reaching the server may take before it counts as absent.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The test server's URL.
pub fn server_url() -> String {
    std::env::var("PUSHGATE_TEST_POSTGRES")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_string())
}

/// `url` with any password replaced by `***`, for messages.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_string(),
    }
}

/// `url` whose connections use `schema` (PostgreSQL's `search_path` startup option).
pub fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options[search_path]={schema}")
}

/// A fresh, empty schema on the test server, dropped with everything in it when this value
/// is dropped (also when the test panics).
#[derive(Debug)]
pub struct Schema {
    server: String,
    name: String,
    url: String,
}

impl Schema {
    /// The URL of the server whose connections use this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        // Drop may run inside a runtime (or while unwinding): do the work on a thread of its
        // own with a runtime of its own, and wait for it.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&server)
                    .await
                    .map_err(|e| e.to_string())?;
                // Sessions still using the schema (a gateway the test did not stop) could hold
                // locks the drop waits for: end them first (they carry the schema's name as
                // their application name).
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE application_name = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&name)
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                conn.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "warning: test schema {} was not dropped: {dropped:?}",
                self.name
            );
        }
    }
}

/// Whether the test server can be reached, deciding for the caller: `Some(url)` when it can;
/// `None` after printing `skipped: no PostgreSQL at …` when it cannot and `CI` is unset;
/// a panic (a failed test) when it cannot and `CI` is set.
pub async fn server_or_skip() -> Option<String> {
    reachable_or_skip(server_url(), std::env::var_os("CI").is_some()).await
}

/// [`server_or_skip`] for a given server and CI setting.
async fn reachable_or_skip(url: String, ci: bool) -> Option<String> {
    let reached = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(&url)).await;
    let problem = match reached {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            return Some(url);
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {CONNECT_TIMEOUT:?}"),
    };
    let shown = redacted(&url);
    if ci {
        panic!("no PostgreSQL at {shown} ({problem}), and CI is set: these tests must run");
    }
    eprintln!(
        "\n*** skipped: no PostgreSQL at {shown} ({problem}); set PUSHGATE_TEST_POSTGRES ***\n"
    );
    None
}

/// A fresh schema for one test (see [`server_or_skip`] for what happens without a server).
pub async fn fresh_schema() -> Option<Schema> {
    let server = server_or_skip().await?;
    let name = format!("t_{}", uuid::Uuid::now_v7().simple());
    let mut conn = PgConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {}: {e}", redacted(&server)));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("creating schema {name}: {e}"));
    let _ = conn.close().await;
    let url = format!(
        "{}&application_name={name}",
        with_search_path(&server, &name)
    );
    Some(Schema { server, name, url })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            redacted("postgres://pg:s3cret@db:5432/x?sslmode=require"),
            "postgres://pg:***@db:5432/x?sslmode=require"
        );
        assert_eq!(
            redacted("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
    }

    #[test]
    fn the_schema_goes_into_the_search_path_option() {
        assert_eq!(
            with_search_path("postgres://h/db", "t_1"),
            "postgres://h/db?options[search_path]=t_1"
        );
        assert_eq!(
            with_search_path("postgres://h/db?sslmode=disable", "t_1"),
            "postgres://h/db?sslmode=disable&options[search_path]=t_1"
        );
    }

    #[tokio::test]
    async fn an_absent_server_skips_outside_ci() {
        // Nothing listens on port 1.
        let absent = "postgres://postgres@127.0.0.1:1/test".to_string();
        assert_eq!(reachable_or_skip(absent, false).await, None);
    }

    #[tokio::test]
    #[should_panic(expected = "CI is set")]
    async fn an_absent_server_fails_in_ci() {
        let absent = "postgres://postgres:pw@127.0.0.1:1/test".to_string();
        reachable_or_skip(absent, true).await;
    }

    #[tokio::test]
    async fn a_fresh_schema_is_empty_in_use_and_gone_after_drop() {
        let Some(schema) = fresh_schema().await else {
            return;
        };
        let mut conn = PgConnection::connect(schema.url()).await.unwrap();
        let current: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(current, schema.name());
        sqlx::raw_sql("CREATE TABLE probe (x INT)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let name = schema.name().to_string();
        drop(schema);
        let mut admin = PgConnection::connect(&server_url()).await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_namespace WHERE nspname = $1")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        assert_eq!(left, 0, "the schema is dropped with its table");
    }
}
