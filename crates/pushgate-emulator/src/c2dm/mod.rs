//! C2DM (Android Cloud to Device Messaging, docs/protocols.md, "C2DM", "Emulator checklist: C2DM"):
//! `POST /accounts/ClientLogin` and `POST /c2dm/send` (the path both historical hostnames
//! used), with role accounts, `GoogleLogin auth=` tokens and their rotation, quotas, and
//! C2DM registration ids of their own shape.

mod accounts;
mod quotas;
mod send;

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::post;
use rand::Rng;
use serde_json::Value;

use crate::state::EmulatorState;
use crate::token;

pub(crate) use accounts::Accounts;
pub use accounts::{DEFAULT_C2DM_EMAIL, DEFAULT_C2DM_PASSWORD};
pub(crate) use quotas::Quotas;

/// The send path, also the fault path (`"path": "/c2dm/send"`).
pub(crate) const SEND_PATH: &str = "/c2dm/send";
/// The ClientLogin path.
pub(crate) const LOGIN_PATH: &str = "/accounts/ClientLogin";

/// Marker at the start of every C2DM registration id.
const ID_PREFIX: &str = "APA91bC";
/// Random characters after the marker.
const ID_BODY_LEN: usize = 104;
/// Checksum characters at the end.
const ID_CHECK_LEN: usize = 8;
/// Total length of a C2DM registration id (119, unlike the 152 of GCM tokens).
const ID_LEN: usize = ID_PREFIX.len() + ID_BODY_LEN + ID_CHECK_LEN;
/// C2DM accounts, quotas and counters.
#[derive(Debug)]
pub(crate) struct C2dmState {
    /// Role accounts and their `Auth` tokens.
    pub accounts: Accounts,
    /// Per-sender and per-device quotas.
    pub quotas: Quotas,
    logins: AtomicU64,
    sends: AtomicU64,
}

impl C2dmState {
    /// The start state: the default account, no quota.
    pub(crate) fn new() -> Self {
        Self {
            accounts: Accounts::new(),
            quotas: Quotas::default(),
            logins: AtomicU64::new(0),
            sends: AtomicU64::new(0),
        }
    }

    /// Adds `c2dm_logins` and `c2dm_sends` to the stats JSON.
    pub(crate) fn write_stats(&self, view: &mut Value) {
        if let Value::Object(map) = view {
            map.insert(
                "c2dm_logins".into(),
                self.logins.load(Ordering::Relaxed).into(),
            );
            map.insert(
                "c2dm_sends".into(),
                self.sends.load(Ordering::Relaxed).into(),
            );
        }
    }

    /// Back to the start state.
    pub(crate) fn reset(&self) {
        self.accounts.reset();
        self.quotas.reset();
        self.logins.store(0, Ordering::Relaxed);
        self.sends.store(0, Ordering::Relaxed);
    }
}

/// The C2DM routes, to be merged into the emulator's router.
pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new()
        .route(LOGIN_PATH, post(send::client_login))
        .route(SEND_PATH, post(send::send))
}

/// `n` random base64url characters.
pub(crate) fn random_text(n: usize) -> String {
    let mut out = Vec::with_capacity(n);
    token::push_random(&mut rand::rng(), &mut out, n);
    // Alphabet bytes only: ASCII.
    out.into_iter().map(char::from).collect()
}

/// A new C2DM registration id: `APA91bC`, 104 random characters, 8 checksum characters
/// (the same self-check as GCM tokens, so an edited id is detectably malformed).
pub(crate) fn registration_id<R: Rng + ?Sized>(rng: &mut R) -> String {
    let mut out = Vec::with_capacity(ID_LEN);
    out.extend_from_slice(ID_PREFIX.as_bytes());
    token::push_random(rng, &mut out, ID_BODY_LEN);
    token::push_checksum(&mut out, ID_CHECK_LEN);
    out.into_iter().map(char::from).collect()
}

/// True for an untouched C2DM registration id issued by some emulator.
pub(crate) fn is_well_formed(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == ID_LEN
        && id.starts_with(ID_PREFIX)
        && bytes.iter().all(token::in_alphabet)
        && token::checksum_matches(bytes, ID_CHECK_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_ids_check_themselves() {
        let id = registration_id(&mut rand::rng());
        assert_eq!(id.len(), 119);
        assert!(is_well_formed(&id));
        let mut edited = id.clone();
        edited.pop();
        edited.push(if id.ends_with('A') { 'B' } else { 'A' });
        assert!(!is_well_formed(&edited));
        assert!(!is_well_formed(&crate::token::generate()));
        assert!(!crate::token::is_well_formed(&id));
    }
}
