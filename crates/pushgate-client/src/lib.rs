//! Async senders for Google's push protocols, usable on their own as a library.
//!
//! Every protocol module shares one [`RetryPolicy`] (exponential backoff with jitter that
//! never undercuts a server's `Retry-After`) and one [`HttpConfig`] (endpoint, timeouts,
//! proxy, extra CA, HTTP/2 prior knowledge). Answers are reported in the shared
//! [`Outcome`](pushgate_proto::Outcome) vocabulary of `pushgate-proto`.
//!
//! Protocols so far: [`legacy`] (GCM / FCM legacy HTTP, JSON and plain text), [`v1`] (FCM
//! HTTP v1, with access tokens from [`oauth`]), [`ccs`] (XMPP) and [`c2dm`] (ClientLogin).
//! Management APIs: [`iid`] (topic subscriptions, instance info) and [`groups`] (device
//! groups).

#![warn(missing_docs)]

pub mod c2dm;
pub mod ccs;
pub mod groups;
pub mod http;
pub mod iid;
pub mod legacy;
pub mod oauth;
pub mod retry;
mod transport;
pub mod v1;

pub use http::{BuildError, HttpConfig};
pub use retry::{Jitter, RetryPolicy};
