//! FCM HTTP v1 (`projects.messages.send`): the `Message` resource, its limits and errors.
//!
//! docs/protocols.md, "FCM HTTP v1" is the wire reference. Field names are sent in snake_case and
//! accepted in
//! both snake_case and lowerCamelCase, as Google's front end accepts both; unknown fields are
//! refused, as the service refuses them.

mod duration;
mod error;
mod message;
pub mod oauth;
mod validate;

pub use duration::ProtoDuration;
pub use error::{ErrorBody, FcmErrorCode, Status};
pub use message::{
    AndroidConfig, AndroidFcmOptions, AndroidNotification, AndroidPriority, ApnsConfig,
    ApnsFcmOptions, Color, FcmOptions, LightSettings, Message, Notification, SendRequest,
    SendResponse, WebpushConfig, WebpushFcmOptions,
};

/// The OAuth2 scope that grants sending through FCM v1.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// The broad scope that also grants it.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The token endpoint google-auth always puts in the JWT `aud`, whatever the key file says.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Message name the service answers for `validate_only` requests.
pub const FAKE_MESSAGE_ID: &str = "fake_message_id";
