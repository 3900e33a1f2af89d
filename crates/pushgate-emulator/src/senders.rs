//! Registered senders (sender id + legacy API key): who may call the legacy endpoints.

use std::sync::Arc;

use dashmap::DashMap;

use crate::{DEFAULT_API_KEY, DEFAULT_SENDER_ID};

/// Why a sender could not be registered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SenderError {
    /// The API key already authenticates another sender.
    #[error("api_key is already the key of sender {0}")]
    KeyTaken(String),
}

/// API keys and the sender ids they authenticate. A sender may have several keys.
#[derive(Debug)]
pub(crate) struct Senders {
    by_key: DashMap<String, Arc<str>>,
    ids: DashMap<Arc<str>, ()>,
}

impl Senders {
    /// The registry with only the default sender.
    pub(crate) fn new() -> Self {
        let senders = Self {
            by_key: DashMap::new(),
            ids: DashMap::new(),
        };
        senders.install_default();
        senders
    }

    fn install_default(&self) {
        let id: Arc<str> = Arc::from(DEFAULT_SENDER_ID);
        self.ids.insert(id.clone(), ());
        self.by_key.insert(DEFAULT_API_KEY.to_string(), id);
    }

    /// Registers `api_key` for `sender_id` (creating the sender if new).
    pub(crate) fn add(&self, sender_id: &str, api_key: &str) -> Result<(), SenderError> {
        let id = self.intern(sender_id);
        match self.by_key.entry(api_key.to_string()) {
            dashmap::mapref::entry::Entry::Occupied(e) if **e.get() != *sender_id => {
                Err(SenderError::KeyTaken(e.get().to_string()))
            }
            dashmap::mapref::entry::Entry::Occupied(_) => Ok(()),
            dashmap::mapref::entry::Entry::Vacant(e) => {
                e.insert(id);
                Ok(())
            }
        }
    }

    /// The sender id an API key authenticates.
    pub(crate) fn sender_for_key(&self, api_key: &str) -> Option<Arc<str>> {
        self.by_key.get(api_key).map(|s| s.clone())
    }

    /// The shared sender id, if such a sender is registered.
    pub(crate) fn get(&self, sender_id: &str) -> Option<Arc<str>> {
        self.ids.get(sender_id).map(|e| e.key().clone())
    }

    /// Registers `sender_id` without an API key (FCM v1 project numbers) and returns the
    /// shared copy.
    pub(crate) fn intern(&self, sender_id: &str) -> Arc<str> {
        if let Some(id) = self.get(sender_id) {
            return id;
        }
        self.ids
            .entry(Arc::from(sender_id))
            .or_insert(())
            .key()
            .clone()
    }

    /// Back to only the default sender.
    pub(crate) fn reset(&self) {
        self.by_key.clear();
        self.ids.clear();
        self.install_default();
    }
}
