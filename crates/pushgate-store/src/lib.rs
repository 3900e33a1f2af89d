//! Durable state of the gateway: device registry, messages, deliveries and events.
//!
//! The gateway talks to a [`Store`] (usually as `Arc<dyn Store>`); [`SqliteStore`] is the
//! embedded implementation. The store knows no HTTP, no API bodies and no provider: payloads
//! are opaque JSON and provider answers arrive as [`pushgate_proto::Outcome`]s.

mod error;
pub mod model;
pub mod sqlite;
mod store;

pub use error::{Result, StoreError};
pub use model::*;
pub use sqlite::{SqliteSettings, SqliteStore};
pub use store::{Confirmation, Store};
