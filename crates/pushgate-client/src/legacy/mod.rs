//! GCM / FCM legacy HTTP (`/gcm/send`, `/fcm/send`), JSON and plain text.
//!
//! The API follows the seed libraries (docs/protocols.md, "Reference client libraries"): build a
//! [`JsonMessage`] or a
//! [`PlainTextMessage`], send it with a [`LegacySender`], read the [`LegacyResult`]
//! (`success`, `canonical`, `not_registered`, `failed`, `retry`, `delay`), or let
//! [`LegacySender::send_with_retries`] loop for you.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use pushgate_client::legacy::{JsonMessage, LegacySender};
//! use pushgate_client::{HttpConfig, RetryPolicy};
//!
//! let sender = LegacySender::new("server-key", HttpConfig::new())?;
//! let message = JsonMessage::new(["token-1", "token-2"]).data("score", "4x8");
//! let result = sender.send_with_retries(&message, &RetryPolicy::default()).await?;
//! for (old, new) in result.canonical() {
//!     println!("replace {old} with {new}");
//! }
//! # Ok(()) }
//! ```

mod error;
mod fast_answer;
mod message;
mod result;
mod sender;

pub use error::LegacyError;
pub use message::{JsonMessage, JsonTarget, LegacyMessage, PlainTextMessage};
pub use pushgate_proto::legacy::{ErrorCode, GroupResponse, Notification, Priority};
pub use result::LegacyResult;
pub use sender::{DEFAULT_ENDPOINT, DEFAULT_MAX_CONCURRENT_CHUNKS, LegacySender};
