//! C2DM (Android Cloud to Device Messaging, 2010–2012): ClientLogin and `/c2dm/send`
//! (docs/protocols.md, "C2DM").
//!
//! Exists so that old Android apps still registered with C2DM (and the emulator's C2DM
//! service) can be driven with the same [`Outcome`](pushgate_proto::Outcome) vocabulary and
//! [`RetryPolicy`](crate::RetryPolicy) as every other protocol. The sender logs in with
//! ClientLogin (or uses a given token), follows `Update-Client-Auth` rotations and reports
//! them through [`C2dmSender::auth_updates`] so a service can persist the new token.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use pushgate_client::c2dm::{C2dmAuth, C2dmMessage, C2dmSender};
//! use pushgate_client::{HttpConfig, RetryPolicy};
//!
//! let auth = C2dmAuth::client_login("role@example.com", "secret", "example-app-1");
//! let sender = C2dmSender::new(auth, HttpConfig::new())?;
//! let message = C2dmMessage::new("registration-id", "score").data("score", "4x8");
//! let outcome = sender.send_with_retries(&message, &RetryPolicy::default()).await?;
//! println!("{:?}", outcome.kind());
//! # Ok(()) }
//! ```

mod auth;
mod error;
mod message;
mod sender;

pub use auth::{AuthToken, C2dmAuth, DEFAULT_LOGIN_URL};
pub use error::C2dmError;
pub use message::C2dmMessage;
pub use pushgate_proto::c2dm::AccountType;
pub use sender::{C2dmSender, DEFAULT_ENDPOINT};

#[cfg(test)]
mod tests;
