//! Durable state of the gateway: device registry, messages, deliveries and events.
//!
//! The gateway talks to a [`Store`] as `Arc<dyn Store>`, opened by [`open`] from the database
//! setting; [`SqliteStore`] is the embedded implementation. The store knows no HTTP, no API bodies and no provider: payloads
//! are opaque JSON and provider answers arrive as [`pushgate_proto::Outcome`]s.

mod error;
pub mod model;
mod open;
pub mod rules;
pub mod sqlite;
mod store;

pub use error::{Result, StoreError};
pub use model::*;
pub use open::{Backend, StoreSettings, open};
pub use sqlite::SqliteStore;
pub use store::{Confirmation, Store};
