//! The device side of the C2DM-era registration flow (django-c2dm style), for virtual
//! devices created with `"confirm_via": "<gateway base URL>"`.
//!
//! - On creation (and after a token rotation) the device registers:
//!   `GET {base}/c2dm/registration?device_id=D&registration_id=<token>`.
//! - When a message whose `data` holds `registration_token` lands in its inbox (any
//!   protocol; see `Device::deliver`), it confirms in a spawned task:
//!   `GET {base}/c2dm/confirmation?device_id=D&registration_token=T`.
//!
//! Outcomes are recorded in the device's [`Link`], never panicked on. One HTTP client per
//! emulator instance, built on first use, without proxies, with a 10 s timeout, no redirects
//! and (the emulator being a test tool) accepting any TLS certificate, self-signed ones
//! included.

mod link;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::RwLock;
use pushgate_proto::token::short_token;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::devices::Payload;

pub(crate) use link::{Call, Link};
use link::{Counters, Ticket};

/// Path appended to the base URL for registrations.
const REGISTRATION_PATH: &str = "/c2dm/registration";
/// Path appended to the base URL for confirmations.
const CONFIRMATION_PATH: &str = "/c2dm/confirmation";
/// The `data` key that carries the confirmation token.
const TOKEN_KEY: &str = "registration_token";
/// Registration calls in flight at once for one `POST /emulator/devices`.
const CONCURRENCY: usize = 32;
/// Timeout of one call to the gateway.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Longest accepted `confirm_via`.
const MAX_BASE_LEN: usize = 2048;
/// Longest accepted device id, in bytes.
const MAX_DEVICE_ID_LEN: usize = 256;
/// Most bytes of an answer body read (and dropped) so the connection can be reused.
const MAX_BODY_READ: usize = 64 * 1024;

/// The registration flow's share of the emulator state: the HTTP client and the counters.
#[derive(Debug)]
pub(crate) struct Confirmer {
    client: OnceLock<Result<reqwest::Client, String>>,
    counters: RwLock<Arc<Counters>>,
    salt: u64,
}

impl Confirmer {
    /// No device, no client yet.
    pub(crate) fn new() -> Self {
        Self {
            client: OnceLock::new(),
            counters: RwLock::new(Arc::default()),
            salt: rand::random(),
        }
    }

    /// The instance's client, built on first use.
    pub(crate) fn client(&self) -> Result<reqwest::Client, String> {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .no_proxy()
                    .timeout(TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .danger_accept_invalid_certs(true)
                    .build()
                    .map_err(|e| format!("HTTP client unavailable: {e}"))
            })
            .clone()
    }

    /// A generated device id, `emu-` + 16 lowercase hex digits, derived from the device's
    /// emulator-local number by a bijection: unique within the instance.
    pub(crate) fn device_id(&self, number: u64) -> String {
        format!("emu-{:016x}", crate::ids::mix(self.salt ^ number))
    }

    /// A new flow for one device, in state `registering`.
    pub(crate) fn link(
        &self,
        client: &reqwest::Client,
        device_id: Arc<str>,
        base: Arc<str>,
    ) -> Arc<Link> {
        let counters = self.counters.read().clone();
        Arc::new(Link::new(device_id, base, client.clone(), counters))
    }

    /// Adds `confirm_via: {registering, registered, confirmed, failed}` to the stats JSON.
    pub(crate) fn write_stats(&self, out: &mut Value) {
        if let Value::Object(map) = out {
            let view = self.counters.read().view();
            map.insert(
                "confirm_via".into(),
                serde_json::to_value(view).unwrap_or_default(),
            );
        }
    }

    /// Forgets every count; calls still in flight only touch the old counters.
    pub(crate) fn reset(&self) {
        *self.counters.write() = Arc::default();
    }
}

