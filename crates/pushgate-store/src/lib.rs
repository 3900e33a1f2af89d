//! Durable state of the gateway: device registry, messages, deliveries and events.
//!
//! The gateway talks to a [`Store`] as `Arc<dyn Store>`, opened by [`open`] from the database
//! setting; [`SqliteStore`] is the embedded implementation. The domain rules every backend
//! shares (what an answer does, expiry, registry decisions, event JSON) are plain Rust in
//! [`rules`]. The store knows no HTTP, no API bodies and no provider: payloads are opaque JSON
//! and provider answers arrive as [`pushgate_proto::Outcome`]s.

#![warn(missing_docs)]

mod error;
mod instances;
pub mod model;
mod open;
pub mod postgres;
pub mod rules;
pub mod sqlite;
mod store;
mod stored;

pub use error::{Result, StoreError};
pub use model::*;
pub use open::{Backend, Migrated, StoreSettings, migrate, open, redacted};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use store::{Confirmation, Store};
