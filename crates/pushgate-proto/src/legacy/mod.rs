//! GCM / FCM legacy HTTP (`/gcm/send`, `/fcm/send`): JSON and plain-text forms.
//!
//! docs/protocols.md, "Legacy HTTP" is the wire reference. The request and response types here are
//! the wire
//! shapes; [`ErrorCode::outcome`] maps every per-recipient error to the shared
//! [`Outcome`](crate::Outcome).

mod error_code;
pub mod limits;
mod plaintext;
mod request;
mod response;

pub use error_code::ErrorCode;
pub use plaintext::{PlainTextRequest, PlainTextResponse};
pub use request::{JsonRequest, MessageOptions, Notification, Priority, Target};
pub use response::{
    GroupResponse, JsonResponse, MulticastResponse, RecipientResult, ResponseError, TopicResponse,
};
