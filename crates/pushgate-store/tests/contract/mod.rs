//! The behaviour every [`Store`] implementation must have, written once against `Arc<dyn Store>`
//! so that the SQLite and PostgreSQL suites run the same cases.
//!
//! A suite includes this module (`mod contract;`) and defines at its crate root
//! `async fn contract_store_with(settings: StoreSettings) -> Option<(Arc<dyn Store>, impl Sized)>`:
//! the factory of a fresh store with one default app named `app` and an app `other` (for
//! isolation checks), with
//! whatever must live as long as the case (and clean up when dropped, also on a panic); `None`
//! skips the case where the backend's server is absent and that is allowed. Each topic file writes its cases
//! inside [`contract_cases!`], which turns every case into a test on a fresh store and lists it
//! in the topic's `cases()`: a case cannot exist without running, and
//! `every_case_in_the_contract_files_is_run` checks that no case was written outside it.

use std::sync::Arc;
use std::time::Duration;

use pushgate_proto::condition::Condition;
use pushgate_proto::outcome::Outcome;
use pushgate_store::{
    C2dmFlowRegistration, ChannelRecord, Confirmation, DeliveryState, DeviceFilter, DeviceState,
    EventKind, Release, Store, StoreError, Targets, UpstreamRecord,
};
use uuid::Uuid;

/// Defines a topic's cases (each an `async fn` whose one parameter is the store), one test per case
/// (on a fresh store from the suite's `contract_store_with(settings)`, default settings unless
/// the topic starts with `settings = …;`), and `cases()`, their names.
macro_rules! contract_cases {
    (settings = $settings:expr; $(async fn $name:ident($s:ident: Arc<dyn Store>) $body:block)+) => {
        $(
            async fn $name($s: Arc<dyn Store>) $body
        )+

        /// This topic's cases, by name.
        pub fn cases() -> Vec<&'static str> {
            vec![$(stringify!($name)),+]
        }

        mod tests {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((store, _cleanup)) = crate::contract_store_with($settings).await
                    else {
                        return; // the suite's factory said why (no server outside CI)
                    };
                    super::$name(store).await;
                }
            )+
        }
    };
    ($(async fn $name:ident($s:ident: Arc<dyn Store>) $body:block)+) => {
        contract_cases!(settings = pushgate_store::StoreSettings::default();
            $(async fn $name($s: Arc<dyn Store>) $body)+);
    };
}

mod apps;
mod c2dm_flow;
mod devices;
mod events;
mod fanout;
mod instances;
mod messages;
mod outcomes;
mod queue;
mod retention;
mod rotation;
mod support;
mod targets;
mod upstream;
mod webhooks;

pub use support::*;

/// Every case of the contract, by name, topic by topic.
pub fn all_cases() -> Vec<&'static str> {
    [
        apps::cases(),
        c2dm_flow::cases(),
        devices::cases(),
        events::cases(),
        fanout::cases(),
        instances::cases(),
        messages::cases(),
        outcomes::cases(),
        queue::cases(),
        retention::cases(),
        rotation::cases(),
        targets::cases(),
        upstream::cases(),
        webhooks::cases(),
    ]
    .concat()
}

/// The case functions written in the contract's source files: every `async fn` whose only
/// parameter is an `Arc<dyn Store>`, however it is formatted.
fn cases_in_source(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("async fn ") {
        rest = &rest[at + "async fn ".len()..];
        let Some(open) = rest.find('(') else { break };
        let name = rest[..open].trim();
        if !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            continue; // a macro's `$name`, not a case
        }
        let Some(close) = rest[open..].find(')') else {
            break;
        };
        let params: String = rest[open + 1..open + close]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let params = params.trim_end_matches(',');
        if let Some((_, ty)) = params.split_once(':')
            && ty.trim() == "Arc<dyn Store>"
            && !params.contains(',')
        {
            found.push(name.to_string());
        }
    }
    found
}

#[test]
fn the_source_scan_finds_cases_however_formatted() {
    // Written with a stand-in for the type, so that this text is no case to the scan itself.
    let text = "async fn a(s: STORE) {}\npub async fn b(\n    store: STORE,\n) {}\n\
                async fn helper(s: &dyn Store, n: usize) {}\nasync fn two(s: STORE, x: u8) {}"
        .replace("STORE", "Arc<dyn Store>");
    assert_eq!(cases_in_source(&text), ["a", "b"]);
}

#[test]
fn every_case_in_the_contract_files_is_run() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract");
    let mut written = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("the contract's directory") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            written.extend(cases_in_source(&std::fs::read_to_string(&path).unwrap()));
        }
    }
    let listed = all_cases();
    assert!(
        written.len() >= 25,
        "the scan found only {} cases: {written:?}",
        written.len()
    );
    let not_run: Vec<&String> = written
        .iter()
        .filter(|name| !listed.contains(&name.as_str()))
        .collect();
    assert!(
        not_run.is_empty(),
        "cases written outside contract_cases! or in a topic left out of all_cases(): {not_run:?}"
    );
    let mut sorted_written: Vec<&str> = written.iter().map(String::as_str).collect();
    let mut sorted_listed = listed.clone();
    sorted_written.sort();
    sorted_listed.sort();
    assert_eq!(
        sorted_written, sorted_listed,
        "listed cases the scan missed"
    );
}
