//! FCM HTTP v1 (`POST /v1/projects/{p}/messages:send`, docs/protocols.md, "FCM HTTP v1") with
//! OAuth2 bearer
//! tokens from a [`TokenSource`](crate::oauth::TokenSource).
//!
//! Messages are the pure [`Message`] of `pushgate-proto`; every answer is an
//! [`Outcome`](pushgate_proto::Outcome).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use pushgate_client::v1::{FcmV1Sender, Message, V1Config};
//!
//! let sender = FcmV1Sender::from_service_account_file("service-account.json", V1Config::new())?;
//! let message = Message { token: Some("device-token".into()), ..Default::default() };
//! let outcome = sender.send(&message).await;
//! println!("{outcome:?}");
//! # Ok(()) }
//! ```

mod config;
mod rate;
mod sender;

pub use config::{
    DEFAULT_BASE_URL, DEFAULT_CONNECTIONS, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_RETRY_WAIT,
    V1BuildError, V1Config, google_sdk_retry_policy,
};
pub use pushgate_proto::v1::{Message, Notification, SendRequest};
pub use rate::RateLimit;
pub use sender::FcmV1Sender;
