//! Durable state of the gateway: device registry, messages, deliveries and events.
//!
//! The gateway talks to a [`Store`] as `Arc<dyn Store>`, opened by [`open`] from the database
//! setting; [`SqliteStore`] is the embedded implementation, [`PostgresStore`] the one several
//! instances share. The domain rules every backend shares (what an answer does, expiry,
//! registry decisions, event JSON) are plain Rust in [`rules`]; how values are stored and read
//! back, and the SQL that is the same on both, is shared too (the private `stored` module). The store knows no HTTP, no API bodies and no provider: payloads are opaque JSON
//! and provider answers arrive as [`pushgate_proto::Outcome`]s.

#![warn(missing_docs)]

mod error;
mod gather;
mod instances;
pub mod maintenance;
pub mod model;
mod open;
pub mod postgres;
pub mod retention;
pub mod rules;
pub mod sqlite;
mod store;
mod stored;

pub use error::{Result, StoreError};
pub use maintenance::{BackupReport, CheckReport, DatabaseStats, Maintenance, TableStats};
pub use model::*;
pub use open::{Backend, Migrated, StoreSettings, migrate, open, open_maintenance, redacted};
pub use postgres::{PostgresMaintenance, PostgresStore};
pub use retention::{PurgeLimits, PurgeReport};
pub use sqlite::{SqliteMaintenance, SqliteStore};
pub use store::{Confirmation, Store};
