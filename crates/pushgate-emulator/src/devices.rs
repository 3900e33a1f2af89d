//! Virtual devices: tokens, state, inboxes, per-device rate limits.
//!
//! One [`Device`] may have several tokens (after rotations); every token maps to the same
//! device, so they share one inbox. Lookups go through a sharded map; each device has its own
//! small lock for its inbox, never held across an await.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;

use crate::confirm::{self, Link};
use crate::ids::MessageId;
use crate::token;

/// Length of one rate-limit window.
const RATE_WINDOW_MS: u64 = 60_000;

/// The protocol that carried a message to a device, recorded in its inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// Legacy HTTP, JSON body.
    LegacyJson,
    /// Legacy HTTP, form body.
    LegacyPlain,
    /// FCM HTTP v1.
    FcmV1,
    /// CCS (XMPP).
    Ccs,
    /// C2DM (`/c2dm/send`).
    C2dm,
}

impl Via {
    /// The name shown in the control API.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Via::LegacyJson => "legacy-json",
            Via::LegacyPlain => "legacy-plain",
            Via::FcmV1 => "fcm-v1",
            Via::Ccs => "ccs",
            Via::C2dm => "c2dm",
        }
    }
}

/// What one send asked to deliver, as the device receives it; shared by every recipient of
/// the request.
#[derive(Debug, Default)]
pub(crate) struct Payload {
    /// Sender id the message came from (the device sees it as `from`).
    pub from: Option<Arc<str>>,
    /// `data`, values as delivered (strings), in key order.
    pub data: Vec<(String, String)>,
    /// The `notification` object as sent.
    pub notification: Option<Value>,
    /// `collapse_key`.
    pub collapse_key: Option<String>,
    /// `priority`.
    pub priority: Option<String>,
    /// `time_to_live` in seconds.
    pub time_to_live: Option<u32>,
    /// `delay_while_idle`.
    pub delay_while_idle: Option<bool>,
    /// `content_available`.
    pub content_available: Option<bool>,
    /// `mutable_content`.
    pub mutable_content: Option<bool>,
    /// FCM v1 blocks with no legacy twin, as sent: a JSON object with any of `android`,
    /// `apns`, `webpush`, `fcm_options`.
    pub v1: Option<Box<Value>>,
    /// Hash of what the device would see (data, notification, collapse key): equal hashes to
    /// one device are duplicates.
    pub hash: u64,
}

impl Payload {
    /// Computes [`Payload::hash`] from the other fields.
    pub(crate) fn seal(mut self) -> Self {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut h = DefaultHasher::new();
        self.data.hash(&mut h);
        self.collapse_key.hash(&mut h);
        if let Some(n) = &self.notification {
            n.to_string().hash(&mut h);
        }
        self.hash = h.finish();
        self
    }
}

/// One message in a device's inbox.
#[derive(Debug, Clone)]
pub(crate) struct StoredMessage {
    /// The message id the sender was given.
    pub message_id: MessageId,
    /// The token the sender used (maybe an old one of this device).
    pub token: Arc<str>,
    /// The protocol that carried it.
    pub via: Via,
    /// When the emulator accepted it, epoch milliseconds.
    pub received_at_ms: u64,
    /// The content.
    pub payload: Arc<Payload>,
}

/// Which registration scheme a device belongs to: GCM/FCM tokens, or C2DM registration
/// ids (a different shape, refused by the other protocols' endpoints).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum DeviceKind {
    /// GCM/FCM (legacy HTTP, v1, CCS, IID).
    #[default]
    Gcm,
    /// C2DM only.
    C2dm,
}

/// How a virtual device is created.
#[derive(Debug, Clone)]
pub(crate) struct DeviceSpec {
    /// GCM/FCM token or C2DM registration id.
    pub kind: DeviceKind,
    /// Sender the device registered with.
    pub sender_id: Arc<str>,
    /// Android package of the app.
    pub package: Arc<str>,
    /// Messages accepted per minute before `DeviceMessageRateExceeded`; none = unlimited.
    pub rate_limit_per_minute: Option<u32>,
}

/// What a delivery attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeliverResult {
    /// Stored; `copies` is how many times this device now holds this payload (2+ is a
    /// duplicate).
    Stored { copies: u32 },
    /// Over the device's rate limit; nothing stored.
    RateLimited,
}

