//! What the application sends: the body of `POST /v1/apps/{app}/messages` ([`SendBody`]),
//! checked into targets and a protocol-neutral [`Payload`] that the store keeps and every
//! channel turns into its own wire message.

mod body;
mod payload;

pub use body::{
    MAX_COLLAPSE_KEY_CHARS, MAX_TARGET_CHARS, ParsedSend, SendBody, TargetsBody, parse_send_body,
    request_digest,
};
pub use payload::{Notification, Payload, Priority};
