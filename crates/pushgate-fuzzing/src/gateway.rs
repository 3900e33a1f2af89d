//! The gateway's inputs: send, device and import request bodies, and `pushgate.toml`.

mod config;
mod device;
mod message;

pub use config::gateway_config;
pub use device::{gateway_device_body, gateway_import_body};
pub use message::gateway_message_body;