/// A device's snapshot for the control API.
#[derive(Debug, Clone)]
pub(crate) struct DeviceView {
    /// Messages ever accepted.
    pub received: u64,
    /// Messages in the inbox now.
    pub inbox_len: usize,
    /// Messages pushed out of the full inbox.
    pub dropped: u64,
}

/// One virtual device (one app instance on one phone).
#[derive(Debug)]
pub(crate) struct Device {
    /// Emulator-local id.
    pub id: u64,
    /// GCM/FCM or C2DM.
    pub kind: DeviceKind,
    /// Sender the device registered with.
    pub sender_id: Arc<str>,
    /// Android package of the app.
    pub package: Arc<str>,
    /// Per-minute message limit.
    pub rate_limit_per_minute: Option<u32>,
    /// The C2DM-era registration flow, for devices created with `confirm_via`.
    pub confirm: Option<Arc<Link>>,
    uninstalled: AtomicBool,
    /// Every token, oldest first; the last one is canonical.
    tokens: RwLock<Vec<Arc<str>>>,
    inbox: Mutex<Inbox>,
}

#[derive(Debug, Default)]
struct Inbox {
    messages: VecDeque<StoredMessage>,
    received: u64,
    dropped: u64,
    window_start_ms: u64,
    window_count: u32,
    /// Payload hash -> copies in `messages`.
    copies: HashMap<u64, u32>,
}

impl Device {
    /// The newest token.
    pub(crate) fn canonical(&self) -> Arc<str> {
        let tokens = self.tokens.read();
        tokens.last().cloned().unwrap_or_else(|| Arc::from(""))
    }

    /// The canonical token when `used` is an older token of this device.
    pub(crate) fn canonical_if_rotated(&self, used: &str) -> Option<Arc<str>> {
        let tokens = self.tokens.read();
        match tokens.last() {
            Some(newest) if &**newest != used => Some(newest.clone()),
            _ => None,
        }
    }

    /// Every token, oldest first.
    pub(crate) fn tokens(&self) -> Vec<Arc<str>> {
        self.tokens.read().clone()
    }

    /// True once the app was uninstalled.
    pub(crate) fn is_uninstalled(&self) -> bool {
        self.uninstalled.load(Ordering::Relaxed)
    }

    /// Whether one more message would fit in the current rate window (does not count it).
    pub(crate) fn within_rate(&self, now_ms: u64) -> bool {
        let Some(limit) = self.rate_limit_per_minute else {
            return true;
        };
        let inbox = self.inbox.lock();
        now_ms.saturating_sub(inbox.window_start_ms) >= RATE_WINDOW_MS || inbox.window_count < limit
    }

    /// Stores a message (dropping the oldest beyond `inbox_limit`), unless the rate limit is
    /// reached. Every protocol's messages enter inboxes here, so this is also where a
    /// `confirm_via` device notices a `registration_token` (after the inbox lock is released;
    /// the confirmation call runs in a spawned task).
    pub(crate) fn deliver(&self, message: StoredMessage, inbox_limit: usize) -> DeliverResult {
        let Some(link) = &self.confirm else {
            return self.store(message, inbox_limit);
        };
        let payload = message.payload.clone();
        let result = self.store(message, inbox_limit);
        if let DeliverResult::Stored { .. } = result {
            confirm::on_message(link, &payload);
        }
        result
    }

    fn store(&self, message: StoredMessage, inbox_limit: usize) -> DeliverResult {
        let now_ms = message.received_at_ms;
        let hash = message.payload.hash;
        let mut inbox = self.inbox.lock();
        if let Some(limit) = self.rate_limit_per_minute {
            if now_ms.saturating_sub(inbox.window_start_ms) >= RATE_WINDOW_MS {
                inbox.window_start_ms = now_ms;
                inbox.window_count = 0;
            }
            if inbox.window_count >= limit {
                return DeliverResult::RateLimited;
            }
            inbox.window_count += 1;
        }
        inbox.received += 1;
        if inbox_limit == 0 {
            inbox.dropped += 1;
            return DeliverResult::Stored { copies: 1 };
        }
        while inbox.messages.len() >= inbox_limit {
            let Some(old) = inbox.messages.pop_front() else {
                break;
            };
            inbox.dropped += 1;
            forget_copy(&mut inbox.copies, old.payload.hash);
        }
        inbox.messages.push_back(message);
        let copies = inbox.copies.entry(hash).or_insert(0);
        *copies += 1;
        DeliverResult::Stored { copies: *copies }
    }