/// Checks a `confirm_via` value and returns it without trailing slashes; the error text
/// names the field.
pub(crate) fn parse_base(raw: &str) -> Result<Arc<str>, String> {
    let bad = |why: &str| format!("confirm_via: {why}, got {raw:?}");
    if raw.len() > MAX_BASE_LEN {
        return Err(format!("confirm_via: longer than {MAX_BASE_LEN} bytes"));
    }
    let url = reqwest::Url::parse(raw).map_err(|e| {
        bad(&format!(
            "must be an absolute http:// or https:// URL ({e})"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad("must be an absolute http:// or https:// URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or a fragment"));
    }
    Ok(Arc::from(raw.trim_end_matches('/')))
}

/// Checks a `device_ids` list against `count`; the error text names the field.
pub(crate) fn check_device_ids(ids: &[String], count: u64) -> Result<(), String> {
    if ids.len() as u64 != count {
        return Err(format!(
            "device_ids: has {} entries but count is {count}",
            ids.len()
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        if id.is_empty() || id.len() > MAX_DEVICE_ID_LEN {
            return Err(format!(
                "device_ids[{i}]: must be 1 to {MAX_DEVICE_ID_LEN} bytes, got {}",
                id.len()
            ));
        }
        if !seen.insert(id.as_str()) {
            return Err(format!("device_ids[{i}]: {id:?} appears twice"));
        }
    }
    Ok(())
}

/// Registers every `(link, token)` with at most [`CONCURRENCY`] calls in flight and returns
/// the outcomes in order. The calls run in a detached task, so they finish (and are
/// recorded) even if the caller stops waiting.
pub(crate) async fn register_all(items: Vec<(Arc<Link>, Arc<str>)>) -> Vec<Call> {
    let n = items.len();
    let driver = tokio::spawn(async move {
        let mut outcomes = vec![Call::Pending; n];
        let mut queue = items.into_iter().enumerate();
        let mut running = JoinSet::new();
        loop {
            while running.len() < CONCURRENCY {
                let Some((i, (link, token))) = queue.next() else {
                    break;
                };
                running.spawn(async move { (i, register(&link, &token).await) });
            }
            match running.join_next().await {
                Some(Ok((i, call))) => outcomes[i] = call,
                Some(Err(e)) => tracing::warn!(error = %e, "registration task failed"),
                None => break,
            }
        }
        outcomes
    });
    match driver.await {
        Ok(outcomes) => outcomes,
        Err(e) => vec![Call::Failed(format!("registration task failed: {e}")); n],
    }
}

/// One registration call for `token`, recorded in `link` (detached, like [`register_all`]).
pub(crate) async fn register_one(link: Arc<Link>, token: Arc<str>) -> Call {
    match tokio::spawn(async move { register(&link, &token).await }).await {
        Ok(call) => call,
        Err(e) => Call::Failed(format!("registration task failed: {e}")),
    }
}

async fn register(link: &Link, token: &str) -> Call {
    let ticket = link.begin_registration();
    let call = get(
        link,
        REGISTRATION_PATH,
        &[("device_id", &*link.device_id), ("registration_id", token)],
    )
    .await;
    tracing::info!(
        device_id = %link.device_id,
        token = %short_token(token),
        status = ?call.status(),
        error = call.transport_error(),
        "virtual device registered with the gateway"
    );
    link.finish_registration(ticket, call.clone());
    call
}

/// Called once a message is in the device's inbox: confirms if its data carries
/// `registration_token`. Never blocks: the call runs in a spawned task.
pub(crate) fn on_message(link: &Arc<Link>, payload: &Payload) {
    let Some((_, token)) = payload.data.iter().find(|(k, _)| k == TOKEN_KEY) else {
        return;
    };
    let ticket = link.begin_confirmation();
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        link.finish_confirmation(ticket, Call::Failed("no async runtime".into()));
        return;
    };
    let link = link.clone();
    let token = token.clone();
    runtime.spawn(async move { confirm(&link, ticket, &token).await });
}

async fn confirm(link: &Link, ticket: Ticket, token: &str) {
    let call = get(
        link,
        CONFIRMATION_PATH,
        &[
            ("device_id", &*link.device_id),
            ("registration_token", token),
        ],
    )
    .await;
    tracing::info!(
        device_id = %link.device_id,
        status = ?call.status(),
        error = call.transport_error(),
        "virtual device confirmed with the gateway"
    );
    link.finish_confirmation(ticket, call);
}

/// `GET {base}{path}?{query}`; the answer's status, or why there was none.
async fn get(link: &Link, path: &str, query: &[(&str, &str)]) -> Call {
    let url = format!("{}{path}", link.base);
    match link.client.get(url).query(query).send().await {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let mut read = 0;
            while read < MAX_BODY_READ {
                match response.chunk().await {
                    Ok(Some(chunk)) => read += chunk.len(),
                    Ok(None) | Err(_) => break,
                }
            }
            Call::Answered(status)
        }
        Err(e) => Call::Failed(describe(&e)),
    }
}

/// A short text for a transport-level failure (no URL: it would repeat the token).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("timed out after {}s", TIMEOUT.as_secs());
    }
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let kind = if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    format!("{kind}: {root}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            parse_base("http://127.0.0.1:8080/").as_deref(),
            Ok("http://127.0.0.1:8080")
        );
        assert_eq!(
            parse_base("https://gw.example/v1/apps/myapp").as_deref(),
            Ok("https://gw.example/v1/apps/myapp")
        );
        for bad in [
            "",
            "/c2dm",
            "127.0.0.1:8080",
            "ftp://h/",
            "http://h/?a=b",
            "http://h/#x",
        ] {
            let e = parse_base(bad).unwrap_err();
            assert!(e.starts_with("confirm_via:"), "{bad}: {e}");
        }
    }

    #[test]
    fn device_id_lists() {
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_device_ids(&ids(&["a", "b"]), 2).is_ok());
        for (list, count) in [
            (ids(&["a"]), 2),
            (ids(&["a", ""]), 2),
            (ids(&["a", "a"]), 2),
            (vec!["x".repeat(257)], 1),
        ] {
            let e = check_device_ids(&list, count).unwrap_err();
            assert!(e.starts_with("device_ids"), "{e}");
        }
        assert!(check_device_ids(&["x".repeat(256)], 1).is_ok());
    }

    #[test]
    fn generated_device_ids_are_unique_and_well_formed() {
        let c = Confirmer::new();
        let all: std::collections::HashSet<String> = (0..10_000).map(|n| c.device_id(n)).collect();
        assert_eq!(all.len(), 10_000);
        for id in all.iter().take(100) {
            let hex = id.strip_prefix("emu-").unwrap();
            assert_eq!(id.len(), 20);
            assert!(
                hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{id}"
            );
        }
    }
}
