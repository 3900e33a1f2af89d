//! C2DM role accounts (ClientLogin e-mail + password + sender) and the `Auth` tokens issued
//! to them, with server-side token rotation (`Update-Client-Auth`, docs/protocols.md,
//! "C2DM: responses").
//!
//! Rotation: [`Accounts::rotate`] issues a new token and marks it to be handed out in the
//! account's next `/c2dm/send` answer. Every earlier token keeps working until the client
//! first authenticates with the new one; from then on only the new one is accepted.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::random_text;
use crate::DEFAULT_SENDER_ID;

/// E-mail of the account that exists at start and after every reset.
pub const DEFAULT_C2DM_EMAIL: &str = "c2dm@example.com";
/// Password of [`DEFAULT_C2DM_EMAIL`].
pub const DEFAULT_C2DM_PASSWORD: &str = "emulator-password";

#[derive(Debug)]
struct Account {
    password: String,
    sender_id: Arc<str>,
    /// Tokens accepted now.
    tokens: Vec<String>,
    /// A rotated token not yet handed out in a send answer.
    to_announce: Option<String>,
    /// A rotated token whose first use retires every other token.
    retire_on_use: Option<String>,
}

#[derive(Debug, Default)]
struct Store {
    by_email: HashMap<String, Account>,
    by_token: HashMap<String, String>,
}

/// The sender behind a valid `Auth` token.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated {
    /// Account e-mail (lower case).
    pub email: String,
    /// Sender id the account sends as.
    pub sender_id: Arc<str>,
}

/// Every C2DM account and issued token.
#[derive(Debug)]
pub(crate) struct Accounts {
    store: Mutex<Store>,
}

impl Accounts {
    /// Only the default account.
    pub(crate) fn new() -> Self {
        let accounts = Self {
            store: Mutex::new(Store::default()),
        };
        accounts.install_default();
        accounts
    }

    fn install_default(&self) {
        self.add(
            DEFAULT_C2DM_EMAIL,
            DEFAULT_C2DM_PASSWORD,
            Arc::from(DEFAULT_SENDER_ID),
        );
    }

    /// Registers (or replaces) an account; a replaced account's tokens stop working.
    pub(crate) fn add(&self, email: &str, password: &str, sender_id: Arc<str>) {
        let email = email.to_ascii_lowercase();
        let mut store = self.store.lock();
        if let Some(old) = store.by_email.remove(&email) {
            for t in old.tokens {
                store.by_token.remove(&t);
            }
        }
        store.by_email.insert(
            email,
            Account {
                password: password.to_string(),
                sender_id,
                tokens: Vec::new(),
                to_announce: None,
                retire_on_use: None,
            },
        );
    }

    /// A fresh `Auth` token when `email`/`password` match an account.
    pub(crate) fn login(&self, email: &str, password: &str) -> Option<String> {
        let email = email.to_ascii_lowercase();
        let mut store = self.store.lock();
        let account = store.by_email.get_mut(&email)?;
        if account.password != password {
            return None;
        }
        let token = new_token();
        account.tokens.push(token.clone());
        store.by_token.insert(token.clone(), email);
        Some(token)
    }

    /// The account behind `token`, retiring older tokens on the first use of a rotated one.
    pub(crate) fn check(&self, token: &str) -> Option<Authenticated> {
        let mut store = self.store.lock();
        let email = store.by_token.get(token)?.clone();
        let account = store.by_email.get_mut(&email)?;
        let sender_id = account.sender_id.clone();
        let mut retired = Vec::new();
        if account.retire_on_use.as_deref() == Some(token) {
            account.retire_on_use = None;
            account.to_announce = None;
            retired = account
                .tokens
                .iter()
                .filter(|t| t.as_str() != token)
                .cloned()
                .collect();
            account.tokens.retain(|t| t == token);
        }
        for t in retired {
            store.by_token.remove(&t);
        }
        Some(Authenticated { email, sender_id })
    }

    /// The rotated token to put in the next answer for `email`, once.
    pub(crate) fn take_announcement(&self, email: &str) -> Option<String> {
        self.store
            .lock()
            .by_email
            .get_mut(email)?
            .to_announce
            .take()
    }

    /// Issues a new token for `email` to be announced with `Update-Client-Auth`; false for
    /// an unknown account.
    pub(crate) fn rotate(&self, email: &str) -> bool {
        let email = email.to_ascii_lowercase();
        let mut store = self.store.lock();
        let token = new_token();
        let Some(account) = store.by_email.get_mut(&email) else {
            return false;
        };
        account.tokens.push(token.clone());
        account.to_announce = Some(token.clone());
        account.retire_on_use = Some(token.clone());
        store.by_token.insert(token, email);
        true
    }

    /// Back to only the default account, no token.
    pub(crate) fn reset(&self) {
        {
            let mut store = self.store.lock();
            store.by_email.clear();
            store.by_token.clear();
        }
        self.install_default();
    }
}

/// `DQAAA` and random base64url characters, like ClientLogin `Auth` tokens.
fn new_token() -> String {
    format!("DQAAA{}", random_text(150))
}