    /// The inbox, oldest first.
    pub(crate) fn messages(&self) -> Vec<StoredMessage> {
        self.inbox.lock().messages.iter().cloned().collect()
    }

    /// Counters and state for the control API.
    pub(crate) fn view(&self) -> DeviceView {
        let inbox = self.inbox.lock();
        DeviceView {
            received: inbox.received,
            inbox_len: inbox.messages.len(),
            dropped: inbox.dropped,
        }
    }
}

fn forget_copy(copies: &mut HashMap<u64, u32>, hash: u64) {
    if let Some(n) = copies.get_mut(&hash) {
        *n -= 1;
        if *n == 0 {
            copies.remove(&hash);
        }
    }
}

/// Every virtual device, reachable by any of its tokens.
#[derive(Debug, Default)]
pub(crate) struct Devices {
    by_token: DashMap<Arc<str>, Arc<Device>>,
    next_id: AtomicU64,
}

impl Devices {
    /// Creates `count` devices like `spec`, each with a fresh token; `link(i, id)` gives the
    /// `i`-th device (emulator-local number `id`) its registration flow, if any.
    pub(crate) fn create(
        &self,
        spec: &DeviceSpec,
        count: usize,
        mut link: impl FnMut(usize, u64) -> Option<Arc<Link>>,
    ) -> Vec<(Arc<str>, Arc<Device>)> {
        let mut rng = rand::rng();
        (0..count)
            .map(|i| {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                let token = self.fresh_token(spec.kind, &mut rng);
                let device = Arc::new(Device {
                    id,
                    kind: spec.kind,
                    sender_id: spec.sender_id.clone(),
                    package: spec.package.clone(),
                    rate_limit_per_minute: spec.rate_limit_per_minute,
                    confirm: link(i, id),
                    uninstalled: AtomicBool::new(false),
                    tokens: RwLock::new(vec![token.clone()]),
                    inbox: Mutex::new(Inbox::default()),
                });
                self.by_token.insert(token.clone(), device.clone());
                (token, device)
            })
            .collect()
    }

    /// A token no device has yet.
    fn fresh_token(&self, kind: DeviceKind, rng: &mut rand::rngs::ThreadRng) -> Arc<str> {
        loop {
            let token: Arc<str> = Arc::from(match kind {
                DeviceKind::Gcm => token::generate_with(rng),
                DeviceKind::C2dm => crate::c2dm::registration_id(rng),
            });
            if !self.by_token.contains_key(&token) {
                return token;
            }
        }
    }

    /// The device behind `token`, with the shared copy of the token.
    pub(crate) fn lookup(&self, token: &str) -> Option<(Arc<str>, Arc<Device>)> {
        self.by_token
            .get(token)
            .map(|e| (e.key().clone(), e.value().clone()))
    }

    /// Gives the device behind `token` a new canonical token; old tokens keep working.
    pub(crate) fn rotate(&self, token: &str) -> Option<Arc<str>> {
        let (_, device) = self.lookup(token)?;
        let new = self.fresh_token(device.kind, &mut rand::rng());
        self.by_token.insert(new.clone(), device.clone());
        device.tokens.write().push(new.clone());
        Some(new)
    }

    /// Marks the device behind `token` uninstalled: every token answers `NotRegistered`.
    pub(crate) fn uninstall(&self, token: &str) -> Option<Arc<Device>> {
        let (_, device) = self.lookup(token)?;
        device.uninstalled.store(true, Ordering::Relaxed);
        Some(device)
    }

    /// Every device once (a rotated device has several tokens), in no order.
    pub(crate) fn all(&self) -> Vec<Arc<Device>> {
        let mut seen = std::collections::HashSet::new();
        self.by_token
            .iter()
            .filter(|e| seen.insert(e.value().id))
            .map(|e| e.value().clone())
            .collect()
    }

    /// Forgets every device.
    pub(crate) fn reset(&self) {
        self.by_token.clear();
    }
}
